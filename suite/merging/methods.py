"""Model merging: every merge method one class behind one interface (as in mergekit's registry).

A merge combines fine-tuned models that share a base. Each method maps, per weight tensor, the base
θ_0 and the task deltas δ_i = θ_i − θ_0 (with weights w_i) to the merged tensor. The tensor math is
peft's (``peft.utils.merge_utils``: task arithmetic, TIES, DARE, magnitude pruning); only linear
averaging and SLERP are written here. DARE's random drops are seeded per tensor, so a merge is
reproducible. Definitions (mergekit's and the papers' below) — task arithmetic θ_0 + λ Σ w_i δ_i; TIES: keep each δ's
top-k % by magnitude, elect a sign per entry by summed mass, average the agreeing entries; DARE: drop
each entry with probability 1 − density, rescale the rest by 1/density, then linear or TIES.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch
from peft.utils import merge_utils

from suite.core.registry import Registry
from suite.core.errors import ConfigError


@dataclass(frozen=True)
class MergeMethod:
    id: str
    description: str
    parameters: dict = field(default_factory=dict)  # name -> default
    models: int | None = None  # exactly this many models, when the method needs it (SLERP: 2)

    def resolve(self, parameters: dict | None, where: str = "parameters") -> dict:
        unknown = sorted(set(parameters or {}) - set(self.parameters))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: merge method {self.id!r} has no such parameter; "
                              f"known: {sorted(self.parameters) or 'none'}")
        resolved = {**self.parameters, **(parameters or {})}
        if "density" in resolved and not 0.0 < float(resolved["density"]) <= 1.0:
            raise ConfigError(f"{where}.density: must be in (0, 1], got {resolved['density']}")
        return resolved

    def merge_tensor(self, base: torch.Tensor, deltas: list[torch.Tensor], weights: torch.Tensor,
                     parameters: dict) -> torch.Tensor:
        """The merged tensor for one weight (the interface every method implements)."""
        raise NotImplementedError


class Linear(MergeMethod):
    def merge_tensor(self, base, deltas, weights, parameters):
        if float(weights.sum()) == 0.0:
            raise ConfigError("merge method 'linear' normalises the weights, but they sum to zero")
        # Σ w_i θ_i / Σ w_i = θ_0 + Σ w_i δ_i / Σ w_i: a weighted average of the models
        return base + merge_utils.task_arithmetic(deltas, weights / weights.sum())


class TaskArithmetic(MergeMethod):
    def merge_tensor(self, base, deltas, weights, parameters):
        return base + parameters["scale"] * merge_utils.task_arithmetic(deltas, weights)


class Ties(MergeMethod):
    def merge_tensor(self, base, deltas, weights, parameters):
        merged = merge_utils.ties(deltas, weights, parameters["density"], parameters["majority_sign_method"])
        return base + parameters["scale"] * merged


class DareLinear(MergeMethod):
    def merge_tensor(self, base, deltas, weights, parameters):
        return base + parameters["scale"] * merge_utils.dare_linear(deltas, weights, parameters["density"])


class DareTies(MergeMethod):
    def merge_tensor(self, base, deltas, weights, parameters):
        merged = merge_utils.dare_ties(deltas, weights, parameters["density"], parameters["majority_sign_method"])
        return base + parameters["scale"] * merged


class MagnitudePrune(MergeMethod):
    def merge_tensor(self, base, deltas, weights, parameters):
        return base + parameters["scale"] * merge_utils.magnitude_prune(deltas, weights, parameters["density"])


class Slerp(MergeMethod):
    def merge_tensor(self, base, deltas, weights, parameters):
        return slerp(base + deltas[0], base + deltas[1], float(parameters["t"]))


def slerp(a: torch.Tensor, b: torch.Tensor, t: float, colinear_threshold: float = 0.9995) -> torch.Tensor:
    """Spherical interpolation between two weight tensors (treated as flat vectors):

        Ω = arccos(â·b̂),  slerp = sin((1−t)Ω)/sin Ω · a + sin(tΩ)/sin Ω · b

    falling back to linear interpolation when a and b are nearly colinear (sin Ω → 0)."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    norms = a64.norm() * b64.norm()
    if norms == 0:
        return ((1 - t) * a64 + t * b64).reshape(a.shape).to(a.dtype)
    cosine = float((a64 @ b64) / norms)
    if abs(cosine) > colinear_threshold:
        mixed = (1 - t) * a64 + t * b64
    else:
        omega = math.acos(max(-1.0, min(1.0, cosine)))
        mixed = (math.sin((1 - t) * omega) * a64 + math.sin(t * omega) * b64) / math.sin(omega)
    return mixed.reshape(a.shape).to(a.dtype)


_SIGN = {"majority_sign_method": "total"}
MERGE_METHODS: Registry[MergeMethod] = Registry("merge method", "method")
for _method in (
        Linear("linear", "Weighted average of the models (weights normalised to sum to one)."),
        TaskArithmetic("task-arithmetic", "θ_0 + λ Σ w_i δ_i (Ilharco et al. 2023, arXiv 2212.04089).", {"scale": 1.0}),
        Ties("ties", "Trim each delta to its top-density entries, elect signs, average agreeing entries "
             "(Yadav et al. 2023, arXiv 2306.01708).", {"density": 0.5, "scale": 1.0, **_SIGN}),
        DareLinear("dare-linear", "Drop entries with probability 1 − density, rescale by 1/density, then task "
                   "arithmetic (Yu et al. 2024, arXiv 2311.03099).", {"density": 0.5, "scale": 1.0}),
        DareTies("dare-ties", "DARE's random drop and rescale, then TIES' sign election and disjoint mean.",
                 {"density": 0.5, "scale": 1.0, **_SIGN}),
        MagnitudePrune("magnitude-prune", "Keep each delta's top-density entries by magnitude, then task arithmetic.",
                       {"density": 0.5, "scale": 1.0}),
        Slerp("slerp", "Spherical interpolation between two models' weights at t (t = 0: the first).", {"t": 0.5},
              models=2),
):
    MERGE_METHODS.add(_method.id, _method)


def get_merge_method(method_id: str, where: str | None = None) -> MergeMethod:
    return MERGE_METHODS.get(method_id, where)


def merge_state_dicts(base: dict, tuned: list[dict], method_id: str, weights: list[float] | None = None,
                      parameters: dict | None = None, seed: int = 0) -> dict:
    """Merge state dicts that share ``base``: floating-point tensors through the method, the rest from base.

    Tensor k's random draws (DARE) use seed + k over the sorted names: the same inputs and seed give the
    same merge, whatever else ran before. Deltas are formed one tensor at a time, so the extra memory is
    one tensor's worth, not a copy of every model."""
    from suite.modeling.weights import check_same_architecture, weight_names

    method = get_merge_method(method_id)
    parameters = method.resolve(parameters)
    weights = [1.0] * len(tuned) if weights is None else list(weights)
    if len(weights) != len(tuned) or not tuned:
        raise ConfigError(f"merge: {len(tuned)} models but {len(weights)} weights")
    if not all(isinstance(w, (int, float)) and math.isfinite(w) for w in weights):
        raise ConfigError(f"merge: weights must be finite numbers, got {weights}")
    if method.models is not None and len(tuned) != method.models:
        raise ConfigError(f"merge method {method.id!r} merges exactly {method.models} models, got {len(tuned)}")
    for index, state in enumerate(tuned):
        try:
            check_same_architecture(base, state)
        except ConfigError as exc:
            raise ConfigError(f"merge: model {index}: {exc}") from None
    names = weight_names(base)
    merged = dict(base)
    weight_tensor = torch.tensor(weights, dtype=torch.float32)
    for index, name in enumerate(names):
        base_tensor = base[name].detach().float()
        deltas = [state[name].detach().float() - base_tensor for state in tuned]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + index)
            value = method.merge_tensor(base_tensor, deltas, weight_tensor, parameters)
        merged[name] = value.to(base[name].dtype)
    # a tied weight (one tensor under two names) takes the merged value under every name
    by_pointer = {base[name].data_ptr(): merged[name] for name in names}
    for name, tensor in base.items():
        if tensor.is_floating_point() and name not in names:
            merged[name] = by_pointer.get(tensor.data_ptr(), tensor)
    return merged


def merge_models(base_model, models: list, method_id: str, weights=None, parameters=None, seed: int = 0):
    """A new model: ``base_model``'s architecture with the merged weights of ``models``."""
    from suite.modeling.weights import (
        state_of,  # a peft model counts with its adapter folded in
    )

    merged_state = merge_state_dicts(base_model.state_dict(), [state_of(m) for m in models], method_id,
                                     weights, parameters, seed)
    merged = copy.deepcopy(base_model)
    merged.load_state_dict(merged_state)
    return merged
