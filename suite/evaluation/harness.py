"""Evaluate an in-memory model on a leaderboard spec with lm-evaluation-harness's own built-in tasks.

For each leaf task we write a small task YAML that ``include``s the built-in one — prompts, filters and
metrics unchanged — and sets the spec's shots. With ``ALIGNSUITE_DATA`` set it also swaps the data
source for the mirror files (``hub/<dataset_path>/<dataset_name or _default>/<split>.jsonl``), derived
from the task's own config, and records every deviation this forces (a missing train split means
few-shot examples come from validation, a missing eval split means the task cannot run).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import yaml

from suite.core.errors import ConfigError
from suite.data.loaders import mirror_root
from suite.evaluation.leaderboard import LeaderboardSpec, TaskSpec

PREFIX = "alignsuite_"
LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow"}


@dataclass
class EvalResult:
    scores: dict  # {task_id: {metric: value in [0, 1]}} (+ "<metric>_normalised" where the spec normalises)
    average: float | None  # percent; None unless every task ran in full
    raw: dict
    deviations: list
    settings: dict
    headlines: dict = field(default_factory=dict)  # {task_id: the task's leaderboard number, percent}
    stderr: dict = field(default_factory=dict)  # {task_id or "average": standard error, percent (None: unknown)}
    missing: dict = field(default_factory=dict)  # {task_id: [leaf tasks that could not run]}
    partial_average: float | None = None  # mean over the tasks that have a score, when some are missing
    samples: dict = field(default_factory=dict)  # {task_id: {leaf: compact per-document results}}


@dataclass
class LeaderboardScore:
    """A leaderboard spec's numbers from lm-eval results (see ``score_leaderboard``)."""

    scores: dict
    headlines: dict
    stderr: dict
    average: float | None
    partial_average: float | None
    missing: dict


@functools.lru_cache(maxsize=4)
def task_index(include_path: str | None = None):
    """lm-eval's TaskManager (with ``include_path``'s extra tasks): built once per process, shared by the
    preflight's task check and the evaluation (indexing every task takes seconds)."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path) if include_path else TaskManager()


def leaf_tasks(index, name: str) -> list[str]:
    """An lm-eval task name, or a group expanded (recursively) into its leaf task names."""
    entry = index.task_index.get(name)
    if entry is None:
        raise ConfigError(f"lm-eval has no task or group {name!r}")
    if str(entry.kind).endswith("TAG"):  # e.g. mmlu_stem_tasks: MMLU's groups list their subjects by tag
        return [leaf for member in sorted(entry.tags) for leaf in leaf_tasks(index, member)]
    children = entry.cfg.get("task") if str(entry.kind).endswith("GROUP") else None
    if not children:
        return [name]
    leaves = []
    for child in children:
        if not isinstance(child, str):
            raise ConfigError(f"lm-eval group {name!r} defines an inline task; list its leaf tasks in the spec instead")
        leaves += leaf_tasks(index, child)
    return leaves


def mirror_overrides(cfg: dict, num_fewshot: int, root: Path) -> tuple[dict | None, list[str]]:
    """Task-YAML keys that point a built-in task at the mirror, and the deviations they imply.

    Returns (None, [reason]) when the split the task evaluates is not mirrored.
    """
    if (cfg.get("dataset_kwargs") or {}).get("data_files") or cfg.get("dataset_path") in LOCAL_BUILDERS:
        return {}, []  # a task on local files already: nothing to swap
    folder = root / "hub" / str(cfg.get("dataset_path")) / (cfg.get("dataset_name") or "_default")
    split_keys = ("training_split", "validation_split", "test_split", "fewshot_split")
    wanted = {cfg.get(k) for k in split_keys} - {None}
    files = {split: str(folder / f"{split}.jsonl") for split in wanted if (folder / f"{split}.jsonl").is_file()}
    eval_split = cfg.get("test_split") or cfg.get("validation_split")
    if eval_split not in files:
        return None, [f"split {eval_split!r} of {cfg.get('dataset_path')} is not in the mirror ({folder}); task not run"]
    overrides = {"dataset_path": "json", "dataset_name": None, "dataset_kwargs": {"data_files": files}}
    deviations = []
    for key in ("training_split", "validation_split"):
        if cfg.get(key) and cfg[key] not in files:
            overrides[key] = None
    fewshot_source = cfg.get("fewshot_split") or cfg.get("training_split") or cfg.get("validation_split")
    if num_fewshot > 0 and fewshot_source not in files:
        replacement = cfg.get("validation_split") if cfg.get("validation_split") in files else eval_split
        overrides["fewshot_split"] = replacement
        if replacement == eval_split and not cfg.get("test_split"):
            # lm-eval drops the evaluated document from its own few-shot context only when the few-shot
            # split is the test split, so name the eval split as test split.
            overrides["test_split"] = eval_split
        deviations.append(f"few-shot examples drawn from {replacement!r}: split {fewshot_source!r} is not mirrored")
    return overrides, deviations


def write_task_yamls(spec: LeaderboardSpec, index, workdir: Path, root: Path | None):
    """One overlay YAML per leaf task; returns ({task_id: [(leaf, overlay name)]}, deviations)."""
    workdir.mkdir(parents=True, exist_ok=True)
    plan, deviations = {}, []
    for task in spec.tasks:
        plan[task.id] = []
        for name in task.lm_eval:
            for leaf in leaf_tasks(index, name):
                entry = index.task_index[leaf]
                overlay = {"include": str(entry.yaml_path), "task": PREFIX + leaf, "num_fewshot": task.num_fewshot}
                if root is not None:
                    swap, notes = mirror_overrides(entry.cfg, task.num_fewshot, root)
                    deviations += [f"{task.id}/{leaf}: {n}" for n in notes]
                    if swap is None:
                        continue
                    overlay.update(swap)
                overlay.update(task.overrides)
                (workdir / f"{PREFIX}{leaf}.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
                plan[task.id].append((leaf, PREFIX + leaf))
    return plan, deviations


def _metric(results: dict, overlay: str, metric: str, filter_name: str, task: TaskSpec):
    values = results.get(overlay, {})
    key = f"{metric},{filter_name}"
    if key not in values:
        raise ConfigError(f"leaderboard task {task.id}: lm-eval reported no {key!r} for {overlay} "
                          f"(available: {sorted(k for k in values if ',' in k)})")
    return float(values[key])


def normalise(value: float, lower: float) -> float:
    """The Open LLM Leaderboard v2 rescaling of a score above chance: max(0, (x − lower)/(1 − lower))."""
    return max(0.0, (value - lower) / (1.0 - lower))


def headline(task: TaskSpec, scores: dict) -> float | None:
    """A task's leaderboard number as a fraction: the mean of its normalised metrics where the spec
    normalises (IFEval: prompt- and instruction-level strict accuracy), else of its metrics."""
    keys = [f"{m}_normalised" for m in task.metrics] if task.lower is not None else task.metrics
    values = [scores.get(key) for key in keys]
    return None if not values or any(v is None for v in values) else statistics.fmean(values)


def sample_values(samples: dict | None, key: str) -> list[float] | None:
    """One metric's per-document values from a compact sample table, lists flattened (IFEval's
    instruction-level accuracy is one list per prompt, scored over all instructions)."""
    if not samples or key not in samples:
        return None
    flat = []
    for value in samples[key]:
        flat.extend(value if isinstance(value, list) else [value])
    return [float(v) for v in flat]


def _leaf_stderr(values: dict, samples: dict | None, metric: str, filter_name: str) -> float | None:
    """Standard error of one leaf task's metric: sample std (n − 1) / √n over its documents, as lm-eval's
    ``mean_stderr``; lm-eval's own value when no per-document results are kept; None when neither."""
    per_doc = sample_values(samples, f"{metric},{filter_name}")
    if per_doc is not None and len(per_doc) > 1:
        return statistics.stdev(per_doc) / math.sqrt(len(per_doc))
    reported = values.get(f"{metric}_stderr,{filter_name}")
    return float(reported) if isinstance(reported, (int, float)) and not isinstance(reported, bool) else None


def _leaf_size(values: dict, samples: dict | None, key: str, task: TaskSpec) -> int:
    if isinstance(values.get("sample_len"), int):
        return values["sample_len"]
    if samples and "doc_id" in samples:
        return len(samples["doc_id"])
    raise ConfigError(f"leaderboard task {task.id}: scored whole, but lm-eval reported no document count for {key}")


def _combine(values: list[float], errors: list, weights: list[float] | None) -> tuple[float, float | None]:
    """Mean (weighted, when weights are given) and its standard error, leaves taken as independent."""
    weights = weights or [1.0] * len(values)
    total = sum(weights)
    mean = sum(w * v for w, v in zip(weights, values)) / total
    if any(e is None for e in errors):
        return mean, None
    return mean, math.sqrt(sum((w * e) ** 2 for w, e in zip(weights, errors))) / total


def score_leaderboard(spec: LeaderboardSpec, results: dict, plan: dict, missing: dict | None = None,
                      samples: dict | None = None) -> LeaderboardScore:
    """A spec's scores from lm-eval's per-task ``results`` (pure: tested on hand-made result dicts).

    ``plan`` maps each task id to its leaf tasks that ran, as (leaf, key in ``results``); ``missing``
    maps task ids to leaf tasks that could not run; ``samples`` holds compact per-document results by
    results key (for standard errors). A subtask-aggregated task is the unweighted mean of its leaves,
    each normalised first; a task scored whole weights its leaves by document count and is normalised
    once. Standard errors treat leaves and tasks as independent and ignore the clamp at 0; a headline
    of several metrics (IFEval) gets their mean error, the bound for fully correlated metrics. The
    average is set only when no task misses anything; ``partial_average`` covers the tasks that ran.
    """
    missing = {task_id: list(leaves) for task_id, leaves in (missing or {}).items() if leaves}
    samples = samples or {}
    scores, headlines, stderr = {}, {}, {}
    for task in spec.tasks:
        leaves = plan.get(task.id) or []
        if not leaves:
            missing.setdefault(task.id, [])
            continue
        task_scores, errors = {}, {}
        for metric in task.metrics:
            values, leaf_errors, weights = [], [], None
            for _, key in leaves:
                values.append(_metric(results, key, metric, task.filter, task))
                leaf_errors.append(_leaf_stderr(results.get(key, {}), samples.get(key), metric, task.filter))
            if task.aggregate == "whole":
                weights = [_leaf_size(results.get(key, {}), samples.get(key), key, task) for _, key in leaves]
            task_scores[metric], error = _combine(values, leaf_errors, weights)
            if task.lower is None:
                errors[metric] = error
                continue
            if task.aggregate == "whole":
                lower = float(task.lower)
                normed = normalise(task_scores[metric], lower)
                errors[metric] = None if error is None else error / (1.0 - lower)
            else:
                lowers = [task.lower_for(leaf) or 0.0 for leaf, _ in leaves]
                normed, errors[metric] = _combine(
                    [normalise(v, lo) for v, lo in zip(values, lowers)],
                    [None if e is None else e / (1.0 - lo) for e, lo in zip(leaf_errors, lowers)], None)
            task_scores[f"{metric}_normalised"] = normed
        scores[task.id] = task_scores
        headlines[task.id] = 100 * headline(task, task_scores)
        known = [errors[m] for m in task.metrics]
        stderr[task.id] = None if any(e is None for e in known) else 100 * statistics.fmean(known)
    average = partial = None
    if headlines and not missing:
        average = statistics.fmean(headlines.values())
        task_errors = [stderr[t] for t in headlines]
        stderr["average"] = None if any(e is None for e in task_errors) else \
            math.sqrt(sum(e * e for e in task_errors)) / len(task_errors)
    elif headlines:
        partial = statistics.fmean(headlines.values())
    return LeaderboardScore(scores, headlines, stderr, average, partial, missing)


SUBSET_RULE = ("per leaf task, the documents at sorted(random.Random(f'alignsuite-subset:{leaf}:{seed}')"
               ".sample(range(n), min(subset, n))) of its n evaluation documents (all when n <= subset)")


def subset_for(subset, spec: LeaderboardSpec, task_id: str) -> int | None:
    """The subset size of one task: ``subset`` itself when it is one count, else its entry for ``task_id``
    (None: every document). A mapping must name every task of the spec, and nothing else."""
    if not isinstance(subset, dict):
        return subset
    ids = [task.id for task in spec.tasks]
    unknown = sorted(set(subset) - set(ids))
    if unknown:
        raise ConfigError(f"eval.subset.{unknown[0]}: not a task of leaderboard {spec.name} (its tasks: {', '.join(ids)})")
    absent = [task_id for task_id in ids if task_id not in subset]
    if absent:
        raise ConfigError(f"eval.subset: gives no count for task {absent[0]} of leaderboard {spec.name}; name every "
                          f"task (null: all its documents), or give one integer")
    return subset[task_id]


def subset_indices(leaf: str, n: int, subset: int, seed: int) -> list[int]:
    """The seeded document subset of one leaf task (``SUBSET_RULE``): the same documents for every model
    evaluated with the same seed, so paired comparisons stay paired."""
    import random

    return sorted(random.Random(f"alignsuite-subset:{leaf}:{seed}").sample(range(n), min(subset, n)))


def document_count(name: str, overlays) -> int:
    """Evaluation documents of the (overlay) task ``name`` as lm-eval sees them — after the task's own
    ``process_docs`` filter (MATH Lvl 5 keeps the level-5 problems of its files), so a seeded subset only
    draws indices lm-eval can serve."""
    from lm_eval.tasks import get_task_dict

    tasks = get_task_dict([name], overlays)
    task = tasks.get(name) or next(iter(tasks.values()))
    docs = task.eval_docs
    if docs is None:
        raise ConfigError(f"eval.subset: task {name} has no evaluation split to draw a subset from")
    return len(docs)


def first_request(logged: list[dict]) -> str | None:
    """The context text of the first logged document's first request (lm-eval's ``arguments``)."""
    first = min(logged, key=lambda row: row.get("doc_id", 0))
    arguments = first.get("arguments")
    while isinstance(arguments, (dict, list, tuple)) and arguments:
        arguments = next(iter(arguments.values())) if isinstance(arguments, dict) else arguments[0]
    return arguments if isinstance(arguments, str) else None


def compact_samples(logged: list[dict]) -> dict:
    """lm-eval's logged samples of one task as columns: ``doc_id`` and one list per ``metric,filter``,
    in document order — what paired tests need, without prompts and responses."""
    rows: dict = {}
    for example in logged:
        row = rows.setdefault(example["doc_id"], {})
        for metric in example.get("metrics", []):
            value = example.get(metric)
            if isinstance(value, bool):
                value = int(value)
            elif isinstance(value, (list, tuple)):
                value = [int(v) if isinstance(v, bool) else v for v in value]
                if not all(isinstance(v, (int, float)) for v in value):
                    continue
            elif not isinstance(value, (int, float)):
                continue
            row[f"{metric},{example['filter']}"] = value
    doc_ids = sorted(rows)
    columns = sorted({key for row in rows.values() for key in row})
    table = {"doc_id": doc_ids}
    for column in columns:
        if all(column in rows[d] for d in doc_ids):
            table[column] = [rows[d][column] for d in doc_ids]
    return table


CHAT_TEMPLATE_SETTINGS = ("auto", "on", "off")


def chat_template_text(tokenizer) -> str | None:
    """The tokenizer's chat template as text (a tokenizer may carry several, by name: kept as JSON)."""
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return None
    return template if isinstance(template, str) else json.dumps(template, sort_keys=True)


def chat_template_hash(tokenizer) -> str | None:
    """sha256 of the chat template text: which template a run trained and evaluated with."""
    text = chat_template_text(tokenizer)
    return None if text is None else hashlib.sha256(text.encode()).hexdigest()


def resolve_chat_template(setting: str, spec: LeaderboardSpec, has_template: bool) -> dict[str, bool]:
    """Per task id, whether lm-eval applies the chat template: ``on``/``off`` as said (``on`` needs a
    template); ``auto`` honours the spec's (or the task's) pin, else applies the template when the
    tokenizer has one — as the v2 leaderboard did for chat models, while v1 applied none."""
    if setting not in CHAT_TEMPLATE_SETTINGS:
        raise ConfigError(f"eval.chat_template: expected one of {', '.join(CHAT_TEMPLATE_SETTINGS)}, got {setting!r}")
    if setting == "on" and not has_template:
        raise ConfigError("eval.chat_template: on, but the model's tokenizer has no chat template (use auto or off)")
    if setting != "auto":
        return {task.id: setting == "on" for task in spec.tasks}
    return {task.id: has_template and (spec.template_pin(task) or "on") == "on" for task in spec.tasks}


def _one_or_each(values: dict):
    """A single value when every task has it, else the mapping (so a mixed spec is visible)."""
    distinct = set(values.values())
    return next(iter(distinct)) if len(distinct) == 1 else dict(values)


def eval_settings(spec: LeaderboardSpec, *, limit: int | None, batch_size: int, seed: int,
                  chat_template: str = "off", templates: dict | None = None, template_sha256: str | None = None,
                  backend: str = "hf", subset: int | dict | None = None) -> dict:
    """Everything besides the model that moves a leaderboard number, as every run records it.

    ``chat_template`` is the config's setting; ``templates`` its resolution per task (None before the
    model is loaded: ``auto`` is then recorded as not yet resolved unless the spec pins every task)."""
    root = mirror_root()
    if templates is None and chat_template != "auto":
        templates = {task.id: chat_template == "on" for task in spec.tasks}
    if templates is None and all(spec.template_pin(task) == "off" for task in spec.tasks):
        templates = {task.id: False for task in spec.tasks}
    applied = "auto (resolved at evaluation)" if templates is None else _one_or_each(templates)
    multiturn = "auto (resolved at evaluation)" if templates is None else _one_or_each(
        {task.id: bool(templates[task.id] and task.num_fewshot > 0) for task in spec.tasks})
    return {
        "leaderboard": spec.name,
        "comparable": spec.comparable,
        "tasks": {t.id: {"lm_eval": t.lm_eval, "num_fewshot": t.num_fewshot, "metric": t.metrics,
                         "filter": t.filter, "limit": None if subset else limit if limit is not None else t.limit,
                         **({"subset": subset_for(subset, spec, t.id)} if isinstance(subset, dict) else {}),
                         "aggregate": t.aggregate, "lower": t.lower} for t in spec.tasks},
        "batch_size": batch_size,
        "chat_template": chat_template,
        "apply_chat_template": applied,
        # few-shot examples as a multi-turn conversation wherever the template is applied to a few-shot task
        "fewshot_as_multiturn": multiturn,
        "chat_template_sha256": template_sha256,
        "fewshot_random_seed": seed,
        "lm_eval_version": metadata.version("lm_eval"),
        "data_source": f"mirror {root}" if root else "hub",
        "seed": seed,
        **backend_identity(backend),
        **({"subset": subset, "subset_rule": SUBSET_RULE} if subset else {}),
    }


def _hf_backend(model, tokenizer, batch_size: int, workdir: Path):
    """Our lm-eval model (``suite.evaluation.backend``): lm-eval's HF backend with each distinct context
    run once and greedy generation that drops finished sequences; the same answers, faster."""
    from suite.evaluation.backend import SharedContextLM

    return SharedContextLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def _hf_plain_backend(model, tokenizer, batch_size: int, workdir: Path):
    """lm-eval's own HF backend, unchanged (every request its own padded row)."""
    from lm_eval.models.huggingface import HFLM

    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def _vllm_backend(model, tokenizer, batch_size: int, workdir: Path):
    """lm-eval's vLLM model on this model's weights: vLLM loads from a folder, so they are saved first."""
    from lm_eval.models.vllm_causallms import VLLM

    folder = Path(workdir) / "vllm_model"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return VLLM(pretrained=str(folder), tokenizer=str(folder), batch_size=batch_size, dtype="auto")


# lm-eval model backends: name -> (model, tokenizer, batch size, work folder) -> lm-eval LM; the package each needs
EVAL_BACKENDS = {"hf": _hf_backend, "hf-plain": _hf_plain_backend, "vllm": _vllm_backend}
BACKEND_PACKAGES = {"vllm": "vllm"}


def backend_identity(name: str) -> dict:
    """What computed the numbers: recorded in eval_settings so two backends' numbers are never mixed
    silently. ``hf`` is ours (its own version: bumped when what it computes changes)."""
    if name == "hf":
        from suite.evaluation.backend import BACKEND_NAME, BACKEND_VERSION

        return {"backend": name, "backend_model": BACKEND_NAME, "backend_version": BACKEND_VERSION}
    model = {"hf-plain": "lm-eval hf (HFLM)", "vllm": "lm-eval vllm"}.get(name, name)
    return {"backend": name, "backend_model": model, "backend_version": metadata.version("lm_eval")}


def check_eval_backend(name: str) -> str:
    """``name`` if it is a known backend whose package is installed, else one clear ConfigError."""
    import importlib.util

    if name not in EVAL_BACKENDS:
        raise ConfigError(f"eval.backend: unknown backend {name!r}; known: {', '.join(EVAL_BACKENDS)}")
    package = BACKEND_PACKAGES.get(name)
    if package and importlib.util.find_spec(package) is None:
        raise ConfigError(f"eval.backend: {name} needs the {package} package, which is not installed here "
                          f"(pip install {package}; it needs a GPU), or use eval.backend: hf")
    return name


def evaluate_leaderboard(
    model,
    tokenizer,
    spec: LeaderboardSpec,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    workdir: Path,
    chat_template: str = "off",
    seed: int = 0,
    backend: str = "hf",
    subset: int | dict | None = None,
    output_path: Path | None = None,
    model_name: str = "model",
    request_cache: Path | None = None,
) -> EvalResult:
    """Run every task of ``spec`` on the in-memory ``model`` and aggregate as the spec says; ``backend``
    names the lm-eval model class that runs it (``EVAL_BACKENDS``); ``chat_template`` (auto | on | off, see
    ``resolve_chat_template``) decides per task whether lm-eval applies the tokenizer's chat template,
    with few-shot examples as a multi-turn conversation where it does. ``subset`` evaluates a seeded sample
    of that many documents per leaf task (``SUBSET_RULE``) in place of every task's limit. With
    ``output_path``, lm-eval's own EvaluationTracker also writes what ``lm_eval --output_path DIR
    --log_samples`` writes there (``<model_name>/results_<date>.json`` and ``samples_<task>_<date>.jsonl``),
    for lm-eval's tools. With ``request_cache`` (a folder), every answered request is kept there as it is
    answered (lm-eval's own request cache, one file per backend and version): an evaluation killed midway
    answers only what is left when run again with the same model. The caller owns its validity: the folder
    must hold answers of this very model only."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    root = mirror_root()
    if root is not None and (root / "nltk_data").is_dir():
        os.environ.setdefault("NLTK_DATA", str(root / "nltk_data"))  # IFEval's sentence splitter
    index = task_index(str(spec.include_path) if spec.include_path else None)
    workdir = Path(workdir)
    plan, deviations = write_task_yamls(spec, index, workdir, root)
    missing = {}
    for task in spec.tasks:
        ran = {leaf for leaf, _ in plan[task.id]}
        expected = [leaf for name in task.lm_eval for leaf in leaf_tasks(index, name)]
        missing[task.id] = [leaf for leaf in expected if leaf not in ran]
    overlays = TaskManager(include_path=str(workdir), include_defaults=False)

    templates = resolve_chat_template(chat_template, spec, chat_template_text(tokenizer) is not None)
    lm = EVAL_BACKENDS[check_eval_backend(backend)](model, tokenizer, batch_size, workdir)
    # one lm-eval call per (limit, template, few-shot as multi-turn): those are per call in lm-eval
    by_call: dict = {}
    chosen: dict = {}  # overlay name -> its subset's document indices
    for task in spec.tasks:
        task_limit = None if subset else limit if limit is not None else task.limit
        size = subset_for(subset, spec, task.id)
        for leaf, name in plan[task.id] if size else []:
            count = document_count(name, overlays)
            chosen[name] = subset_indices(leaf, count, size, seed)
        multiturn = templates[task.id] and task.num_fewshot > 0
        by_call.setdefault((task_limit, templates[task.id], multiturn), []).extend(name for _, name in plan[task.id])
    results, raw, logged = {}, {}, {}
    for (task_limit, apply_template, multiturn), names in by_call.items():
        if not names:
            continue
        picked = {name: chosen[name] for name in names if name in chosen} or None
        tracker = _tracker(output_path, model_name)
        out = lm_eval.simple_evaluate(
            model=lm, tasks=names, limit=task_limit, samples=picked, task_manager=overlays, log_samples=True,
            apply_chat_template=apply_template, fewshot_as_multiturn=multiturn, bootstrap_iters=0, random_seed=seed,
            numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
            evaluation_tracker=tracker, use_cache=_request_cache_file(request_cache, backend),
        )
        if tracker is not None:
            save_lm_eval_output(tracker, out, model_name)
        results.update(out["results"])
        raw.setdefault("results", {}).update(out["results"])
        raw.setdefault("n-shot", {}).update(out.get("n-shot", {}))
        raw.setdefault("n-samples", {}).update(out.get("n-samples", {}))
        raw.setdefault("configs", {}).update({k: _plain(v) for k, v in out.get("configs", {}).items()})
        logged.update({name: compact_samples(rows) for name, rows in (out.get("samples") or {}).items()})
        # the first request of each task as sent (template and few-shot format visible: what differs and why)
        raw.setdefault("first_request", {}).update(
            {name: first_request(rows) for name, rows in (out.get("samples") or {}).items() if rows})

    scored = score_leaderboard(spec, results, plan, missing, logged)
    for task_id, leaves in scored.missing.items():
        what = f"{', '.join(leaves)} could not run" if leaves else "no part could run"
        deviations.append(f"{task_id}: missing ({what}); reported as missing, no leaderboard average")
    settings = eval_settings(spec, limit=limit, batch_size=batch_size, seed=seed, chat_template=chat_template,
                             templates=templates, template_sha256=chat_template_hash(tokenizer), backend=backend,
                             subset=subset)
    if subset:
        settings["subset_documents"] = {name: len(indices) for name, indices in chosen.items()}
    samples = {task.id: {leaf: logged[key] for leaf, key in plan[task.id] if key in logged} for task in spec.tasks}
    return EvalResult(scored.scores, scored.average, raw, sorted(set(deviations)), settings,
                      headlines=scored.headlines, stderr=scored.stderr, missing=scored.missing,
                      partial_average=scored.partial_average, samples=samples)


def _request_cache_file(folder: Path | None, backend: str) -> str | None:
    """lm-eval's ``use_cache`` path for ``backend`` in ``folder`` (lm-eval appends ``_rank<N>.db``): named
    by backend and version, so answers of one backend are never served as another's."""
    if folder is None:
        return None
    identity = backend_identity(backend)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return str(Path(folder) / f"{identity['backend']}-{identity['backend_version']}")


def _tracker(output_path: Path | None, model_name: str):
    """lm-eval's EvaluationTracker writing under ``output_path`` (None: nothing written)."""
    if output_path is None:
        return None
    from lm_eval.loggers import EvaluationTracker

    Path(output_path).mkdir(parents=True, exist_ok=True)
    return EvaluationTracker(output_path=str(output_path))


def save_lm_eval_output(tracker, out: dict, model_name: str) -> None:
    """What lm-eval's CLI saves after an evaluation (aggregated results, then each task's samples), as it does."""
    from lm_eval.utils import sanitize_model_name

    general = tracker.general_config_tracker
    general.model_name, general.model_name_sanitized = model_name, sanitize_model_name(model_name)
    results = {key: value for key, value in out.items() if key != "samples"}  # the tracker adds its keys to it
    samples = out.get("samples") or {}
    tracker.save_results_aggregated(results=results, samples=samples)
    for task_name in results.get("configs", {}):
        if task_name in samples:
            tracker.save_results_samples(task_name=task_name, samples=samples[task_name])


def _plain(value):
    """Task configs hold functions; keep them readable in JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
