"""The alternative pairwise, reference-free and unpaired losses on hand-computed values (worked out in the
comments), their limits, gradient directions and registry entries. softplus(x) = ln(1 + eˣ) = −log σ(−x).

Reference values used below: softplus(−1) = 0.3132617, softplus(1) = 1.3132617, softplus(−0.5) = 0.4740770,
softplus(0.5) = 0.9740770, softplus(−1.5) = 0.2014133, σ(1) = 0.7310586, σ(2) = 0.8807971, ln 2 = 0.6931472.
"""

import math

import pytest
import torch

from methods.pairwise_alternatives import (
    aot_loss,
    aot_unpaired_loss,
    apo_down_loss,
    apo_zero_loss,
    bco_pair_loss,
    discopop_loss,
    exo_pair_loss,
    nca_loss,
    sppo_hard_loss,
    update_reward_shift,
)
from methods.reference_free import chosen_token_nll, cpo_loss, orpo_loss, simpo_loss
from methods.unpaired import apo_zero_unpaired_loss, npo_loss
from suite.method.registry import FeedbackBatch, get_method

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731

# Two pairs (policy chosen, policy rejected, reference chosen, reference rejected):
#   pair 1: a = −1 − (−2) = 1,  b = −3 − (−2) = −1   (h = 2)
#   pair 2: a = −2 − (−2) = 0,  b = −2 − (−2) = 0    (identical chosen and rejected log-ratios)
PAIRS = (T(-1, -2), T(-3, -2), T(-2, -2), T(-2, -2))

REFERENCE_BASED_PAIRWISE = {
    "nca": lambda *x: nca_loss(*x, beta=1.0),
    "bco": lambda *x: bco_pair_loss(*x, beta=1.0, reward_shift=0.0),
    "sppo-hard": lambda *x: sppo_hard_loss(*x, beta=0.5),
    "exo": lambda *x: exo_pair_loss(*x, beta=1.0),
    "apo-zero": lambda *x: apo_zero_loss(*x, beta=1.0),
    "aot": lambda *x: aot_loss(*x, beta=1.0),
    "aot-unpaired": lambda *x: aot_unpaired_loss(*x, beta=1.0),
    "discopop": lambda *x: discopop_loss(*x, beta=1.0, tau=0.05),
}


# ------------------------------------------------------------------------------------ hand-computed values


def test_nca_hand_values():
    # pair 1: r_w = 1, r_l = −1: −log σ(1) − ½ log σ(−1) − ½ log σ(1)
    #         = softplus(−1) + ½ softplus(1) + ½ softplus(−1) = 0.3132617 + 0.6566308 + 0.1566308 = 1.1265234
    # pair 2: r_w = r_l = 0: (1 + ½ + ½)·ln 2 = 1.3862944
    assert nca_loss(*PAIRS, beta=1.0).tolist() == pytest.approx([1.1265234, 1.3862944], abs=1e-6)


def test_bco_hand_values_and_shift():
    # δ = 0.5, pair 1: −log σ(1 − 0.5) − log σ(−(−1 − 0.5)) = softplus(−0.5) + softplus(−1.5)
    #                  = 0.4740770 + 0.2014133 = 0.6754903
    losses = bco_pair_loss(*PAIRS, beta=1.0, reward_shift=0.5)
    # pair 2 (a = b = 0): −log σ(−0.5) − log σ(0.5) = softplus(0.5) + softplus(−0.5) = 1.4481540
    assert losses.tolist() == pytest.approx([0.6754903, 1.4481540], abs=1e-6)
    # δ = 0: softplus(−1) + softplus(−1) = 0.6265234
    assert bco_pair_loss(*PAIRS, beta=1.0, reward_shift=0.0)[0].item() == pytest.approx(0.6265234, abs=1e-6)


def test_bco_running_mean_is_updated_in_state_and_has_no_gradient():
    state = {}
    # step 1: rewards (β = 1) chosen [1], rejected [0] → batch mean 0.5 → δ = 0.5
    assert update_reward_shift(state, T(1.0, 0.0)) == pytest.approx(0.5)
    # step 2: batch mean 2 → δ = 0.5 + (2 − 0.5)/2 = 1.25  (the running mean of the batch means)
    assert update_reward_shift(state, T(3.0, 1.0)) == pytest.approx(1.25)

    # Through the objective: pair a = 1, b = 0 → rewards [1, 0] → δ = 0.5;
    # loss = −log σ(1 − 0.5) − log σ(−(0 − 0.5)) = 2·softplus(−0.5) = 0.9481540
    method, batch_state = get_method("bco"), {}
    hp = method.hyperparameters({"beta": 1.0})
    batch = FeedbackBatch(policy_logps=T(-1, -2), lengths=T(1, 1), reference_logps=T(-2, -2), state=batch_state)
    loss, metrics = method.objective(batch, hp)
    assert loss.item() == pytest.approx(0.9481540, abs=1e-6)
    assert metrics["bco/reward_shift"].item() == pytest.approx(0.5)
    # second step on a = 3, b = 1 → batch mean 2 → δ = 1.25, kept in the same state dict
    batch = FeedbackBatch(policy_logps=T(1, -1), lengths=T(1, 1), reference_logps=T(-2, -2), state=batch_state)
    _, metrics = method.objective(batch, hp)
    assert metrics["bco/reward_shift"].item() == pytest.approx(1.25)
    # evaluation (no grad) reads δ without updating it
    with torch.no_grad():
        _, metrics = method.objective(batch, hp)
    assert metrics["bco/reward_shift"].item() == pytest.approx(1.25)
    assert batch_state["bco/reward_count"] == 2

    # δ is a constant: a tensor shift gets no gradient
    shift, chosen = T(0.3).requires_grad_(), T(-1.0, -2.0).requires_grad_()
    bco_pair_loss(chosen, *PAIRS[1:], beta=1.0, reward_shift=shift).sum().backward()
    assert shift.grad is None and chosen.grad is not None


def test_sppo_hard_hand_values():
    # β = 0.5 → targets ±1/(2β) = ±1
    # pair 1: (1 − 1)² + (−1 + 1)² = 0 (at the optimum); pair 2: (0 − 1)² + (0 + 1)² = 2
    assert sppo_hard_loss(*PAIRS, beta=0.5).tolist() == pytest.approx([0.0, 2.0])
    # log-ratios are not scaled by β: a = 3, b = 0 → (3 − 1)² + (0 + 1)² = 5
    assert sppo_hard_loss(T(1.0), T(-2.0), T(-2.0), T(-2.0), beta=0.5).item() == pytest.approx(5.0)


def test_exo_hand_values():
    # pair 1, β = 1, h = 2, ε = 1e-3: q_w = σ(2) = 0.8807971, q_l = 0.1192029
    #   q_w·(ln q_w − ln(1 − ε)) = 0.8807971·(−0.1269280 + 0.0010005) = −0.1109165
    #   q_l·(ln q_l − ln ε)      = 0.1192029·(−2.1269280 + 6.9077553) =  0.5698885     → 0.4589720
    # pair 2, h = 0: q = (½, ½): ½·(ln ½ − ln 0.999) + ½·(ln ½ − ln 0.001)
    #   = ln ½ − ½·(ln 0.999 + ln 0.001) = −0.6931472 + 3.4543779 = 2.7612307
    losses = exo_pair_loss(*PAIRS, beta=1.0, label_smoothing=1e-3)
    assert losses.tolist() == pytest.approx([0.4589720, 2.7612307], abs=1e-6)
    # the KL is 0 when the policy's pair distribution equals the label: ε = ½ and h = 0
    assert exo_pair_loss(*PAIRS, beta=1.0, label_smoothing=0.5)[1].item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        exo_pair_loss(*PAIRS, beta=1.0, label_smoothing=0.0)


def test_apo_hand_values():
    # zero, pair 1: 1 − σ(1) + σ(−1) = 1 − 0.7310586 + 0.2689414 = 0.5378828; pair 2: 1 − ½ + ½ = 1
    assert apo_zero_loss(*PAIRS, beta=1.0).tolist() == pytest.approx([0.5378828, 1.0], abs=1e-6)
    # down, pair 1: σ(1) + 1 − σ(2) = 0.7310586 + 1 − 0.8807971 = 0.8502615; pair 2: ½ + 1 − ½ = 1
    assert apo_down_loss(*PAIRS, beta=1.0).tolist() == pytest.approx([0.8502615, 1.0], abs=1e-6)


# AOT batch: policy margins m = (−1 − −3, −2 − −1) = (2, −1) → sorted (−1, 2)
#            reference margins m⁰ = (−2 − −2, −1 − −2.5) = (0, 1.5) → sorted (0, 1.5)
#            a = (−1 − −2, −2 − −1) = (1, −1) → sorted (−1, 1);  b = (−3 − −2, −1 − −2.5) = (−1, 1.5) → (−1, 1.5)
AOT_PAIRS = (T(-1, -2), T(-3, -1), T(-2, -1), T(-2, -2.5))


def test_aot_paired_hand_values():
    # sorted differences (−1 − 0, 2 − 1.5) = (−1, 0.5) → (softplus(1), softplus(−0.5)) = (1.3132617, 0.4740770)
    # (pair by pair it would be (2 − 0, −1 − 1.5) = (2, −2.5): the sorting matters)
    assert aot_loss(*AOT_PAIRS, beta=1.0).tolist() == pytest.approx([1.3132617, 0.4740770], abs=1e-6)
    # ε = 0.1 on the first quantile: 0.9·softplus(1) + 0.1·softplus(−1) = 1.1819355 + 0.0313262 = 1.2132617
    smoothed = aot_loss(*AOT_PAIRS, beta=1.0, label_smoothing=0.1)
    assert smoothed[0].item() == pytest.approx(1.2132617, abs=1e-6)


def test_aot_unpaired_hand_values():
    # sorted differences (−1 − −1, 1 − 1.5) = (0, −0.5) → (ln 2, softplus(0.5)) = (0.6931472, 0.9740770)
    assert aot_unpaired_loss(*AOT_PAIRS, beta=1.0).tolist() == pytest.approx([0.6931472, 0.9740770], abs=1e-6)


def test_discopop_hand_values():
    # τ = 1, ρ = 1: (1 − σ(1))·softplus(−1) + σ(1)·e^{−1} = 0.2689414·0.3132617 + 1/(1 + e) = 0.0842491 + 0.2689414
    one = (T(-1.0), T(-2.0), T(-2.0), T(-2.0))
    assert discopop_loss(*one, beta=1.0, tau=1.0).item() == pytest.approx(0.3531905, abs=1e-6)
    # ρ = 0: ½·ln 2 + ½·1 = 0.8465736 (any τ)
    assert discopop_loss(*PAIRS, beta=1.0)[1].item() == pytest.approx(0.8465736, abs=1e-6)
    # τ = 0.05: ρ = 1 → σ(20) ≈ 1, the exponential e^{−1} = 0.3678794; ρ = −1 → the logistic softplus(1)
    assert discopop_loss(*one, beta=1.0, tau=0.05).item() == pytest.approx(0.3678794, abs=1e-6)
    flipped = (T(-2.0), T(-1.0), T(-2.0), T(-2.0))
    assert discopop_loss(*flipped, beta=1.0, tau=0.05).item() == pytest.approx(1.3132617, abs=1e-6)


def test_simpo_hand_values():
    # β = 2, γ/β = ½: pair 1 averages −4/2 = −2 and −9/3 = −3 → β·(1 − ½) = 1 → softplus(−1) = 0.3132617
    #                 pair 2 averages −2/1 and −4/2 equal → β·(0 − ½) = −1 → softplus(1) = 1.3132617
    args = (T(-4, -2), T(-9, -4), T(2, 1), T(3, 2))
    assert simpo_loss(*args).tolist() == pytest.approx([0.3132617, 1.3132617], abs=1e-6)
    # TRL's form: −log σ(β·avg_w − β·avg_l − γ) with γ = ½·2 = 1: −log σ(−4 + 6 − 1) = softplus(−1)
    # label smoothing 0.1: 0.9·softplus(−1) + 0.1·softplus(1) = 0.4132617
    assert simpo_loss(*args, label_smoothing=0.1)[0].item() == pytest.approx(0.4132617, abs=1e-6)


def test_chosen_token_nll_is_the_token_mean_over_chosen_rows():
    # rows: chosen 1 (−1, −3), chosen 2 (−2), rejected 1 (−5), rejected 2 (−1, −1, −1)
    # chosen NLL per token = (1 + 3 + 2) / 3 = 2; the rejected rows are not used
    token_logps = T(-1, -3, 0, -2, 0, 0, -5, 0, 0, -1, -1, -1).reshape(4, 3)
    token_mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 0, 0], [1, 1, 1]])
    batch = FeedbackBatch(policy_logps=T(-4, -2, -5, -3), lengths=T(2, 1, 1, 3),
                          token_logps=token_logps, token_mask=token_mask)
    assert chosen_token_nll(batch).item() == pytest.approx(2.0)
    # chosen 1 (−1, −1, −4), chosen 2 (−6): token mean 12/4 = 3, not the mean of per-row means (2 + 6)/2 = 4
    token_logps = T(-1, -1, -4, -6, 0, 0, -1, 0, 0, -1, 0, 0).reshape(4, 3)
    token_mask = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 0, 0], [1, 0, 0]])
    batch = FeedbackBatch(policy_logps=T(-6, -6, -1, -1), lengths=T(3, 1, 1, 1),
                          token_logps=token_logps, token_mask=token_mask)
    assert chosen_token_nll(batch).item() == pytest.approx(3.0)
    # without per-token tensors, the same number from the sums and lengths: 12 / 4
    assert chosen_token_nll(FeedbackBatch(policy_logps=T(-6, -6, -1, -1), lengths=T(3, 1, 1, 1))).item() == 3.0


def test_cpo_hand_values():
    # β = 0.1, sums ℓ_w = −4, ℓ_l = −9 → β·5 = 0.5 → softplus(−0.5) = 0.4740770; + NLL 2 → 2.4740770
    assert cpo_loss(T(-4.0), T(-9.0), T(2.0)).item() == pytest.approx(2.4740770, abs=1e-6)
    # NLL weight 0: the preference term alone (uses the SUMS, not length averages)
    assert cpo_loss(T(-4.0), T(-9.0), T(2.0), cpo_alpha=0.0).item() == pytest.approx(0.4740770, abs=1e-6)


def test_orpo_hand_values():
    # m_w = −0.5: log odds = −0.5 − ln(1 − e^{−0.5}) = −0.5 + 0.9327521 = 0.4327521
    # m_l = −2:   log odds = −2 − ln(1 − e^{−2})     = −2 + 0.1454135 = −1.8545865
    # ratio 2.2873387 → −log σ = softplus(−2.2873387) = 0.0967059; loss = 2 + 0.1·0.0967059 = 2.0096706
    assert orpo_loss(T(-0.5), T(-2.0), T(2.0), beta=0.1).item() == pytest.approx(2.0096706, abs=1e-6)
    # equal mean log-probs: log odds ratio 0 → NLL + β·ln 2
    assert orpo_loss(T(-1.0), T(-1.0), T(0.0), beta=0.1).item() == pytest.approx(0.1 * math.log(2))


def test_npo_hand_values():
    # β = 1: r = 0 → (2/1)·ln(1 + 1) = 1.3862944; r = 1 → 2·ln(1 + e) = 2·softplus(1) = 2.6265234
    assert npo_loss(T(-2, -1), T(-2, -2), beta=1.0).tolist() == pytest.approx([1.3862944, 2.6265234], abs=1e-6)
    # β = 0.5, r = 2: (2/0.5)·ln(1 + e^{1}) = 4·1.3132617 = 5.2530468
    assert npo_loss(T(0.0), T(-2.0), beta=0.5).item() == pytest.approx(5.2530468, abs=1e-6)
    # β → 0: loss − 2 ln 2/β → r (gradient ascent on the log-likelihood): r = 3
    beta = 1e-4
    assert (npo_loss(T(1.0), T(-2.0), beta=beta).item() - 2 * math.log(2) / beta) == pytest.approx(3.0, abs=1e-3)


def test_npo_objective_averages_undesirable_only():
    # labels (1, 0, 0), r = (5, 0, 1), β = 1: (1.3862944 + 2.6265234)/2 = 2.0064089; the desirable one ignored
    method = get_method("npo")
    policy = T(0, -2, -1).requires_grad_()
    batch = FeedbackBatch(policy_logps=policy, lengths=T(1, 1, 1), reference_logps=T(-5, -2, -2), labels=T(1, 0, 0))
    loss, metrics = method.objective(batch, method.hyperparameters({"beta": 1.0}))
    assert loss.item() == pytest.approx(2.0064089, abs=1e-6)
    loss.backward()
    # desirable: no gradient; undesirable: d/dr = ½·2σ(β r) > 0 (pushed down): ½·2·σ(0) = 0.5, σ(1) = 0.7310586
    assert policy.grad.tolist() == pytest.approx([0.0, 0.5, 0.7310586], abs=1e-6)
    assert metrics["rewards/desirable"].item() == pytest.approx(5.0)


def test_npo_objective_without_undesirable_examples_is_zero_with_zero_gradient():
    method = get_method("npo")
    policy = T(-1, -2).requires_grad_()
    batch = FeedbackBatch(policy_logps=policy, lengths=T(1, 1), reference_logps=T(-2, -2), labels=T(1, 1))
    loss, _ = method.objective(batch, method.hyperparameters())
    loss.backward()
    assert loss.item() == 0.0 and policy.grad.tolist() == [0.0, 0.0]


def test_apo_zero_unpaired_hand_values():
    # β = 1: desirable r = 1 → 1 − σ(1) = 0.2689414; undesirable r = 1 → σ(1) = 0.7310586;
    #        undesirable r = −1 → σ(−1) = 0.2689414
    losses = apo_zero_unpaired_loss(T(-1, -1, -3), T(-2, -2, -2), T(1, 0, 0), beta=1.0)
    assert losses.tolist() == pytest.approx([0.2689414, 0.7310586, 0.2689414], abs=1e-6)


# ------------------------------------------------------------------------------------------ objectives


def test_pairwise_objectives_use_the_batch_layout():
    # chosen block first, then rejected: the objective's loss is the mean of the pure per-pair losses
    batch = FeedbackBatch(policy_logps=torch.cat(PAIRS[:2]), lengths=T(1, 1, 1, 1),
                          reference_logps=torch.cat(PAIRS[2:]))
    method = get_method("nca")
    loss, metrics = method.objective(batch, method.hyperparameters({"beta": 1.0}))
    assert loss.item() == pytest.approx((1.1265234 + 1.3862944) / 2, abs=1e-6)
    assert metrics["rewards/chosen"].item() == pytest.approx(0.5)  # mean of β·a = (1, 0)
    assert metrics["rewards/accuracy"].item() == pytest.approx(0.5)
    # AOT's variant switch: paired = TRL "aot", unpaired = TRL "aot_unpaired"
    aot = get_method("aot")
    batch = FeedbackBatch(policy_logps=torch.cat(AOT_PAIRS[:2]), lengths=T(1, 1, 1, 1),
                          reference_logps=torch.cat(AOT_PAIRS[2:]))
    paired, _ = aot.objective(batch, aot.hyperparameters({"beta": 1.0}))
    unpaired, _ = aot.objective(batch, aot.hyperparameters({"beta": 1.0, "paired": False}))
    assert paired.item() == pytest.approx((1.3132617 + 0.4740770) / 2, abs=1e-6)
    assert unpaired.item() == pytest.approx((0.6931472 + 0.9740770) / 2, abs=1e-6)


def test_reference_free_objectives_use_lengths_and_tokens():
    # pairs: chosen (−4 over 2 tokens), rejected (−9 over 3 tokens); per-token rows give chosen NLL 4/2 = 2
    token_logps = T(-1, -3, 0, -3, -3, -3).reshape(2, 3)
    token_mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    batch = FeedbackBatch(policy_logps=T(-4, -9), lengths=T(2, 3), token_logps=token_logps, token_mask=token_mask)
    simpo = get_method("simpo")
    loss, _ = simpo.objective(batch, simpo.hyperparameters())
    assert loss.item() == pytest.approx(0.3132617, abs=1e-6)  # as test_simpo_hand_values pair 1
    cpo = get_method("cpo")
    loss, metrics = cpo.objective(batch, cpo.hyperparameters())
    assert loss.item() == pytest.approx(2.4740770, abs=1e-6)  # as test_cpo_hand_values
    assert metrics["nll/token"].item() == pytest.approx(2.0)
    orpo = get_method("orpo")
    loss, _ = orpo.objective(batch, orpo.hyperparameters())
    # m_w = −2, m_l = −3: log odds = (−2 − ln(1 − e^{−2})) − (−3 − ln(1 − e^{−3}))
    #      = −1.8545865 − (−3 + 0.0510692) = 1.0943443 → softplus(−1.0943443) = 0.2887508; 2 + 0.1·0.2887508
    assert loss.item() == pytest.approx(2.0288751, abs=1e-6)


# ------------------------------------------------------------------------------- limits and edge cases


@pytest.mark.parametrize("name", ["exo", "aot", "aot-unpaired", "discopop"])
def test_margin_losses_on_identical_pairs_do_not_depend_on_the_shared_log_ratio(name):
    # identical chosen and rejected log-ratios (a = b): losses of the margin only give their h = 0 value
    # whatever a is (NCA, BCO, SPPO and APO-zero also score each response's own reward; their a = b = 0
    # values are pair 2 of the hand-value tests above)
    loss_fn = REFERENCE_BASED_PAIRWISE[name]
    at_zero = loss_fn(T(-2.0), T(-2.0), T(-2.0), T(-2.0))
    shifted = loss_fn(T(-1.0), T(-1.0), T(-2.0), T(-2.0))
    assert at_zero.item() == pytest.approx(shifted.item())


@pytest.mark.parametrize("name", sorted(REFERENCE_BASED_PAIRWISE))
@pytest.mark.parametrize("margin", [1e4, -1e4])
def test_pairwise_losses_stay_finite_for_extreme_log_ratios(name, margin):
    chosen = T(0.0, margin).requires_grad_()
    rejected = T(0.0, -margin).requires_grad_()
    losses = REFERENCE_BASED_PAIRWISE[name](chosen, rejected, T(0.0, 0.0), T(0.0, 0.0))
    losses.sum().backward()
    assert torch.isfinite(losses).all()
    assert torch.isfinite(chosen.grad).all() and torch.isfinite(rejected.grad).all()


def test_discopop_extreme_negative_margin_is_finite_where_the_naive_form_is_not():
    rho = T(-1000.0)
    naive = torch.sigmoid(rho / 0.05) * torch.exp(-rho)  # 0 · ∞
    assert torch.isnan(naive)
    # the logistic term dominates: softplus(1000) ≈ 1000
    assert discopop_loss(T(-1000.0), T(0.0), T(0.0), T(0.0), beta=1.0).item() == pytest.approx(1000.0)


def test_reference_free_losses_stay_finite_at_extremes():
    # ORPO: a mean log-prob of exactly 0 (probability 1 in floating point) and a very negative one
    for dtype in (torch.float32, torch.float64):
        chosen = torch.tensor([0.0, -1e-9, -50.0], dtype=dtype, requires_grad=True)
        rejected = torch.tensor([0.0, -30.0, -1e-9], dtype=dtype, requires_grad=True)
        losses = orpo_loss(chosen, rejected, torch.tensor(1.0, dtype=dtype), beta=0.1)
        losses.sum().backward()
        assert torch.isfinite(losses).all() and torch.isfinite(chosen.grad).all() and torch.isfinite(rejected.grad).all()
    # SimPO / CPO: huge margins either way
    big = T(1e5, -1e5)
    assert torch.isfinite(simpo_loss(big, -big, T(1, 1), T(1, 1))).all()
    assert torch.isfinite(cpo_loss(big, -big, T(1.0))).all()
    # SimPO on zero lengths: clamped at 1, no division by zero
    assert torch.isfinite(simpo_loss(T(0.0), T(0.0), T(0.0), T(0.0))).all()


def test_unpaired_losses_stay_finite_at_extremes():
    policy = T(1e4, -1e4).requires_grad_()
    losses = npo_loss(policy, T(0.0, 0.0), beta=0.1)
    losses.sum().backward()
    assert torch.isfinite(losses).all() and torch.isfinite(policy.grad).all()
    # r = 1e4: ≈ (2/β)·β·r = 2r; r = −1e4: ≈ 0
    assert losses.tolist() == pytest.approx([2e4, 0.0], abs=1e-6)
    assert torch.isfinite(apo_zero_unpaired_loss(T(1e4, -1e4), T(0.0, 0.0), T(1, 0), beta=1.0)).all()


# --------------------------------------------------------------------------------------- gradient signs


def _pair_gradients(loss_fn, a: float = 0.0, b: float = 0.0):
    chosen, rejected = T(a - 2.0).requires_grad_(), T(b - 2.0).requires_grad_()
    loss_fn(chosen, rejected, T(-2.0), T(-2.0)).sum().backward()
    return chosen.grad.item(), rejected.grad.item()


@pytest.mark.parametrize("name", sorted(set(REFERENCE_BASED_PAIRWISE) - {"discopop"}))
def test_pairwise_gradients_push_chosen_up_and_rejected_down(name):
    # at a = b = 0 (policy = reference), gradient descent raises ℓ(y_w) and lowers ℓ(y_l)
    chosen_grad, rejected_grad = _pair_gradients(REFERENCE_BASED_PAIRWISE[name])
    assert chosen_grad < 0 < rejected_grad


def test_nca_and_sppo_gradients_by_hand():
    # NCA, β = 1, a = b = 0: d/da = −σ(0) + ½σ(0) = −0.25; d/db = ½σ(0) = 0.25
    assert _pair_gradients(REFERENCE_BASED_PAIRWISE["nca"]) == pytest.approx((-0.25, 0.25))
    # SPPO, β = 0.5: d/da = 2(a − 1) = −2, d/db = 2(b + 1) = 2 at a = b = 0
    assert _pair_gradients(REFERENCE_BASED_PAIRWISE["sppo-hard"]) == pytest.approx((-2.0, 2.0))


def test_discopop_gradient_directions():
    # Away from 0 the margin is pushed up (logistic region ρ = −1, exponential region ρ = 1) …
    loss_fn = REFERENCE_BASED_PAIRWISE["discopop"]
    for a in (-0.5, 0.5):
        chosen_grad, rejected_grad = _pair_gradients(loss_fn, a=a, b=-a)
        assert chosen_grad < 0 < rejected_grad
    # … but DiscoPOP is non-convex: at ρ = 0 the switch from the logistic (ln 2) to the larger exponential (1)
    # term makes the slope positive: d/dρ = ½·(−½) + ½·(−1) + (σ'(0)/τ)·(1 − ln 2) = −0.75 + 5·0.3068528 = 0.784264
    chosen_grad, rejected_grad = _pair_gradients(loss_fn)
    assert chosen_grad == pytest.approx(0.7842641, abs=1e-6) and rejected_grad == pytest.approx(-0.7842641, abs=1e-6)


@pytest.mark.parametrize("loss_fn", [
    lambda c, r: simpo_loss(c, r, T(2.0), T(2.0)),
    lambda c, r: cpo_loss(c, r, T(0.0)),
    lambda c, r: orpo_loss(c, r, T(0.0)),
])
def test_reference_free_gradients_push_chosen_up_and_rejected_down(loss_fn):
    chosen, rejected = T(-1.0).requires_grad_(), T(-1.0).requires_grad_()
    loss_fn(chosen, rejected).sum().backward()
    assert chosen.grad.item() < 0 < rejected.grad.item()


def test_nll_term_pushes_chosen_tokens_up():
    token_logps = T(-1, -3, -2, -2).reshape(2, 2).requires_grad_()
    batch = FeedbackBatch(policy_logps=token_logps.sum(-1), lengths=T(2, 2), token_logps=token_logps,
                          token_mask=torch.ones(2, 2))
    chosen_token_nll(batch).backward()
    # −Σ chosen / 2: every chosen token −½, rejected row untouched
    assert token_logps.grad.tolist() == [[-0.5, -0.5], [0.0, 0.0]]


def test_apo_zero_unpaired_gradients():
    # β = 1, r = 0: desirable d/dr (1 − σ(r)) = −¼ (pushed up); undesirable d/dr σ(r) = ¼ (pushed down)
    policy = T(-2.0, -2.0).requires_grad_()
    apo_zero_unpaired_loss(policy, T(-2.0, -2.0), T(1, 0), beta=1.0).sum().backward()
    assert policy.grad.tolist() == pytest.approx([-0.25, 0.25])


# ------------------------------------------------------------------------------------------- registry


@pytest.mark.parametrize(
    "method_id, feedback, needs_reference",
    [
        ("nca", "pairwise", True), ("bco", "pairwise", True), ("sppo-hard", "pairwise", True),
        ("exo", "pairwise", True), ("apo-zero", "pairwise", True), ("aot", "pairwise", True),
        ("discopop", "pairwise", True),
        ("simpo", "pairwise", False), ("cpo", "pairwise", False), ("orpo", "pairwise", False),
        ("npo", "binary", True), ("apo-zero-unpaired", "binary", True),
    ],
)
def test_methods_are_registered(method_id, feedback, needs_reference):
    method = get_method(method_id)
    assert method.feedback == feedback and method.needs_reference is needs_reference
    assert "learning_rate" in method.defaults and method.paper.arxiv
    assert len(method.taxonomy) == 13
    expected_reference = "reference-based" if needs_reference else "reference-free"
    assert method.taxonomy["reference"] == expected_reference
    if feedback == "binary":
        assert method.taxonomy["feedback-kind"] == "binary" and method.taxonomy["feedback-arity"] == "pointwise"


def test_taxonomy_tags_specific_to_these_methods():
    assert get_method("npo").taxonomy["negative-only"] == "yes"
    assert get_method("apo-zero-unpaired").taxonomy["negative-only"] == "no"
    assert get_method("simpo").taxonomy["length-control"] == "yes"
    for method_id in ("cpo", "orpo"):
        assert get_method(method_id).taxonomy["sft"] == "merged"
    for method_id in ("simpo", "cpo", "orpo"):
        assert get_method(method_id).taxonomy["divergence"] == "none"
    assert get_method("simpo").defaults["beta"] == 2.0 and get_method("simpo").defaults["gamma_beta_ratio"] == 0.5
    assert get_method("orpo").defaults["beta"] == 0.1
