"""Registered datasets. Hub names are the identity; with ``ALIGNSUITE_DATA`` set the files come from the
local mirror (layout in its README), otherwise from the hub (or the dataset's upstream repository).
"""

from __future__ import annotations

import functools
import json
import math
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from suite.data.loaders import mirror_root, read_json_rows, split_hh_transcript
from suite.data.records import PairwiseRecord, ScalarRecord
from suite.errors import ConfigError, DataError, SuiteError


@dataclass(frozen=True)
class DatasetSpec:
    id: str
    hub_id: str
    feedback: str  # the record type it natively yields
    description: str
    source: str
    license: str
    rows: int  # approximate rows after cleaning
    mirror_file: str  # relative to the mirror root
    load_native: Callable[[], "LoadedRecords"]


@dataclass(frozen=True)
class LoadedRecords:
    records: list
    skipped: int
    origin: str  # the file or hub id they came from


# -- Anthropic HH-RLHF, harmless-base ------------------------------------------------------------

HH_MIRROR = "train/hh-rlhf/harmless-base/test.jsonl.gz"


def hh_pairs(rows, origin: str) -> LoadedRecords:
    records, skipped = [], 0
    for number, row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("chosen"), str) or not isinstance(row.get("rejected"), str):
            raise DataError(f"{origin}: row {number}: expected an object with string 'chosen' and 'rejected'")
        split = split_hh_transcript(row["chosen"], row["rejected"])
        if split is None or not split[1] or not split[2] or split[1] == split[2] or not split[0]:
            skipped += 1  # identical or empty responses carry no preference
            continue
        records.append(PairwiseRecord(*split))
    return LoadedRecords(records, skipped, origin)


@functools.lru_cache(maxsize=4)
def _load_hh_cached(path: str | None) -> LoadedRecords:
    if path is not None:
        return hh_pairs(read_json_rows(Path(path)), path)
    import datasets

    table = datasets.load_dataset("Anthropic/hh-rlhf", data_dir="harmless-base", split="test")
    return hh_pairs(enumerate(table, start=1), "hub Anthropic/hh-rlhf harmless-base test")


def load_hh_harmless() -> LoadedRecords:
    root = mirror_root()
    return _load_hh_cached(str(_mirror_file(root, HH_MIRROR)) if root else None)


# -- AlpacaEval GPT-4-turbo judged outputs ---------------------------------------------------------

ALPACA_MIRROR = "train/alpaca_eval_annotations/weighted_alpaca_eval_gpt4_turbo.jsonl.gz"
ALPACA_REPO = "https://raw.githubusercontent.com/tatsu-lab/alpaca_eval/cd543a14"
ALPACA_MODELS = Path(__file__).with_name("alpaca_eval_models.txt")


def alpaca_scalars(rows, origin: str) -> LoadedRecords:
    """One ScalarRecord per judged output: score = preference − 1 ∈ [0, 1] (1 = preferred over GPT-4-turbo)."""
    records, skipped = [], 0
    for number, row in rows:
        if not isinstance(row, dict):
            raise DataError(f"{origin}: row {number}: expected a JSON object")
        instruction, output, preference = row.get("instruction"), row.get("output_2"), row.get("preference")
        if not isinstance(instruction, str) or not instruction.strip():
            raise DataError(f"{origin}: row {number}: key 'instruction': missing or empty")
        if (not isinstance(output, str) or not output.strip() or not isinstance(preference, (int, float))
                or isinstance(preference, bool) or not math.isfinite(preference)):
            skipped += 1  # unjudged or empty outputs exist upstream
            continue
        if not 1.0 <= preference <= 2.0:
            raise DataError(f"{origin}: row {number}: key 'preference': {preference} outside [1, 2]")
        records.append(ScalarRecord(instruction, output, float(preference) - 1.0))
    return LoadedRecords(records, skipped, origin)


@functools.lru_cache(maxsize=4)
def _load_alpaca_cached(path: str | None) -> LoadedRecords:
    if path is not None:
        return alpaca_scalars(read_json_rows(Path(path)), path)
    rows = []
    models = [m for m in ALPACA_MODELS.read_text().splitlines() if m and not m.startswith("#")]
    for model in models:
        url = f"{ALPACA_REPO}/results/{model}/weighted_alpaca_eval_gpt4_turbo/annotations.json"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed https URL)
                rows += json.load(response)
        except OSError as exc:
            raise SuiteError(f"alpaca-eval-scored: cannot download {url} ({exc}); set ALIGNSUITE_DATA to a mirror") from None
    return alpaca_scalars(enumerate(rows, start=1), f"{ALPACA_REPO} ({len(models)} models)")


def load_alpaca_scored() -> LoadedRecords:
    root = mirror_root()
    return _load_alpaca_cached(str(_mirror_file(root, ALPACA_MIRROR)) if root else None)


def _mirror_file(root: Path, relative: str) -> Path:
    path = root / relative
    if not path.is_file():
        raise DataError(f"{path}: not in the mirror at {root} (expected layout: {relative})")
    return path


DATASETS: dict[str, DatasetSpec] = {
    spec.id: spec
    for spec in (
        DatasetSpec(
            id="hh-rlhf-harmless",
            hub_id="Anthropic/hh-rlhf (data_dir harmless-base, split test)",
            feedback="pairwise",
            description="Human pairwise preferences on harmlessness; shared prompt split from the two responses",
            source="Bai et al. 2022, Training a Helpful and Harmless Assistant with RLHF (arXiv 2204.05862)",
            license="MIT",
            rows=2312,
            mirror_file=HH_MIRROR,
            load_native=load_hh_harmless,
        ),
        DatasetSpec(
            id="alpaca-eval-scored",
            hub_id="tatsu-lab/alpaca_eval (weighted_alpaca_eval_gpt4_turbo annotations, 58 models)",
            feedback="scalar",
            description="805 AlpacaEval prompts x 58 models' outputs, GPT-4-turbo preference vs its own answer in [0, 1]",
            source="Dubois et al. 2024, Length-Controlled AlpacaEval (arXiv 2404.04475)",
            license="Apache-2.0 (outputs keep their generators' terms)",
            rows=46680,
            mirror_file=ALPACA_MIRROR,
            load_native=load_alpaca_scored,
        ),
    )
}


def get_dataset(dataset_id: str) -> DatasetSpec:
    if dataset_id not in DATASETS:
        raise ConfigError(f"dataset: unknown dataset {dataset_id!r}; registered: {', '.join(sorted(DATASETS))}, "
                          "or a local file as {path: FILE, format: pairwise|binary|scalar|sft}")
    return DATASETS[dataset_id]


def describe_datasets() -> list[dict]:
    return [
        {"id": s.id, "hub_id": s.hub_id, "feedback": s.feedback, "source": s.source, "license": s.license,
         "rows": s.rows, "description": s.description}
        for s in DATASETS.values()
    ]
