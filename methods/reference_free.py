"""Reference-free pairwise methods: SimPO, CPO and ORPO (the last two merge SFT into the preference loss).

No reference model: the losses use the policy's own log-probs only, ℓ(y) = Σ response-token log-probs
(sums) or ℓ(y)/|y| (length-averaged), as each paper does. Pure ``*_loss`` functions return per-pair losses
[B]; a batch-level NLL term (``chosen_nll``, a scalar) is broadcast onto every pair so that the mean over
pairs equals TRL's ``losses.mean() + nll``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.common import pairwise_reward_metrics, taxonomy
from suite.method.registry import FeedbackBatch, Method, Paper, register

SIMPO_PAPER = Paper("SimPO: Simple Preference Optimization with a Reference-Free Reward", "2405.14734")
CPO_PAPER = Paper(
    "Contrastive Preference Optimization: Pushing the Boundaries of LLM Performance in Machine Translation",
    "2401.08417",
)
ORPO_PAPER = Paper("ORPO: Monolithic Preference Optimization without Reference Model", "2403.07691")


def chosen_token_nll(batch: FeedbackBatch) -> torch.Tensor:
    """Per-token NLL of the chosen responses (the first half of the rows), a scalar:

        NLL = −Σ_{chosen rows, response tokens} log π(y_t | x, y_<t) / Σ_{chosen rows} |y|

    TRL's CPO ``nn.CrossEntropyLoss()`` (mean over all chosen response tokens of the batch, not a mean of
    per-sequence means). From ``token_logps``/``token_mask`` when the batch has them, else from the
    sequence sums and lengths (the same number: Σ_i ℓ(y_w,i) / Σ_i |y_w,i|).
    """
    if batch.token_logps is not None and batch.token_mask is not None:
        half = batch.token_logps.shape[0] // 2
        token_logps = batch.token_logps[:half]
        mask = batch.token_mask[:half].to(token_logps.dtype)
        return -(token_logps * mask).sum() / mask.sum().clamp(min=1)
    chosen, _, _, _ = batch.pairwise()
    chosen_lengths, _ = batch.pairwise_lengths()
    return -chosen.sum() / chosen_lengths.sum().clamp(min=1)


def _smoothed_logistic(logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    return -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)


# --------------------------------------------------------------------------------------------------- SimPO


def simpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    chosen_lengths: torch.Tensor,
    rejected_lengths: torch.Tensor,
    *,
    beta: float = 2.0,
    gamma_beta_ratio: float = 0.5,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """SimPO (Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward",
    arXiv 2405.14734, eq. 6), per pair:

        z = ℓ(y_w)/|y_w| − ℓ(y_l)/|y_l| − γ/β,   γ = gamma_beta_ratio · β
        loss = −(1 − ε)·log σ(β·z) − ε·log σ(−β·z)          (ε = 0: −log σ(β·ℓ_w/|y_w| − β·ℓ_l/|y_l| − γ))

    ℓ are sums of response-token log-probs, |y| response lengths (clamped at 1). TRL ``CPOTrainer``
    ``loss_type="simpo"`` with ``simpo_gamma = γ = gamma_beta_ratio·β`` (TRL's γ is absolute: its cpo_loss
    subtracts simpo_gamma/β from the length-averaged margin, then multiplies by β) and ``cpo_alpha=0``.
    """
    chosen = policy_chosen_logps / chosen_lengths.clamp(min=1)
    rejected = policy_rejected_logps / rejected_lengths.clamp(min=1)
    return _smoothed_logistic(beta * (chosen - rejected - gamma_beta_ratio), label_smoothing)


# ----------------------------------------------------------------------------------------------------- CPO


def cpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    chosen_nll: torch.Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.0,
    cpo_alpha: float = 1.0,
) -> torch.Tensor:
    """CPO (Xu et al. 2024, "Contrastive Preference Optimization: Pushing the Boundaries of LLM Performance
    in Machine Translation", arXiv 2401.08417, eq. 3 + NLL), per pair:

        loss = −(1 − ε)·log σ(β·(ℓ(y_w) − ℓ(y_l))) − ε·log σ(−β·(ℓ(y_w) − ℓ(y_l))) + α·NLL(y_w)

    DPO with a uniform reference, plus a behaviour-cloning term on the chosen responses. ℓ are SUMS of
    response-token log-probs (TRL's ``average_log_prob`` is False for ``loss_type="sigmoid"``); ``chosen_nll``
    is the per-token NLL of the chosen responses (:func:`chosen_token_nll`, a scalar broadcast onto each
    pair, or per-pair values). TRL ``CPOTrainer(loss_type="sigmoid", cpo_alpha=α)``.
    """
    logits = beta * (policy_chosen_logps - policy_rejected_logps)
    return _smoothed_logistic(logits, label_smoothing) + cpo_alpha * chosen_nll


# ---------------------------------------------------------------------------------------------------- ORPO


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x < 0, stable on both sides of −ln 2 (as TRL's ``log1mexp``)."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def orpo_log_odds(policy_chosen_mean_logps: torch.Tensor, policy_rejected_mean_logps: torch.Tensor) -> torch.Tensor:
    """log odds(y_w) − log odds(y_l), odds(y) = P/(1 − P), P = exp(m), m clamped at −(machine epsilon)."""
    eps = torch.finfo(policy_chosen_mean_logps.dtype).eps
    chosen = policy_chosen_mean_logps.clamp(max=-eps)
    rejected = policy_rejected_mean_logps.clamp(max=-eps)
    return (chosen - rejected) - (_log1mexp(chosen) - _log1mexp(rejected))


def orpo_loss(
    policy_chosen_mean_logps: torch.Tensor,
    policy_rejected_mean_logps: torch.Tensor,
    chosen_nll: torch.Tensor,
    *,
    beta: float = 0.1,
) -> torch.Tensor:
    """ORPO (Hong et al. 2024, "ORPO: Monolithic Preference Optimization without Reference Model",
    arXiv 2403.07691, eqs. 4–7), per pair:

        m = ℓ(y)/|y|                               (length-averaged log-prob: P(y|x) = exp(m))
        log odds(y) = m − log(1 − exp(m))
        loss = NLL(y_w) − β·log σ(log odds(y_w) − log odds(y_l))

    β is the paper's λ (TRL's name). log(1 − exp(m)) is computed as TRL's ``log1mexp``; m is clamped at
    −(machine epsilon) so a sequence with probability 1 in floating point (m = 0) gives a finite loss instead
    of ∞/NaN (TRL does not clamp; the values differ only for m within ~1e-7 of 0 in float32).
    ``chosen_nll``: per-token NLL of the chosen responses, a scalar broadcast onto each pair. TRL
    ``ORPOTrainer`` (``loss = nll − mean(β·log σ(log_odds))``).
    """
    log_odds = orpo_log_odds(policy_chosen_mean_logps, policy_rejected_mean_logps)
    return chosen_nll - beta * F.logsigmoid(log_odds)


# -------------------------------------------------------------------------------------------- objectives


def simpo_objective(batch: FeedbackBatch, hp: dict):
    chosen, rejected, _, _ = batch.pairwise()
    chosen_lengths, rejected_lengths = batch.pairwise_lengths()
    losses = simpo_loss(
        chosen, rejected, chosen_lengths, rejected_lengths,
        beta=hp["beta"], gamma_beta_ratio=hp["gamma_beta_ratio"], label_smoothing=hp["label_smoothing"],
    )
    chosen_mean, rejected_mean = batch.pairwise_mean_logps()
    # Rewards as SimPO/TRL log them: β · length-averaged log-prob.
    return losses.mean(), pairwise_reward_metrics(hp["beta"] * chosen_mean, hp["beta"] * rejected_mean)


def cpo_objective(batch: FeedbackBatch, hp: dict):
    chosen, rejected, _, _ = batch.pairwise()
    nll = chosen_token_nll(batch)
    losses = cpo_loss(
        chosen, rejected, nll, beta=hp["beta"], label_smoothing=hp["label_smoothing"], cpo_alpha=hp["cpo_alpha"]
    )
    metrics = pairwise_reward_metrics(hp["beta"] * chosen, hp["beta"] * rejected)
    metrics["nll/token"] = nll.detach()
    return losses.mean(), metrics


def orpo_objective(batch: FeedbackBatch, hp: dict):
    chosen_mean, rejected_mean = batch.pairwise_mean_logps()
    nll = chosen_token_nll(batch)
    losses = orpo_loss(chosen_mean, rejected_mean, nll, beta=hp["beta"])
    metrics = pairwise_reward_metrics(hp["beta"] * chosen_mean, hp["beta"] * rejected_mean)
    metrics["nll/token"] = nll.detach()
    metrics["orpo/log_odds"] = orpo_log_odds(chosen_mean.detach(), rejected_mean.detach()).mean()
    return losses.mean(), metrics


# --------------------------------------------------------------------------------------------- registry
# No reference model, hence no divergence to one: divergence "none" for all three. For ORPO in particular
# the odds-ratio term contrasts the chosen and rejected responses under the SAME policy; it is not a
# divergence between the policy and another distribution (the survey's direction is the regulariser that
# ties the policy to a reference — ORPO has none; the NLL term is what keeps it near the data).
# reward-form "preference" as DPO's entry: each loss is a Bradley–Terry-style function of a margin.

register(
    Method(
        id="simpo",
        name="SimPO",
        paper=SIMPO_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(
            reward_form="preference", reference="reference-free", length_control="yes", divergence="none"
        ),
        needs_reference=False,
        # β = 2.0, γ/β = 0.5, lr 6e-7: the SimPO paper's Llama-3-8B-Base setting
        # (princeton-nlp/SimPO training_configs/llama-3-8b-base-simpo.yaml).
        defaults={"beta": 2.0, "gamma_beta_ratio": 0.5, "label_smoothing": 0.0, "learning_rate": 6e-7},
        objective=simpo_objective,
        description="Length-normalised log-likelihood margin with a target reward margin γ; no reference model.",
    )
)

register(
    Method(
        id="cpo",
        name="CPO",
        paper=CPO_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference", reference="reference-free", divergence="none", sft="merged"),
        needs_reference=False,
        # β = 0.1 (the CPO paper's; TRL's default) and NLL weight 1 (the paper's loss, TRL's cpo_alpha = 1);
        # lr: the suite's comparison rate (the paper's runs are LoRA fine-tunes of ALMA).
        defaults={"beta": 0.1, "label_smoothing": 0.0, "cpo_alpha": 1.0, "learning_rate": 5e-6},
        objective=cpo_objective,
        description="DPO with a uniform reference (sum log-prob margin) plus NLL on the chosen responses.",
    )
)

register(
    Method(
        id="orpo",
        name="ORPO",
        paper=ORPO_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference", reference="reference-free", divergence="none", sft="merged"),
        needs_reference=False,
        # λ (β here, as TRL) = 0.1 and lr 5e-6: the paper's Mistral-ORPO runs
        # (xfactlab/orpo scripts/run_mistral_orpo_beta.sh: --alpha 0.1 --lr 5e-6).
        defaults={"beta": 0.1, "learning_rate": 5e-6},
        objective=orpo_objective,
        description="SFT on the chosen responses plus a log odds-ratio penalty on the rejected ones, in one stage.",
    )
)
