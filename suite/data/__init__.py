"""The data layer: load (registered source or local file) ► validate ► split held-out by prompt ► convert.

``prepare_data`` is the one entry point the runner uses. Identical conditions across methods:

* the held-out split is by prompt, on the native records, fixed by ``split_seed`` (not the run's seed),
  so every feedback type made from one source holds out the same prompts;
* scalar sources are paired once (seeded by ``split_seed``) and every target type is built from those
  pairs, so a pairwise method and a binary or scalar one see the same responses: pairwise pair i is
  binary / scalar records 2i (chosen) and 2i+1 (rejected), sft record i;
* the run's ``seed`` shuffles the pairs (not single records) before ``train_max``, so one seed gives
  every method the same examples;
* listwise training data is made from the native training records directly (scalar: one list of
  ``list_size`` per prompt, see ``convert.scalar_to_listwise``), seeded by ``split_seed``, and the run's
  ``seed`` shuffles whole lists; the held-out pairs are the same pairs every other feedback type gets.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from suite.core.errors import ConfigError, DataError
from suite.data.convert import (
    DEFAULT_LIST_SIZE,
    can_convert,
    convert,
    feedback_type,
    impossible_conversion,
    to_pairwise,
)
from suite.data.loaders import load_local, mirror_root
from suite.data.records import FEEDBACK_TYPES, PairwiseRecord, prompt_key
from suite.data.registry import DATASETS, DatasetSpec, describe_datasets, get_dataset

__all__ = [
    "DATASETS", "DatasetSpec", "PreparedData", "convert", "describe_datasets", "get_dataset", "heldout_split",
    "is_heldout", "load_local", "load_native", "mirror_root", "prepare_data",
]

PAIRABLE = ("pairwise", "scalar", "listwise")  # sources that give preference pairs (listwise: best vs worst)


@dataclass
class PreparedData:
    dataset_id: str  # registry id or the local file path
    feedback: str  # the target feedback type
    train: list  # records of the target type, deterministic order given the seed
    heldout_pairs: list[PairwiseRecord]  # empty when the source cannot give pairs
    stats: dict = field(default_factory=dict)
    # pairs from training prompts kept apart (``validation_fraction``): where a sweep selects its point
    validation_pairs: list[PairwiseRecord] = field(default_factory=list)


def load_native(dataset) -> tuple[str, list, dict]:
    """(dataset id, native records, stats) for a registered id or a local ``{path, format}``."""
    if isinstance(dataset, dict):
        unknown = sorted(set(dataset) - {"path", "format"})
        if unknown:
            raise ConfigError(f"dataset.{unknown[0]}: unknown key; a local dataset has path and format")
        path, fmt = dataset.get("path"), dataset.get("format")
        if not isinstance(path, str) or not path or not isinstance(fmt, str):
            raise ConfigError("dataset: a local dataset needs a string 'path' and 'format' "
                              "(pairwise|binary|scalar|sft|listwise)")
        records = load_local(path, fmt)
        return path, records, {"origin": path, "rows": len(records), "skipped": 0}
    if not isinstance(dataset, str):
        raise ConfigError(f"dataset: expected a dataset id or {{path, format}}, got {dataset!r}")
    loaded = get_dataset(dataset).load_native()
    stats = {"origin": loaded.origin, "rows": len(loaded.records), "skipped": loaded.skipped}
    return dataset, list(loaded.records), stats


def is_heldout(prompt, fraction: float, split_seed: int) -> bool:
    """A stable, seeded coin per prompt (SHA-256, not ``hash()``): all of a prompt's responses land on
    the same side, on every machine and in every process."""
    digest = hashlib.sha256(f"{split_seed}:{prompt_key(prompt)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def heldout_split(records: list, fraction: float, split_seed: int) -> tuple[list, list]:
    """(train, held-out) records, split by prompt; order kept within each side."""
    train, heldout = [], []
    for record in records:
        (heldout if is_heldout(record.prompt, fraction, split_seed) else train).append(record)
    return train, heldout


def _check_arguments(feedback, heldout_fraction, heldout_max, train_max, list_size) -> None:
    if feedback not in FEEDBACK_TYPES:
        raise ConfigError(f"unknown feedback type {feedback!r}; known: {', '.join(FEEDBACK_TYPES)}")
    if isinstance(heldout_fraction, bool) or not isinstance(heldout_fraction, (int, float)) \
            or not 0.0 <= heldout_fraction < 1.0:
        raise ConfigError(f"data.heldout_fraction: expected a number in [0, 1), got {heldout_fraction!r}")
    for key, value in (("heldout_max", heldout_max), ("train_max", train_max)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"data.{key}: expected a positive integer or null, got {value!r}")
    if isinstance(list_size, bool) or not isinstance(list_size, int) or list_size < 2:
        raise ConfigError(f"data.list_size: expected an integer >= 2, got {list_size!r}")


def _train_records(dataset_id: str, native: list, source: str, feedback: str, seed: int, split_seed: int,
                   list_size: int = DEFAULT_LIST_SIZE):
    """(training records of ``feedback`` type, number of shuffled units) from the training side."""
    if feedback == "listwise":  # lists are the units: made once (split_seed), shuffled whole (seed)
        try:
            units = convert(native, "listwise", split_seed, list_size)
        except DataError as exc:
            raise DataError(f"dataset {dataset_id}: {exc}") from None
        if not units:
            raise ConfigError(f"dataset {dataset_id}: no lists of {list_size} responses left for training after "
                              f"the held-out split (a prompt needs at least {list_size} distinct responses)")
        random.Random(seed).shuffle(units)
        return units, len(units)
    if source in PAIRABLE:
        units = to_pairwise(native, split_seed)  # the one pairing every target type is built from
    else:
        units = list(native)
    if not units:
        raise ConfigError(f"dataset {dataset_id}: no {'pairs' if source in PAIRABLE else 'records'} left "
                          "for training after the held-out split")
    random.Random(seed).shuffle(units)  # whole pairs move, so pair i stays records 2i, 2i+1 after conversion
    try:
        return convert(units, feedback, split_seed), len(units)
    except DataError as exc:
        raise DataError(f"dataset {dataset_id}: {exc}") from None


VALIDATION_SALT = 7919  # the validation coin's seed offset from split_seed (any fixed number would do)


def prepare_data(
    dataset,
    feedback: str,
    *,
    seed: int = 0,
    heldout_fraction: float = 0.1,
    heldout_max: int | None = None,
    train_max: int | None = None,
    split_seed: int = 1234,
    list_size: int = DEFAULT_LIST_SIZE,
    validation_fraction: float = 0.0,
) -> PreparedData:
    """Training records of ``feedback`` type and held-out preference pairs from one source.

    ``dataset`` is a registered id (see ``describe_datasets``) or ``{"path": FILE, "format": TYPE}``.
    A prompt is held out iff its SHA-256 coin under ``split_seed`` falls below ``heldout_fraction``;
    the split is made on the native records before any conversion. ``train_max`` keeps the first
    records after the ``seed`` shuffle of whole pairs; ``heldout_max`` the first held-out pairs after a
    ``split_seed`` shuffle. ``list_size`` is the number of responses per list for listwise feedback.
    """
    _check_arguments(feedback, heldout_fraction, heldout_max, train_max, list_size)
    dataset_id, native, stats = load_native(dataset)
    source = feedback_type(native)
    if not can_convert(source, feedback, list_size):
        error = impossible_conversion(source, feedback, list_size if feedback == "listwise" else None)
        raise ConfigError(f"dataset {dataset_id}: {error}")
    train_native, heldout_native = heldout_split(native, heldout_fraction, split_seed)
    validation_native = []
    if validation_fraction:
        # a second coin, on the prompts left for training: validation prompts are neither trained on nor
        # among the held-out test pairs, and the test split is the same as without a validation split
        train_native, validation_native = heldout_split(train_native, validation_fraction / (1 - heldout_fraction),
                                                        split_seed + VALIDATION_SALT)
    if not train_native:
        raise ConfigError(f"dataset {dataset_id}: no training records left after holding out "
                          f"{heldout_fraction:.0%} of the prompts")
    train, units = _train_records(dataset_id, train_native, source, feedback, seed, split_seed, list_size)
    converted = len(train)
    if train_max is not None:
        train = train[:train_max]
    if not train:
        raise ConfigError(f"dataset {dataset_id}: no {feedback} training records (from {source} data)")

    heldout_pairs: list[PairwiseRecord] = []
    if source in PAIRABLE and heldout_native:
        heldout_pairs = to_pairwise(heldout_native, split_seed)
        random.Random(split_seed).shuffle(heldout_pairs)
        heldout_pairs = heldout_pairs[:heldout_max] if heldout_max is not None else heldout_pairs

    validation_pairs: list[PairwiseRecord] = []
    if validation_fraction:
        if source not in PAIRABLE or not validation_native:
            raise ConfigError(f"dataset {dataset_id}: no validation pairs for data.validation_fraction "
                              f"{validation_fraction} ({len(validation_native)} validation records from {source} data)")
        validation_pairs = to_pairwise(validation_native, split_seed)
        random.Random(split_seed).shuffle(validation_pairs)
        validation_pairs = validation_pairs[:heldout_max] if heldout_max is not None else validation_pairs
        stats.update(validation_fraction=validation_fraction, validation_pairs=len(validation_pairs),
                     validation_prompts=len({prompt_key(r.prompt) for r in validation_native}))

    stats.update(
        source_feedback=source,
        feedback=feedback,
        seed=seed,
        split_seed=split_seed,
        heldout_fraction=heldout_fraction,
        train_native=len(train_native),
        heldout_native=len(heldout_native),
        train_prompts=len({prompt_key(r.prompt) for r in train_native}),
        heldout_prompts=len({prompt_key(r.prompt) for r in heldout_native}),
        train_units=units,
        train_converted=converted,
        train_records=len(train),
        heldout_pairs=len(heldout_pairs),
    )
    if feedback == "listwise":
        stats["list_size"] = list_size
    return PreparedData(dataset_id, feedback, train, heldout_pairs, stats, validation_pairs)
