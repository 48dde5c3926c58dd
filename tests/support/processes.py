"""Running the CLI in a subprocess, killing it at a chosen moment, and reading what the run logged."""

import json
import os
import signal
import subprocess
import sys
import time
import pytest
import yaml


NOT_COMPARED = ("timings", "execution")


def comparable_metrics(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in NOT_COMPARED:
        metrics.pop(key, None)
    metrics["train"].pop("runtime_s", None)
    for stage in metrics["train"].get("stages", []):
        stage.pop("runtime_s", None)
    return metrics


def losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return [(r.get("stage"), r["step"], r["loss"]) for r in records if "loss" in r]


def write_config(tmp_path, pairwise_file, local_leaderboard, method="dpo", **train):
    config = {
        "name": "resume", "model": "tiny-llama", "dataset": {"path": str(pairwise_file), "format": "pairwise"},
        "methods": [method], "seeds": [3], "evaluate_base": False, "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": 8, "per_device_batch_size": 2, "learning_rate": 1e-3, "max_length": 64,
                  "checkpoint_steps": 2, "lora": {"r": 4, "dropout": 0.1}, **train},
        "eval": {"leaderboard": str(local_leaderboard), "batch_size": 4, "alignment_pairs": 4,
                 "generation_prompts": 2, "max_new_tokens": 4},
    }
    path = tmp_path / f"{method}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def run_command(config, out):
    return [sys.executable, "-m", "suite.cli", "run", str(config), "--out", str(out)]


def kill_when(command, ready, timeout=300):
    """Start ``command``, SIGKILL it as soon as ``ready()`` holds; fails if it ended before that."""
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if ready():
                process.send_signal(signal.SIGKILL)
                process.wait()
                return
            time.sleep(0.01)
        pytest.fail(f"the run ended (exit {process.poll()}) before the kill:\n{process.stderr.read()[-3000:]}")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def logged_steps(run_dir):
    path = run_dir / "train_log.jsonl"
    if not path.is_file():
        return 0
    steps = [json.loads(line).get("step", 0) for line in path.read_text().splitlines() if line.endswith("}")]
    return max(steps, default=0)

