"""Token-level DPO (TDPO): DPO's margin corrected by the sequential KL to the reference at every token."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.common import pairwise_reward_metrics, taxonomy
from suite.method.registry import FeedbackBatch, Method, Paper, register


def tdpo_loss(
    chosen_logratios: torch.Tensor,
    rejected_logratios: torch.Tensor,
    chosen_sequence_kl: torch.Tensor,
    rejected_sequence_kl: torch.Tensor,
    beta: float,
    alpha: float = 0.5,
    stop_gradient_chosen_kl: bool = True,
) -> torch.Tensor:
    """TDPO (Zeng et al. 2024, "Token-level Direct Preference Optimization", arXiv 2404.11999), per pair.

        u = [ℓ(y_w) − ℓ_ref(y_w)] − [ℓ(y_l) − ℓ_ref(y_l)]          (sums of per-token log-ratios)
        δ = D_SeqKL(x, y_l; π_ref ‖ π_θ) − D_SeqKL(x, y_w; π_ref ‖ π_θ)
        D_SeqKL(x, y) = Σ_t KL(π_ref(·|x, y_<t) ‖ π_θ(·|x, y_<t))
        TDPO1: loss = −log σ(β · (u − δ))
        TDPO2: loss = −log σ(β · (u − α · (D_SeqKL(y_l) − sg[D_SeqKL(y_w)])))   (the paper's default)

    ``stop_gradient_chosen_kl`` selects TDPO2 (with ``alpha``); False with alpha = 1 is TDPO1.
    """
    chosen_kl = chosen_sequence_kl.detach() if stop_gradient_chosen_kl else chosen_sequence_kl
    margin = (chosen_logratios - rejected_logratios) - alpha * (rejected_sequence_kl - chosen_kl)
    return -F.logsigmoid(beta * margin)


def tdpo_objective(batch: FeedbackBatch, hp: dict):
    policy_chosen, policy_rejected, reference_chosen, reference_rejected = batch.pairwise()
    chosen_kl, rejected_kl = batch.sequence_kl.chunk(2)
    chosen_logratios, rejected_logratios = policy_chosen - reference_chosen, policy_rejected - reference_rejected
    losses = tdpo_loss(
        chosen_logratios, rejected_logratios, chosen_kl, rejected_kl, beta=hp["beta"], alpha=hp["alpha"],
        stop_gradient_chosen_kl=hp["stop_gradient_chosen_kl"],
    )
    metrics = pairwise_reward_metrics(hp["beta"] * chosen_logratios, hp["beta"] * rejected_logratios)
    metrics.update({"kl/chosen": chosen_kl.detach().mean(), "kl/rejected": rejected_kl.detach().mean()})
    return losses.mean(), metrics


register(
    Method(
        id="tdpo",
        name="TDPO",
        paper=Paper("Token-level Direct Preference Optimization", "2404.11999"),
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference", reward_level="token"),
        needs_reference=True,
        # TDPO2 with α = 0.5 and β = 0.1: the paper's main setting.
        defaults={"beta": 0.1, "alpha": 0.5, "stop_gradient_chosen_kl": True, "learning_rate": 5e-6},
        objective=tdpo_objective,
        description="DPO with a per-token sequential-KL correction; runs the reference model live for its distributions.",
        extra_inputs=frozenset({"sequence_kl"}),
    )
)
