"""Supervised fine-tuning on demonstrations (the chosen responses when converted from pairs)."""

from __future__ import annotations

import torch

from methods.common import taxonomy
from suite.method.registry import FeedbackBatch, Method, Paper, register

SFT_TAXONOMY = taxonomy(
    reward="explicit", reward_level="token", feedback_kind="demonstration", feedback_arity="pointwise",
    feedback_source="human", reference="reference-free", divergence="none",
)


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
        taxonomy=SFT_TAXONOMY,
        needs_reference=False,
        defaults={"learning_rate": 5e-6},
        objective=sft_objective,
        description="Maximum likelihood on demonstrations; the first stage of the RLHF pipeline.",
    )
)


def l1_sft_objective(batch: FeedbackBatch, hp: dict):
    """SFT + λ·Σ|δ|: PAFT's sparsified SFT (the penalty's exact form is not published; λ is configurable)."""
    nll = sft_loss(batch.policy_logps, batch.lengths)
    penalty = batch.delta_l1
    return nll + hp["l1_lambda"] * penalty, {"nll/token": nll.detach(), "delta/l1": penalty.detach()}


register(
    Method(
        id="sft-l1",
        name="SFT + L1 delta",
        paper=Paper("PAFT: A Parallel Training Paradigm for Effective LLM Fine-Tuning", "2406.17923"),
        feedback="sft",
        taxonomy=SFT_TAXONOMY,
        needs_reference=False,
        # λ is ours: PAFT reports > 90 % sparsity but not its λ. On SmolLM2-135M (LoRA r16, lr 5e-5, 10 steps
        # of Alpaca) λ = 1e-3 cut Σ|δ| from 1666 to 153 at the same NLL (1.80 vs 1.79). Sweep it elsewhere.
        defaults={"learning_rate": 5e-6, "l1_lambda": 1e-3},
        objective=l1_sft_objective,
        description="SFT with an L1 penalty on the trainable delta, so it merges well (PAFT's sparse SFT).",
        extra_inputs=frozenset({"delta_l1"}),
    )
)
