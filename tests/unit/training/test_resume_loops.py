"""Resume for the loops that are not the Trainer's (``suite.training.loop.StepLoop``): a reward-model run
and an online run (PPO: policy, value model and a reward-model component) killed with SIGKILL mid-training
and started again end with the metrics and the step log of an uninterrupted run (``-m slow``: each test
trains three times, twice in a fresh process)."""

import json
import random

import pytest
import yaml
from support import preference_rows, write_jsonl
from support.processes import kill_when, logged_steps, run_command

from suite.cli import main
from suite.config.schema import load_config
from suite.execution.runner import plan_runs
from suite.training.loop import checkpoint_step, last_complete_checkpoint

# Wall-clock facts differ between attempts by nature; everything else must not.
WALL_CLOCK = ("runtime_s", "seconds_per_step", "peak_memory_mb", "step_time_s", "generation_s")


def without_wall_clock(value):
    if isinstance(value, dict):
        return {k: without_wall_clock(v) for k, v in value.items() if k not in WALL_CLOCK}
    if isinstance(value, list):
        return [without_wall_clock(v) for v in value]
    return value


def comparable(run_dir):
    metrics = json.loads((run_dir / "metrics.json").read_text())
    metrics.pop("timings", None)
    metrics.pop("execution", None)
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    return without_wall_clock(metrics), without_wall_clock(log)


def write_config(folder, method: dict, max_steps: int, lora):
    data = write_jsonl(folder / "pairs.jsonl", preference_rows(64))
    config = {
        "name": "resume-loops", "model": "tiny-llama", "dataset": {"path": str(data), "format": "pairwise"},
        "methods": [method], "seeds": [5], "evaluate_base": False, "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": max_steps, "per_device_batch_size": 2, "max_length": 48, "checkpoint_steps": 3,
                  "lora": lora},
        "eval": {"leaderboard": None, "alignment_pairs": 4, "generation_prompts": 0, "max_new_tokens": 4},
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def kill_and_resume(tmp_path, config, run_id, kill_after_step):
    """Run uninterrupted; run again elsewhere, SIGKILL it after ``kill_after_step`` logged steps, rerun;
    returns (uninterrupted run folder, resumed run folder, the step it resumed from)."""
    reference = tmp_path / "uninterrupted"
    assert main(["run", str(config), "--out", str(reference)]) == 0
    out = tmp_path / "killed"
    run_dir = out / "runs" / run_id
    kill_when(run_command(config, out), lambda: logged_steps(run_dir) >= kill_after_step)
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "running"
    last = last_complete_checkpoint(run_dir / "checkpoints" / "main")
    assert last is not None, "no checkpoint to resume from"
    assert main(["run", str(config), "--out", str(out)]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert not (run_dir / "checkpoints").exists()
    return reference / "runs" / run_id, run_dir, metrics["execution"].get("resumed_from_step"), checkpoint_step(last)


@pytest.mark.slow  # three runs, two of them in fresh processes: about a minute on a shared 2-core machine
def test_a_reward_model_killed_mid_training_resumes_to_the_uninterrupted_result(tmp_path):
    """Full fine-tuning: the classifier's whole weights are checkpointed and restored."""
    config = write_config(tmp_path, {"id": "reward-model", "learning_rate": 1e-3}, max_steps=24, lora=None)
    (run,) = plan_runs(load_config(config))
    reference, resumed, resumed_from, last = kill_and_resume(tmp_path, config, run.run_id,
                                                            random.Random().randint(4, 12))
    assert resumed_from == last and resumed_from >= 3
    assert comparable(resumed) == comparable(reference)  # exactly: same floats on CPU


@pytest.mark.slow
def test_an_online_run_killed_mid_training_resumes_to_the_uninterrupted_result(tmp_path):
    """PPO with LoRA: the policy's adapter, the value model (adapter and head), both optimizer groups, the
    schedule and the RNG are restored; the reward-model component, complete, is not retrained."""
    method = {"id": "ppo", "max_new_tokens": 4, "eval_prompts": 4, "learning_rate": 1e-3,
              "reward_model_overrides": {"max_steps": 2}}
    config = write_config(tmp_path, method, max_steps=12, lora={"r": 4})
    ppo = next(run for run in plan_runs(load_config(config)) if run.method_id == "ppo")
    reference, resumed, resumed_from, last = kill_and_resume(tmp_path, config, ppo.run_id,
                                                            random.Random().randint(4, 8))
    assert resumed_from == last and resumed_from >= 3
    assert comparable(resumed) == comparable(reference)
