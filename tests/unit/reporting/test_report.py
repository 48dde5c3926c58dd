"""The report reads a hand-written run store and derives every table, section and plot from it."""

from __future__ import annotations

import json
import math
import statistics

import pandas as pd
import pytest

from suite.core.errors import SuiteError
from suite.reporting.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CONFIG = {
    "name": "demo",
    "train": {"max_steps": 20, "per_device_batch_size": 4, "gradient_accumulation_steps": 1,
              "learning_rate": None, "max_length": 256, "lora": None, "dtype": "float32"},
    "data": {"train_max": None, "heldout_fraction": 0.1, "split_seed": 1234},
    "eval": {"leaderboard": "quick", "limit": 50},
}
VERSIONS = {"torch": "2.13.0", "transformers": "4.99.0", "lm_eval": "0.4.9", "python": "3.12.1"}

# Inputs of the fake store: (run_id, method, seed, eval scores, eval_average, alignment, runtime).
COMPLETE_RUNS = [
    ("base-aaaa", "base", 0, {"arc_challenge": {"acc_norm": 0.30}, "mmlu": {"acc": 0.25}}, 27.5,
     {"reward_accuracy": 0.0, "reward_margin": 0.0, "pairs": 8}, None),
    ("dpo-s0-bbbb", "dpo", 0, {"arc_challenge": {"acc_norm": 0.34, "acc": 0.31}, "mmlu": {"acc": 0.27}}, 30.5,
     {"reward_accuracy": 0.625, "reward_margin": 0.12, "pairs": 8}, 95.25),
    ("dpo-s1-cccc", "dpo", 1, {"arc_challenge": {"acc_norm": 0.36, "acc": 0.33}, "mmlu": {"acc": 0.29}}, 32.5,
     {"reward_accuracy": 0.75, "reward_margin": 0.2, "pairs": 8}, 97.0),
    # kto ties dpo-s1 on average: the tie is broken by method name (dpo before kto).
    ("kto-s0-dddd", "kto", 0, {"arc_challenge": {"acc_norm": 0.35, "acc": 0.32}}, 32.5,
     {"reward_accuracy": 0.5, "reward_margin": 0.05, "pairs": 8}, 80.0),
]


def write_run(runs_dir, run_id, method, seed, status, *, error=None, comparable=False, metrics=None, log=None):
    folder = runs_dir / run_id
    folder.mkdir(parents=True)
    manifest = {
        "run_id": run_id, "experiment": "demo", "method": method, "model": "smollm2-135m-instruct",
        "dataset": "alpaca-eval-scored", "seed": seed, "config": CONFIG, "config_hash": "h" + run_id,
        "hyperparameters": {} if method == "base" else {"beta": 0.1, "learning_rate": 5e-7},
        "status": status, "error": error, "leaderboard": "quick", "comparable": comparable,
        "versions": VERSIONS, "git_revision": "abc1234", "started_at": "2026-11-25T02:10:00Z", "ended_at": None,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    if log is not None:
        (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    return folder


def fake_store(root, comparable=False):
    runs_dir = root / "runs"
    for run_id, method, seed, evals, average, alignment, runtime in COMPLETE_RUNS:
        metrics = {"eval": evals, "eval_average": average, "alignment": alignment,
                   "train": {} if runtime is None else {"final_loss": 0.6, "steps": 3, "runtime_s": runtime}}
        log = None if method == "base" else [
            {"step": 1, "loss": 0.69, "learning_rate": 1e-6, "rewards/accuracy": 0.5},
            {"step": 2, "loss": 0.66}, {"step": 3, "loss": 0.61},
            {"step": 3, "train_runtime": runtime, "train_loss": 0.65},  # the Trainer's closing record
        ]
        write_run(runs_dir, run_id, method, seed, "complete", comparable=comparable, metrics=metrics, log=log)
    # A failed run may have left a metrics file behind; it must never be scored.
    write_run(runs_dir, "una-s0-eeee", "una-score-mse", 0, "failed", comparable=comparable,
              error="SuiteError: training diverged: loss is nan at step 2",
              metrics={"eval": {"mmlu": {"acc": 0.99}}, "eval_average": 99.0, "alignment": {}, "train": {}})
    write_run(runs_dir, "sft-s0-ffff", "sft", 0, "running", comparable=comparable)
    return root


@pytest.fixture
def store(tmp_path):
    return fake_store(tmp_path / "results")


@pytest.fixture
def report(store):
    paths = write_report(store)
    return paths, pd.read_csv(paths.csv), paths.markdown.read_text()


def test_csv_has_one_row_per_complete_run_in_leaderboard_order(report):
    _, table, _ = report
    # base first, then average descending, the 32.5 tie broken by method name.
    assert list(table["run_id"]) == ["base-aaaa", "dpo-s1-cccc", "kto-s0-dddd", "dpo-s0-bbbb"]
    assert list(table.columns) == [
        "run_id", "method", "seed", "model", "dataset",
        "arc_challenge/acc", "arc_challenge/acc_norm", "mmlu/acc", "average",
        "reward_accuracy", "reward_margin", "pairs", "train_runtime_s",
    ]


def test_csv_values_come_from_the_stored_metrics(report):
    _, table, _ = report
    rows = table.set_index("run_id")
    for run_id, method, seed, evals, average, alignment, runtime in COMPLETE_RUNS:
        row = rows.loc[run_id]
        assert row["method"] == method and row["seed"] == seed
        assert row["model"] == "smollm2-135m-instruct" and row["dataset"] == "alpaca-eval-scored"
        for task, scores in evals.items():
            for metric, value in scores.items():
                assert row[f"{task}/{metric}"] == pytest.approx(value)
        assert row["average"] == pytest.approx(average)
        for name, value in alignment.items():
            assert row[name] == pytest.approx(value)
        assert (math.isnan(row["train_runtime_s"]) if runtime is None else row["train_runtime_s"] == runtime)
    # A task absent from a run is an empty cell, not a zero.
    assert math.isnan(rows.loc["kto-s0-dddd", "mmlu/acc"])
    assert math.isnan(rows.loc["base-aaaa", "arc_challenge/acc"])
    assert "base-aaaa,base,0,smollm2-135m-instruct,alpaca-eval-scored,,0.3,0.25,27.5,0.0,0.0,8,\n" \
        in report[0].csv.read_text()  # whole numbers stay whole, a missing score stays empty


def test_local_dataset_is_shown_by_its_path(tmp_path):
    run_id, method, seed, evals, average, alignment, _ = COMPLETE_RUNS[0]
    folder = write_run(tmp_path / "runs", run_id, method, seed, "complete",
                       metrics={"eval": evals, "eval_average": average, "alignment": alignment, "train": {}})
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["dataset"] = {"path": "/data/prefs.jsonl", "format": "pairwise"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    paths = write_report(tmp_path)
    assert list(pd.read_csv(paths.csv)["dataset"]) == ["/data/prefs.jsonl"]
    assert '| dataset | `{"format": "pairwise", "path": "/data/prefs.jsonl"}` |' in paths.markdown.read_text()


def test_failed_and_running_runs_are_listed_but_never_scored(report):
    _, table, markdown = report
    assert "una-s0-eeee" not in set(table["run_id"]) and "sft-s0-ffff" not in set(table["run_id"])
    leaderboard_part, failed_part = markdown.split("## Failed runs")[0], markdown.split("## Failed runs")[1]
    assert "una-s0-eeee" not in leaderboard_part and "99.00" not in markdown
    failed_section = failed_part.split("\n## ")[0]
    assert "| una-s0-eeee | una-score-mse | failed | SuiteError: training diverged: loss is nan at step 2 |" \
        in failed_section
    assert "| sft-s0-ffff | sft | incomplete" in failed_section


def test_main_table_shows_scores_as_percentages(report):
    _, _, markdown = report
    main = markdown.split("## Leaderboard")[1].split("\n## ")[0]
    # dpo-s1: arc acc 0.33, arc acc_norm 0.36, mmlu 0.29, average 32.5, reward accuracy 0.75, margin 0.2.
    assert "| dpo-s1-cccc | dpo | 1 | 33.00 | 36.00 | 29.00 | 32.50 | 75.00 | 0.200 | 8 | 97.0 |" in main
    assert "| kto-s0-dddd | kto | 0 | 32.00 | 35.00 | — | 32.50 |" in main
    rows = [line for line in main.splitlines() if line.startswith("| ") and "run_id" not in line]
    assert [row.split(" | ")[0][2:] for row in rows] == ["base-aaaa", "dpo-s1-cccc", "kto-s0-dddd", "dpo-s0-bbbb"]


def test_mean_and_std_over_seeds(report):
    _, _, markdown = report
    section = markdown.split("## Mean ± std over seeds")[1].split("\n## ")[0]
    dpo_row = next(line for line in section.splitlines() if line.startswith("| dpo |"))
    cells = [cell.strip() for cell in dpo_row.strip("|").split("|")]
    dpo = [run for run in COMPLETE_RUNS if run[1] == "dpo"]
    arc_norm = [100 * run[3]["arc_challenge"]["acc_norm"] for run in dpo]
    averages = [run[4] for run in dpo]
    assert cells[1] == "2"
    assert cells[3] == f"{statistics.mean(arc_norm):.2f} ± {statistics.stdev(arc_norm):.2f}"
    assert cells[5] == f"{statistics.mean(averages):.2f} ± {statistics.stdev(averages):.2f}"
    # One seed: a mean without a spread.
    kto_row = next(line for line in section.splitlines() if line.startswith("| kto |"))
    assert "| kto | 1 | 32.00 | 35.00 | — | 32.50 |" in kto_row and "±" not in kto_row


def test_no_seed_table_with_one_seed_per_method(tmp_path):
    runs_dir = tmp_path / "runs"
    for run_id, method, seed, evals, average, alignment, _ in COMPLETE_RUNS[:2]:
        write_run(runs_dir, run_id, method, seed, "complete",
                  metrics={"eval": evals, "eval_average": average, "alignment": alignment, "train": {}})
    markdown = write_report(tmp_path).markdown.read_text()
    assert "Mean ± std" not in markdown
    assert "None: every run completed." in markdown


def test_warning_only_for_non_comparable_leaderboards(tmp_path, store):
    markdown = write_report(store).markdown.read_text()
    assert "NOT comparable with the Open LLM Leaderboard" in markdown
    assert "Leaderboard: `quick`" in markdown
    comparable = fake_store(tmp_path / "comparable", comparable=True)
    assert "NOT comparable" not in write_report(comparable).markdown.read_text()


def test_header_and_settings_come_from_the_manifests(report):
    _, _, markdown = report
    assert markdown.startswith("# alignsuite report: demo\n")
    settings = markdown.split("## Settings")[1]
    assert "| model | `smollm2-135m-instruct` |" in settings
    assert "| train.max_steps | `20` |" in settings
    assert "| eval.limit | `50` |" in settings
    assert "| lm_eval version | `0.4.9` |" in settings
    assert "| git revision | `abc1234` |" in settings
    assert "| train.learning_rate | `null` |" in settings  # recorded as null: each method's own default
    assert "| seeds | `0`, `1` |" in settings  # seeds are meant to differ: not flagged
    assert "train.bf16" not in settings  # not recorded in these manifests: no row rather than a guess
    assert '- `dpo`: `{"beta": 0.1, "learning_rate": 5e-07}`' in settings


def test_settings_that_differ_between_runs_are_flagged(tmp_path):
    runs_dir = tmp_path / "runs"
    for index, (run_id, method, seed, evals, average, alignment, _) in enumerate(COMPLETE_RUNS[:2]):
        folder = write_run(runs_dir, run_id, method, seed, "complete",
                           metrics={"eval": evals, "eval_average": average, "alignment": alignment, "train": {}})
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["git_revision"] = f"rev{index}"
        (folder / "manifest.json").write_text(json.dumps(manifest))
    markdown = write_report(tmp_path).markdown.read_text()
    assert "| git revision | `rev0`, `rev1` **(differs between runs)** |" in markdown


def test_plots_are_valid_pngs_and_linked(report):
    paths, _, markdown = report
    for png in (paths.scores_png, paths.alignment_png, paths.train_loss_png):
        assert png is not None and png.read_bytes()[:8] == PNG_MAGIC
        assert f"]({png.name})" in markdown
    assert not [p for p in paths.markdown.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_no_train_loss_plot_without_train_logs(tmp_path):
    run_id, method, seed, evals, average, alignment, _ = COMPLETE_RUNS[0]
    write_run(tmp_path / "runs", run_id, method, seed, "complete",
              metrics={"eval": evals, "eval_average": average, "alignment": alignment, "train": {}})
    paths = write_report(tmp_path)
    assert paths.train_loss_png is None and not (tmp_path / "report" / "train_loss.png").exists()
    assert paths.scores_png.read_bytes()[:8] == PNG_MAGIC


def test_malformed_manifest_names_the_file(store):
    bad = store / "runs" / "dpo-s0-bbbb" / "manifest.json"
    bad.write_text('{"run_id": "dpo-s0-bbbb", ')
    with pytest.raises(SuiteError, match=r"dpo-s0-bbbb/manifest\.json"):
        write_report(store)


def test_malformed_metrics_names_the_file(store):
    bad = store / "runs" / "kto-s0-dddd" / "metrics.json"
    bad.write_text("[1, 2")
    with pytest.raises(SuiteError, match=r"kto-s0-dddd/metrics\.json"):
        write_report(store)


def test_non_numeric_score_names_the_file_and_key(store):
    bad = store / "runs" / "kto-s0-dddd" / "metrics.json"
    metrics = json.loads(bad.read_text())
    metrics["eval"]["arc_challenge"]["acc"] = "high"
    bad.write_text(json.dumps(metrics))
    with pytest.raises(SuiteError, match=r"kto-s0-dddd/metrics\.json: key 'eval\.arc_challenge\.acc'"):
        write_report(store)


def test_malformed_train_log_names_the_file_and_line(store):
    log = store / "runs" / "dpo-s0-bbbb" / "train_log.jsonl"
    log.write_text('{"step": 1, "loss": 0.7}\n{"step": 2,\n')
    with pytest.raises(SuiteError, match=r"train_log\.jsonl: line 2"):
        write_report(store)


def test_complete_run_without_metrics_is_an_error(store):
    (store / "runs" / "dpo-s0-bbbb" / "metrics.json").unlink()
    with pytest.raises(SuiteError, match=r"dpo-s0-bbbb/metrics\.json: missing"):
        write_report(store)


def test_store_with_only_unfinished_runs_still_gets_a_report(tmp_path):
    write_run(tmp_path / "runs", "dpo-s0-xxxx", "dpo", 0, "failed", error="RuntimeError: out of memory")
    paths = write_report(tmp_path)
    assert pd.read_csv(paths.csv).empty
    assert (paths.scores_png, paths.alignment_png, paths.train_loss_png) == (None, None, None)
    markdown = paths.markdown.read_text()
    assert "No complete runs yet." in markdown and "| dpo-s0-xxxx | dpo | failed | RuntimeError: out of memory |" in markdown


@pytest.mark.parametrize("make_runs_dir", [False, True])
def test_no_runs_is_an_error(tmp_path, make_runs_dir):
    if make_runs_dir:
        (tmp_path / "runs").mkdir()
    with pytest.raises(SuiteError, match="no runs"):
        write_report(tmp_path)


def test_evaluation_deviations_are_listed_with_their_runs(tmp_path):
    runs_dir = tmp_path / "results" / "runs"
    note = "arc/arc_challenge: few-shot examples drawn from 'validation': split 'train' is not mirrored"
    for run_id, notes in (("base-a", [note]), ("dpo-s0-b", [note, "gsm8k: average not computed"])):
        metrics = {"eval": {"arc": {"acc_norm": 0.3}}, "eval_average": 30.0, "alignment": {}, "train": {},
                   "eval_deviations": notes}
        write_run(runs_dir, run_id, run_id.split("-")[0], 0, "complete", metrics=metrics)
    text = write_report(tmp_path / "results").markdown.read_text()
    assert f"- {note} (all runs)" in text
    assert "- gsm8k: average not computed (`dpo-s0-b`)" in text
