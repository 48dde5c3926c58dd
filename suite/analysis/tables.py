"""The one aggregation of stored runs: a row per run, a row per method over its seeds, each row's
difference from the base model's row and, on request, whether that difference is significant.

Every report is a view of a ``Table`` (``suite.reporting``: report.md, leaderboard Markdown / CSV / HTML /
LaTeX, the plots, the claims of ``suite.analysis.claims``). Two column sets share the machinery:

- ``folder_table``: what a results folder's runs stored — every eval ``task/metric`` (fractions in [0, 1]),
  the stored average (percent, the Open LLM Leaderboard's 0–100 convention), the alignment metrics and
  the training runtime; ``alignsuite report`` shows it;
- ``build_table`` (from ``collect_runs``): one leaderboard spec's task scores (percent, normalised where
  the spec normalises), its average and, when tasks are missing, the partial average of the tasks that
  ran; ``alignsuite leaderboard`` shows it.

Rows are (method label, model, training data); a row's runs are its seeds. A mean or spread over seeds
is None when any seed lacks the value: a row is never scored on some of its seeds only. Runs are read
through ``suite.execution.store`` only.
"""

from __future__ import annotations

import statistics as stats
from dataclasses import dataclass, field
from pathlib import Path

from suite.core.errors import ConfigError, SuiteError
from suite.evaluation.harness import headline
from suite.evaluation.leaderboard import (
    LeaderboardSpec,
    list_leaderboards,
    load_leaderboard,
)
from suite.execution.store import (
    BASE_ROW,
    RunRecord,
    dataset_label,
    is_number,
    load_runs,
)

AVERAGE = "average"
PARTIAL = "partial_average"
RUNTIME = "train_runtime_s"
ALIGNMENT_METRICS = ("reward_accuracy", "reward_margin", "logp_accuracy", "logratio_mean")
# Judged evaluation (metrics.json "judged", suite.evaluation.judged): column -> stored key. Win rates are in
# percent (AlpacaEval's convention); columns appear only where some run was judged.
JUDGED_METRICS = {"judged_win_rate": "win_rate", "judged_lc_win_rate": "length_controlled_winrate",
                  "judged_avg_length": "avg_length_tokens"}
JUDGED_KINDS = {"judged_win_rate": "percent", "judged_lc_win_rate": "percent", "judged_avg_length": "number"}
# How a column's numbers are stored, which decides how they are shown (suite.reporting.render).
FRACTION, PERCENT, SECONDS, NUMBER = "fraction", "percent", "seconds", "number"


@dataclass
class RunRow:
    """One complete run's numbers, as stored: column -> value (None: missing), standard errors, missing tasks."""

    record: RunRecord
    scores: dict
    stderr: dict = field(default_factory=dict)
    missing: dict = field(default_factory=dict)  # task id -> leaf tasks that did not run ([] = the whole task)

    run_id = property(lambda self: self.record.run_id)
    method = property(lambda self: self.record.method)
    folder = property(lambda self: self.record.folder)
    manifest = property(lambda self: self.record.manifest)
    metrics = property(lambda self: self.record.metrics)

    @property
    def model(self) -> str:
        return str(self.record.manifest.get("model"))

    @property
    def dataset(self) -> str:
        return dataset_label(self.record.manifest.get("dataset"))

    @property
    def seed(self):
        return self.record.manifest.get("seed")

    @property
    def alignment(self) -> dict:
        return {k: v for k, v in (self.metrics.get("alignment") or {}).items() if is_number(v)}

    @property
    def alignment_pairs(self) -> dict | None:
        return self.metrics.get("alignment_pairs")


@dataclass
class MethodRow:
    """The runs of one (method, model, dataset) — its seeds — summarised."""

    method: str
    model: str
    dataset: str
    runs: list
    mean: dict  # column -> mean over seeds (None when any seed lacks it)
    std: dict  # column -> sample std over seeds (None for one seed)
    delta: dict = field(default_factory=dict)  # column -> mean − the base row's mean
    significance: dict = field(default_factory=dict)  # column -> PairedComparison vs base, or why not tested

    @property
    def seeds(self) -> list:
        return [run.seed for run in self.runs]

    @property
    def missing(self) -> list[str]:
        return sorted({task for run in self.runs for task in run.missing})


@dataclass
class Table:
    """Rows over ``columns`` (scores and averages), ``alignment_columns`` and ``extra_columns``."""

    columns: list[str]
    alignment_columns: list[str]
    extra_columns: list[str]
    kinds: dict  # column -> FRACTION | PERCENT | SECONDS | NUMBER
    rows: list  # MethodRow: base rows first, then by average
    runs: list  # RunRow in row order
    records: list = field(default_factory=list)  # every run read, complete or not
    excluded: list = field(default_factory=list)  # (run id, why it is not in the table)
    results_dirs: list = field(default_factory=list)
    spec: LeaderboardSpec | None = None

    @property
    def task_ids(self) -> list[str]:
        return [task.id for task in self.spec.tasks] if self.spec else [c for c in self.columns if c != AVERAGE]

    @property
    def value_columns(self) -> list[str]:
        return self.columns + self.alignment_columns

    def kind(self, column: str) -> str:
        return self.kinds.get(column, NUMBER)


# -- summarising ----------------------------------------------------------------------------------


def mean(values: list) -> float | None:
    return None if not values or any(v is None for v in values) else stats.fmean(values)


def std(values: list) -> float | None:
    return None if len(values) < 2 or any(v is None for v in values) else stats.stdev(values)


def summarise(runs: list[RunRow], columns: list[str]) -> list[MethodRow]:
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault((run.method, run.model, run.dataset), []).append(run)
    rows = []
    for (method, model, dataset), members in groups.items():
        members = sorted(members, key=lambda r: (str(r.seed), r.run_id))
        rows.append(MethodRow(method, model, dataset, members,
                              {c: mean([r.scores.get(c) for r in members]) for c in columns},
                              {c: std([r.scores.get(c) for r in members]) for c in columns}))
    return rows


def headline_value(values: dict):
    """A row's headline: its average, else its partial average."""
    return values.get(AVERAGE) if values.get(AVERAGE) is not None else values.get(PARTIAL)


def order_rows(rows: list[MethodRow]) -> list[MethodRow]:
    """Base first; then by average (highest first, missing last), ties by method, model and dataset."""
    def key(row: MethodRow):
        score = headline_value(row.mean)
        return (row.method != BASE_ROW, score is None, -(score or 0.0), row.method, row.model, row.dataset)

    return sorted(rows, key=key)


def runs_by_score(table: Table) -> list[RunRow]:
    """Every run on its own: base first, then by average (missing last), ties by method, seed and run id."""
    def key(run: RunRow):
        score = run.scores.get(AVERAGE)
        return (run.method != BASE_ROW, score is None, -(score or 0.0), run.method, str(run.seed), run.run_id)

    return sorted(table.runs, key=key)


def base_row_for(row: MethodRow, rows: list[MethodRow]) -> MethodRow | None:
    """The base model's row for ``row``: same model (and training data when there is such a base row)."""
    bases = [b for b in rows if b.method == BASE_ROW and b.model == row.model]
    return next((b for b in bases if b.dataset == row.dataset), bases[0] if bases else None)


def add_deltas(rows: list[MethodRow], columns: list[str]) -> None:
    for row in rows:
        base = base_row_for(row, rows)
        if base is None or base is row or row.method == BASE_ROW:
            continue
        for column in columns:
            a, b = row.mean.get(column), base.mean.get(column)
            comparable = column != PARTIAL or base.missing == row.missing  # same tasks behind both
            row.delta[column] = a - b if a is not None and b is not None and comparable else None


def add_significance(table: Table, resamples: int, seed: int = 0) -> None:
    """Each row's average (or partial average) against its base row, by a paired bootstrap over documents."""
    from suite.analysis.statistics import compare_leaderboard, load_items

    items_cache: dict[int, dict] = {}
    for row in table.rows:
        base = base_row_for(row, table.rows)
        if base is None or row.method == BASE_ROW:
            continue
        tasks = [t for t in table.task_ids if t not in set(row.missing) | set(base.missing)]
        column = AVERAGE if len(tasks) == len(table.task_ids) else PARTIAL
        try:
            for side in (row, base):
                if id(side) not in items_cache:
                    items_cache[id(side)] = load_items([r.folder for r in side.runs], table.spec)
            result = compare_leaderboard(items_cache[id(row)], items_cache[id(base)], table.spec, tasks,
                                         resamples=resamples, seed=seed)
            row.significance[column] = result.average or "; ".join(result.notes)
            # each task's own paired interval too: what a difference on that task would need to be seen
            row.significance.update({task: comparison for task, comparison in result.tasks.items() if comparison})
        except SuiteError as exc:  # runs made before per-document results were kept, or mismatched ones
            row.significance[column] = "no per-document results" if "lm_eval_samples" in str(exc) else str(exc)


def headline_column(table: Table) -> str:
    """The column Δ and significance describe: the average, or the partial one when no row has it."""
    return AVERAGE if any(row.mean.get(AVERAGE) is not None for row in table.rows) else \
        PARTIAL if PARTIAL in table.columns else AVERAGE


def identity_columns(table: Table) -> list[str]:
    """method, plus model / dataset when the rows differ in them."""
    return ["method"] + [name for name in ("model", "dataset")
                         if len({getattr(row, name) for row in table.rows}) > 1]


def _assemble(run_rows: list[RunRow], columns: list[str], alignment: list[str], extra: list[str], kinds: dict,
              **rest) -> Table:
    rows = order_rows(summarise(run_rows, columns + alignment + extra))
    add_deltas(rows, columns + alignment)
    return Table(columns, alignment, extra, kinds, rows, [run for row in rows for run in row.runs], **rest)


# -- a results folder as stored -------------------------------------------------------------------


def folder_table(records: list[RunRecord]) -> Table:
    """Every complete run's stored numbers: eval ``task/metric`` columns (tasks in first-seen order, each
    task's metrics sorted), the average, the alignment metrics (first-seen order) and the runtime."""
    complete = [record for record in records if record.complete]
    metrics_by_task: dict[str, set] = {}
    alignment: dict[str, None] = {}
    for record in complete:
        for task, scores in (record.metrics.get("eval") or {}).items():
            metrics_by_task.setdefault(task, set()).update(scores)
        alignment.update(dict.fromkeys(record.metrics.get("alignment") or {}))
    eval_columns = [f"{task}/{metric}" for task, names in metrics_by_task.items() for metric in sorted(names)]
    run_rows = []
    for record in complete:
        metrics = record.metrics
        scores = {f"{task}/{metric}": value for task, values in (metrics.get("eval") or {}).items()
                  for metric, value in values.items()}
        scores[AVERAGE] = metrics.get("eval_average")
        scores.update({name: (metrics.get("alignment") or {}).get(name) for name in alignment})
        scores[RUNTIME] = (metrics.get("train") or {}).get("runtime_s")
        scores.update(judged_scores(metrics))
        run_rows.append(RunRow(record, scores))
    judged = judged_columns(run_rows)
    kinds = {**dict.fromkeys(eval_columns, FRACTION), AVERAGE: PERCENT, RUNTIME: SECONDS, **JUDGED_KINDS}
    kinds.update({name: FRACTION if name.endswith("accuracy") else NUMBER for name in alignment})
    excluded = [(r.run_id, f"{r.status}, not scored") for r in records if not r.complete]
    return _assemble(run_rows, eval_columns + [AVERAGE] + judged, list(alignment), [RUNTIME], kinds,
                     records=list(records), excluded=excluded)


# -- one leaderboard spec -------------------------------------------------------------------------


@dataclass
class Collected:
    spec: LeaderboardSpec
    runs: list  # RunRow
    excluded: list  # (run id, reason)
    results_dirs: list
    records: list = field(default_factory=list)


def resolve_spec(name: str) -> LeaderboardSpec:
    if not (name in list_leaderboards() or Path(name).is_file()):
        raise ConfigError(f"--spec: unknown leaderboard spec {name!r}; available: {', '.join(list_leaderboards())} "
                          "(or a path to a spec YAML)")
    return load_leaderboard(name)


def spec_run_row(record: RunRecord, spec: LeaderboardSpec) -> RunRow:
    """The spec's numbers for one stored run: the headline recorded at evaluation time, else rebuilt from its
    metrics as the harness scores them (runs stored before headlines were)."""
    metrics = record.metrics
    evals = metrics.get("eval") or {}
    stored_headlines = metrics.get("eval_headline") or {}
    stored_errors = metrics.get("eval_stderr") or {}
    missing = {task: list(leaves) for task, leaves in (metrics.get("eval_missing") or {}).items()}
    scores, errors = {}, {}
    for task in spec.tasks:
        value = stored_headlines.get(task.id)
        if value is None and task.id in evals:
            fraction = headline(task, evals[task.id])
            value = None if fraction is None else 100 * fraction
        if value is None:
            missing.setdefault(task.id, [])
        scores[task.id] = value
        errors[task.id] = stored_errors.get(task.id)
    scores[AVERAGE] = metrics.get("eval_average") if not missing else None
    errors[AVERAGE] = stored_errors.get(AVERAGE)
    present = [scores[t.id] for t in spec.tasks if scores[t.id] is not None]
    partial = metrics.get("eval_partial_average")
    if partial is None and missing and present:
        partial = stats.fmean(present)
    scores[PARTIAL] = partial if missing else None
    alignment = metrics.get("alignment") or {}
    scores.update({m: alignment.get(m) if is_number(alignment.get(m)) else None for m in ALIGNMENT_METRICS})
    scores.update(judged_scores(metrics))
    return RunRow(record, scores, errors, missing)


def judged_scores(metrics: dict) -> dict:
    """The judged-evaluation columns of one run (None where it was not judged or a value is missing)."""
    judged = metrics.get("judged") or {}
    return {column: judged.get(key) if is_number(judged.get(key)) else None for column, key in JUDGED_METRICS.items()}


def judged_columns(run_rows: list) -> list[str]:
    """The judged columns some run has a value for, in JUDGED_METRICS order."""
    return [column for column in JUDGED_METRICS if any(row.scores.get(column) is not None for row in run_rows)]


def spec_source(name: str, runs: list, explicit: dict | None = None) -> str | None:
    """What to load the spec ``name`` from: a spec given by the caller, a shipped spec, or the spec file the
    runs' own config named (a local spec YAML) when it still holds that spec."""
    if explicit and name in explicit:
        return explicit[name]
    if name in list_leaderboards():
        return name
    for run in runs:
        path = ((run.manifest.get("config") or {}).get("eval") or {}).get("leaderboard")
        if isinstance(path, str) and Path(path).is_file():
            try:
                if load_leaderboard(path).name == name:
                    return path
            except SuiteError:
                continue
    return None


def collect_runs(results_dirs: list[Path], spec_name: str | None = None) -> Collected:
    """Complete runs of every folder that were evaluated on ``spec_name`` (default: the one leaderboard the
    runs share), each run once; the rest listed with why they were left out."""
    if not results_dirs:
        raise SuiteError("no results directory given")
    stored = []
    for folder in results_dirs:
        if not Path(folder).is_dir():
            raise SuiteError(f"{folder}: no such results directory")
        stored += load_runs(Path(folder))
    used = sorted({name for run in stored if run.complete and (name := run.leaderboard)})
    if spec_name is None:
        if len(used) != 1:
            raise SuiteError(f"the runs were evaluated on {', '.join(used) or 'no leaderboard'}: choose one with --spec")
        spec_name = used[0]
    spec = resolve_spec(spec_name)
    runs, excluded, seen = [], [], set()
    for run in stored:
        if run.run_id in seen:
            continue  # the same run reached through two folders
        seen.add(run.run_id)
        if not run.complete:
            excluded.append((run.run_id, f"{run.status}, not scored"))
        elif run.leaderboard != spec.name:
            excluded.append((run.run_id, f"evaluated on {run.leaderboard or 'no leaderboard'}, not {spec.name}"))
        else:
            runs.append(spec_run_row(run, spec))
    if not runs:
        raise SuiteError(f"no complete run in {', '.join(str(d) for d in results_dirs)} was evaluated on "
                         f"{spec.name} (leaderboards used: {', '.join(used) or 'none'})")
    return Collected(spec, runs, excluded, [Path(d) for d in results_dirs], stored)


def build_table(collected: Collected, significance_resamples: int = 0) -> Table:
    """The methods and runs of one spec; with ``significance_resamples`` each row's difference from the base
    row is tested (paired bootstrap over documents; needs the runs' per-document results)."""
    task_ids = [task.id for task in collected.spec.tasks]
    kinds = {**dict.fromkeys(task_ids + [AVERAGE, PARTIAL], PERCENT), **JUDGED_KINDS,
             **{m: FRACTION if m.endswith("accuracy") else NUMBER for m in ALIGNMENT_METRICS}}
    judged = judged_columns(collected.runs)
    table = _assemble(collected.runs, task_ids + [AVERAGE, PARTIAL] + judged, list(ALIGNMENT_METRICS), [], kinds,
                      records=collected.records, excluded=collected.excluded, results_dirs=collected.results_dirs,
                      spec=collected.spec)
    # The partial average is a column only when some row needs it (has no average but a partial one).
    if not any(row.mean.get(AVERAGE) is None and row.mean.get(PARTIAL) is not None for row in table.rows):
        table.columns = task_ids + [AVERAGE] + judged
    if significance_resamples:
        add_significance(table, significance_resamples)
    return table
