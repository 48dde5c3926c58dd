"""What a composite method (PAFT, SFT→DPO) can do with its component runs.

A composite names its components (other registered methods, possibly on other data); the runner plans
and runs them as ordinary runs first. The composite's ``compose`` then gets a :class:`ComposeContext`:
load a component's trained model, measure its delta from the base, merge components with a registered
merge method, or train further from a component — and returns the model the runner evaluates.
"""

from __future__ import annotations

import dataclasses
import time

import torch

from suite.core.errors import SuiteError
from suite.modeling.models import load_trained


class ComposeContext:
    """The runner's services for one composite run (see module docstring)."""

    def __init__(self, runner, run, base_model, tokenizer, timings: dict):
        self.runner, self.run, self.tokenizer, self.timings = runner, run, tokenizer, timings
        self.base_model = base_model
        self.config = runner.config
        self.summary: dict = {"components": dict(run.components)}

    # -- components ---------------------------------------------------------------------------------
    def component_dir(self, name: str):
        run_id = self.run.components.get(name)
        if run_id is None:
            raise SuiteError(f"{self.run.run_id}: no component {name!r}; components: {sorted(self.run.components)}")
        if not self.runner.store.is_complete(run_id):
            raise SuiteError(f"{self.run.run_id}: component {name!r} ({run_id}) is not complete — it failed or did "
                             "not run; its manifest says why")
        model_dir = self.runner.store.run_dir(run_id) / "model"
        if not model_dir.is_dir():
            raise SuiteError(f"{self.run.run_id}: component {name!r} ({run_id}) has no saved model in {model_dir}")
        return model_dir

    def load_component(self, name: str):
        """The component's trained model (LoRA merged), loaded fresh."""
        started = time.perf_counter()
        model = load_trained(self.component_dir(name), self.config.model, self.config.train.dtype)
        self.timings["load_components_s"] = self.timings.get("load_components_s", 0.0) + time.perf_counter() - started
        return model

    def base_state(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().clone() for k, v in self.base_model.state_dict().items()}

    # -- operations -----------------------------------------------------------------------------------
    def delta_sparsity(self, name: str, model=None) -> dict:
        """The component's delta from the base and its sparsity (``suite.delta``), recorded in the summary."""
        from suite.merging.delta import delta_report

        model = model if model is not None else self.load_component(name)
        report = delta_report(self.base_model, model)
        self.summary.setdefault("delta", {})[name] = report
        return report

    def merge(self, names: list[str], merge_method: str, weights: list[float], parameters: dict, seed: int):
        """θ_0 + merge(δ_1 … δ_n): the components' deltas from the base, merged by a registered merge method."""
        from suite.merging.methods import merge_models

        if len(weights) != len(names):
            raise SuiteError(f"{self.run.run_id}: {len(names)} components to merge but {len(weights)} weights")
        started = time.perf_counter()
        models = [self.load_component(name) for name in names]
        for name, model in zip(names, models):
            self.delta_sparsity(name, model)
        merged = merge_models(self.base_model, models, merge_method, weights=weights, parameters=parameters, seed=seed)
        self.timings["merge_s"] = time.perf_counter() - started
        self.summary["merge"] = {"method": merge_method, "components": names, "weights": list(weights),
                                 "parameters": dict(parameters), "seed": seed}
        self._write_merge_recipe(names, merge_method, weights, parameters, seed)
        return merged

    def _write_merge_recipe(self, names, merge_method, weights, parameters, seed) -> None:
        """The merge as an ``alignsuite merge`` recipe in the run folder: the merged weights (a full model)
        are rebuilt on demand from the components' small adapters instead of being stored per run."""
        import yaml

        run_dir = self.runner.store.run_dir(self.run.run_id)
        recipe = {
            "base": self.config.model,
            "models": [{"model": str(self.component_dir(name).parent.resolve()), "weight": float(weight)}
                       for name, weight in zip(names, weights)],
            "method": merge_method,
            "parameters": dict(parameters),
            "seed": int(seed),
            "out": str((run_dir / "merged_model").resolve()),
        }
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "merge_recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))

    def train(self, method_id: str, start_model, overrides: dict | None = None):
        """Train a registered method further from ``start_model`` — which is also its reference — on the
        experiment's data (SFT→DPO: DPO from the SFT model). Returns (model, train summary)."""
        from suite.method.registry import get_method
        from suite.modeling.models import model_fingerprint

        method = get_method(method_id)
        overrides = dict(overrides or {})
        if self.config.train.learning_rate is not None and "learning_rate" not in overrides:
            overrides["learning_rate"] = self.config.train.learning_rate  # the same lr as every other run
        step = dataclasses.replace(self.run, method=method, hyperparameters=method.hyperparameters(overrides),
                                   dataset=None, components={})
        records = self.runner._prepare(method.feedback, self.run.seed).train
        model, summary = self.runner._train(step, start_model, self.tokenizer, records, self.timings,
                                            reference_fingerprint=model_fingerprint(start_model), save=False)
        self.summary.setdefault("trained", {})[method_id] = summary
        return model, summary
