"""Direct Reward Optimisation (DRO): single-trajectory regression of reward onto value plus implicit reward."""

from __future__ import annotations

import torch

from methods.common import taxonomy
from suite.method.registry import FeedbackBatch, Method, Paper, register


def dro_loss(
    rewards: torch.Tensor,
    values: torch.Tensor,
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DRO (Richemond et al. 2024, "Offline Regularised Reinforcement Learning for Large Language
    Models Alignment", arXiv 2405.19107), per example:

        loss = ½ · (r(x, y) − V(x) − β · [ℓ(y) − ℓ_ref(y)])²

    minimised jointly over the policy (through ℓ) and the value V. Its gradient in the policy is the
    paper's DRO-V policy gradient up to the constant factor β (absorbed by the learning rate). Each
    example is one (prompt, response, reward) — no pairs needed.
    """
    return 0.5 * (rewards - values - beta * (policy_logps - reference_logps)) ** 2


def dro_objective(batch: FeedbackBatch, hp: dict):
    losses = dro_loss(batch.scores, batch.values, batch.policy_logps, batch.reference_logps, hp["beta"])
    implicit = hp["beta"] * (batch.policy_logps - batch.reference_logps).detach()
    return losses.mean(), {"value/mean": batch.values.detach().mean(), "rewards/implicit": implicit.mean()}


register(
    Method(
        id="dro",
        name="DRO",
        paper=Paper("Offline Regularised Reinforcement Learning for Large Language Models Alignment", "2405.19107"),
        feedback="scalar",
        taxonomy=taxonomy(reward="explicit", feedback_kind="scalar", feedback_arity="pointwise"),
        needs_reference=True,
        # β (the paper's τ) is swept in the paper; 0.1 is ours, on the UNA-score scale of rewards in [0, 1].
        # The value head learns faster than the policy (its own lr), as a separate value network would.
        defaults={"beta": 0.1, "learning_rate": 5e-6, "value_learning_rate": 1e-3},
        objective=dro_objective,
        description="Regress the scalar reward onto V(x) + β·log-ratio; policy and a value head trained jointly.",
        extra_inputs=frozenset({"values"}),
    )
)
