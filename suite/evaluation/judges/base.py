"""The judge interface, the judge registry and the helpers every judge uses (see the package docstring)."""

from __future__ import annotations

import math
from typing import Callable, Protocol

from suite.core.errors import ConfigError
from suite.core.registry import Registry


class Judge(Protocol):
    name: str

    def preferences(self, instructions: list[str], outputs_1: list[str], outputs_2: list[str]) -> list[float]:
        """AlpacaEval preferences ∈ [1, 2] of ``outputs_2`` over ``outputs_1``, one per instruction."""

    def describe(self) -> dict:
        """What this judge is (type, model / endpoint, settings), recorded with its results."""


JUDGES: Registry[Callable[[dict], Judge]] = Registry("judge", "eval.judge.type")


def register_judge(name: str):
    def decorate(factory):
        return JUDGES.add(name, factory)

    return decorate


def check_keys(spec: dict, allowed: set, kind: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ConfigError(f"eval.judge.{unknown[0]}: unknown key for a {kind} judge; known: {', '.join(sorted(allowed))}")


def preference_from_margin(margin: float) -> float:
    """1 + σ(margin): the Bradley–Terry probability that output_2 wins, on AlpacaEval's [1, 2] scale."""
    return 1.0 + 1.0 / (1.0 + math.exp(-margin)) if margin >= 0 else 1.0 + math.exp(margin) / (1.0 + math.exp(margin))
