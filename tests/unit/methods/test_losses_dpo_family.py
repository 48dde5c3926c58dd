"""The DPO-family losses (methods/dpo_family.py) on hand-computed values (arithmetic in the comments).

Shared pairs (as in tests/unit/methods/test_losses.py): policy chosen (−1, −3), rejected (−2, −1), reference chosen
(−1.5, −2), rejected (−1.5, −2), so h = (0.5 − −0.5, −1 − 1) = (1, −2).
Identities used below, with x the logit and sp(x) = ln(1 + eˣ) = −log σ(−x):
    −log σ(x) = sp(−x),   sp(x) = sp(−x) + x
    cDPO:   −(1−ε) log σ(x) − ε log σ(−x)               = sp(−x) + ε·x
    robust: [−(1−ε) log σ(x) + ε log σ(−x)] / (1 − 2ε)  = sp(−x) − ε·x/(1 − 2ε)
    sp(−0.1) = 0.6443967, sp(0.2) = 0.7981389, sp(−0.4) = 0.5130153, sp(0.4) = 0.9130153,
    sp(−0.5) = 0.4740770, sp(2) = 2.1269280, σ(2) = 0.8807971
"""

import math

import pytest
import torch

from methods.dpo import dpo_loss
from methods.dpo_family import (
    BetaDPOStatistics,
    beta_dpo_adapt,
    beta_dpo_batch_beta,
    beta_dpo_keep_count,
    beta_dpo_loss,
    beta_dpo_select,
    beta_dpo_selection_weights,
    beta_dpo_update_statistics,
    cdpo_loss,
    dpop_loss,
    hinge_loss,
    ipo_loss,
    rdpo_loss,
    robust_dpo_loss,
    slic_hf_loss,
)
from suite.method.registry import FeedbackBatch, all_methods, get_method

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731

PAIRS = (T(-1, -3), T(-2, -1), T(-1.5, -2), T(-1.5, -2))  # h = (1, −2)
IDS = ("ipo", "cdpo", "robust-dpo", "r-dpo", "dpop", "beta-dpo", "slic-hf")


def dpo(*logps, beta):
    return dpo_loss(*logps, beta=beta)[0]


def grads(loss_fn, pc, pr, rc, rr, **kwargs):
    """d(sum of losses)/d(policy chosen), d/d(policy rejected)."""
    pc, pr = T(*pc).requires_grad_(), T(*pr).requires_grad_()
    loss_fn(pc, pr, T(*rc), T(*rr), **kwargs).sum().backward()
    return pc.grad, pr.grad


# ---------------------------------------------------------------------------------------------- IPO


def test_ipo_hand_values_sequence_sums():
    # β = 0.5 → target 1/(2β) = 1; h = (1, −2) → (1 − 1)² = 0, (−2 − 1)² = 9
    assert ipo_loss(*PAIRS, beta=0.5).tolist() == pytest.approx([0.0, 9.0])


def test_ipo_hand_values_length_normalised():
    # chosen lengths (2, 4), rejected (1, 2):
    # pair 1: 0.5/2 − (−0.5)/1 = 0.75 → (0.75 − 1)² = 0.0625
    # pair 2: −1/4 − 1/2 = −0.75     → (−0.75 − 1)² = 3.0625
    losses = ipo_loss(*PAIRS, beta=0.5, chosen_lengths=T(2, 4), rejected_lengths=T(1, 2), length_normalize=True)
    assert losses.tolist() == pytest.approx([0.0625, 3.0625])
    # lengths are ignored unless asked for; all-ones lengths make the two forms agree
    assert ipo_loss(*PAIRS, beta=0.5, chosen_lengths=T(2, 4), rejected_lengths=T(1, 2)).tolist() == pytest.approx([0, 9])
    ones = T(1, 1)
    assert torch.allclose(
        ipo_loss(*PAIRS, beta=0.5, chosen_lengths=ones, rejected_lengths=ones, length_normalize=True),
        ipo_loss(*PAIRS, beta=0.5),
    )
    with pytest.raises(ValueError):
        ipo_loss(*PAIRS, beta=0.5, length_normalize=True)


def test_ipo_minimum_is_at_half_inverse_beta():
    # β = 0.25 → minimum 0 at h = 2, with zero gradient; larger on either side
    beta = 0.25
    for h, expected in ((2.0, 0.0), (1.9, 0.01), (2.1, 0.01)):
        assert ipo_loss(T(h), T(0.0), T(0.0), T(0.0), beta=beta).item() == pytest.approx(expected)
    g_chosen, g_rejected = grads(ipo_loss, (2.0,), (0.0,), (0.0,), (0.0,), beta=beta)
    assert g_chosen.item() == pytest.approx(0.0) and g_rejected.item() == pytest.approx(0.0)


def test_ipo_gradient_signs():
    # β = 0.5, h = 0: d/dpc (h − 1)² = 2(h − 1) = −2 (descent raises chosen), d/dpr = +2
    g_chosen, g_rejected = grads(ipo_loss, (-1.0,), (-1.0,), (-1.0,), (-1.0,), beta=0.5)
    assert g_chosen.item() == pytest.approx(-2.0) and g_rejected.item() == pytest.approx(2.0)
    # past the target (h = 3) IPO pulls the margin back: 2(3 − 1) = +4 on chosen
    g_chosen, _ = grads(ipo_loss, (2.0,), (-1.0,), (-1.0,), (-1.0,), beta=0.5)
    assert g_chosen.item() == pytest.approx(4.0)


# ------------------------------------------------------------------------- conservative / robust DPO


def test_cdpo_hand_values():
    # β = 0.1, ε = 0.1: x = (0.1, −0.2) → sp(−x) + εx = 0.6443967 + 0.01, 0.7981389 − 0.02
    losses = cdpo_loss(*PAIRS, beta=0.1, label_smoothing=0.1)
    assert losses.tolist() == pytest.approx([0.6543967, 0.7781389], abs=1e-6)


def test_robust_dpo_hand_values():
    # β = 0.1, ε = 0.1: sp(−x) − εx/(1 − 2ε) = 0.6443967 − 0.0125, 0.7981389 + 0.025
    losses = robust_dpo_loss(*PAIRS, beta=0.1, label_smoothing=0.1)
    assert losses.tolist() == pytest.approx([0.6318967, 0.8231389], abs=1e-6)
    with pytest.raises(ValueError):
        robust_dpo_loss(*PAIRS, beta=0.1, label_smoothing=0.5)


def test_cdpo_and_robust_with_no_noise_are_dpo():
    for beta in (0.1, 2.0):
        assert torch.allclose(cdpo_loss(*PAIRS, beta=beta, label_smoothing=0.0), dpo(*PAIRS, beta=beta))
        assert torch.allclose(robust_dpo_loss(*PAIRS, beta=beta, label_smoothing=0.0), dpo(*PAIRS, beta=beta))


def test_cdpo_has_a_finite_optimum_robust_does_not():
    # cDPO: d/dx [sp(−x) + εx] = ε − σ(−x) = 0 at x = ln((1 − ε)/ε) = ln 9 for ε = 0.1 (β = 1, so h = x)
    g_chosen, _ = grads(cdpo_loss, (math.log(9),), (0.0,), (0.0,), (0.0,), beta=1.0, label_smoothing=0.1)
    assert g_chosen.item() == pytest.approx(0.0, abs=1e-12)
    # robust: d/dx = −σ(−x) − ε/(1 − 2ε) < 0 everywhere, → −0.125 at large x
    g_chosen, _ = grads(robust_dpo_loss, (50.0,), (0.0,), (0.0,), (0.0,), beta=1.0, label_smoothing=0.1)
    assert g_chosen.item() == pytest.approx(-0.125)


def test_label_smoothed_gradient_signs():
    # h = 0, β = 0.5: cDPO d/dpc = β(ε − ½) = 0.5·(0.1 − 0.5) = −0.2; robust: −β(½ + ε/(1−2ε)) = −0.3125
    g_chosen, g_rejected = grads(cdpo_loss, (-1.0,), (-1.0,), (-1.0,), (-1.0,), beta=0.5, label_smoothing=0.1)
    assert g_chosen.item() == pytest.approx(-0.2) and g_rejected.item() == pytest.approx(0.2)
    g_chosen, g_rejected = grads(robust_dpo_loss, (-1.0,), (-1.0,), (-1.0,), (-1.0,), beta=0.5, label_smoothing=0.1)
    assert g_chosen.item() == pytest.approx(-0.3125) and g_rejected.item() == pytest.approx(0.3125)


# -------------------------------------------------------------------------------------------- R-DPO


def test_rdpo_hand_values():
    # β = 0.1, α = 0.05, chosen lengths (10, 2), rejected (4, 6):
    # pair 1: x = 0.1·1 + 0.05·(10 − 4) = 0.4   → sp(−0.4) = 0.5130153
    # pair 2: x = 0.1·(−2) + 0.05·(2 − 6) = −0.4 → sp(0.4)  = 0.9130153
    losses = rdpo_loss(*PAIRS, beta=0.1, alpha=0.05, chosen_lengths=T(10, 2), rejected_lengths=T(4, 6))
    assert losses.tolist() == pytest.approx([0.5130153, 0.9130153], abs=1e-6)


def test_rdpo_limits():
    # α = 0, or equal lengths, is DPO
    lengths = dict(chosen_lengths=T(10, 2), rejected_lengths=T(4, 6))
    assert torch.allclose(rdpo_loss(*PAIRS, beta=0.1, alpha=0.0, **lengths), dpo(*PAIRS, beta=0.1))
    same = dict(chosen_lengths=T(5, 5), rejected_lengths=T(5, 5))
    assert torch.allclose(rdpo_loss(*PAIRS, beta=0.1, alpha=0.3, **same), dpo(*PAIRS, beta=0.1))


def test_rdpo_does_not_reward_length():
    # same h = 0, β = 1, α = 0.1: chosen 10 tokens longer → x = +1, gradient on chosen −σ(−1) = −0.2689;
    # chosen 10 tokens shorter → x = −1, −σ(1) = −0.7311: preferring the longer answer teaches less
    longer, _ = grads(rdpo_loss, (-1.0,), (-1.0,), (-1.0,), (-1.0,), beta=1.0, alpha=0.1,
                      chosen_lengths=T(20), rejected_lengths=T(10))
    shorter, _ = grads(rdpo_loss, (-1.0,), (-1.0,), (-1.0,), (-1.0,), beta=1.0, alpha=0.1,
                       chosen_lengths=T(10), rejected_lengths=T(20))
    assert longer.item() == pytest.approx(-1 / (1 + math.e))
    assert shorter.item() == pytest.approx(-math.e / (1 + math.e))


# --------------------------------------------------------------------------------------------- DPOP


def test_dpop_hand_values():
    # β = 0.5, λ = 2:
    # pair 1: ℓ(y_w) = −1 ≥ ℓ_ref = −1.5 → penalty 0 → sp(−0.5·1) = 0.4740770
    # pair 2: penalty max(0, −2 − −3) = 1 → x = 0.5·(−2 − 2·1) = −2 → sp(2) = 2.1269280
    assert dpop_loss(*PAIRS, beta=0.5, lambda_=2.0).tolist() == pytest.approx([0.4740770, 2.1269280], abs=1e-6)


def test_dpop_limits():
    assert torch.allclose(dpop_loss(*PAIRS, beta=0.5, lambda_=0.0), dpo(*PAIRS, beta=0.5))
    # chosen above its reference likelihood everywhere → penalty inactive → DPO for any λ
    above = (T(0, 0), T(-2, -1), T(-1.5, -2), T(-1.5, -2))
    assert torch.allclose(dpop_loss(*above, beta=0.5, lambda_=50.0), dpo(*above, beta=0.5))


def test_dpop_gradient_signs():
    # β = 1, λ = 1, ℓ(y_w) = −2 below ℓ_ref = −1: x = −1 − 1·1 = −2;
    # d/dpc = −β(1 + λ)σ(2) = −1.7615942, d/dpr = +βσ(2) = 0.8807971
    g_chosen, g_rejected = grads(dpop_loss, (-2.0,), (-1.0,), (-1.0,), (-1.0,), beta=1.0, lambda_=1.0)
    assert g_chosen.item() == pytest.approx(-2 * 0.8807971, abs=1e-6)
    assert g_rejected.item() == pytest.approx(0.8807971, abs=1e-6)


# ------------------------------------------------------------------------------------------- β-DPO
# Batch of margins M = (1, 2, 3, 10): mean 4, unbiased std √(50/3) = 4.0824829.


def test_beta_dpo_statistics_update():
    # from (0, 0), m = 0.9: M0 = 0.1·4 = 0.4, σ = 0.1·4.0824829 = 0.4082483
    stats = beta_dpo_update_statistics(T(1, 2, 3, 10), BetaDPOStatistics(0.0, 0.0), momentum=0.9)
    assert stats.margin_mean == pytest.approx(0.4) and stats.margin_std == pytest.approx(0.4082483, abs=1e-6)
    # again: M0 = 0.9·0.4 + 0.1·4 = 0.76, σ = 0.9·0.4082483 + 0.4082483 = 0.7756718
    stats = beta_dpo_update_statistics(T(1, 2, 3, 10), stats, momentum=0.9)
    assert stats.margin_mean == pytest.approx(0.76) and stats.margin_std == pytest.approx(0.7756718, abs=1e-6)
    # one pair: its std counts as 0, not NaN
    stats = beta_dpo_update_statistics(T(5.0), BetaDPOStatistics(1.0, 1.0), momentum=0.5)
    assert stats == (pytest.approx(3.0), pytest.approx(0.5))


def test_beta_dpo_selection_weights():
    # M0 = 1, σ = 1: z = (−1, 0, 1) → exp(−z²/2) = (e^−½, 1, e^−½)
    weights = beta_dpo_selection_weights(T(0, 1, 2), BetaDPOStatistics(1.0, 1.0))
    assert weights.tolist() == pytest.approx([math.exp(-0.5), 1.0, math.exp(-0.5)])
    # σ = 0 (before any statistics): finite, largest weight 1 — never all zero
    weights = beta_dpo_selection_weights(T(5, 6), BetaDPOStatistics(0.0, 0.0))
    assert torch.isfinite(weights).all() and weights.max().item() == 1.0


def test_beta_dpo_keep_count():
    # ⌊ρ·B⌋, at least 1: 0.8·4 = 3.2 → 3; 0.8·10 → 8; 0.29·100 → 29 (not 28.999…); 0.8·1 → 1
    assert [beta_dpo_keep_count(b, r) for b, r in ((4, 0.8), (10, 0.8), (100, 0.29), (1, 0.8), (3, 1.0))] == [
        3, 8, 29, 1, 3]


def test_beta_dpo_filtering():
    stats = BetaDPOStatistics(0.4, 0.4082483)
    margins = T(1, 2, 3, 10)
    # closest: |M − M0| = (0.6, 1.6, 2.6, 9.6) → ρ = 0.5 keeps the first two
    keep = beta_dpo_select(margins, stats, keep_ratio=0.5, sample=False)
    assert keep.tolist() == [True, True, False, False]
    # ties go to the earlier pair: M0 = 0, σ = 1, margins (1, −1, 1) all have z² = 1; ⌊0.34·3⌋ = 1 kept
    keep = beta_dpo_select(T(1, -1, 1), BetaDPOStatistics(0.0, 1.0), keep_ratio=0.34, sample=False)
    assert keep.tolist() == [True, False, False]
    # sampling: weights after scaling (1, e^−6.6, e^−19.2, e^−276): two draws take the first two
    for seed in (0, 1, 2):
        generator = torch.Generator().manual_seed(seed)
        keep = beta_dpo_select(margins, stats, keep_ratio=0.5, sample=True, generator=generator)
        assert keep.tolist() == [True, True, False, False]
    # seeded sampling is reproducible
    draws = [
        beta_dpo_select(T(0, 0.5, 1, 1.5, 2, 2.5), BetaDPOStatistics(1.0, 2.0), keep_ratio=0.5,
                        generator=torch.Generator().manual_seed(7)).tolist()
        for _ in range(2)
    ]
    assert draws[0] == draws[1] and sum(draws[0]) == 3


def test_beta_dpo_batch_beta():
    # kept margins (1, 2) → mean 1.5; β = 0.1·(1 + 0.6·(1.5 − 0.4)) = 0.166
    keep = torch.tensor([True, True, False, False])
    beta = beta_dpo_batch_beta(T(1, 2, 3, 10), keep, BetaDPOStatistics(0.4, 1.0), beta=0.1, alpha=0.6)
    assert beta.item() == pytest.approx(0.166)
    # margins far below the threshold would make β negative: clamped at 1e-3
    beta = beta_dpo_batch_beta(T(-100.0), torch.tensor([True]), BetaDPOStatistics(0.0, 1.0), beta=0.1, alpha=0.6)
    assert beta.item() == pytest.approx(1e-3)
    # α = 0: β stays β0
    assert beta_dpo_batch_beta(T(3.0), torch.tensor([True]), BetaDPOStatistics(0.0, 1.0), beta=0.1, alpha=0.0).item() == \
        pytest.approx(0.1)


def test_beta_dpo_adapt_and_loss():
    # statistics (0, 0) → (0.4, 0.4082483); keep (1, 2); β = 0.166 (as above)
    margins = T(1, 2, 3, 10)
    adaptation = beta_dpo_adapt(margins, BetaDPOStatistics(0.0, 0.0), beta=0.1, alpha=0.6, keep_ratio=0.5,
                                momentum=0.9, sample=False)
    assert adaptation.keep.tolist() == [True, True, False, False]
    assert adaptation.beta.item() == pytest.approx(0.166)
    assert adaptation.statistics.margin_mean == pytest.approx(0.4)
    # the loss is DPO at the batch β: sp(−0.166·h) for h = 1, 2 → 0.6135877, 0.5408624
    losses = beta_dpo_loss(margins, T(0, 0, 0, 0), T(0, 0, 0, 0), T(0, 0, 0, 0), beta=adaptation.beta)
    assert losses[:2].tolist() == pytest.approx([0.6135877, 0.5408624], abs=1e-6)
    assert torch.allclose(losses, dpo(margins, T(0, 0, 0, 0), T(0, 0, 0, 0), T(0, 0, 0, 0), beta=0.166))


def margin_batch(margins, state):
    """A pairwise batch whose margins h are ``margins`` (policy chosen = h, everything else 0)."""
    b = len(margins)
    return FeedbackBatch(policy_logps=T(*margins, *[0] * b), lengths=T(*[1] * 2 * b), reference_logps=T(*[0] * 2 * b),
                         state=state)


def test_beta_dpo_objective_keeps_state_across_calls():
    method = get_method("beta-dpo")
    hp = method.hyperparameters({"keep_ratio": 0.5, "filter": "closest"})  # β0 0.1, α 0.6, m 0.9
    state: dict = {}
    # call 1: M0 = 0.4, σ = 0.4082483, β = 0.166, kept (1, 2): loss = (0.6135877 + 0.5408624)/2 = 0.5772250
    loss, metrics = method.objective(margin_batch((1, 2, 3, 10), state), hp)
    assert loss.item() == pytest.approx(0.5772250, abs=1e-6)
    assert state["beta-dpo"]["margin_mean"] == pytest.approx(0.4)
    assert state["beta-dpo"]["margin_std"] == pytest.approx(0.4082483, abs=1e-6)
    assert float(metrics["beta_dpo/beta"]) == pytest.approx(0.166)
    assert float(metrics["beta_dpo/kept_fraction"]) == pytest.approx(0.5)
    # call 2, same margins: M0 = 0.76, σ = 0.7756718, β = 0.1·(1 + 0.6·(1.5 − 0.76)) = 0.1444
    # loss = (sp(−0.1444) + sp(−0.2888))/2 = 0.5913441
    loss, metrics = method.objective(margin_batch((1, 2, 3, 10), state), hp)
    assert state["beta-dpo"]["margin_mean"] == pytest.approx(0.76)
    assert state["beta-dpo"]["margin_std"] == pytest.approx(0.7756718, abs=1e-6)
    assert float(metrics["beta_dpo/beta"]) == pytest.approx(0.1444)
    assert loss.item() == pytest.approx(0.5913441, abs=1e-6)


def test_beta_dpo_objective_sampling_is_seeded():
    method = get_method("beta-dpo")
    hp = method.hyperparameters()  # filter "sample", seed 0, ρ = 0.8
    margins = (0.0, 0.3, -0.2, 0.5, 0.1)
    runs = []
    for _ in range(2):
        state: dict = {}
        runs.append([method.objective(margin_batch(margins, state), hp)[0].item() for _ in range(3)])
        assert "generator" in state["beta-dpo"]
    assert runs[0] == runs[1]


def test_beta_dpo_without_adaptation_is_dpo():
    # α = 0 and ρ = 1: β = β0, every pair kept → the DPO objective
    method = get_method("beta-dpo")
    hp = method.hyperparameters({"alpha": 0.0, "keep_ratio": 1.0})
    batch = FeedbackBatch(policy_logps=T(-1, -3, -2, -1), lengths=T(1, 1, 1, 1), reference_logps=T(-1.5, -2, -1.5, -2))
    loss, _ = method.objective(batch, hp)
    assert loss.item() == pytest.approx((0.6443967 + 0.7981389) / 2, abs=1e-6)


def test_beta_dpo_gradient_signs_and_no_gradient_through_beta():
    method = get_method("beta-dpo")
    hp = method.hyperparameters({"filter": "closest", "keep_ratio": 1.0})
    policy = T(-1, -1, -1, -1).requires_grad_()
    batch = FeedbackBatch(policy_logps=policy, lengths=T(1, 1, 1, 1), reference_logps=T(-1, -1, -1, -1))
    loss, _ = method.objective(batch, hp)
    loss.backward()
    # h = 0 everywhere → β = β0 = 0.1; d/dpc of mean −log σ(βh) = −β·½/B = −0.1·0.5/2 = −0.025
    assert policy.grad.tolist() == pytest.approx([-0.025, -0.025, 0.025, 0.025])


# ----------------------------------------------------------------------------------- SLiC-HF, hinge


def test_slic_hf_hand_values():
    # δ = 1, λ = 0.5, chosen NLL (0.5, 1.5):
    # pair 1: max(0, 1 − (−1) + (−2)) = 0, + 0.5·0.5 = 0.25
    # pair 2: max(0, 1 − (−3) + (−1)) = 3, + 0.5·1.5 = 3.75
    losses = slic_hf_loss(T(-1, -3), T(-2, -1), T(0.5, 1.5), delta=1.0, regularization_weight=0.5)
    assert losses.tolist() == pytest.approx([0.25, 3.75])


def test_slic_hf_objective_is_reference_free():
    # policy (−1, −3 | −2, −1), chosen lengths (2, 3): NLL/token (0.5, 1.0)
    # losses 0 + 0.25, 3 + 0.5 → mean 1.875; no reference log-probs needed
    method = get_method("slic-hf")
    batch = FeedbackBatch(policy_logps=T(-1, -3, -2, -1), lengths=T(2, 3, 1, 1))
    loss, metrics = method.objective(batch, method.hyperparameters())
    assert loss.item() == pytest.approx(1.875)
    assert float(metrics["nll/chosen"]) == pytest.approx(0.75)


def test_slic_hf_gradient_signs():
    # NLL = −ℓ(y_w)/|y_w| with |y_w| = 2, λ = 0.5. Hinge active (ℓ_w − ℓ_l = −2 < δ):
    # d/dℓ_w = −1 (hinge) − λ/2 (NLL) = −1.25, d/dℓ_l = +1
    pc, pr = T(-3.0).requires_grad_(), T(-1.0).requires_grad_()
    slic_hf_loss(pc, pr, -pc / 2, delta=1.0, regularization_weight=0.5).sum().backward()
    assert pc.grad.item() == pytest.approx(-1 - 0.25) and pr.grad.item() == pytest.approx(1.0)
    # margin met (ℓ_w − ℓ_l = 2 ≥ δ): only the NLL term still pulls the chosen response up
    pc, pr = T(-1.0).requires_grad_(), T(-3.0).requires_grad_()
    slic_hf_loss(pc, pr, -pc / 2, delta=1.0, regularization_weight=0.5).sum().backward()
    assert pc.grad.item() == pytest.approx(-0.25) and pr.grad.item() == pytest.approx(0.0)


def test_hinge_hand_values_and_gradient():
    # β = 0.5: relu(1 − 0.5·1) = 0.5, relu(1 − 0.5·(−2)) = 2
    assert hinge_loss(*PAIRS, beta=0.5).tolist() == pytest.approx([0.5, 2.0])
    # past the margin h ≥ 1/β = 2: zero loss, zero gradient
    assert hinge_loss(T(3.0), T(0.0), T(0.0), T(0.0), beta=0.5).item() == 0.0
    g_chosen, g_rejected = grads(hinge_loss, (-1.0,), (-1.0,), (-1.0,), (-1.0,), beta=0.5)
    assert g_chosen.item() == pytest.approx(-0.5) and g_rejected.item() == pytest.approx(0.5)


# ------------------------------------------------------------------------------ all losses together

REFERENCE_LOSSES = {
    "ipo": lambda *l, **k: ipo_loss(*l, beta=0.1),
    "ipo-normalised": lambda *l, **k: ipo_loss(*l, beta=0.1, chosen_lengths=k["cl"], rejected_lengths=k["rl"],
                                               length_normalize=True),
    "cdpo": lambda *l, **k: cdpo_loss(*l, beta=0.1, label_smoothing=0.1),
    "robust": lambda *l, **k: robust_dpo_loss(*l, beta=0.1, label_smoothing=0.1),
    "rdpo": lambda *l, **k: rdpo_loss(*l, beta=0.1, alpha=0.01, chosen_lengths=k["cl"], rejected_lengths=k["rl"]),
    "dpop": lambda *l, **k: dpop_loss(*l, beta=0.3, lambda_=50.0),
    "beta-dpo": lambda *l, **k: beta_dpo_loss(*l, beta=torch.tensor(0.166)),
    "hinge": lambda *l, **k: hinge_loss(*l, beta=0.1),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_LOSSES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_log_ratios_are_finite(name, dtype):
    # margins ±1e4 nats (and a chosen response 1e4 nats below its reference, for DPOP)
    pc = torch.tensor([0.0, -1e4, -1e4], dtype=dtype, requires_grad=True)
    pr = torch.tensor([-1e4, 0.0, -1e4], dtype=dtype, requires_grad=True)
    ref = torch.zeros(3, dtype=dtype)
    lengths = torch.tensor([100.0, 1.0, 50.0], dtype=dtype)
    losses = REFERENCE_LOSSES[name](pc, pr, ref, ref, cl=lengths, rl=lengths.flip(0))
    losses.sum().backward()
    assert torch.isfinite(losses).all() and torch.isfinite(pc.grad).all() and torch.isfinite(pr.grad).all()


@pytest.mark.parametrize("name", sorted(REFERENCE_LOSSES))
def test_identical_responses(name):
    # y_w = y_l (same log-probs, same length): h = 0; the gradients on the two are equal and opposite
    pc, pr = T(-2.0, -5.0).requires_grad_(), T(-2.0, -5.0).requires_grad_()
    ref = T(-2.5, -4.0)
    lengths = T(3.0, 7.0)
    losses = REFERENCE_LOSSES[name](pc, pr, ref, ref, cl=lengths, rl=lengths)
    losses.sum().backward()
    if name != "dpop":  # DPOP's penalty acts on the chosen response only
        assert torch.allclose(pc.grad, -pr.grad)
    expected = {  # at h = 0: logistic losses ln 2; IPO (1/(2·0.1))² = 25; hinge relu(1) = 1
        "ipo": 25.0, "ipo-normalised": 25.0, "hinge": 1.0,
    }.get(name, math.log(2))
    if name == "dpop":  # pair 1 above its reference (no penalty); pair 2 below by 1: x = 0.3·(0 − 50) = −15
        assert losses.tolist() == pytest.approx([math.log(2), math.log1p(math.exp(15))])
    else:
        assert losses.tolist() == pytest.approx([expected, expected])


@pytest.mark.parametrize("name", sorted(REFERENCE_LOSSES))
def test_gradients_push_chosen_up_and_rejected_down(name):
    # a pair the policy gets wrong (h = −1): every loss lowers by raising ℓ(y_w) and lowering ℓ(y_l)
    pc, pr = T(-3.0).requires_grad_(), T(-2.0).requires_grad_()
    losses = REFERENCE_LOSSES[name](pc, pr, T(-3.0), T(-3.0), cl=T(4.0), rl=T(4.0))
    losses.sum().backward()
    assert pc.grad.item() < 0 < pr.grad.item()


# ----------------------------------------------------------------------------------------- registry


def test_registry_entries():
    methods = {m.id: m for m in all_methods()}
    for method_id in IDS:
        method = methods[method_id]
        assert method.feedback == "pairwise"
        assert method.paper.title and method.paper.arxiv
        assert "learning_rate" in method.defaults and len(method.taxonomy) == 13
        assert method.needs_reference == (method_id != "slic-hf")
        assert method.taxonomy["reference"] == ("reference-free" if method_id == "slic-hf" else "reference-based")
    assert methods["r-dpo"].taxonomy["length-control"] == "yes"
    assert methods["dpop"].defaults["lambda"] == 50.0


@pytest.mark.parametrize("method_id", IDS)
def test_objectives_run_on_a_batch_with_their_defaults(method_id):
    method = get_method(method_id)
    policy = T(-4, -6, -5, -5, -7, -4).requires_grad_()  # 3 pairs: chosen block, then rejected block
    batch = FeedbackBatch(
        policy_logps=policy, lengths=T(2, 3, 4, 3, 5, 2),
        reference_logps=T(-4.5, -5.5, -5, -5, -6, -4.5) if method.needs_reference else None,
    )
    loss, metrics = method.objective(batch, method.hyperparameters())
    loss.backward()
    assert loss.dim() == 0 and torch.isfinite(loss)
    assert torch.isfinite(policy.grad).all()
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracy", "rewards/margin"} <= set(metrics)
    assert all(math.isfinite(float(v)) for v in metrics.values())
