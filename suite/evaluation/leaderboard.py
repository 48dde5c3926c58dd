"""Leaderboard specs: which lm-eval tasks, shots, metric, limit and normalisation — YAML files in leaderboards/.

The code knows no task by name; everything task-specific is in the spec:

```yaml
name: open-llm-v1
description: ...
comparable: true                 # false → reports say "not comparable with the leaderboard"
tasks:
  - id: mmlu                     # the column name
    lm_eval: mmlu                # an lm-eval task or group (groups expand to their leaf tasks), or a list
    num_fewshot: 5
    metric: acc                  # or a list, averaged (IFEval: prompt- and instruction-level)
    filter: none                 # lm-eval's filter name in the result key ("acc,none")
    limit: null                  # docs per leaf task (null = all)
    lower: null                  # v2 normalisation: a number, or {leaf_task: number}; null = none
    aggregate: subtasks          # or whole (below)
    chat_template: null          # on | off: pins the chat template for this task (below)
    overrides: {}                # extra keys for the generated task YAML
chat_template: off               # optional, the whole spec's pin (a task's own pin wins)
```
A spec (or a task) may pin the chat template, which ``eval.chat_template: auto`` honours: the v1
leaderboard applied none, so ``open-llm-v1`` (and the v1-style cut-down specs) say ``off``; without a pin,
``auto`` applies the tokenizer's template when it has one, as the v2 leaderboard did for chat models.
The task score is the unweighted mean over its leaf tasks (``aggregate: subtasks``: MMLU's 57 subjects
count alike; v2 normalises each subtask, then averages), or with ``aggregate: whole`` the task scored as
one — leaf scores weighted by their document counts, as lm-eval's size-weighted group reports it and the
v2 leaderboard reads GPQA and MATH — then normalised once. The leaderboard average is the mean of the
task scores, in percent; a task (or part of one) that could not run leaves the average unset.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from suite.core.errors import ConfigError
from suite.core.resources import shipped_dir

LEADERBOARD_DIR = shipped_dir("leaderboards")
TASK_KEYS = {"id", "lm_eval", "num_fewshot", "metric", "filter", "limit", "lower", "aggregate", "overrides",
             "chat_template"}
CHAT_TEMPLATE_PINS = ("on", "off")
AGGREGATES = ("subtasks", "whole")
SPEC_KEYS = {"name", "description", "comparable", "note", "tasks", "include_path", "chat_template"}


@dataclass
class TaskSpec:
    id: str
    lm_eval: list[str]
    num_fewshot: int
    metrics: list[str]
    filter: str = "none"
    limit: int | None = None
    lower: float | dict | None = None
    overrides: dict = field(default_factory=dict)
    aggregate: str = "subtasks"  # "whole": one score over all the task's documents (see the module doc)
    chat_template: str | None = None  # "on" / "off": this task's pin, honoured by eval.chat_template auto

    def lower_for(self, leaf: str) -> float | None:
        if isinstance(self.lower, dict):
            return self.lower.get(leaf)
        return self.lower


@dataclass
class LeaderboardSpec:
    name: str
    description: str
    comparable: bool
    tasks: list[TaskSpec]
    path: Path
    note: str = ""
    include_path: Path | None = None  # a folder of extra (local) lm-eval task YAMLs
    chat_template: str | None = None  # "on" / "off": the spec's pin, honoured by eval.chat_template auto

    def template_pin(self, task: TaskSpec) -> str | None:
        """The pin ``auto`` honours for ``task``: its own, else the spec's, else None."""
        return task.chat_template or self.chat_template


def list_leaderboards() -> list[str]:
    return sorted(p.stem for p in LEADERBOARD_DIR.glob("*.yaml"))


def _fail(path, key, message):
    raise ConfigError(f"{path}: {key}: {message}")


def _task(raw, index: int, path: Path) -> TaskSpec:
    where = f"tasks[{index}]"
    if not isinstance(raw, dict):
        _fail(path, where, "expected a mapping")
    unknown = sorted(set(raw) - TASK_KEYS)
    if unknown:
        _fail(path, f"{where}.{unknown[0]}", f"unknown key; known: {', '.join(sorted(TASK_KEYS))}")
    for key in ("id", "lm_eval", "num_fewshot", "metric"):
        if key not in raw:
            _fail(path, f"{where}.{key}", "missing")
    names = raw["lm_eval"] if isinstance(raw["lm_eval"], list) else [raw["lm_eval"]]
    if not names or not all(isinstance(n, str) and n for n in names):
        _fail(path, f"{where}.lm_eval", "expected a task name or a list of task names")
    metrics = raw["metric"] if isinstance(raw["metric"], list) else [raw["metric"]]
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        _fail(path, f"{where}.metric", f"expected a metric name or a list of names, got {raw['metric']!r}")
    shots = raw["num_fewshot"]
    if not isinstance(shots, int) or isinstance(shots, bool) or shots < 0:
        _fail(path, f"{where}.num_fewshot", f"expected an integer >= 0, got {shots!r}")
    limit = raw.get("limit")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0):
        _fail(path, f"{where}.limit", f"expected a positive integer or null, got {limit!r}")
    lower = raw.get("lower")
    if lower is not None and not isinstance(lower, (int, float, dict)):
        _fail(path, f"{where}.lower", f"expected a number or a mapping, got {lower!r}")
    overrides = raw.get("overrides") or {}
    if not isinstance(overrides, dict):
        _fail(path, f"{where}.overrides", "expected a mapping")
    aggregate = raw.get("aggregate", "subtasks")
    if aggregate not in AGGREGATES:
        _fail(path, f"{where}.aggregate", f"expected one of {', '.join(AGGREGATES)}, got {aggregate!r}")
    if aggregate == "whole" and isinstance(lower, dict):
        _fail(path, f"{where}.lower", "a task scored whole has one lower bound, not one per subtask")
    pin = _template_pin(raw.get("chat_template"), path, f"{where}.chat_template")
    return TaskSpec(str(raw["id"]), names, shots, metrics, str(raw.get("filter", "none")), limit, lower, overrides,
                    aggregate, pin)


def _template_pin(value, path: Path, key: str) -> str | None:
    """``on`` / ``off`` (YAML's true / false read as those) or None."""
    if value is None:
        return None
    value = {True: "on", False: "off"}.get(value, value) if isinstance(value, bool) else value
    if value not in CHAT_TEMPLATE_PINS:
        _fail(path, key, f"expected on or off, got {value!r}")
    return value


def load_leaderboard(name_or_path: str) -> LeaderboardSpec:
    """A spec by name (``leaderboards/<name>.yaml``) or by path."""
    path = Path(name_or_path)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = LEADERBOARD_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise ConfigError(f"eval.leaderboard: unknown leaderboard {name_or_path!r}; available: "
                              f"{', '.join(list_leaderboards())} (or a path to a spec YAML)")
    from suite.core.io import load_yaml_mapping

    raw = load_yaml_mapping(path)  # one-line errors naming the file: bad encoding, bad YAML, duplicate keys
    unknown = sorted(set(raw) - SPEC_KEYS)
    if unknown:
        _fail(path, unknown[0], f"unknown key; known: {', '.join(sorted(SPEC_KEYS))}")
    if not isinstance(raw.get("tasks"), list) or not raw["tasks"]:
        _fail(path, "tasks", "expected a non-empty list")
    if not isinstance(raw.get("comparable"), bool):
        _fail(path, "comparable", "expected true or false")
    tasks = [_task(t, i, path) for i, t in enumerate(raw["tasks"])]
    ids = [t.id for t in tasks]
    if len(set(ids)) != len(ids):
        _fail(path, "tasks", f"duplicate task ids in {ids}")
    include = raw.get("include_path")
    return LeaderboardSpec(
        name=str(raw.get("name", path.stem)),
        description=str(raw.get("description", "")),
        comparable=raw["comparable"],
        tasks=tasks,
        path=path,
        note=str(raw.get("note", "")),
        include_path=(path.parent / include).resolve() if include else None,
        chat_template=_template_pin(raw.get("chat_template"), path, "chat_template"),
    )
