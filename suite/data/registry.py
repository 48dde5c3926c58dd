"""Registered datasets. Hub names are the identity of a dataset; with ``ALIGNSUITE_DATA`` set the rows
come from the local mirror (layout in its README), otherwise from the hub (or, for AlpacaEval's
annotations, from the upstream GitHub repository at a pinned commit). Both paths give the same rows.
"""

from __future__ import annotations

import functools
import json
import math
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from suite.core.registry import Registry
from suite.core.errors import DataError, SuiteError
from suite.data.alpaca_eval_models import ALPACA_EVAL_COMMIT, ALPACA_EVAL_MODELS
from suite.data.loaders import mirror_root, read_json_rows, split_hh_transcript
from suite.data.records import PairwiseRecord, ScalarRecord, SFTRecord


@dataclass(frozen=True)
class LoadedRecords:
    """A source's records after cleaning, how many rows were skipped, and where they came from."""

    records: tuple
    skipped: int
    origin: str


@dataclass(frozen=True)
class DatasetSpec:
    id: str
    hub_id: str  # the identity: the hub dataset (or upstream repository) the rows come from
    hub_config: str | None  # the hub config / data_dir, None for the default
    hub_split: str | None  # None where the upstream has no splits
    feedback: str  # the record type the source natively yields
    description: str
    source: str  # paper / origin to cite
    license: str
    rows: int  # rows in the source file, before skipping
    mirror_file: str  # relative to the mirror root
    upstream: str  # where the loader reads from without a mirror
    loader: Callable[[], LoadedRecords]  # mirror when ALIGNSUITE_DATA is set, else the hub / upstream

    def load_native(self) -> LoadedRecords:
        return self.loader()


def _mirror_file(root: Path, relative: str) -> Path:
    path = root / relative
    if not path.is_file():
        raise DataError(f"{path}: not in the mirror at {root} (expected the file {relative})")
    return path


# -- Anthropic HH-RLHF, harmless-base ------------------------------------------------------------

HH_MIRROR = "train/hh-rlhf/harmless-base/test.jsonl.gz"


def hh_pairs(rows, origin: str) -> LoadedRecords:
    """One PairwiseRecord per ``{chosen, rejected}`` transcript pair; pairs whose responses are empty
    or identical after splitting (a few real rows) are skipped and counted."""
    records, skipped = [], 0
    for number, row in rows:
        if not (isinstance(row, dict) and isinstance(row.get("chosen"), str) and isinstance(row.get("rejected"), str)):
            raise DataError(f"{origin}: row {number}: expected an object with string 'chosen' and 'rejected'")
        split = split_hh_transcript(row["chosen"], row["rejected"])
        if split is None:
            skipped += 1  # no shared assistant cue: no prompt to split off
            continue
        prompt, chosen, rejected = split
        if not chosen or not rejected or chosen == rejected or not prompt or prompt[-1]["role"] != "user":
            skipped += 1  # no preference signal
            continue
        records.append(PairwiseRecord(prompt, chosen, rejected))
    return LoadedRecords(tuple(records), skipped, origin)


@functools.lru_cache(maxsize=4)
def _hh_from_file(path: str) -> LoadedRecords:
    return hh_pairs(read_json_rows(path), path)


@functools.lru_cache(maxsize=1)
def _hh_from_hub() -> LoadedRecords:
    origin = "hub Anthropic/hh-rlhf (data_dir harmless-base, split test)"
    try:
        import datasets

        table = datasets.load_dataset("Anthropic/hh-rlhf", data_dir="harmless-base", split="test")
    except Exception as exc:  # noqa: BLE001 - any failure here means the hub is out of reach
        raise SuiteError(f"hh-rlhf-harmless: cannot load {origin}: {type(exc).__name__}: {exc}; "
                         "set ALIGNSUITE_DATA to a local mirror") from None
    return hh_pairs(enumerate(table, start=1), origin)


def load_hh_harmless() -> LoadedRecords:
    """The 2312-row test split of harmless-base: from the mirror, else the hub (the same split)."""
    root = mirror_root()
    return _hh_from_file(str(_mirror_file(root, HH_MIRROR))) if root else _hh_from_hub()


# -- AlpacaEval GPT-4-turbo judged outputs ---------------------------------------------------------

ALPACA_MIRROR = "train/alpaca_eval_annotations/weighted_alpaca_eval_gpt4_turbo.jsonl.gz"
ALPACA_UPSTREAM = f"https://raw.githubusercontent.com/tatsu-lab/alpaca_eval/{ALPACA_EVAL_COMMIT}"
ALPACA_ANNOTATIONS = "results/{model}/weighted_alpaca_eval_gpt4_turbo/annotations.json"


def alpaca_scalars(rows, origin: str) -> LoadedRecords:
    """One ScalarRecord per judged output: prompt = instruction, completion = output_2, score =
    preference − 1 ∈ [0, 1] (1 = preferred over GPT-4-turbo's own answer). Rows with an empty output
    or a missing / NaN preference are skipped and counted."""
    records, skipped = [], 0
    for number, row in rows:
        if not isinstance(row, dict):
            raise DataError(f"{origin}: row {number}: expected a JSON object")
        instruction, output, preference = row.get("instruction"), row.get("output_2"), row.get("preference")
        if not isinstance(instruction, str) or not instruction.strip():
            raise DataError(f"{origin}: row {number}, key 'instruction': missing or empty")
        if (not isinstance(output, str) or not output.strip() or isinstance(preference, bool)
                or not isinstance(preference, (int, float)) or math.isnan(preference)):
            skipped += 1  # empty or unjudged outputs exist upstream
            continue
        if not 1.0 <= preference <= 2.0:
            raise DataError(f"{origin}: row {number}, key 'preference': {preference} is outside [1, 2]")
        records.append(ScalarRecord(instruction, output, float(preference) - 1.0))
    return LoadedRecords(tuple(records), skipped, origin)


@functools.lru_cache(maxsize=4)
def _alpaca_from_file(path: str) -> LoadedRecords:
    return alpaca_scalars(read_json_rows(path), path)


def download_alpaca_annotations(base_url: str = ALPACA_UPSTREAM, models=ALPACA_EVAL_MODELS) -> list[tuple[int, dict]]:
    """The annotation rows of ``models`` from the upstream repository, flattened in the mirror's order."""
    rows: list = []
    for model in models:
        url = f"{base_url}/{ALPACA_ANNOTATIONS.format(model=model)}"
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (fixed, pinned URL)
                annotations = json.load(response)
        except (OSError, ValueError) as exc:
            raise SuiteError(f"alpaca-eval-scored: cannot download {url} ({exc}); "
                             "set ALIGNSUITE_DATA to a local mirror") from None
        if not isinstance(annotations, list):
            raise DataError(f"{url}: expected a list of annotations, got a {type(annotations).__name__}")
        rows += annotations
    return list(enumerate(rows, start=1))


@functools.lru_cache(maxsize=1)
def _alpaca_from_upstream() -> LoadedRecords:
    rows = download_alpaca_annotations()
    return alpaca_scalars(rows, f"{ALPACA_UPSTREAM} ({len(ALPACA_EVAL_MODELS)} annotation files)")


def load_alpaca_scored() -> LoadedRecords:
    root = mirror_root()
    return _alpaca_from_file(str(_mirror_file(root, ALPACA_MIRROR))) if root else _alpaca_from_upstream()


# -- SFT sets for PAFT's parallel SFT: Alpaca (5k subset) and GSM8K train ------------------------------

ALPACA_5K_MIRROR = "train/alpaca/alpaca_5000.json"
ALPACA_5K_UPSTREAM = "https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/5e69c500/data/alpaca_5000.json"
GSM8K_TRAIN_MIRROR = "hub/openai/gsm8k/main/train.jsonl"


def _text(row, key: str, origin: str, number: int, required: bool = True) -> str:
    value = row.get(key, "" if not required else None) if isinstance(row, dict) else None
    if not isinstance(value, str) or (required and not value.strip()):
        raise DataError(f"{origin}: row {number}, key {key!r}: missing or empty")
    return value


def alpaca_demonstrations(rows, origin: str) -> LoadedRecords:
    """One SFTRecord per Alpaca row: prompt = instruction (+ blank line + input when present), completion =
    output. Rows with an empty output (a few exist upstream) are skipped and counted."""
    records, skipped = [], 0
    for number, row in rows:
        instruction, extra = _text(row, "instruction", origin, number), _text(row, "input", origin, number, False)
        output = _text(row, "output", origin, number, False)
        if not output.strip():
            skipped += 1
            continue
        prompt = f"{instruction}\n\n{extra}" if extra.strip() else instruction
        records.append(SFTRecord(prompt, output))
    return LoadedRecords(tuple(records), skipped, origin)


def gsm8k_demonstrations(rows, origin: str) -> LoadedRecords:
    """One SFTRecord per GSM8K train problem: prompt = question, completion = the worked answer ending
    in ``#### <number>`` (the format lm-eval's gsm8k task extracts)."""
    records = [SFTRecord(_text(row, "question", origin, n), _text(row, "answer", origin, n)) for n, row in rows]
    return LoadedRecords(tuple(records), 0, origin)


@functools.lru_cache(maxsize=4)
def _sft_from_file(path: str, parse: Callable) -> LoadedRecords:
    return parse(read_json_rows(path), path)


def _alpaca_5k_from_upstream() -> LoadedRecords:
    try:
        with urllib.request.urlopen(ALPACA_5K_UPSTREAM, timeout=60) as response:  # noqa: S310 (pinned URL)
            rows = json.load(response)
    except (OSError, ValueError) as exc:
        raise SuiteError(f"alpaca-5k: cannot download {ALPACA_5K_UPSTREAM} ({exc}); set ALIGNSUITE_DATA to a local "
                         "mirror") from None
    return alpaca_demonstrations(list(enumerate(rows, start=1)), ALPACA_5K_UPSTREAM)


def _gsm8k_from_hub() -> LoadedRecords:
    import datasets

    rows = datasets.load_dataset("openai/gsm8k", "main", split="train")
    return gsm8k_demonstrations(list(enumerate(rows, start=1)), "hub openai/gsm8k main/train")


def load_alpaca_5k() -> LoadedRecords:
    root = mirror_root()
    if root:
        return _sft_from_file(str(_mirror_file(root, ALPACA_5K_MIRROR)), alpaca_demonstrations)
    return _alpaca_5k_from_upstream()


def load_gsm8k_train() -> LoadedRecords:
    root = mirror_root()
    return _sft_from_file(str(_mirror_file(root, GSM8K_TRAIN_MIRROR)), gsm8k_demonstrations) if root else _gsm8k_from_hub()


# -- the registry -----------------------------------------------------------------------------------

DATASETS: Registry[DatasetSpec] = Registry(
    "dataset", "dataset", listing="registered",
    hint=" (or a local file as {path: FILE, format: pairwise|binary|scalar|sft|listwise})")
for _spec in (
        DatasetSpec(
            id="hh-rlhf-harmless",
            hub_id="Anthropic/hh-rlhf",
            hub_config="harmless-base",
            hub_split="test",
            feedback="pairwise",
            description="Human pairwise preferences on harmlessness (the 2312-row test split of harmless-base; "
                        "only this split is mirrored, so the hub path reads it too); multi-turn prompts as chat "
                        "messages, pairs with empty or identical responses skipped",
            source="Bai et al. 2022, Training a Helpful and Harmless Assistant with RLHF (arXiv 2204.05862); "
                   "github.com/anthropics/hh-rlhf",
            license="MIT",
            rows=2312,
            mirror_file=HH_MIRROR,
            upstream='datasets.load_dataset("Anthropic/hh-rlhf", data_dir="harmless-base", split="test")',
            loader=load_hh_harmless,
        ),
        DatasetSpec(
            id="alpaca-eval-scored",
            hub_id="tatsu-lab/alpaca_eval",
            hub_config="weighted_alpaca_eval_gpt4_turbo",
            hub_split=None,
            feedback="scalar",
            description="805 AlpacaEval instructions x 58 models' outputs, each scored by GPT-4-turbo's weighted "
                        "preference over its own answer: score = preference - 1 in [0, 1]; empty outputs skipped",
            source="Dubois et al. 2024, Length-Controlled AlpacaEval (arXiv 2404.04475); "
                   f"github.com/tatsu-lab/alpaca_eval@{ALPACA_EVAL_COMMIT}",
            license="Apache-2.0 (repository); model outputs keep their generators' terms",
            rows=46680,
            mirror_file=ALPACA_MIRROR,
            upstream=f"{ALPACA_UPSTREAM}/{ALPACA_ANNOTATIONS} for {len(ALPACA_EVAL_MODELS)} models",
            loader=load_alpaca_scored,
        ),
        DatasetSpec(
            id="alpaca-5k",
            hub_id="tatsu-lab/alpaca",
            hub_config=None,
            hub_split=None,
            feedback="sft",
            description="A 5000-row random subset of the 52k Stanford Alpaca instruction demonstrations "
                        "(instruction + input -> output): PAFT-style SFT data",
            source="Taori et al. 2023, Stanford Alpaca; github.com/tatsu-lab/stanford_alpaca (PR #152, 5e69c500)",
            license="CC BY-NC 4.0 (non-commercial)",
            rows=5000,
            mirror_file=ALPACA_5K_MIRROR,
            upstream=ALPACA_5K_UPSTREAM,
            loader=load_alpaca_5k,
        ),
        DatasetSpec(
            id="gsm8k-train",
            hub_id="openai/gsm8k",
            hub_config="main",
            hub_split="train",
            feedback="sft",
            description="GSM8K training problems with worked answers ending in '#### <answer>' (math SFT data; "
                        "the leaderboard's gsm8k task scores the test split)",
            source="Cobbe et al. 2021, Training Verifiers to Solve Math Word Problems (arXiv 2110.14168)",
            license="MIT",
            rows=7473,
            mirror_file=GSM8K_TRAIN_MIRROR,
            upstream='datasets.load_dataset("openai/gsm8k", "main", split="train")',
            loader=load_gsm8k_train,
        ),
    ):
    DATASETS.add(_spec.id, _spec)


def get_dataset(dataset_id: str) -> DatasetSpec:
    """The registered dataset ``dataset_id``; ConfigError listing the known ids otherwise."""
    return DATASETS.get(dataset_id)


def describe_datasets() -> list[dict]:
    """One row per registered dataset, for ``alignsuite datasets [--json]``."""
    return [
        {"id": s.id, "hub_id": s.hub_id, "hub_config": s.hub_config, "hub_split": s.hub_split,
         "feedback": s.feedback, "source": s.source, "license": s.license, "rows": s.rows,
         "mirror_file": s.mirror_file, "description": s.description}
        for _, s in DATASETS.items()
    ]
