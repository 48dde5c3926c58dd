"""report.md leads with what separates the methods: held-out reward accuracy against base's 0.5 (a method
whose interval contains it is "not trained enough at this budget", not ranked), and each leaderboard's
difference from base with its paired interval and smallest detectable difference."""

import json

from support.stores import ROW_DOCS, spec_file, write_run

from suite.analysis.tables import folder_table
from suite.execution.store import load_runs
from suite.reporting.power import NOT_TRAINED, TRAINED, separating_markdown


def _store(tmp_path):
    spec_path = spec_file(tmp_path / "specs")
    results = tmp_path / "results"
    write_run(results, spec_path, "base-0000", "base", 0, ROW_DOCS["base"], margins=[0.0] * 40)
    write_run(results, spec_path, "strong-s0-1111", "strong", 0, ROW_DOCS["strong"], margins=[0.5, 0.3] * 20)
    write_run(results, spec_path, "drift-s0-2222", "drift", 0, ROW_DOCS["base"], margins=[0.2, -0.2, 0.1, -0.1] * 10)
    for manifest_path in (results / "runs").glob("*/manifest.json"):  # the runs' config names the local spec
        manifest = json.loads(manifest_path.read_text())
        manifest["config"] = {"eval": {"leaderboard": str(spec_path)}}
        manifest_path.write_text(json.dumps(manifest))
    return results


def _row(text, method):
    return next(line for line in text.splitlines() if line.startswith(f"| {method} |"))


def test_reward_accuracy_against_base_decides_who_is_ranked(tmp_path):
    results = _store(tmp_path)
    runs = load_runs(results)
    text = separating_markdown(results, runs, folder_table(runs), resamples=400)
    assert text.startswith("## What separates the methods at this budget")
    strong, drift = _row(text, "strong"), _row(text, "drift")
    assert TRAINED in strong and "| 40 | 1.000 [1.000, 1.000]" in strong
    assert NOT_TRAINED in drift and "0.500 [" in drift  # half its margins positive: accuracy 0.5, as base's
    board = text.split("**tiny-board**")[1]
    assert "smallest detectable" in board
    assert f"no: {NOT_TRAINED}" in _row(board, "drift") and _row(board, "strong").endswith("| yes |")
    # drift answered every document as base did: its difference is exactly 0 with a zero-width interval
    assert "+0.00 [+0.00, +0.00]" in _row(board, "drift")


def test_held_out_measures_alone_and_nothing_when_nothing_was_measured(tmp_path):
    results = _store(tmp_path)
    for manifest_path in (results / "runs").glob("*/manifest.json"):  # evaluated on no leaderboard
        manifest = json.loads(manifest_path.read_text())
        manifest["leaderboard"] = manifest["eval_settings"] = None
        manifest_path.write_text(json.dumps(manifest))
        metrics = json.loads((manifest_path.parent / "metrics.json").read_text())
        metrics["eval_settings"] = None
        (manifest_path.parent / "metrics.json").write_text(json.dumps(metrics))
    runs = load_runs(results)
    text = separating_markdown(results, runs, folder_table(runs), resamples=100)
    assert NOT_TRAINED in _row(text, "drift") and "tiny-board" not in text
    for metrics_path in (results / "runs").glob("*/metrics.json"):
        metrics = json.loads(metrics_path.read_text())
        del metrics["alignment_pairs"]
        metrics_path.write_text(json.dumps(metrics))
    runs = load_runs(results)
    assert separating_markdown(results, runs, folder_table(runs), resamples=100) is None
