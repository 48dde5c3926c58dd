"""PAFT and the sequential pipeline it argues against, as composite methods.

PAFT (Pentyala et al., "PAFT: A Parallel Training Paradigm for Effective LLM Fine-Tuning", arXiv
2406.17923): SFT and preference alignment are trained independently from the same base — two ordinary
runs, which the runner can run in parallel — and their deltas are merged:

    θ = θ_0 + merge(δ_sft, δ_pref),   δ = θ_component − θ_0

with a registered merge method (linear, task arithmetic, TIES, DARE-TIES, …). The SFT delta is
sparsified by an L1 penalty during SFT (``sft-l1``) so that the merge works.

The baseline, ``sft-then-dpo`` (the usual pipeline that pays the "alignment tax"): SFT, then
the preference method trained from — and referenced to — the SFT model.
"""

from __future__ import annotations

from methods.common import taxonomy
from suite.core.ranges import Range
from suite.method.registry import Component, Method, Paper, register

PAFT_PAPER = Paper("PAFT: A Parallel Training Paradigm for Effective LLM Fine-Tuning", "2406.17923")

COMPONENT_DEFAULTS = {
    "sft_method": "sft",
    "sft_overrides": {},
    "sft_dataset": None,  # None: the experiment's data (converted to demonstrations); PAFT uses its own SFT set
    "preference_method": "dpo",
    "preference_overrides": {},
}


def _sft(hp: dict) -> Component:
    return Component(hp["sft_method"], hp["sft_overrides"], hp["sft_dataset"])


def paft_components(hp: dict) -> dict:
    return {"sft": _sft(hp), "preference": Component(hp["preference_method"], hp["preference_overrides"])}


def paft_compose(context, hp: dict):
    model = context.merge(["sft", "preference"], hp["merge_method"], hp["merge_weights"], hp["merge_parameters"],
                          hp["merge_seed"])
    return model, context.summary


def sequential_components(hp: dict) -> dict:
    return {"sft": _sft(hp)}


def sequential_compose(context, hp: dict):
    sft = context.load_component("sft")
    context.delta_sparsity("sft", sft)
    model, _ = context.train(hp["preference_method"], sft, hp["preference_overrides"])
    return model, context.summary


def _known_merge_method(value, key: str) -> None:
    """A registered merge method: checked when the config is read, not after both components trained."""
    from suite.merging.methods import get_merge_method

    get_merge_method(value, where=key)


register(
    Method(
        id="paft",
        name="PAFT",
        paper=PAFT_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # TIES at density 0.5 with equal weights: a common merge setting; PAFT compares several merges and
        # does not publish its parameters, so every one of these is configurable.
        defaults={**COMPONENT_DEFAULTS, "merge_method": "ties", "merge_parameters": {"density": 0.5},
                  "merge_weights": [1.0, 1.0], "merge_seed": 0},
        ranges={"merge_method": Range(kind="text", validate=_known_merge_method)},
        objective=None,
        components=paft_components,
        compose=paft_compose,
        description="SFT and a preference method trained in parallel from the base; their deltas merged.",
    )
)

register(
    Method(
        id="sft-then-dpo",
        name="SFT → DPO",
        paper=PAFT_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        defaults=dict(COMPONENT_DEFAULTS),
        objective=None,
        components=sequential_components,
        compose=sequential_compose,
        description="The sequential baseline PAFT compares with: SFT, then DPO (or any preference method) from the SFT model.",
    )
)
