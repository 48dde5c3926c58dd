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
