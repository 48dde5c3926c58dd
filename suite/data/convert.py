"""Conversions between feedback types, as UNA does with HelpSteer2 (arXiv 2408.15339, §4).

scalar → pairwise: responses to one prompt are shuffled (seeded) and paired consecutively; the higher
score is chosen, a tie makes the second chosen (UNA's rule). pairwise → binary: chosen desirable,
rejected undesirable. pairwise → scalar: both responses with their scores. pairwise → sft: chosen.
Every path from a scalar source goes through the same pairing, so methods of different feedback types
trained on one source see the same responses.
"""

from __future__ import annotations

import random
from collections import defaultdict

from suite.data.records import BinaryRecord, PairwiseRecord, ScalarRecord, SFTRecord, prompt_key
from suite.errors import ConfigError, DataError

NATIVE_TYPES = {PairwiseRecord: "pairwise", BinaryRecord: "binary", ScalarRecord: "scalar", SFTRecord: "sft"}


def feedback_type(records: list) -> str:
    if not records:
        raise DataError("no records to convert")
    kinds = {NATIVE_TYPES.get(type(r)) for r in records}
    if len(kinds) != 1 or None in kinds:
        raise DataError(f"mixed or unknown record types: {sorted(map(str, kinds))}")
    return kinds.pop()


def scalar_to_pairwise(records: list[ScalarRecord], seed: int) -> list[PairwiseRecord]:
    """Pair each prompt's responses (seeded shuffle, consecutive pairs); higher score chosen, tie → second."""
    by_prompt: dict[str, list[ScalarRecord]] = defaultdict(list)
    for record in records:
        by_prompt[prompt_key(record.prompt)].append(record)
    rng = random.Random(seed)
    pairs = []
    for key in sorted(by_prompt):
        group = list(by_prompt[key])
        rng.shuffle(group)
        for first, second in zip(group[0::2], group[1::2]):
            if first.completion == second.completion:
                continue  # no preference signal between identical texts
            chosen, rejected = (first, second) if first.score > second.score else (second, first)
            pairs.append(PairwiseRecord(chosen.prompt, chosen.completion, rejected.completion, chosen.score, rejected.score))
    return pairs


def pairwise_to_binary(pairs: list[PairwiseRecord]) -> list[BinaryRecord]:
    """Each pair → (chosen, desirable), (rejected, undesirable), kept adjacent."""
    out = []
    for pair in pairs:
        out += [BinaryRecord(pair.prompt, pair.chosen, True), BinaryRecord(pair.prompt, pair.rejected, False)]
    return out


def pairwise_to_scalar(pairs: list[PairwiseRecord]) -> list[ScalarRecord]:
    out = []
    for index, pair in enumerate(pairs):
        if pair.chosen_score is None or pair.rejected_score is None:
            raise ConfigError(
                f"scalar feedback cannot be made from this dataset: pair {index + 1} has no scores "
                "(pairwise data needs chosen_score and rejected_score)"
            )
        out += [ScalarRecord(pair.prompt, pair.chosen, pair.chosen_score),
                ScalarRecord(pair.prompt, pair.rejected, pair.rejected_score)]
    return out


def pairwise_to_sft(pairs: list[PairwiseRecord]) -> list[SFTRecord]:
    return [SFTRecord(pair.prompt, pair.chosen) for pair in pairs]


def binary_to_sft(records: list[BinaryRecord]) -> list[SFTRecord]:
    return [SFTRecord(r.prompt, r.completion) for r in records if r.label]


def to_pairwise(records: list, seed: int) -> list[PairwiseRecord]:
    source = feedback_type(records)
    if source == "pairwise":
        return list(records)
    if source == "scalar":
        return scalar_to_pairwise(records, seed)
    raise ConfigError(f"pairwise feedback cannot be made from {source} data")


FROM_PAIRS = {"pairwise": list, "binary": pairwise_to_binary, "scalar": pairwise_to_scalar, "sft": pairwise_to_sft}


def convert(records: list, target: str, seed: int = 0) -> list:
    """Records of the ``target`` feedback type; the source type is read off the records."""
    if target not in FROM_PAIRS:
        raise ConfigError(f"unknown feedback type {target!r}; known: {', '.join(FROM_PAIRS)}")
    source = feedback_type(records)
    if source == target:
        return list(records)
    if source == "binary" and target == "sft":
        return binary_to_sft(records)
    if source in ("pairwise", "scalar"):
        return FROM_PAIRS[target](to_pairwise(records, seed))
    raise ConfigError(f"{target} feedback cannot be made from {source} data (a method needing {target} "
                      f"feedback cannot run on this dataset)")
