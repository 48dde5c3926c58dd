"""Kahneman–Tversky Optimization on binary (desirable / undesirable) feedback."""

from __future__ import annotations

import torch

from methods.common import taxonomy, unpaired_reward_metrics
from suite.method.registry import FeedbackBatch, Method, Paper, register


def kto_loss(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    labels: torch.Tensor,
    mismatched_policy_logps: torch.Tensor,
    mismatched_reference_logps: torch.Tensor,
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """KTO (Ethayarajh et al. 2024, eq. 8), per example.

        r = ℓ(y) − ℓ_ref(y)
        z0 = max(0, mean over mismatched pairs (x_i, y_{i+1}) of [ℓ − ℓ_ref])   (no gradient)
        desirable:   λ_D · (1 − σ(β · (r − z0)))
        undesirable: λ_U · (1 − σ(β · (z0 − r)))

    The reference point z0 estimates KL(π_θ ‖ π_ref) from prompt/response pairs that do not belong
    together, as the paper and TRL do. Returns (losses, rewards β·r detached, z0).
    """
    kl = (mismatched_policy_logps - mismatched_reference_logps).mean().clamp(min=0).detach()
    logratios = policy_logps - reference_logps
    desirable = labels.bool()
    losses = torch.where(
        desirable,
        desirable_weight * (1 - torch.sigmoid(beta * (logratios - kl))),
        undesirable_weight * (1 - torch.sigmoid(beta * (kl - logratios))),
    )
    return losses, beta * logratios.detach(), kl


def kto_objective(batch: FeedbackBatch, hp: dict):
    losses, rewards, kl = kto_loss(
        batch.policy_logps,
        batch.reference_logps,
        batch.labels,
        batch.mismatched_policy_logps,
        batch.mismatched_reference_logps,
        beta=hp["beta"],
        desirable_weight=hp["desirable_weight"],
        undesirable_weight=hp["undesirable_weight"],
    )
    return losses.mean(), {"kl": kl, **unpaired_reward_metrics(rewards, batch.labels)}


register(
    Method(
        id="kto",
        name="KTO",
        paper=Paper("KTO: Model Alignment as Prospect Theoretic Optimization", "2402.01306"),
        feedback="binary",
        taxonomy=taxonomy(feedback_kind="binary", feedback_arity="pointwise"),
        needs_reference=True,
        # UNA's comparison setting: β = 0.03, lr 5e-6, λ_D = λ_U = 1 (UNA, arXiv 2408.15339).
        defaults={"beta": 0.03, "learning_rate": 5e-6, "desirable_weight": 1.0, "undesirable_weight": 1.0},
        objective=kto_objective,
        description="Prospect-theoretic value of the implicit reward against a KL reference point.",
        extra_inputs=frozenset({"mismatched_pairs"}),
    )
)
