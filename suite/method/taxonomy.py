"""The survey's comparison table: every method the survey names and every registered method, one column per direction.

Wang et al., "A Comprehensive Survey of LLM Alignment Techniques: RLHF, RLAIF, PPO, DPO and More"
(arXiv 2407.16216) compares methods along 13 directions in four pillars (reward model, feedback, RL,
optimisation). Every registered method states its position on each (see ``suite.method.registry.TAXONOMY``).
``survey_methods.yaml`` (beside this module) lists the methods the survey names, in its order: each either
points at the registry entries that run it, or says why it does not run here and gives its own position.
The table has a row per registry entry the survey names, a row per survey method not runnable here, then a
row per registered method the survey does not name.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from suite.core.errors import ConfigError
from suite.core.io import load_yaml_mapping
from suite.method.registry import TAXONOMY, Method, Paper

# The "online" direction already says whether a method needs online sampling.
NEEDS_COLUMNS = ("feedback", "needs reference", "needs reward model")
SURVEY_COLUMNS = ("survey", "runnable", "why not")
SURVEY_FILE = Path(__file__).resolve().parent / "survey_methods.yaml"
NOT_IN_SURVEY = "—"  # the survey column of a registered method the survey does not name
FEEDBACK_TYPES = ("pairwise", "binary", "scalar", "sft", "listwise")


@dataclass(frozen=True)
class SurveyMethod:
    """One method the survey names: the registry ids that run it, or why none does (with its own tags)."""

    name: str
    paper: Paper
    registry: tuple[str, ...] = ()
    not_runnable: str | None = None
    taxonomy: dict | None = None
    feedback: str | None = None
    needs_reference: bool | None = None
    needs_reward_model: bool | None = None


_RUNNABLE_KEYS = {"name", "arxiv", "registry"}
_NOT_RUNNABLE_KEYS = {"name", "arxiv", "not_runnable", "taxonomy", "feedback", "needs_reference", "needs_reward_model"}


def _survey_entry(path: Path, index: int, entry) -> SurveyMethod:
    where = f"{path}: methods[{index}]"
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"].strip():
        raise ConfigError(f"{where}: expected a mapping with a non-empty 'name'")
    where = f"{where} ({entry['name']})"
    runnable = "registry" in entry
    if runnable == ("not_runnable" in entry):
        raise ConfigError(f"{where}: give either 'registry' (the ids that run it) or 'not_runnable' (why not)")
    allowed = _RUNNABLE_KEYS if runnable else _NOT_RUNNABLE_KEYS
    missing = sorted(allowed - {"arxiv"} - set(entry))
    unknown = sorted(set(entry) - allowed)
    if missing or unknown:
        raise ConfigError(f"{where}: " + "; ".join(part for part in (
            f"missing {', '.join(missing)}" if missing else "", f"unknown key(s) {', '.join(unknown)}" if unknown else "",
        ) if part))
    arxiv = entry.get("arxiv")
    if arxiv is not None and not isinstance(arxiv, str):
        raise ConfigError(f"{where}: 'arxiv' must be a string (quote it: \"2305.18290\")")
    paper = Paper(entry["name"], arxiv)
    if runnable:
        ids = entry["registry"]
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise ConfigError(f"{where}: 'registry' must be a non-empty list of method ids")
        return SurveyMethod(entry["name"], paper, registry=tuple(ids))
    reason = entry["not_runnable"]
    if not isinstance(reason, str) or not reason.strip():
        raise ConfigError(f"{where}: 'not_runnable' must say why (a non-empty string)")
    tags = entry["taxonomy"]
    if not isinstance(tags, dict):
        raise ConfigError(f"{where}: 'taxonomy' must map each of the 13 directions to a value")
    allowed_values = {direction: values for _, direction, values in TAXONOMY}
    if set(tags) != set(allowed_values):
        raise ConfigError(f"{where}: 'taxonomy' must give exactly the 13 directions; missing "
                          f"{sorted(set(allowed_values) - set(tags))}, unknown {sorted(set(tags) - set(allowed_values))}")
    for direction, value in tags.items():
        if value not in allowed_values[direction]:
            raise ConfigError(f"{where}: taxonomy {direction}={value!r}; allowed: {', '.join(allowed_values[direction])}")
    if entry["feedback"] not in FEEDBACK_TYPES:
        raise ConfigError(f"{where}: feedback {entry['feedback']!r}; allowed: {', '.join(FEEDBACK_TYPES)}")
    for key in ("needs_reference", "needs_reward_model"):
        if not isinstance(entry[key], bool):
            raise ConfigError(f"{where}: {key} must be true or false")
    return SurveyMethod(entry["name"], paper, not_runnable=" ".join(reason.split()), taxonomy=dict(tags),
                        feedback=entry["feedback"], needs_reference=entry["needs_reference"],
                        needs_reward_model=entry["needs_reward_model"])


def load_survey(path: Path = SURVEY_FILE) -> list[SurveyMethod]:
    """The survey's methods from ``path``; one ConfigError naming the file, the entry and the key when
    anything is malformed, or when a registry id is claimed by two entries."""
    path = Path(path)
    payload = load_yaml_mapping(path, "a mapping with 'methods'", kind="survey file")
    entries = payload.get("methods")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: 'methods' must be a non-empty list")
    survey = [_survey_entry(path, index, entry) for index, entry in enumerate(entries)]
    claimed: dict[str, str] = {}
    for method in survey:
        for method_id in method.registry:
            if method_id in claimed:
                raise ConfigError(f"{path}: registry id {method_id!r} is listed under both "
                                  f"{claimed[method_id]!r} and {method.name!r}")
            claimed[method_id] = method.name
    return survey


def taxonomy_columns() -> list[str]:
    return ["method", *(direction for _, direction, _ in TAXONOMY), *NEEDS_COLUMNS, *SURVEY_COLUMNS, "paper"]


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _registry_row(method: Method, survey_name: str) -> dict:
    row = {"method": method.id}
    row.update({direction: method.taxonomy[direction] for _, direction, _ in TAXONOMY})
    row.update({
        "feedback": method.feedback,
        "needs reference": _yes_no(method.needs_reference),
        "needs reward model": _yes_no(method.needs_reward_model),
        "survey": survey_name,
        "runnable": "yes",
        "why not": "",
        "paper": method.paper.cite(),
    })
    return row


def _not_runnable_row(method: SurveyMethod) -> dict:
    row = {"method": method.name}
    row.update({direction: method.taxonomy[direction] for _, direction, _ in TAXONOMY})
    row.update({
        "feedback": method.feedback,
        "needs reference": _yes_no(method.needs_reference),
        "needs reward model": _yes_no(method.needs_reward_model),
        "survey": method.name,
        "runnable": "no",
        "why not": method.not_runnable,
        "paper": method.paper.cite(),
    })
    return row


def taxonomy_rows(methods: list[Method], survey: list[SurveyMethod] | None = None) -> list[dict]:
    """One dict per row with the columns of :func:`taxonomy_columns`: the survey's methods in its order (a row
    per registry entry that runs one, or one row saying why it does not run here), then the registered
    methods the survey does not name (survey column "—"). ``survey`` defaults to ``survey_methods.yaml``;
    a registry id it names that is not registered is a ConfigError."""
    survey = load_survey() if survey is None else survey
    by_id = {method.id: method for method in methods}
    rows, named = [], set()
    for entry in survey:
        if entry.not_runnable is not None:
            rows.append(_not_runnable_row(entry))
            continue
        for method_id in entry.registry:
            if method_id not in by_id:
                raise ConfigError(f"{SURVEY_FILE.name}: {entry.name!r} names method {method_id!r}, which is not "
                                  f"registered; registered: {', '.join(sorted(by_id))}")
            rows.append(_registry_row(by_id[method_id], entry.name))
            named.add(method_id)
    rows += [_registry_row(method, NOT_IN_SURVEY) for method in methods if method.id not in named]
    return rows


def render_markdown(rows: list[dict]) -> str:
    columns = taxonomy_columns()
    pillars = {direction: pillar for pillar, direction, _ in TAXONOMY}
    header = [f"{c} ({pillars[c]})" if c in pillars else c for c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(row[c]).replace("|", "\\|") for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def render_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=taxonomy_columns(), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def render_text(rows: list[dict]) -> str:
    """An aligned plain-text table for the terminal; the long columns (paper, why not) are left out and the
    reasons for the rows not runnable here follow the table as notes."""
    columns = [c for c in taxonomy_columns() if c not in ("paper", "why not")]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    lines = ["  ".join(c.ljust(widths[c]) for c in columns)]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in columns) for r in rows]
    reasons = [f"  {r['method']}: {r['why not']}" for r in rows if r["runnable"] != "yes"]
    if reasons:
        lines += ["", "not runnable here:", *reasons]
    return "\n".join(line.rstrip() for line in lines) + "\n"


RENDERERS = {"text": render_text, "md": render_markdown, "csv": render_csv}
