"""Where the runs of an experiment execute: a small registry of executors.

* ``local`` — one after another in this process (the default for ``--jobs 1``);
* ``processes`` — ``--jobs N`` spawned worker processes on this machine, one GPU each when there are GPUs;
* ``ray`` — each run a Ray task with its resource needs (``num_cpus``, ``num_gpus``) on a Ray cluster
  (``--ray-address``, ``RAY_ADDRESS``, or a local instance started for the sweep).

Every executor hands a run to ``Runner.execute_claimed``, so runs share nothing but the results folder:
a run is claimed there (``RunStore.claim``) before it trains, and a composite run waits until its
components have finished (:func:`schedule`, the one scheduling loop). A worker process builds its own
runner from the runner's class (:func:`execute_one`), so this module never imports the runner.
Remote Ray workers must see the same results folder (a shared file system).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from suite.core.errors import ConfigError, SuiteError
from suite.core.registry import Registry

EXECUTORS: Registry[type] = Registry("executor", "--executor")
# Environment a remote worker needs to read the same data and caches as this process.
FORWARDED_ENV_PREFIXES = ("ALIGNSUITE_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "NLTK_DATA")


def register_executor(cls):
    return EXECUTORS.add(cls.name, cls)


def get_executor(name: str, **options):
    return EXECUTORS.get(name)(**options)


@dataclass
class RunOutcome:
    run_id: str
    method: str
    status: str  # complete | failed | skipped | elsewhere


def _outcome(run, status: str) -> RunOutcome:
    return RunOutcome(run.run_id, run.method_id, status)


def ready_runs(pending: list, outcomes: dict) -> list:
    """The pending runs whose components (other runs) have all finished."""
    return [run for run in pending if all(component in outcomes for component in run.components.values())]


def schedule(todo: list, outcomes: dict, submit, wait_one) -> None:
    """Start every run whose components have finished, wait for one to finish, repeat until all are done.

    ``submit(run)`` starts a run and returns a handle; ``wait_one(handles)`` blocks until at least one
    has finished and returns the finished handles with their statuses, as ``[(handle, status), ...]``.
    """
    pending, running = list(todo), {}
    while pending or running:
        for run in ready_runs(pending, outcomes):
            pending.remove(run)
            running[submit(run)] = run
        if not running:  # a component can only be missing if planning went wrong
            raise SuiteError(f"runs waiting on components that never ran: {[r.run_id for r in pending]}")
        for handle, status in wait_one(list(running)):
            run = running.pop(handle)
            outcomes[run.run_id] = _outcome(run, status)


def execute_one(runner_class, config, out_dir: str, run, launcher=None) -> str:
    """A worker's part: a runner of its own on the shared results folder, which claims and executes ``run``."""
    runner = runner_class(config, Path(out_dir))
    runner.launcher = launcher
    runner.preflight([run])
    return runner.execute_claimed(run)


def cpu_threads_per_worker(jobs: int) -> int | None:
    """Each of ``jobs`` CPU workers' share of this machine's cores (torch would otherwise give every worker all
    of them, and N workers on N cores would thrash); None where the user set OMP_NUM_THREADS."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def _claim_device(slots, devices: list[str], log_level: int = logging.INFO, cpu_threads: int | None = None) -> None:
    """Worker start: log as the parent does; take a slot; with GPUs, see only that slot's one (set before the
    worker starts CUDA); without, use only this worker's share of the cores."""
    from suite.core.log import configure

    configure({logging.WARNING: -1, logging.DEBUG: 1}.get(log_level, 0))
    slot = slots.get()
    if devices:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]
    elif cpu_threads:
        import torch

        torch.set_num_threads(cpu_threads)


@register_executor
@dataclass
class LocalExecutor:
    """Runs in this process, in plan order (components come before their composite)."""

    name = "local"
    jobs: int = 1

    def execute(self, runner, todo: list, outcomes: dict) -> None:
        for run in todo:
            outcomes[run.run_id] = _outcome(run, runner.execute_claimed(run))


@register_executor
@dataclass
class ProcessExecutor:
    """``jobs`` spawned worker processes on this machine that share nothing but the files on disk, one GPU
    each when there are GPUs."""

    name = "processes"
    jobs: int = 2

    def execute(self, runner, todo: list, outcomes: dict) -> None:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        import torch

        context = multiprocessing.get_context("spawn")  # a clean interpreter each: no forked torch state
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        devices = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
        slots = context.Queue()
        for slot in range(self.jobs):
            slots.put(slot)
        launcher, out_dir = getattr(runner, "launcher", None), str(runner.store.root)
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=context, initializer=_claim_device,
                                 initargs=(slots, devices, logging.getLogger("suite").getEffectiveLevel(),
                                           None if devices else cpu_threads_per_worker(self.jobs))) as pool:
            def wait_one(futures):
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                return [(future, future.result()) for future in done]

            schedule(todo, outcomes, lambda run: pool.submit(execute_one, type(runner), runner.config, out_dir, run,
                                                            launcher), wait_one)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise SuiteError("--executor ray needs Ray: pip install 'alignsuite[ray]' (or pip install ray)") from None
    return ray


@register_executor
@dataclass
class RayExecutor:
    """Each run a Ray task. Resources per run: ``cpus_per_run`` CPUs, and ``gpus_per_run`` GPUs — by default
    one per training process (the launcher's ``num_processes``) when the cluster has GPUs, else none. Ray
    starts as many runs at once as the cluster's resources allow (``jobs`` is not used)."""

    name = "ray"
    jobs: int = 1
    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float | None = None

    def resources(self, launcher, cluster: dict) -> dict:
        processes = getattr(launcher, "num_processes", 1)
        gpus = self.gpus_per_run if self.gpus_per_run is not None else (processes if cluster.get("GPU", 0) else 0)
        if self.cpus_per_run <= 0 or gpus < 0:
            raise ConfigError(f"--cpus-per-run must be > 0 and --gpus-per-run >= 0, got {self.cpus_per_run}, {gpus}")
        return {"num_cpus": self.cpus_per_run, "num_gpus": gpus}

    def execute(self, runner, todo: list, outcomes: dict) -> None:
        ray = _import_ray()
        if not todo:
            return
        started_here = not ray.is_initialized()
        if started_here:
            env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV_PREFIXES)}
            ray.init(address=self.address or os.environ.get("RAY_ADDRESS") or None, include_dashboard=False,
                     runtime_env={"env_vars": env}, log_to_driver=True)
        try:
            launcher = getattr(runner, "launcher", None)
            resources = self.resources(launcher, ray.cluster_resources())
            task = ray.remote(execute_one).options(**resources)
            out_dir = str(Path(runner.store.root).resolve())

            def wait_one(refs):
                done, _ = ray.wait(refs, num_returns=1)
                return [(ref, ray.get(ref)) for ref in done]

            schedule(todo, outcomes, lambda run: task.remote(type(runner), runner.config, out_dir, run, launcher),
                     wait_one)
        finally:
            if started_here:
                ray.shutdown()


def default_executor(jobs: int) -> str:
    return "local" if jobs <= 1 else "processes"
