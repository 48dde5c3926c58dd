"""The claims engine: a paper's table as data, our numbers for it, and a verdict for each of its claims.

A paper's tables live in ``reports/papers/*.yaml`` (one file per paper, with its source); the engine
knows no table, row or method by name. A table entry (see ``reports/papers/una.yaml``, ``paft.yaml``,
``una-online.yaml``)::

    - id: una-table2
      title: ...
      source: where the numbers come from
      recipes: {small: reports/recipes/....yaml, paper: reports/recipes/....yaml}
      left_out: {small: {<paper column>: <why that scale's recipe does not measure it>}}  # optional
      rows:                                 # paper row -> our row
        <paper row>: <our row label, "base" for the untouched model>
        <paper row>: {best_of: [<label>, ...]}        # the best of several rows, on each column
        <paper row>: {difference: [<label>, <label>]}  # the first row's value minus the second's
      columns:                              # in the order of the values
        <paper column>: {task: <task id in the recipe's leaderboard spec>}
        <paper column>: {mean_of: [<paper column>, ...]}      # e.g. the average
        <paper column>: {metric: <dotted key of metrics.json>, scale: 1, lower_is_better: false, noise: 0}
        <paper column>: {delta: hoyer | sparsity@<relative epsilon>}  # a composite's measured component delta
        <paper column>: {unmeasured: <why the suite cannot measure it>}
      values: {<paper row>: [numbers or null, one per column]}     # rows the paper gives numbers for
      claims:
        - {id: ..., text: ..., column: <paper column>, better: [<paper row>...], worse: [<paper row>...]}
        - {..., better: [...], above: <number>}       # better than a fixed value (e.g. "over 90 %")
        - {..., better: [...], worse: [...], factor: 0.5}   # better than factor × worse ("less than half")
        - {..., better: [<paper row>], equals: <number>}   # matches a published value (a validation)

**One vocabulary, one noise rule.** A claim holds when every ``better`` row beats every ``worse`` row (or
``above``) on its column: the difference d = better − factor × worse, negated where lower is better, must
be positive. Each pair's d is tested by a paired bootstrap over the documents both rows were scored on
(``suite.analysis.statistics``) where the column is a leaderboard score of two measured rows; the pair
**holds** when the 95 % interval lies above 0, is **reversed** when below, and is **within noise**
otherwise, or when |d| rounds to 0.00 (``MIN_DIFFERENCE``). Without a paired test, |d| ≤ the column's
``noise`` (``NOISE_POINTS`` for leaderboard scores, 0 for stored metrics unless the table says) is
within noise. A claim **agrees** when every pair holds, **disagrees** when any is reversed, is
**inconclusive** otherwise, and **not measured** when a pair lacks a number (or its column cannot be
measured). An ``equals`` claim (our number for a published one: a validation of the evaluation) takes d =
ours − published with the 95 % interval ± 1.96 × our standard error (the stored per-task errors; an
average's from its tasks', taken as independent); it **agrees** when the interval includes 0, **differs
beyond noise** otherwise; without a standard error, |d| ≤ the column's noise margin agrees. A task whose
documents all scored alike (0 or n of n on a 0/1 metric) has a standard error of 0 and a collapsed normal
interval: there our score's exact (Clopper-Pearson) interval is used instead. Over an average
with missing tasks, the published value compared is the mean of the published values of the tasks that ran.
An average over a column that is missing (e.g. MuSR offline) is taken over the columns that
ran and says so.
"""

from __future__ import annotations

import statistics as stats
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from suite.analysis.statistics import NEGLIGIBLE_POINTS
from suite.analysis.tables import MethodRow, Table, mean, std
from suite.core.errors import ConfigError, SuiteError
from suite.core.io import load_yaml_mapping
from suite.execution.store import BASE_ROW, RunRecord, is_number, metric_at

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPERS_DIR = REPO_ROOT / "reports" / "papers"
SCALES = ("small", "paper")
NOISE_POINTS = 1.0  # without per-document results, a leaderboard difference below this (points) is noise
# A difference that rounds to 0.00 at the tables' precision is a tie, however consistent (a model's tiny
# numerical drift on a continuous metric can be "significant" and still mean nothing).
MIN_DIFFERENCE = NEGLIGIBLE_POINTS
RESAMPLES = 2000
VERDICTS = ("agrees", "disagrees", "differs beyond noise", "inconclusive", "not measured")
TABLE_KEYS = {"id", "title", "source", "note", "recipes", "left_out", "rows", "columns", "values", "claims"}
CLAIM_KEYS = {"id", "text", "column", "better", "worse", "above", "factor", "equals"}
COLUMN_KINDS = ("task", "mean_of", "metric", "delta", "unmeasured")
COLUMN_OPTIONS = {"scale", "lower_is_better", "noise"}


# -- the paper's table ----------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    task: str | None = None
    mean_of: list = field(default_factory=list)
    metric: str | None = None
    delta: str | None = None
    unmeasured: str | None = None
    scale: float = 1.0
    lower_is_better: bool = False
    noise: float | None = None

    @property
    def score(self) -> bool:
        """A leaderboard score (a task, or a mean of tasks): tested by a paired bootstrap over documents."""
        return bool(self.task or self.mean_of)

    @property
    def noise_margin(self) -> float:
        return self.noise if self.noise is not None else NOISE_POINTS if self.score else 0.0


@dataclass
class Claim:
    id: str
    text: str
    column: str
    better: list
    worse: list
    above: float | None = None
    factor: float = 1.0
    equals: float | None = None  # a published value our number should match (within our 95 % interval)


@dataclass
class PaperTable:
    id: str
    title: str
    source: str
    note: str
    paper: dict  # the file's paper, arxiv and source
    path: Path
    recipes: dict
    rows: dict  # paper row -> our label, {best_of: [labels]} or {difference: [label, label]}
    columns: list
    values: dict  # paper row -> {column: number or None}
    claims: list
    left_out: dict = field(default_factory=dict)  # scale -> {task column: why that scale's recipe skips it}

    def at_scale(self, scale: str) -> PaperTable:
        """The table as ``scale`` measures it: the task columns its recipe leaves out become unmeasured, with
        the reason (an average over them is then taken over the columns that ran, and says so)."""
        skipped = self.left_out.get(scale) or {}
        columns = [Column(c.name, unmeasured=skipped[c.name]) if c.name in skipped else c for c in self.columns]
        return replace(self, columns=columns, left_out={})

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def task_columns(self, name: str) -> list[Column]:
        """The task columns behind ``name`` (itself, or those it averages)."""
        column = self.column(name)
        return [column] if column.task else [self.column(n) for n in column.mean_of] if column.mean_of else []

    def labels(self) -> set[str]:
        """Every row label of ours the table needs."""
        found = set()
        for target in self.rows.values():
            found.update([target] if isinstance(target, str) else next(iter(target.values())))
        return found


def _fail(path: Path, where: str, message: str):
    raise ConfigError(f"{path}: {where}: {message}")


def table_ids(papers_dir: Path = PAPERS_DIR) -> dict[str, Path]:
    """Every table id in the papers' data files, with its file."""
    found = {}
    for path in sorted(Path(papers_dir).glob("*.yaml")):
        tables = load_yaml_mapping(path).get("tables")
        if isinstance(tables, list):
            for entry in tables:
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    found.setdefault(entry["id"], path)
    return found


def _parse_column(name: str, spec, where: str, path: Path) -> Column:
    kinds = [k for k in COLUMN_KINDS if isinstance(spec, dict) and k in spec]
    if not isinstance(spec, dict) or len(kinds) != 1 or set(spec) - {kinds[0]} - COLUMN_OPTIONS:
        _fail(path, where, "expected one of {task: ID}, {mean_of: [COLUMNS]}, {metric: KEY}, {delta: MEASURE} or "
                           f"{{unmeasured: WHY}}, with options among {', '.join(sorted(COLUMN_OPTIONS))}")
    if "delta" in spec and not (spec["delta"] == "hoyer" or str(spec["delta"]).startswith("sparsity@")):
        _fail(path, f"{where}.delta", "expected hoyer or sparsity@<relative epsilon>")
    for option in ("scale", "noise"):
        if option in spec and not is_number(spec[option]):
            _fail(path, f"{where}.{option}", f"expected a number, got {spec[option]!r}")
    return Column(str(name), task=spec.get("task"), mean_of=list(spec.get("mean_of") or []), metric=spec.get("metric"),
                  delta=spec.get("delta"), unmeasured=spec.get("unmeasured"), scale=float(spec.get("scale", 1.0)),
                  lower_is_better=bool(spec.get("lower_is_better", False)), noise=spec.get("noise"))


def _parse_row(name: str, target, where: str, path: Path):
    if isinstance(target, str):
        return target
    if isinstance(target, dict) and len(target) == 1:
        kind, labels = next(iter(target.items()))
        if kind == "best_of" and isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
            return {kind: list(labels)}
        if kind == "difference" and isinstance(labels, list) and len(labels) == 2 and \
                all(isinstance(x, str) for x in labels):
            return {kind: list(labels)}
    _fail(path, f"{where}.rows.{name}", "expected a row label, {best_of: [LABELS]} or {difference: [LABEL, LABEL]}")


def _parse_claim(raw, at: str, path: Path, rows: dict, names: list[str]) -> Claim:
    if not isinstance(raw, dict):
        _fail(path, at, "expected a mapping")
    unknown = sorted(set(raw) - CLAIM_KEYS)
    if unknown:
        _fail(path, f"{at}.{unknown[0]}", f"unknown key; known: {', '.join(sorted(CLAIM_KEYS))}")
    needed = ["id", "text", "column", "better"] + ([] if "above" in raw or "equals" in raw else ["worse"])
    missing = [k for k in needed if k not in raw]
    if missing:
        _fail(path, f"{at}.{missing[0]}", "missing")
    if "above" in raw and ("worse" in raw or not is_number(raw["above"])):
        _fail(path, f"{at}.above", "a number, in place of `worse`")
    if "equals" in raw and ("worse" in raw or "above" in raw or not is_number(raw["equals"])):
        _fail(path, f"{at}.equals", "a number, in place of `worse` and `above`")
    if "factor" in raw and not (is_number(raw["factor"]) and raw["factor"] > 0):
        _fail(path, f"{at}.factor", f"expected a positive number, got {raw['factor']!r}")
    if raw["column"] not in names:
        _fail(path, f"{at}.column", f"{raw['column']!r} is not a column ({', '.join(names)})")
    sides = {}
    for side in ("better", "worse"):
        if side not in raw:
            sides[side] = []
            continue
        listed = raw[side] if isinstance(raw[side], list) else [raw[side]]
        bad = [r for r in listed if r not in rows]
        if not listed or bad:
            _fail(path, f"{at}.{side}", f"{bad[0] if bad else 'nothing'!r} is not a row of the table")
        sides[side] = list(listed)
    return Claim(str(raw["id"]), str(raw["text"]), raw["column"], sides["better"], sides["worse"],
                 float(raw["above"]) if "above" in raw else None, float(raw.get("factor", 1.0)),
                 float(raw["equals"]) if "equals" in raw else None)


def parse_table(entry: dict, paper: dict, path: Path) -> PaperTable:
    """One table entry, checked: every key known, rows/columns/values/claims consistent with each other."""
    where = f"tables[{entry.get('id')}]"
    unknown = sorted(set(entry) - TABLE_KEYS)
    if unknown:
        _fail(path, f"{where}.{unknown[0]}", f"unknown key; known: {', '.join(sorted(TABLE_KEYS))}")
    for key in ("id", "title", "rows", "columns", "values", "recipes"):
        if key not in entry:
            _fail(path, f"{where}.{key}", "missing")
    if not isinstance(entry["rows"], dict) or not entry["rows"]:
        _fail(path, f"{where}.rows", "expected a mapping of paper row -> our row label")
    if not isinstance(entry["columns"], dict) or not entry["columns"]:
        _fail(path, f"{where}.columns", "expected a mapping of paper column -> {task | mean_of | metric | delta | "
                                        "unmeasured}")
    if not isinstance(entry["recipes"], dict) or not set(entry["recipes"]) <= set(SCALES):
        _fail(path, f"{where}.recipes", f"expected a mapping with keys among {', '.join(SCALES)}")
    rows = {str(name): _parse_row(name, target, where, path) for name, target in entry["rows"].items()}
    columns = [_parse_column(name, spec, f"{where}.columns.{name}", path) for name, spec in entry["columns"].items()]
    names = [c.name for c in columns]
    for column in columns:
        for other in column.mean_of:
            if other not in names or not next(c for c in columns if c.name == other).task:
                _fail(path, f"{where}.columns.{column.name}.mean_of", f"{other!r} is not a task column of this table")
    values = {}
    if not isinstance(entry["values"], dict):
        _fail(path, f"{where}.values", "expected a mapping of paper row -> list of numbers")
    for row, numbers in entry["values"].items():
        if row not in rows:
            _fail(path, f"{where}.values.{row}", f"not a row of the table ({', '.join(rows)})")
        if not isinstance(numbers, list) or len(numbers) != len(columns) or \
                not all(n is None or is_number(n) for n in numbers):
            _fail(path, f"{where}.values.{row}", f"expected {len(columns)} numbers or nulls (one per column), "
                                                 f"got {numbers!r}")
        values[row] = dict(zip(names, (None if n is None else float(n) for n in numbers)))
    claims = [_parse_claim(raw, f"{where}.claims[{index}]", path, rows, names)
              for index, raw in enumerate(entry.get("claims") or [])]
    left_out = _parse_left_out(entry.get("left_out") or {}, f"{where}.left_out", path, entry["recipes"], columns)
    return PaperTable(entry["id"], str(entry["title"]), str(entry.get("source", "")), str(entry.get("note") or ""),
                      {k: paper.get(k) for k in ("paper", "arxiv", "source")}, path, dict(entry["recipes"]),
                      rows, columns, values, claims, left_out)


def _parse_left_out(raw, where: str, path: Path, recipes: dict, columns: list[Column]) -> dict:
    """{scale: {task column: why}}: the task columns a scale's recipe does not measure, each with its reason."""
    tasks = [c.name for c in columns if c.task]
    if not isinstance(raw, dict):
        _fail(path, where, "expected a mapping of scale -> {task column: why it is left out}")
    for scale, skipped in raw.items():
        if scale not in recipes:
            _fail(path, f"{where}.{scale}", f"not a scale with a recipe ({', '.join(recipes)})")
        if not isinstance(skipped, dict) or not skipped:
            _fail(path, f"{where}.{scale}", "expected a mapping of task column -> why it is left out")
        for name, why in skipped.items():
            if name not in tasks:
                _fail(path, f"{where}.{scale}.{name}", f"not a task column ({', '.join(tasks)})")
            if not isinstance(why, str) or not why.strip():
                _fail(path, f"{where}.{scale}.{name}", "expected the reason it is left out (text)")
    return {scale: dict(skipped) for scale, skipped in raw.items()}


def find_table(table_id: str, papers_dir: Path = PAPERS_DIR) -> PaperTable:
    known = table_ids(papers_dir)
    if table_id not in known:
        raise SuiteError(f"unknown table {table_id!r}; tables in {papers_dir}: {', '.join(sorted(known)) or 'none'}")
    path = known[table_id]
    payload = load_yaml_mapping(path)
    entry = next(t for t in payload["tables"] if isinstance(t, dict) and t.get("id") == table_id)
    return parse_table(entry, payload, path)


def recipe_path(table: PaperTable, scale: str) -> Path:
    if scale not in table.recipes:
        raise SuiteError(f"{table.id}: no {scale!r} recipe; scales: {', '.join(table.recipes) or 'none'} "
                         f"({table.path})")
    path = Path(table.recipes[scale])
    return path if path.is_absolute() else REPO_ROOT / path


def check_recipe(table: PaperTable, config) -> None:
    """Before anything runs: the recipe makes every row the table needs and its spec has every task column."""
    from suite.evaluation.leaderboard import load_leaderboard
    from suite.execution.runner import plan_runs

    labels = {run.label for run in plan_runs(config)} | ({BASE_ROW} if config.evaluate_base else set())
    lacking = sorted(table.labels() - labels)
    if lacking:
        raise ConfigError(f"{table.id}: its recipe {config.name!r} makes no row {', '.join(map(repr, lacking))} "
                          f"(rows: {', '.join(sorted(labels))})")
    tasks = [c.task for c in table.columns if c.task]
    if tasks:
        if not config.eval.leaderboard:
            raise ConfigError(f"{table.id}: its recipe {config.name!r} runs no leaderboard (eval.leaderboard)")
        spec_tasks = {t.id for t in load_leaderboard(config.eval.leaderboard).tasks}
        absent = [t for t in tasks if t not in spec_tasks]
        if absent:
            raise ConfigError(f"{table.id}: the recipe's leaderboard {config.eval.leaderboard!r} has no task "
                              f"{', '.join(map(repr, absent))}")


# -- our numbers ----------------------------------------------------------------------------------


def component_deltas(records: list[RunRecord]) -> dict[str, dict]:
    """Delta reports by component row label ('sft', 'sft-l1', 'dpo', …), as the composite runs measured them
    (``train.delta.<component>``, the component's run named in the manifest's ``components``)."""
    labels = {record.run_id: record.method for record in records}
    deltas = {}
    for record in records:
        if not record.complete:
            continue
        components = record.manifest.get("components") or {}
        for name, report in ((record.metrics.get("train") or {}).get("delta") or {}).items():
            deltas.setdefault(labels.get(components.get(name), components.get(name) or name), report)
    return deltas


def delta_measure(report: dict, measure: str) -> float | None:
    from suite.merging.delta import sparsity_at

    if measure == "hoyer":
        return report["overall"]["hoyer"]
    try:
        return sparsity_at(report, float(measure.split("@", 1)[1]))
    except (KeyError, ValueError):
        return None


@dataclass
class Measured:
    """Our table: per paper row, per column, the mean over seeds (None: not measured), std, and notes."""

    values: dict
    std: dict
    notes: dict  # (row, column) -> note (e.g. a partial average, the best of several rows)
    rows: dict  # paper row -> {column: MethodRow behind the value (a plain or best-of row)} for the paired test


class Measurer:
    """Our number for any (row label, column): from the spec table (leaderboard scores), the stored metrics
    of the label's complete runs, or the component deltas the composites measured."""

    def __init__(self, table: PaperTable, board: Table | None, records: list[RunRecord]):
        self.table, self.board = table, board
        self.by_label: dict[str, list[RunRecord]] = {}
        for record in records:
            if record.complete:
                self.by_label.setdefault(record.method, []).append(record)
        self.board_rows = {}
        for row in board.rows if board else []:
            self.board_rows.setdefault(row.method, row)
        self.deltas = component_deltas(records)

    def label_value(self, label: str, column: Column) -> tuple[float | None, float | None, str | None]:
        """(mean over seeds, sample std, note) of one of our rows on ``column``."""
        if column.unmeasured:
            return None, None, None
        if column.metric:
            runs = self.by_label.get(label) or []
            values = [metric_at(run.metrics, column.metric) for run in runs]
            values = [v * column.scale if is_number(v) else None for v in values]
            return (mean(values), std(values), None) if runs else (None, None, None)
        if column.delta:
            report = self.deltas.get(label)
            value = delta_measure(report, column.delta) if report else None
            return (None if value is None else value * column.scale), None, None
        row = self.board_rows.get(label)
        if row is None:
            return None, None, None
        if column.task:
            value = row.mean.get(column.task)
            note = f"{column.name} ran in part (some subtasks missing)" \
                if value is not None and column.task in row.missing else None
            return value, row.std.get(column.task), note
        parts = [row.mean.get(self.table.column(n).task) for n in column.mean_of]
        present = [p for p in parts if p is not None]
        if not present:
            return None, None, None
        left_out = [n for n in column.mean_of if self.table.column(n).unmeasured]
        lacking = [n for n, p in zip(column.mean_of, parts) if p is None and n not in left_out]
        in_part = [n for n, p in zip(column.mean_of, parts) if p is not None and self.table.column(n).task in row.missing]
        said = ([f"{', '.join(left_out)} not measured at this scale"] if left_out else []) + \
            ([f"{', '.join(lacking)} missing"] if lacking else []) + \
            ([f"{', '.join(in_part)} ran in part"] if in_part else [])
        spread = None
        if len(row.runs) > 1:  # the average's spread over seeds, from each seed's own average
            per_seed = []
            for run in row.runs:
                seed_parts = [run.scores.get(self.table.column(n).task) for n in column.mean_of]
                seed_parts = [p for p in seed_parts if p is not None]
                per_seed.append(stats.fmean(seed_parts) if seed_parts else None)
            spread = std(per_seed)
        return stats.fmean(present), spread, ("average of what ran: " + "; ".join(said)) if said else None

    def measure(self) -> Measured:
        values, spreads, notes, rows = {}, {}, {}, {}
        for paper_row, target in self.table.rows.items():
            values[paper_row], spreads[paper_row], rows[paper_row] = {}, {}, {}
            for column in self.table.columns:
                value, spread, note, behind = self.row_value(target, column)
                values[paper_row][column.name], spreads[paper_row][column.name] = value, spread
                rows[paper_row][column.name] = behind
                if note:
                    notes[(paper_row, column.name)] = note
        return Measured(values, spreads, notes, rows)

    def row_value(self, target, column: Column):
        """(value, std, note, the MethodRow behind it or None) of a paper row's target on ``column``."""
        if isinstance(target, str):
            value, spread, note = self.label_value(target, column)
            return value, spread, note, self.board_rows.get(target) if column.score else None
        kind, labels = next(iter(target.items()))
        found = {label: self.label_value(label, column) for label in labels}
        if kind == "difference":
            (a, _, note_a), (b, _, note_b) = found[labels[0]], found[labels[1]]
            notes = "; ".join(n for n in (note_a, note_b) if n) or None
            return (None if a is None or b is None else a - b), None, notes, None
        present = {label: result for label, result in found.items() if result[0] is not None}
        if not present:
            return None, None, None, None
        pick = (min if column.lower_is_better else max)(present, key=lambda label: present[label][0])
        value, spread, note = present[pick]
        said = f"best of {len(present)} measured rows: {pick}" + (f"; {note}" if note else "")
        return value, spread, said, self.board_rows.get(pick) if column.score else None


# -- the verdicts ---------------------------------------------------------------------------------


@dataclass
class PairResult:
    better: str
    worse: str  # a paper row, or the fixed value of an `above` claim as text
    paper_difference: float | None
    difference: float | None  # d, positive when the claim's direction holds
    interval: tuple | None  # 95 % bootstrap interval of d
    p_value: float | None
    outcome: str  # holds | reversed | within noise | not measured
    ratio: float | None = None  # better / worse, for a claim with a factor


@dataclass
class Verdict:
    claim: Claim
    paper_holds: bool | None  # None: the paper gives no numbers for it
    verdict: str  # one of VERDICTS
    pairs: list
    note: str = ""


def directed(column: Column, better, worse, factor: float):
    """d = better − factor × worse, negated where lower is better (None when a side is missing)."""
    if better is None or worse is None:
        return None
    difference = better - factor * worse
    return -difference if column.lower_is_better else difference


def outcome_of(difference: float, interval: tuple | None, noise: float) -> str:
    """The one noise rule (see the module docstring)."""
    if interval is not None:
        if abs(difference) < MIN_DIFFERENCE:
            return "within noise"
        return "holds" if interval[0] > 0 else "reversed" if interval[1] < 0 else "within noise"
    return "holds" if difference > noise else "reversed" if difference < -noise else "within noise"


def _tasks_measured(table: PaperTable, column: str, measured: Measured, rows: list[str]) -> list[str]:
    """The task ids behind ``column`` that every row in ``rows`` has (a partial average uses those)."""
    behind = [measured.rows[r][column] for r in rows]
    return [c.task for c in table.task_columns(column)
            if all(row is not None and row.mean.get(c.task) is not None for row in behind)]


def score_difference(table: PaperTable, claim: Claim, better: str, worse: str, measured: Measured, spec,
                     items: dict, resamples: int):
    """For a leaderboard-score column of two measured rows: (d over the tasks both rows have, its paired
    bootstrap interval, p) — interval and p None without per-document results; None when no task is shared."""
    from suite.analysis.statistics import compare_leaderboard

    row_b, row_w = measured.rows[better][claim.column], measured.rows[worse][claim.column]
    tasks = _tasks_measured(table, claim.column, measured, [better, worse])
    if not tasks:
        return None
    difference = stats.fmean(row_b.mean[t] for t in tasks) - stats.fmean(row_w.mean[t] for t in tasks)
    try:
        tested = compare_leaderboard(row_items(row_b, spec, items), row_items(row_w, spec, items), spec, tasks,
                                     resamples=resamples).average
    except SuiteError:
        tested = None  # no per-document results: the column's noise margin decides
    if tested is None:
        return difference, None, None
    return difference, (tested.low, tested.high), tested.p_value


def standard_error(table: PaperTable, column: Column, row) -> tuple[float | None, list[str]]:
    """Our standard error (points) of a task column, or of an average column over the tasks that ran (taken
    as independent), from the one run behind ``row``; and the task ids that ran. None with several seeds or
    no stored errors."""
    if not isinstance(row, MethodRow) or len(row.runs) != 1:
        return None, []
    run = row.runs[0]
    tasks = [c.task for c in table.task_columns(column.name) if row.mean.get(c.task) is not None]
    errors = [run.stderr.get(task) for task in tasks]
    if not tasks or any(not is_number(e) for e in errors):
        return None, tasks
    return (sum(e * e for e in errors) ** 0.5) / len(tasks), tasks


def row_items(row: MethodRow, spec, items: dict) -> dict:
    """The per-document results of a row's runs ({task: {leaf: LeafItems}}), read once per report: ``items``
    keeps them by row. Raises SuiteError when a run has none stored."""
    from suite.analysis.statistics import load_items

    if id(row) not in items:
        items[id(row)] = load_items([run.folder for run in row.runs], spec)
    return items[id(row)]


def exact_interval_when_all_alike(column: Column, row, spec, items: dict,
                                  confidence: float = 0.95) -> tuple[float, float] | None:
    """Our score's exact (Clopper-Pearson) interval, in points, for a task every one of whose n documents scored
    alike (all 0 or all 1 on a 0/1 metric): there the normal interval's standard error is 0 and the interval
    collapses to a point, although 0 of n only bounds the true rate below 1 - (alpha/2)^(1/n) (about 3.7/n).
    None when the column is not such a task (several seeds, an average, a continuous metric, a per-subtask
    normalisation)."""
    from suite.evaluation.harness import normalise

    if not (column.task and isinstance(row, MethodRow) and len(row.runs) == 1 and spec is not None):
        return None
    task = next((t for t in spec.tasks if t.id == column.task), None)
    if task is None or isinstance(task.lower, dict):
        return None
    try:
        leaves = list((row_items(row, spec, items).get(task.id) or {}).values())
    except SuiteError:
        return None  # no per-document results: the count behind the score is unknown
    key = f"{task.metrics[0]},{task.filter}"
    if not leaves or not all(key in leaf.sums and leaf.binary.get(key) for leaf in leaves):
        return None
    values = np.concatenate([leaf.sums[key] for leaf in leaves])
    n, k = len(values), int(values.sum())
    if k not in (0, n):
        return None
    tail = (1 - confidence) / 2
    low, high = (0.0, 1 - tail ** (1 / n)) if k == 0 else (tail ** (1 / n), 1.0)
    return tuple(normalise(raw, task.lower or 0.0) * 100 for raw in (low, high))


def judge_equals(table: PaperTable, claim: Claim, row: str, measured: Measured, spec=None,
                 items: dict | None = None) -> PairResult:
    """Our number against a published one (see the module docstring)."""
    column = table.column(claim.column)
    ours = measured.values[row][claim.column]
    published = claim.equals
    error, tasks = standard_error(table, column, measured.rows[row][claim.column])
    if error == 0 and ours is not None:  # every document alike: the exact interval, not a collapsed one
        exact = exact_interval_when_all_alike(column, measured.rows[row][claim.column], spec,
                                              {} if items is None else items)
        if exact is not None:
            interval = (exact[0] - published, exact[1] - published)
            outcome = "agrees" if interval[0] <= 0 <= interval[1] else "differs"
            return PairResult(row, f"published {published:g}", 0.0, ours - published, interval, None, outcome)
    if column.mean_of and tasks:  # the published mean over the tasks we measured
        by_task = {c.task: table.values.get(row, {}).get(c.name) for c in table.task_columns(column.name)}
        if len(tasks) < len(by_task) and all(by_task[t] is not None for t in tasks):
            published = stats.fmean(by_task[t] for t in tasks)
    name = f"published {published:g}"
    if ours is None or column.unmeasured:
        return PairResult(row, name, 0.0, None, None, None, "not measured")
    difference = ours - published
    if error is None:
        outcome = "agrees" if abs(difference) <= column.noise_margin else "differs"
        return PairResult(row, name, 0.0, difference, None, None, outcome)
    interval = (difference - 1.96 * error, difference + 1.96 * error)
    outcome = "agrees" if interval[0] <= 0 <= interval[1] else "differs"
    return PairResult(row, name, 0.0, difference, interval, None, outcome)


def judge_pair(table: PaperTable, claim: Claim, better: str, worse: str | None, measured: Measured, spec,
               items: dict, resamples: int) -> PairResult:
    if claim.equals is not None:
        return judge_equals(table, claim, better, measured, spec, items)
    column = table.column(claim.column)
    paper_b = table.values.get(better, {}).get(claim.column)
    ours_b = measured.values[better][claim.column]
    if worse is None:  # an `above` claim: the fixed value stands in for the worse row
        paper_w = ours_w = claim.above
        worse_name = f"{claim.above:g}"
    else:
        paper_w, ours_w = table.values.get(worse, {}).get(claim.column), measured.values[worse][claim.column]
        worse_name = worse
    paper_diff = directed(column, paper_b, paper_w, claim.factor)
    ratio = None if claim.factor == 1.0 or ours_b is None or not ours_w else ours_b / ours_w
    not_measured = PairResult(better, worse_name, paper_diff, None, None, None, "not measured", ratio)
    if column.unmeasured:
        return not_measured
    paired = worse is not None and column.score and claim.factor == 1.0 and spec is not None and \
        isinstance(measured.rows[better][claim.column], MethodRow) and \
        isinstance(measured.rows[worse][claim.column], MethodRow)
    if paired:  # leaderboard scores of two measured rows: over the tasks both have, tested pair by pair
        tested = score_difference(table, claim, better, worse, measured, spec, items, resamples)
        if tested is None:
            return not_measured
        difference, interval, p_value = tested
        difference = -difference if column.lower_is_better else difference
    else:
        difference, interval, p_value = directed(column, ours_b, ours_w, claim.factor), None, None
        if difference is None:
            return not_measured
    return PairResult(better, worse_name, paper_diff, difference, interval, p_value,
                      outcome_of(difference, interval, column.noise_margin), ratio)


def verdict_of(outcomes: set[str]) -> str:
    if "not measured" in outcomes:
        return "not measured"
    if "differs" in outcomes:
        return "differs beyond noise"
    if outcomes == {"agrees"}:
        return "agrees"
    if "reversed" in outcomes:
        return "disagrees"
    return "agrees" if outcomes == {"holds"} else "inconclusive"


def judge_claims(table: PaperTable, measured: Measured, spec, resamples: int = RESAMPLES) -> list[Verdict]:
    items: dict = {}
    verdicts = []
    for claim in table.claims:
        pairs = [judge_pair(table, claim, b, w, measured, spec, items, resamples)
                 for b in claim.better for w in (claim.worse or [None])]
        paper = [p.paper_difference for p in pairs]
        paper_holds = None if any(d is None for d in paper) else all(d > 0 for d in paper)
        if claim.equals is not None:
            paper_holds = True  # the published value itself
        sides = claim.better + claim.worse
        note = "; ".join(sorted({measured.notes[(r, claim.column)] for r in sides
                                 if (r, claim.column) in measured.notes}))
        column = table.column(claim.column)
        if column.unmeasured:
            note = column.unmeasured
        verdicts.append(Verdict(claim, paper_holds, verdict_of({p.outcome for p in pairs}), pairs, note))
    return verdicts


@dataclass
class Reproduction:
    """A table judged against a results folder: what every view of a reproduction shows."""

    table: PaperTable
    scale: str
    measured: Measured
    verdicts: list
    board: Table | None
    deltas: dict  # component label -> delta report, when the table has delta columns

    def payload(self) -> dict:
        """The verdicts as data (``reproduce-<table>.json``): every number a view shows."""
        table, measured = self.table, self.measured
        return {
            "table": table.id, "title": table.title, "scale": self.scale,
            "paper": table.values,
            "ours": measured.values,
            "ours_std": measured.std,  # sample std over seeds (several seeds only)
            "notes": sorted(f"{r}, {c}: {note}" for (r, c), note in measured.notes.items()),
            "unmeasured": {c.name: c.unmeasured for c in table.columns if c.unmeasured},
            "claims": [{"id": v.claim.id, "text": v.claim.text, "paper_holds": v.paper_holds, "verdict": v.verdict,
                        "note": v.note, "factor": v.claim.factor, "above": v.claim.above,
                        "equals": v.claim.equals,
                        "lower_is_better": table.column(v.claim.column).lower_is_better,
                        "pairs": [{"better": p.better, "worse": p.worse, "paper_difference": p.paper_difference,
                                   "difference": p.difference, "interval": p.interval, "p_value": p.p_value,
                                   "outcome": p.outcome, "ratio": p.ratio} for p in v.pairs]}
                       for v in self.verdicts],
        }


def reproduce_table(table: PaperTable, scale: str, records: list[RunRecord], board: Table | None,
                    resamples: int = RESAMPLES) -> Reproduction:
    """Our numbers for ``table`` from the stored runs (``board``: the spec table of its leaderboard columns)
    and a verdict for each of its claims."""
    measurer = Measurer(table, board, records)
    measured = measurer.measure()
    verdicts = judge_claims(table, measured, board.spec if board is not None else None, resamples)
    deltas = measurer.deltas if any(c.delta for c in table.columns) else {}
    return Reproduction(table, scale, measured, verdicts, board, deltas)


def counts(verdicts: list[Verdict]) -> dict[str, int]:
    return {v: n for v in VERDICTS if (n := sum(1 for x in verdicts if x.verdict == v))}
