"""What every training loop shares: the device, peak-memory measurement and the step log.

Peak memory is the CUDA peak allocated on a GPU; on CPU, the process's peak resident set, reset before each
stretch of work through /proc/self/clear_refs where the kernel allows it (else the peak since start).
"""

from __future__ import annotations

import re
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
    """The run's ``train_log.jsonl``: one JSON record per step, started afresh (as the offline trainer's)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")
        self.records: list[dict] = []

    def write(self, record: dict) -> None:
        import json

        self.records.append(record)
        with open(self.path, "a") as out:
            out.write(json.dumps(record) + "\n")

    def max(self, key: str):
        values = [r[key] for r in self.records if r.get(key) is not None]
        return max(values) if values else None


