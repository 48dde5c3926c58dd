"""Conversions between feedback types, as UNA does with HelpSteer2 (arXiv 2408.15339, §4).

* scalar → pairwise: each prompt's responses are shuffled (seeded) and paired consecutively (0-1, 2-3, …;
  an odd one out is dropped); the higher score is chosen, a tie makes the second chosen (UNA's rule);
  identical texts are skipped; both scores stay on the pair.
* pairwise → binary: chosen desirable, rejected undesirable (the two kept adjacent).
* pairwise → scalar: both responses with their scores (only when the pairs carry scores).
* pairwise → sft: the chosen response.  binary → sft: the desirable responses.
* scalar → binary / scalar / sft: through scalar → pairwise, so every method trained on one scalar
  source sees the same responses.
* scalar → listwise: see :func:`scalar_to_listwise` (the top response kept, a seeded sample of the rest).
* listwise → listwise: every list brought to ``list_size`` (see :func:`resize_lists`).
* pairwise → listwise: only for lists of two (``list_size`` 2): [chosen, rejected] with scores (1, 0).
* listwise → pairwise: best vs worst (their scores kept).  listwise → sft: the best response.
  listwise → binary / scalar: through those best-vs-worst pairs (scalar only when the scores lie in [0, 1]).
* binary → pairwise / scalar / listwise and sft → anything: impossible (ConfigError).
"""

from __future__ import annotations

import math
import random

from suite.core.errors import ConfigError, DataError
from suite.data.records import (
    FEEDBACK_TYPES,
    BinaryRecord,
    ListwiseRecord,
    PairwiseRecord,
    ScalarRecord,
    SFTRecord,
    prompt_key,
)

NATIVE_TYPES = {PairwiseRecord: "pairwise", BinaryRecord: "binary", ScalarRecord: "scalar", SFTRecord: "sft",
                ListwiseRecord: "listwise"}
DEFAULT_LIST_SIZE = 4  # the config's data.list_size default


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
        for score in (pair.chosen_score, pair.rejected_score):
            if not 0.0 <= score <= 1.0:  # only listwise sources carry unbounded scores
                raise DataError(f"scalar feedback needs scores in [0, 1]: pair {index} has score {score}")
        out += [ScalarRecord(pair.prompt, pair.chosen, pair.chosen_score),
                ScalarRecord(pair.prompt, pair.rejected, pair.rejected_score)]
    return out


def pairwise_to_sft(pairs: list[PairwiseRecord]) -> list[SFTRecord]:
    return [SFTRecord(pair.prompt, pair.chosen) for pair in pairs]


def binary_to_sft(records: list[BinaryRecord]) -> list[SFTRecord]:
    return [SFTRecord(record.prompt, record.completion) for record in records if record.label]


# -- listwise ------------------------------------------------------------------------------------


def _check_list_size(list_size) -> int:
    if isinstance(list_size, bool) or not isinstance(list_size, int) or list_size < 2:
        raise ConfigError(f"data.list_size: expected an integer >= 2, got {list_size!r}")
    return list_size


def scalar_to_listwise(records: list[ScalarRecord], seed: int, list_size: int = DEFAULT_LIST_SIZE
                       ) -> list[ListwiseRecord]:
    """One ranked list of ``list_size`` responses per prompt, best first.

    Per prompt, in order of the prompt's first appearance:

    * responses with equal text are one response, scored by the mean of their scores (identical texts
      judged twice: the judge's noise averaged, independent of the input order);
    * prompts with fewer than ``list_size`` distinct responses are dropped;
    * the responses are ranked by score, descending; ties are broken by a seeded shuffle
      (``random.Random(f"{seed}:{prompt_key}")`` of the texts in sorted order, then a stable sort), so
      the order never depends on the input order and no text is systematically favoured;
    * the top-ranked response is always kept — the best available answer is what the listwise methods'
      SFT term imitates and what listwise → sft yields — and ``list_size − 1`` others are a seeded
      sample (same RNG) of the rest, kept in rank order.

    Like the pairing, each prompt has its own RNG, so a prompt's list does not depend on the other prompts.
    """
    _check_list_size(list_size)
    lists = []
    for key, group in group_by_prompt(records).items():
        scores: dict[str, list[float]] = {}
        for record in group:
            scores.setdefault(record.completion, []).append(record.score)
        if len(scores) < list_size:
            continue
        mean = {text: math.fsum(values) / len(values) for text, values in scores.items()}
        rng = random.Random(f"{seed}:{key}")
        ranked = sorted(mean)  # canonical order first: the shuffle below then depends only on the seed
        rng.shuffle(ranked)
        ranked.sort(key=lambda text: -mean[text])  # stable: tied texts keep their seeded order
        chosen = [ranked[index] for index in _top_and_sample(len(ranked), list_size, rng)]
        lists.append(ListwiseRecord(group[0].prompt, tuple(chosen), tuple(mean[text] for text in chosen)))
    return lists


def _top_and_sample(length: int, list_size: int, rng: random.Random) -> list[int]:
    """Positions kept from a ranking of ``length``: 0 (the top) and a seeded sample of ``list_size − 1``
    of the rest, in rank order."""
    return [0, *sorted(rng.sample(range(1, length), list_size - 1))]


def resize_lists(lists: list[ListwiseRecord], seed: int, list_size: int = DEFAULT_LIST_SIZE) -> list[ListwiseRecord]:
    """Lists of exactly ``list_size`` (a batch stacks K responses per example): shorter lists are dropped,
    longer ones keep their top response and a seeded sample of the rest (``Random(f"{seed}:{prompt_key}")``),
    in rank order — the rule :func:`scalar_to_listwise` applies."""
    _check_list_size(list_size)
    out = []
    for item in lists:
        if len(item.responses) == list_size:
            out.append(item)
        elif len(item.responses) > list_size:
            keep = _top_and_sample(len(item.responses), list_size, random.Random(f"{seed}:{prompt_key(item.prompt)}"))
            out.append(ListwiseRecord(item.prompt, tuple(item.responses[i] for i in keep),
                                      tuple(item.scores[i] for i in keep)))
    return out


def pairwise_to_listwise(pairs: list[PairwiseRecord], list_size: int = 2) -> list[ListwiseRecord]:
    """A pair is a list of two: (chosen, rejected) with scores (1, 0) — the preference, not the pair's
    own scores, which may tie. Only for ``list_size`` 2 (ConfigError otherwise)."""
    if _check_list_size(list_size) != 2:
        raise impossible_conversion("pairwise", "listwise", list_size)
    return [ListwiseRecord(pair.prompt, (pair.chosen, pair.rejected), (1.0, 0.0)) for pair in pairs]


def listwise_to_pairwise(lists: list[ListwiseRecord]) -> list[PairwiseRecord]:
    """List i → pair i: the best response chosen over the worst, their scores kept (a list whose
    scores all tie still gives its pair, as scalar pairing keeps tied pairs)."""
    return [PairwiseRecord(item.prompt, item.responses[0], item.responses[-1], item.scores[0], item.scores[-1])
            for item in lists]


def listwise_to_sft(lists: list[ListwiseRecord]) -> list[SFTRecord]:
    return [SFTRecord(item.prompt, item.responses[0]) for item in lists]


FROM_PAIRS = {"pairwise": list, "binary": pairwise_to_binary, "scalar": pairwise_to_scalar, "sft": pairwise_to_sft}


def impossible_conversion(source: str, target: str, list_size: int | None = None) -> ConfigError:
    if (source, target) == ("pairwise", "listwise") and list_size is not None:
        return ConfigError(f"a method that needs listwise feedback cannot be trained on a pairwise dataset with "
                           f"data.list_size {list_size}: a pair only makes a list of 2 (set data.list_size: 2)")
    return ConfigError(f"a method that needs {target} feedback cannot be trained on a {source} dataset: "
                       f"{target} feedback cannot be made from {source} records")


def to_pairwise(records: list, seed: int) -> list[PairwiseRecord]:
    """Pairs from pairwise (as they are), scalar (seeded pairing) or listwise records (best vs worst)."""
    source = feedback_type(records)
    if source == "pairwise":
        return list(records)
    if source == "scalar":
        return scalar_to_pairwise(records, seed)
    if source == "listwise":
        return listwise_to_pairwise(records)
    raise impossible_conversion(source, "pairwise")


def can_convert(source: str, target: str, list_size: int = DEFAULT_LIST_SIZE) -> bool:
    """Whether ``target`` records can be made from ``source`` records (pairwise → scalar also needs scores;
    pairwise → listwise needs ``list_size`` 2)."""
    if source == target:
        return True
    if target == "listwise":
        return source == "scalar" or (source == "pairwise" and list_size == 2)
    return source in ("pairwise", "scalar", "listwise") or (source, target) == ("binary", "sft")


def convert(records: list, target: str, seed: int = 0, list_size: int = DEFAULT_LIST_SIZE) -> list:
    """Records of the ``target`` feedback type; the source type is read off the records.
    ``seed`` drives the pairing of scalar records and the sampling of scalar lists; ``list_size`` is the
    length of the lists made for a listwise target."""
    if target not in FEEDBACK_TYPES:
        raise ConfigError(f"unknown feedback type {target!r}; known: {', '.join(FEEDBACK_TYPES)}")
    if target == "listwise":
        _check_list_size(list_size)
    source = feedback_type(records)
    if (source, target) == ("listwise", "listwise"):
        return resize_lists(records, seed, list_size)
    if source == target:
        return list(records)
    if not can_convert(source, target, list_size):
        raise impossible_conversion(source, target, list_size if target == "listwise" else None)
    if target == "listwise":
        if source == "scalar":
            return scalar_to_listwise(records, seed, list_size)
        return pairwise_to_listwise(records, list_size)
    if source == "binary":
        return binary_to_sft(records)
    if source == "listwise" and target == "sft":
        return listwise_to_sft(records)
    return FROM_PAIRS[target](to_pairwise(records, seed))
