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

import math
from typing import Callable, Protocol

from suite.errors import ConfigError


class Judge(Protocol):
    name: str

    def preferences(self, instructions: list[str], outputs_1: list[str], outputs_2: list[str]) -> list[float]:
        """AlpacaEval preferences ∈ [1, 2] of ``outputs_2`` over ``outputs_1``, one per instruction."""

    def describe(self) -> dict:
        """What this judge is (type, model / endpoint, settings), recorded with its results."""


JUDGES: dict[str, Callable[[dict], Judge]] = {}


def register_judge(name: str):
    def decorate(factory):
        JUDGES[name] = factory
        return factory

    return decorate


def judge_types() -> list[str]:
    _load_builtin()
    return sorted(JUDGES)


def _load_builtin() -> None:
    from suite.evaluation.judges import implicit, llm, reward  # noqa: F401  (they register themselves)


def build_judge(spec: dict) -> Judge:
    _load_builtin()
    if not isinstance(spec, dict):
        raise ConfigError(f"eval.judge: expected a mapping with a 'type', got {type(spec).__name__}")
    kind = spec.get("type")
    if kind not in JUDGES:
        raise ConfigError(f"eval.judge.type: unknown judge {kind!r}; known: {', '.join(sorted(JUDGES))}")
    return JUDGES[kind]({k: v for k, v in spec.items() if k != "type"})


def check_keys(spec: dict, allowed: set, kind: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(f"eval.judge.{unknown[0]}: unknown key for a {kind} judge; known: {', '.join(sorted(allowed))}")


def preference_from_margin(margin: float) -> float:
    """1 + σ(margin): the Bradley–Terry probability that output_2 wins, on AlpacaEval's [1, 2] scale."""
    return 1.0 + 1.0 / (1.0 + math.exp(-margin)) if margin >= 0 else 1.0 + math.exp(margin) / (1.0 + math.exp(margin))
