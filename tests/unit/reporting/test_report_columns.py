"""Judged win rates (metrics.json "judged") are columns of every table view (report.md's folder table, the
per-spec leaderboard in Markdown and CSV, with their difference from base); the preflight's data warnings are in report.md."""

import json

from support.stores import make_store

from suite.analysis.tables import build_table, collect_runs, folder_table
from suite.execution.store import load_runs
from suite.reporting.leaderboard import render_csv, render_markdown


def _judge(results, run_id, win_rate, lc, length):
    path = results / "runs" / run_id / "metrics.json"
    metrics = json.loads(path.read_text())
    metrics["judged"] = {"win_rate": win_rate, "length_controlled_winrate": lc, "avg_length_tokens": length}
    path.write_text(json.dumps(metrics))


def test_judged_win_rates_are_table_columns_with_deltas(tmp_path):
    results, spec_path = make_store(tmp_path)
    assert "judged_win_rate" not in folder_table(load_runs(results)).columns  # nobody judged: no column
    _judge(results, "base-0000", 50.0, None, 120.0)
    _judge(results, "strong-s0-1111", 62.0, None, 140.0)
    _judge(results, "strong-s1-2222", 58.0, None, 150.0)
    folder = folder_table(load_runs(results))
    assert {"judged_win_rate", "judged_avg_length"} <= set(folder.columns)
    assert "judged_lc_win_rate" not in folder.columns  # no run has it
    table = build_table(collect_runs([results], str(spec_path)))
    strong = next(row for row in table.rows if row.method == "strong")
    assert strong.mean["judged_win_rate"] == 60.0 and strong.delta["judged_win_rate"] == 10.0
    assert "judged_win_rate" in render_markdown(table) and "judged_win_rate" in render_csv(table)


def test_data_warnings_from_the_manifests_are_in_report_md(tmp_path):
    from suite.reporting.report import write_report

    results, _ = make_store(tmp_path)
    path = results / "runs" / "strong-s0-1111" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["data_warnings"] = ["3 of 24 pairs are identical after truncation to max_length 64"]
    path.write_text(json.dumps(manifest))
    text = write_report(results).markdown.read_text()
    assert "## Data warnings" in text and "3 of 24 pairs are identical after truncation" in text
    assert "`strong-s0-1111`" in text.split("## Data warnings")[1].split("##")[0]
