"""The preflight: everything that can be checked before the first run starts, so that a mistake is one
error naming the file and key, not "N run(s) failed" after minutes of training.

It runs after the config is read and the data loaded (``Runner.preflight``), and checks what needs the
model's files, the tokenizer, the data and lm-eval — without loading any weights:

- the model is a model (a local path holds a ``config.json``), its tokenizer loads, the configured dtype
  is one it can run in, and every LoRA target module exists in its architecture;
- the data can train and be evaluated: not every pair is identical once truncated to ``max_length``,
  held-out pairs exist when the alignment metrics want them, a staged method has a stage per step and
  per record; weak data (duplicate records, heavy truncation, some pairs identical after truncation) gives
  warnings with counts, stored in each run's manifest;
- every lm-eval task of the leaderboard spec resolves (one TaskManager per process, shared with the
  evaluation, and a file cache of the spec's resolved task names).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

from suite.core.errors import ConfigError

# Share of training sequences cut to max_length above which the data is called heavily truncated.
HEAVY_TRUNCATION = 0.5


# -- the model ---------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def model_files(model: str) -> tuple:
    """(transformers config, tokenizer) of ``model`` without its weights; a ConfigError naming ``model``."""
    from transformers import AutoConfig, AutoTokenizer, LlamaConfig

    from suite.modeling.models import EMBEDDED_MODEL, TINY_CONFIG, TINY_MODEL, embedded_model_dir

    if model == TINY_MODEL:
        tokenizer = AutoTokenizer.from_pretrained(str(embedded_model_dir()))
        return LlamaConfig(vocab_size=len(tokenizer), **TINY_CONFIG), tokenizer
    path = embedded_model_dir() if model == EMBEDDED_MODEL else Path(model).expanduser()
    if isinstance(path, Path) and path.exists():
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ConfigError(f"model: {model}: not a model folder (no config.json in it)")
    try:
        return AutoConfig.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path))
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"model: cannot load {model!r}: {str(exc).splitlines()[0] if str(exc) else exc}") from None


@functools.lru_cache(maxsize=4)
def module_names(model: str) -> tuple[frozenset, tuple]:
    """(the names of ``model``'s modules, e.g. ``model.layers.0.self_attn.q_proj``; the last parts of its
    linear layers' names, the usual LoRA targets), from its architecture built on the meta device."""
    import torch
    from transformers import AutoModelForCausalLM

    config, _ = model_files(model)
    with torch.device("meta"):
        network = AutoModelForCausalLM.from_config(config)
    names = frozenset(name for name, _ in network.named_modules() if name)
    linear = sorted({name.rsplit(".", 1)[-1] for name, module in network.named_modules()
                     if isinstance(module, torch.nn.Linear)})
    return names, tuple(linear)


def check_model(config) -> object:
    """The model's files, dtype and LoRA targets; returns its tokenizer."""
    _, tokenizer = model_files(config.model)
    if getattr(config, "model_chat_template", None) is not None:  # the user's template replaces the tokenizer's
        from suite.modeling.models import read_chat_template

        tokenizer.chat_template = read_chat_template(config.model_chat_template)
    lora = config.train.lora
    if lora and "target_modules" in lora:
        targets = [lora["target_modules"]] if isinstance(lora["target_modules"], str) else lora["target_modules"]
        names, linear = module_names(config.model)
        leaves = {name.rsplit(".", 1)[-1] for name in names}
        for index, target in enumerate(targets):
            if target not in leaves and target not in names:
                key = "train.lora.target_modules" + ("" if isinstance(lora["target_modules"], str) else f"[{index}]")
                raise ConfigError(f"{key}: {config.model} has no module {target!r}; its linear layers: "
                                  f"{', '.join(linear)}")
    return tokenizer


# -- the data ----------------------------------------------------------------------------------------


def _responses(record) -> list[str]:
    for names in (("chosen", "rejected"), ("responses",), ("completion",)):
        if all(hasattr(record, name) for name in names):
            values = [getattr(record, name) for name in names]
            return list(values[0]) if names == ("responses",) else values
    return []


def data_findings(records: list, tokenizer, max_length: int) -> dict:
    """Counts over the training records: duplicates, truncated sequences, pairs/lists whose responses are
    identical once truncated to ``max_length`` (they carry no preference)."""
    from suite.modeling.sequences import encode_sequence

    seen, duplicates, truncated, sequences, identical = set(), 0, 0, 0, 0
    for record in records:
        key = json.dumps([record.prompt, _responses(record), getattr(record, "label", None),
                          getattr(record, "score", None), getattr(record, "scores", None)], default=str)
        duplicates += key in seen
        seen.add(key)
        encoded = [encode_sequence(tokenizer, record.prompt, response, max_length) for response in _responses(record)]
        sequences += len(encoded)
        truncated += sum(len(e.input_ids) >= max_length for e in encoded)
        if len(encoded) > 1 and len({e.input_ids for e in encoded}) < len(encoded):
            identical += 1
    return {"records": len(records), "duplicates": duplicates, "sequences": sequences,
            "truncated": truncated, "identical_after_truncation": identical}


def check_data(config, prepared: dict, tokenizer) -> list[str]:
    """Refuse data that cannot train or be evaluated; warnings (with counts) for data that is merely weak.

    ``prepared``: {(feedback, dataset name): PreparedData} as the runner's preflight loaded them."""
    warnings = []
    for (feedback, name), data in prepared.items():
        found = data_findings(data.train, tokenizer, config.train.max_length)
        where = f"dataset {name}"
        if found["identical_after_truncation"] and found["identical_after_truncation"] == found["records"] \
                and feedback in ("pairwise", "listwise"):
            raise ConfigError(f"{where}: every one of the {found['records']} {feedback} training records has responses "
                              f"identical after truncation to train.max_length={config.train.max_length} (no "
                              "preference left to learn); raise train.max_length")
        if found["identical_after_truncation"]:
            warnings.append(f"{where}: {found['identical_after_truncation']} of {found['records']} {feedback} records "
                            f"have identical responses after truncation to max_length={config.train.max_length}")
        if found["duplicates"]:
            warnings.append(f"{where}: {found['duplicates']} of {found['records']} {feedback} training records are "
                            "duplicates")
        if found["sequences"] and found["truncated"] / found["sequences"] > HEAVY_TRUNCATION:
            warnings.append(f"{where}: {found['truncated']} of {found['sequences']} training sequences are cut to "
                            f"max_length={config.train.max_length}")
        pairable = data.stats.get("source_feedback") in ("pairwise", "scalar", "listwise")
        if pairable and not data.heldout_pairs and config.eval.alignment_pairs > 0:
            raise ConfigError(f"{where}: no held-out pairs ({data.stats.get('heldout_prompts', 0)} of "
                              f"{data.stats.get('train_prompts', 0) + data.stats.get('heldout_prompts', 0)} distinct "
                              "prompts held out): the alignment metrics would be empty; give more distinct prompts, "
                              "raise data.heldout_fraction or set eval.alignment_pairs: 0")
    return warnings


def check_methods(config, planned: list, records_per_feedback: dict) -> None:
    """What only the plan knows: a staged method needs a step and a record per stage."""
    for method, hyperparameters, label in planned:
        if method is None or not method.staged:
            continue
        stages = hyperparameters.get("stages")
        records = records_per_feedback.get(method.feedback)
        if stages > config.train.max_steps or (records is not None and stages > records):
            raise ConfigError(f"methods ({label}).stages: {stages} stages need at least {stages} steps and records; "
                              f"train.max_steps is {config.train.max_steps}, training records {records}")


# -- lm-eval -----------------------------------------------------------------------------------------


def _task_cache_path() -> Path:
    from importlib import metadata

    from suite.modeling.models import cache_root

    try:
        version = metadata.version("lm-eval")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return cache_root() / "lm_eval_task_names" / f"{version}.json"


def check_tasks(spec) -> None:
    """Every lm-eval task or group the spec names exists. Names resolved once are kept in a file (per
    lm-eval version), so a later preflight does not index every lm-eval task again."""
    from suite.evaluation.harness import leaf_tasks, task_index

    include = str(spec.include_path) if spec.include_path else ""
    cache_file = _task_cache_path()
    try:
        known = json.loads(cache_file.read_text())
        known = known if isinstance(known, dict) else {}
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        known = {}
    resolved = set(known.get(include, []))
    wanted = [(index, name) for index, task in enumerate(spec.tasks) for name in task.lm_eval]
    if all(name in resolved for _, name in wanted):
        return
    index = task_index(include or None)
    for position, name in wanted:
        try:
            leaf_tasks(index, name)
        except ConfigError as exc:
            raise ConfigError(f"{spec.path}: tasks[{position}].lm_eval: {exc}") from None
        resolved.add(name)
    known[include] = sorted(resolved)
    try:
        from suite.core.io import write_json_atomic

        write_json_atomic(cache_file, known)
    except OSError:
        pass  # a cache only


# -- everything ----------------------------------------------------------------------------------------


def preflight(config, planned: list, prepared: dict, leaderboard=None) -> list[str]:
    """Run every check; returns the data warnings. ``planned``: (method or None, hyperparameters, label) per
    run; ``prepared``: {(feedback, dataset name): PreparedData}; ``leaderboard``: the loaded spec or None."""
    tokenizer = check_model(config)
    warnings = check_data(config, prepared, tokenizer)
    records = {feedback: len(data.train) for (feedback, _), data in prepared.items()}
    check_methods(config, planned, records)
    if leaderboard is not None:
        check_tasks(leaderboard)
    return warnings
