"""Model cards: the README.md of every model folder the suite saves (a trained run's ``model/``, a merge,
an export), built with ``huggingface_hub``'s own card tools so the hub — and ``ModelCard.load`` — read it.

The YAML metadata holds ``base_model``, ``datasets``, ``tags`` (``alignsuite`` and the method id),
``library_name`` and a ``model-index`` with the run's leaderboard results (one ``EvalResult`` per task
metric); the body says which method (and its paper), the hyper-parameters, the data and the evaluation
table. Everything is read from a run's stored ``manifest.json`` and ``metrics.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from suite.core.errors import ConfigError

CARD_FILE = "README.md"
# The hub ids of the suite's named models (a card's base_model must be a hub id to link).
HUB_IDS = {"smollm2-135m-instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
LIBRARY = "transformers"


def hub_base_model(model: str) -> str:
    """The hub id a card names as base model: the embedded model's upstream id, else the name as given."""
    return HUB_IDS.get(model, model)


def dataset_ids(dataset) -> list[str]:
    """A config's dataset as card ``datasets``: a registered id's hub id; nothing for a local file."""
    if isinstance(dataset, str):
        from suite.data.registry import get_dataset

        try:
            return [get_dataset(dataset).hub_id]
        except ConfigError:
            return [dataset]
    return []


def eval_results(metrics: dict, model_name: str, leaderboard: str | None):
    """One ``EvalResult`` per (task, metric) of a run's leaderboard scores, as the model-index holds them."""
    from huggingface_hub import EvalResult

    tasks = ((metrics.get("eval_settings") or {}).get("tasks")) or {}
    results = []
    for task_id, scores in sorted((metrics.get("eval") or {}).items()):
        lm_eval = tasks.get(task_id, {}).get("lm_eval") or task_id
        lm_eval = lm_eval if isinstance(lm_eval, str) else ",".join(lm_eval)
        shots = tasks.get(task_id, {}).get("num_fewshot")
        for metric, value in sorted(scores.items()):
            if value is None:
                continue
            results.append(EvalResult(
                task_type="text-generation", task_name="Text Generation", dataset_type=lm_eval,
                dataset_name=f"{task_id} ({leaderboard})" if leaderboard else task_id,
                dataset_args={"num_few_shot": shots} if shots is not None else None,
                metric_type=metric, metric_value=round(float(value), 6), metric_name=metric))
    return results


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _number(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def build_card(*, title: str, base_model: str, method_id: str | None, datasets: list[str], sections: list[str],
               metrics: dict | None = None, leaderboard: str | None = None, extra_tags=()):
    """A ``huggingface_hub.ModelCard``: metadata from the arguments (model-index from ``metrics``) and the
    body ``# title`` + ``sections`` (Markdown paragraphs)."""
    from huggingface_hub import ModelCard, ModelCardData

    tags = ["alignsuite", *([method_id] if method_id else []), *extra_tags]
    data = ModelCardData(base_model=hub_base_model(base_model), datasets=datasets or None,
                         tags=list(dict.fromkeys(tags)), library_name=LIBRARY, model_name=title,
                         pipeline_tag="text-generation",
                         eval_results=eval_results(metrics or {}, title, leaderboard) or None)
    body = "\n\n".join([f"# {title}", *sections])
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}\n")


def run_card(manifest: dict, metrics: dict | None):
    """The card of a run's model, from its stored manifest and metrics."""
    from suite.method.registry import get_method

    method_id = manifest.get("method_id") or manifest.get("method")
    config = manifest.get("config") or {}
    model = str(manifest.get("model") or config.get("model"))
    sections = []
    try:
        method = get_method(method_id)
        what = f"Trained from `{model}` with **{method.name}** (`{method.id}`, {method.feedback} feedback), " \
               f"paper: {method.paper.cite()}."
        if method.paper.arxiv:
            what += f" <https://arxiv.org/abs/{method.paper.arxiv}>"
    except ConfigError:
        method = None
        what = f"The untouched base model `{model}`, evaluated as the row `base`." if method_id == "base" else \
            f"Trained from `{model}` with `{method_id}`."
    sections.append(f"{what}\n\nRun `{manifest.get('run_id')}` of experiment `{manifest.get('experiment')}` "
                    f"(row `{manifest.get('method')}`, seed {manifest.get('seed')}), made by "
                    "alignsuite (`alignsuite run`).")
    hyper = manifest.get("hyperparameters") or {}
    if hyper:
        sections.append("## Hyper-parameters\n\n" + _table(["name", "value"], [
            [f"`{k}`", f"`{json.dumps(v)}`"] for k, v in sorted(hyper.items())]))
    train = {k: v for k, v in (config.get("train") or {}).items() if v is not None}
    if train and method is not None:
        sections.append("## Training settings\n\n" + _table(["setting", "value"], [
            [f"`{k}`", f"`{json.dumps(v)}`"] for k, v in sorted(train.items())]))
    data = manifest.get("train_dataset") or manifest.get("dataset")
    stats = (metrics or {}).get("data") or {}
    data_line = f"Dataset: `{json.dumps(data) if isinstance(data, dict) else data}`."
    if stats:
        data_line += " " + ", ".join(f"{k}: {v}" for k, v in sorted(stats.items())
                                     if isinstance(v, (int, float, str)) and not isinstance(v, bool))
    sections.append("## Data\n\n" + data_line)
    sections.append(_evaluation_section(metrics or {}, manifest.get("leaderboard")))
    return build_card(title=f"{manifest.get('experiment')}/{manifest.get('method')} (seed {manifest.get('seed')})",
                      base_model=model, method_id=method_id if method is not None else None,
                      datasets=dataset_ids(data), sections=sections, metrics=metrics,
                      leaderboard=manifest.get("leaderboard"))


def _evaluation_section(metrics: dict, leaderboard: str | None) -> str:
    headlines, stderr = metrics.get("eval_headline") or {}, metrics.get("eval_stderr") or {}
    parts = ["## Evaluation"]
    if headlines:
        comparable = (metrics.get("eval_settings") or {}).get("comparable")
        note = "" if comparable else " (a cut-down spec: not comparable with the Open LLM Leaderboard)"
        rows = [[task, f"{value:.2f}", _number(stderr.get(task)) if stderr.get(task) is not None else ""]
                for task, value in sorted(headlines.items())]
        if metrics.get("eval_average") is not None:
            rows.append(["**average**", f"{metrics['eval_average']:.2f}",
                         _number(stderr.get("average")) if stderr.get("average") is not None else ""])
        parts.append(f"lm-evaluation-harness, leaderboard spec `{leaderboard}`{note}; percent:\n\n"
                     + _table(["task", "score", "stderr"], rows))
    alignment = {k: v for k, v in (metrics.get("alignment") or {}).items() if isinstance(v, (int, float))}
    if alignment:
        parts.append("Held-out preference pairs:\n\n" + _table(["metric", "value"], [
            [k, _number(v)] for k, v in sorted(alignment.items())]))
    if len(parts) == 1:
        parts.append("Not evaluated.")
    return "\n\n".join(parts)


def merge_card(recipe: dict, versions: dict, revision: str | None, *, title: str = "Merged model",
               extra_sections=()):
    """The card of an ``alignsuite merge`` result (the recipe: base, models with weights, method)."""
    rows = [[f"`{m['model']}`", m.get("weight", 1.0)] for m in recipe["models"]]
    body = (f"Made by `alignsuite merge` with merge method **{recipe['method']}** (parameters "
            f"`{json.dumps(recipe.get('parameters') or {})}`, seed {recipe.get('seed', 0)}) from the base "
            f"`{recipe['base']}` and:\n\n" + _table(["model", "weight"], rows)
            + f"\n\nalignsuite git revision: {revision or 'unknown'}; torch {versions.get('torch')}, transformers "
            f"{versions.get('transformers')}, peft {versions.get('peft')}. The full recipe is in `merge_recipe.json`.")
    return build_card(title=title, base_model=recipe["base"], method_id=None, datasets=[],
                      sections=[body, *extra_sections], extra_tags=("merge", f"merge-{recipe['method']}"))


def write_card(folder, card) -> Path:
    path = Path(folder) / CARD_FILE
    card.save(str(path))
    return path
