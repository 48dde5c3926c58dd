"""Where the runs of an experiment execute: a small registry of executors.

* ``local`` — one after another in this process (the default for ``--jobs 1``);
* ``processes`` — ``--jobs N`` spawned worker processes on this machine, one GPU each when there are GPUs;
* ``ray`` — each run a Ray task with its resource needs (``num_cpus``, ``num_gpus``) on a Ray cluster
  (``--ray-address``, ``RAY_ADDRESS``, or a local instance started for the sweep).

Every executor hands a run to ``Runner.execute_claimed``, so runs share nothing but the results folder:
a run is claimed there (``RunStore.claim``) before it trains, and a composite run waits until its
components have finished. Remote Ray workers must see the same results folder (a shared file system).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from suite.core.errors import ConfigError, SuiteError

EXECUTORS: dict[str, type] = {}
# Environment a remote worker needs to read the same data and caches as this process.
FORWARDED_ENV_PREFIXES = ("ALIGNSUITE_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "NLTK_DATA")


def register_executor(cls):
    EXECUTORS[cls.name] = cls
    return cls


def get_executor(name: str, **options):
    if name not in EXECUTORS:
        raise ConfigError(f"--executor {name}: unknown executor; known: {', '.join(sorted(EXECUTORS))}")
    return EXECUTORS[name](**options)


def _outcome(run, status: str):
    from suite.execution.runner import RunOutcome

    return RunOutcome(run.run_id, run.method_id, status)


def ready_runs(pending: list, outcomes: dict) -> list:
    """The pending runs whose components (other runs) have all finished."""
    return [run for run in pending if all(component in outcomes for component in run.components.values())]


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
    """``jobs`` spawned worker processes on this machine (``suite.execution.runner._execute_in_parallel``)."""

    name = "processes"
    jobs: int = 2

    def execute(self, runner, todo: list, outcomes: dict) -> None:
        from suite.execution.runner import _execute_in_parallel

        _execute_in_parallel(runner.config, runner.store.root, todo, self.jobs, outcomes,
                             launcher=getattr(runner, "launcher", None))


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
        from suite.execution.runner import _execute_one

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
            task = ray.remote(_execute_one).options(**resources)
            out_dir = str(Path(runner.store.root).resolve())
            pending, running = list(todo), {}
            while pending or running:
                for run in ready_runs(pending, outcomes):
                    pending.remove(run)
                    running[task.remote(runner.config, out_dir, run, launcher)] = run
                if not running:
                    raise SuiteError(f"runs waiting on components that never ran: {[r.run_id for r in pending]}")
                done, _ = ray.wait(list(running), num_returns=1)
                for ref in done:
                    run = running.pop(ref)
                    outcomes[run.run_id] = _outcome(run, ray.get(ref))
        finally:
            if started_here:
                ray.shutdown()


def default_executor(jobs: int) -> str:
    return "local" if jobs <= 1 else "processes"
