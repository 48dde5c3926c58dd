"""Methods on binary feedback (desirable / undesirable responses, no pairing): NPO and unpaired APO-zero.

The batch holds one response per example: ``batch.policy_logps`` and ``batch.reference_logps`` [B]
(sequence-level sums of response-token log-probs), ``batch.labels`` 1 = desirable, 0 = undesirable.
r = ℓ(y) − ℓ_ref(y) is the log-ratio. Pure ``*_loss`` functions return per-example losses [B].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.common import taxonomy, unpaired_reward_metrics
from suite.method.registry import FeedbackBatch, Method, Paper, register

NPO_PAPER = Paper("Negative Preference Optimization: From Catastrophic Collapse to Effective Unlearning", "2404.05868")
APO_PAPER = Paper(
    "Anchored Preference Optimization and Contrastive Revisions: Addressing Underspecification in Alignment",
    "2408.06266",
)


def npo_loss(policy_logps: torch.Tensor, reference_logps: torch.Tensor, *, beta: float) -> torch.Tensor:
    """NPO (Zhang et al. 2024, "Negative Preference Optimization: From Catastrophic Collapse to Effective
    Unlearning", arXiv 2404.05868, eq. 3), per (undesirable) example:

        loss = (2/β)·log(1 + (π_θ(y|x)/π_ref(y|x))^β) = −(2/β)·log σ(−β·r)

    DPO with the undesirable response as y_l and no y_w. Its gradient 2·σ(β·r) pushes r down, and fades
    as π_θ(y|x) → 0 (the bounded divergence speed that separates NPO from gradient ascent, which it
    recovers as β → 0: loss − 2·log 2/β → r). Applies to undesirable responses only; the caller masks.
    """
    return -(2.0 / beta) * F.logsigmoid(-beta * (policy_logps - reference_logps))


def apo_zero_unpaired_loss(
    policy_logps: torch.Tensor, reference_logps: torch.Tensor, labels: torch.Tensor, *, beta: float
) -> torch.Tensor:
    """APO-zero on unpaired data (D'Oosterlinck et al. 2024, "Anchored Preference Optimization and
    Contrastive Revisions", arXiv 2408.06266, eq. 7 split into its two terms), per example:

        desirable (label 1):    1 − σ(β·r)
        undesirable (label 0):  σ(β·r)

    TRL ``KTOTrainer(loss_type="apo_zero_unpaired")`` with ``desirable_weight = undesirable_weight = 1``
    (no KL reference point). TRL averages over the concatenation of desirable and undesirable losses,
    i.e. the plain mean over the batch.
    """
    logratios = policy_logps - reference_logps
    return torch.where(labels.bool(), 1 - torch.sigmoid(beta * logratios), torch.sigmoid(beta * logratios))


def npo_objective(batch: FeedbackBatch, hp: dict):
    """NPO on the undesirable examples of the batch, averaged over them; desirable ones are ignored.

    A batch with no undesirable example gives loss 0 with a zero gradient (still attached to the graph).
    """
    undesirable = (~batch.labels.bool()).to(batch.policy_logps.dtype)
    losses = npo_loss(batch.policy_logps, batch.reference_logps, beta=hp["beta"])
    loss = (losses * undesirable).sum() / undesirable.sum().clamp(min=1)
    rewards = hp["beta"] * (batch.policy_logps - batch.reference_logps).detach()
    metrics = unpaired_reward_metrics(rewards, batch.labels)
    metrics["npo/undesirable_fraction"] = undesirable.mean().detach()
    return loss, metrics


def apo_zero_unpaired_objective(batch: FeedbackBatch, hp: dict):
    losses = apo_zero_unpaired_loss(batch.policy_logps, batch.reference_logps, batch.labels, beta=hp["beta"])
    rewards = hp["beta"] * (batch.policy_logps - batch.reference_logps).detach()
    return losses.mean(), unpaired_reward_metrics(rewards, batch.labels)


register(
    Method(
        id="npo",
        name="NPO",
        paper=NPO_PAPER,
        feedback="binary",
        # Negative-only: it learns from undesired responses alone (the survey's negative-preference
        # direction); binary pointwise feedback; reverse-KL-style tie to the reference through π/π_ref.
        taxonomy=taxonomy(negative_only="yes", feedback_kind="binary", feedback_arity="pointwise"),
        needs_reference=True,
        # β = 0.1: the NPO paper's unlearning experiments (and TRL's usual default); lr: the suite's
        # comparison rate (the paper's TOFU unlearning runs are a different regime).
        defaults={"beta": 0.1, "learning_rate": 5e-6},
        objective=npo_objective,
        description="Pushes undesirable responses' likelihood below the reference with a bounded, fading gradient.",
    )
)

register(
    Method(
        id="apo-zero-unpaired",
        name="APO-zero (unpaired)",
        paper=APO_PAPER,
        feedback="binary",
        taxonomy=taxonomy(feedback_kind="binary", feedback_arity="pointwise"),
        needs_reference=True,
        # β = 0.1: TRL's KTOConfig default (not checked against the paper); lr: the suite's comparison rate.
        defaults={"beta": 0.1, "learning_rate": 5e-6},
        objective=apo_zero_unpaired_objective,
        description="APO-zero's anchored terms on unpaired data: desirable likelihood up, undesirable down.",
    )
)
