"""All runs of one or more results folders as one pandas DataFrame — for notebooks and your own analysis.

    from suite.analysis.frame import runs_frame
    df = runs_frame("results/demo")                       # one row per run
    df[df.status == "complete"].groupby("method")["eval_average"].mean()

Columns: the run's identity (``run_id``, ``method`` — the row label —, ``method_id``, ``model``, ``dataset``,
``seed``, ``status``, ``leaderboard``, ``experiment``, ``folder``), ``eval_average``, then every number of its
``metrics.json`` flattened with ``/``: ``eval/<task>/<metric>``, ``headline/<task>`` (percent),
``stderr/<task>``, ``alignment/<metric>``, ``train/<key>``, ``judged/<key>``, ``timings/<phase>``. Hyper-parameters
are ``hp/<name>``. Failed and unfinished runs are rows too, with their ``error`` and no numbers. Everything is
read through the store's reader (suite.execution.store), so a malformed file is the same clear error as in reports.
"""

from __future__ import annotations

import json
from pathlib import Path

from suite.execution.store import dataset_label, is_number, load_runs

# metrics.json sections flattened into columns, and their column prefix
SECTIONS = {"eval": "eval", "eval_headline": "headline", "eval_stderr": "stderr", "alignment": "alignment",
            "train": "train", "judged": "judged", "timings": "timings"}


def _flatten(node, prefix: str, into: dict) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            _flatten(value, f"{prefix}/{key}", into)
    elif is_number(node):
        into[prefix] = float(node)


def run_row(record) -> dict:
    """One run as a flat dict of its identity and numbers (see the module docstring)."""
    manifest, metrics = record.manifest, record.metrics or {}
    row = {"run_id": record.run_id, "method": record.method, "method_id": manifest.get("method_id"),
           "experiment": manifest.get("experiment"), "model": manifest.get("model"),
           "dataset": dataset_label(manifest.get("dataset")), "seed": manifest.get("seed"),
           "status": record.status, "leaderboard": record.leaderboard, "error": manifest.get("error"),
           "folder": str(record.folder), "eval_average": metrics.get("eval_average")}
    for name, value in (manifest.get("hyperparameters") or {}).items():
        row[f"hp/{name}"] = value if isinstance(value, (int, float, str, bool)) or value is None \
            else json.dumps(value, sort_keys=True)
    for section, prefix in SECTIONS.items():
        _flatten(metrics.get(section) or {}, prefix, row)
    return row


def runs_frame(*results_dirs):
    """Every run of ``results_dirs`` (folders holding ``runs/``) as one DataFrame, a row per run."""
    import pandas as pd

    rows = [run_row(record) for folder in results_dirs for record in load_runs(Path(folder))]
    return pd.DataFrame(rows)
