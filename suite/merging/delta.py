"""Deltas between a base and a fine-tuned model, and how sparse they are (PAFT's central measurement).

δ_t = θ_tuned,t − θ_base,t for every floating-point weight t. An entry counts as zero when
|δ| ≤ ε_t with ε_t = e × mean|θ_base,t| — small relative to that weight's own scale, so embeddings,
norms and projections are judged alike — for a few relative thresholds e. Reported overall, per module
type (q_proj, …, embed_tokens, norm) and per layer, with a histogram of log10|δ|
(``alignsuite delta``: ``suite.reporting.deltas``; the plot: ``suite.reporting.plots.delta_histograms``).
PAFT (arXiv 2406.17923) finds the preference delta naturally sparse and the SFT delta dense.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from suite.core.errors import ConfigError
from suite.modeling.weights import (
    check_same_architecture,
    hoyer_sparsity,
    layer_index,
    module_type,
    state_of,
    weight_names,
)

RELATIVE_EPSILONS = (1e-4, 1e-3, 1e-2, 1e-1)
HISTOGRAM_EDGES = [float(x) for x in range(-12, 1)]  # log10|δ| bins; exact zeros are counted apart

def weight_deltas(base, tuned) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{name: (θ_base, δ)} over the floating-point weights of two models (or state dicts) of one architecture.

    A weight stored under two names (tied input/output embeddings) is counted once."""
    base_state, tuned_state = state_of(base), state_of(tuned)
    check_same_architecture(base_state, tuned_state)
    pairs = {}
    for name in weight_names(base_state):
        base32 = base_state[name].detach().float()
        pairs[name] = (base32, tuned_state[name].detach().float() - base32)
    return pairs



class _Tally:
    """Counts for one group of weights."""

    def __init__(self, epsilons):
        self.epsilons = epsilons
        self.entries = self.zeros = 0
        self.small = [0] * len(epsilons)
        self.abs_sum = self.delta_sq = self.base_sq = 0.0

    def add(self, base: torch.Tensor, delta: torch.Tensor) -> None:
        magnitude, scale = delta.abs(), base.abs().mean().item()
        self.entries += delta.numel()
        self.zeros += int((magnitude == 0).sum())
        for i, e in enumerate(self.epsilons):
            self.small[i] += int((magnitude <= e * scale).sum())
        self.abs_sum += magnitude.sum().item()
        self.delta_sq += float((delta.double() ** 2).sum())
        self.base_sq += float((base.double() ** 2).sum())

    def summary(self) -> dict:
        n = max(1, self.entries)
        return {
            "entries": self.entries,
            "exact_zero": self.zeros / n,
            "sparsity": [{"relative_epsilon": e, "fraction": s / n} for e, s in zip(self.epsilons, self.small)],
            "mean_abs_delta": self.abs_sum / n,
            "hoyer": hoyer_sparsity(self.entries, self.abs_sum, math.sqrt(self.delta_sq)),
            "relative_norm": math.sqrt(self.delta_sq) / math.sqrt(self.base_sq) if self.base_sq else 0.0,
        }


def delta_report(base, tuned, relative_epsilons=RELATIVE_EPSILONS) -> dict:
    """Sparsity of ``tuned − base`` overall, per module type and per layer, plus a log10|δ| histogram."""
    overall, by_module, by_layer = _Tally(relative_epsilons), {}, {}
    histogram = torch.zeros(len(HISTOGRAM_EDGES) + 1, dtype=torch.long)  # [< first edge, bins…, ≥ last edge]
    edges = torch.tensor(HISTOGRAM_EDGES)
    for name, (base_tensor, delta) in weight_deltas(base, tuned).items():
        overall.add(base_tensor, delta)
        by_module.setdefault(module_type(name), _Tally(relative_epsilons)).add(base_tensor, delta)
        layer = layer_index(name)
        if layer is not None:
            by_layer.setdefault(layer, _Tally(relative_epsilons)).add(base_tensor, delta)
        nonzero = delta.abs()[delta != 0]
        histogram += torch.bincount(torch.bucketize(nonzero.log10(), edges, right=True),
                                    minlength=len(HISTOGRAM_EDGES) + 1)
    return {
        "overall": overall.summary(),
        "by_module": {k: v.summary() for k, v in sorted(by_module.items())},
        "by_layer": {str(k): v.summary() for k, v in sorted(by_layer.items())},
        # counts[0]: 0 < |δ| < 10^edges[0]; counts[i]: 10^edges[i-1] ≤ |δ| < 10^edges[i]; last: ≥ 10^edges[-1]
        "histogram": {"log10_edges": HISTOGRAM_EDGES, "counts": histogram.tolist(),
                      "exact_zero": overall.zeros},
    }


def sparsity_at(report: dict, relative_epsilon: float, group: str = "overall") -> float:
    """The fraction of near-zero entries at one threshold, from a :func:`delta_report`."""
    for row in report[group]["sparsity"] if group == "overall" else report["by_module"][group]["sparsity"]:
        if math.isclose(row["relative_epsilon"], relative_epsilon):
            return row["fraction"]
    raise KeyError(f"no sparsity at relative epsilon {relative_epsilon}")


def format_summary(report: dict, top: int = 8) -> str:
    overall = report["overall"]
    lines = [f"entries: {overall['entries']:,}   exact zeros: {overall['exact_zero']:.2%}   "
             f"relative norm ||δ||/||θ||: {overall['relative_norm']:.3g}   Hoyer sparsity: {overall['hoyer']:.3f}"]
    lines += [f"sparsity |δ| <= {row['relative_epsilon']:g}·mean|θ|: {row['fraction']:.2%}" for row in overall["sparsity"]]
    lines.append("by module type (sparsity at each threshold):")
    for name, row in list(report["by_module"].items())[:top]:
        lines.append(f"  {name:<14} " + "  ".join(f"{r['fraction']:.2%}" for r in row["sparsity"]))
    return "\n".join(lines)


def resolve_model(spec: str, base_id: str | None = None):
    """A model from an id/path, a LoRA adapter directory (applied to ``base_id``), or a run directory."""
    from suite.core.io import read_json_object
    from suite.modeling.models import load_model, load_trained

    path = Path(spec)
    if (path / "model").is_dir():  # a run directory
        manifest = read_json_object(path / "manifest.json") if (path / "manifest.json").is_file() else {}
        config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
        dtype = (config.get("train") or {}).get("dtype") if isinstance(config.get("train"), dict) else None
        return load_trained(path / "model", base_id or manifest.get("model"), dtype)
    if (path / "adapter_config.json").is_file():
        if base_id is None:
            raise ConfigError(f"{spec}: a LoRA adapter needs its base model")
        return load_trained(path, base_id)
    return load_model(spec).model
