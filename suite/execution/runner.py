"""The common runner: expand a config into runs, train each method under identical conditions,
evaluate every model (lm-eval leaderboard + held-out alignment metrics), store everything.

The runner knows methods only through the registry: feedback type, reference need, objective and the
extra inputs it declares. Methods that need more of the runner (composites, staged methods, the online
family, reward models) get a :class:`suite.execution.context.RunContext`, its public interface.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from suite.config.schema import ExperimentConfig
from suite.core.errors import SuiteError, TrainingDiverged
from suite.core.progress import SweepProgress
from suite.core.io import (
    content_hash,
    git_revision,
    package_versions,
    utc_now,
    write_json_atomic,
)
from suite.execution.executors import RunOutcome, default_executor, get_executor
from suite.execution.store import (
    BASE_ROW,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_RUNNING,
    RunStore,
)
from suite.execution.result_checks import check_result, check_weights, input_files_hash  # noqa: F401 (re-exported)
from suite.method.registry import Method, get_method

STATUS_ELSEWHERE = "elsewhere"  # another process on the same results folder holds the run
# Train settings that change how a run executes, never its result: left out of run ids.
EXECUTION_ONLY_TRAIN_KEYS = ("checkpoint_steps", "report_to")
# lm-eval's own output layout (``lm_eval --output_path DIR --log_samples``) inside each run folder.
LM_EVAL_OUTPUT = "lm_eval_output"
# Written once training has finished and the trained model is saved: a rerun goes straight to evaluation.
TRAINED_MARKER = "trained.json"
# lm-eval's request cache (sqlite, one row per answered request): an evaluation killed midway resumes from it.
EVAL_REQUEST_CACHE = "lm_eval_requests"


@dataclass
class PlannedRun:
    run_id: str
    method: Method | None  # None: the untouched base model
    seed: int
    hyperparameters: dict
    definition: dict  # everything that determines the result; its hash is in the run id
    label: str = BASE_ROW  # the row name in reports: the method id, or the config's label for a variant
    dataset: str | dict | None = None  # training data when not the experiment's (a component's own set)
    components: dict = dataclasses.field(default_factory=dict)  # name -> run id, for composite methods
    keep_model: bool = False  # a component: its weights are saved whatever train.save_model says

    @property
    def method_id(self) -> str:
        return self.label

    @property
    def feedback(self) -> str:
        return self.method.feedback if self.method else "pairwise"


def _data_definition(config: ExperimentConfig, feedback: str) -> dict:
    """The data options that shape a run's data: ``list_size`` only matters to listwise runs, so other
    runs' ids do not change with it."""
    data = dataclasses.asdict(config.data)
    if feedback != "listwise":
        data.pop("list_size")
    if not data["validation_fraction"]:  # only when a validation split is carved out, so older ids stay
        data.pop("validation_fraction")
    return data


def eval_definition(config: ExperimentConfig) -> dict:
    """The evaluation settings in a run's identity. eval.backend / eval.judge only when not the default, so
    runs planned before they existed keep their ids. The chat template as what lm-eval will be told: a run
    that applies none — ``off``, or ``auto`` on a spec pinning ``off`` for every task — keeps the old key
    ``apply_chat_template: false`` and so the id it had before ``eval.chat_template`` existed; otherwise the
    setting itself (``auto`` resolves on the tokenizer, recorded in eval_settings with the template's hash)."""
    evaluation = {k: v for k, v in dataclasses.asdict(config.eval).items()
                  if (k, v) not in (("backend", "hf"), ("judge", None), ("subset", None))}
    setting = evaluation.pop("chat_template")
    evaluation.pop("apply_chat_template")
    if setting == "auto" and config.eval.leaderboard:
        from suite.evaluation.leaderboard import load_leaderboard

        spec = load_leaderboard(config.eval.leaderboard)
        if all(spec.template_pin(task) == "off" for task in spec.tasks):
            setting = "off"
    if setting == "off" or not config.eval.leaderboard:
        evaluation["apply_chat_template"] = False
    else:
        evaluation["chat_template"] = setting
    return evaluation


def plan_runs(config: ExperimentConfig) -> list[PlannedRun]:
    """Methods × seeds, plus the base model once; each run id is ``<label>-s<seed>-<hash>``.

    A composite method's components are planned as runs of their own, before it, and shared: the same
    component (same method, overrides, data) named twice — or also listed in ``methods`` — is one run.
    """
    shared = {
        "model": config.model,
        "dataset": config.dataset,
        # content, not just names: editing a spec or a local data file makes new runs
        "inputs_hash": input_files_hash(config.eval.leaderboard, config.dataset),
        "eval": eval_definition(config),
        "max_length": config.train.max_length,
    }
    if config.model_chat_template is not None:  # only when given, so runs planned without one keep their ids
        from suite.modeling.models import chat_template_identity

        shared["chat_template_sha256"] = chat_template_identity(config.model_chat_template)["sha256"]
    runs: dict[str, PlannedRun] = {}
    if config.evaluate_base:
        definition = {"kind": BASE_ROW, **shared, "data": _data_definition(config, "pairwise"), "seed": config.seeds[0]}
        run_id = f"{BASE_ROW}-{content_hash(definition)[:10]}"
        runs[run_id] = PlannedRun(run_id, None, config.seeds[0], {}, definition)
    train = dataclasses.asdict(config.train)
    global_lr = train.pop("learning_rate")
    for key in EXECUTION_ONLY_TRAIN_KEYS:
        train.pop(key)

    def plan(method: Method, overrides: dict, seed: int, label: str, dataset=None, component=False) -> PlannedRun:
        overrides = dict(overrides)
        if global_lr is not None and "learning_rate" not in overrides and "learning_rate" in method.defaults:
            overrides["learning_rate"] = global_lr  # identical conditions: one lr for every method
        hyperparameters = method.hyperparameters(overrides)
        components = {
            name: plan(get_method(part.method), part.overrides, seed, part.method, part.dataset, component=True).run_id
            for name, part in (method.components(hyperparameters) if method.components else {}).items()
        }
        definition = {"kind": "train", **shared, "data": _data_definition(config, method.feedback),
                      "train": train, "method": method.id, "hyperparameters": hyperparameters, "seed": seed}
        if dataset is not None:
            definition.update(train_dataset=dataset, train_inputs_hash=input_files_hash(None, dataset))
        if components:
            definition["components"] = components
        run_id = f"{label}-s{seed}-{content_hash(definition)[:10]}"
        run = runs.setdefault(run_id, PlannedRun(run_id, method, seed, hyperparameters, definition, label, dataset,
                                                 components))
        run.keep_model = run.keep_model or component
        return run

    for choice in config.methods:
        method = get_method(choice.id)
        for seed in config.seeds:
            plan(method, choice.overrides, seed, choice.label or method.id)
    return list(runs.values())


log = logging.getLogger(__name__)


class Runner:
    def __init__(self, config: ExperimentConfig, out_dir: Path):
        self.config = config
        self.store = RunStore(out_dir)
        self._fingerprints: dict[str, str] = {}  # model id -> its weights' fingerprint (see base_fingerprint)
        self._leaderboard = None
        self.data_warnings: list[str] = []  # weak data (duplicates, heavy truncation), found by the preflight
        self.launcher = None  # when set (suite.execution.launch), training runs under it instead of in this process

    # -- checks before anything is recorded ------------------------------------------------------
    def preflight(self, runs: list[PlannedRun]) -> None:
        """Load the data for every feedback type and the leaderboard spec, then check what can be checked
        before training (suite.config.preflight): bad input fails here, before any run."""
        from suite.config.preflight import preflight

        prepared = {}
        for feedback, dataset in sorted({(run.feedback, json.dumps(run.dataset)) for run in runs}):
            data = self.prepare_data(feedback, self.config.seeds[0], json.loads(dataset))
            prepared[(feedback, data.dataset_id)] = data
            if json.loads(dataset) is not None:  # its held-out pairs come from the experiment's data
                data = self.prepare_data("pairwise", self.config.seeds[0])
                prepared.setdefault(("pairwise", data.dataset_id), data)
        if self.config.eval.leaderboard:
            from suite.evaluation import load_leaderboard

            self._leaderboard = load_leaderboard(self.config.eval.leaderboard)
        self.data_warnings = preflight(self.config, [(run.method, run.hyperparameters, run.label) for run in runs],
                                       prepared, self._leaderboard)
        for warning in self.data_warnings:
            log.warning(warning)

    def prepare_data(self, feedback: str, seed: int, dataset=None, train_max: int | None = None):
        """``feedback`` records from ``dataset`` (default: the experiment's) under the config's data options;
        ``data.train_max`` training records, else ``train_max``, else what ``train.max_steps`` consumes."""
        from suite.data import prepare_data

        cfg = self.config
        train_max = cfg.data.train_max or train_max or (
            cfg.train.max_steps * cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps
        )
        return prepare_data(
            cfg.dataset if dataset is None else dataset,
            feedback,
            seed=seed,
            heldout_fraction=cfg.data.heldout_fraction,
            heldout_max=cfg.data.heldout_max,
            train_max=train_max,
            split_seed=cfg.data.split_seed,
            list_size=cfg.data.list_size,
            validation_fraction=cfg.data.validation_fraction,
        )

    # -- one run -----------------------------------------------------------------------------------
    def execute_claimed(self, run: PlannedRun) -> str:
        """Execute ``run`` if this process can claim it: another ``alignsuite run`` on the same folder
        that holds it keeps it ("elsewhere"); one that finished it meanwhile makes it "skipped"."""
        claim = self.store.claim(run.run_id)
        if claim is None:
            log.info(f"{run.run_id}: being run by another process, left to it")
            return STATUS_ELSEWHERE
        try:
            if self.store.is_complete(run.run_id):
                log.info(f"{run.run_id}: completed by another process, skipped")
                return "skipped"
            log.info(f"{run.run_id}: starting")
            return self.execute(run)
        finally:
            claim.release()

    def execute(self, run: PlannedRun) -> str:
        manifest = {
            "run_id": run.run_id,
            "experiment": self.config.name,
            "method": run.method_id,
            "method_id": run.method.id if run.method else BASE_ROW,
            "train_dataset": run.dataset,
            "components": run.components,
            "model": self.config.model,
            "dataset": self.config.dataset,
            "seed": run.seed,
            "hyperparameters": run.hyperparameters,
            "config": self.config.to_dict(),
            "run_definition": run.definition,
            "config_hash": content_hash(run.definition),
            "status": STATUS_RUNNING,
            "error": None,
            "leaderboard": getattr(self._leaderboard, "name", None),
            # harness version, batch size, chat template, few-shot settings, data source: what moves a score
            "eval_settings": self._eval_settings(run),
            "comparable": getattr(self._leaderboard, "comparable", None),
            "versions": package_versions(),
            "git_revision": git_revision(),
            "started_at": utc_now(),
            "ended_at": None,
        }
        if self.data_warnings:
            manifest["data_warnings"] = list(self.data_warnings)
        if self.config.model_chat_template is not None:
            from suite.modeling.models import chat_template_identity

            manifest["chat_template"] = chat_template_identity(self.config.model_chat_template)
        self.store.write_manifest(run.run_id, manifest)
        try:
            metrics, lm_eval_raw = self._train_and_evaluate(run)
            if lm_eval_raw is not None:
                samples = lm_eval_raw.pop("samples", None)
                if samples:  # per-document correctness, for paired tests between runs (suite.analysis.statistics)
                    self.store.write_json(run.run_id, "lm_eval_samples.json", samples)
                self.store.write_json(run.run_id, "lm_eval_results.json", lm_eval_raw)
            check_result(run, metrics, self.config)
            self.store.write_json(run.run_id, "metrics.json", metrics)
            if metrics.get("eval_settings"):  # auto resolved on the tokenizer: the manifest says what ran
                manifest["eval_settings"] = metrics["eval_settings"]
            if metrics.get("chat_template"):
                # the user's template file (path) and what the tokenizer held when it ran (hash, training)
                manifest["chat_template"] = {**manifest.get("chat_template", {}), **metrics["chat_template"]}
            write_model_card(self.store.run_dir(run.run_id), manifest, metrics)
            manifest.update(status=STATUS_COMPLETE, ended_at=utc_now(), checksums=self.store.checksums(run.run_id))
        except BaseException as exc:  # noqa: BLE001 — every failure is recorded, then re-raised if fatal
            manifest.update(status=STATUS_FAILED, error=f"{type(exc).__name__}: {exc}", ended_at=utc_now())
            if isinstance(exc, KeyboardInterrupt):
                manifest["error"] = "interrupted (Ctrl-C): rerun the same command to resume"
            if isinstance(exc, TrainingDiverged):
                manifest["failure"] = {"kind": "non-finite", "key": exc.key, "step": exc.step,
                                       "last_checkpoint": exc.last_checkpoint}
            (self.store.run_dir(run.run_id) / "error.log").write_text(traceback.format_exc())
            self.store.write_manifest(run.run_id, manifest)
            if not isinstance(exc, Exception):
                raise
            log.error(f"{run.run_id}: FAILED — {manifest['error']}")
            return STATUS_FAILED
        self._drop_resume_state(run)
        self.store.write_manifest(run.run_id, manifest)
        return STATUS_COMPLETE

    def _drop_resume_state(self, run: PlannedRun) -> None:
        """A complete run needs no checkpoints, and keeps its trained model only if asked to."""
        import shutil

        run_dir = self.store.run_dir(run.run_id)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        shutil.rmtree(run_dir / EVAL_REQUEST_CACHE, ignore_errors=True)  # its answers are in the logged samples
        (run_dir / TRAINED_MARKER).unlink(missing_ok=True)
        if not (self.config.train.save_model or run.keep_model):
            shutil.rmtree(run_dir / "model", ignore_errors=True)

    def _eval_settings(self, run: PlannedRun) -> dict | None:
        """The evaluation settings this run will use, recorded in its manifest before it starts."""
        if self._leaderboard is None:
            return None
        from suite.evaluation.harness import eval_settings

        cfg = self.config.eval
        return eval_settings(self._leaderboard, limit=cfg.limit, batch_size=cfg.batch_size, seed=run.seed,
                             chat_template=cfg.chat_template, backend=cfg.backend, subset=cfg.subset)

    def _train_and_evaluate(self, run: PlannedRun) -> tuple[dict, dict | None]:
        from transformers import set_seed

        from suite.evaluation.alignment import alignment_metrics
        from suite.modeling.models import cache_root, load_model
        from suite.modeling.reference import ReferenceCache

        cfg, run_dir = self.config, self.store.run_dir(run.run_id)
        timings: dict[str, float] = {}
        set_seed(run.seed)
        started = time.perf_counter()
        loaded = load_model(cfg.model, dtype=cfg.train.dtype, chat_template=cfg.model_chat_template)
        model, tokenizer = loaded.model, loaded.tokenizer
        cache = ReferenceCache(cache_root() / "reference_logps", self.base_fingerprint(model))
        data = self.prepare_data(run.feedback, run.seed, run.dataset)
        # held-out pairs always come from the experiment's data, so every row is measured on the same pairs
        heldout = data if run.dataset is None else self.prepare_data("pairwise", run.seed)
        pairs = heldout.heldout_pairs[: cfg.eval.alignment_pairs]
        # Warm the cache with the base model's held-out log-probs before training changes the weights.
        alignment_kwargs = dict(
            max_length=cfg.train.max_length, generation_prompts=0, max_new_tokens=cfg.eval.max_new_tokens,
            batch_size=cfg.train.reference_batch_size,
        )
        alignment_metrics(model, tokenizer, pairs, cache, model, is_reference=True, **alignment_kwargs)
        validation_pairs = data.validation_pairs[: cfg.eval.alignment_pairs] or data.validation_pairs
        if validation_pairs:
            alignment_metrics(model, tokenizer, validation_pairs, cache, model, is_reference=True, **alignment_kwargs)
        timings["load_s"] = time.perf_counter() - started

        train_summary = None
        if run.method is not None:
            model, train_summary = self._trained_model(run, model, tokenizer, data.train, timings)
        if model is None:  # a run that trains no policy (a reward model): its own held-out metrics, no lm-eval
            train_summary, execution = split_execution_facts(train_summary)
            return {"eval": {}, "eval_average": None, "alignment": train_summary.pop("alignment", {}),
                    "train": train_summary, "execution": execution, "data": data.stats, "timings": timings}, None
        model.eval()

        started = time.perf_counter()
        alignment = alignment_metrics(
            model, tokenizer, pairs, cache, None, is_reference=run.method is None,
            **{**alignment_kwargs, "generation_prompts": cfg.eval.generation_prompts}, keep_pairs=True,
        )
        timings["alignment_s"] = time.perf_counter() - started
        judged = None
        if cfg.eval.judge:  # answers judged against reference answers: win rate, LC win rate
            from suite.evaluation.judged import judged_evaluation

            started = time.perf_counter()
            judged = judged_evaluation(model, tokenizer, cfg.eval.judge, run_dir, run.method_id, run.seed)
            timings["judged_s"] = time.perf_counter() - started

        train_summary, execution = split_execution_facts(train_summary or {})
        alignment_pairs = alignment.pop("per_pair", None)  # per-pair values: bootstrap intervals, paired tests
        metrics = {"eval": {}, "eval_average": None, "alignment": alignment, "alignment_pairs": alignment_pairs,
                   "train": train_summary, "chat_template": chat_template_record(tokenizer, run.method is not None),
                   "execution": execution,
                   "data": data.stats}
        if judged is not None:
            metrics["judged"] = judged
        if validation_pairs:  # a sweep selects on these, never on the held-out test pairs
            validation = alignment_metrics(model, tokenizer, validation_pairs, cache, None,
                                           is_reference=run.method is None, **alignment_kwargs)
            metrics["validation"] = {**validation, "pairs": len(validation_pairs)}
        raw = None
        if self._leaderboard is not None:
            from suite.evaluation import evaluate_leaderboard

            started = time.perf_counter()
            result = evaluate_leaderboard(
                model, tokenizer, self._leaderboard, limit=cfg.eval.limit, batch_size=cfg.eval.batch_size,
                workdir=run_dir / "lm_eval_tasks", chat_template=cfg.eval.chat_template, seed=run.seed, subset=cfg.eval.subset,
                backend=cfg.eval.backend, output_path=_fresh(run_dir / LM_EVAL_OUTPUT), model_name=run.run_id,
                request_cache=run_dir / EVAL_REQUEST_CACHE,
            )
            timings["lm_eval_s"] = time.perf_counter() - started
            metrics.update(eval=result.scores, eval_average=result.average,
                           eval_deviations=result.deviations, eval_settings=result.settings,
                           eval_headline=result.headlines, eval_stderr=result.stderr, eval_missing=result.missing,
                           eval_partial_average=result.partial_average)
            raw = {"results": result.raw, "deviations": result.deviations, "settings": result.settings,
                   "samples": result.samples}
        metrics["timings"] = timings
        log.info(f"{run.run_id}: done in {sum(timings.values()):.0f}s — average {metrics['eval_average']}, "
             f"held-out reward accuracy {alignment.get('reward_accuracy')}")
        return metrics, raw

    def _trained_model(self, run: PlannedRun, model, tokenizer, records: list, timings: dict):
        """(trained model, train summary) for ``run``: trained now — resuming from the run's checkpoints
        if an earlier attempt was killed mid-training — or, if an earlier attempt finished training and
        was killed during evaluation, its saved model, so the rerun only evaluates."""
        from suite.modeling.models import load_trained

        run_dir = self.store.run_dir(run.run_id)
        marker = run_dir / TRAINED_MARKER
        if marker.is_file() and (run_dir / "model").is_dir():
            saved = json.loads(marker.read_text())
            log.info(f"{run.run_id}: training finished in an earlier attempt; evaluating its saved model")
            if not saved.get("policy", True):  # its model/ is no policy (a reward model): nothing to evaluate
                timings.update(saved["timings"])
                return None, saved["summary"]
            started = time.perf_counter()
            model = load_trained(run_dir / "model", self.config.model, self.config.train.dtype)
            timings.update(saved["timings"], reload_trained_s=time.perf_counter() - started)
            return model, saved["summary"]
        from suite.execution.context import RunContext

        # answers cached for an earlier attempt's model are not this one's (training again may differ)
        _fresh(run_dir / EVAL_REQUEST_CACHE)
        context = RunContext(self, run, model, tokenizer, timings)
        if run.method.compose is not None:
            model, summary = run.method.compose(context, run.hyperparameters)  # cheap to redo from its saved components
            check_weights(model, run.run_id)
            return model, summary
        model, summary = self.train_method(context, records)
        if model is not None:
            check_weights(model, run.run_id)
        write_json_atomic(marker, {"summary": summary, "timings": dict(timings), "policy": model is not None})
        return model, summary

    def train_method(self, context, records: list):
        """Train ``context.run``'s method on ``records`` from ``context.base_model``: through the method's
        own ``train_loop`` when it has one, else one pass of the offline trainer. The result is saved as
        the run's ``model/`` when the context saves (always for a run: a rerun after a kill during
        evaluation starts from it; removed later if not kept). Returns (model with plain weights — or None
        for a run that trains no policy —, train summary)."""
        run = context.run
        if run.method.train_loop is not None:
            return run.method.train_loop(context, run.hyperparameters, records, save=context.save)
        model, summary = context.train_offline(context.base_model, records)
        context.save_model(model)
        if self.config.train.lora is not None:
            model = model.merge_and_unload()  # plain weights for evaluation
        return model, summary

    def base_fingerprint(self, model) -> str:
        """The fingerprint of the experiment's model, ``model`` freshly loaded (computed once per model id)."""
        from suite.modeling.models import model_fingerprint

        if self.config.model not in self._fingerprints:
            self._fingerprints[self.config.model] = model_fingerprint(model)
        return self._fingerprints[self.config.model]

    def train_offline(self, run: PlannedRun, model, tokenizer, records: list, timings: dict, *,
                      reference_fingerprint: str | None = None, stage: int | None = None, stages: int | None = None,
                      max_steps: int | None = None):
        """Train ``run.method`` with the offline trainer on ``records`` from ``model``, which is also the
        reference (its weights' fingerprint is ``reference_fingerprint``, default the base model's).
        ``stage`` (1-based, of ``stages``) makes it one stage of a staged method, ``max_steps`` its steps
        (default ``train.max_steps``). Returns (trained model, with its LoRA adapter when LoRA is used;
        train summary). Nothing is saved but checkpoints."""
        from suite.modeling.models import add_lora, cache_root
        from suite.modeling.reference import ReferenceCache
        from suite.training.trackers import tracker_run_name
        from suite.training.trainer import (
            TrainSettings,
            attach_reference_logps,
            build_examples,
            train,
        )

        cfg, method, run_dir = self.config, run.method, self.store.run_dir(run.run_id)
        started = time.perf_counter()
        examples = build_examples(records, tokenizer, cfg.train.max_length, "mismatched_pairs" in method.extra_inputs)
        cache = None
        if method.needs_reference:
            cache = ReferenceCache(cache_root() / "reference_logps", reference_fingerprint or self.base_fingerprint(model))
            attach_reference_logps(examples, cache, model, tokenizer.pad_token_id, cfg.train.reference_batch_size)
        timings["reference_s"] = timings.get("reference_s", 0.0) + time.perf_counter() - started
        where = f" (stage {stage}/{stages})" if stage else ""
        cache_note = f" (reference cache: {cache.hits} hits, {cache.computed} computed)" if cache else ""
        log.info(f"{run.run_id}: training {method.id}{where} on {len(examples)} {run.feedback} examples{cache_note}")
        if stage and stage > 1:  # a later stage starts from the same RNG state whether or not earlier ones resumed
            from transformers import set_seed

            set_seed(run.seed + stage - 1)
        if cfg.train.lora is not None:
            model = add_lora(model, cfg.train.lora)
        settings = TrainSettings(
            max_steps=max_steps or cfg.train.max_steps,
            per_device_batch_size=cfg.train.per_device_batch_size,
            gradient_accumulation_steps=cfg.train.gradient_accumulation_steps,
            learning_rate=float(run.hyperparameters["learning_rate"]),
            lr_scheduler=cfg.train.lr_scheduler,
            warmup_ratio=cfg.train.warmup_ratio,
            weight_decay=cfg.train.weight_decay,
            max_grad_norm=cfg.train.max_grad_norm,
            seed=run.seed,
            bf16=cfg.train.bf16,
            checkpoint_steps=cfg.train.checkpoint_steps,
            report_to=tuple(cfg.train.report_to or ()),
            run_name=tracker_run_name(run.run_id, method.id, run.label, stage),
        )
        started = time.perf_counter()
        train_function = self.launcher or train  # the launcher (suite.execution.launch) trains in other processes
        summary = train_function(model, tokenizer, method, run.hyperparameters, examples, settings, run_dir,
                                 stage=stage)
        if cache is not None:
            summary["reference_cache"] = {"hits": cache.hits, "computed": cache.computed}
        timings["train_s"] = timings.get("train_s", 0.0) + time.perf_counter() - started
        return model, summary


def _fresh(folder: Path) -> Path:
    """``folder`` emptied: an evaluation interrupted earlier left files a reader would take for this one's."""
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    return folder


def write_model_card(run_dir: Path, manifest: dict, metrics: dict) -> None:
    """The run's saved ``model/`` gets its model card (README.md: metadata, method, data, evaluation)."""
    if (run_dir / "model").is_dir():
        from suite.modeling.model_card import run_card, write_card

        write_card(run_dir / "model", run_card(manifest, metrics))


# Facts about how training went that a rerun may see differently (cache hits, a resume), kept apart
# from what it measured so that the same config and seed give the same ``train`` metrics.
EXECUTION_FACTS = ("reference_cache", "resumed_from_step")


def chat_template_record(tokenizer, trained: bool) -> dict:
    """Which chat template the run used: training formats every example with the tokenizer's template
    (suite.modeling.sequences) and evaluation applies the same tokenizer's where eval_settings says."""
    from suite.evaluation.harness import chat_template_hash

    digest = chat_template_hash(tokenizer)
    return {"sha256": digest, "training": trained and digest is not None}


def split_execution_facts(summary: dict) -> tuple[dict, dict]:
    """(train summary without execution facts, those facts); a staged run's per-stage facts as lists."""
    summary = dict(summary)
    execution = {key: summary.pop(key) for key in EXECUTION_FACTS if key in summary}
    if "stages" in summary:
        stages = [split_execution_facts(stage) for stage in summary["stages"]]
        summary["stages"] = [stage for stage, _ in stages]
        execution["stages"] = [facts for _, facts in stages]
    return summary, execution


class SweepOutcomes(dict):
    """The outcomes an executor records, each new one also reported as sweep progress (runs done / total,
    ETA): every executor records a finished run here, whichever process ran it."""

    def __init__(self, outcomes: dict, progress):
        super().__init__(outcomes)
        self._known, self._outcomes, self._progress = set(outcomes), outcomes, progress

    def __setitem__(self, run_id, outcome) -> None:
        super().__setitem__(run_id, outcome)
        self._outcomes[run_id] = outcome
        if run_id not in self._known:
            self._known.add(run_id)
            self._progress.run_finished(run_id, outcome.status)


def default_jobs() -> int:
    """Runs at once when not told: one per GPU (each worker gets its own), else one."""
    import torch

    return max(1, torch.cuda.device_count())


def run_experiment(config: ExperimentConfig, out_dir: Path, jobs: int = 1, executor: str | None = None,
                   launcher=None, executor_options: dict | None = None) -> list[RunOutcome]:
    """Plan, check, then execute every run not already complete on an executor (``suite.execution.executors``:
    ``local`` in this process, ``processes`` — ``jobs`` at a time —, ``ray``); a composite waits for its
    components. ``launcher`` (``suite.execution.launch``) runs each training under ``accelerate launch``."""
    runner = Runner(config, Path(out_dir))
    runner.launcher = launcher
    runs = plan_runs(config)
    runner.preflight(runs)
    outcomes: dict[str, RunOutcome] = {}
    todo = []
    for run in runs:
        if runner.store.is_complete(run.run_id):
            log.info(f"{run.run_id}: already complete, skipped")
            outcomes[run.run_id] = RunOutcome(run.run_id, run.method_id, "skipped")
        else:
            todo.append(run)
    chosen = get_executor(executor or default_executor(jobs), jobs=jobs, **(executor_options or {}))
    chosen.execute(runner, todo, SweepOutcomes(outcomes, SweepProgress(len(todo), log)))
    return [outcomes[run.run_id] for run in runs]


def require_all_complete(outcomes: list[RunOutcome]) -> None:
    failed = [o.run_id for o in outcomes if o.status == STATUS_FAILED]
    if failed:
        raise SuiteError(f"{len(failed)} run(s) failed: {', '.join(failed)} (see runs/<id>/manifest.json and error.log)")
