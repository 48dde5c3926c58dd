"""Parity of our losses with TRL 1.16.0's own loss code (the oracle in ``tests/support/trl_oracle.py``).

The same random per-token log-probs (with a completion mask of varied lengths) go to TRL's trainer
code and, as sequence sums / lengths / means computed from those tensors, to our pure loss
functions; the results must agree to 1e-6 (float64 throughout, except ORPO whose TRL code upcasts to
float32). Batches include an "extreme" regime where sequence log-ratios reach ± hundreds of nats.

Covered: DPOTrainer loss types sigmoid, hinge, ipo, robust, nca_pair, bco_pair, sppo_hard,
exo_pair, apo_zero, apo_down, aot, aot_unpaired, discopop (cDPO through TRL's smoothed logistic);
KTOTrainer kto and apo_zero_unpaired; ORPOTrainer; CPOTrainer sigmoid (CPO) and simpo (SimPO) — both
the loss functions and, for the registered methods, their objectives on a ``FeedbackBatch``.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("trl")

import torch  # noqa: E402
from support import trl_oracle as oracle  # noqa: E402

from methods.dpo import dpo_loss  # noqa: E402
from methods.dpo_family import cdpo_loss, hinge_loss, ipo_loss, robust_dpo_loss  # noqa: E402
from methods.kto import kto_loss  # noqa: E402
from methods.pairwise_alternatives import (  # noqa: E402
    aot_loss,
    aot_unpaired_loss,
    apo_down_loss,
    apo_zero_loss,
    bco_pair_loss,
    discopop_loss,
    exo_pair_loss,
    nca_loss,
    sppo_hard_loss,
)
from methods.reference_free import cpo_loss, orpo_loss, simpo_loss  # noqa: E402
from methods.unpaired import apo_zero_unpaired_loss  # noqa: E402
from suite.method.registry import FeedbackBatch, get_method  # noqa: E402

TOL = {"rtol": 1e-6, "atol": 1e-6}
# ORPOTrainer.odds_ratio_loss computes in float32 (``.float()``): float32 round-off, not float64's.
ORPO_TOL = {"rtol": 1e-5, "atol": 1e-6}

# (seed, batch size, regime): a few seeds, sizes 1..8, moderate and extreme log-ratios.
DATA = [(0, 1, "moderate"), (1, 4, "moderate"), (2, 8, "moderate"), (3, 3, "extreme"), (4, 8, "extreme")]
DATA_IDS = [f"seed{s}-B{b}-{r}" for s, b, r in DATA]
BETAS = [0.1, 0.5]


def close(actual, expected, tol=TOL):
    torch.testing.assert_close(torch.as_tensor(actual, dtype=torch.float64),
                               torch.as_tensor(expected, dtype=torch.float64), **tol)


@pytest.fixture(scope="module", autouse=True)
def _pinned_trl():
    oracle.require_pinned_trl()


@pytest.fixture(params=DATA, ids=DATA_IDS)
def pairs(request):
    seed, batch_size, regime = request.param
    return oracle.make_pair_batch(seed, batch_size, regime=regime)


def test_synthetic_batches_exercise_sums_and_means():
    """The data is what the brief asks: varied lengths (sums ≠ means) and extreme log-ratios."""
    batch = oracle.make_pair_batch(4, 8, regime="extreme")
    assert batch.tokens.lengths.unique().numel() > 3
    pc, pr, rc, rr = batch.sums()
    margins = (pc - rc) - (pr - rr)
    assert margins.abs().max() > 100 and margins.abs().min() < 50


# ---------------------------------------------------------------------------------------------
# DPOTrainer._compute_loss, loss by loss type
# ---------------------------------------------------------------------------------------------

# loss_type -> (ours(batch, beta) per pair, TRL kwargs beyond beta). Ours get sequence sums (and, for
# the length-normalised IPO, lengths) computed from the very tensors TRL sums itself.
def _dpo(b, beta):
    return dpo_loss(*b.sums(), beta=beta)[0]


def _ipo_normalized(b, beta):
    chosen_lengths, rejected_lengths = b.lengths()
    return ipo_loss(*b.sums(), beta=beta, chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths,
                    length_normalize=True)


DPO_CASES = {
    "sigmoid": (_dpo, {}),
    "hinge": (lambda b, beta: hinge_loss(*b.sums(), beta=beta), {}),
    "ipo": (_ipo_normalized, {}),
    "robust-0.2": (lambda b, beta: robust_dpo_loss(*b.sums(), beta=beta, label_smoothing=0.2),
                   {"loss_type": "robust", "label_smoothing": 0.2}),
    "robust-0": (lambda b, beta: robust_dpo_loss(*b.sums(), beta=beta, label_smoothing=0.0),
                 {"loss_type": "robust", "label_smoothing": 0.0}),
    "nca_pair": (lambda b, beta: nca_loss(*b.sums(), beta=beta), {}),
    "bco_pair": (lambda b, beta: bco_pair_loss(*b.sums(), beta=beta, reward_shift=0.0), {}),
    "sppo_hard": (lambda b, beta: sppo_hard_loss(*b.sums(), beta=beta), {}),
    "exo_pair-1e-3": (lambda b, beta: exo_pair_loss(*b.sums(), beta=beta, label_smoothing=1e-3),
                      {"loss_type": "exo_pair", "label_smoothing": 1e-3}),
    "exo_pair-0.2": (lambda b, beta: exo_pair_loss(*b.sums(), beta=beta, label_smoothing=0.2),
                     {"loss_type": "exo_pair", "label_smoothing": 0.2}),
    "apo_zero": (lambda b, beta: apo_zero_loss(*b.sums(), beta=beta), {}),
    "apo_down": (lambda b, beta: apo_down_loss(*b.sums(), beta=beta), {}),
    "discopop-0.05": (lambda b, beta: discopop_loss(*b.sums(), beta=beta, tau=0.05),
                      {"loss_type": "discopop", "discopop_tau": 0.05}),
    "discopop-1": (lambda b, beta: discopop_loss(*b.sums(), beta=beta, tau=1.0),
                   {"loss_type": "discopop", "discopop_tau": 1.0}),
    "aot-0": (lambda b, beta: aot_loss(*b.sums(), beta=beta, label_smoothing=0.0),
              {"loss_type": "aot", "label_smoothing": 0.0}),
    "aot-0.1": (lambda b, beta: aot_loss(*b.sums(), beta=beta, label_smoothing=0.1),
                {"loss_type": "aot", "label_smoothing": 0.1}),
    "aot_unpaired-0.1": (lambda b, beta: aot_unpaired_loss(*b.sums(), beta=beta, label_smoothing=0.1),
                         {"loss_type": "aot_unpaired", "label_smoothing": 0.1}),
}


def _trl_kwargs(case: str, beta: float) -> tuple[str, dict]:
    kwargs = dict(DPO_CASES[case][1])
    loss_type = kwargs.pop("loss_type", case)
    return loss_type, {"beta": beta, **kwargs}


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("case", list(DPO_CASES))
def test_dpo_trainer_batch_loss(pairs, case, beta):
    """TRL's batch loss (``per_sequence_loss.mean()``) equals the mean of our per-pair losses."""
    ours_fn, _ = DPO_CASES[case]
    loss_type, kwargs = _trl_kwargs(case, beta)
    trl = oracle.trl_dpo_loss(pairs, loss_type, **kwargs)
    ours = ours_fn(pairs, beta)
    assert ours.shape == (pairs.size,)
    assert torch.isfinite(ours).all()
    close(ours.mean(), trl["loss"])


@pytest.mark.parametrize("case", [c for c in DPO_CASES if not c.startswith("aot")])
def test_dpo_trainer_per_pair_losses(case):
    """Pair by pair (one TRL call per pair), on a moderate and an extreme batch."""
    for seed, regime in ((11, "moderate"), (12, "extreme")):
        batch = oracle.make_pair_batch(seed, 6, regime=regime)
        loss_type, kwargs = _trl_kwargs(case, 0.2)
        close(DPO_CASES[case][0](batch, 0.2), oracle.trl_dpo_per_pair_losses(batch, loss_type, **kwargs))


@pytest.mark.parametrize("beta", BETAS)
def test_dpo_rewards_match_trl_logged_rewards(pairs, beta):
    _, chosen_rewards, rejected_rewards = dpo_loss(*pairs.sums(), beta=beta)
    trl = oracle.trl_dpo_loss(pairs, "sigmoid", beta=beta)
    close(chosen_rewards.mean(), trl["rewards/chosen"])
    close(rejected_rewards.mean(), trl["rewards/rejected"])


def test_aot_single_pair_is_the_pair_loss():
    """With B = 1 the sort is trivial, so AOT's per-quantile loss is checkable per pair too."""
    batch = oracle.make_pair_batch(21, 5, regime="extreme")
    for i in range(batch.size):
        one = batch.pair(i)
        close(aot_loss(*one.sums(), beta=0.3, label_smoothing=0.1).squeeze(0),
              oracle.trl_dpo_loss(one, "aot", beta=0.3, label_smoothing=0.1)["loss"])


# ---- IPO: our default is the paper's (sums); TRL's is length-normalised ---------------------------


@pytest.mark.parametrize("beta", BETAS)
def test_ipo_default_is_the_papers_formula_on_sums(pairs, beta):
    pc, pr, rc, rr = pairs.sums()
    h = (pc - rc) - (pr - rr)
    close(ipo_loss(pc, pr, rc, rr, beta=beta), (h - 1 / (2 * beta)) ** 2)


def test_ipo_default_equals_trl_when_every_completion_is_one_token():
    """Sums and means coincide for 1-token completions, so the paper's IPO and TRL's agree there."""
    batch = oracle.make_pair_batch(31, 6, max_completion=1)
    assert (batch.tokens.lengths == 1).all()
    close(ipo_loss(*batch.sums(), beta=0.1), oracle.trl_dpo_per_pair_losses(batch, "ipo", beta=0.1))


def test_ipo_default_differs_from_trl_on_longer_completions():
    batch = oracle.make_pair_batch(32, 6)
    ours = ipo_loss(*batch.sums(), beta=0.1).mean()
    assert not torch.isclose(ours, oracle.trl_dpo_loss(batch, "ipo", beta=0.1)["loss"], rtol=1e-3)


# ---- cDPO: TRL 1.16's "sigmoid" ignores label_smoothing; its smoothed logistic lives in "aot" -------


@pytest.mark.parametrize("label_smoothing", [0.05, 0.3])
def test_cdpo_matches_trl_smoothed_logistic(label_smoothing):
    """cDPO = −(1−ε)·log σ(β h) − ε·log σ(−β h): TRL computes exactly this for ``aot`` on a one-pair
    batch (delta = h there), so cDPO is checked against that code path, pair by pair."""
    batch = oracle.make_pair_batch(41, 6, regime="extreme")
    trl = torch.stack([
        oracle.trl_dpo_loss(batch.pair(i), "aot", beta=0.2, label_smoothing=label_smoothing)["loss"]
        for i in range(batch.size)
    ])
    close(cdpo_loss(*batch.sums(), beta=0.2, label_smoothing=label_smoothing), trl)


def test_cdpo_without_smoothing_is_trl_sigmoid_which_ignores_label_smoothing(pairs):
    close(cdpo_loss(*pairs.sums(), beta=0.1, label_smoothing=0.0).mean(),
          oracle.trl_dpo_loss(pairs, "sigmoid", beta=0.1)["loss"])
    # The premise of cdpo_loss's docstring: TRL 1.16's sigmoid loss does not read label_smoothing.
    close(oracle.trl_dpo_loss(pairs, "sigmoid", beta=0.1, label_smoothing=0.3)["loss"],
          oracle.trl_dpo_loss(pairs, "sigmoid", beta=0.1)["loss"])


# ---- BCO: TRL 1.16's bco_pair has no running shift δ; a shift of the reference by δ/β is one -------


@pytest.mark.parametrize("reward_shift", [-0.7, 0.25, 3.0])
@pytest.mark.parametrize("beta", BETAS)
def test_bco_pair_reward_shift_through_trl(pairs, beta, reward_shift):
    """β·(ℓ − ℓ_ref) − δ = β·(ℓ − (ℓ_ref + δ/β)): TRL's δ-free bco_pair on reference sums shifted by δ/β
    computes the shifted loss, so our δ is checked against TRL's code as well."""
    ours = bco_pair_loss(*pairs.sums(), beta=beta, reward_shift=reward_shift)
    close(ours.mean(), oracle.trl_dpo_loss(pairs, "bco_pair", beta=beta, ref_shift=reward_shift / beta)["loss"])
    ours_tensor_shift = bco_pair_loss(*pairs.sums(), beta=beta, reward_shift=torch.tensor(reward_shift))
    close(ours_tensor_shift, ours)


# ---- DiscoPOP: parity wherever TRL's exp(−ρ) is finite; ours also stays finite beyond -------------


def test_discopop_beyond_trls_overflow():
    """For ρ = β·h < −709.78, TRL's σ(ρ/τ)·exp(−ρ) is 0·∞ = NaN; ours stays finite and equals the logistic
    term (the exponential term's true value underflows to 0). Wherever TRL is finite: parity."""
    batch = oracle.make_pair_batch(51, 4)
    trl_nan = 0
    for i, offset in enumerate([0.0, 300.0, 900.0, 2000.0]):  # rejected reference lowered: ρ ≈ −offset
        one = _with_reference_offsets(batch.pair(i), 0.0, -offset)
        ours = discopop_loss(*one.sums(), beta=1.0)
        assert torch.isfinite(ours).all()
        trl = oracle.trl_dpo_loss(one, "discopop", beta=1.0)["loss"]
        if torch.isfinite(trl):
            close(ours.squeeze(), trl)
        else:
            trl_nan += 1
            pc, pr, rc, rr = one.sums()
            close(ours, -torch.nn.functional.logsigmoid((pc - rc) - (pr - rr)))
    assert trl_nan == 2  # TRL's overflow region is reached by the last two pairs


def _with_reference_offsets(batch: oracle.PairBatch, chosen: float, rejected: float) -> oracle.PairBatch:
    """A copy whose reference sums are shifted by (chosen, rejected), via the per-token reference log-probs
    of the first completion token of each sequence."""
    tokens = batch.tokens.rows(list(range(2 * batch.size)))
    first = tokens.completion_mask[:, 1:].float().argmax(dim=1)
    ref = tokens.reference_tokens.clone()
    for row in range(2 * batch.size):
        ref[row, first[row]] += chosen if row < batch.size else rejected
    tokens.reference_tokens = ref
    return oracle.PairBatch(tokens)


# ---------------------------------------------------------------------------------------------
# KTOTrainer._compute_loss: kto and apo_zero_unpaired
# ---------------------------------------------------------------------------------------------

KTO_DATA = [(0, 4, "moderate"), (1, 9, "moderate"), (2, 7, "extreme")]


def _kto_ours(batch: oracle.UnpairedBatch, **kwargs):
    ex, mm = batch.examples, batch.mismatched
    return kto_loss(ex.policy_sums, ex.reference_sums, batch.labels, mm.policy_sums, mm.reference_sums, **kwargs)


def _swap_mismatched(batch: oracle.UnpairedBatch) -> oracle.UnpairedBatch:
    """Same batch with the mismatched policy/reference swapped: flips the sign of the KL estimate."""
    mm = batch.mismatched
    swapped = oracle.TokenBatch(mm.input_ids, mm.attention_mask, mm.completion_mask, mm.reference_tokens,
                                mm.policy_tokens)
    return oracle.UnpairedBatch(batch.examples, batch.labels, swapped)


@pytest.mark.parametrize("weights", [(1.0, 1.0), (1.33, 0.7)], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("beta", [0.03, 0.5])
@pytest.mark.parametrize("seed,size,regime", KTO_DATA)
def test_kto(seed, size, regime, beta, weights):
    """Batch loss (TRL: nanmean of [desirable losses; undesirable losses]) and the KL reference point
    (TRL: mean of the mismatched log-ratios, clamped at 0), for both signs of the KL estimate."""
    base = oracle.make_unpaired_batch(seed, size, regime=regime)
    kl_values = []
    for batch in (base, _swap_mismatched(base)):
        kwargs = {"beta": beta, "desirable_weight": weights[0], "undesirable_weight": weights[1]}
        losses, rewards, kl = _kto_ours(batch, **kwargs)
        trl = oracle.trl_kto_loss(batch.examples, batch.labels, batch.mismatched, loss_type="kto", **kwargs)
        close(losses.mean(), trl["loss"])
        close(kl, trl["kl"])
        kl_values.append(float(kl))
    assert min(kl_values) == 0.0 and max(kl_values) > 0.0  # the clamp is exercised, and a positive KL


@pytest.mark.parametrize("seed,size,regime", KTO_DATA)
def test_kto_per_example(seed, size, regime):
    batch = oracle.make_unpaired_batch(seed, size, regime=regime)
    for b in (batch, _swap_mismatched(batch)):
        kwargs = {"beta": 0.2, "desirable_weight": 1.2, "undesirable_weight": 0.8}
        losses, _, _ = _kto_ours(b, **kwargs)
        close(losses, oracle.trl_kto_per_example_losses(b, loss_type="kto", **kwargs))


@pytest.mark.parametrize("beta", [0.1, 0.5])
@pytest.mark.parametrize("seed,size,regime", KTO_DATA)
def test_apo_zero_unpaired(seed, size, regime, beta):
    batch = oracle.make_unpaired_batch(seed, size, regime=regime)
    ex = batch.examples
    losses = apo_zero_unpaired_loss(ex.policy_sums, ex.reference_sums, batch.labels, beta=beta)
    close(losses.mean(), oracle.trl_kto_loss(ex, batch.labels, batch.mismatched, loss_type="apo_zero_unpaired",
                                             beta=beta)["loss"])
    close(losses, oracle.trl_kto_per_example_losses(batch, loss_type="apo_zero_unpaired", beta=beta))


# ---------------------------------------------------------------------------------------------
# CPOTrainer: cpo_loss ("sigmoid" = CPO, "simpo" = SimPO) and the whole get_batch_loss_metrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("beta", BETAS)
def test_cpo_preference_term(pairs, beta, label_smoothing):
    """CPO's preference term on sequence SUMS (TRL: average_log_prob=False for "sigmoid")."""
    pc, pr, _, _ = pairs.sums()
    ours = cpo_loss(pc, pr, torch.zeros(()), beta=beta, label_smoothing=label_smoothing, cpo_alpha=1.0)
    close(ours, oracle.trl_cpo_loss(pc, pr, loss_type="sigmoid", beta=beta, label_smoothing=label_smoothing))


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
@pytest.mark.parametrize("beta,gamma_beta_ratio", [(2.0, 0.5), (10.0, 0.3), (0.5, 1.6)])
def test_simpo(pairs, beta, gamma_beta_ratio, label_smoothing):
    """SimPO: ours takes sums and lengths; TRL's cpo_loss takes length-averaged log-probs and an
    absolute γ (simpo_gamma = gamma_beta_ratio·β)."""
    pc, pr, _, _ = pairs.sums()
    chosen_lengths, rejected_lengths = pairs.lengths()
    ours = simpo_loss(pc, pr, chosen_lengths, rejected_lengths, beta=beta, gamma_beta_ratio=gamma_beta_ratio,
                      label_smoothing=label_smoothing)
    mc, mr = pairs.mean_logps()
    close(ours, oracle.trl_cpo_loss(mc, mr, loss_type="simpo", beta=beta, label_smoothing=label_smoothing,
                                    simpo_gamma=gamma_beta_ratio * beta))


LOGIT_DATA = [(0, 1, 1.0), (1, 4, 2.0), (2, 6, 6.0)]
LOGIT_IDS = [f"seed{s}-B{b}-scale{x:g}" for s, b, x in LOGIT_DATA]


@pytest.fixture(params=LOGIT_DATA, ids=LOGIT_IDS)
def logits(request):
    seed, batch_size, scale = request.param
    return oracle.make_logit_batch(seed, batch_size, logit_scale=scale)


def _feedback_batch(batch: oracle.LogitBatch) -> FeedbackBatch:
    """What the trainer hands an objective: sums, lengths, response-token log-probs and mask."""
    mask = batch.completion_mask[:, 1:].to(batch.logits.dtype)
    token_logps = batch.per_token_logps * mask
    return FeedbackBatch(policy_logps=token_logps.sum(dim=1), lengths=mask.sum(dim=1),
                         token_logps=token_logps, token_mask=mask.bool())


@pytest.mark.parametrize("cpo_alpha", [1.0, 0.3])
def test_cpo_full_trainer_loss(logits, cpo_alpha):
    """``CPOTrainer.get_batch_loss_metrics`` (TRL's own log-probs and NLL from logits) vs ours on sums
    and the per-token NLL over all chosen response tokens of the batch."""
    pc, pr, lc, _ = logits.sums_and_lengths()
    nll_sum, count = oracle.chosen_token_nll(logits, include_prompt=False)
    nll = nll_sum.sum() / count.sum()
    trl = oracle.trl_cpo_batch_loss(logits, loss_type="sigmoid", beta=0.1, cpo_alpha=cpo_alpha)
    close(nll, trl["nll_loss"])
    close(cpo_loss(pc, pr, nll, beta=0.1, cpo_alpha=cpo_alpha).mean(), trl["loss"])
    # and the registered method's objective on the FeedbackBatch the trainer would build
    hp = get_method("cpo").hyperparameters({"cpo_alpha": cpo_alpha})
    loss, _ = get_method("cpo").objective(_feedback_batch(logits), hp)
    close(loss, oracle.trl_cpo_batch_loss(logits, loss_type="sigmoid", beta=hp["beta"], cpo_alpha=cpo_alpha)["loss"])


def test_simpo_full_trainer_loss(logits):
    """``CPOTrainer(loss_type="simpo", cpo_alpha=0)`` end to end vs ``simpo_loss`` and the simpo objective."""
    pc, pr, lc, lr = logits.sums_and_lengths()
    hp = get_method("simpo").hyperparameters()
    trl = oracle.trl_cpo_batch_loss(logits, loss_type="simpo", beta=hp["beta"], cpo_alpha=0.0,
                                    label_smoothing=hp["label_smoothing"],
                                    simpo_gamma=hp["gamma_beta_ratio"] * hp["beta"])
    ours = simpo_loss(pc, pr, lc, lr, beta=hp["beta"], gamma_beta_ratio=hp["gamma_beta_ratio"])
    close(ours.mean(), trl["loss"])
    loss, _ = get_method("simpo").objective(_feedback_batch(logits), hp)
    close(loss, trl["loss"])


# ---------------------------------------------------------------------------------------------
# ORPOTrainer: odds_ratio_loss and the whole get_batch_loss_metrics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.1, 1.0])
def test_orpo_odds_ratio_term(pairs, beta):
    """ORPO subtracts TRL's ``odds_ratio_loss`` (β·log σ(log odds ratio)); with zero NLL ours is its negative.
    TRL computes it in float32; ours in float64, and in float32 when given float32."""
    mc, mr = pairs.mean_logps()
    trl = oracle.trl_orpo_odds_ratio(mc, mr, beta=beta)
    assert trl.dtype == torch.float32
    close(orpo_loss(mc, mr, torch.zeros(()), beta=beta), -trl, ORPO_TOL)
    ours32 = orpo_loss(mc.float(), mr.float(), torch.zeros(()), beta=beta)
    close(ours32, -trl)


def test_orpo_full_trainer_loss(logits):
    """``ORPOTrainer.get_batch_loss_metrics``: loss = NLL − mean(β·log σ(log odds)), with TRL's NLL taken
    over prompt AND response tokens of the chosen sequences. Fed that NLL, ``orpo_loss`` matches TRL."""
    pc, pr, lc, lr = logits.sums_and_lengths()
    nll_sum, count = oracle.chosen_token_nll(logits, include_prompt=True)
    nll = nll_sum.sum() / count.sum()
    trl = oracle.trl_orpo_batch_loss(logits, beta=0.1)
    close(nll, trl["nll_loss"])
    close(orpo_loss(pc / lc, pr / lr, nll, beta=0.1).mean(), trl["loss"], ORPO_TOL)


def test_orpo_objective_uses_response_only_nll(logits):
    """Our ``orpo`` objective's NLL is over the chosen RESPONSE tokens (the paper's eq. 2, as CPO's);
    TRL's ORPOTrainer (like the official code by default) also counts the prompt tokens. Apart from that
    NLL term the objective equals TRL's loss."""
    hp = get_method("orpo").hyperparameters()
    loss, metrics = get_method("orpo").objective(_feedback_batch(logits), hp)
    trl = oracle.trl_orpo_batch_loss(logits, beta=hp["beta"])
    response_sum, response_count = oracle.chosen_token_nll(logits, include_prompt=False)
    response_nll = response_sum.sum() / response_count.sum()
    close(metrics["nll/token"], response_nll)
    close(loss, trl["loss"] - trl["nll_loss"] + response_nll, ORPO_TOL)


# ---------------------------------------------------------------------------------------------
# Registered objectives of the DPO family on a FeedbackBatch, against TRL's batch loss
# ---------------------------------------------------------------------------------------------

# method id -> (TRL loss type, TRL kwargs from the method's hyper-parameters)
OBJECTIVES = {
    "dpo": ("sigmoid", lambda hp: {}),
    "ipo": ("ipo", lambda hp: {}),  # with length_normalize=True (set below); the default is the paper's
    "robust-dpo": ("robust", lambda hp: {"label_smoothing": hp["label_smoothing"]}),
    "nca": ("nca_pair", lambda hp: {}),
    "sppo-hard": ("sppo_hard", lambda hp: {}),
    "exo": ("exo_pair", lambda hp: {"label_smoothing": hp["label_smoothing"]}),
    "apo-zero": ("apo_zero", lambda hp: {}),
    "aot": ("aot", lambda hp: {"label_smoothing": hp["label_smoothing"]}),
    "discopop": ("discopop", lambda hp: {"discopop_tau": hp["tau"]}),
}


def _pair_feedback(batch: oracle.PairBatch) -> FeedbackBatch:
    tok = batch.tokens
    mask = tok.shift_mask
    return FeedbackBatch(policy_logps=tok.policy_sums, reference_logps=tok.reference_sums, lengths=tok.lengths,
                         token_logps=tok.policy_tokens * mask, token_mask=mask.bool())


@pytest.mark.parametrize("method_id", list(OBJECTIVES))
def test_registered_objective_matches_trl(pairs, method_id):
    method = get_method(method_id)
    hp = method.hyperparameters({"length_normalize": True} if method_id == "ipo" else None)
    loss_type, trl_kwargs = OBJECTIVES[method_id]
    loss, _ = method.objective(_pair_feedback(pairs), hp)
    close(loss, oracle.trl_dpo_loss(pairs, loss_type, beta=hp["beta"], **trl_kwargs(hp))["loss"])


def test_bco_objective_matches_trl_with_its_shift(pairs):
    """The bco objective's first training step uses δ = the batch's mean reward; TRL 1.16 with the
    reference shifted by δ/β computes the same loss."""
    method = get_method("bco")
    hp = method.hyperparameters()
    loss, metrics = method.objective(_pair_feedback(pairs), hp)
    delta = float(metrics["bco/reward_shift"])
    pc, pr, rc, rr = pairs.sums()
    expected_delta = float(hp["beta"] * torch.cat((pc - rc, pr - rr)).mean())
    assert math.isclose(delta, expected_delta, rel_tol=1e-5, abs_tol=1e-6)  # the objective averages in float32
    trl = oracle.trl_dpo_loss(pairs, "bco_pair", beta=hp["beta"], ref_shift=delta / hp["beta"])
    close(loss, trl["loss"])


def test_kto_and_apo_zero_unpaired_objectives_match_trl():
    batch = oracle.make_unpaired_batch(5, 8)
    ex, mm = batch.examples, batch.mismatched
    fb = FeedbackBatch(policy_logps=ex.policy_sums, reference_logps=ex.reference_sums, lengths=ex.lengths,
                       labels=batch.labels.long(), mismatched_policy_logps=mm.policy_sums,
                       mismatched_reference_logps=mm.reference_sums)
    for method_id, loss_type in (("kto", "kto"), ("apo-zero-unpaired", "apo_zero_unpaired")):
        method = get_method(method_id)
        hp = method.hyperparameters()
        weights = {k: hp[k] for k in ("desirable_weight", "undesirable_weight") if k in hp}
        loss, _ = method.objective(fb, hp)
        close(loss, oracle.trl_kto_loss(ex, batch.labels, mm, loss_type=loss_type, beta=hp["beta"], **weights)["loss"])
