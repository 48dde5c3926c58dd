"""``alignsuite merge RECIPE.yaml``: merge fine-tuned models that share a base, save the result with a card.

A recipe::

    base: smollm2-135m-instruct            # an id or path (suite.modeling.models.load_model)
    models:                                # ids, paths, LoRA adapter dirs or run directories
      - {model: results/paft/runs/sft-l1-s0-…, weight: 1.0}
      - {model: results/paft/runs/dpo-s0-…, weight: 1.0}
    method: ties                           # a registered merge method (suite.merging.methods)
    parameters: {density: 0.5}
    seed: 0
    out: merged/paft-ties                  # or --out
"""

from __future__ import annotations

import math
from pathlib import Path

from suite.core.errors import ConfigError, SuiteError
from suite.core.io import load_yaml_mapping


def load_recipe(path) -> dict:
    path = Path(path)
    recipe = load_yaml_mapping(path, "a mapping with base, models and method", kind="recipe file")
    for key in ("base", "models", "method"):
        if key not in recipe:
            raise ConfigError(f"{path}: {key}: missing")
    unknown = sorted(set(recipe) - {"base", "models", "method", "parameters", "seed", "out"})
    if unknown:
        raise ConfigError(f"{path}: {unknown[0]}: unknown key")
    if not isinstance(recipe["models"], list) or not recipe["models"]:
        raise ConfigError(f"{path}: models: expected a non-empty list of {{model, weight}}")
    if not isinstance(recipe["base"], str) or not recipe["base"]:
        raise ConfigError(f"{path}: base: expected a model id or path, got {recipe['base']!r}")
    for index, entry in enumerate(recipe["models"]):
        if isinstance(entry, str):
            recipe["models"][index] = entry = {"model": entry}
        if not isinstance(entry, dict) or "model" not in entry:
            raise ConfigError(f"{path}: models[{index}].model: missing")
        # a misspelt key (wieght) would otherwise silently merge with the default weight
        unknown_entry_keys = sorted(set(entry) - {"model", "weight"})
        if unknown_entry_keys:
            raise ConfigError(f"{path}: models[{index}].{unknown_entry_keys[0]}: unknown key; known: model, weight")
        if not isinstance(entry["model"], str) or not entry["model"]:
            raise ConfigError(f"{path}: models[{index}].model: expected a model id or path, got {entry['model']!r}")
        weight = entry.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight):
            raise ConfigError(f"{path}: models[{index}].weight: expected a finite number, got {weight!r}")
    seed = recipe.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{path}: seed: expected an integer")
    if not isinstance(recipe.get("parameters") or {}, dict):
        raise ConfigError(f"{path}: parameters: expected a mapping of parameter names to values")
    for name, value in (recipe.get("parameters") or {}).items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{path}: parameters.{name}: expected a finite number, got {value!r}")
    from suite.merging.methods import get_merge_method

    method = get_merge_method(recipe["method"], where=f"{path}: method")
    try:
        method.resolve(recipe.get("parameters"))  # its messages name parameters.<key>
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if method.models is not None and len(recipe["models"]) != method.models:
        raise ConfigError(f"{path}: models: merge method {method.id!r} merges exactly {method.models} models, "
                          f"got {len(recipe['models'])}")
    return recipe


def _load_recipe_model(path, key: str, spec: str, base_id: str | None = None, base_state: dict | None = None):
    """One of the recipe's models; a load failure or an architecture mismatch names the recipe and key."""
    from suite.merging.delta import resolve_model
    from suite.modeling.weights import check_same_architecture, state_of

    try:
        model = resolve_model(spec, base_id=base_id)
        if base_state is not None:
            check_same_architecture(base_state, state_of(model))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {key}: {exc}") from None
    return model


def model_card(recipe: dict, versions: dict, revision: str | None):
    """The merged model's card (``huggingface_hub.ModelCard``, built as every saved model's: suite.modeling.model_card)."""
    from suite.modeling.model_card import merge_card

    return merge_card(recipe, versions, revision)


def run_recipe(path, out: str | None = None) -> Path:
    from suite.core.io import git_revision, package_versions, write_json_atomic
    from suite.merging.methods import merge_models
    from suite.modeling.models import load_model

    recipe = load_recipe(path)
    out_dir = Path(out or recipe.get("out") or Path("merged") / Path(path).stem)
    blocking = next((p for p in (out_dir, *out_dir.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(f"{out_dir}: the merged model's folder cannot be made: {blocking} is a file")
    try:
        loaded = load_model(recipe["base"])
    except ConfigError as exc:
        raise ConfigError(f"{path}: base: {exc}") from None
    base_state = loaded.model.state_dict()
    models = [_load_recipe_model(path, f"models[{index}].model", entry["model"], recipe["base"], base_state)
              for index, entry in enumerate(recipe["models"])]
    try:
        merged = merge_models(loaded.model, models, recipe["method"],
                              [float(e.get("weight", 1.0)) for e in recipe["models"]],
                              recipe.get("parameters"), int(recipe.get("seed", 0)))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    from suite.modeling.weights import first_non_finite

    bad = first_non_finite(merged.state_dict())
    if bad is not None:
        raise SuiteError(f"{path}: the merge made non-finite weights ({bad}); nothing written")
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True)
    loaded.tokenizer.save_pretrained(out_dir)
    versions = package_versions()
    revision = git_revision()
    write_json_atomic(out_dir / "merge_recipe.json",
                      {**recipe, "out": str(out_dir), "alignsuite": {"version": versions.get("alignsuite"),
                                                                      "git_revision": revision}})
    from suite.modeling.model_card import write_card

    write_card(out_dir, model_card(recipe, versions, revision))
    return out_dir


def merge_command(args) -> int:
    out_dir = run_recipe(args.recipe, args.out)
    print(f"merged model: {out_dir}")
    return 0
