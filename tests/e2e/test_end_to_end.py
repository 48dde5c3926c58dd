"""`alignsuite run` + `alignsuite report` end to end on tiny-llama, a local dataset and a local lm-eval task."""

import csv
import json

import pytest
import yaml

from suite.cli import main

METHODS = ["sft", "dpo", "kto", "una-binary-bce", "una-score-mse"]


@pytest.fixture
def experiment(tmp_path, pairwise_file, local_leaderboard):
    config = {
        "name": "tiny",
        "model": "tiny-llama",
        "dataset": {"path": str(pairwise_file), "format": "pairwise"},
        "methods": METHODS,
        "seeds": [0],
        "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": 2, "per_device_batch_size": 2, "learning_rate": 1e-3, "max_length": 64},
        "eval": {"leaderboard": str(local_leaderboard), "batch_size": 4, "alignment_pairs": 4,
                 "generation_prompts": 2, "max_new_tokens": 4},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def manifests(out):
    return {p.parent.name: json.loads(p.read_text()) for p in (out / "runs").glob("*/manifest.json")}


def test_run_report_and_skip(experiment, tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["run", str(experiment), "--out", str(out)]) == 0
    runs = manifests(out)
    assert sorted(m["method"] for m in runs.values()) == sorted(["base", *METHODS])
    for run_id, manifest in runs.items():
        assert manifest["status"] == "complete" and manifest["error"] is None
        assert run_id.startswith(manifest["method"]) and len(manifest["config_hash"]) == 64
        for key in ("model", "dataset", "seed", "config", "versions", "git_revision", "started_at", "ended_at"):
            assert key in manifest
        assert manifest["versions"]["torch"] and manifest["versions"]["lm_eval"]
        metrics = json.loads((out / "runs" / run_id / "metrics.json").read_text())
        assert set(metrics) >= {"eval", "alignment", "train"}
        assert 0.0 <= metrics["eval"]["colors"]["acc"] <= 1.0
        alignment = metrics["alignment"]
        assert alignment["pairs"] >= 1 and 0.0 <= alignment["reward_accuracy"] <= 1.0
        assert alignment["response_length"] >= 0
        assert (out / "runs" / run_id / "lm_eval_results.json").is_file()
        if manifest["method"] == "base":
            assert alignment["reward_accuracy"] == 0.5 and alignment["reward_margin"] == 0.0
            assert metrics["train"] == {}
        else:
            assert metrics["train"]["steps"] == 2
            log = [json.loads(line) for line in (out / "runs" / run_id / "train_log.jsonl").read_text().splitlines()]
            assert [r["step"] for r in log if "loss" in r] == [1, 2]
            assert (out / "runs" / run_id / "model").is_dir()
    # the reference log-probs were computed once and reused: the binary and scalar runs hit the cache
    kto = next(r for r in runs if r.startswith("kto"))
    assert json.loads((out / "runs" / kto / "metrics.json").read_text())["execution"]["reference_cache"]["hits"] > 0

    assert main(["report", str(out)]) == 0
    with open(out / "report" / "leaderboard.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["method"] == "base" and len(rows) == 1 + len(METHODS)
    for row in rows:
        metrics = json.loads((out / "runs" / row["run_id"] / "metrics.json").read_text())
        assert float(row["colors/acc"]) == pytest.approx(metrics["eval"]["colors"]["acc"])
    assert "NOT comparable" in (out / "report" / "report.md").read_text()
    assert (out / "report" / "scores.png").read_bytes()[:4] == b"\x89PNG"

    capsys.readouterr()
    assert main(["run", str(experiment), "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + len(METHODS) and all(line.startswith("skipped") for line in lines)


def test_a_diverging_run_is_recorded_as_failed(experiment, tmp_path, capsys, diverging_method):
    out = tmp_path / "results"
    arguments = ["run", str(experiment), "--out", str(out), "--set", f"methods=[{diverging_method}]",
                 "--set", "evaluate_base=false", "--set", "train.max_steps=3"]
    code = main(arguments)
    assert code != 0
    (manifest,) = manifests(out).values()
    assert manifest["status"] == "failed" and "diverged" in manifest["error"]
    assert not (out / "runs" / manifest["run_id"] / "metrics.json").exists()
    assert "run(s) failed" in capsys.readouterr().err
    # a rerun retries a failed run rather than skipping it
    main(arguments)
    assert "skipped" not in capsys.readouterr().out


def test_bad_input_fails_before_any_run(tmp_path, experiment, capsys):
    out = tmp_path / "results"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a", "rejected": "a"}\n')
    code = main(["run", str(experiment), "--out", str(out), "--set", f"dataset={{path: {bad}, format: pairwise}}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.jsonl: row 1: chosen and rejected are identical" in err and "Traceback" not in err
    assert not (out / "runs").exists()
    assert main(["run", str(experiment), "--out", str(out), "--set", "methods=[nope]"]) == 2
    assert "unknown method 'nope'" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_recipe_on_smollm2_with_a_small_budget(tmp_path, mirror):
    """The real embedded model and real data through the demo recipe, cut to two DPO steps."""
    out = tmp_path / "results"
    code = main(["run", "reports/recipes/demo.yaml", "--out", str(out), "--set", "methods=[dpo]",
                 "--set", "train.max_steps=2", "--set", "eval.alignment_pairs=8", "--set", "eval.limit=2",
                 "--set", "eval.generation_prompts=2", "--set", "eval.max_new_tokens=8"])
    assert code == 0
    runs = manifests(out)
    assert sorted(m["method"] for m in runs.values()) == ["base", "dpo"]
    dpo = next(r for r, m in runs.items() if m["method"] == "dpo")
    metrics = json.loads((out / "runs" / dpo / "metrics.json").read_text())
    assert metrics["train"]["steps"] == 2 and set(metrics["eval"]) >= {"arc", "hellaswag", "mmlu"}
    assert metrics["data"]["origin"].endswith("weighted_alpaca_eval_gpt4_turbo.jsonl.gz")
