"""What the machine can do and what else it is doing: the bf16 and matmul peaks measured in the same run as a
benchmark, and the share of the CPU other processes took meanwhile (contended numbers are flagged)."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import torch

CONTENDED_SHARE = 0.10  # other processes used more than this share of the machine: flagged


def cpu_jiffies() -> tuple[int, int] | None:
    """(busy, total) jiffies of the whole machine from /proc/stat, or None off Linux."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields) - idle, sum(fields)


class MachineShare:
    """How much of the machine other processes took while a measurement ran: machine busy time minus
    the measured process tree's own CPU time."""

    def __enter__(self):
        self.start = cpu_jiffies()
        self.wall = time.perf_counter()
        self.load_before = os.getloadavg()
        return self

    def finish(self, own_cpu_s: float) -> dict:
        end, wall = cpu_jiffies(), time.perf_counter() - self.wall
        facts = {"wall_s": wall, "own_cpu_s": own_cpu_s, "loadavg_before": self.load_before,
                 "loadavg_after": os.getloadavg()}
        if self.start and end:
            hz = os.sysconf("SC_CLK_TCK")
            busy = (end[0] - self.start[0]) / hz
            capacity = (end[1] - self.start[1]) / hz  # core-seconds available
            others = max(0.0, busy - own_cpu_s)
            facts.update(others_cpu_s=others, others_share=others / capacity if capacity else None)
            facts["contended"] = bool(capacity and others / capacity > CONTENDED_SHARE)
        return facts

    def __exit__(self, *exc):
        return False


def processor_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def bf16_is_native() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 / AMX); without it torch emulates bf16,
    about a hundred times slower than fp32, and bf16 autocast is no option. Always true on CUDA."""

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def matmul_peak(size: int = 2048, repeats: int = 5, budget_s: float = 2.0) -> dict:
    """Best-of-``repeats`` FLOP/s of a size³ matmul in fp32 and bf16 (2·size³ FLOPs each). A dtype whose
    512³ product already says size³ would take over ``budget_s`` (emulated bf16) is measured at 512³."""

    peaks, sizes = {}, {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        n = size
        probe_a, probe_b = torch.randn(512, 512, dtype=dtype), torch.randn(512, 512, dtype=dtype)
        torch.matmul(probe_a, probe_b)  # warm-up: thread pool, kernel choice
        started = time.perf_counter()
        torch.matmul(probe_a, probe_b)
        if (time.perf_counter() - started) * (size / 512) ** 3 > budget_s:
            n = 512
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        torch.matmul(a, b)
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - started)
        peaks[name], sizes[name] = 2 * n**3 / best, n
    return {**peaks, "sizes": sizes, "bf16_native": bf16_is_native()}


def matmul_params(model) -> int:
    """Parameters that take part in matmuls: all of them, less an untied input embedding (a lookup)."""
    total = sum(p.numel() for p in model.parameters())
    embeddings, head = model.get_input_embeddings(), model.get_output_embeddings()
    if head is None or head.weight is not embeddings.weight:
        total -= embeddings.weight.numel()
    return total

