"""``train.report_to``: the offline Trainer (DPO) and a step loop (the reward model) report to TensorBoard and
an MLflow file store, read back with their own readers: the logged loss is train_log.jsonl's, each run is
its own tracker run named by its run id; bad tracker names and missing packages are config errors."""

import importlib.util
import json

import pytest
import yaml

from suite.cli import main
from suite.config.schema import build_config
from suite.core.errors import ConfigError
from suite.execution.runner import plan_runs

needs = pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None or importlib.util.find_spec("mlflow") is None,
                           reason="needs the trackers extra: pip install 'alignsuite[trackers]'")


def _raw(pairwise_file, report_to=None, methods=("dpo",)):
    train = {"max_steps": 3, "per_device_batch_size": 2, "max_length": 64, "checkpoint_steps": 0}
    if report_to is not None:
        train["report_to"] = report_to
    return {"name": "tr", "model": "tiny-llama", "dataset": {"path": str(pairwise_file), "format": "pairwise"},
            "methods": list(methods), "data": {"heldout_fraction": 0.25}, "evaluate_base": False, "train": train,
            "eval": {"leaderboard": None, "alignment_pairs": 2, "generation_prompts": 0}}


def _losses(run_dir):
    return {r["step"]: r["loss"] for r in map(json.loads, (run_dir / "train_log.jsonl").read_text().splitlines())
            if "loss" in r and "step" in r}


@needs
def test_tensorboard_and_mlflow_get_the_train_log_loss_from_every_loop(tmp_path, pairwise_file, monkeypatch):
    import mlflow
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    store = f"file:{tmp_path / 'mlruns'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "alignsuite-test")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_raw(pairwise_file, ["tensorboard", "mlflow"], ["dpo", "reward-model"])))
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "-q"]) == 0
    client = mlflow.tracking.MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("alignsuite-test")
    tracked = {run.data.tags["mlflow.runName"]: run for run in client.search_runs([experiment.experiment_id])}
    run_dirs = sorted((tmp_path / "r" / "runs").iterdir())
    assert sorted(tracked) == [d.name for d in run_dirs]  # one tracker run per run, named by its run id
    for run_dir in run_dirs:
        expected = _losses(run_dir)
        assert len(expected) == 3
        events = EventAccumulator(str(run_dir / "tensorboard"))
        events.Reload()
        tag = "train/loss" if "train/loss" in events.Tags()["scalars"] else "loss"
        assert {e.step: e.value for e in events.Scalars(tag)} == pytest.approx(expected, rel=1e-6)
        history = client.get_metric_history(tracked[run_dir.name].info.run_id, "loss")
        assert {m.step: m.value for m in history} == pytest.approx(expected, rel=1e-6)


def test_report_to_stays_out_of_run_ids_and_bad_names_are_errors(pairwise_file):
    plain = [r.run_id for r in plan_runs(build_config(_raw(pairwise_file)))]
    assert plain == [r.run_id for r in plan_runs(build_config(_raw(pairwise_file, [])))]
    if importlib.util.find_spec("tensorboard"):
        assert plain == [r.run_id for r in plan_runs(build_config(_raw(pairwise_file, ["tensorboard"])))]
    with pytest.raises(ConfigError, match=r"train.report_to\[0\]: unknown tracker 'tensorbord'; known: tensorboard"):
        build_config(_raw(pairwise_file, ["tensorbord"]))
    with pytest.raises(ConfigError, match="train.report_to: expected list or null"):
        build_config(_raw(pairwise_file, "tensorboard"))


def test_a_tracker_whose_package_is_missing_names_the_install_command(pairwise_file, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trackio" else real(name, *a))
    with pytest.raises(ConfigError, match=r"train.report_to\[0\]: tracker 'trackio' needs the trackio package, "
                                          r"which is not installed: pip install trackio"):
        build_config(_raw(pairwise_file, ["trackio"]))


@pytest.mark.skipif(importlib.util.find_spec("wandb") is None, reason="wandb is not installed (pip install wandb)")
def test_wandb_offline_writes_one_local_run_per_run(tmp_path, pairwise_file, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")  # nothing leaves the machine
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_raw(pairwise_file, ["wandb"], ["dpo", "reward-model"])))
    assert main(["run", str(path), "--out", str(tmp_path / "r"), "-q"]) == 0
    offline = sorted((tmp_path / "wandb").glob("offline-run-*"))
    assert len(offline) == 2 and all(list(run.glob("*.wandb")) for run in offline)
