"""Judges behind one interface, in a registry (like methods): each compares, per instruction, a reference
answer ``output_1`` with an evaluated answer ``output_2`` and returns AlpacaEval's preference ∈ [1, 2]
(2 = ``output_2`` better, 1.5 = tie), so every judge feeds the same win-rate metrics
(:mod:`suite.evaluation.winrate`).

* ``reward-model`` — a sequence classifier's scalar reward: the suite's own Bradley–Terry reward model (a run
  folder or its ``model/``) or any Hugging Face sequence-classification model (local path or hub id);
  preference = 1 + σ(r(x, y₂) − r(x, y₁)).
* ``llm`` — an LLM judge with one of alpaca-eval's own evaluator configurations and prompt templates (read from
  the installed package): a local Hugging Face causal LM, or any OpenAI-compatible endpoint (vLLM, llama.cpp
  server); the probability of the judge's answer token, asked in both answer orders to cancel position bias.
* ``implicit-reward`` — a preference-trained (DPO-family) model's implicit reward β·log π(y|x)/π_ref(y|x)
  against its reference, as RewardBench scores DPO models; preference = 1 + σ(r₂ − r₁).

A judge spec is a mapping ``{type: <name>, ...}``: ``build_judge(spec)``.
"""

from __future__ import annotations

from suite.core.errors import ConfigError
from suite.evaluation.judges import implicit, llm, reward  # noqa: F401  (each registers its judge)
from suite.evaluation.judges.base import JUDGES, Judge, check_keys, preference_from_margin, register_judge

__all__ = ["Judge", "build_judge", "check_keys", "judge_types", "preference_from_margin", "register_judge"]


def judge_types() -> list[str]:
    return JUDGES.names()


def build_judge(spec: dict) -> Judge:
    if not isinstance(spec, dict):
        raise ConfigError(f"eval.judge: expected a mapping with a 'type', got {type(spec).__name__}")
    kind = spec.get("type")
    return JUDGES.get(kind)({k: v for k, v in spec.items() if k != "type"})
