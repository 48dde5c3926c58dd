"""Experiment configs: a YAML file plus ``--set key=value`` overrides, validated into dataclasses.

Every key is checked: an unknown key, a wrong type or a bad value is one ConfigError naming the key.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from suite.core.errors import ConfigError
from suite.core.io import StrictYamlLoader, load_yaml_file, yaml_error_text
from suite.core.ranges import (
    BOOL,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Range,
)


@dataclass
class DataConfig:
    heldout_fraction: float = 0.1  # share of prompts held out for the alignment metrics
    heldout_max: int | None = 200  # cap on held-out pairs kept
    split_seed: int = 1234  # the held-out split is fixed by this, not by the training seed
    train_max: int | None = None  # cap on training records; default = what the step budget consumes
    list_size: int = 4  # responses per ranked list, for listwise methods (RRHF, PRO)
    # share of the training prompts kept apart to select a sweep's point on (0: none; 0.1 with a sweep)
    validation_fraction: float = 0.0


@dataclass
class TrainConfig:
    max_steps: int = 20
    per_device_batch_size: int = 4  # records of the method's feedback type (a pair counts once)
    gradient_accumulation_steps: int = 1
    learning_rate: float | None = None  # None: each method's paper default; set: the same for all
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    max_length: int = 256
    lora: dict | None = None  # {r, alpha, dropout, target_modules}; None = full fine-tuning
    dtype: str = "float32"
    bf16: bool = False  # bf16 mixed precision (autocast) for training
    reference_batch_size: int = 8
    save_model: bool = True
    # Checkpoint every N optimizer steps (and the last) so a killed run resumes; 0 turns it off. How a run
    # is executed, not what it computes: not part of the run's identity.
    checkpoint_steps: int = 10
    # Experiment trackers every training loop reports to (suite.training.trackers): tensorboard, mlflow, wandb,
    # trackio. Where results are watched, not what they are: not part of the run's identity either.
    report_to: list | None = None


@dataclass
class EvalConfig:
    leaderboard: str | None = "quick"  # a spec in leaderboards/ or a path; None skips lm-eval
    limit: int | None = None  # overrides every task's limit in the spec
    # a seeded sample of this many documents per leaf task in place of the limits (harness.SUBSET_RULE); or
    # {task id: count} per task of the spec (every task named; null = all its documents), so that cheap
    # log-likelihood tasks can run on more documents than long generations
    subset: int | dict | None = None
    batch_size: int = 8
    # auto: the tokenizer's chat template where it has one, unless the leaderboard spec pins it (open-llm-v1
    # and the v1-style quick specs pin off, as the v1 leaderboard ran); few-shot examples become a multi-turn
    # conversation wherever it is applied. YAML's bare on/off (read as true/false) are accepted.
    chat_template: str | bool = "auto"
    apply_chat_template: bool | None = None  # the old key: true = chat_template on, false = off
    alignment_pairs: int = 100  # held-out pairs scored for the alignment metrics
    generation_prompts: int = 16  # held-out prompts answered to measure response length
    max_new_tokens: int = 128
    # lm-eval model on the in-memory model: hf (ours, suite.evaluation.backend: shared contexts, same answers),
    # hf-plain (lm-eval's own HF backend) or vllm (GPU; needs the vllm package)
    backend: str = "hf"
    judge: dict | None = None  # judged win rate vs reference answers (suite.evaluation.judged); None = off


@dataclass
class MethodChoice:
    id: str
    overrides: dict = field(default_factory=dict)
    label: str | None = None  # the run's row name in reports (default: the id); tells variants apart
    sweep_of: str | None = None  # a sweep's variant: the row it was expanded from (suite.config.sweep)
    sweep_point: dict | None = None  # ... and its point of the grid


@dataclass
class ExperimentConfig:
    name: str
    model: str
    dataset: str | dict
    methods: list
    seeds: list = field(default_factory=lambda: [0])
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    evaluate_base: bool = True  # the untouched model as row `base`
    sweep: dict | None = None  # {hyper-parameter: [values]}: every method at every point (suite.config.sweep)
    # ``model: {id: ..., chat_template: FILE}``: a Jinja file replacing the tokenizer's chat template
    model_chat_template: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


SECTIONS = {"data": DataConfig, "train": TrainConfig, "eval": EvalConfig}
DTYPES = ("float32", "bfloat16", "float16")  # what suite.modeling.models.load_model accepts



TOP_LEVEL = {f.name for f in dataclasses.fields(ExperimentConfig)} - {"model_chat_template"}  # set via model:
_OPTIONAL_POSITIVE_INT = Range(low=0, low_open=True, integer=True, nullable=True)
# The declared range of every config hyper-parameter (schedulers, dtypes and backends are checked
# against what the libraries accept, below). A value out of range is refused when the config is read.
CONFIG_RANGES: dict[str, Range] = {
    "data.heldout_fraction": Range(low=0, high=1, low_open=True, high_open=True),
    "data.heldout_max": _OPTIONAL_POSITIVE_INT,
    "data.split_seed": SEED,
    "data.train_max": _OPTIONAL_POSITIVE_INT,
    "data.list_size": Range(low=2, integer=True),
    "data.validation_fraction": Range(low=0, high=1, high_open=True),
    "train.max_steps": POSITIVE_INT,
    "train.per_device_batch_size": POSITIVE_INT,
    "train.gradient_accumulation_steps": POSITIVE_INT,
    "train.learning_rate": Range(low=0, high=1, low_open=True, nullable=True),
    "train.lr_scheduler": Range(kind="text"),
    "train.warmup_ratio": Range(low=0, high=1, high_open=True),
    "train.weight_decay": NON_NEGATIVE,  # negative decay grows the weights
    "train.max_grad_norm": POSITIVE,  # clipping at a norm <= 0 silently turns it off
    "train.max_length": Range(low=8, integer=True),  # room for a chat template's markers and a response
    "train.lora": Range(kind="mapping", nullable=True),
    "train.dtype": Range(choices=DTYPES),
    "train.bf16": BOOL,
    "train.reference_batch_size": POSITIVE_INT,
    "train.save_model": BOOL,
    "train.checkpoint_steps": NON_NEGATIVE_INT,
    "train.report_to": Range(kind="list", nullable=True, validate=lambda value, key: _check_trackers(value, key)),
    "eval.leaderboard": Range(kind="text", nullable=True),
    "eval.limit": _OPTIONAL_POSITIVE_INT,
    "eval.subset": Range(kind="count-or-mapping", nullable=True, validate=lambda value, key: _check_subset(value, key)),
    "eval.batch_size": POSITIVE_INT,
    "eval.chat_template": Range(choices=("auto", "on", "off")),
    "eval.apply_chat_template": Range(kind="bool", nullable=True),
    "eval.alignment_pairs": NON_NEGATIVE_INT,
    "eval.generation_prompts": NON_NEGATIVE_INT,
    "eval.max_new_tokens": POSITIVE_INT,
    "eval.backend": Range(kind="text"),
}
LORA_RANGES = {
    "r": POSITIVE_INT,
    "alpha": POSITIVE,
    "dropout": Range(low=0, high=1, high_open=True),
}
# Schedulers that need options the config cannot give (a metric, a minimum lr, decay steps): refused.
SCHEDULERS_NEEDING_OPTIONS = ("reduce_lr_on_plateau", "cosine_with_min_lr", "cosine_warmup_with_min_lr",
                              "warmup_stable_decay")


def _check_subset(value, key: str) -> None:
    """One count for every leaf task, or a count (or null: all) per task id; the ids are checked against
    the leaderboard spec where it is read (suite.evaluation.harness.subset_for)."""
    if isinstance(value, dict):
        if not value:
            raise ConfigError(f"{key}: an empty mapping; give a count per task id, or one integer")
        for task_id, count in value.items():
            _OPTIONAL_POSITIVE_INT.check(count, f"{key}.{task_id}")
    else:
        POSITIVE_INT.check(value, key)


def _check_trackers(names, key: str) -> None:
    from suite.training.trackers import check_trackers

    check_trackers(names, key)


def _check_type(value, annotation, key: str):
    """Check ``value`` against a simple annotation (int, float, str, bool, dict, list, X | None)."""
    hint = eval(annotation, vars(typing), {}) if isinstance(annotation, str) else annotation  # noqa: S307
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for option in options:
        if option is type(None) and value is None:
            return value
        if option is bool and isinstance(value, bool):
            return value
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(f"{key}: must be a finite number, got {value!r}")
            return float(value)
        if option in (str, dict, list) and isinstance(value, option):
            return value
    names = " or ".join(getattr(o, "__name__", str(o)).replace("NoneType", "null") for o in options)
    hint = ""
    if float in options and isinstance(value, str) and re.fullmatch(r"[-+]?\d+[eE][-+]?\d+", value.strip()):
        mantissa, exponent = re.split("[eE]", value.strip())
        hint = f" (YAML reads {value} as text: write {mantissa}.0e{exponent})"
    raise ConfigError(f"{key}: expected {names}, got {type(value).__name__} {value!r}{hint}")


def _build_section(cls, raw, key: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{key}: expected a mapping, got {type(raw).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key; known keys: {', '.join(sorted(known))}")
    values = {name: _check_type(raw[name], known[name].type, f"{key}.{name}") for name in raw}
    return cls(**values)


def _positive(value, key: str, allow_zero: bool = False):
    if value is not None and (value < 0 or (value == 0 and not allow_zero)):
        raise ConfigError(f"{key}: must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _check_overrides(method, overrides: dict, where: str) -> None:
    """Each override has the type of the method's default (a number for a number, …): a wrong type would
    otherwise only fail inside training, after the model is loaded."""
    for key, value in overrides.items():
        default = method.defaults.get(key)
        if default is None:
            continue
        if isinstance(default, bool):
            ok, expected = isinstance(value, bool), "true or false"
        elif isinstance(default, (int, float)):
            number = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = number and (isinstance(value, int) or isinstance(default, float)) and math.isfinite(value)
            expected = "an integer" if isinstance(default, int) else "a finite number"
        else:
            ok, expected = isinstance(value, type(default)), f"a {type(default).__name__}"
        if not ok:
            raise ConfigError(f"{where}.{key}: expected {expected} (the default is {default!r}), "
                              f"got {type(value).__name__} {value!r}")


def _check_model(model: str) -> None:
    """The names suite.modeling.models.load_model resolves: checked here so a typo fails before any run starts."""
    from suite.modeling.models import EMBEDDED_MODEL, TINY_MODEL

    if not model.strip():
        raise ConfigError("model: expected a model name or path, got an empty string")
    if model in (EMBEDDED_MODEL, TINY_MODEL) or Path(model).expanduser().exists() or "/" in model:
        return
    raise ConfigError(f"model: unknown model {model!r}; use {EMBEDDED_MODEL!r}, {TINY_MODEL!r}, a local path "
                      "or a hub id (org/name)")


def _parse_model(raw) -> tuple[str, str | None]:
    """``model: NAME`` or ``model: {id: NAME, chat_template: FILE}``: (name, template file or None)."""
    if isinstance(raw, dict):
        unknown = sorted(set(raw) - {"id", "chat_template"})
        if unknown:
            raise ConfigError(f"model.{unknown[0]}: unknown key; a model mapping has id and chat_template")
        if "id" not in raw:
            raise ConfigError("model.id: missing (model: {id: NAME, chat_template: FILE})")
        model = _check_type(raw["id"], str, "model.id")
        _check_model(model)
        template = raw.get("chat_template")
        if template is not None:
            from suite.modeling.models import read_chat_template

            _check_type(template, str, "model.chat_template")
            read_chat_template(template)
        return model, template
    model = _check_type(raw, str, "model")
    _check_model(model)
    return model, None


def _check_dataset(dataset, key: str = "dataset") -> None:
    """A registered id, or a local ``{path, format}`` with a known format (the file is read in the preflight)."""
    from suite.data.records import FEEDBACK_TYPES
    from suite.data.registry import get_dataset

    if isinstance(dataset, str):
        try:
            get_dataset(dataset)
        except ConfigError as exc:
            raise ConfigError(str(exc).replace("dataset: ", f"{key}: ", 1)) from None
        return
    unknown = sorted(set(dataset) - {"path", "format"})
    if unknown:
        raise ConfigError(f"{key}.{unknown[0]}: unknown key; a local dataset has path and format")
    if not isinstance(dataset["path"], str) or not dataset["path"].strip():
        raise ConfigError(f"{key}.path: expected the path of a .jsonl or .json file, got {dataset['path']!r}")
    if dataset["format"] not in FEEDBACK_TYPES:
        raise ConfigError(f"{key}.format: unknown format {dataset['format']!r}; use one of {', '.join(FEEDBACK_TYPES)}")


def _check_lora(lora: dict) -> None:
    checks = {
        "r": (lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0, "a positive integer"),
        "alpha": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0, "a positive number"),
        "dropout": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 1,
                    "a number in [0, 1)"),
        "target_modules": (lambda v: isinstance(v, str) and v or isinstance(v, list) and v
                           and all(isinstance(m, str) and m for m in v), "a module name or a list of names"),
    }
    for key, value in lora.items():
        valid, expected = checks[key]
        if not valid(value):
            raise ConfigError(f"train.lora.{key}: expected {expected}, got {value!r}")
        if key in LORA_RANGES:
            LORA_RANGES[key].check(value, f"train.lora.{key}")


def _check_scheduler(name: str) -> None:
    if name == TrainConfig.lr_scheduler:
        return  # the default; transformers is slow to import just to confirm it
    if name in SCHEDULERS_NEEDING_OPTIONS:
        from transformers.trainer_utils import SchedulerType

        usable = [s.value for s in SchedulerType if s.value not in SCHEDULERS_NEEDING_OPTIONS]
        raise ConfigError(f"train.lr_scheduler: {name!r} needs options the config cannot give; use one of "
                          f"{', '.join(usable)}")
    from transformers.trainer_utils import SchedulerType

    known = [scheduler.value for scheduler in SchedulerType]
    if name not in known:
        raise ConfigError(f"train.lr_scheduler: unknown scheduler {name!r}; use one of {', '.join(known)}")


def _check_distinct_rows(methods: list[MethodChoice]) -> None:
    """Two entries on one row (same id, no label to tell them apart) would be pooled as if they were seeds."""
    seen: dict[str, int] = {}
    for index, choice in enumerate(methods):
        row = choice.label or choice.id
        if row in seen:
            first = seen[row]
            raise ConfigError(f"methods[{index}]: a second entry for row {row!r} (first: methods[{first}]); "
                              "give each configuration its own label: {id: ..., label: NAME, ...}")
        seen[row] = index


def _resolve_chat_template_keys(evaluation: EvalConfig, raw: dict) -> None:
    """``eval.chat_template`` as auto | on | off; an old config's ``apply_chat_template`` maps onto it."""
    if isinstance(evaluation.chat_template, bool):
        evaluation.chat_template = "on" if evaluation.chat_template else "off"
    legacy = evaluation.apply_chat_template
    if legacy is None:
        return
    wanted = "on" if legacy else "off"
    if "chat_template" in raw and evaluation.chat_template != wanted:
        raise ConfigError(f"eval.apply_chat_template: {str(legacy).lower()} contradicts eval.chat_template: "
                          f"{evaluation.chat_template} (apply_chat_template is the old key: keep chat_template only)")
    evaluation.chat_template, evaluation.apply_chat_template = wanted, None


def _parse_methods(raw) -> list[MethodChoice]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("methods: expected a non-empty list of method ids (or {id: ..., <hyper-parameter>: ...}); "
                          "an empty list evaluates the base model alone")
    choices = []
    for index, entry in enumerate(raw):
        if isinstance(entry, str):
            choices.append(MethodChoice(entry))
        elif isinstance(entry, dict) and isinstance(entry.get("id"), str):
            label = entry.get("label")
            if label is not None and not (isinstance(label, str) and re.fullmatch(r"[A-Za-z0-9][\w.+-]*", label)):
                raise ConfigError(f"methods[{index}].label: expected a name of letters, digits, '.', '+', '-', '_', got {label!r}")
            overrides = {k: v for k, v in entry.items() if k not in ("id", "label")}
            choices.append(MethodChoice(entry["id"], overrides, label))
        else:
            raise ConfigError(f"methods[{index}]: expected a method id or a mapping with 'id', got {entry!r}")
    return choices


def build_config(raw: dict, source: str = "config") -> ExperimentConfig:
    """Validate a raw mapping into an ExperimentConfig; errors name ``source`` and the key."""
    try:
        return _build_config(raw)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _build_config(raw: dict) -> ExperimentConfig:
    from suite.method.ranges import check_hyperparameters
    from suite.method.registry import get_method

    if not isinstance(raw, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(raw).__name__}")
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise ConfigError(f"{unknown[0]}: unknown key; known keys: {', '.join(sorted(TOP_LEVEL))}")
    for required in ("model", "dataset", "methods"):
        if required not in raw:
            raise ConfigError(f"{required}: missing required key")
    name = _check_type(raw.get("name", "experiment"), str, "name")
    if not re.fullmatch(r"[A-Za-z0-9][\w.+-]*", name):  # it names the results folder: one path component
        raise ConfigError(f"name: expected a name of letters, digits, '.', '+', '-', '_', got {name!r}")
    model, chat_template = _parse_model(raw["model"])
    dataset = raw["dataset"]
    if isinstance(dataset, dict):
        missing = [k for k in ("path", "format") if k not in dataset]
        if missing:
            raise ConfigError(f"dataset.{missing[0]}: missing (a local dataset needs path and format)")
    elif not isinstance(dataset, str):
        raise ConfigError(f"dataset: expected a dataset id or {{path, format}}, got {dataset!r}")
    # no methods: the base model alone (an evaluation, e.g. against a published leaderboard row)
    base_only = raw["methods"] == [] and raw.get("evaluate_base", True) is True
    methods = [] if base_only else _parse_methods(raw["methods"])
    from suite.config.sweep import DEFAULT_VALIDATION_FRACTION, check_sweep, expand

    sweep = check_sweep(raw.get("sweep"))
    methods = expand(methods, sweep, lambda method_id: get_method(method_id).defaults)
    for index, choice in enumerate(methods):
        try:
            method = get_method(choice.id)
            hyperparameters = method.hyperparameters(choice.overrides)
            for component_name, component in (method.components(hyperparameters) if method.components else {}).items():
                try:
                    part = get_method(component.method)
                    _check_overrides(part, component.overrides, "overrides")
                    check_hyperparameters(part, part.hyperparameters(component.overrides), "overrides")
                    if component.dataset is not None:
                        _check_dataset(component.dataset)
                except ConfigError as exc:
                    raise ConfigError(f"component {component_name!r}: {exc}") from None
        except ConfigError as exc:
            raise ConfigError(f"methods[{index}]: {exc}") from None
        _check_overrides(method, choice.overrides, f"methods[{index}]")
        check_hyperparameters(method, hyperparameters, f"methods[{index}]")
    _check_distinct_rows(methods)
    seeds = raw.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"seeds: expected a non-empty list of integers, got {seeds!r}")
    for index, seed in enumerate(seeds):
        SEED.check(seed, f"seeds[{index}]")
    sections = {key: _build_section(cls, raw.get(key), key) for key, cls in SECTIONS.items()}
    train, data, evaluation = sections["train"], sections["data"], sections["eval"]
    _resolve_chat_template_keys(evaluation, raw.get("eval") or {})
    for key in ("max_steps", "per_device_batch_size", "gradient_accumulation_steps", "max_length", "reference_batch_size"):
        _positive(getattr(train, key), f"train.{key}")
    _positive(train.learning_rate, "train.learning_rate")
    _positive(train.checkpoint_steps, "train.checkpoint_steps", allow_zero=True)
    _positive(train.warmup_ratio, "train.warmup_ratio", allow_zero=True)
    if train.warmup_ratio >= 1:
        raise ConfigError(f"train.warmup_ratio: must be < 1, got {train.warmup_ratio}")
    if train.lora is not None:
        from suite.modeling.models import add_lora  # noqa: F401  (validated when applied; check keys early)

        known = {"r", "alpha", "dropout", "target_modules"}
        extra = sorted(set(train.lora) - known)
        if extra:
            raise ConfigError(f"train.lora.{extra[0]}: unknown key; known keys: {', '.join(sorted(known))}")
        _check_lora(train.lora)
    if train.dtype not in DTYPES:
        raise ConfigError(f"train.dtype: unknown dtype {train.dtype!r}; use {', '.join(DTYPES[:-1])} or {DTYPES[-1]}")
    for key, declared in CONFIG_RANGES.items():
        section, field_name = key.split(".")
        if key != "data.heldout_fraction":
            declared.check(getattr(sections[section], field_name), key)
    _check_scheduler(train.lr_scheduler)
    if sweep and "learning_rate" in sweep and train.learning_rate is not None:
        raise ConfigError("sweep.learning_rate: train.learning_rate sets one rate for every method; remove one of them")
    if sweep and not data.validation_fraction:
        data.validation_fraction = DEFAULT_VALIDATION_FRACTION  # selection needs a validation split
    if data.validation_fraction and data.heldout_fraction + data.validation_fraction >= 1:
        raise ConfigError("data.validation_fraction: with data.heldout_fraction it leaves no training prompts")
    if not 0 < data.heldout_fraction < 1:
        raise ConfigError(f"data.heldout_fraction: must be in (0, 1), got {data.heldout_fraction}")
    _positive(data.heldout_max, "data.heldout_max")
    _positive(data.train_max, "data.train_max")
    for key in ("limit", "batch_size", "max_new_tokens"):
        _positive(getattr(evaluation, key), f"eval.{key}")
    for key in ("alignment_pairs", "generation_prompts"):
        _positive(getattr(evaluation, key), f"eval.{key}", allow_zero=True)
    from suite.evaluation.harness import check_eval_backend

    check_eval_backend(evaluation.backend)
    from suite.evaluation.judged import check_judge_config

    check_judge_config(evaluation.judge)
    evaluate_base = _check_type(raw.get("evaluate_base", True), bool, "evaluate_base")
    _check_dataset(dataset)  # last: an id is checked against the registry, the file itself in the preflight
    return ExperimentConfig(name, model, dataset, methods, seeds, data, train, evaluation, evaluate_base,
                            sweep=sweep or None, model_chat_template=chat_template)


def apply_overrides(raw: dict, assignments: list[str]) -> dict:
    """``--set train.max_steps=5`` style overrides; values are parsed as YAML (numbers, lists, null)."""
    raw = json.loads(json.dumps(raw))  # deep copy of plain data
    for assignment in assignments:
        if "=" not in assignment:
            raise ConfigError(f"--set {assignment!r}: expected key=value")
        dotted, text = assignment.split("=", 1)
        parts = dotted.strip().split(".")
        if not all(parts):
            raise ConfigError(f"--set {assignment!r}: empty key; expected key=value with a dotted key "
                              "(train.max_steps=5)")
        try:
            value = yaml.load(text, Loader=StrictYamlLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as exc:
            raise ConfigError(f"--set {dotted}: cannot parse value {text!r}: {yaml_error_text(exc)}") from None
        node = raw
        for depth, part in enumerate(parts[:-1], start=1):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {dotted}: {'.'.join(parts[:depth])} is not a mapping")
            node = child
        node[parts[-1]] = value
    return raw


def load_config(path: str | Path, assignments: list[str] = ()) -> ExperimentConfig:
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a config file")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    raw = load_yaml_file(path)
    if raw is None:
        raise ConfigError(f"{path}: the config is empty")
    return build_config(apply_overrides(raw, list(assignments)), str(path))


