"""The method registry: every alignment method is data — paper, taxonomy, feedback, defaults, loss.

Entries live in ``methods/`` and register themselves on import; the engine looks methods up by id and
never branches on one. A method's ``objective`` receives a :class:`FeedbackBatch` of per-sequence
log-probs (policy, cached reference), lengths and labels/scores, and returns the loss plus metrics to log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from suite.errors import ConfigError

# The survey's 13 directions (arXiv 2407.16216), as (pillar, direction, allowed values).
TAXONOMY = (
    ("reward model", "reward", ("explicit", "implicit")),
    ("reward model", "reward-form", ("pointwise", "preference")),
    ("reward model", "reward-level", ("response", "token")),
    ("reward model", "negative-only", ("yes", "no")),
    ("feedback", "feedback-kind", ("preference", "binary", "scalar", "demonstration")),
    ("feedback", "feedback-arity", ("pairwise", "listwise", "pointwise")),
    ("feedback", "feedback-source", ("human", "ai", "any")),
    ("rl", "reference", ("reference-based", "reference-free")),
    ("rl", "length-control", ("yes", "no")),
    ("rl", "divergence", ("reverse-kl", "forward-kl", "none", "other")),
    ("rl", "policy", ("on-policy", "off-policy")),
    ("optimisation", "online", ("online", "offline")),
    ("optimisation", "sft", ("separate", "merged")),
)
TAXONOMY_DIRECTIONS = tuple(direction for _, direction, _ in TAXONOMY)


@dataclass(frozen=True)
class Paper:
    title: str
    arxiv: str | None = None

    def cite(self) -> str:
        return f"{self.title} (arXiv {self.arxiv})" if self.arxiv else self.title


@dataclass
class FeedbackBatch:
    """What a method's objective sees for one batch; tensors are per sequence, shape [N].

    Pairwise batches hold the B chosen sequences first, then the B rejected ones (one forward pass).
    ``mismatched_*`` are KTO's KL-estimate sequences (prompt i with completion i+1), when requested.
    """

    policy_logps: torch.Tensor
    lengths: torch.Tensor
    reference_logps: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    scores: torch.Tensor | None = None
    mismatched_policy_logps: torch.Tensor | None = None
    mismatched_reference_logps: torch.Tensor | None = None

    def pairwise(self):
        """(policy_chosen, policy_rejected, reference_chosen, reference_rejected) log-probs."""
        half = self.policy_logps.shape[0] // 2
        ref = self.reference_logps
        return (
            self.policy_logps[:half],
            self.policy_logps[half:],
            None if ref is None else ref[:half],
            None if ref is None else ref[half:],
        )

    def pairwise_lengths(self):
        half = self.lengths.shape[0] // 2
        return self.lengths[:half], self.lengths[half:]


Objective = Callable[[FeedbackBatch, dict], "tuple[torch.Tensor, dict[str, torch.Tensor]]"]


@dataclass(frozen=True)
class Method:
    id: str
    name: str
    paper: Paper
    feedback: str  # the record type it trains on: pairwise | binary | scalar | sft
    taxonomy: dict  # direction -> value, see TAXONOMY
    needs_reference: bool
    defaults: dict  # hyper-parameters with the paper's values (beta, learning_rate, ...)
    objective: Objective
    description: str = ""
    extra_inputs: frozenset = field(default_factory=frozenset)  # e.g. {"mismatched_pairs"} for KTO

    def hyperparameters(self, overrides: dict | None = None) -> dict:
        """The paper's defaults with overrides applied; unknown keys are a config error."""
        merged = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in self.defaults:
                raise ConfigError(
                    f"methods: {self.id} has no hyper-parameter {key!r}; known: {sorted(self.defaults)}"
                )
            merged[key] = value
        return merged

    def summary(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "feedback": self.feedback,
            "needs_reference": self.needs_reference,
            "paper": self.paper.title,
            "arxiv": self.paper.arxiv,
            "taxonomy": dict(self.taxonomy),
            "defaults": dict(self.defaults),
            "description": self.description,
        }


_METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    if method.id in _METHODS:
        raise ValueError(f"method {method.id!r} registered twice")
    for direction, value in method.taxonomy.items():
        allowed = dict((d, v) for _, d, v in TAXONOMY).get(direction)
        if allowed is None or value not in allowed:
            raise ValueError(f"method {method.id!r}: bad taxonomy tag {direction}={value!r}")
    _METHODS[method.id] = method
    return method


def _load_entries() -> None:
    import methods  # noqa: F401  (registers every entry)


def get_method(method_id: str) -> Method:
    _load_entries()
    if method_id not in _METHODS:
        raise ConfigError(f"methods: unknown method {method_id!r}; registered: {', '.join(sorted(_METHODS))}")
    return _METHODS[method_id]


def all_methods() -> list[Method]:
    _load_entries()
    return [_METHODS[k] for k in sorted(_METHODS)]
