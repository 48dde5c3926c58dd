"""Evaluate an in-memory model on a leaderboard spec with lm-evaluation-harness's own built-in tasks.

For each leaf task we write a small task YAML that ``include``s the built-in one — prompts, filters and
metrics unchanged — and sets the spec's shots. With ``ALIGNSUITE_DATA`` set it also swaps the data
source for the mirror files (``hub/<dataset_path>/<dataset_name or _default>/<split>.jsonl``), derived
from the task's own config, and records every deviation this forces (a missing train split means
few-shot examples come from validation, a missing eval split means the task cannot run).
"""

from __future__ import annotations

import functools
import os
import statistics
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import yaml

from suite.data.loaders import mirror_root
from suite.errors import ConfigError
from suite.evaluation.leaderboard import LeaderboardSpec, TaskSpec

PREFIX = "alignsuite_"
LOCAL_BUILDERS = {"json", "csv", "parquet", "text", "arrow"}


@dataclass
class EvalResult:
    scores: dict  # {task_id: {metric: value in [0, 1]}} (+ "<metric>_normalised" where the spec normalises)
    average: float | None  # percent
    raw: dict
    deviations: list
    settings: dict


@functools.lru_cache(maxsize=4)
def _task_index(include_path: str | None):
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path) if include_path else TaskManager()


def leaf_tasks(index, name: str) -> list[str]:
    """An lm-eval task name, or a group expanded (recursively) into its leaf task names."""
    entry = index.task_index.get(name)
    if entry is None:
        raise ConfigError(f"lm-eval has no task or group {name!r}")
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


def evaluate_leaderboard(
    model,
    tokenizer,
    spec: LeaderboardSpec,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    workdir: Path,
    apply_chat_template: bool = False,
    seed: int = 0,
) -> EvalResult:
    """Run every task of ``spec`` on the in-memory ``model`` and aggregate as the spec says."""
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    root = mirror_root()
    if root is not None and (root / "nltk_data").is_dir():
        os.environ.setdefault("NLTK_DATA", str(root / "nltk_data"))  # IFEval's sentence splitter
    index = _task_index(str(spec.include_path) if spec.include_path else None)
    workdir = Path(workdir)
    plan, deviations = write_task_yamls(spec, index, workdir, root)
    overlays = TaskManager(include_path=str(workdir), include_defaults=False)

    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    by_limit: dict = {}
    for task in spec.tasks:
        task_limit = limit if limit is not None else task.limit
        by_limit.setdefault(task_limit, []).extend(name for _, name in plan[task.id])
    results, raw = {}, {}
    for task_limit, names in by_limit.items():
        if not names:
            continue
        out = lm_eval.simple_evaluate(
            model=lm, tasks=names, limit=task_limit, task_manager=overlays, log_samples=False,
            apply_chat_template=apply_chat_template, bootstrap_iters=0, random_seed=seed,
            numpy_random_seed=seed, torch_random_seed=seed, fewshot_random_seed=seed,
        )
        results.update(out["results"])
        raw.setdefault("results", {}).update(out["results"])
        raw.setdefault("n-shot", {}).update(out.get("n-shot", {}))
        raw.setdefault("n-samples", {}).update(out.get("n-samples", {}))
        raw.setdefault("configs", {}).update({k: _plain(v) for k, v in out.get("configs", {}).items()})

    scores, percents = {}, []
    for task in spec.tasks:
        if not plan[task.id]:
            deviations.append(f"{task.id}: no task could run; left out of the average")
            continue
        task_scores, normalised = {}, []
        for metric in task.metrics:
            values = [_metric(results, name, metric, task.filter, task) for _, name in plan[task.id]]
            task_scores[metric] = statistics.fmean(values)
            if task.lower is not None:
                normed = [normalise(v, task.lower_for(leaf) or 0.0) for v, (leaf, _) in zip(values, plan[task.id])]
                task_scores[f"{metric}_normalised"] = statistics.fmean(normed)
                normalised.append(task_scores[f"{metric}_normalised"])
        headline = statistics.fmean(normalised) if normalised else statistics.fmean(task_scores[m] for m in task.metrics)
        percents.append(100 * headline)
        scores[task.id] = task_scores
    settings = {
        "leaderboard": spec.name,
        "comparable": spec.comparable,
        "tasks": {t.id: {"lm_eval": t.lm_eval, "num_fewshot": t.num_fewshot, "metric": t.metrics,
                         "limit": limit if limit is not None else t.limit} for t in spec.tasks},
        "batch_size": batch_size,
        "apply_chat_template": apply_chat_template,
        "lm_eval_version": metadata.version("lm_eval"),
        "data_source": f"mirror {root}" if root else "hub",
        "seed": seed,
    }
    average = statistics.fmean(percents) if percents and len(percents) == len(spec.tasks) else None
    if percents and average is None:
        deviations.append("average not computed: some tasks could not run")
    return EvalResult(scores, average, raw, sorted(set(deviations)), settings)


def _plain(value):
    """Task configs hold functions; keep them readable in JSON."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
