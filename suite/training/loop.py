"""What every training loop shares: the device, peak-memory measurement, the step log, the checkpoint
layout with "newest completely written checkpoint" semantics, and :class:`StepLoop` — optimizer, schedule,
clipping, finite checks, logging and checkpoint/resume for the loops that are not the Trainer's (online
methods, reward models). The offline Trainer (``suite.training.trainer``) writes the same checkpoint layout.

Peak memory is the CUDA peak allocated on a GPU; on CPU, the process's peak resident set, reset before each
stretch of work through /proc/self/clear_refs where the kernel allows it (else the peak since start).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch


def training_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class PeakMemory:
    """The peak memory of a stretch of work (see the module docstring for what is measured where)."""

    CLEAR_REFS = Path("/proc/self/clear_refs")
    STATUS = Path("/proc/self/status")

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"
        self.resettable = not self.cuda and self.CLEAR_REFS.exists() and self.STATUS.exists()
        self.kind = ("cuda peak allocated" if self.cuda else
                     "process peak resident set" if self.resettable else "process peak resident set since start")

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)
            return
        if self.resettable:
            _return_freed_memory()
            try:
                self.CLEAR_REFS.write_text("5")  # resets VmHWM to the current resident set
            except OSError:
                self.resettable = False
                self.kind = "process peak resident set since start"

    def peak_mb(self) -> float:
        if self.cuda:
            return torch.cuda.max_memory_allocated(self.device) / 2**20
        if self.resettable:
            match = re.search(r"VmHWM:\s+(\d+)\s+kB", self.STATUS.read_text())
            if match:
                return int(match.group(1)) / 1024
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _return_freed_memory() -> None:
    """Hand memory freed by earlier work back to the OS, so a reset peak starts from what is live."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class TrainLog:
    """The run's ``train_log.jsonl``: one JSON record per step, started afresh (as the offline trainer's), or
    — resuming — with the records of the steps up to the checkpoint (what a killed attempt logged after
    it is dropped, so the log reads as one uninterrupted run)."""

    def __init__(self, path: Path, records: list[dict] | None = None):
        import json

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.records: list[dict] = list(records or [])
        self.path.write_text("".join(json.dumps(record) + "\n" for record in self.records))

    def write(self, record: dict) -> None:
        import json

        self.records.append(record)
        with open(self.path, "a") as out:
            out.write(json.dumps(record) + "\n")

    def max(self, key: str):
        values = [r[key] for r in self.records if r.get(key) is not None]
        return max(values) if values else None




# -- checkpoints: one layout for the Trainer's runs and the step loop's ---------------------------------

# Written last into a checkpoint folder: its presence marks the checkpoint as completely written.
CHECKPOINT_COMPLETE = "alignsuite_state.pt"
OPTIMIZER_FILE, SCHEDULER_FILE, RNG_FILE, STATE_FILE = "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json"


def checkpoint_dir(output_dir: Path, stage: int | None = None) -> Path:
    """Where a run (or one stage of a staged run) keeps its checkpoints."""
    return Path(output_dir) / "checkpoints" / (f"stage-{stage}" if stage else "main")


def checkpoint_step(checkpoint: Path) -> int:
    return int(Path(checkpoint).name.split("-")[-1])


def last_complete_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint under ``folder`` that was completely written (a kill can interrupt a save)."""
    complete = [c for c in Path(folder).glob("checkpoint-*") if (c / CHECKPOINT_COMPLETE).is_file()]
    return max(complete, key=checkpoint_step, default=None)


def drop_other_checkpoints(folder: Path, keep: Path | None) -> None:
    """Remove every checkpoint under ``folder`` but ``keep``: partial saves a kill interrupted, or ones a
    newer complete checkpoint made redundant."""
    import shutil

    for other in Path(folder).glob("checkpoint-*"):
        if other != keep:
            shutil.rmtree(other, ignore_errors=True)


def rng_state() -> dict:
    """Every RNG a step may draw from, as the Trainer's ``rng_state.pth`` holds them."""
    import random

    import numpy as np

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.random.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    import random

    import numpy as np

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.random.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.random.set_rng_state_all(state["cuda"])


def load_saved_weights(module: torch.nn.Module, folder: Path) -> None:
    """Put weights written by ``module.save_pretrained(folder)`` back into ``module``: a LoRA adapter (with
    the modules peft saves next to it), or the full weights (tied copies are not stored and need none)."""
    from peft import PeftModel, set_peft_model_state_dict
    from safetensors.torch import load_file

    folder = Path(folder)
    if isinstance(module, PeftModel):
        set_peft_model_state_dict(module, load_file(folder / "adapter_model.safetensors"))
        return
    files = sorted(folder.glob("model*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no saved weights (model*.safetensors)")
    state = {}
    for path in files:
        state.update(load_file(path))
    missing, unexpected = module.load_state_dict(state, strict=False)
    names_by_tensor: dict[int, set] = {}
    for name, parameter in module.named_parameters(remove_duplicate=False):
        names_by_tensor.setdefault(id(parameter), set()).add(name)
    untied = [name for name in missing
              if not any(other in state for other in names_by_tensor.get(id(module.get_parameter(name)), ()) )] \
        if missing else []
    if untied or unexpected:
        raise RuntimeError(f"{folder}: saved weights do not fit the model (missing {untied[:5]}, "
                           f"unexpected {list(unexpected)[:5]})")


# -- the step loop ----------------------------------------------------------------------------------------


def build_optimizer(param_groups: list[dict], weight_decay: float) -> torch.optim.Optimizer:
    """AdamW with torch's defaults (betas 0.9/0.999, eps 1e-8: the Trainer's), one group per learner."""
    return torch.optim.AdamW(param_groups, weight_decay=weight_decay)


def build_scheduler(name: str, optimizer, warmup_ratio: float, updates: int):
    """The learning-rate schedule through the helper the Trainer uses, warm-up ⌈ratio × updates⌉ as its
    ``TrainingArguments.get_warmup_steps``."""
    import math

    from transformers import get_scheduler

    return get_scheduler(name, optimizer, num_warmup_steps=math.ceil(warmup_ratio * updates),
                         num_training_steps=updates)


@dataclass
class LoopSettings:
    """What a step loop needs from the run's ``train`` settings (names as in the config)."""

    max_steps: int
    lr_scheduler: str
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float
    checkpoint_steps: int = 0  # 0: no checkpoints (no resume)
    updates_per_step: int = 1  # optimizer updates per step (an online method's epochs per rollout)
    report_to: tuple = ()  # experiment trackers (suite.training.trackers)

    @classmethod
    def from_train(cls, train, max_steps: int | None = None, updates_per_step: int = 1) -> "LoopSettings":
        return cls(max_steps=int(max_steps or train.max_steps), lr_scheduler=train.lr_scheduler,
                   warmup_ratio=train.warmup_ratio, weight_decay=train.weight_decay, max_grad_norm=train.max_grad_norm,
                   checkpoint_steps=train.checkpoint_steps, updates_per_step=updates_per_step,
                   report_to=tuple(getattr(train, "report_to", None) or ()))


class StepLoop:
    """The parts of a training loop outside the model's forward pass, for loops that are not the
    Trainer's (the online family, reward models): AdamW and the learning-rate schedule, gradient clipping
    and the NaN/inf check before each update, the ``train_log.jsonl`` record and peak memory of each step,
    and checkpoints in the Trainer's layout — every ``checkpoint_steps`` steps and at the last —
    from which a rerun resumes to the same result as an uninterrupted run.

    A checkpoint ``checkpoints/main/checkpoint-<step>/`` holds the model's trainable weights as
    ``save_pretrained`` writes them (an adapter, or the full weights; further learners, such as PPO's
    value model, in a folder of their own), ``optimizer.pt``, ``scheduler.pt``, ``rng_state.pth``,
    ``trainer_state.json`` (the step and the log so far) and, written last, ``alignsuite_state.pt`` with
    the loop's ``state`` (a method's running state): only a checkpoint holding it is resumed from.

    Usage::

        loop = StepLoop(policy, groups, settings, run_dir, device)
        loop.resume()                       # a no-op without a complete checkpoint
        for step in loop.steps():
            ...; loss.backward()
            grad_norm = loop.update(step, loss_value)
            loop.end_step(step, {"loss": loss_value, "grad_norm": grad_norm, ...})
    """

    def __init__(self, model: torch.nn.Module, param_groups: list[dict], settings: LoopSettings, run_dir: Path,
                 device: torch.device, learners: dict[str, torch.nn.Module] | None = None):
        self.model, self.learners, self.settings = model, dict(learners or {}), settings
        self.trainable = [p for group in param_groups for p in group["params"]]
        self.optimizer = build_optimizer(param_groups, settings.weight_decay)
        self.scheduler = build_scheduler(settings.lr_scheduler, self.optimizer, settings.warmup_ratio,
                                         settings.max_steps * settings.updates_per_step)
        self.checkpoints = checkpoint_dir(run_dir)
        self.log_path = Path(run_dir) / "train_log.jsonl"
        self.log: TrainLog | None = None
        self.memory = PeakMemory(device)
        self.state: dict = {}  # a method's running state: checkpointed, restored on resume
        self.resumed_from_step: int | None = None
        self._step_started = 0.0
        self.progress = None  # the run's progress line (suite.core.progress), while steps() runs
        self.trackers = None  # its experiment trackers (suite.training.trackers), while steps() runs

    # -- resuming ------------------------------------------------------------------------------------
    def resume(self) -> int | None:
        """Restore the newest completely written checkpoint, if checkpoints are on and there is one;
        returns its step (None: starting afresh). Partial checkpoints a kill left are removed."""
        import json

        last = last_complete_checkpoint(self.checkpoints) if self.settings.checkpoint_steps else None
        drop_other_checkpoints(self.checkpoints, last)
        if last is None:
            self.log = TrainLog(self.log_path)
            return None
        load_saved_weights(self.model, last)
        for name, learner in self.learners.items():
            load_saved_weights(learner, last / name)
        self.optimizer.load_state_dict(torch.load(last / OPTIMIZER_FILE, weights_only=True))
        self.scheduler.load_state_dict(torch.load(last / SCHEDULER_FILE, weights_only=True))
        restore_rng_state(torch.load(last / RNG_FILE, weights_only=False))
        self.state = torch.load(last / CHECKPOINT_COMPLETE, weights_only=False)["method_state"]
        self.log = TrainLog(self.log_path, json.loads((last / STATE_FILE).read_text())["log_history"])
        self.resumed_from_step = checkpoint_step(last)
        return self.resumed_from_step

    # -- stepping --------------------------------------------------------------------------------------
    def steps(self):
        """Step numbers still to train (1-based), each with its peak-memory measure reset."""
        import time

        from suite.core.progress import ProgressLine

        if self.log is None:
            self.resume()
        self.progress = ProgressLine(f"{self.log_path.parent.name} training", self.settings.max_steps, "steps")
        self.progress.update(done=self.resumed_from_step or 0)
        trackers = self._trackers()
        trackers.begin(self.model, self.settings.max_steps, self.resumed_from_step or 0)
        try:
            for step in range((self.resumed_from_step or 0) + 1, self.settings.max_steps + 1):
                self.memory.reset()
                self._step_started = time.perf_counter()
                yield step
        finally:
            self.progress.close()
            trackers.end(self.model)

    def _trackers(self):
        """The run's trackers: the same transformers integrations the offline Trainer reports through."""
        from suite.training.trackers import LoopTrackers, tracker_run_name

        s = self.settings
        self.trackers = LoopTrackers(list(s.report_to), self.log_path.parent, tracker_run_name(self.log_path.parent.name),
                                     {"max_steps": s.max_steps, "lr_scheduler_type": s.lr_scheduler,
                                      "weight_decay": s.weight_decay, "max_grad_norm": s.max_grad_norm})
        return self.trackers

    def update(self, step: int, loss: float) -> float:
        """One optimizer update from the accumulated gradients: clip them, stop on a NaN/inf loss or
        gradient norm (recorded as a failed run, naming the last good checkpoint), step the optimizer and
        the schedule, clear the gradients. Returns the gradient norm before clipping."""
        from suite.core.errors import check_finite

        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.trainable, self.settings.max_grad_norm))
        last = last_complete_checkpoint(self.checkpoints)
        check_finite(step, None if last is None else str(last), loss=loss, grad_norm=grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    @property
    def learning_rate(self) -> float:
        return self.scheduler.get_last_lr()[0]

    def end_step(self, step: int, record: dict) -> None:
        """Log the step (``record`` plus its wall time and peak memory) and checkpoint it when due."""
        import time

        logged = {"step": step, **record, "step_time_s": time.perf_counter() - self._step_started,
                  "peak_memory_mb": self.memory.peak_mb()}
        self.log.write(logged)
        if self.trackers is not None:  # the same record, to the run's experiment trackers
            self.trackers.log(step, logged)
        if self.progress is not None:
            self.progress.update(done=step, **({"loss": float(record["loss"])} if "loss" in record else {}))
        every = self.settings.checkpoint_steps
        if every and (step % every == 0 or step == self.settings.max_steps):
            self.save(step)

    def save(self, step: int) -> Path:
        import json

        folder = self.checkpoints / f"checkpoint-{step}"
        drop_other_checkpoints(self.checkpoints, last_complete_checkpoint(self.checkpoints))  # earlier partials
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(folder, safe_serialization=True)
        for name, learner in self.learners.items():
            learner.save_pretrained(folder / name, safe_serialization=True)
        torch.save(self.optimizer.state_dict(), folder / OPTIMIZER_FILE)
        torch.save(self.scheduler.state_dict(), folder / SCHEDULER_FILE)
        torch.save(rng_state(), folder / RNG_FILE)
        (folder / STATE_FILE).write_text(json.dumps({"global_step": step, "max_steps": self.settings.max_steps,
                                                     "log_history": self.log.records}))
        staging = folder / f"{CHECKPOINT_COMPLETE}.tmp"
        torch.save({"method_state": self.state, "step": step}, staging)
        staging.replace(folder / CHECKPOINT_COMPLETE)  # last: the checkpoint is complete
        drop_other_checkpoints(self.checkpoints, folder)  # only now is the older one redundant
        return folder

    @property
    def records(self) -> list[dict]:
        return self.log.records
