"""Training under ``accelerate launch``: DDP (CPU or GPU), FSDP and DeepSpeed, through the same Trainer.

``alignsuite run CONFIG --launcher accelerate --num-processes N [--accelerate-config FILE]`` keeps the runner
in one process — data, reference log-probs, evaluation and the results store stay where they are — and
hands only the Trainer's part of a run to N processes:

1. the runner prepares the examples (reference log-probs attached from the shared cache) and the model it
   would train, and writes them to ``<run>/launch/job.pt``;
2. ``accelerate launch --num_processes N [--config_file FILE] -m suite.execution.launch JOB`` starts N copies of
   :func:`worker`, each calling the very ``suite.training.trainer.train`` the runner calls in-process; the Trainer
   reads the distributed setup accelerate put in the environment (gloo on CPU, NCCL on GPUs, FSDP or
   DeepSpeed from the config file);
3. rank 0 writes the trained weights (gathered first under FSDP / ZeRO-3) and the summary; the runner
   loads them into its model and evaluates as usual.

A run means the same thing however it is launched: each step's batch of ``per_device_batch_size`` ×
``gradient_accumulation_steps`` records is split across the processes (so ``per_device_batch_size`` must be
a multiple of N), the global batch — and so the result, up to float summation order — is unchanged.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from suite.core.errors import ConfigError, SuiteError

LAUNCH_CONFIGS = Path(__file__).resolve().parents[2] / "reports" / "accelerate"  # at the project root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def resolve_accelerate_config(name_or_path: str | None) -> Path | None:
    """A config file path, or the name of one shipped in reports/accelerate/ (``fsdp``, ``deepspeed-zero2`` …)."""
    if name_or_path is None:
        return None
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = LAUNCH_CONFIGS / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in LAUNCH_CONFIGS.glob("*.yaml"))
    raise ConfigError(f"--accelerate-config {name_or_path}: no such file, and not a shipped config "
                      f"({', '.join(known)})")


@dataclasses.dataclass
class AccelerateLauncher:
    """A drop-in for ``suite.training.trainer.train`` that runs it under ``accelerate launch`` (see module docstring)."""

    num_processes: int
    config_file: Path | None = None

    def __post_init__(self):
        if self.num_processes < 1:
            raise ConfigError(f"--num-processes: expected a positive number, got {self.num_processes}")
        self.config_file = resolve_accelerate_config(str(self.config_file) if self.config_file else None)

    def describe(self) -> dict:
        return {"name": "accelerate", "num_processes": self.num_processes,
                "config_file": str(self.config_file) if self.config_file else None}

    def split_settings(self, settings):
        """The per-process settings that keep the global batch of ``settings``."""
        if settings.per_device_batch_size % self.num_processes:
            raise ConfigError(f"train.per_device_batch_size={settings.per_device_batch_size} must be a multiple of "
                              f"--num-processes {self.num_processes}: each step's batch is split across processes")
        return dataclasses.replace(settings, per_device_batch_size=settings.per_device_batch_size // self.num_processes)

    def command(self, job: Path) -> list[str]:
        """``accelerate launch`` for ``job``. Without a config file, N > 1 processes go through its torchrun
        launcher (``--multi_gpu``), which on a machine without GPUs starts CPU processes joined by gloo."""
        if not _module_available("accelerate"):
            raise SuiteError("--launcher accelerate needs the accelerate package (pip install accelerate)")
        command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(self.num_processes),
                   "--num_machines", "1", "--main_process_port", str(_free_port())]
        if self.config_file is not None:
            command += ["--config_file", str(self.config_file)]
        elif self.num_processes > 1:
            command += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
        return command + ["-m", "suite.execution.launch", str(job)]

    def __call__(self, model, tokenizer, method, hyperparameters: dict, examples: list, settings, output_dir: Path,
                 stage: int | None = None) -> dict:
        import torch

        output_dir = Path(output_dir)
        exchange = output_dir / "launch" / (f"stage-{stage}" if stage else "main")
        shutil.rmtree(exchange, ignore_errors=True)
        exchange.mkdir(parents=True)
        job = exchange / "job.pt"
        torch.save({"model": model, "tokenizer": tokenizer, "method": method.id, "hyperparameters": hyperparameters,
                    "examples": examples, "settings": self.split_settings(settings), "output_dir": str(output_dir),
                    "stage": stage}, job)
        env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
        process = subprocess.run(self.command(job), capture_output=True, text=True, env=env)
        (exchange / "launch.log").write_text(process.stdout + process.stderr)
        result = exchange / "trained.pt"
        if process.returncode != 0 or not result.is_file():
            tail = "\n".join(process.stderr.strip().splitlines()[-20:])
            raise SuiteError(f"accelerate launch ({self.num_processes} processes) failed with exit status "
                             f"{process.returncode}; full log in {exchange / 'launch.log'}:\n{tail}")
        trained = torch.load(result, weights_only=False)
        missing, unexpected = model.load_state_dict(trained["state_dict"], strict=False)
        tied = {name for name in missing if name.endswith("lm_head.weight")}  # tied to the embeddings
        if set(missing) - tied or unexpected:
            raise SuiteError(f"weights from accelerate launch do not fit the model: missing {sorted(missing)[:5]}, "
                             f"unexpected {sorted(unexpected)[:5]}")
        shutil.rmtree(exchange, ignore_errors=True)  # kept only when the launch failed (its launch.log)
        return {**trained["summary"], "launcher": self.describe()}


LAUNCHERS = {"accelerate": AccelerateLauncher}


def _module_available(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def _gathered_state_dict(model) -> dict:
    """The full weights on every rank: FSDP2 and DeepSpeed ZeRO-3 shard them, so gather first (a collective:
    every rank calls this); under DDP / ZeRO-1/2 each rank already holds them."""
    import torch

    state = None
    if any(type(p).__name__ == "DTensor" for p in model.parameters()):  # FSDP2 (fully_shard)
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
        )

        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
    elif any(hasattr(p, "ds_id") for p in model.parameters()):  # DeepSpeed ZeRO-3 partitions in place
        import deepspeed

        with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
            state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if state is None:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return {k: v.to(torch.float32) if v.is_floating_point() and v.dtype != model.dtype else v for k, v in state.items()}


def worker(job_path: str) -> None:
    """One process of an accelerate launch: train as the runner would, rank 0 hands back the result."""
    import torch

    from suite.method.registry import get_method
    from suite.training.trainer import train

    job = torch.load(job_path, weights_only=False)
    rank = int(os.environ.get("RANK", "0"))
    exchange = Path(job_path).parent
    # Only rank 0 writes the run's train_log.jsonl; the others log to scratch but share the run's checkpoint
    # folder, where every rank keeps its own RNG state and from which all of them resume together.
    output_dir = Path(job["output_dir"])
    if rank != 0:
        scratch = exchange / f"rank-{rank}"
        scratch.mkdir(parents=True, exist_ok=True)
        (output_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        if not (scratch / "checkpoints").exists():
            (scratch / "checkpoints").symlink_to((output_dir / "checkpoints").resolve(), target_is_directory=True)
        output_dir = scratch
    summary = train(job["model"], job["tokenizer"], get_method(job["method"]), job["hyperparameters"], job["examples"],
                    job["settings"], output_dir, stage=job["stage"])
    state = _gathered_state_dict(job["model"])
    if rank == 0:
        torch.save({"state_dict": state, "summary": summary}, exchange / "trained.pt.partial")
        os.replace(exchange / "trained.pt.partial", exchange / "trained.pt")
        (exchange / "summary.json").write_text(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    worker(sys.argv[1])
