"""Shared pieces of method entries: the metrics every implicit-reward method logs."""

from __future__ import annotations

import torch


def pairwise_reward_metrics(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor) -> dict:
    """Implicit-reward metrics as TRL logs them (rewards/chosen, rejected, accuracy, margin)."""
    chosen_rewards, rejected_rewards = chosen_rewards.detach(), rejected_rewards.detach()
    return {
        "rewards/chosen": chosen_rewards.mean(),
        "rewards/rejected": rejected_rewards.mean(),
        "rewards/accuracy": (chosen_rewards > rejected_rewards).float().mean(),
        "rewards/margin": (chosen_rewards - rejected_rewards).mean(),
    }


def unpaired_reward_metrics(rewards: torch.Tensor, labels: torch.Tensor) -> dict:
    """Mean implicit reward of desirable and undesirable examples (NaN-free when one side is absent)."""
    rewards, desirable = rewards.detach(), labels.bool()
    metrics = {}
    if desirable.any():
        metrics["rewards/desirable"] = rewards[desirable].mean()
    if (~desirable).any():
        metrics["rewards/undesirable"] = rewards[~desirable].mean()
    return metrics


# The most common position on the survey's 13 directions: an offline, reference-based, response-level
# implicit-reward method with a reverse-KL tie to the reference. Entries state only where they differ.
OFFLINE_IMPLICIT_REWARD = {
    "reward": "implicit",
    "reward-form": "pointwise",
    "reward-level": "response",
    "negative-only": "no",
    "feedback-kind": "preference",
    "feedback-arity": "pairwise",
    "feedback-source": "any",
    "reference": "reference-based",
    "length-control": "no",
    "divergence": "reverse-kl",
    "policy": "off-policy",
    "online": "offline",
    "sft": "separate",
}


def taxonomy(**differences: str) -> dict:
    """Survey taxonomy tags: the common offline implicit-reward position with ``differences`` applied
    (keyword names use ``_`` for ``-``)."""
    tags = dict(OFFLINE_IMPLICIT_REWARD)
    for key, value in differences.items():
        direction = key.replace("_", "-")
        if direction not in tags:
            raise ValueError(f"unknown taxonomy direction {direction!r}")
        tags[direction] = value
    return tags
