"""Supervised fine-tuning on demonstrations (the chosen responses when converted from pairs)."""

from __future__ import annotations

import torch

from methods.common import taxonomy
from suite.registry import FeedbackBatch, Method, Paper, register


def sft_loss(policy_logps: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Token-averaged negative log-likelihood of the responses:

        loss = −Σ_i ℓ(y_i) / Σ_i |y_i|

    (ℓ summed over response tokens only, so the prompt is not trained on.)
    """
    return -policy_logps.sum() / lengths.sum().clamp(min=1)


def sft_objective(batch: FeedbackBatch, hp: dict):
    loss = sft_loss(batch.policy_logps, batch.lengths)
    return loss, {"nll/token": loss.detach()}


register(
    Method(
        id="sft",
        name="SFT",
        paper=Paper("Training language models to follow instructions with human feedback", "2203.02155"),
        feedback="sft",
        taxonomy=taxonomy(
            reward="explicit", reward_level="token", feedback_kind="demonstration", feedback_arity="pointwise",
            feedback_source="human",
            reference="reference-free", divergence="none",
        ),
        needs_reference=False,
        defaults={"learning_rate": 5e-6},
        objective=sft_objective,
        description="Maximum likelihood on demonstrations; the first stage of the RLHF pipeline.",
    )
)
