"""A results folder written before the reporting pipeline was unified (issue 17) is still read and reported.

``tests/fixtures/results-before-17`` holds the json / jsonl files of a tiny-llama run (base + DPO, two
steps, the one-task ``tiny-test`` leaderboard of conftest) made by the code of commit d169cf4; its weights
are left out. Every view — report.md and leaderboard.csv, the leaderboard files, index.html — must read it
and show the numbers it stored.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from support import FIXTURES, write_local_leaderboard

from suite.analysis.tables import build_table, collect_runs
from suite.execution.store import load_runs, train_curves
from suite.reporting.html import write_html_report
from suite.reporting.leaderboard import write_leaderboard
from suite.reporting.render import fmt
from suite.reporting.report import write_report

OLD = FIXTURES / "results-before-17"


def stored(label: str) -> dict:
    (folder,) = [p for p in (OLD / "runs").iterdir() if p.name.startswith(f"{label}-")]
    return json.loads((folder / "metrics.json").read_text())


@pytest.fixture
def old(tmp_path) -> tuple[Path, Path]:
    """A copy of the old folder (reports are written into it) and the spec its runs were evaluated on."""
    results = tmp_path / "results"
    shutil.copytree(OLD, results)
    (tmp_path / "spec").mkdir()
    return results, write_local_leaderboard(tmp_path / "spec")


def test_the_store_reads_every_old_run():
    runs = load_runs(OLD)
    assert [run.method for run in runs] == ["base", "dpo"] and all(run.complete for run in runs)
    assert {run.leaderboard for run in runs} == {"tiny-test"}
    dpo = next(run for run in runs if run.method == "dpo")
    assert [step for step, _ in train_curves(dpo.folder)["loss"]] == [1.0, 2.0]


def test_report_md_and_csv_show_the_stored_numbers(old):
    results, _ = old
    paths = write_report(results)
    table = pd.read_csv(paths.csv).set_index("method")
    dpo = stored("dpo")
    assert table.loc["dpo", "colors/acc"] == pytest.approx(dpo["eval"]["colors"]["acc"])
    assert table.loc["dpo", "average"] == pytest.approx(dpo["eval_average"])
    assert table.loc["dpo", "reward_margin"] == pytest.approx(dpo["alignment"]["reward_margin"])
    markdown = paths.markdown.read_text()
    assert markdown.startswith("# alignsuite report: old-format") and "2 complete, 0 failed" in markdown
    assert f"| {100 * dpo['eval']['colors']['acc']:.2f} |" in markdown
    assert paths.scores_png is not None and paths.train_loss_png is not None


def test_leaderboard_files_and_index_page_read_the_old_folder(old):
    results, spec = old
    table = build_table(collect_runs([results], str(spec)))
    assert [row.method for row in table.rows] == ["base", "dpo"]
    dpo, base = stored("dpo"), stored("base")
    assert table.rows[1].mean["colors"] == pytest.approx(dpo["eval_headline"]["colors"])
    assert table.rows[1].delta["reward_accuracy"] == pytest.approx(
        dpo["alignment"]["reward_accuracy"] - base["alignment"]["reward_accuracy"])
    written = write_leaderboard([results], str(spec), significance_resamples=200)
    assert {"md", "csv", "html", "tex"} <= set(written)
    markdown = written["md"].read_text()
    assert f"| dpo | 1 | {fmt(dpo['eval_headline']['colors'])} |" in markdown
    assert "significant?" in markdown  # the old folder kept its per-document results
    page = write_html_report(results, [str(spec)], significance_resamples=200).read_text()
    assert "Leaderboard: tiny-test" in page and "dpo-s0-15719e815c" in page
