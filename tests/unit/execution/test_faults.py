"""Faults and stored results that lie (issue 20): truncated result files under a complete manifest,
claims left by crashes or naming a reused pid, non-finite results, a data file replaced mid-run, a full
disk, Ctrl-C and a closed pipe. Each must end in a clear error or a redone run, never in a wrong result
recorded complete."""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from suite.core.errors import SuiteError
from suite.execution.store import STATUS_COMPLETE, RunClaim, RunStore, process_start
from support import BAD_INPUTS, REPO_ROOT

CORPUS = BAD_INPUTS
REPO = REPO_ROOT


def _complete_run(store: RunStore, run_id: str, with_checksums: bool = True) -> Path:
    store.write_json(run_id, "metrics.json", {"eval": {}, "alignment": {"reward_accuracy": 0.5}})
    manifest = {"run_id": run_id, "status": STATUS_COMPLETE}
    if with_checksums:
        manifest["checksums"] = store.checksums(run_id)
    store.write_manifest(run_id, manifest)
    return store.run_dir(run_id)


@pytest.mark.parametrize("with_checksums", [True, False])
def test_a_truncated_metrics_file_under_a_complete_manifest_is_not_complete(tmp_path, with_checksums):
    store = RunStore(tmp_path)
    run_dir = _complete_run(store, "dpo-s0-abc", with_checksums)
    assert store.is_complete("dpo-s0-abc")
    text = (run_dir / "metrics.json").read_text()
    (run_dir / "metrics.json").write_text(text[: len(text) // 2])
    assert not store.is_complete("dpo-s0-abc")


def test_an_edited_metrics_file_fails_its_checksum(tmp_path):
    store = RunStore(tmp_path)
    run_dir = _complete_run(store, "dpo-s0-abc")
    (run_dir / "metrics.json").write_text(json.dumps({"eval": {}, "alignment": {"reward_accuracy": 0.9}}))
    assert not store.is_complete("dpo-s0-abc")


def test_a_manifest_that_is_not_an_object_is_not_complete(tmp_path):
    store = RunStore(tmp_path)
    _complete_run(store, "dpo-s0-abc")
    (store.run_dir("dpo-s0-abc") / "manifest.json").write_text('["complete"]')
    assert store.manifest("dpo-s0-abc") is None and not store.is_complete("dpo-s0-abc")


def test_claims_left_by_crashes_are_taken_over_and_live_ones_respected(tmp_path):
    path = tmp_path / "runs" / "r" / ".claim"
    path.parent.mkdir(parents=True)
    host = platform.node()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        for stale in ("", "{not json", json.dumps({"host": host, "pid": live.pid, "pid_start": "1"}),
                      json.dumps({"host": host, "pid": 2**22 + 12345})):
            path.write_text(stale)
            claim = RunClaim(path)
            assert claim.acquire(), f"stale claim {stale!r} was not taken over"
            holder = json.loads(path.read_text())
            assert holder["pid"] == os.getpid() and holder["since"] and holder["pid_start"] == process_start(os.getpid())
            claim.release()
            assert not path.exists()
        for held in (json.dumps({"host": host, "pid": live.pid, "pid_start": process_start(live.pid)}),
                     json.dumps({"host": "another-machine", "pid": 1})):
            path.write_text(held)
            assert not RunClaim(path).acquire(), f"a live claim {held!r} was taken over"
            assert path.read_text() == held
    finally:
        live.kill()
        live.wait()


def _config(tmp_path, **overrides):
    from suite.config.schema import load_config

    data = tmp_path / "pairs.jsonl"
    data.write_bytes((CORPUS / "data" / "good_pairs.jsonl").read_bytes())
    sets = [f"dataset={{path: {data}, format: pairwise}}", "evaluate_base=false"]
    sets += [f"{key}={value}" for key, value in overrides.items()]
    return load_config(CORPUS / "configs" / "valid.yaml", sets), data


def test_non_finite_metrics_and_changed_inputs_fail_the_result_check(tmp_path):
    from suite.execution.result_checks import check_result
    from suite.execution.runner import plan_runs

    config, data = _config(tmp_path)
    run = plan_runs(config)[0]
    good = {"eval": {"arc": 0.3}, "eval_average": 0.3, "alignment": {"reward_accuracy": 0.5}, "train": {"mean_loss": 0.7}}
    check_result(run, good, config)
    for section, value in (("eval", {"arc": float("nan")}), ("eval_average", float("inf")),
                           ("alignment", {"reward_accuracy": float("nan")}), ("train", {"mean_loss": float("-inf")})):
        with pytest.raises(SuiteError, match=f"non-finite metrics: {section}"):
            check_result(run, {**good, section: value}, config)
    data.write_text(data.read_text().replace("tea", "coffee"))
    with pytest.raises(SuiteError, match=f"{data}: changed while the run was in progress"):
        check_result(run, good, config)


def test_a_full_fine_tuning_run_folder_resolves_for_merge_and_delta(tmp_path):
    """Issue 20 item 7: a full fine-tuning run's folder was refused ("train.dtype: unknown dtype None")."""
    from suite.merging.delta import resolve_model
    from suite.modeling.models import load_model

    loaded = load_model("tiny-llama")
    run_dir = tmp_path / "runs" / "sft-s0-abc"
    loaded.model.save_pretrained(run_dir / "model", safe_serialization=True)
    loaded.tokenizer.save_pretrained(run_dir / "model")
    (run_dir / "manifest.json").write_text(json.dumps({"model": "tiny-llama", "config": {"train": {"dtype": "float32"}}}))
    model = resolve_model(str(run_dir))
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in loaded.model.parameters())
    (run_dir / "manifest.json").write_text("{}")  # no config recorded: the default dtype
    assert resolve_model(str(run_dir)) is not None


def test_a_nan_merge_weight_writes_nothing(tmp_path):
    from suite.merging.methods import merge_state_dicts
    import torch

    base = {"w": torch.zeros(2)}
    with pytest.raises(SuiteError, match="weights must be finite"):
        merge_state_dicts(base, [{"w": torch.ones(2)}], "task-arithmetic", [float("nan")])


def test_a_data_file_replaced_mid_run_fails_the_run(tmp_path, monkeypatch, capsys):
    """The file is edited while the run trains: the run is recorded failed, never complete under the old hash."""
    from suite.cli import main
    from suite.execution.runner import Runner
    from suite.execution.store import STATUS_FAILED

    config_path = tmp_path / "config.yaml"
    data = tmp_path / "pairs.jsonl"
    data.write_bytes((CORPUS / "data" / "good_pairs.jsonl").read_bytes())
    config_path.write_text((CORPUS / "configs" / "valid.yaml").read_text().replace(
        "data/good_pairs.jsonl", str(data)) + "evaluate_base: false\n")
    original = Runner._train_and_evaluate

    def edit_then_continue(self, run):
        data.write_text(data.read_text().replace("tea", "coffee"))
        return original(self, run)

    monkeypatch.setattr(Runner, "_train_and_evaluate", edit_then_continue)
    status = main(["run", str(config_path), "--out", str(tmp_path / "results")])
    err = capsys.readouterr().err
    assert status == 2 and "1 run(s) failed" in err.splitlines()[-1]
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*/manifest.json")]
    assert [m["status"] for m in manifests] == [STATUS_FAILED]
    assert f"{data}: changed while the run was in progress" in manifests[0]["error"]


def _environment() -> dict:
    env = dict(os.environ)
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


def _config_file(tmp_path: Path, steps: int = 1) -> Path:
    data = tmp_path / "pairs.jsonl"
    data.write_bytes((CORPUS / "data" / "good_pairs.jsonl").read_bytes())
    path = tmp_path / "config.yaml"
    path.write_text((CORPUS / "configs" / "valid.yaml").read_text().replace("data/good_pairs.jsonl", str(data))
                    .replace("max_steps: 1", f"max_steps: {steps}") + "evaluate_base: false\n")
    return path


@pytest.mark.slow
def test_an_empty_claim_left_by_a_crash_does_not_block_the_run(tmp_path):
    from suite.config.schema import load_config
    from suite.execution.runner import plan_runs

    config = _config_file(tmp_path)
    run_id = plan_runs(load_config(config))[0].run_id
    claim = tmp_path / "results" / "runs" / run_id / ".claim"
    claim.parent.mkdir(parents=True)
    claim.write_text("")  # the disk filled between creating the claim and writing it
    done = subprocess.run([sys.executable, "-m", "suite.cli", "run", str(config), "--out", str(tmp_path / "results")],
                          env=_environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert RunStore(tmp_path / "results").is_complete(run_id) and not claim.exists()


@pytest.mark.slow
def test_a_full_disk_fails_the_run_without_recording_it_complete(tmp_path):
    """No small tmpfs can be mounted in the sandbox: RLIMIT_FSIZE makes every write past 64 KiB fail with
    EFBIG, as a full disk would (the model's weights are the first file that large)."""
    def limit():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    config = _config_file(tmp_path)
    done = subprocess.run([sys.executable, "-m", "suite.cli", "run", str(config), "--out", str(tmp_path / "results")],
                          env=_environment(), capture_output=True, text=True, timeout=600, preexec_fn=limit)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr and done.stderr.strip().splitlines()[-1].startswith("alignsuite: error:")
    manifests = list((tmp_path / "results" / "runs").glob("*/manifest.json"))
    assert all(json.loads(p.read_text())["status"] != STATUS_COMPLETE for p in manifests)


@pytest.mark.slow
def test_ctrl_c_stops_with_one_line_and_the_rerun_completes(tmp_path):
    config = _config_file(tmp_path, steps=40)
    argv = [sys.executable, "-m", "suite.cli", "run", str(config), "--out", str(tmp_path / "results")]
    process = subprocess.Popen(argv, env=_environment(), stderr=subprocess.PIPE, text=True)
    for line in process.stderr:
        if "training dpo" in line:
            break
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    rest = process.stderr.read()
    assert process.wait(timeout=120) == 130
    lines = [line for line in rest.splitlines() if line.strip()]
    assert "Traceback" not in rest and "interrupted (Ctrl-C); run the same command again to resume" in lines[-1]
    manifests = [json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*/manifest.json")]
    assert manifests and all(m["status"] != STATUS_COMPLETE for m in manifests)
    again = subprocess.run(argv, env=_environment(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr


@pytest.mark.slow
def test_a_closed_pipe_is_not_an_error():
    """`alignsuite methods | head -1`: the reader leaves early; no BrokenPipeError, exit 0."""
    process = subprocess.Popen([sys.executable, "-m", "suite.cli", "methods"], env=_environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    process.stdout.readline()
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=120) == 0 and "BrokenPipe" not in err and "Traceback" not in err
