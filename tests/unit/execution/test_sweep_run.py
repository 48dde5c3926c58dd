"""A sweep end to end on tiny-llama: ordinary runs per point, validation metrics stored, the report's selection."""

import json

import yaml

from suite.cli import main
from support import preference_rows, write_jsonl


def test_a_sweep_trains_every_point_and_the_report_selects_on_validation(tmp_path, local_leaderboard):
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(60))
    config = {"name": "sweep", "model": "tiny-llama", "dataset": {"path": str(data), "format": "pairwise"},
              "methods": ["dpo"], "sweep": {"beta": [0.1, 0.5]},
              "data": {"heldout_fraction": 0.2, "validation_fraction": 0.2},
              "train": {"max_steps": 1, "per_device_batch_size": 2, "learning_rate": 1.0e-3, "max_length": 48},
              "eval": {"leaderboard": str(local_leaderboard), "alignment_pairs": 4, "generation_prompts": 0,
                       "max_new_tokens": 4}}
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out), "--report"]) == 0
    metrics = {json.loads((d / "manifest.json").read_text())["method"]: json.loads((d / "metrics.json").read_text())
               for d in (out / "runs").iterdir()}
    assert set(metrics) == {"base", "dpo.beta-0.1", "dpo.beta-0.5"}
    assert all(m["validation"]["pairs"] == 4 for m in metrics.values())
    report = (out / "report" / "report.md").read_text()
    sweep = report.split("## Sweep")[1]
    assert "beta=0.1" in sweep and "beta=0.5" in sweep and "selected" in sweep
    assert "### Leaderboard of the selected models" in sweep
