"""Conversions between feedback types, as UNA does with HelpSteer2 (arXiv 2408.15339, §4; PAPERS.md §1).

* scalar → pairwise: each prompt's responses are shuffled (seeded) and paired consecutively (0-1, 2-3, …;
  an odd one out is dropped); the higher score is chosen, a tie makes the second chosen (UNA's rule);
  identical texts are skipped; both scores stay on the pair.
* pairwise → binary: chosen desirable, rejected undesirable (the two kept adjacent).
* pairwise → scalar: both responses with their scores (only when the pairs carry scores).
* pairwise → sft: the chosen response.  binary → sft: the desirable responses.
* scalar → binary / scalar / sft: through scalar → pairwise, so every method trained on one scalar
  source sees the same responses.
* binary → pairwise / scalar and sft → anything: impossible (ConfigError).
"""

from __future__ import annotations

import random

from suite.data.records import FEEDBACK_TYPES, BinaryRecord, PairwiseRecord, ScalarRecord, SFTRecord, prompt_key
from suite.errors import ConfigError, DataError

NATIVE_TYPES = {PairwiseRecord: "pairwise", BinaryRecord: "binary", ScalarRecord: "scalar", SFTRecord: "sft"}


def feedback_type(records: list) -> str:
    """The one feedback type of ``records`` (DataError when empty, mixed or not records)."""
    if not records:
        raise DataError("no records to convert")
    kinds = {NATIVE_TYPES.get(type(record), type(record).__name__) for record in records}
    if len(kinds) != 1 or not kinds <= set(FEEDBACK_TYPES):
        raise DataError(f"records must all be of one feedback type, got {', '.join(sorted(kinds))}")
    return kinds.pop()


def group_by_prompt(records: list) -> dict[str, list]:
    """Records grouped by ``prompt_key``, groups in order of first appearance."""
    groups: dict[str, list] = {}
    for record in records:
        groups.setdefault(prompt_key(record.prompt), []).append(record)
    return groups


def scalar_to_pairwise(records: list[ScalarRecord], seed: int) -> list[PairwiseRecord]:
    """Pair each prompt's responses (seeded shuffle, consecutive pairs); higher score chosen, tie → second.

    Each prompt has its own RNG seeded from ``seed`` and the prompt, so a prompt's pairs do not depend
    on which other prompts are in ``records`` (a subset pairs exactly as the whole does).
    """
    pairs = []
    for key, group in group_by_prompt(records).items():
        group = list(group)
        random.Random(f"{seed}:{key}").shuffle(group)  # str seeds hash with SHA-512: stable across runs
        for first, second in zip(group[0::2], group[1::2]):
            if first.completion == second.completion:
                continue  # no preference between identical texts
            chosen, rejected = (first, second) if first.score > second.score else (second, first)
            pairs.append(PairwiseRecord(chosen.prompt, chosen.completion, rejected.completion,
                                        chosen.score, rejected.score))
    return pairs


def pairwise_to_binary(pairs: list[PairwiseRecord]) -> list[BinaryRecord]:
    """Pair i → records 2i (chosen, desirable) and 2i+1 (rejected, undesirable)."""
    out = []
    for pair in pairs:
        out += [BinaryRecord(pair.prompt, pair.chosen, True), BinaryRecord(pair.prompt, pair.rejected, False)]
    return out


def pairwise_to_scalar(pairs: list[PairwiseRecord]) -> list[ScalarRecord]:
    """Pair i → records 2i (chosen) and 2i+1 (rejected) with their scores; DataError if a pair has none."""
    out = []
    for index, pair in enumerate(pairs, start=1):
        if pair.chosen_score is None or pair.rejected_score is None:
            raise DataError(f"scalar feedback needs scores, but this dataset has none: pair {index} has no "
                            "chosen_score / rejected_score")
        out += [ScalarRecord(pair.prompt, pair.chosen, pair.chosen_score),
                ScalarRecord(pair.prompt, pair.rejected, pair.rejected_score)]
    return out


def pairwise_to_sft(pairs: list[PairwiseRecord]) -> list[SFTRecord]:
    return [SFTRecord(pair.prompt, pair.chosen) for pair in pairs]


def binary_to_sft(records: list[BinaryRecord]) -> list[SFTRecord]:
    return [SFTRecord(record.prompt, record.completion) for record in records if record.label]


FROM_PAIRS = {"pairwise": list, "binary": pairwise_to_binary, "scalar": pairwise_to_scalar, "sft": pairwise_to_sft}


def impossible_conversion(source: str, target: str) -> ConfigError:
    return ConfigError(f"a method that needs {target} feedback cannot be trained on a {source} dataset: "
                       f"{target} feedback cannot be made from {source} records")


def to_pairwise(records: list, seed: int) -> list[PairwiseRecord]:
    """Pairs from pairwise (as they are) or scalar records (seeded pairing)."""
    source = feedback_type(records)
    if source == "pairwise":
        return list(records)
    if source == "scalar":
        return scalar_to_pairwise(records, seed)
    raise impossible_conversion(source, "pairwise")


def can_convert(source: str, target: str) -> bool:
    """Whether ``target`` records can be made from ``source`` records (pairwise → scalar also needs scores)."""
    return source == target or source in ("pairwise", "scalar") or (source, target) == ("binary", "sft")


def convert(records: list, target: str, seed: int = 0) -> list:
    """Records of the ``target`` feedback type; the source type is read off the records.
    ``seed`` drives the pairing of scalar records."""
    if target not in FEEDBACK_TYPES:
        raise ConfigError(f"unknown feedback type {target!r}; known: {', '.join(FEEDBACK_TYPES)}")
    source = feedback_type(records)
    if source == target:
        return list(records)
    if not can_convert(source, target):
        raise impossible_conversion(source, target)
    if source == "binary":
        return binary_to_sft(records)
    return FROM_PAIRS[target](to_pairwise(records, seed))
