"""UNA: Unified Alignment — regress the implicit reward onto explicit binary or scalar feedback.

Wang et al., "UNA: Unifying Alignments of RLHF/PPO, DPO and KTO by a Generalized Implicit Reward
Function" (arXiv 2408.15339). The implicit score is s_θ = σ(β · Δ(y)), Δ(y) = ℓ(y) − ℓ_ref(y),
sequence-level sums (no length averaging). Hyper-parameters from the paper's Mistral-7B experiments:
β = 0.01 for UNA-binary, 0.03 for UNA-score; lr 5e-6 for binary, 3e-5 for score.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.common import taxonomy, unpaired_reward_metrics
from methods.dpo import dpo_objective
from suite.method.registry import FeedbackBatch, Method, Paper, register

UNA_PAPER = Paper(
    "UNA: Unifying Alignments of RLHF/PPO, DPO and KTO by a Generalized Implicit Reward Function", "2408.15339"
)


def una_implicit_score(policy_logps: torch.Tensor, reference_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """s_θ(x, y) = σ(β · (ℓ(y) − ℓ_ref(y))), the implicit reward squashed into [0, 1]."""
    return torch.sigmoid(beta * (policy_logps - reference_logps))


def una_mse_loss(
    policy_logps: torch.Tensor, reference_logps: torch.Tensor, targets: torch.Tensor, beta: float
) -> torch.Tensor:
    """UNA with a mean-squared error, per example:

        loss = (σ(β · Δ(y)) − target)²

    target = label ∈ {0, 1} for UNA-binary (MSE), the normalised score ∈ [0, 1] for UNA-score (MSE).
    """
    return (una_implicit_score(policy_logps, reference_logps, beta) - targets) ** 2


def una_bce_loss(
    policy_logps: torch.Tensor, reference_logps: torch.Tensor, labels: torch.Tensor, beta: float
) -> torch.Tensor:
    """UNA-binary with binary cross-entropy, per example:

        loss = −[label · log s_θ + (1 − label) · log(1 − s_θ)],  s_θ = σ(β · Δ(y))

    computed from the logit β·Δ for numerical stability.
    """
    return F.binary_cross_entropy_with_logits(
        beta * (policy_logps - reference_logps), labels.to(policy_logps.dtype), reduction="none"
    )


def _binary_mse_objective(batch: FeedbackBatch, hp: dict):
    targets = batch.labels.to(batch.policy_logps.dtype)
    losses = una_mse_loss(batch.policy_logps, batch.reference_logps, targets, hp["beta"])
    return losses.mean(), _unpaired_metrics(batch, hp)


def _binary_bce_objective(batch: FeedbackBatch, hp: dict):
    losses = una_bce_loss(batch.policy_logps, batch.reference_logps, batch.labels, hp["beta"])
    return losses.mean(), _unpaired_metrics(batch, hp)


def _score_mse_objective(batch: FeedbackBatch, hp: dict):
    losses = una_mse_loss(batch.policy_logps, batch.reference_logps, batch.scores, hp["beta"])
    score = una_implicit_score(batch.policy_logps, batch.reference_logps, hp["beta"]).detach()
    return losses.mean(), {
        "implicit_score/mean": score.mean(),
        "implicit_score/corr": _correlation(score, batch.scores),
    }


def _unpaired_metrics(batch: FeedbackBatch, hp: dict) -> dict:
    rewards = hp["beta"] * (batch.policy_logps - batch.reference_logps)
    return unpaired_reward_metrics(rewards, batch.labels)


def _correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.numel() < 2 or a.std() == 0 or b.std() == 0:
        return torch.zeros((), dtype=a.dtype)
    return torch.corrcoef(torch.stack([a, b.to(a.dtype)]))[0, 1]


# (id, name, feedback, objective, β, lr, description) — β and lr from the paper's Mistral-7B runs.
UNA_VARIANTS = (
    ("una-binary-mse", "UNA-binary (MSE)", "binary", _binary_mse_objective, 0.01, 5e-6,
     "Squared error between σ(β·Δ) and the desirable/undesirable label."),
    ("una-binary-bce", "UNA-binary (BCE)", "binary", _binary_bce_objective, 0.01, 5e-6,
     "Cross-entropy between σ(β·Δ) and the desirable/undesirable label."),
    ("una-score-mse", "UNA-score (MSE)", "scalar", _score_mse_objective, 0.03, 3e-5,
     "Squared error between σ(β·Δ) and a score normalised to [0, 1]."),
)

for method_id, name, feedback, objective, beta, learning_rate, description in UNA_VARIANTS:
    register(
        Method(
            id=method_id,
            name=name,
            paper=UNA_PAPER,
            feedback=feedback,
            taxonomy=taxonomy(feedback_kind=feedback, feedback_arity="pointwise"),
            needs_reference=True,
            defaults={"beta": beta, "learning_rate": learning_rate},
            objective=objective,
            description=description,
        )
    )

# UNA on pairwise feedback is DPO (the paper's "DPO (UNA-pairwise)" rows), with UNA's β = 0.03.
register(
    Method(
        id="una-pairwise",
        name="UNA-pairwise (DPO)",
        paper=UNA_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        defaults={"beta": 0.03, "learning_rate": 5e-6},
        objective=dpo_objective,
        description="UNA's pairwise case: −log σ(β·h), identical to DPO, with the UNA paper's hyper-parameters.",
    )
)

