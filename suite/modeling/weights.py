"""Weights as plain tensors: state dicts, module and layer names, same-architecture checks, sparsity.

Shared by the trainable-delta penalty (training), delta analysis and every merge method (merging).
"""

from __future__ import annotations

import copy
import math
import re

import torch

from suite.core.errors import ConfigError

_LAYER = re.compile(r"layers\.(\d+)\.")


def module_type(name: str) -> str:
    """The kind of weight a parameter name denotes: 'q_proj', 'gate_proj', 'embed_tokens', 'norm', …"""
    parts = [p for p in name.split(".") if p not in ("weight", "bias")]
    last = parts[-1] if parts else name
    return "norm" if "norm" in last else last


def layer_index(name: str) -> int | None:
    match = _LAYER.search(name)
    return int(match.group(1)) if match else None


def state_of(model_or_state) -> dict[str, torch.Tensor]:
    """A plain state dict. A peft model (LoRA merged into it or not) gives its base model's weight names
    with the adapter folded in (θ + B·A·scaling): peft merges a copy, the caller's model is left as it is."""
    if isinstance(model_or_state, dict):
        return model_or_state
    from peft import PeftModel

    if isinstance(model_or_state, PeftModel):
        # merge_and_unload skips adapters already merged, so merged and unmerged models give the same weights
        return copy.deepcopy(model_or_state).merge_and_unload().state_dict()
    return model_or_state.state_dict()


def weight_names(state: dict[str, torch.Tensor]) -> list[str]:
    """The floating-point weights of a state dict, sorted; a weight stored under two names (tied
    input/output embeddings) is listed once, under its first name."""
    names, seen = [], set()
    for name in sorted(state):
        tensor = state[name]
        if tensor.is_floating_point() and tensor.data_ptr() not in seen:
            seen.add(tensor.data_ptr())
            names.append(name)
    return names


def check_same_architecture(base_state: dict, tuned_state: dict) -> None:
    """ConfigError naming the first weight that is in only one model, or whose shapes differ."""
    missing = sorted(set(base_state) ^ set(tuned_state))
    if missing:
        raise ConfigError(f"models differ in architecture: weight {missing[0]!r} is in only one of them")
    for name in sorted(base_state):
        if base_state[name].shape != tuned_state[name].shape:
            raise ConfigError(f"models differ in architecture: {name!r} has shape {tuple(base_state[name].shape)} "
                              f"vs {tuple(tuned_state[name].shape)}")


def hoyer_sparsity(entries: int, l1: float, l2: float) -> float:
    """Hoyer's scale-free sparsity of a vector, (√n − ‖δ‖₁/‖δ‖₂) / (√n − 1): 0 when every entry has the
    same magnitude, 1 when one entry carries everything (Hoyer 2004, JMLR 5). Unlike a threshold it does
    not depend on how large the delta is, so short and long trainings compare."""
    if entries <= 1 or l2 == 0:
        return 1.0
    root = math.sqrt(entries)
    return (root - l1 / l2) / (root - 1)




def first_non_finite(state: dict) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or None: a model with one
    is no result (a failed merge or run), however it was made."""
    for name, tensor in state.items():
        if hasattr(tensor, "is_floating_point") and tensor.is_floating_point() and not bool(tensor.isfinite().all()):
            return name
    return None
