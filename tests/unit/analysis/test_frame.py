"""Results others can read: every run of a folder as one pandas DataFrame, and the leaderboard as parquet."""

import json

import pandas as pd
import pytest
from support.stores import ROW_DOCS, expected_quiz, make_store

from suite.analysis.frame import runs_frame
from suite.cli import main


@pytest.fixture
def store(tmp_path):
    return make_store(tmp_path)


def test_runs_frame_has_a_row_per_run_with_its_numbers(store, tmp_path):
    results, _ = store
    frame = runs_frame(results)
    assert sorted(frame.run_id) == sorted(p.name for p in (results / "runs").iterdir())
    strong = frame.set_index("run_id").loc["strong-s0-1111"]
    metrics = json.loads((results / "runs" / "strong-s0-1111" / "metrics.json").read_text())
    assert strong["headline/quiz"] == pytest.approx(expected_quiz(ROW_DOCS["strong"]))
    assert strong["alignment/reward_accuracy"] == metrics["alignment"]["reward_accuracy"]
    assert strong["train/steps"] == 3 and strong["status"] == "complete" and strong["seed"] == 0
    broken = frame.set_index("run_id").loc["broken-s0-4444"]
    assert broken["status"] == "failed" and pd.isna(broken["alignment/reward_accuracy"])
    assert frame[frame.status == "complete"].groupby("method")["alignment/reward_accuracy"].mean().shape == (3,)


def test_leaderboard_writes_parquet_that_pandas_reads(store, tmp_path):
    results, spec_path = store
    out = tmp_path / "board"
    assert main(["leaderboard", str(results), "--spec", str(spec_path), "--out", str(out), "--format", "parquet,csv",
                 "--no-plots", "--resamples", "0"]) == 0
    methods = pd.read_parquet(out / "leaderboard-tiny-board.parquet")
    csv = pd.read_csv(out / "leaderboard-tiny-board.csv")
    assert list(methods.method) == ["base", "strong", "weak"] == list(csv.method)
    assert methods.quiz.tolist() == pytest.approx(csv.quiz.tolist())
    runs = pd.read_parquet(out / "leaderboard-tiny-board-runs.parquet")
    assert len(runs) == 4 and runs.quiz_stderr.iloc[0] > 0
    assert main(["leaderboard", str(results), "--format", "xlsx", "--out", str(out)]) == 2
