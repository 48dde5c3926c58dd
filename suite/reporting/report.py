"""The report: read a results folder's run store and write leaderboard.csv, report.md and PNG plots.

Reads ``DIR/runs/<run_id>/{manifest.json, metrics.json, train_log.jsonl}`` (see ``suite.execution.store``) and writes
``DIR/report/``. Only runs whose manifest says ``complete`` contribute numbers; failed and running runs
are listed, never scored. Every number shown comes from those files.

Scales, as the runner stores them: eval task metrics are fractions in [0, 1] (shown ×100 as
percentages), ``eval_average`` is already a percentage (the Open LLM Leaderboard's 0–100 convention).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from suite.core.errors import SuiteError
from suite.core.io import read_json_object, write_bytes_atomic

BASE_METHOD = "base"  # the untouched base model's row (suite.execution.runner.BASE_ROW)
STATUS_COMPLETE, STATUS_FAILED, STATUS_RUNNING = "complete", "failed", "running"
KNOWN_STATUSES = (STATUS_COMPLETE, STATUS_FAILED, STATUS_RUNNING)
IDENTITY_COLUMNS = ["run_id", "method", "seed", "model", "dataset"]
AVERAGE_COLUMN = "average"
RUNTIME_COLUMN = "train_runtime_s"
REQUIRED_MANIFEST_KEYS = ("run_id", "method", "status")
# Settings that decide a result, read from each manifest's resolved config (section, key).
BUDGET_SETTINGS = (
    ("train", "max_steps"), ("train", "per_device_batch_size"), ("train", "gradient_accumulation_steps"),
    ("train", "learning_rate"), ("train", "lr_scheduler"), ("train", "warmup_ratio"), ("train", "max_length"),
    ("train", "lora"), ("train", "dtype"), ("train", "bf16"),
    ("data", "train_max"), ("data", "heldout_fraction"), ("data", "heldout_max"), ("data", "split_seed"),
    ("eval", "leaderboard"), ("eval", "limit"), ("eval", "apply_chat_template"), ("eval", "alignment_pairs"),
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


@dataclass
class RunRecord:
    """One run folder as stored: its manifest, its metrics (complete runs only) and its loss curve."""

    folder: Path
    manifest: dict
    metrics: dict | None
    loss_curve: list[tuple[float, float]]  # (step, loss) from train_log.jsonl; empty when absent

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def method(self) -> str:
        return str(self.manifest["method"])

    @property
    def status(self) -> str:
        return self.manifest["status"]


@dataclass
class Leaderboard:
    """The complete runs as one ordered table, plus which columns hold which kind of number."""

    table: pd.DataFrame
    eval_columns: list[str]  # "task/metric", fractions in [0, 1]
    alignment_columns: list[str]


# -- reading the store -----------------------------------------------------------------------------



def check_manifest(manifest: dict, path: Path) -> dict:
    for key in REQUIRED_MANIFEST_KEYS:
        if key not in manifest:
            raise SuiteError(f"{path}: missing key '{key}'")
    if manifest["status"] not in KNOWN_STATUSES:
        raise SuiteError(f"{path}: status must be one of {', '.join(KNOWN_STATUSES)}, got {manifest['status']!r}")
    return manifest


def _is_number_or_null(value) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def check_metrics(metrics: dict, path: Path) -> dict:
    """The parts of metrics.json the report reads must be numbers (or null) where numbers are expected."""
    evals = metrics.get("eval") or {}
    if not isinstance(evals, dict):
        raise SuiteError(f"{path}: key 'eval' must be an object of tasks")
    for task, scores in evals.items():
        if not isinstance(scores, dict):
            raise SuiteError(f"{path}: key 'eval.{task}' must be an object of metric: number")
        for metric, value in scores.items():
            if not _is_number_or_null(value):
                raise SuiteError(f"{path}: key 'eval.{task}.{metric}' must be a number, got {value!r}")
    if not _is_number_or_null(metrics.get("eval_average")):
        raise SuiteError(f"{path}: key 'eval_average' must be a number or null, got {metrics['eval_average']!r}")
    for section in ("alignment", "train"):
        values = metrics.get(section) or {}
        if not isinstance(values, dict):
            raise SuiteError(f"{path}: key '{section}' must be an object")
        if section == "alignment":
            for key, value in values.items():
                if not _is_number_or_null(value):
                    raise SuiteError(f"{path}: key 'alignment.{key}' must be a number, got {value!r}")
    if not _is_number_or_null((metrics.get("train") or {}).get("runtime_s")):
        raise SuiteError(f"{path}: key 'train.runtime_s' must be a number or null")
    return metrics


def train_log_records(path: Path):
    """(line number, record) for each non-empty line of a train_log.jsonl (none if the file is absent);
    a line that is not a JSON object names the file and line."""
    if not path.is_file():
        return
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{path}: line {number} is not valid JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise SuiteError(f"{path}: line {number} must be a JSON object")
        yield number, record


def read_loss_curve(path: Path) -> list[tuple[float, float]]:
    """(step, loss) for every train_log.jsonl record that has a loss; a bad line names the file and line."""
    curve = []
    for number, record in train_log_records(path):
        step, loss = record.get("step"), record.get("loss")
        if loss is None:
            continue  # the Trainer's end-of-training summary carries train_loss, not a step's loss
        if not (_is_number_or_null(step) and _is_number_or_null(loss)) or step is None:
            raise SuiteError(f"{path}: line {number} needs numeric 'step' and 'loss'")
        curve.append((float(step), float(loss)))
    return curve


def read_run(folder: Path) -> RunRecord:
    manifest_path = folder / "manifest.json"
    manifest = check_manifest(read_json_object(manifest_path), manifest_path)
    if manifest["status"] != STATUS_COMPLETE:
        return RunRecord(folder, manifest, None, [])  # unfinished runs never contribute numbers
    metrics_path = folder / "metrics.json"
    if not metrics_path.is_file():
        raise SuiteError(f"{metrics_path}: missing, but {manifest_path} says the run is complete")
    metrics = check_metrics(read_json_object(metrics_path), metrics_path)
    return RunRecord(folder, manifest, metrics, read_loss_curve(folder / "train_log.jsonl"))


def load_runs(results_dir: Path) -> list[RunRecord]:
    """Every run folder under ``results_dir/runs`` with a manifest, base runs first, then by run id."""
    runs_dir = Path(results_dir) / "runs"
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if runs_dir.is_dir() else []
    # A folder without manifest.json holds only an interrupted temp file: there is no run to report.
    runs = [read_run(folder) for folder in folders if (folder / "manifest.json").is_file()]
    if not runs:
        raise SuiteError(f"{runs_dir}: there are no runs to report (run `alignsuite run CONFIG` first)")
    return sorted(runs, key=lambda r: (r.method != BASE_METHOD, r.run_id))


# -- the leaderboard table -------------------------------------------------------------------------


def dataset_label(dataset) -> str:
    """A dataset id, or the path of a local dataset given as {"path": ..., "format": ...}."""
    if isinstance(dataset, dict):
        return str(dataset.get("path", json.dumps(dataset, sort_keys=True)))
    return "" if dataset is None else str(dataset)


def eval_column_order(runs: list[RunRecord]) -> list[str]:
    """``task/metric``: tasks in the order they first appear, each task's metrics sorted."""
    metrics_by_task: dict[str, set] = {}
    for run in runs:
        for task, scores in (run.metrics.get("eval") or {}).items():
            metrics_by_task.setdefault(task, set()).update(scores)
    return [f"{task}/{metric}" for task, metrics in metrics_by_task.items() for metric in sorted(metrics)]


def alignment_column_order(runs: list[RunRecord]) -> list[str]:
    """Alignment metric names in the order they first appear."""
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.metrics.get("alignment") or {}))
    return list(names)


def run_row(run: RunRecord, eval_columns: list[str], alignment_columns: list[str]) -> dict:
    metrics = run.metrics
    scores = {f"{task}/{metric}": value for task, values in (metrics.get("eval") or {}).items()
              for metric, value in values.items()}
    row = {
        "run_id": run.run_id,
        "method": run.method,
        "seed": run.manifest.get("seed"),
        "model": run.manifest.get("model"),
        "dataset": dataset_label(run.manifest.get("dataset")),
    }
    row.update({column: scores.get(column) for column in eval_columns})
    row[AVERAGE_COLUMN] = metrics.get("eval_average")
    alignment = metrics.get("alignment") or {}
    row.update({name: alignment.get(name) for name in alignment_columns})
    row[RUNTIME_COLUMN] = (metrics.get("train") or {}).get("runtime_s")
    return row


def order_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Base first; then by average (highest first, missing last), ties by method, seed and run id."""
    keyed = table.assign(
        _not_base=table["method"] != BASE_METHOD,
        _no_average=table[AVERAGE_COLUMN].isna(),
        _neg_average=-table[AVERAGE_COLUMN].fillna(0.0),
    )
    keys = ["_not_base", "_no_average", "_neg_average", "method", "seed", "run_id"]
    return keyed.sort_values(keys, kind="stable").drop(columns=keys[:3]).reset_index(drop=True)


def build_leaderboard(runs: list[RunRecord]) -> Leaderboard:
    complete = [run for run in runs if run.status == STATUS_COMPLETE]
    eval_columns, alignment_columns = eval_column_order(complete), alignment_column_order(complete)
    columns = IDENTITY_COLUMNS + eval_columns + [AVERAGE_COLUMN] + alignment_columns + [RUNTIME_COLUMN]
    rows = [run_row(run, eval_columns, alignment_columns) for run in complete]
    table = pd.DataFrame(rows, columns=columns)
    numeric = eval_columns + [AVERAGE_COLUMN] + alignment_columns + [RUNTIME_COLUMN]
    table[numeric] = table[numeric].apply(pd.to_numeric).astype(float)
    return Leaderboard(order_rows(table), eval_columns, alignment_columns)


def group_label_columns(table: pd.DataFrame) -> list[str]:
    """Runs are grouped by method, and by model / dataset too when the folder mixes several."""
    return ["method"] + [column for column in ("model", "dataset") if table[column].nunique() > 1]


def seed_summary(board: Leaderboard) -> pd.DataFrame:
    """Mean and sample std (ddof=1) over seeds per method: columns ``<metric>`` and ``<metric> std``, plus n."""
    table = board.table
    keys = group_label_columns(table)
    value_columns = board.eval_columns + [AVERAGE_COLUMN] + board.alignment_columns
    grouped = table.groupby(keys, sort=False, dropna=False)
    summary = grouped[value_columns].mean()
    spread = grouped[value_columns].std(ddof=1).add_suffix(" std")
    summary = summary.join(spread).join(grouped.size().rename("n")).reset_index()
    summary = summary.assign(_not_base=summary["method"] != BASE_METHOD,
                             _neg_average=-summary[AVERAGE_COLUMN].fillna(-math.inf))
    return summary.sort_values(["_not_base", "_neg_average", *keys], kind="stable") \
        .drop(columns=["_not_base", "_neg_average"]).reset_index(drop=True)


def has_several_seeds(board: Leaderboard) -> bool:
    return bool(len(board.table)) and board.table.groupby(group_label_columns(board.table)).size().max() > 1


def csv_text(table: pd.DataFrame) -> str:
    """The leaderboard as CSV; whole-number columns (seed, pairs) are written without a trailing .0."""
    integral = {c: "Int64" for c in table.columns if pd.api.types.is_float_dtype(table[c]) and _integral(table[c])}
    return table.astype(integral).to_csv(index=False)


# -- formatting ------------------------------------------------------------------------------------


def is_accuracy(column: str) -> bool:
    return column.endswith("accuracy")


def format_value(column: str, value, board: Leaderboard) -> str:
    """Scores as percentages with 2 decimals; other metrics in their own units."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if column in board.eval_columns or is_accuracy(column):
        return f"{100 * value:.2f}"
    if column == AVERAGE_COLUMN:
        return f"{value:.2f}"  # stored as a percentage already
    if column == RUNTIME_COLUMN:
        return f"{value:.1f}"
    if float(value).is_integer() and column in board.table and _integral(board.table[column]):
        return f"{int(value)}"
    return f"{value:.3f}"


def _integral(values: pd.Series) -> bool:
    present = values.dropna()
    return bool(len(present)) and bool((present == present.round()).all())


def column_title(column: str, board: Leaderboard) -> str:
    if column in board.eval_columns or is_accuracy(column) or column == AVERAGE_COLUMN:
        return f"{column} (%)"
    if column == RUNTIME_COLUMN:
        return "train runtime (s)"
    return column


def escape_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(escape_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(escape_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def main_table_markdown(board: Leaderboard) -> str:
    table = board.table
    # Model and dataset go in the settings section when every run shares them.
    shown = [c for c in table.columns if c not in ("model", "dataset") or table[c].nunique() > 1]
    header = [column_title(c, board) for c in shown]
    rows = []
    for _, record in table.iterrows():
        rows.append([format_value(c, record[c], board) if c not in IDENTITY_COLUMNS else _identity(record[c])
                     for c in shown])
    return markdown_table(header, rows)


def _identity(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return str(value)


def seed_table_markdown(board: Leaderboard) -> str:
    summary = seed_summary(board)
    keys = group_label_columns(board.table)
    value_columns = board.eval_columns + [AVERAGE_COLUMN] + board.alignment_columns
    header = keys + ["seeds"] + [column_title(c, board) for c in value_columns]
    rows = []
    for _, record in summary.iterrows():
        cells = [str(record[k]) for k in keys] + [str(int(record["n"]))]
        for column in value_columns:
            mean, std = record[column], record[f"{column} std"]
            text = format_value(column, mean, board)
            if not (isinstance(std, float) and math.isnan(std)) and text != "—":
                text += f" ± {format_value(column, std, board)}"
            cells.append(text)
        rows.append(cells)
    return markdown_table(header, rows)


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


def report_markdown(runs: list[RunRecord], board: Leaderboard, paths: ReportPaths, report_dir: Path) -> str:
    sections = [header_markdown(runs), "## Leaderboard",
                main_table_markdown(board) if len(board.table) else "No complete runs yet."]
    if has_several_seeds(board):
        sections += ["## Mean ± std over seeds", "Sample standard deviation (n − 1) across seeds.",
                     seed_table_markdown(board)]
    sections += [failed_markdown(runs), deviations_markdown(runs), settings_markdown(runs),
                 figures_markdown(paths, report_dir)]
    return "\n\n".join(sections) + "\n"


# -- plots -----------------------------------------------------------------------------------------


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)  # Agg, without pyplot's global state
    return figure


def method_summary(board: Leaderboard, columns: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-method mean and std (0 for one seed) over ``columns``, in the seed summary's order."""
    summary = seed_summary(board)
    labels = summary[group_label_columns(board.table)].astype(str).agg(" · ".join, axis=1)
    means = summary[columns].set_axis(labels)
    stds = summary[[f"{c} std" for c in columns]].set_axis(labels).set_axis(columns, axis=1).fillna(0.0)
    return means, stds


def plot_scores(board: Leaderboard) -> Figure | None:
    """Grouped bars: eval task (and average) on x, one bar per method, error bars = std over seeds."""
    columns = board.eval_columns + [AVERAGE_COLUMN]
    if not len(board.table) or board.table[columns].isna().all().all():
        return None
    means, stds = method_summary(board, columns)
    scale = pd.Series({c: 1.0 if c == AVERAGE_COLUMN else 100.0 for c in columns})
    means, stds = means * scale, stds * scale
    figure = new_figure(max(6.0, 1.2 * len(columns) + 2), 4.5)
    axes = figure.add_subplot()
    width = 0.8 / len(means)
    positions = range(len(columns))
    for index, (label, values) in enumerate(means.iterrows()):
        offsets = [p - 0.4 + width * (index + 0.5) for p in positions]
        axes.bar(offsets, values, width, yerr=stds.loc[label], capsize=2, label=label)
    axes.set_xticks(list(positions), columns, rotation=20, ha="right")
    axes.set_ylabel("score (%)")
    axes.set_title("Eval scores per method (mean over seeds)")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


def plot_alignment(board: Leaderboard) -> Figure | None:
    """Held-out implicit-reward accuracy and margin per trained method; the base model as a dashed line."""
    metrics = [m for m in ("reward_accuracy", "reward_margin") if m in board.alignment_columns]
    if not metrics or board.table[metrics].isna().all().all():
        return None
    means, stds = method_summary(board, metrics)
    is_base = seed_summary(board)["method"].eq(BASE_METHOD).to_numpy()
    figure = new_figure(5.0 * len(metrics), 4.0)
    for index, metric in enumerate(metrics, start=1):
        axes = figure.add_subplot(1, len(metrics), index)
        scale = 100.0 if is_accuracy(metric) else 1.0
        trained = means[metric][~is_base] * scale
        axes.bar(trained.index, trained, yerr=stds[metric][~is_base] * scale, capsize=3)
        for value in means[metric][is_base].dropna():
            axes.axhline(value * scale, color="black", linestyle="--", label="base")
        if is_base.any():
            axes.legend(fontsize="small")
        axes.set_title(metric.replace("_", " ") + (" (%)" if scale == 100.0 else ""))
        axes.tick_params(axis="x", labelrotation=20)
    figure.suptitle("Held-out implicit reward (mean over seeds)")
    figure.tight_layout()
    return figure


def plot_train_loss(runs: list[RunRecord]) -> Figure | None:
    """Loss against step, one line per complete run that has a train log."""
    curves = [run for run in runs if run.status == STATUS_COMPLETE and run.loss_curve]
    if not curves:
        return None
    figure = new_figure(7.0, 4.5)
    axes = figure.add_subplot()
    for run in sorted(curves, key=lambda r: (r.method, r.run_id)):
        steps, losses = zip(*run.loss_curve)
        axes.plot(steps, losses, label=run.run_id, linewidth=1.2)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("step")
    axes.set_ylabel("training loss")
    axes.set_title("Training loss")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


# -- atomic writes ---------------------------------------------------------------------------------



def save_figure(figure: Figure | None, path: Path) -> Path | None:
    """Write ``figure`` as PNG; when there is nothing to draw, remove a stale plot and return None."""
    if figure is None:
        path.unlink(missing_ok=True)
        return None
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    write_bytes_atomic(path, buffer.getvalue())
    return path


# -- entry point -----------------------------------------------------------------------------------


def write_report(results_dir: Path) -> ReportPaths:
    """Read ``results_dir/runs`` and write ``results_dir/report/{leaderboard.csv, report.md, *.png}``."""
    results_dir = Path(results_dir)
    runs = load_runs(results_dir)
    board = build_leaderboard(runs)
    report_dir = results_dir / "report"
    paths = ReportPaths(
        markdown=report_dir / "report.md",
        csv=report_dir / "leaderboard.csv",
        scores_png=save_figure(plot_scores(board), report_dir / "scores.png"),
        alignment_png=save_figure(plot_alignment(board), report_dir / "alignment.png"),
        train_loss_png=save_figure(plot_train_loss(runs), report_dir / "train_loss.png"),
    )
    write_bytes_atomic(paths.csv, csv_text(board.table).encode())
    write_bytes_atomic(paths.markdown, report_markdown(runs, board, paths, report_dir).encode())
    return paths
