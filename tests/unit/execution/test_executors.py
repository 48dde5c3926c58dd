"""Executors: the registry, Ray's resource requests, and a sweep on a local Ray instance where two runs
execute at the same time into one results folder."""

import datetime as dt
import json
import os
import sys

import pytest

from suite.config.schema import build_config
from suite.core.errors import ConfigError, SuiteError
from suite.execution.executors import (
    EXECUTORS,
    cpu_threads_per_worker,
    RayExecutor,
    default_executor,
    get_executor,
)
from suite.execution.launch import AccelerateLauncher
from suite.execution.runner import run_experiment


def test_the_registry_names_every_executor():
    assert {"local", "processes", "ray"} <= set(EXECUTORS)
    assert default_executor(1) == "local" and default_executor(3) == "processes"
    assert get_executor("processes", jobs=3).jobs == 3
    with pytest.raises(ConfigError, match="unknown executor 'slurm'; known: local, processes, ray"):
        get_executor("slurm")


def test_ray_asks_for_one_gpu_per_training_process_when_the_cluster_has_gpus():
    executor = RayExecutor(cpus_per_run=2)
    assert executor.resources(None, {"CPU": 8}) == {"num_cpus": 2, "num_gpus": 0}
    assert executor.resources(None, {"CPU": 8, "GPU": 4}) == {"num_cpus": 2, "num_gpus": 1}
    assert executor.resources(AccelerateLauncher(2), {"GPU": 4}) == {"num_cpus": 2, "num_gpus": 2}
    assert RayExecutor(gpus_per_run=0.5).resources(None, {"GPU": 4})["num_gpus"] == 0.5
    with pytest.raises(ConfigError, match="cpus-per-run"):
        RayExecutor(cpus_per_run=0).resources(None, {})


def test_without_ray_installed_the_error_says_how_to_get_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(SuiteError, match=r"pip install 'alignsuite\[ray\]'"):
        RayExecutor().execute(runner=None, todo=[], outcomes={})


def test_the_vllm_eval_backend_is_a_clear_error_without_vllm(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "vllm" else real_find_spec(name, *a))
    raw = {"model": "tiny-llama", "dataset": "hh-rlhf-harmless", "methods": ["dpo"]}
    with pytest.raises(ConfigError, match="eval.backend: vllm needs the vllm package, which is not installed"):
        build_config({**raw, "eval": {"backend": "vllm"}})
    with pytest.raises(ConfigError, match="unknown backend 'tgi'; known: hf, hf-plain, vllm"):
        build_config({**raw, "eval": {"backend": "tgi"}})
    assert build_config(raw).eval.backend == "hf"


def _time(stamp: str) -> dt.datetime:
    return dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")


def test_two_runs_execute_concurrently_on_a_local_ray_instance(tmp_path, pairwise_file, local_leaderboard):
    pytest.importorskip("ray")
    config = build_config({
        "name": "sweep", "model": "tiny-llama", "dataset": {"path": str(pairwise_file), "format": "pairwise"},
        "methods": ["sft", "dpo"], "seeds": [0], "evaluate_base": False, "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": 2, "per_device_batch_size": 2, "learning_rate": 1e-3, "max_length": 64},
        "eval": {"leaderboard": str(local_leaderboard), "batch_size": 4, "alignment_pairs": 4,
                 "generation_prompts": 0, "max_new_tokens": 4},
    })
    out = tmp_path / "results"
    # a local instance has the machine's CPUs; one CPU per run lets two runs start at once even on 2 cores
    outcomes = run_experiment(config, out, executor="ray", executor_options={"cpus_per_run": 1})
    assert sorted(o.status for o in outcomes) == ["complete", "complete"]
    manifests = [json.loads((out / "runs" / o.run_id / "manifest.json").read_text()) for o in outcomes]
    assert {m["method"] for m in manifests} == {"sft", "dpo"}
    (start_a, end_a), (start_b, end_b) = [(_time(m["started_at"]), _time(m["ended_at"])) for m in manifests]
    assert start_a < end_b and start_b < end_a, manifests  # each started before the other ended: concurrent
    for outcome in outcomes:
        run_dir = out / "runs" / outcome.run_id
        assert not (run_dir / ".claim").exists()
        steps = [json.loads(line)["step"] for line in (run_dir / "train_log.jsonl").read_text().splitlines()
                 if '"loss"' in line]
        assert steps == [1, 2]  # trained once
    # a second sweep over the same folder finds everything complete
    again = run_experiment(config, out, executor="ray", executor_options={"cpus_per_run": 1})
    assert [o.status for o in again] == ["skipped", "skipped"]


def test_cpu_workers_split_the_cores_unless_the_user_set_threads(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert [cpu_threads_per_worker(jobs) for jobs in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads_per_worker(2) is None  # the user's choice stands
