"""The common runner: expand a config into runs, train each method under identical conditions,
evaluate every model (lm-eval leaderboard + held-out alignment metrics), store everything.

The runner knows methods only through the registry: feedback type, reference need, objective.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from suite.config import ExperimentConfig, content_hash
from suite.errors import SuiteError, TrainingDiverged
from suite.registry import Method, get_method
from suite.store import (STATUS_COMPLETE, STATUS_FAILED, STATUS_RUNNING, RunStore, git_revision, package_versions,
                         utc_now, write_json_atomic)

BASE_ROW = "base"
STATUS_ELSEWHERE = "elsewhere"  # another process on the same results folder holds the run
# Train settings that change how a run executes, never its result: left out of run ids.
EXECUTION_ONLY_TRAIN_KEYS = ("checkpoint_steps",)
# Written once training has finished and the trained model is saved: a rerun goes straight to evaluation.
TRAINED_MARKER = "trained.json"


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


def input_files_hash(leaderboard: str | None, dataset) -> str:
    """Hash of the files a run reads besides the code: the leaderboard spec and a local dataset file."""
    import hashlib

    digest = hashlib.sha256()
    paths = []
    if leaderboard:
        from suite.evaluation.leaderboard import LEADERBOARD_DIR

        spec = Path(leaderboard)
        paths.append(spec if spec.is_file() else LEADERBOARD_DIR / f"{leaderboard}.yaml")
    if isinstance(dataset, dict):
        paths.append(Path(str(dataset.get("path"))))
    for path in paths:
        digest.update(path.read_bytes() if path.is_file() else str(path).encode())
    return digest.hexdigest()


def _data_definition(config: ExperimentConfig, feedback: str) -> dict:
    """The data options that shape a run's data: ``list_size`` only matters to listwise runs, so other
    runs' ids do not change with it."""
    data = dataclasses.asdict(config.data)
    if feedback != "listwise":
        data.pop("list_size")
    return data


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
        # eval.backend / eval.judge only when not the default, so runs planned before they existed keep their ids
        "eval": {k: v for k, v in dataclasses.asdict(config.eval).items()
                 if (k, v) not in (("backend", "hf"), ("judge", None))},
        "max_length": config.train.max_length,
    }
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


def _log(message: str) -> None:
    print(f"[alignsuite {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Runner:
    def __init__(self, config: ExperimentConfig, out_dir: Path):
        self.config = config
        self.store = RunStore(out_dir)
        self._fingerprints: dict[str, str] = {}
        self._leaderboard = None
        self.launcher = None  # when set (suite.launch), training runs under it instead of in this process

    # -- checks before anything is recorded ------------------------------------------------------
    def preflight(self, runs: list[PlannedRun]) -> None:
        """Load the data for every feedback type and the leaderboard spec: bad input fails here, before any run."""
        for feedback, dataset in sorted({(run.feedback, json.dumps(run.dataset)) for run in runs}):
            self._prepare(feedback, self.config.seeds[0], json.loads(dataset))
            if json.loads(dataset) is not None:
                self._prepare("pairwise", self.config.seeds[0])  # its held-out pairs come from the experiment's data
        if self.config.eval.leaderboard:
            from suite.evaluation import load_leaderboard

            self._leaderboard = load_leaderboard(self.config.eval.leaderboard)

    def _prepare(self, feedback: str, seed: int, dataset=None):
        """``feedback`` records from ``dataset`` (default: the experiment's) under the config's data options."""
        from suite.data import prepare_data

        cfg = self.config
        train_max = cfg.data.train_max or (
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
        )

    # -- one run -----------------------------------------------------------------------------------
    def execute_claimed(self, run: PlannedRun) -> str:
        """Execute ``run`` if this process can claim it: another ``alignsuite run`` on the same folder
        that holds it keeps it ("elsewhere"); one that finished it meanwhile makes it "skipped"."""
        claim = self.store.claim(run.run_id)
        if claim is None:
            _log(f"{run.run_id}: being run by another process, left to it")
            return STATUS_ELSEWHERE
        try:
            if self.store.is_complete(run.run_id):
                _log(f"{run.run_id}: completed by another process, skipped")
                return "skipped"
            _log(f"{run.run_id}: starting")
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
        self.store.write_manifest(run.run_id, manifest)
        try:
            metrics, lm_eval_raw = self._train_and_evaluate(run)
            if lm_eval_raw is not None:
                samples = lm_eval_raw.pop("samples", None)
                if samples:  # per-document correctness, for paired tests between runs (suite.statistics)
                    self.store.write_json(run.run_id, "lm_eval_samples.json", samples)
                self.store.write_json(run.run_id, "lm_eval_results.json", lm_eval_raw)
            self.store.write_json(run.run_id, "metrics.json", metrics)
            manifest.update(status=STATUS_COMPLETE, ended_at=utc_now())
        except BaseException as exc:  # noqa: BLE001 — every failure is recorded, then re-raised if fatal
            manifest.update(status=STATUS_FAILED, error=f"{type(exc).__name__}: {exc}", ended_at=utc_now())
            if isinstance(exc, TrainingDiverged):
                manifest["failure"] = {"kind": "non-finite", "key": exc.key, "step": exc.step,
                                       "last_checkpoint": exc.last_checkpoint}
            (self.store.run_dir(run.run_id) / "error.log").write_text(traceback.format_exc())
            self.store.write_manifest(run.run_id, manifest)
            if not isinstance(exc, Exception):
                raise
            _log(f"{run.run_id}: FAILED — {manifest['error']}")
            return STATUS_FAILED
        self._drop_resume_state(run)
        self.store.write_manifest(run.run_id, manifest)
        return STATUS_COMPLETE

    def _drop_resume_state(self, run: PlannedRun) -> None:
        """A complete run needs no checkpoints, and keeps its trained model only if asked to."""
        import shutil

        run_dir = self.store.run_dir(run.run_id)
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        (run_dir / TRAINED_MARKER).unlink(missing_ok=True)
        if not (self.config.train.save_model or run.keep_model):
            shutil.rmtree(run_dir / "model", ignore_errors=True)

    def _eval_settings(self, run: PlannedRun) -> dict | None:
        """The evaluation settings this run will use, recorded in its manifest before it starts."""
        if self._leaderboard is None:
            return None
        from suite.evaluation.harness import eval_settings

        cfg = self.config.eval
        return eval_settings(self._leaderboard, limit=cfg.limit, batch_size=cfg.batch_size,
                             apply_chat_template=cfg.apply_chat_template, seed=run.seed)

    def _train_and_evaluate(self, run: PlannedRun) -> tuple[dict, dict | None]:
        from transformers import set_seed

        from suite.alignment import alignment_metrics
        from suite.models import cache_root, load_model, model_fingerprint
        from suite.reference import ReferenceCache

        cfg, run_dir = self.config, self.store.run_dir(run.run_id)
        timings: dict[str, float] = {}
        set_seed(run.seed)
        started = time.perf_counter()
        loaded = load_model(cfg.model, dtype=cfg.train.dtype)
        model, tokenizer = loaded.model, loaded.tokenizer
        if cfg.model not in self._fingerprints:
            self._fingerprints[cfg.model] = model_fingerprint(model)
        cache = ReferenceCache(cache_root() / "reference_logps", self._fingerprints[cfg.model])
        data = self._prepare(run.feedback, run.seed, run.dataset)
        # held-out pairs always come from the experiment's data, so every row is measured on the same pairs
        heldout = data if run.dataset is None else self._prepare("pairwise", run.seed)
        pairs = heldout.heldout_pairs[: cfg.eval.alignment_pairs]
        # Warm the cache with the base model's held-out log-probs before training changes the weights.
        alignment_kwargs = dict(
            max_length=cfg.train.max_length, generation_prompts=0, max_new_tokens=cfg.eval.max_new_tokens,
            batch_size=cfg.train.reference_batch_size,
        )
        alignment_metrics(model, tokenizer, pairs, cache, model, is_reference=True, **alignment_kwargs)
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
                   "train": train_summary,
                   "execution": execution,
                   "data": data.stats}
        if judged is not None:
            metrics["judged"] = judged
        raw = None
        if self._leaderboard is not None:
            from suite.evaluation import evaluate_leaderboard

            started = time.perf_counter()
            result = evaluate_leaderboard(
                model, tokenizer, self._leaderboard, limit=cfg.eval.limit, batch_size=cfg.eval.batch_size,
                workdir=run_dir / "lm_eval_tasks", apply_chat_template=cfg.eval.apply_chat_template, seed=run.seed,
                backend=cfg.eval.backend,
            )
            timings["lm_eval_s"] = time.perf_counter() - started
            metrics.update(eval=result.scores, eval_average=result.average,
                           eval_deviations=result.deviations, eval_settings=result.settings,
                           eval_headline=result.headlines, eval_stderr=result.stderr, eval_missing=result.missing,
                           eval_partial_average=result.partial_average)
            raw = {"results": result.raw, "deviations": result.deviations, "settings": result.settings,
                   "samples": result.samples}
        metrics["timings"] = timings
        _log(f"{run.run_id}: done in {sum(timings.values()):.0f}s — average {metrics['eval_average']}, "
             f"held-out reward accuracy {alignment.get('reward_accuracy')}")
        return metrics, raw

    def _trained_model(self, run: PlannedRun, model, tokenizer, records: list, timings: dict):
        """(trained model, train summary) for ``run``: trained now — resuming from the run's checkpoints
        if an earlier attempt was killed mid-training — or, if an earlier attempt finished training and
        was killed during evaluation, its saved model, so the rerun only evaluates."""
        from suite.compose import load_trained

        run_dir = self.store.run_dir(run.run_id)
        marker = run_dir / TRAINED_MARKER
        if marker.is_file() and (run_dir / "model").is_dir():
            saved = json.loads(marker.read_text())
            _log(f"{run.run_id}: training finished in an earlier attempt; evaluating its saved model")
            started = time.perf_counter()
            model = load_trained(run_dir / "model", self.config.model, self.config.train.dtype)
            timings.update(saved["timings"], reload_trained_s=time.perf_counter() - started)
            return model, saved["summary"]
        if run.method.compose is not None:
            from suite.compose import ComposeContext

            context = ComposeContext(self, run, model, tokenizer, timings)
            return run.method.compose(context, run.hyperparameters)  # cheap to redo from its saved components
        model, summary = self._train(run, model, tokenizer, records, timings)
        write_json_atomic(marker, {"summary": summary, "timings": dict(timings)})
        return model, summary

    def _train(self, run: PlannedRun, model, tokenizer, records: list, timings: dict,
               reference_fingerprint: str | None = None, save: bool = True):
        """Train ``run.method`` on ``records`` from ``model`` (which is also the reference: its weights'
        fingerprint is ``reference_fingerprint``, default the base model's); returns (merged model, summary).

        A staged method trains on consecutive chunks of the data, one per stage, each stage starting
        from — and using as its reference — the model the previous stage produced (the base for stage 1).
        """
        if run.method.train_loop is not None:  # reward models and the online family run their own loop
            from suite.compose import ComposeContext

            return run.method.train_loop(ComposeContext(self, run, model, tokenizer, timings), run.hyperparameters,
                                         records, save=save)
        from suite.models import add_lora, cache_root, model_fingerprint
        from suite.reference import ReferenceCache
        from suite.training import TrainSettings, attach_reference_logps, build_examples, train

        cfg, method, run_dir = self.config, run.method, self.store.run_dir(run.run_id)
        stages = int(run.hyperparameters["stages"]) if method.staged else 1
        if stages < 1 or stages > cfg.train.max_steps or stages > len(records):
            raise SuiteError(f"{method.id}: stages={stages} must be between 1 and min(max_steps, training records)")
        summaries = []
        for stage in range(stages):
            chunk = records[stage * len(records) // stages : (stage + 1) * len(records) // stages]
            steps = cfg.train.max_steps // stages + (1 if stage < cfg.train.max_steps % stages else 0)
            started = time.perf_counter()
            examples = build_examples(chunk, tokenizer, cfg.train.max_length, "mismatched_pairs" in method.extra_inputs)
            cache = None
            if method.needs_reference:
                fingerprint = (reference_fingerprint or self._fingerprints[cfg.model]) if stage == 0 \
                    else model_fingerprint(model)
                cache = ReferenceCache(cache_root() / "reference_logps", fingerprint)
                attach_reference_logps(examples, cache, model, tokenizer.pad_token_id, cfg.train.reference_batch_size)
            timings["reference_s"] = timings.get("reference_s", 0.0) + time.perf_counter() - started
            where = f" (stage {stage + 1}/{stages})" if stages > 1 else ""
            cache_note = f" (reference cache: {cache.hits} hits, {cache.computed} computed)" if cache else ""
            _log(f"{run.run_id}: training {method.id}{where} on {len(examples)} {run.feedback} examples{cache_note}")
            if stage > 0:  # a later stage starts from the same RNG state whether or not earlier ones resumed
                from transformers import set_seed

                set_seed(run.seed + stage)
            if cfg.train.lora is not None:
                model = add_lora(model, cfg.train.lora)
            settings = TrainSettings(
                max_steps=steps,
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
            )
            started = time.perf_counter()
            train_function = self.launcher or train  # the launcher (suite.launch) trains in other processes
            summary = train_function(model, tokenizer, method, run.hyperparameters, examples, settings, run_dir,
                                     stage=stage + 1 if stages > 1 else None)
            if cache is not None:
                summary["reference_cache"] = {"hits": cache.hits, "computed": cache.computed}
            timings["train_s"] = timings.get("train_s", 0.0) + time.perf_counter() - started
            summaries.append(summary)
            if cfg.train.lora is not None and stage + 1 < stages:
                model = model.merge_and_unload()  # the next stage's base and reference
        if cfg.train.lora is not None and stages > 1:
            model = model.merge_and_unload()  # a staged run's result is the merged model, not its last adapter
        if save:  # always: a rerun after a kill during evaluation starts from it (removed later if not kept)
            model.save_pretrained(run_dir / "model", safe_serialization=True)
            tokenizer.save_pretrained(run_dir / "model")
        if cfg.train.lora is not None and stages == 1:
            model = model.merge_and_unload()  # plain weights for evaluation
        return model, _combine_stage_summaries(summaries)


# Facts about how training went that a rerun may see differently (cache hits, a resume), kept apart
# from what it measured so that the same config and seed give the same ``train`` metrics.
EXECUTION_FACTS = ("reference_cache", "resumed_from_step")


def split_execution_facts(summary: dict) -> tuple[dict, dict]:
    """(train summary without execution facts, those facts); a staged run's per-stage facts as lists."""
    summary = dict(summary)
    execution = {key: summary.pop(key) for key in EXECUTION_FACTS if key in summary}
    if "stages" in summary:
        stages = [split_execution_facts(stage) for stage in summary["stages"]]
        summary["stages"] = [stage for stage, _ in stages]
        execution["stages"] = [facts for _, facts in stages]
    return summary, execution


def _combine_stage_summaries(summaries: list[dict]) -> dict:
    """One train summary for the run; a staged run also keeps its per-stage summaries."""
    if len(summaries) == 1:
        return summaries[0]
    combined = dict(summaries[-1])
    combined.update(
        steps=sum(s["steps"] for s in summaries),
        runtime_s=sum(s["runtime_s"] or 0.0 for s in summaries),
        examples=sum(s["examples"] for s in summaries),
        mean_loss=sum(s["mean_loss"] * s["steps"] for s in summaries) / max(1, sum(s["steps"] for s in summaries)),
        stages=summaries,
    )
    return combined


@dataclass
class RunOutcome:
    run_id: str
    method: str
    status: str  # complete | failed | skipped | elsewhere


def default_jobs() -> int:
    """Runs at once when not told: one per GPU (each worker gets its own), else one."""
    import torch

    return max(1, torch.cuda.device_count())


def run_experiment(config: ExperimentConfig, out_dir: Path, jobs: int = 1, executor: str | None = None,
                   launcher=None, executor_options: dict | None = None) -> list[RunOutcome]:
    """Plan, check, then execute every run not already complete on an executor (``suite.executors``:
    ``local`` in this process, ``processes`` — ``jobs`` at a time —, ``ray``); a composite waits for its
    components. ``launcher`` (``suite.launch``) runs each training under ``accelerate launch``."""
    from suite.executors import default_executor, get_executor

    runner = Runner(config, Path(out_dir))
    runner.launcher = launcher
    runs = plan_runs(config)
    runner.preflight(runs)
    outcomes: dict[str, RunOutcome] = {}
    todo = []
    for run in runs:
        if runner.store.is_complete(run.run_id):
            _log(f"{run.run_id}: already complete, skipped")
            outcomes[run.run_id] = RunOutcome(run.run_id, run.method_id, "skipped")
        else:
            todo.append(run)
    chosen = get_executor(executor or default_executor(jobs), jobs=jobs, **(executor_options or {}))
    chosen.execute(runner, todo, outcomes)
    return [outcomes[run.run_id] for run in runs]


def _execute_in_parallel(config, out_dir: Path, todo: list[PlannedRun], jobs: int, outcomes: dict,
                         launcher=None) -> None:
    """Independent runs in ``jobs`` worker processes that share nothing but the files on disk."""
    import multiprocessing
    import os
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    import torch

    context = multiprocessing.get_context("spawn")  # a clean interpreter each: no forked torch state
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    devices = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    slots = context.Queue()
    for slot in range(jobs):
        slots.put(slot)
    pending, running = list(todo), {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_claim_device,
                             initargs=(slots, devices)) as pool:
        while pending or running:
            finished = set(outcomes)
            ready = [run for run in pending if all(c in finished for c in run.components.values())]
            for run in ready:
                pending.remove(run)
                running[pool.submit(_execute_one, config, str(out_dir), run, launcher)] = run
            if not running:  # a component can only be missing if planning went wrong
                raise SuiteError(f"runs waiting on components that never ran: {[r.run_id for r in pending]}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                run = running.pop(future)
                outcomes[run.run_id] = RunOutcome(run.run_id, run.method_id, future.result())


def _claim_device(slots, devices: list[str]) -> None:
    """Worker start: take a slot; with GPUs, see only that slot's one (set before the worker starts CUDA)."""
    import os

    slot = slots.get()
    if devices:
        os.environ["CUDA_VISIBLE_DEVICES"] = devices[slot % len(devices)]


def _execute_one(config: ExperimentConfig, out_dir: str, run: PlannedRun, launcher=None) -> str:
    runner = Runner(config, Path(out_dir))
    runner.launcher = launcher
    runner.preflight([run])
    return runner.execute_claimed(run)


def require_all_complete(outcomes: list[RunOutcome]) -> None:
    failed = [o.run_id for o in outcomes if o.status == STATUS_FAILED]
    if failed:
        raise SuiteError(f"{len(failed)} run(s) failed: {', '.join(failed)} (see runs/<id>/manifest.json and error.log)")
