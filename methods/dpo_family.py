"""Pairwise variants of DPO: IPO, conservative and robust DPO, R-DPO, DPO-Positive, β-DPO, and SLiC-HF.

Notation as in ``methods/dpo.py``: ℓ(y) = Σ_t log π_θ(y_t | x, y_<t) over response tokens, ℓ_ref(y) the
same under the frozen reference, Δ(y) = ℓ(y) − ℓ_ref(y), h = Δ(y_w) − Δ(y_l), |y| the response length
in tokens. Every loss below is a pure function of per-sequence log-probs returning per-pair losses [B];
the objectives only unpack the batch, average, and log (β-DPO's objective also keeps its running
statistics in ``batch.state``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from methods.common import pairwise_reward_metrics, taxonomy
from suite.method.registry import FeedbackBatch, Method, Paper, register


def _margin(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps):
    """h = [ℓ(y_w) − ℓ_ref(y_w)] − [ℓ(y_l) − ℓ_ref(y_l)]."""
    return (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)


def _reference_metrics(batch: FeedbackBatch, beta: float) -> dict:
    """TRL's implicit-reward metrics: rewards β·(ℓ − ℓ_ref), detached."""
    policy_chosen, policy_rejected, reference_chosen, reference_rejected = batch.pairwise()
    return pairwise_reward_metrics(beta * (policy_chosen - reference_chosen), beta * (policy_rejected - reference_rejected))


# ---------------------------------------------------------------------------------------------- IPO


def ipo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    chosen_lengths: torch.Tensor | None = None,
    rejected_lengths: torch.Tensor | None = None,
    length_normalize: bool = False,
) -> torch.Tensor:
    """IPO (Azar et al. 2023, "A General Theoretical Paradigm to Understand Learning from Human
    Preferences", arXiv 2310.12036, eq. 17), per pair:

        loss = (h − 1/(2τ))²,   τ = beta

    The loss is minimal (0) at h = 1/(2τ): IPO regresses the log-ratio margin onto a fixed target
    instead of pushing it to infinity as DPO's logistic loss does.

    ``length_normalize=False`` (default) is the paper's formula: h from sequence-level sums ℓ(y).
    ``length_normalize=True`` first divides each sequence's policy and reference log-probs by its length
    (clamped at 1), i.e. h = Δ(y_w)/|y_w| − Δ(y_l)/|y_l|, which is what TRL's
    ``DPOTrainer(loss_type="ipo")`` computes (its comment says the IPO authors confirmed the paper's
    results used this normalised form, which the paper text does not state). The two differ whenever
    |y| ≠ 1, and the same τ means a very different target margin: with sums 1/(2τ) nats per sequence,
    normalised 1/(2τ) nats per token.
    """
    chosen_logratios = policy_chosen_logps - reference_chosen_logps
    rejected_logratios = policy_rejected_logps - reference_rejected_logps
    if length_normalize:
        if chosen_lengths is None or rejected_lengths is None:
            raise ValueError("ipo_loss: length_normalize=True needs chosen_lengths and rejected_lengths")
        chosen_logratios = chosen_logratios / chosen_lengths.clamp(min=1)
        rejected_logratios = rejected_logratios / rejected_lengths.clamp(min=1)
    return (chosen_logratios - rejected_logratios - 1 / (2 * beta)) ** 2


def ipo_objective(batch: FeedbackBatch, hp: dict):
    chosen_lengths, rejected_lengths = batch.pairwise_lengths()
    losses = ipo_loss(
        *batch.pairwise(), beta=hp["beta"], chosen_lengths=chosen_lengths, rejected_lengths=rejected_lengths,
        length_normalize=bool(hp["length_normalize"]),
    )
    return losses.mean(), _reference_metrics(batch, hp["beta"])


# ------------------------------------------------------------------------- conservative / robust DPO


def cdpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float,
) -> torch.Tensor:
    """Conservative DPO (E. Mitchell 2023, "A note on DPO with noisy preferences & relationship to IPO";
    no arXiv id), per pair:

        loss = −(1 − ε) · log σ(β·h) − ε · log σ(−β·h),   ε = label_smoothing

    DPO with label smoothing: each label is assumed flipped with probability ε. ε = 0 is DPO. Unlike
    DPO the loss is minimal at a finite margin, β·h = log((1 − ε)/ε). This is what TRL's
    ``loss_type="sigmoid"`` with ``label_smoothing`` computed in earlier TRL releases; TRL 1.16's sigmoid loss
    ignores ``label_smoothing`` (only its aot/exo losses read it), so parity is with the formula above.
    """
    logits = beta * _margin(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)


def robust_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float,
) -> torch.Tensor:
    """Robust DPO (Chowdhury et al. 2024, "Provably Robust DPO: Aligning Language Models with Noisy
    Feedback", arXiv 2403.00409), per pair:

        loss = [−(1 − ε) · log σ(β·h) + ε · log σ(−β·h)] / (1 − 2ε),   ε = label_smoothing ∈ [0, ½)

    An unbiased estimate of the clean-label DPO loss when labels are flipped with probability ε (note
    the + on the flipped term, the opposite of cDPO's). ε = 0 is DPO. Same as TRL's
    ``loss_type="robust"``. The loss is unbounded below as h → +∞ (slope ε·β/(1 − 2ε)).
    """
    if not 0 <= label_smoothing < 0.5:
        raise ValueError(f"robust_dpo_loss: label_smoothing must lie in [0, 0.5), got {label_smoothing}")
    logits = beta * _margin(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return (-(1 - label_smoothing) * F.logsigmoid(logits) + label_smoothing * F.logsigmoid(-logits)) / (
        1 - 2 * label_smoothing
    )


def cdpo_objective(batch: FeedbackBatch, hp: dict):
    losses = cdpo_loss(*batch.pairwise(), beta=hp["beta"], label_smoothing=hp["label_smoothing"])
    return losses.mean(), _reference_metrics(batch, hp["beta"])


def robust_dpo_objective(batch: FeedbackBatch, hp: dict):
    losses = robust_dpo_loss(*batch.pairwise(), beta=hp["beta"], label_smoothing=hp["label_smoothing"])
    return losses.mean(), _reference_metrics(batch, hp["beta"])


# -------------------------------------------------------------------------------------------- R-DPO


def rdpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    alpha: float,
    chosen_lengths: torch.Tensor,
    rejected_lengths: torch.Tensor,
) -> torch.Tensor:
    """R-DPO, length-regularised DPO (Park et al. 2024, "Disentangling Length from Quality in Direct
    Preference Optimization", arXiv 2403.19159), per pair:

        loss = −log σ(β·h + α·(|y_w| − |y_l|))

    Derivation (the sign matters): the RLHF objective with a length penalty, max E[r − α|y|] − β·KL,
    has the optimum π* ∝ π_ref·exp((r − α|y|)/β), so r = β·Δ(y) + α|y| + const and the Bradley–Terry
    likelihood is σ(β·h + α(|y_w| − |y_l|)). The length term thus *explains away* the part of a
    preference that length accounts for: a pair whose chosen response is longer already has a larger
    logit and gets a smaller gradient, one whose chosen response is shorter gets a larger one, so
    the implicit reward learns less of a length preference. α = 0 is DPO. (Writing the term with a
    minus sign, −α(|y_w| − |y_l|), as the survey's table writes it, would reward verbosity instead.)
    """
    logits = beta * _margin(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return -F.logsigmoid(logits + alpha * (chosen_lengths - rejected_lengths))


def rdpo_objective(batch: FeedbackBatch, hp: dict):
    chosen_lengths, rejected_lengths = batch.pairwise_lengths()
    losses = rdpo_loss(
        *batch.pairwise(), beta=hp["beta"], alpha=hp["alpha"], chosen_lengths=chosen_lengths,
        rejected_lengths=rejected_lengths,
    )
    metrics = _reference_metrics(batch, hp["beta"])
    metrics["length/chosen_minus_rejected"] = (chosen_lengths - rejected_lengths).float().mean()
    return losses.mean(), metrics


# --------------------------------------------------------------------------------------------- DPOP


def dpop_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    lambda_: float,
) -> torch.Tensor:
    """DPO-Positive (Pal et al. 2024, "Smaug: Fixing Failure Modes of Preference Optimisation with
    DPO-Positive", arXiv 2402.13228), per pair:

        loss = −log σ(β · (h − λ · max(0, ℓ_ref(y_w) − ℓ(y_w))))

    The penalty is active only while the policy gives the chosen response a lower likelihood than the
    reference does, so DPO can no longer raise the margin by lowering both responses' likelihoods.
    λ = 0 is DPO.
    """
    margin = _margin(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    penalty = (reference_chosen_logps - policy_chosen_logps).clamp(min=0)
    return -F.logsigmoid(beta * (margin - lambda_ * penalty))


def dpop_objective(batch: FeedbackBatch, hp: dict):
    policy_chosen, _, reference_chosen, _ = batch.pairwise()
    losses = dpop_loss(*batch.pairwise(), beta=hp["beta"], lambda_=hp["lambda"])
    metrics = _reference_metrics(batch, hp["beta"])
    metrics["dpop/penalty"] = (reference_chosen - policy_chosen).clamp(min=0).detach().mean()
    return losses.mean(), metrics


# ------------------------------------------------------------------------------------------- β-DPO
#
# β-DPO (Wu et al. 2024, "β-DPO: Direct Preference Optimization with Dynamic β", arXiv 2407.08639),
# as the authors' code (github.com/junkangwu/beta-DPO, trainers.py) runs it, per batch:
#   1. margins M_i = h_i (the log-ratio margin, not multiplied by β0: the code's "gap"; the paper calls it
#      the implicit reward discrepancy, and β0 would only rescale α);
#   2. running statistics, updated first, from all margins of the batch (EMA, momentum m):
#        M0 ← m·M0 + (1 − m)·mean(M),   σ ← m·σ + (1 − m)·std(M)      (both start at 0, as in the code);
#   3. β-guided filtering: weights w_i = exp(−(M_i − M0)² / (2σ²)); keep ρ·B pairs (at least one),
#      drawn by weight without replacement ("sample", as the paper and code do; seeded here), or the
#      ρ·B pairs with the largest weight, i.e. closest to M0 ("closest", fully deterministic);
#   4. β = β0 · (1 + α·(mean of the kept margins − M0)), clamped at 1e-3 (as in the code), no gradient;
#   5. loss = DPO at that β, averaged over the kept pairs.


class BetaDPOStatistics(NamedTuple):
    margin_mean: float  # M0, the running threshold
    margin_std: float  # σ, the running spread of margins


class BetaDPOAdaptation(NamedTuple):
    beta: torch.Tensor  # the batch's β (0-dim, detached)
    keep: torch.Tensor  # [B] bool: pairs that survive the filtering
    statistics: BetaDPOStatistics  # the updated running statistics


def beta_dpo_update_statistics(
    margins: torch.Tensor, statistics: BetaDPOStatistics, *, momentum: float
) -> BetaDPOStatistics:
    """EMA update of (M0, σ) with the batch's mean and (unbiased) std of margins; std is 0 for one pair."""
    margins = margins.detach().double()
    batch_mean = margins.mean().item()
    batch_std = margins.std().item() if margins.numel() > 1 else 0.0
    return BetaDPOStatistics(
        momentum * statistics.margin_mean + (1 - momentum) * batch_mean,
        momentum * statistics.margin_std + (1 - momentum) * batch_std,
    )


def beta_dpo_selection_weights(margins: torch.Tensor, statistics: BetaDPOStatistics) -> torch.Tensor:
    """Gaussian weights exp(−(M − M0)²/(2σ²)) scaled so the largest is 1 (sampling is scale-free, and the
    scaling keeps them from all underflowing to 0 when σ is tiny). σ is floored at 1e-8. float64 [B]."""
    z = (margins.detach().double() - statistics.margin_mean) / max(statistics.margin_std, 1e-8)
    log_weights = -0.5 * z**2
    return torch.exp(log_weights - log_weights.max())


def beta_dpo_keep_count(batch_size: int, keep_ratio: float) -> int:
    """⌊ρ·B⌋ as the authors' code computes it, but at least one pair (and at most B)."""
    return min(batch_size, max(1, math.floor(keep_ratio * batch_size + 1e-9)))


def beta_dpo_select(
    margins: torch.Tensor,
    statistics: BetaDPOStatistics,
    *,
    keep_ratio: float,
    sample: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """β-guided filtering: a [B] bool mask of the kept pairs.

    ``sample=True``: ⌊ρ·B⌋ pairs drawn without replacement with probability ∝ the Gaussian weight (the
    paper's and the authors' code's rule), from ``generator`` (a CPU generator; None = torch's global
    one). ``sample=False``: the ⌊ρ·B⌋ pairs of largest weight, i.e. nearest M0 in standardised distance;
    ties go to the earlier pair.
    """
    weights = beta_dpo_selection_weights(margins, statistics).cpu()
    count = beta_dpo_keep_count(weights.numel(), keep_ratio)
    if sample:
        index = torch.multinomial(weights, count, replacement=False, generator=generator)
    else:
        index = torch.argsort(-weights, stable=True)[:count]
    keep = torch.zeros(weights.numel(), dtype=torch.bool)
    keep[index] = True
    return keep.to(margins.device)


def beta_dpo_batch_beta(
    margins: torch.Tensor, keep: torch.Tensor, statistics: BetaDPOStatistics, *, beta: float, alpha: float,
    min_beta: float = 1e-3,
) -> torch.Tensor:
    """β_batch = β0 · (1 + α · (mean of kept margins − M0)), clamped at ``min_beta``; no gradient."""
    kept_mean = margins.detach()[keep].double().mean()
    return (beta * (1 + alpha * (kept_mean - statistics.margin_mean))).clamp(min=min_beta).to(margins.dtype)


def beta_dpo_adapt(
    margins: torch.Tensor,
    statistics: BetaDPOStatistics,
    *,
    beta: float,
    alpha: float,
    keep_ratio: float,
    momentum: float,
    sample: bool = True,
    generator: torch.Generator | None = None,
) -> BetaDPOAdaptation:
    """One batch of β-DPO's adaptation (steps 2–4 above): update the running statistics, filter, set β.

    Pure apart from drawing from ``generator`` when sampling: the statistics come in and go out.
    """
    statistics = beta_dpo_update_statistics(margins, statistics, momentum=momentum)
    keep = beta_dpo_select(margins, statistics, keep_ratio=keep_ratio, sample=sample, generator=generator)
    batch_beta = beta_dpo_batch_beta(margins, keep, statistics, beta=beta, alpha=alpha)
    return BetaDPOAdaptation(batch_beta, keep, statistics)


def beta_dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float | torch.Tensor,
) -> torch.Tensor:
    """β-DPO's loss (Wu et al. 2024, "β-DPO: Direct Preference Optimization with Dynamic β",
    arXiv 2407.08639), per pair:

        loss = −log σ(β_batch · h),   β_batch from :func:`beta_dpo_adapt` (detached here)

    i.e. DPO at the batch's dynamic β. The objective averages it over the pairs the filtering keeps.
    """
    beta = beta.detach() if isinstance(beta, torch.Tensor) else beta
    margin = _margin(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return -F.logsigmoid(beta * margin)


BETA_DPO_STATE = "beta-dpo"


def beta_dpo_objective(batch: FeedbackBatch, hp: dict):
    """β-DPO on one batch; the running (M0, σ) and the filter's generator persist in ``batch.state``.

    The state is updated on every call, as the authors' code does for every micro-batch (and also on
    evaluation batches, when the trainer computes an evaluation loss).
    """
    if hp["filter"] not in ("sample", "closest"):
        raise ValueError(f"beta-dpo: filter must be 'sample' or 'closest', got {hp['filter']!r}")
    state = batch.state.setdefault(BETA_DPO_STATE, {"margin_mean": 0.0, "margin_std": 0.0})
    sample = hp["filter"] == "sample"
    if sample and "generator" not in state:
        state["generator"] = torch.Generator().manual_seed(int(hp["filter_seed"]))
    policy_chosen, policy_rejected, reference_chosen, reference_rejected = batch.pairwise()
    margins = _margin(policy_chosen, policy_rejected, reference_chosen, reference_rejected)
    adaptation = beta_dpo_adapt(
        margins, BetaDPOStatistics(state["margin_mean"], state["margin_std"]), beta=hp["beta"], alpha=hp["alpha"],
        keep_ratio=hp["keep_ratio"], momentum=hp["momentum"], sample=sample, generator=state.get("generator"),
    )
    state["margin_mean"], state["margin_std"] = adaptation.statistics
    losses = beta_dpo_loss(*batch.pairwise(), beta=adaptation.beta)
    metrics = _reference_metrics(batch, hp["beta"])  # rewards at β0, as the authors' code logs them
    metrics.update({
        "beta_dpo/beta": adaptation.beta.detach(),
        "beta_dpo/margin_mean": adaptation.statistics.margin_mean,
        "beta_dpo/margin_std": adaptation.statistics.margin_std,
        "beta_dpo/kept_fraction": adaptation.keep.float().mean(),
    })
    return losses[adaptation.keep].mean(), metrics


# ----------------------------------------------------------------------------------- SLiC-HF, hinge


def slic_hf_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    chosen_nll: torch.Tensor,
    *,
    delta: float,
    regularization_weight: float,
) -> torch.Tensor:
    """SLiC-HF (Zhao et al. 2023, "SLiC-HF: Sequence Likelihood Calibration with Human Feedback",
    arXiv 2305.10425), per pair:

        loss = max(0, δ − ℓ(y_w) + ℓ(y_l)) + λ · NLL(y_ref)

    A rank-calibration hinge on the policy's sequence log-likelihoods (no reference model) plus a
    cross-entropy regulariser on the SFT target y_ref. Here y_ref is the chosen response and
    ``chosen_nll`` its per-token NLL, −ℓ(y_w)/|y_w| (the paper's regulariser is the SFT cross-entropy
    loss; per-token averaging keeps λ independent of the response length). This is why the signature is
    not the 4-log-prob one: nothing here involves π_ref.
    """
    return (delta - policy_chosen_logps + policy_rejected_logps).clamp(min=0) + regularization_weight * chosen_nll


def hinge_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
) -> torch.Tensor:
    """TRL's ``DPOTrainer(loss_type="hinge")``, per pair:

        loss = max(0, 1 − β·h)

    The SLiC calibration hinge moved onto the reference-relative margin h, with margin δ = 1/β and no
    regulariser (as in RSO, Liu et al. 2023, arXiv 2309.06657). Kept for parity with TRL; the
    ``slic-hf`` entry uses the paper's reference-free :func:`slic_hf_loss`.
    """
    margin = _margin(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return torch.relu(1 - beta * margin)


def slic_hf_objective(batch: FeedbackBatch, hp: dict):
    policy_chosen, policy_rejected, _, _ = batch.pairwise()
    chosen_mean_logps, _ = batch.pairwise_mean_logps()
    chosen_nll = -chosen_mean_logps
    losses = slic_hf_loss(
        policy_chosen, policy_rejected, chosen_nll, delta=hp["delta"], regularization_weight=hp["regularization_weight"]
    )
    # No reference: the "rewards" logged are the sequence log-likelihoods SLiC calibrates.
    metrics = pairwise_reward_metrics(policy_chosen, policy_rejected)
    metrics["nll/chosen"] = chosen_nll.detach().mean()
    return losses.mean(), metrics


# ----------------------------------------------------------------------------------------- registry

# Paper defaults where the paper gives one for LLM training; otherwise a named, configurable choice.
# lr 5e-6 throughout, as UNA's comparison (arXiv 2408.15339) uses for DPO-style methods.

register(
    Method(
        id="ipo",
        name="IPO",
        paper=Paper("A General Theoretical Paradigm to Understand Learning from Human Preferences", "2310.12036"),
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # τ (beta) = 0.1: the paper's experiments are synthetic and fix no LLM value; 0.1 is DPO's and
        # TRL's default. length_normalize=False: the paper's formula (sums); True gives TRL's "ipo".
        defaults={"beta": 0.1, "length_normalize": False, "learning_rate": 5e-6},
        objective=ipo_objective,
        description="Squared regression of the log-ratio margin onto 1/(2τ) instead of a logistic loss.",
    )
)

register(
    Method(
        id="cdpo",
        name="cDPO",
        # Mitchell's note has no arXiv id; the id given is DPO's, which the note amends.
        paper=Paper(
            "A note on DPO with noisy preferences & relationship to IPO (E. Mitchell, 2023; amends DPO)",
            "2305.18290",
        ),
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # ε = 0.1: the note fixes no value; a 10 % assumed flip rate, configurable. β as DPO's default.
        defaults={"beta": 0.1, "label_smoothing": 0.1, "learning_rate": 5e-6},
        objective=cdpo_objective,
        description="DPO with label smoothing ε: each preference assumed flipped with probability ε.",
    )
)

register(
    Method(
        id="robust-dpo",
        name="Robust DPO",
        paper=Paper("Provably Robust DPO: Aligning Language Models with Noisy Feedback", "2403.00409"),
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # ε = 0.1: the lowest of the flip rates the paper experiments with (it sets ε to the assumed
        # noise rate of the data); configurable. β as DPO's default.
        defaults={"beta": 0.1, "label_smoothing": 0.1, "learning_rate": 5e-6},
        objective=robust_dpo_objective,
        description="Unbiased de-noised DPO loss for labels flipped with a known rate ε.",
    )
)

register(
    Method(
        id="r-dpo",
        name="R-DPO",
        paper=Paper("Disentangling Length from Quality in Direct Preference Optimization", "2403.19159"),
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference", length_control="yes"),
        needs_reference=True,
        # β = 0.1 (DPO's); α = 0.01 per token of length difference: the paper sweeps α with β and its
        # chosen values could not be confirmed here, so this is a named, configurable choice.
        defaults={"beta": 0.1, "alpha": 0.01, "learning_rate": 5e-6},
        objective=rdpo_objective,
        description="DPO with the length difference α(|y_w| − |y_l|) added to the margin, so length is not rewarded.",
    )
)

register(
    Method(
        id="dpop",
        name="DPOP",
        paper=Paper("Smaug: Fixing Failure Modes of Preference Optimisation with DPO-Positive", "2402.13228"),
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # λ = 50 and β = 0.3: the Smaug paper's DPOP settings as recalled; not re-checked against the
        # paper text here, so treat them as configurable defaults.
        defaults={"beta": 0.3, "lambda": 50.0, "learning_rate": 5e-6},
        objective=dpop_objective,
        description="DPO plus a penalty whenever the chosen response falls below its reference likelihood.",
    )
)

register(
    Method(
        id="beta-dpo",
        name="β-DPO",
        paper=Paper("β-DPO: Direct Preference Optimization with Dynamic β", "2407.08639"),
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        defaults={
            "beta": 0.1,  # β0: the paper's and the authors' README example value (DPO's default)
            "alpha": 0.6,  # scaling factor a = 0.6: the authors' README example (Pythia-2.8B on HH)
            "keep_ratio": 0.8,  # ρ: the README's "filtering ratio 0.2" (mode_weight) drops 20 %, keeps 80 %
            "momentum": 0.9,  # m = 0.9 for the moving averages of M0 and σ: the paper and code (gamma=0.9)
            "filter": "sample",  # the paper's weighted sampling (seeded below); "closest" is deterministic
            "filter_seed": 0,  # seed of the filter's own generator, so runs are reproducible
            "learning_rate": 5e-6,
        },
        objective=beta_dpo_objective,
        description="DPO with a per-batch β moved by the batch's margin against a running mean, and outlier pairs filtered.",
    )
)

register(
    Method(
        id="slic-hf",
        name="SLiC-HF",
        paper=Paper("SLiC-HF: Sequence Likelihood Calibration with Human Feedback", "2305.10425"),
        feedback="pairwise",
        # Reference-free; the tie to the SFT model is a cross-entropy term on SFT targets, not a divergence
        # to a reference policy, and that SFT term is part of the one loss (merged).
        taxonomy=taxonomy(reward_form="preference", reference="reference-free", divergence="none", sft="merged"),
        needs_reference=False,
        # δ = 1 (the margin TRL's hinge also uses) and λ = 0.5: the paper's exact values could not be
        # confirmed here; both configurable.
        defaults={"delta": 1.0, "regularization_weight": 0.5, "learning_rate": 5e-6},
        objective=slic_hf_objective,
        description="Hinge on the policy's log-likelihood gap between chosen and rejected plus NLL on the chosen response.",
    )
)
