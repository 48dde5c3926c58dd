"""Nothing lost, nothing wrong: a run killed with SIGKILL — mid-training or mid-evaluation — and started
again with the same command ends with the metrics of an uninterrupted run; the same config and seed give
the same metrics; a NaN/inf loss or gradient fails the run at its step with its last good checkpoint."""

import json
import os
import random
import subprocess

import pytest
import torch
from support import preference_rows, write_jsonl, write_local_leaderboard

from suite.cli import main
from suite.config.schema import load_config
from suite.execution.runner import plan_runs
from suite.method.registry import METHODS, Method, Paper, register
from suite.training.trainer import last_complete_checkpoint
from support.processes import comparable_metrics, kill_when, logged_steps, losses, run_command, write_config

# Execution facts and wall-clock durations differ between attempts by nature; everything else must not.

@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """One uninterrupted DPO run (LoRA with dropout: RNG state matters), the reference for every test here."""
    folder = tmp_path_factory.mktemp("resume")
    pairs = write_jsonl(folder / "pairs.jsonl", preference_rows())
    config = write_config(folder, pairs, write_local_leaderboard(folder))
    out = folder / "uninterrupted"
    assert main(["run", str(config), "--out", str(out)]) == 0
    (run,) = plan_runs(load_config(config))
    return config, out / "runs" / run.run_id


def test_sigkill_mid_training_then_rerun_equals_an_uninterrupted_run(tmp_path, uninterrupted):
    config, reference_dir = uninterrupted
    out = tmp_path / "killed"
    run_dir = out / "runs" / reference_dir.name
    kill_at = random.Random().randint(3, 6)  # a random step past the first checkpoint (step 2)
    kill_when(run_command(config, out), lambda: logged_steps(run_dir) >= kill_at)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "running" and not (run_dir / "metrics.json").exists()
    # the kill may land inside a save: the rerun resumes from the newest checkpoint written completely
    last = last_complete_checkpoint(run_dir / "checkpoints" / "main")
    assert last is not None, "no checkpoint to resume from"
    resumed_step = int(last.name.split("-")[1])

    rerun = subprocess.run(run_command(config, out), capture_output=True, text=True,
                           env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["execution"]["resumed_from_step"] == resumed_step
    assert comparable_metrics(run_dir) == comparable_metrics(reference_dir)  # exactly: same floats on CPU
    assert losses(run_dir) == losses(reference_dir)  # one uninterrupted-looking log, steps 1..8 once each
    assert not (run_dir / "checkpoints").exists() and not (run_dir / ".claim").exists()


def test_sigkill_mid_evaluation_reruns_only_the_evaluation(tmp_path, uninterrupted):
    config, reference_dir = uninterrupted
    out = tmp_path / "killed"
    run_dir = out / "runs" / reference_dir.name
    kill_when(run_command(config, out), lambda: (run_dir / "trained.json").is_file())
    assert not (run_dir / "metrics.json").exists()
    log_before = (run_dir / "train_log.jsonl").read_text()

    rerun = subprocess.run(run_command(config, out), capture_output=True, text=True,
                           env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    assert rerun.returncode == 0, rerun.stderr
    assert "training finished in an earlier attempt" in rerun.stderr
    assert (run_dir / "train_log.jsonl").read_text() == log_before  # no training step was redone
    assert comparable_metrics(run_dir) == comparable_metrics(reference_dir)
    assert not (run_dir / "lm_eval_requests").exists()  # resume state: gone once the run is complete


def test_the_same_config_and_seed_give_the_same_metrics(tmp_path, uninterrupted):
    """Identical metrics.json but for wall-clock durations and execution facts (see NOT_COMPARED)."""
    config, reference_dir = uninterrupted
    out = tmp_path / "again"
    assert main(["run", str(config), "--out", str(out)]) == 0
    again = out / "runs" / reference_dir.name
    assert comparable_metrics(again) == comparable_metrics(reference_dir)
    assert losses(again) == losses(reference_dir)


@pytest.mark.slow
def test_a_staged_method_resumes_inside_its_later_stage(tmp_path, pairwise_file, local_leaderboard):
    """sDPO: stage 2 starts from stage 1's model; killed in stage 2, the rerun resumes stage 1 from its
    final checkpoint (no steps), rebuilds stage 2's reference and resumes stage 2."""
    config = write_config(tmp_path, pairwise_file, local_leaderboard, method="sdpo")
    (run,) = plan_runs(load_config(config))
    reference = tmp_path / "uninterrupted"
    assert main(["run", str(config), "--out", str(reference)]) == 0
    out = tmp_path / "killed"
    run_dir = out / "runs" / run.run_id

    def in_stage_two_after_a_checkpoint():
        return last_complete_checkpoint(run_dir / "checkpoints" / "stage-2") is not None

    kill_when(run_command(config, out), in_stage_two_after_a_checkpoint)
    assert main(["run", str(config), "--out", str(out)]) == 0
    execution = json.loads((run_dir / "metrics.json").read_text())["execution"]
    assert execution["stages"][0]["resumed_from_step"] == 4  # stage 1 was finished: restored, not retrained
    assert execution["stages"][1]["resumed_from_step"] in (2, 4)
    assert comparable_metrics(run_dir) == comparable_metrics(reference / "runs" / run.run_id)
    assert losses(run_dir) == losses(reference / "runs" / run.run_id)


# -- numerical faults ------------------------------------------------------------------------------------


def _diverging(fault):
    """A real objective (DPO's) that turns non-finite at its 5th call: in the loss, or only in the gradient."""

    def objective(batch, hp):
        chosen, rejected, ref_chosen, ref_rejected = batch.pairwise()
        logits = hp["beta"] * ((chosen - ref_chosen) - (rejected - ref_rejected))
        loss = -torch.nn.functional.logsigmoid(logits).mean()
        batch.state["calls"] = batch.state.get("calls", 0) + 1
        if batch.state["calls"] == 5:
            if fault == "loss":
                loss = loss + float("nan")
            else:  # d√x/dx at 0 is inf: finite loss, infinite gradient
                loss = loss + torch.sqrt((chosen - chosen.detach()).abs().sum())
        return loss, {}

    return objective


@pytest.fixture(params=["loss", "gradient"])
def diverging_method(request):
    method_id = f"test-diverging-{request.param}"
    register(Method(
        id=method_id, name="DPO that diverges at step 5", paper=Paper("test fixture"), feedback="pairwise",
        taxonomy={}, needs_reference=True, defaults={"beta": 0.1, "learning_rate": 1e-3},
        objective=_diverging(request.param),
    ))
    yield method_id, "loss" if request.param == "loss" else "grad_norm"
    METHODS.remove(method_id)


def test_a_non_finite_loss_or_gradient_fails_the_run_at_its_step(tmp_path, pairwise_file, local_leaderboard,
                                                                 diverging_method, capsys):
    method_id, key = diverging_method
    config = write_config(tmp_path, pairwise_file, local_leaderboard, method=method_id)
    out = tmp_path / "results"
    assert main(["run", str(config), "--out", str(out)]) != 0
    (run_dir,) = (out / "runs").iterdir()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["failure"]["key"] == key and manifest["failure"]["step"] == 5
    assert manifest["failure"]["last_checkpoint"].endswith("checkpoint-4")  # step 5 never checkpointed
    assert (run_dir / "checkpoints" / "main" / "checkpoint-4").is_dir()
    assert not (run_dir / "metrics.json").exists()
    assert f"{key} is" in manifest["error"] and "at step 5" in manifest["error"]

    assert main(["report", str(out)]) == 0
    report = (out / "report" / "report.md").read_text()
    assert "failed" in report.lower() and "at step 5" in report
    assert run_dir.name not in (out / "report" / "leaderboard.csv").read_text()  # never shown as a score
