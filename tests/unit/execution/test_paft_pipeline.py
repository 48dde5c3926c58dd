"""Composite methods end to end on tiny-llama: PAFT (parallel SFT + DPO, merged) and SFT→DPO, with
components planned as shared runs, run in parallel worker processes, and failures propagated."""

import copy
import json
import re

import pytest
import yaml
from support import write_jsonl

from suite.analysis.claims import PAPERS_DIR, parse_table
from suite.cli import main
from suite.config.schema import build_config
from suite.core.io import load_yaml_mapping
from suite.execution.runner import plan_runs
from suite.reporting.reproduce import write_reproduction_report


@pytest.fixture
def paft_config(tmp_path, pairwise_file, local_leaderboard):
    sft_file = write_jsonl(tmp_path / "sft.jsonl", [
        {"prompt": f"Name a colour (#{i}).", "completion": f"Colour number {i} is blue."} for i in range(12)
    ])
    config = {
        "name": "paft", "model": "tiny-llama", "dataset": {"path": str(pairwise_file), "format": "pairwise"},
        "methods": [
            {"id": "paft", "label": "paft-ties", "sft_dataset": {"path": str(sft_file), "format": "sft"},
             "sft_method": "sft-l1", "sft_overrides": {"l1_lambda": 0.01}},
            {"id": "paft", "label": "paft-linear", "sft_dataset": {"path": str(sft_file), "format": "sft"},
             "sft_method": "sft-l1", "sft_overrides": {"l1_lambda": 0.01}, "merge_method": "linear",
             "merge_parameters": {}, "merge_weights": [0.5, 0.5]},
            {"id": "sft-then-dpo", "sft_dataset": {"path": str(sft_file), "format": "sft"},
             "sft_method": "sft-l1", "sft_overrides": {"l1_lambda": 0.01}},
            "dpo",
        ],
        "seeds": [0], "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": 2, "per_device_batch_size": 2, "learning_rate": 1e-3, "max_length": 64,
                  "warmup_ratio": 0.0, "lora": {"r": 4}},
        "eval": {"leaderboard": str(local_leaderboard), "batch_size": 4, "alignment_pairs": 4,
                 "generation_prompts": 0, "max_new_tokens": 4},
    }
    path = tmp_path / "paft.yaml"
    path.write_text(yaml.safe_dump(config))
    return path, config


def test_components_are_planned_once_before_the_composites(paft_config):
    _, raw = paft_config
    runs = plan_runs(build_config(raw))
    labels = [run.label for run in runs]
    # base; sft-l1 and dpo once each (shared by both PAFT variants and, for sft-l1, by SFT→DPO); composites after
    assert sorted(labels) == sorted(["base", "sft-l1", "dpo", "paft-ties", "paft-linear", "sft-then-dpo"])
    by_label = {run.label: run for run in runs}
    assert by_label["paft-ties"].components == by_label["paft-linear"].components == {
        "sft": by_label["sft-l1"].run_id, "preference": by_label["dpo"].run_id}
    assert by_label["sft-then-dpo"].components == {"sft": by_label["sft-l1"].run_id}
    assert by_label["sft-l1"].keep_model and by_label["sft-l1"].dataset["format"] == "sft"
    for composite in ("paft-ties", "paft-linear", "sft-then-dpo"):
        assert labels.index(composite) > max(labels.index("sft-l1"), labels.index("dpo"))


def _read(out, label):
    (run_dir,) = [p for p in (out / "runs").iterdir() if re.fullmatch(rf"{label}-(s0-)?[0-9a-f]{{10}}", p.name)]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text()) if (run_dir / "metrics.json").exists() else None
    return manifest, metrics


def test_paft_and_sequential_pipelines_end_to_end_in_parallel_workers(paft_config, tmp_path):
    path, _ = paft_config
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out), "--jobs", "2", "--report"]) == 0
    for label in ("base", "sft-l1", "dpo", "paft-ties", "paft-linear", "sft-then-dpo"):
        manifest, metrics = _read(out, label)
        assert manifest["status"] == "complete", (label, manifest["error"])
        assert 0.0 <= metrics["alignment"]["reward_accuracy"] <= 1.0 and "colors" in metrics["eval"]
    sft_manifest, sft_metrics = _read(out, "sft-l1")
    assert sft_metrics["data"]["origin"].endswith("sft.jsonl")  # the component trained on its own SFT data
    assert sft_metrics["data"]["heldout_pairs"] == 0
    manifest, metrics = _read(out, "paft-ties")
    assert manifest["method_id"] == "paft" and manifest["components"]["sft"] == sft_manifest["run_id"]
    train = metrics["train"]
    assert train["merge"]["method"] == "ties" and train["merge"]["components"] == ["sft", "preference"]
    for name in ("sft", "preference"):
        sparsity = train["delta"][name]
        assert 0.0 <= sparsity["overall"]["sparsity"][0]["fraction"] <= 1.0
    from suite.merging.recipe import load_recipe

    (recipe_path,) = (out / "runs").glob("paft-ties-s0-*/merge_recipe.yaml")
    recipe = load_recipe(recipe_path)  # `alignsuite merge` rebuilds the merged model from it
    assert recipe["method"] == "ties" and recipe["models"][0]["model"].endswith(sft_manifest["run_id"])
    _, linear = _read(out, "paft-linear")
    assert linear["alignment"] != metrics["alignment"] or linear["eval"] != metrics["eval"]  # different merges
    _, sequential = _read(out, "sft-then-dpo")
    assert sequential["train"]["trained"]["dpo"]["steps"] == 2 and "sft" in sequential["train"]["delta"]
    report = (out / "report" / "report.md").read_text()
    assert "paft-ties" in report and "sft-then-dpo" in report
    # PAFT's claims are data (reports/papers/paft.yaml), judged by the one claims engine: the same table, with
    # this test's one-task leaderboard in place of the quick tasks
    paper = load_yaml_mapping(PAPERS_DIR / "paft.yaml")
    entry = copy.deepcopy(next(t for t in paper["tables"] if t["id"] == "paft"))
    deltas = [name for name, spec in entry["columns"].items() if "delta" in spec]
    entry["columns"] = {**{name: entry["columns"][name] for name in deltas},
                        "colors": {"task": "colors"}, "Average": {"mean_of": ["colors"]}}
    entry["values"] = {row: values[:len(deltas)] + [None, values[-1]] for row, values in entry["values"].items()}
    entry["recipes"] = {"small": str(path)}
    table = parse_table(entry, paper, PAPERS_DIR / "paft.yaml")
    report_path, verdicts = write_reproduction_report(table, "small", path, out, resamples=200)
    paft = report_path.read_text()
    assert "## Delta sparsity" in paft and "| sft-l1 |" in paft and "| dpo |" in paft
    by_id = {v.claim.id: v.verdict for v in verdicts}
    # claims with their rows present get a verdict (L1 sparsity, parallel vs sequential); the rest need rows
    # this recipe does not make (plain SFT, the -l1 merges) and are not measured
    assert by_id["l1-sft-over-90"] in ("agrees", "disagrees", "inconclusive")
    assert by_id["parallel-beats-sequential"] in ("agrees", "disagrees", "inconclusive")
    assert {by_id[c] for c in ("preference-delta-sparser", "l1-sparsifies-sft", "merge-beats-components",
                               "l1-helps-ties-most")} == {"not measured"}
    assert "| l1-helps-ties-most |" in paft.split("## Claims")[1]
    assert (out / "report" / "reproduce-paft-deltas.png").stat().st_size > 1000
    # a second run finds everything complete
    assert main(["run", str(path), "--out", str(out)]) == 0


def test_a_composite_with_a_failed_component_fails_clearly(paft_config, tmp_path, capsys, diverging_method):
    path, raw = paft_config
    raw["evaluate_base"] = False
    out = tmp_path / "results"
    # more sDPO stages than training steps: refused by the preflight, before any run is recorded
    raw["methods"] = [{"id": "paft", "preference_method": "sdpo", "preference_overrides": {"stages": 50}}]
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "--out", str(out)]) == 2
    assert "stages" in capsys.readouterr().err and not (out / "runs").exists()
    # a valid config whose preference component fails while it trains
    raw["methods"] = [{"id": "paft", "preference_method": diverging_method}]
    path.write_text(yaml.safe_dump(raw))
    assert main(["run", str(path), "--out", str(out)]) != 0
    manifest, metrics = _read(out, "paft")
    assert manifest["status"] == "failed" and "component 'preference'" in manifest["error"]
    assert "not complete" in manifest["error"] and metrics is None
    assert _read(out, diverging_method)[0]["status"] == "failed" and _read(out, "sft")[0]["status"] == "complete"
