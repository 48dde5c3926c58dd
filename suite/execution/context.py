"""The public run context: what a method that needs the runner can ask of it, for one run.

The runner hands a :class:`RunContext` to a method's ``compose`` (composite methods: PAFT, SFT→DPO) and
``train_loop`` (methods with a loop of their own: sDPO's stages, the online family, reward models). It is
the whole interface between such methods and the engine; nothing else of the runner is theirs to call.

* the run: ``run`` (its id, method, seed, hyper-parameters, components), ``config``, ``run_dir``,
  ``base_model`` (the model training starts from, also the reference), ``tokenizer``, ``timings``
  (seconds per phase, stored in metrics), ``summary`` (what a composite records in its train summary);
* data: :meth:`prepare_data` (records of a feedback type under the experiment's data options),
  :meth:`heldout_pairs` (the held-out pairs every row is measured on);
* components: :meth:`component_dir`, :meth:`load_component`, :meth:`base_state`, :meth:`delta_sparsity`,
  :meth:`merge` (θ_0 + merge of the components' deltas);
* training: :meth:`train_offline` (one pass of the offline trainer on given records — a stage),
  :meth:`train` (a registered method further from a model, as its own entry would train), :meth:`fingerprint`
  (a model's weights' id, naming its reference log-prob cache), :meth:`save_model` (the run's ``model/``).
"""

from __future__ import annotations

import dataclasses
import time

import torch

from suite.core.errors import SuiteError
from suite.modeling.models import load_trained


class RunContext:
    """The runner's services for one run (see the module docstring)."""

    def __init__(self, runner, run, base_model, tokenizer, timings: dict, reference_fingerprint: str | None = None,
                 save: bool = True):
        self._runner = runner
        self.run, self.tokenizer, self.timings = run, tokenizer, timings
        self.base_model = base_model
        self.config = runner.config
        # The reference log-prob cache of ``base_model`` (None: the experiment's model, untouched).
        self.reference_fingerprint = reference_fingerprint
        self.save = save  # whether the run's result is saved as its model/ (not for a step inside a composite)
        self.summary: dict = {"components": dict(run.components)}
        self._frozen_base = None  # the "base" judge's copy of base_model, made on first use (judge)

    @property
    def run_dir(self):
        return self._runner.store.run_dir(self.run.run_id)

    # -- data ---------------------------------------------------------------------------------------------
    def prepare_data(self, feedback: str, dataset=None, train_max: int | None = None):
        """``feedback`` records of ``dataset`` (None: the experiment's) for this run's seed, under the
        experiment's data options (``train_max``: how many training records, unless ``data.train_max`` says)."""
        return self._runner.prepare_data(feedback, self.run.seed, dataset, train_max=train_max)

    def heldout_pairs(self) -> list:
        """The experiment's held-out preference pairs (``eval.alignment_pairs`` of them): every row's."""
        return self.prepare_data("pairwise").heldout_pairs[: self.config.eval.alignment_pairs]

    # -- components ---------------------------------------------------------------------------------
    def component_dir(self, name: str):
        run_id = self.run.components.get(name)
        if run_id is None:
            raise SuiteError(f"{self.run.run_id}: no component {name!r}; components: {sorted(self.run.components)}")
        if not self._runner.store.is_complete(run_id):
            raise SuiteError(f"{self.run.run_id}: component {name!r} ({run_id}) is not complete — it failed or did "
                             "not run; its manifest says why")
        model_dir = self._runner.store.run_dir(run_id) / "model"
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

        run_dir = self.run_dir
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

    # -- judges -------------------------------------------------------------------------------------------
    def judge(self, spec, policy=None, reward_model_component: str = "reward_model"):
        """A judge for training-time labels (``suite.evaluation.judges``): ``"policy"`` — ``policy`` itself
        prompted as a judge; ``"base"`` — the experiment's model as it was before training (a frozen copy,
        made once); ``"reward-model"`` — this run's reward-model component; or a judge spec mapping."""
        from suite.evaluation.judges import build_judge
        from suite.evaluation.judges.llm import LocalLLMJudge
        from suite.evaluation.judges.reward import RewardModelJudge

        if spec == "policy":
            if policy is None:
                raise SuiteError(f"{self.run.run_id}: the policy judges itself, but no policy was given")
            return LocalLLMJudge(policy, self.tokenizer, "the policy itself (self-rewarding)")
        if spec == "base":
            if self._frozen_base is None:  # training changes base_model's weights in place (LoRA merges)
                import copy

                self._frozen_base = copy.deepcopy(self.base_model).eval().requires_grad_(False)
            return LocalLLMJudge(self._frozen_base, self.tokenizer, f"{self.config.model} (the starting model, frozen)")
        if spec == "reward-model":
            from suite.training.reward_model import load_reward_model

            folder = self.component_dir(reward_model_component)
            reward_model, tokenizer = load_reward_model(folder, self.config.train.dtype)
            return RewardModelJudge(reward_model, tokenizer, str(folder), self.config.train.max_length,
                                    self.config.train.reference_batch_size)
        return build_judge(spec)

    # -- training ---------------------------------------------------------------------------------------
    def fingerprint(self, model) -> str:
        """The id of ``model``'s weights: names the reference log-prob cache of a model used as reference."""
        from suite.modeling.models import model_fingerprint

        return model_fingerprint(model)

    def train_offline(self, start_model, records: list, *, stage: int | None = None, stages: int | None = None,
                      max_steps: int | None = None, reference_fingerprint: str | None = None):
        """Train this run's method with the offline trainer on ``records`` from ``start_model``, which is
        also the reference (its weights' ``reference_fingerprint``, default this context's). With ``stage``
        (1-based, of ``stages``) it is one stage of a staged method: its own checkpoints and log records.
        Returns (trained model — with its LoRA adapter when LoRA is used —, train summary); nothing is saved."""
        return self._runner.train_offline(
            self.run, start_model, self.tokenizer, records, self.timings,
            reference_fingerprint=reference_fingerprint or self.reference_fingerprint,
            stage=stage, stages=stages, max_steps=max_steps)

    def save_model(self, model) -> None:
        """Save ``model`` (and the tokenizer) as the run's ``model/``, when this context saves."""
        if self.save:
            model.save_pretrained(self.run_dir / "model", safe_serialization=True)
            self.tokenizer.save_pretrained(self.run_dir / "model")

    def train(self, method_id: str, start_model, overrides: dict | None = None, *, records: list | None = None,
              stage: int | None = None, stages: int | None = None):
        """Train a registered method further from ``start_model`` — which is also its reference — on the
        experiment's data (SFT→DPO: DPO from the SFT model), as its own entry would train, or on ``records``
        (e.g. pairs built during the run). With ``stage`` (of ``stages``) an offline method trains as one
        stage of this run: its own checkpoints and log records. Returns (model with plain weights, train
        summary); nothing is saved."""
        from suite.method.registry import get_method

        method = get_method(method_id)
        overrides = dict(overrides or {})
        if self.config.train.learning_rate is not None and "learning_rate" not in overrides:
            overrides["learning_rate"] = self.config.train.learning_rate  # the same lr as every other run
        step = dataclasses.replace(self.run, method=method, hyperparameters=method.hyperparameters(overrides),
                                   dataset=None, components={})
        records = records if records is not None else self.prepare_data(method.feedback).train
        context = RunContext(self._runner, step, start_model, self.tokenizer, self.timings,
                             reference_fingerprint=self.fingerprint(start_model), save=False)
        if stage is not None and method.train_loop is None:
            model, summary = context.train_offline(start_model, records, stage=stage, stages=stages)
            if self.config.train.lora is not None:
                model = model.merge_and_unload()  # plain weights: the next stage adds its own adapter
        else:
            model, summary = self._runner.train_method(context, records)
        key = method_id if stage is None else f"{method_id} (stage {stage})"
        self.summary.setdefault("trained", {})[key] = summary
        return model, summary
