"""The data layer: load (registered source or local file) ► validate ► split held-out ► convert."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field

from suite.data.convert import convert, feedback_type, to_pairwise
from suite.data.loaders import load_local, mirror_root
from suite.data.records import FEEDBACK_TYPES, PairwiseRecord, prompt_key
from suite.data.registry import DATASETS, describe_datasets, get_dataset
from suite.errors import ConfigError

__all__ = ["PreparedData", "prepare_data", "load_native", "heldout_split", "describe_datasets", "DATASETS",
           "get_dataset", "mirror_root", "convert"]


@dataclass
class PreparedData:
    dataset_id: str
    feedback: str
    train: list
    heldout_pairs: list[PairwiseRecord]
    stats: dict = field(default_factory=dict)


def load_native(dataset) -> tuple[str, list, dict]:
    """(dataset id, native records, stats) for a registered id or ``{path, format}``."""
    if isinstance(dataset, dict):
        unknown = sorted(set(dataset) - {"path", "format"})
        if unknown:
            raise ConfigError(f"dataset.{unknown[0]}: unknown key; a local dataset has path and format")
        path, fmt = dataset.get("path"), dataset.get("format")
        if not isinstance(path, str) or not isinstance(fmt, str):
            raise ConfigError("dataset: a local dataset needs string 'path' and 'format'")
        records = load_local(path, fmt)
        return path, records, {"origin": path, "rows": len(records), "skipped": 0}
    if not isinstance(dataset, str):
        raise ConfigError(f"dataset: expected a dataset id or {{path, format}}, got {dataset!r}")
    loaded = get_dataset(dataset).load_native()
    return dataset, loaded.records, {"origin": loaded.origin, "rows": len(loaded.records), "skipped": loaded.skipped}


def is_heldout(prompt, fraction: float, split_seed: int) -> bool:
    """A stable, seeded, per-prompt coin: all responses to one prompt land on the same side."""
    digest = hashlib.sha256(f"{split_seed}:{prompt_key(prompt)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def heldout_split(records: list, fraction: float, split_seed: int) -> tuple[list, list]:
    train, heldout = [], []
    for record in records:
        (heldout if is_heldout(record.prompt, fraction, split_seed) else train).append(record)
    return train, heldout


def prepare_data(
    dataset,
    feedback: str,
    *,
    seed: int = 0,
    heldout_fraction: float = 0.1,
    heldout_max: int | None = None,
    train_max: int | None = None,
    split_seed: int = 1234,
) -> PreparedData:
    """Training records of ``feedback`` type and held-out pairs, identical across methods for one source.

    The held-out split is by prompt and fixed by ``split_seed``; scalar sources are paired with
    ``split_seed`` too, so a pairwise method and a binary or scalar one see the same responses. The run's
    ``seed`` only orders the training units (pairs, or records for unpaired sources) before ``train_max``.
    """
    if feedback not in FEEDBACK_TYPES:
        raise ConfigError(f"unknown feedback type {feedback!r}; known: {', '.join(FEEDBACK_TYPES)}")
    dataset_id, records, stats = load_native(dataset)
    source = feedback_type(records)
    train_native, heldout_native = heldout_split(records, heldout_fraction, split_seed)
    if not train_native:
        raise ConfigError(f"dataset {dataset_id}: no training records left after holding out {heldout_fraction:.0%} of prompts")

    if source in ("pairwise", "scalar"):
        units = to_pairwise(train_native, split_seed)
        random.Random(seed).shuffle(units)
        train = convert(units, feedback, split_seed) if units else []
    else:
        units = list(train_native)
        random.Random(seed).shuffle(units)
        train = convert(units, feedback, split_seed)
    if train_max is not None:
        train = train[:train_max]
    if not train:
        raise ConfigError(f"dataset {dataset_id}: no {feedback} training records")

    heldout_pairs: list[PairwiseRecord] = []
    if source in ("pairwise", "scalar") and heldout_native:
        heldout_pairs = to_pairwise(heldout_native, split_seed)
        random.Random(split_seed).shuffle(heldout_pairs)
        if heldout_max is not None:
            heldout_pairs = heldout_pairs[:heldout_max]
    stats.update(
        source_feedback=source,
        feedback=feedback,
        train_records=len(train),
        heldout_pairs=len(heldout_pairs),
        heldout_prompts=len({prompt_key(r.prompt) for r in heldout_native}),
        split_seed=split_seed,
    )
    return PreparedData(dataset_id, feedback, train, heldout_pairs, stats)
