"""Leaderboard tables from stored runs: ``alignsuite leaderboard DIR... --spec open-llm-v1``.

Reads the complete runs of one or more results folders that were evaluated on the spec (others are
listed as excluded, never mixed in) and writes, next to each other:

- ``leaderboard-<spec>.md``: the methods table (mean ± sample std over seeds, the base model's row and
  each row's difference from it, with whether that difference is significant), the runs table (each
  run's scores ± the lm-eval standard error), alignment metrics with bootstrap intervals, missing tasks;
- ``leaderboard-<spec>.csv`` (one row per method) and ``leaderboard-<spec>-runs.csv`` (one per run);
- ``leaderboard-<spec>.html``: both tables, sortable by clicking a header, with the plots embedded —
  one self-contained file (inline CSS, JS and images; nothing is fetched);
- ``leaderboard-<spec>.tex``: the methods table as a booktabs ``tabular``.

Rows are runs: (method label, model, training data, seed). Scores are the spec's task numbers in percent
(normalised where the spec normalises). A task the run could not evaluate in full is shown as missing
and the average is left empty, with the mean of the tasks that did run given separately as a partial
average. Every number comes from the runs' files (see ``suite.reporting.report`` for the store's layout).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import statistics as stats
from dataclasses import dataclass, field
from pathlib import Path

from suite.core.errors import ConfigError, SuiteError
from suite.core.io import write_bytes_atomic
from suite.evaluation.harness import headline
from suite.evaluation.leaderboard import (
    LeaderboardSpec,
    list_leaderboards,
    load_leaderboard,
)
from suite.reporting.report import (
    BASE_METHOD,
    STATUS_COMPLETE,
    dataset_label,
    load_runs,
)

AVERAGE = "average"
PARTIAL = "partial_average"
FORMATS = ("md", "csv", "html", "tex")
ALIGNMENT_METRICS = ("reward_accuracy", "reward_margin", "logp_accuracy", "logratio_mean")
ALIGNMENT_TITLES = {"reward_accuracy": "reward accuracy", "reward_margin": "reward margin",
                    "logp_accuracy": "log-prob accuracy", "logratio_mean": "KL proxy (mean Δ)"}


@dataclass
class RunScores:
    """One complete run's numbers on the spec (percent), as stored."""

    run_id: str
    method: str
    model: str
    dataset: str
    seed: object
    folder: Path
    scores: dict  # task id or "average" -> percent or None (missing)
    stderr: dict  # same keys -> standard error in percent, or None (not recorded)
    missing: dict  # task id -> leaf tasks that did not run ([] = the whole task)
    partial_average: float | None
    alignment: dict
    alignment_pairs: dict | None


@dataclass
class Collected:
    spec: LeaderboardSpec
    runs: list
    excluded: list  # (run id, reason)
    results_dirs: list


@dataclass
class MethodRow:
    """Runs of one (method, model, dataset) — its seeds — summarised."""

    method: str
    model: str
    dataset: str
    runs: list
    mean: dict  # column -> mean over seeds (None when any seed lacks it)
    std: dict  # column -> sample std over seeds (None for one seed)
    delta: dict = field(default_factory=dict)  # column -> mean − the base row's mean
    significance: dict = field(default_factory=dict)  # column -> PairedComparison vs base, or a note

    @property
    def seeds(self) -> list:
        return [run.seed for run in self.runs]

    @property
    def missing(self) -> list[str]:
        return sorted({task for run in self.runs for task in run.missing})


@dataclass
class LeaderboardTable:
    spec: LeaderboardSpec
    rows: list  # MethodRow, base rows first, then by average
    runs: list  # RunScores in row order
    excluded: list
    results_dirs: list

    @property
    def task_ids(self) -> list[str]:
        return [task.id for task in self.spec.tasks]

    @property
    def columns(self) -> list[str]:
        """Task ids, the average, and the partial average when some row needs it."""
        partial = any(row.mean.get(AVERAGE) is None and row.mean.get(PARTIAL) is not None for row in self.rows)
        return self.task_ids + [AVERAGE] + ([PARTIAL] if partial else [])


# -- reading --------------------------------------------------------------------------------------


def resolve_spec(name: str) -> LeaderboardSpec:
    if not (name in list_leaderboards() or Path(name).is_file()):
        raise ConfigError(f"--spec: unknown leaderboard spec {name!r}; available: {', '.join(list_leaderboards())} "
                          "(or a path to a spec YAML)")
    return load_leaderboard(name)


def run_scores(run, spec: LeaderboardSpec) -> RunScores:
    """The spec's numbers for one stored run: the headline recorded at evaluation time, else rebuilt from its
    metrics as the harness scores them (runs stored before headlines were)."""
    metrics = run.metrics
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
    errors[PARTIAL] = None
    alignment = {k: v for k, v in (metrics.get("alignment") or {}).items() if isinstance(v, (int, float))}
    return RunScores(run.run_id, run.method, str(run.manifest.get("model")), dataset_label(run.manifest.get("dataset")),
                     run.manifest.get("seed"), run.folder, scores, errors, missing, partial, alignment,
                     metrics.get("alignment_pairs"))


def _run_leaderboard(run) -> str | None:
    settings = (run.metrics or {}).get("eval_settings") or {}
    return run.manifest.get("leaderboard") or settings.get("leaderboard")


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
    used = sorted({name for run in stored if run.status == STATUS_COMPLETE and (name := _run_leaderboard(run))})
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
        if run.status != STATUS_COMPLETE:
            excluded.append((run.run_id, f"{run.status}, not scored"))
        elif _run_leaderboard(run) != spec.name:
            excluded.append((run.run_id, f"evaluated on {_run_leaderboard(run) or 'no leaderboard'}, not {spec.name}"))
        else:
            runs.append(run_scores(run, spec))
    if not runs:
        raise SuiteError(f"no complete run in {', '.join(str(d) for d in results_dirs)} was evaluated on "
                         f"{spec.name} (leaderboards used: {', '.join(used) or 'none'})")
    return Collected(spec, runs, excluded, [Path(d) for d in results_dirs])


# -- summarising ----------------------------------------------------------------------------------


def _mean(values: list) -> float | None:
    return None if not values or any(v is None for v in values) else stats.fmean(values)


def _std(values: list) -> float | None:
    return None if len(values) < 2 or any(v is None for v in values) else stats.stdev(values)


def summarise(runs: list[RunScores], columns: list[str]) -> list[MethodRow]:
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault((run.method, run.model, run.dataset), []).append(run)
    rows = []
    for (method, model, dataset), members in groups.items():
        members = sorted(members, key=lambda r: (str(r.seed), r.run_id))
        mean = {c: _mean([r.scores.get(c) for r in members]) for c in columns}
        std = {c: _std([r.scores.get(c) for r in members]) for c in columns}
        for metric in ALIGNMENT_METRICS:
            mean[metric] = _mean([r.alignment.get(metric) for r in members])
            std[metric] = _std([r.alignment.get(metric) for r in members])
        rows.append(MethodRow(method, model, dataset, members, mean, std))
    return rows


def base_row_for(row: MethodRow, rows: list[MethodRow]) -> MethodRow | None:
    """The base model's row for ``row``: same model (and training data when there is such a base row)."""
    bases = [b for b in rows if b.method == BASE_METHOD and b.model == row.model]
    return next((b for b in bases if b.dataset == row.dataset), bases[0] if bases else None)


def add_deltas(rows: list[MethodRow], columns: list[str]) -> None:
    for row in rows:
        base = base_row_for(row, rows)
        if base is None or base is row or row.method == BASE_METHOD:
            continue
        for column in columns + list(ALIGNMENT_METRICS):
            a, b = row.mean.get(column), base.mean.get(column)
            comparable = column != PARTIAL or base.missing == row.missing  # same tasks behind both
            row.delta[column] = a - b if a is not None and b is not None and comparable else None


def add_significance(table: LeaderboardTable, resamples: int, seed: int = 0) -> None:
    """Each row's average (or partial average) against its base row, by a paired bootstrap over documents."""
    from suite.analysis.statistics import compare_leaderboard, load_items

    items_cache: dict[int, dict] = {}
    for row in table.rows:
        base = base_row_for(row, table.rows)
        if base is None or row.method == BASE_METHOD:
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
        except SuiteError as exc:  # runs made before per-document results were kept, or mismatched ones
            row.significance[column] = "no per-document results" if "lm_eval_samples" in str(exc) else str(exc)


def order_rows(rows: list[MethodRow]) -> list[MethodRow]:
    def key(row: MethodRow):
        score = row.mean.get(AVERAGE)
        if score is None:
            score = row.mean.get(PARTIAL)
        return (row.method != BASE_METHOD, score is None, -(score or 0.0), row.method, row.model, row.dataset)

    return sorted(rows, key=key)


def build_table(collected: Collected, significance_resamples: int = 0) -> LeaderboardTable:
    """The methods and runs tables; with ``significance_resamples`` each row's difference from the base row
    is tested (paired bootstrap over documents; needs the runs' per-document results)."""
    provisional = LeaderboardTable(collected.spec, [], collected.runs, collected.excluded, collected.results_dirs)
    columns = provisional.task_ids + [AVERAGE, PARTIAL]
    rows = order_rows(summarise(collected.runs, columns))
    add_deltas(rows, columns)
    runs = [run for row in rows for run in row.runs]
    table = LeaderboardTable(collected.spec, rows, runs, collected.excluded, collected.results_dirs)
    if significance_resamples:
        add_significance(table, significance_resamples)
    return table


# -- cell text ------------------------------------------------------------------------------------


def fmt(value, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def column_title(column: str) -> str:
    return {AVERAGE: "Average", PARTIAL: "Partial avg"}.get(column, column)


def summary_cell(row: MethodRow, column: str, plus_minus: str = "±") -> str:
    if row.mean.get(column) is None:
        return "missing" if column in row.missing else "—"
    text = fmt(row.mean[column])
    if row.std.get(column) is not None:
        text += f" {plus_minus} {fmt(row.std[column])}"
    return text + (" (partial)" if column in row.missing else "")


def run_cell(run: RunScores, column: str) -> str:
    value = run.scores.get(column)
    if value is None:
        return "missing" if column in run.missing else "—"
    error = run.stderr.get(column)
    return fmt(value) + (f" ± {fmt(error)}" if error is not None else "") + \
        (" (partial)" if column in run.missing else "")


def delta_cell(row: MethodRow, column: str) -> str:
    if row.method == BASE_METHOD:
        return "(base)"
    return fmt(row.delta.get(column), signed=True)


def significance_cell(row: MethodRow, column: str) -> str:
    result = row.significance.get(column)
    if result is None:
        return "—"
    if isinstance(result, str):
        return f"n/a ({result})"
    return f"{result.verdict_text()} (p {result.p_text()}, [{result.low:+.2f}, {result.high:+.2f}])"


def headline_column(table: LeaderboardTable) -> str:
    """The column the Δ and significance columns describe: the average, or the partial one when no row has it."""
    return AVERAGE if any(row.mean.get(AVERAGE) is not None for row in table.rows) else \
        PARTIAL if PARTIAL in table.columns else AVERAGE


def identity_columns(table: LeaderboardTable) -> list[str]:
    """method, plus model / dataset when the rows differ in them."""
    shown = ["method"]
    for name in ("model", "dataset"):
        if len({getattr(row, name) for row in table.rows}) > 1:
            shown.append(name)
    return shown


def summary_rows(table: LeaderboardTable, plus_minus: str = "±") -> tuple[list[str], list[list[str]]]:
    focus = headline_column(table)
    ids = identity_columns(table)
    header = ids + ["seeds"] + [column_title(c) for c in table.columns] + [f"Δ {column_title(focus)} vs base"]
    with_significance = any(row.significance for row in table.rows)
    if with_significance:
        header.append("significant?")
    body = []
    for row in table.rows:
        cells = [str(getattr(row, name)) for name in ids] + [str(len(row.runs))]
        cells += [summary_cell(row, c, plus_minus) for c in table.columns] + [delta_cell(row, focus)]
        if with_significance:
            cells.append("—" if row.method == BASE_METHOD else significance_cell(row, focus))
        body.append(cells)
    return header, body


def delta_rows(table: LeaderboardTable) -> tuple[list[str], list[list[str]]]:
    columns = [c for c in table.columns]
    header = ["method"] + (["model"] if "model" in identity_columns(table) else []) + \
        [f"Δ {column_title(c)}" for c in columns]
    body = []
    for row in table.rows:
        if row.method == BASE_METHOD:
            continue
        body.append([row.method] + ([row.model] if "model" in identity_columns(table) else []) +
                    [delta_cell(row, c) for c in columns])
    return header, body


def runs_rows(table: LeaderboardTable) -> tuple[list[str], list[list[str]]]:
    header = ["run", "method", "model", "dataset", "seed"] + [column_title(c) for c in table.columns]
    body = [[run.run_id, run.method, run.model, run.dataset, str(run.seed)] +
            [run_cell(run, c) for c in table.columns] for run in table.runs]
    return header, body


def alignment_rows(table: LeaderboardTable, resamples: int = 2000) -> tuple[list[str], list[list[str]]]:
    """Alignment metrics per row: one run → value [95 % bootstrap interval over held-out pairs];
    several seeds → mean ± std over seeds."""
    from suite.analysis.statistics import alignment_intervals

    header = ["method"] + [ALIGNMENT_TITLES[m] for m in ALIGNMENT_METRICS]
    body = []
    for row in table.rows:
        cells = [row.method]
        intervals = {}
        if len(row.runs) == 1 and row.runs[0].alignment_pairs:
            intervals = alignment_intervals(row.runs[0].alignment_pairs, resamples=resamples)
        for metric in ALIGNMENT_METRICS:
            if row.mean.get(metric) is None:
                cells.append("—")
            elif metric in intervals:
                ci = intervals[metric]
                cells.append(f"{row.mean[metric]:.3f} [{ci.low:.3f}, {ci.high:.3f}]")
            elif row.std.get(metric) is not None:
                cells.append(f"{row.mean[metric]:.3f} ± {row.std[metric]:.3f}")
            else:
                cells.append(f"{row.mean[metric]:.3f}")
        body.append(cells)
    return header, body


def missing_notes(table: LeaderboardTable) -> list[str]:
    notes: dict[str, set] = {}
    for run in table.runs:
        for task, leaves in run.missing.items():
            text = f"{task}: " + (f"{', '.join(leaves)} did not run" if leaves else "did not run")
            notes.setdefault(text, set()).add(run.run_id)
    return [f"{text} ({len(ids)} run{'s' if len(ids) > 1 else ''})" for text, ids in sorted(notes.items())]


def settings_notes(table: LeaderboardTable) -> list[str]:
    """The evaluation settings the runs recorded (harness version, batch size, chat template, shots, data)."""
    from suite.core.io import read_json_object

    seen: dict[str, set] = {}
    for run in table.runs:
        metrics = read_json_object(run.folder / "metrics.json")
        settings = metrics.get("eval_settings") or {}
        for key in ("lm_eval_version", "batch_size", "apply_chat_template", "fewshot_as_multiturn", "data_source"):
            if key in settings:
                seen.setdefault(key, set()).add(str(settings[key]))
        shots = {task: spec.get("num_fewshot") for task, spec in (settings.get("tasks") or {}).items()}
        if shots:
            seen.setdefault("num_fewshot", set()).add(", ".join(f"{t} {n}" for t, n in shots.items()))
        limits = {task: spec.get("limit") for task, spec in (settings.get("tasks") or {}).items()}
        if any(v is not None for v in limits.values()):
            seen.setdefault("limit", set()).add(", ".join(f"{t} {n}" for t, n in limits.items()))
    lines = []
    for key, values in seen.items():
        flag = " **(differs between runs)**" if len(values) > 1 else ""
        lines.append(f"{key}: {' | '.join(sorted(values))}{flag}")
    return lines


# -- renderers ------------------------------------------------------------------------------------


def _md_escape(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(_md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows])


def intro_lines(table: LeaderboardTable) -> list[str]:
    spec = table.spec
    lines = [f"Leaderboard `{spec.name}`: {spec.description}.", ""]
    if not spec.comparable:
        lines += ["> **These scores are NOT comparable with the Open LLM Leaderboard**: the spec departs from its "
                  "settings (tasks, shots, limits). Compare them only with runs of the same spec.", ""]
    if spec.note:
        lines += [f"Note: {spec.note}", ""]
    lines += [f"Results from {', '.join(f'`{d}`' for d in table.results_dirs)}. Scores in percent"
              + (" (normalised as the leaderboard does)" if any(t.lower is not None for t in spec.tasks) else "")
              + "; `x ± y` in the methods table is the mean ± sample std over seeds, in the runs table the score ± "
              "the standard error over documents."]
    return lines


def render_markdown(table: LeaderboardTable) -> str:
    focus = column_title(headline_column(table))
    sections = [f"# Leaderboard: {table.spec.name}", "\n".join(intro_lines(table)),
                "## Methods", md_table(*summary_rows(table)),
                f"Δ: difference from the base model's row (same model). `significant?`: paired bootstrap of the "
                f"{focus.lower()} over the documents both were scored on (95 % interval excludes 0)."]
    header, body = delta_rows(table)
    if body:
        sections += ["## Difference from the base model, per task", md_table(header, body)]
    sections += ["## Runs", md_table(*runs_rows(table)),
                 "## Alignment metrics (held-out pairs)", md_table(*alignment_rows(table)),
                 "One run: value [95 % bootstrap interval over the held-out pairs]; several seeds: mean ± std."]
    notes = missing_notes(table)
    sections += ["## Missing tasks", "\n".join(f"- {n}" for n in notes) if notes else "None: every task ran in full."]
    settings = settings_notes(table)
    if settings:
        sections += ["## Evaluation settings (as recorded by the runs)", "\n".join(f"- {s}" for s in settings)]
    if table.excluded:
        sections += ["## Runs left out", "\n".join(f"- `{run_id}`: {why}" for run_id, why in table.excluded)]
    return "\n\n".join(sections) + "\n"


def render_csv(table: LeaderboardTable) -> str:
    """One row per method row: mean, std over seeds and difference from base per column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = table.columns + list(ALIGNMENT_METRICS)
    writer.writerow(["method", "model", "dataset", "seeds"] +
                    [f"{c}{suffix}" for c in columns for suffix in ("", "_std", "_delta")] + ["missing"])
    for row in table.rows:
        cells = [row.method, row.model, row.dataset, len(row.runs)]
        for column in columns:
            cells += [_csv_number(row.mean.get(column)), _csv_number(row.std.get(column)),
                      _csv_number(row.delta.get(column))]
        writer.writerow(cells + [";".join(row.missing)])
    return out.getvalue()


def render_runs_csv(table: LeaderboardTable) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = table.columns
    writer.writerow(["run_id", "method", "model", "dataset", "seed", "folder"] +
                    [f"{c}{suffix}" for c in columns for suffix in ("", "_stderr")] + list(ALIGNMENT_METRICS) +
                    ["missing"])
    for run in table.runs:
        cells = [run.run_id, run.method, run.model, run.dataset, run.seed, str(run.folder)]
        for column in columns:
            cells += [_csv_number(run.scores.get(column)), _csv_number(run.stderr.get(column))]
        cells += [_csv_number(run.alignment.get(m)) for m in ALIGNMENT_METRICS]
        writer.writerow(cells + [";".join(sorted(run.missing))])
    return out.getvalue()


def _csv_number(value) -> str:
    return "" if value is None else repr(float(value))


LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def render_latex(table: LeaderboardTable) -> str:
    """The methods table as a booktabs tabular (\\usepackage{booktabs})."""
    header, body = summary_rows(table, plus_minus="$\\pm$")
    header = [h for h in header if h != "significant?"]
    keep = len(header)
    align = "l" * len(identity_columns(table)) + "r" * (keep - len(identity_columns(table)))
    lines = [f"% alignsuite leaderboard: {latex_escape(table.spec.name)} (needs \\usepackage{{booktabs}})",
             "\\begin{table}[t]", "\\centering", "\\small", f"\\begin{{tabular}}{{{align}}}", "\\toprule",
             " & ".join(_latex_cell(h) for h in header) + " \\\\", "\\midrule"]
    for row in body:
        lines.append(" & ".join(_latex_cell(c) for c in row[:keep]) + " \\\\")
    caption = (f"{latex_escape(table.spec.name)}: scores in percent, mean $\\pm$ sample std over seeds; "
               "$\\Delta$ against the base model.")
    if not table.spec.comparable:
        caption += " Not comparable with the Open LLM Leaderboard."
    lines += ["\\bottomrule", "\\end{tabular}", f"\\caption{{{caption}}}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def _latex_cell(text: str) -> str:
    """Escaped cell text; the ± already written as $\\pm$ stays math, Δ becomes $\\Delta$."""
    parts = text.split("$\\pm$")
    return "$\\pm$".join(latex_escape(p) for p in parts).replace("—", "--").replace("Δ", "$\\Delta$")


HTML_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: right; }
th { background: #f3f3f3; cursor: pointer; user-select: none; white-space: nowrap; }
th[aria-sort="ascending"]::after { content: " \\25B2"; }
th[aria-sort="descending"]::after { content: " \\25BC"; }
td.text, th.text { text-align: left; }
tr.base td { font-weight: 600; }
.warning { border-left: 4px solid #c00; padding: 0.5em 1em; background: #fff4f4; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
"""

# Click a header to sort by that column (numbers by value, text alphabetically; empty cells last); click
# again to reverse. Rows carry their sort keys in data-value, so formatting does not matter.
HTML_SORT_SCRIPT = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute("data-value");
    if (raw === null || raw === "") { return null; }
    var number = parseFloat(raw);
    return isNaN(number) ? raw.toLowerCase() : number;
  }
  function sortBy(table, column, header) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var descending = header.getAttribute("aria-sort") === "ascending";
    rows.sort(function (a, b) {
      var x = key(a.cells[column]), y = key(b.cells[column]);
      if (x === null && y === null) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      var order = x < y ? -1 : (x > y ? 1 : 0);
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) { th.removeAttribute("aria-sort"); });
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (header, column) {
      header.addEventListener("click", function () { sortBy(table, column, header); });
    });
  });
})();
"""


def _sort_value(text: str) -> str:
    """The number a cell starts with ("45.20 ± 1.1" → 45.2), '' for a missing value, else the text."""
    head = text.split(" ")[0].replace("+", "")
    if text in ("—", "missing", "(base)") or text.startswith("n/a"):
        return ""
    try:
        return repr(float(head))
    except ValueError:
        return text


def html_table(header: list[str], rows: list[list[str]], text_columns: int, row_classes: list[str] | None = None,
               table_id: str = "") -> str:
    id_attr = f' id="{html.escape(table_id)}"' if table_id else ""
    lines = [f'<table class="sortable"{id_attr}>', "<thead><tr>"]
    lines += [f'<th class="{"text" if i < text_columns else "num"}">{html.escape(h)}</th>' for i, h in enumerate(header)]
    lines += ["</tr></thead>", "<tbody>"]
    for index, row in enumerate(rows):
        css = f' class="{row_classes[index]}"' if row_classes and row_classes[index] else ""
        cells = "".join(
            f'<td class="{"text" if i < text_columns else "num"}" data-value="{html.escape(_sort_value(c) if i >= text_columns else c)}">'
            f"{html.escape(c)}</td>" for i, c in enumerate(row))
        lines.append(f"<tr{css}>{cells}</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


def render_html_section(table: LeaderboardTable, images: dict | None = None, id_prefix: str = "",
                        level: int = 1) -> str:
    """The leaderboard's HTML without the page around it (no <html>, style or script): its heading at ``<h{level}>``,
    sections one level below, table ids prefixed with ``id_prefix`` (several leaderboards on one page).
    ``images``: {caption: PNG path or PNG bytes}, embedded as data URIs. The tables are ``table.sortable``: the
    page adds ``HTML_STYLE`` and ``HTML_SORT_SCRIPT`` once."""
    spec = table.spec
    top, sub = f"h{level}", f"h{level + 1}"

    def heading(text: str) -> str:
        return f"<{sub}>{text}</{sub}>"

    parts = [f"<{top}>Leaderboard: {html.escape(spec.name)}</{top}>", f"<p>{html.escape(spec.description)}</p>"]
    if not spec.comparable:
        parts.append('<p class="warning"><strong>These scores are NOT comparable with the Open LLM Leaderboard</strong>: '
                     "the spec departs from its settings. Compare them only with runs of the same spec.</p>")
    if spec.note:
        parts.append(f"<p>Note: {html.escape(spec.note)}</p>")
    parts.append("<p>Scores in percent. Methods: mean &plusmn; sample std over seeds, &Delta; against the base model's "
                 "row. Runs: score &plusmn; standard error over documents. Click a column header to sort.</p>")
    header, body = summary_rows(table)
    classes = ["base" if row.method == BASE_METHOD else "" for row in table.rows]
    parts += [heading("Methods"),
              html_table(header, body, len(identity_columns(table)), classes, f"{id_prefix}methods")]
    header, body = delta_rows(table)
    if body:
        parts += [heading("Difference from the base model, per task"),
                  html_table(header, body, 2 if "model" in header else 1, table_id=f"{id_prefix}deltas")]
    header, body = runs_rows(table)
    parts += [heading("Runs"), html_table(header, body, 5, table_id=f"{id_prefix}runs")]
    header, body = alignment_rows(table)
    parts += [heading("Alignment metrics (held-out pairs)"),
              html_table(header, body, 1, table_id=f"{id_prefix}alignment"),
              "<p>One run: value [95 % bootstrap interval over the held-out pairs]; several seeds: mean &plusmn; std.</p>"]
    notes = missing_notes(table)
    parts += [heading("Missing tasks"), "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>"
              if notes else "<p>None: every task ran in full.</p>"]
    settings = settings_notes(table)
    if settings:
        parts += [heading("Evaluation settings"),
                  "<ul>" + "".join(f"<li>{html.escape(s.replace('**', ''))}</li>" for s in settings) + "</ul>"]
    if images:
        parts.append(heading("Plots"))
        for caption, image in images.items():
            data = base64.b64encode(image if isinstance(image, bytes) else Path(image).read_bytes()).decode()
            parts.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    if table.excluded:
        parts += [heading("Runs left out"), "<ul>" + "".join(
            f"<li><code>{html.escape(r)}</code>: {html.escape(w)}</li>" for r, w in table.excluded) + "</ul>"]
    return "\n".join(parts)


def render_html(table: LeaderboardTable, images: dict | None = None) -> str:
    """Self-contained HTML: inline CSS and sort script, plots as data URIs; nothing is loaded from elsewhere."""
    name = html.escape(table.spec.name)
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>Leaderboard: {name}</title>", f"<style>{HTML_STYLE}</style>", "</head>", "<body>",
             render_html_section(table, images), f"<script>{HTML_SORT_SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


# -- writing and the command ----------------------------------------------------------------------


def write_leaderboard(results_dirs: list[Path], spec_name: str | None = None, out_dir: Path | None = None,
                      formats: tuple = FORMATS, plots: bool = True, significance_resamples: int = 1000) -> dict:
    """Write the tables (and plots) for ``results_dirs``; returns {kind: path}."""
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown:
        raise SuiteError(f"--format: unknown format {unknown[0]!r}; known: {', '.join(FORMATS)}")
    collected = collect_runs([Path(d) for d in results_dirs], spec_name)
    table = build_table(collected, significance_resamples)
    out_dir = Path(out_dir) if out_dir else Path(results_dirs[0]) / "report"
    stem = f"leaderboard-{Path(table.spec.name).stem}"
    written, images = {}, {}
    if plots:
        from suite.reporting.plots import write_plots

        figures = write_plots(table, out_dir / "plots", prefix=f"{Path(table.spec.name).stem}-")
        written.update({f"plot {name}": paths[0] for name, paths in figures.items()})
        images = {name: paths[0] for name, paths in figures.items()}
    renderers = {"md": (".md", lambda: render_markdown(table)),
                 "csv": (".csv", lambda: render_csv(table)),
                 "html": (".html", lambda: render_html(table, images)),
                 "tex": (".tex", lambda: render_latex(table))}
    for kind in formats:
        suffix, render = renderers[kind]
        path = out_dir / f"{stem}{suffix}"
        write_bytes_atomic(path, render().encode())
        written[kind] = path
    if "csv" in formats:
        path = out_dir / f"{stem}-runs.csv"
        write_bytes_atomic(path, render_runs_csv(table).encode())
        written["runs csv"] = path
    return written


def _cmd_leaderboard(args) -> int:
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = write_leaderboard([Path(d) for d in args.results_dirs], args.spec, Path(args.out) if args.out else None,
                                formats, plots=not args.no_plots, significance_resamples=args.resamples)
    for kind, path in written.items():
        print(f"{kind}: {path}")
    if len(args.results_dirs) == 1 and not args.out and "html" in formats:  # the folder's one page (suite.reporting.html)
        from suite.reporting.html import write_html_report

        try:
            page = write_html_report(Path(args.results_dirs[0]), [args.spec] if args.spec else [], args.resamples)
            print(f"index: {page}")
        except SuiteError as exc:
            print(f"index: not written ({' '.join(str(exc).split())})")
    return 0


def add_command(sub) -> None:
    parser = sub.add_parser("leaderboard", help="leaderboard tables (md, csv, html, tex) and plots from stored runs")
    parser.add_argument("results_dirs", nargs="+", metavar="DIR", help="results directories (several combine)")
    parser.add_argument("--spec", help="leaderboard spec the runs were evaluated on (default: the one they share)")
    parser.add_argument("--out", help="output folder (default: the first DIR's report/)")
    parser.add_argument("--format", default=",".join(FORMATS), help=f"comma-separated subset of {','.join(FORMATS)}")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument("--resamples", type=int, default=1000,
                        help="bootstrap resamples for the significance of each row against base (0: skip)")
    parser.set_defaults(func=_cmd_leaderboard)
