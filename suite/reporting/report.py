"""The folder report: read a results folder's runs and write report.md, leaderboard.csv and PNG plots.

``alignsuite report DIR`` (and ``alignsuite run … --report``) writes ``DIR/report/``. Every table is a
view of ``suite.analysis.tables.folder_table`` — the one aggregation ``alignsuite leaderboard`` shows per
spec — over the runs ``suite.execution.store`` reads: only complete runs contribute numbers; failed and
running runs are listed, never scored.

Scales, as the runner stores them: eval task metrics are fractions in [0, 1] (shown ×100 as
percentages), ``eval_average`` is already a percentage (the Open LLM Leaderboard's 0–100 convention).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path

from suite.analysis.tables import (
    FRACTION,
    PERCENT,
    RUNTIME,
    Table,
    folder_table,
    runs_by_score,
)
from suite.core.io import write_bytes_atomic
from suite.execution.store import (
    KNOWN_STATUSES,
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_RUNNING,
    RunRecord,
    load_runs,
)
from suite.reporting.plots import alignment_bars, save_png, task_bars, training_curves
from suite.reporting.power import separating_markdown
from suite.reporting.render import (
    MISSING,
    csv_number,
    markdown_table,
    value_text,
    whole_numbers,
)

IDENTITY_COLUMNS = ["run_id", "method", "seed", "model", "dataset"]
# Settings that decide a result, read from each manifest's resolved config (section, key).
BUDGET_SETTINGS = (
    ("train", "max_steps"), ("train", "per_device_batch_size"), ("train", "gradient_accumulation_steps"),
    ("train", "learning_rate"), ("train", "lr_scheduler"), ("train", "warmup_ratio"), ("train", "max_length"),
    ("train", "lora"), ("train", "dtype"), ("train", "bf16"),
    ("data", "train_max"), ("data", "heldout_fraction"), ("data", "heldout_max"), ("data", "split_seed"),
    ("eval", "leaderboard"), ("eval", "limit"), ("eval", "chat_template"), ("eval", "apply_chat_template"), ("eval", "alignment_pairs"),
    ("eval", "generation_prompts"),
)
VERSION_KEYS = ("lm_eval", "torch", "transformers", "python")


@dataclass
class ReportPaths:
    """What ``write_report`` wrote; a plot is None when there was nothing to draw."""

    markdown: Path
    csv: Path
    scores_png: Path | None
    alignment_png: Path | None
    train_loss_png: Path | None


# -- the tables -----------------------------------------------------------------------------------


def value_columns(table: Table) -> list[str]:
    return table.columns + table.alignment_columns + table.extra_columns


def whole_columns(table: Table) -> set[str]:
    """Columns whose every value is a whole number (seed, pair counts): shown and written without decimals."""
    return {c for c in value_columns(table) if whole_numbers(run.scores.get(c) for run in table.runs)}


def column_title(column: str, table: Table) -> str:
    if table.kind(column) in (FRACTION, PERCENT):
        return f"{column} (%)"
    if column == RUNTIME:
        return "train runtime (s)"
    return column


def shown_identity(table: Table) -> list[str]:
    """Model and dataset go in the settings section when every run shares them."""
    return [c for c in IDENTITY_COLUMNS
            if c not in ("model", "dataset") or len({getattr(run, c) for run in table.runs}) > 1]


def identity_text(value) -> str:
    return MISSING if value is None else str(value)


def main_table_markdown(table: Table) -> str:
    whole, identity = whole_columns(table), shown_identity(table)
    header = identity + [column_title(c, table) for c in value_columns(table)]
    rows = [[identity_text(getattr(run, c)) for c in identity] +
            [value_text(table.kind(c), run.scores.get(c), c in whole) for c in value_columns(table)]
            for run in runs_by_score(table)]
    return markdown_table(header, rows)


def group_columns(table: Table) -> list[str]:
    """Runs are grouped by method, and by model / dataset too when the folder mixes several."""
    return ["method"] + [c for c in ("model", "dataset") if len({getattr(row, c) for row in table.rows}) > 1]


def has_several_seeds(table: Table) -> bool:
    return any(len(row.runs) > 1 for row in table.rows)


def seed_table_markdown(table: Table) -> str:
    whole, keys = whole_columns(table), group_columns(table)
    columns = table.columns + table.alignment_columns
    header = keys + ["seeds"] + [column_title(c, table) for c in columns]
    rows = []
    for row in table.rows:
        cells = [str(getattr(row, k)) for k in keys] + [str(len(row.runs))]
        for column in columns:
            text = value_text(table.kind(column), row.mean.get(column), column in whole)
            if row.std.get(column) is not None and text != MISSING:
                text += f" ± {value_text(table.kind(column), row.std[column], column in whole)}"
            cells.append(text)
        rows.append(cells)
    return markdown_table(header, rows)


def csv_text(table: Table) -> str:
    """One row per complete run in the main table's order; whole-number columns are written without .0."""
    whole = whole_columns(table)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(IDENTITY_COLUMNS + value_columns(table))
    for run in runs_by_score(table):
        writer.writerow([("" if getattr(run, c) is None else getattr(run, c)) for c in IDENTITY_COLUMNS] +
                        [csv_number(run.scores.get(c), c in whole) for c in value_columns(table)])
    return out.getvalue()


# -- report sections -------------------------------------------------------------------------------


def distinct(values) -> list:
    """Distinct values in first-seen order (JSON text as the identity, so dicts and lists work)."""
    seen: dict[str, object] = {}
    for value in values:
        seen.setdefault(json.dumps(value, sort_keys=True, default=str), value)
    return list(seen.values())


def describe(values: list, flag_differences: bool = True) -> str:
    """Values as inline code; several values are flagged, since runs meant to be compared should share them."""
    shown = [v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str) for v in values]
    text = ", ".join(f"`{s}`" for s in shown) if shown else "—"
    return text + (" **(differs between runs)**" if flag_differences and len(shown) > 1 else "")


def recorded(manifests: list[dict], *keys: str) -> list:
    """The distinct values at a nested key path; manifests that lack the key do not count (None does)."""
    values = []
    for manifest in manifests:
        node = manifest
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            values.append(node)
    return distinct(values)


def header_markdown(runs: list[RunRecord]) -> str:
    experiments = distinct(run.manifest.get("experiment") for run in runs)
    title = ", ".join(str(e) for e in experiments if e is not None) or "results"
    counts = {status: sum(run.status == status for run in runs) for status in KNOWN_STATUSES}
    lines = [f"# alignsuite report: {title}", "",
             f"{counts[STATUS_COMPLETE]} complete, {counts[STATUS_FAILED]} failed, "
             f"{counts[STATUS_RUNNING]} running run(s).", ""]
    scored = [run for run in runs if run.status == STATUS_COMPLETE] or runs
    leaderboards = distinct(run.manifest.get("leaderboard") for run in scored)
    named = [name for name in leaderboards if name is not None]
    if named:
        lines.append(f"Leaderboard: {describe(named)}.")
    else:
        lines.append("Leaderboard: none (lm-eval was not run; only alignment metrics are reported).")
    if any(run.manifest.get("comparable") is False for run in runs if run.status == STATUS_COMPLETE):
        lines += ["", "> **Warning: these scores are NOT comparable with the Open LLM Leaderboard.** "
                      "The leaderboard spec used here departs from its settings (tasks, shots, limits or "
                      "normalisation); compare them only with runs of the same spec."]
    lines += ["", "Task scores are percentages (metric × 100); `average` is the stored eval average (%). "
                  "Only complete runs are scored."]
    return "\n".join(lines)


def failed_markdown(runs: list[RunRecord]) -> str:
    unfinished = [run for run in runs if run.status != STATUS_COMPLETE]
    lines = ["## Failed runs", ""]
    if not unfinished:
        return "\n".join(lines + ["None: every run completed."])
    rows = []
    for run in sorted(unfinished, key=lambda r: (r.status != STATUS_FAILED, r.run_id)):
        if run.status == STATUS_FAILED:
            state, error = "failed", run.manifest.get("error") or "(no error recorded)"
        else:
            state, error = "incomplete (still running or interrupted)", "—"
        rows.append([run.run_id, run.method, state, error])
    return "\n".join(lines + [markdown_table(["run_id", "method", "status", "error"], rows)])


def settings_markdown(runs: list[RunRecord]) -> str:
    """The settings that decide a result, as recorded in the manifests of the scored runs."""
    scored = [run for run in runs if run.status == STATUS_COMPLETE] or runs
    manifests = [run.manifest for run in scored]
    settings = [("model", ("model",)), ("dataset", ("dataset",))]
    settings += [(f"{section}.{key}", ("config", section, key)) for section, key in BUDGET_SETTINGS]
    settings += [(f"{package} version", ("versions", package)) for package in VERSION_KEYS]
    settings += [("git revision", ("git_revision",))]
    rows = [["seeds", describe(sorted(recorded(manifests, "seed"), key=str), flag_differences=False)]]
    rows += [[name, describe(values)] for name, path in settings if (values := recorded(manifests, *path))]
    lines = ["## Settings", "", markdown_table(["setting", "value"], rows), ""]
    lines += ["Method hyper-parameters:", ""]
    by_method: dict[str, list] = {}
    for m in manifests:
        by_method.setdefault(str(m.get("method")), []).append(m.get("hyperparameters") or {})
    for method, values in by_method.items():
        lines.append(f"- `{method}`: {describe(distinct(values)) if any(values) else '—'}")
    return "\n".join(lines)


def deviations_markdown(runs: list[RunRecord]) -> str:
    """Where evaluation departed from the leaderboard's own setup (e.g. few-shot from validation), per run."""
    by_note: dict[str, list[str]] = {}
    for run in runs:
        if run.status == STATUS_COMPLETE and run.metrics:
            for note in run.metrics.get("eval_deviations") or []:
                by_note.setdefault(str(note), []).append(run.run_id)
    if not by_note:
        return "## Evaluation deviations\n\nNone recorded."
    lines = ["## Evaluation deviations", ""]
    total = sum(1 for run in runs if run.status == STATUS_COMPLETE)
    for note, run_ids in sorted(by_note.items()):
        scope = "all runs" if len(run_ids) == total else ", ".join(f"`{r}`" for r in run_ids)
        lines.append(f"- {note} ({scope})")
    return "\n".join(lines)


def sweep_markdown(runs: list[RunRecord], table: Table) -> str | None:
    """A sweep's selection (suite.analysis.sweep): every point's validation score, the selected point per
    row, and the leaderboard of the selected models only. None when the folder holds no sweep."""
    from suite.analysis.sweep import SELECTION_METRIC, select_points, unselected_labels

    results = select_points(runs)
    if not results:
        return None
    lines = ["## Sweep", "",
             f"Each method trained at every point; the point with the highest validation {SELECTION_METRIC.replace('_', ' ')} "
             "(mean over seeds; pairs from training prompts kept apart, never the held-out test pairs) is selected.", ""]
    rows = []
    for result in results:
        for point in result.points:
            values = ", ".join(f"{k}={v}" for k, v in point.point.items())
            score = "—" if point.score is None else f"{point.score:.3f} (n={len(point.validation)})"
            rows.append([result.row, values, score, "selected" if point is result.selected else ""])
    lines += [markdown_table(["row", "point", f"validation {SELECTION_METRIC}", ""], rows), ""]
    hidden = unselected_labels(results)
    kept = [row for row in table.rows if row.method not in hidden]
    if kept:
        selected_table = dataclasses.replace(table, rows=kept, runs=[run for row in kept for run in row.runs])
        lines += ["### Leaderboard of the selected models", "", main_table_markdown(selected_table)]
    return "\n".join(lines)


def data_warnings_markdown(runs: list[RunRecord]) -> str:
    """Weak data the preflight found (duplicate records, pairs identical after truncation, heavy truncation),
    as recorded in each run's manifest: merely weak data trains, and the report says so with the counts."""
    by_warning: dict[str, list[str]] = {}
    for run in runs:
        for warning in run.manifest.get("data_warnings") or []:
            by_warning.setdefault(str(warning), []).append(run.run_id)
    if not by_warning:
        return "## Data warnings\n\nNone recorded."
    lines = ["## Data warnings", ""]
    for warning, run_ids in sorted(by_warning.items()):
        scope = "all runs" if len(run_ids) == len(runs) else ", ".join(f"`{r}`" for r in run_ids)
        lines.append(f"- {warning} ({scope})")
    return "\n".join(lines)


def figures_markdown(paths: ReportPaths, report_dir: Path) -> str:
    lines = ["## Plots", ""]
    figures = [("Eval scores per method", paths.scores_png), ("Held-out implicit reward", paths.alignment_png),
               ("Training loss", paths.train_loss_png)]
    for caption, path in figures:
        if path is not None:
            lines.append(f"![{caption}]({path.relative_to(report_dir).as_posix()})")
            lines.append("")
    if len(lines) == 2:
        lines.append("No plots: no complete run has eval scores, alignment metrics or a training log.")
    return "\n".join(lines).rstrip()


def report_markdown(runs: list[RunRecord], table: Table, paths: ReportPaths, report_dir: Path) -> str:
    sections = [header_markdown(runs)]
    separating = separating_markdown(report_dir.parent, runs, table)
    if separating is not None:
        sections.append(separating)
    sections += ["## Leaderboard", main_table_markdown(table) if table.runs else "No complete runs yet."]
    if has_several_seeds(table):
        sections += ["## Mean ± std over seeds", "Sample standard deviation (n − 1) across seeds.",
                     seed_table_markdown(table)]
    sweep = sweep_markdown(runs, table)
    if sweep is not None:
        sections.append(sweep)
    sections += [failed_markdown(runs), data_warnings_markdown(runs), deviations_markdown(runs), settings_markdown(runs),
                 figures_markdown(paths, report_dir)]
    return "\n\n".join(sections) + "\n"


def write_report(results_dir: Path) -> ReportPaths:
    """Read ``results_dir/runs`` and write ``results_dir/report/{leaderboard.csv, report.md, *.png}``."""
    results_dir = Path(results_dir)
    runs = load_runs(results_dir)
    table = folder_table(runs)
    report_dir = results_dir / "report"
    scores = table.columns  # the eval task/metric columns and the average
    paths = ReportPaths(
        markdown=report_dir / "report.md",
        csv=report_dir / "leaderboard.csv",
        scores_png=save_png(task_bars(table, scores, "Eval scores per method (mean over seeds)"),
                            report_dir / "scores.png"),
        alignment_png=save_png(alignment_bars(table), report_dir / "alignment.png"),
        train_loss_png=save_png(training_curves(table, per_run=True), report_dir / "train_loss.png"),
    )
    write_bytes_atomic(paths.csv, csv_text(table).encode())
    write_bytes_atomic(paths.markdown, report_markdown(runs, table, paths, report_dir).encode())
    return paths
