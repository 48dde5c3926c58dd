"""Two `alignsuite run` processes on one results folder: each run is trained once, claims are exclusive,
and a claim left by a dead process is taken over."""

import json
import os
import subprocess
import sys

import yaml

from suite.execution.store import RunClaim, RunStore


def test_claims_are_exclusive_and_released(tmp_path):
    store = RunStore(tmp_path)
    first = store.claim("run-a")
    assert first is not None and store.claim("run-a") is None  # held (by a live process: us)
    # another live process's claim (our parent's pid) is respected
    other = tmp_path / "runs" / "run-b" / ".claim"
    other.parent.mkdir(parents=True)
    other.write_text(json.dumps({"host": os.uname().nodename, "pid": os.getppid()}))
    assert store.claim("run-b") is None
    first.release()
    assert not (tmp_path / "runs" / "run-a" / ".claim").exists()


def test_a_dead_processes_claim_is_taken_over(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    path = tmp_path / "runs" / "run-a" / ".claim"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"host": os.uname().nodename, "pid": dead_pid}))
    claim = RunStore(tmp_path).claim("run-a")
    assert claim is not None and json.loads(path.read_text())["pid"] == os.getpid()
    # a claim from another machine is never judged stale from here
    path.write_text(json.dumps({"host": "elsewhere.example", "pid": dead_pid}))
    assert RunClaim(path).acquire() is False


def test_two_processes_on_one_folder_train_each_run_once(tmp_path, pairwise_file, local_leaderboard):
    config = {
        "name": "shared", "model": "tiny-llama", "dataset": {"path": str(pairwise_file), "format": "pairwise"},
        "methods": ["sft", "dpo", "kto"], "seeds": [0], "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": 2, "per_device_batch_size": 2, "learning_rate": 1e-3, "max_length": 64},
        "eval": {"leaderboard": str(local_leaderboard), "batch_size": 4, "alignment_pairs": 4,
                 "generation_prompts": 0, "max_new_tokens": 4},
    }
    path = tmp_path / "shared.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results"
    command = [sys.executable, "-m", "suite.cli", "run", str(path), "--out", str(out)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                 for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in processes]
    assert all(p.returncode == 0 for p in processes), outputs
    started = [line for _, err in outputs for line in err.splitlines() if line.endswith(": starting")]
    run_dirs = sorted(p for p in (out / "runs").iterdir())
    assert len(run_dirs) == 4  # base + three methods, each once
    assert len(started) == 4, started  # …and each started by exactly one of the two processes
    for run_dir in run_dirs:
        assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
        assert not (run_dir / ".claim").exists()
        if (run_dir / "train_log.jsonl").exists():
            steps = [json.loads(l)["step"] for l in (run_dir / "train_log.jsonl").read_text().splitlines()
                     if '"loss"' in l]
            assert steps == [1, 2]  # trained once, not twice into the same log
