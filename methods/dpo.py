"""Direct Preference Optimization, and UNA's name for it on pairwise feedback."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.common import pairwise_reward_metrics, taxonomy
from suite.core.errors import ConfigError
from suite.method.registry import FeedbackBatch, Method, Paper, register

DPO_PAPER = Paper("Direct Preference Optimization: Your Language Model is Secretly a Reward Model", "2305.18290")


def dpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DPO (Rafailov et al. 2023, eq. 7), per pair.

        h = [ℓ(y_w) − ℓ_ref(y_w)] − [ℓ(y_l) − ℓ_ref(y_l)]
        loss = −log σ(β · h)

    ℓ are sequence-level sums of response-token log-probs. Returns (losses, chosen_rewards,
    rejected_rewards) with rewards β·(ℓ − ℓ_ref), detached. Same as TRL's ``loss_type="sigmoid"``.
    """
    chosen_logratios = policy_chosen_logps - reference_chosen_logps
    rejected_logratios = policy_rejected_logps - reference_rejected_logps
    losses = -F.logsigmoid(beta * (chosen_logratios - rejected_logratios))
    return losses, beta * chosen_logratios.detach(), beta * rejected_logratios.detach()


def dpo_objective(batch: FeedbackBatch, hp: dict):
    losses, chosen_rewards, rejected_rewards = dpo_loss(*batch.pairwise(), beta=hp["beta"])
    return losses.mean(), pairwise_reward_metrics(chosen_rewards, rejected_rewards)



def staged_training(context, hp: dict, records: list, save: bool = True):
    """sDPO's stages (Kim et al. 2024, §2): the training records in ``hp["stages"]`` consecutive chunks,
    trained in turn with the method's objective; stage k starts from, and uses as its reference, the
    model stage k − 1 produced (the base model for stage 1). ``train.max_steps`` is shared out over the
    stages (earlier stages take the remainder). Each stage checkpoints and resumes on its own; with LoRA
    a stage's adapter is merged before the next, and the run's result is the merged model.

    ``context`` is the run's :class:`suite.execution.context.RunContext`; returns (model, train summary)
    with the per-stage summaries under ``stages``.
    """
    from suite.training.trainer import combine_stage_summaries

    stages, max_steps = int(hp["stages"]), context.config.train.max_steps
    if stages < 1 or stages > max_steps or stages > len(records):
        raise ConfigError(f"{context.run.method.id}: stages={stages} must be between 1 and "
                          "min(max_steps, training records)")
    lora = context.config.train.lora is not None
    model, summaries = context.base_model, []
    for stage in range(stages):
        chunk = records[stage * len(records) // stages : (stage + 1) * len(records) // stages]
        steps = max_steps // stages + (1 if stage < max_steps % stages else 0)
        reference = None if stage == 0 else context.fingerprint(model)  # the previous stage's model
        model, summary = context.train_offline(model, chunk, stage=stage + 1 if stages > 1 else None, stages=stages,
                                               max_steps=steps, reference_fingerprint=reference)
        summaries.append(summary)
        if lora and stage + 1 < stages:
            model = model.merge_and_unload()  # the next stage's start and reference
    if lora and stages > 1:
        model = model.merge_and_unload()  # the result is the merged model, not the last stage's adapter
    context.save_model(model)
    if lora and stages == 1:
        model = model.merge_and_unload()  # plain weights for evaluation
    return model, combine_stage_summaries(summaries)


register(
    Method(
        id="dpo",
        name="DPO",
        paper=DPO_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # β = 0.1 is the DPO paper's default; lr 5e-6 as in UNA's comparison.
        defaults={"beta": 0.1, "learning_rate": 5e-6},
        objective=dpo_objective,
        description="Logistic regression of the implicit reward margin on pairwise preferences.",
    )
)


register(
    Method(
        id="sdpo",
        name="sDPO",
        paper=Paper("sDPO: Don't Use Your Data All at Once", "2403.19270"),
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # Two stages as in the paper (its two preference sets in turn); β and lr as DPO's defaults.
        defaults={"beta": 0.1, "learning_rate": 5e-6, "stages": 2},
        objective=dpo_objective,
        description="DPO on the data in consecutive chunks; each stage's reference and start is the previous stage's model.",
        staged=True,
        train_loop=staged_training,
    )
)

