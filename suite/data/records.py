"""Typed feedback records: what a dataset yields and what a method consumes.

A prompt is either a plain string (one user turn) or a list of chat messages
(``{"role": ..., "content": ...}``) ending with a user turn; a response is the assistant's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

Message = dict
Prompt = Union[str, list]  # str or list[Message]

FEEDBACK_TYPES = ("pairwise", "binary", "scalar", "sft", "listwise")


def instruction_text(prompt: Prompt) -> str:
    """The instruction a judge reads: the prompt itself, or the last user turn of a conversation."""
    if isinstance(prompt, str):
        return prompt
    users = [m.get("content", "") for m in prompt if m.get("role") == "user"]
    return users[-1] if users else str(prompt)


@dataclass(frozen=True)
class PairwiseRecord:
    """A preference: ``chosen`` ≻ ``rejected`` for ``prompt``; scores kept when the source has them."""

    prompt: Prompt
    chosen: str
    rejected: str
    chosen_score: float | None = None
    rejected_score: float | None = None


@dataclass(frozen=True)
class BinaryRecord:
    """An unpaired judgement: ``label`` True = desirable (KTO / UNA-binary)."""

    prompt: Prompt
    completion: str
    label: bool


@dataclass(frozen=True)
class ScalarRecord:
    """A scored response, ``score`` in [0, 1] (UNA-score)."""

    prompt: Prompt
    completion: str
    score: float


@dataclass(frozen=True)
class SFTRecord:
    """A demonstration to imitate."""

    prompt: Prompt
    completion: str


@dataclass(frozen=True)
class ListwiseRecord:
    """A ranking of several responses to one prompt, best first; ``scores`` descending, one per response."""

    prompt: Prompt
    responses: tuple[str, ...]
    scores: tuple[float, ...]


RECORD_TYPES = {
    "pairwise": PairwiseRecord,
    "binary": BinaryRecord,
    "scalar": ScalarRecord,
    "sft": SFTRecord,
    "listwise": ListwiseRecord,
}


def prompt_key(prompt: Prompt) -> str:
    """A canonical string for a prompt (grouping, hashing, held-out split)."""
    if isinstance(prompt, str):
        return prompt
    return "\x1e".join(f"{m['role']}\x1f{m['content']}" for m in prompt)
