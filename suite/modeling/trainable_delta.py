"""The trainable delta δ = θ − θ_0 during training, for penalties on it (PAFT's L1-sparsified SFT).

With a LoRA adapter δ is the adapter's product B·A·scaling per adapted weight (peft's own
``get_delta_weight``, differentiable); with full fine-tuning it is each trainable parameter minus a
frozen snapshot taken when training starts. PAFT (arXiv 2406.17923) penalises the SFT delta with L1 so
that it merges well with a naturally sparse preference delta.
"""

from __future__ import annotations

import torch


class TrainableDelta:
    """Tracks δ for every trainable weight of ``model``; ``l1()`` is differentiable."""

    def __init__(self, model: torch.nn.Module, relative_epsilon: float = 1e-3):
        from peft.tuners.lora import LoraLayer

        self.lora_layers = [
            (name, module) for name, module in model.named_modules()
            if isinstance(module, LoraLayer) and hasattr(module, "get_delta_weight")
        ]
        if self.lora_layers:
            bases = {name: module.get_base_layer().weight for name, module in self.lora_layers}
            self.snapshot = {}
        else:
            trainable = {name: p for name, p in model.named_parameters() if p.requires_grad}
            # the starting weights, kept once: full fine-tuning has no other record of θ_0
            self.snapshot = {name: p.detach().clone() for name, p in trainable.items()}
            self.parameters = trainable
            bases = self.snapshot
        # "zero" means small relative to the weight's own scale, as the sparsity analysis measures it
        self.thresholds = {name: relative_epsilon * w.detach().abs().mean().item() for name, w in bases.items()}

    def deltas(self):
        """(name, δ) for every tracked weight; δ carries gradient to the trainable parameters."""
        if self.lora_layers:
            for name, module in self.lora_layers:
                for adapter in module.active_adapters:
                    if adapter in module.lora_A:
                        yield name, module.get_delta_weight(adapter)
        else:
            for name, parameter in self.parameters.items():
                yield name, parameter - self.snapshot[name]

    def l1(self) -> torch.Tensor:
        """Σ |δ| over every tracked weight (the L1 penalty's norm)."""
        total = None
        for _, delta in self.deltas():
            term = delta.abs().sum()
            total = term if total is None else total + term
        return total if total is not None else torch.zeros(())

    @torch.no_grad()
    def sparsity(self) -> dict:
        """{"sparsity": fraction of δ entries with |δ| ≤ ε (ε = relative_epsilon × the weight's mean |θ_0|),
        "hoyer": Hoyer's scale-free sparsity of the whole delta} in one pass over the deltas."""
        from suite.modeling.weights import hoyer_sparsity

        small = count = 0
        l1 = squares = 0.0
        for name, delta in self.deltas():
            magnitude = delta.abs()
            small += int((magnitude <= self.thresholds[name]).sum())
            count += delta.numel()
            l1 += magnitude.sum().item()
            squares += float((delta.double() ** 2).sum())
        return {"sparsity": small / max(1, count), "hoyer": hoyer_sparsity(count, l1, squares ** 0.5)}
