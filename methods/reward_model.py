"""The reward model of RLHF: a scalar score r_φ(x, y) fitted to preference pairs (Bradley–Terry).

The train loop (``suite/reward_model.py``) builds a sequence classifier with a scalar head from the
experiment's model, trains it with the loss below on pairwise data, saves it in Hugging Face format and
reports its held-out pairwise accuracy. Online methods (``methods/online.py``) name it as a component.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.common import taxonomy
from suite.method.registry import Method, Paper, register
from suite.training.reward_model import RewardModelTraining


def bradley_terry_loss(chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor,
                       margins: torch.Tensor | float = 0.0) -> torch.Tensor:
    """The reward model's pairwise loss, per pair (InstructGPT, arXiv 2203.02155, eq. 1; the margin m is
    Llama 2's, arXiv 2307.09288, eq. 2):

        loss = −log σ(r_φ(x, y_w) − r_φ(x, y_l) − m)

    m = 0 is the plain Bradley–Terry likelihood.
    """
    return -F.logsigmoid(chosen_rewards - rejected_rewards - margins)


def _objective(chosen: torch.Tensor, rejected: torch.Tensor, margins: torch.Tensor, hp: dict):
    losses = bradley_terry_loss(chosen, rejected, margins)
    chosen, rejected = chosen.detach(), rejected.detach()
    return losses.mean(), {
        "accuracy": (chosen > rejected).float().mean(),
        "margin": (chosen - rejected).mean(),
        "rewards/chosen": chosen.mean(),
        "rewards/rejected": rejected.mean(),
    }


register(
    Method(
        id="reward-model",
        name="Reward model (Bradley–Terry)",
        paper=Paper("Training language models to follow instructions with human feedback", "2203.02155"),
        feedback="pairwise",
        taxonomy=taxonomy(reward="explicit", reference="reference-free", divergence="none"),
        needs_reference=False,
        # lr 1e-5 is ours (InstructGPT's 6B reward model used 9e-6); one pass over the data, as InstructGPT
        # (more overfits). max_steps null: the experiment's train.max_steps; set, the reward model gets its
        # own budget of pairs. margin / score_margin: Llama 2's margin, off by default.
        defaults={"learning_rate": 1e-5, "max_steps": None, "margin": 0.0, "score_margin": False},
        objective=None,
        train_loop=RewardModelTraining(_objective),
        description="A scalar-head sequence classifier on the base model, fitted to preference pairs; "
                    "scores responses for online methods and for RM-labelled data (alignsuite reward-label).",
    )
)
