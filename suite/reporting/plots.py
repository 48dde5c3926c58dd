"""Plots for leaderboard tables, each written as PNG and SVG (matplotlib's Agg, no pyplot state):

- ``task_bars``: each task's score per method row, error bars = std over seeds (several seeds) or the
  standard error over documents (one run);
- ``frontier``: the leaderboard average (or the partial one) against the KL proxy — the mean held-out
  log-ratio Δ(y) = log π_θ(y|x) − log π_ref(y|x) — one point per method: how far a method moved from
  its reference for what it gained (the alignment frontier);
- ``training_curves``: loss, implicit-reward accuracy and margin against step, per method (mean over
  seeds), from ``train_log.jsonl``; methods that log desirable/undesirable rewards (KTO, UNA-binary) get
  their difference as the margin;
- ``heatmap``: methods × tasks; colour = difference from the base model where there is one (else the
  score), each cell annotated with the score.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from suite.core.io import write_bytes_atomic
from suite.reporting.report import BASE_METHOD, train_log_records

TRAIN_LOG = "train_log.jsonl"
CURVES = (("loss", "training loss"), ("accuracy", "implicit-reward accuracy"), ("margin", "implicit-reward margin"))


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def styles(count: int) -> list[dict]:
    """A distinct colour (tab10, or tab20 past ten rows), marker and line style per row."""
    from matplotlib import colormaps

    palette = colormaps["tab10" if count <= 10 else "tab20"].colors
    return [{"color": palette[i % len(palette)], "marker": MARKERS[i % len(MARKERS)],
             "linestyle": LINESTYLES[(i // len(palette)) % len(LINESTYLES)]} for i in range(count)]


def new_figure(width: float, height: float) -> Figure:
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def row_label(row, table) -> str:
    from suite.reporting.leaderboard import identity_columns

    return " · ".join(str(getattr(row, name)) for name in identity_columns(table))


def task_bars(table) -> Figure | None:
    """Grouped bars: task (and average) on x, one bar per method row."""
    from suite.reporting.leaderboard import AVERAGE, PARTIAL, column_title

    columns = [c for c in table.columns if any(row.mean.get(c) is not None for row in table.rows)]
    if not columns:
        return None
    figure = new_figure(max(6.0, 1.1 * len(columns) + 3), 4.8)
    axes = figure.add_subplot()
    width = 0.8 / len(table.rows)
    looks = styles(len(table.rows))
    for index, row in enumerate(table.rows):
        values = [row.mean.get(c) if row.mean.get(c) is not None else np.nan for c in columns]
        if len(row.runs) > 1:
            errors = [row.std.get(c) or 0.0 for c in columns]
        else:
            errors = [row.runs[0].stderr.get(c) or 0.0 for c in columns]
        positions = [p - 0.4 + width * (index + 0.5) for p in range(len(columns))]
        axes.bar(positions, values, width, yerr=errors, capsize=2, label=row_label(row, table),
                 color=looks[index]["color"])
    axes.set_xticks(range(len(columns)), [column_title(c) for c in columns], rotation=20, ha="right")
    for position, column in enumerate(columns):
        if column in (AVERAGE, PARTIAL):
            axes.axvline(position - 0.5, color="grey", linewidth=0.8)
    axes.set_ylabel("score (%)")
    axes.set_title(f"{table.spec.name}: per task (error bars: std over seeds, or stderr for one run)")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


def frontier(table) -> Figure | None:
    """Average score against the KL proxy, one point per method row (error bars = std over seeds)."""
    from suite.reporting.leaderboard import AVERAGE, headline_column

    column = headline_column(table)
    points = [row for row in table.rows
              if row.mean.get(column) is not None and row.mean.get("logratio_mean") is not None]
    if not points:
        return None
    figure = new_figure(6.5, 4.8)
    axes = figure.add_subplot()
    for row, look in zip(points, styles(len(points))):
        axes.errorbar(row.mean["logratio_mean"], row.mean[column], xerr=row.std.get("logratio_mean") or 0.0,
                      yerr=row.std.get(column) or 0.0, fmt=look["marker"], color=look["color"], capsize=3,
                      label=row_label(row, table), markersize=9 if row.method == BASE_METHOD else 6)
    axes.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xlabel("KL proxy: mean held-out log-ratio Δ(y) vs the reference (nats)")
    axes.set_ylabel(("average" if column == AVERAGE else "partial average") + " score (%)")
    note = "" if column == AVERAGE else " — partial: some tasks missing"
    axes.set_title(f"Alignment frontier ({table.spec.name}){note}", fontsize="medium")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


def read_train_log(path: Path) -> dict[str, list[tuple[float, float]]]:
    """{curve: [(step, value)]} for loss, accuracy and margin; a bad line names the file and line."""
    curves: dict[str, list] = {"loss": [], "accuracy": [], "margin": []}
    for _, record in train_log_records(path):
        if not isinstance(record.get("step"), (int, float)):
            continue  # the Trainer's closing summary has no per-step values
        step = float(record["step"])
        if isinstance(record.get("loss"), (int, float)):
            curves["loss"].append((step, float(record["loss"])))
        if isinstance(record.get("rewards/accuracy"), (int, float)):
            curves["accuracy"].append((step, float(record["rewards/accuracy"])))
        margin = record.get("rewards/margin")
        if not isinstance(margin, (int, float)) and all(
                isinstance(record.get(k), (int, float)) for k in ("rewards/desirable", "rewards/undesirable")):
            margin = record["rewards/desirable"] - record["rewards/undesirable"]
        if isinstance(margin, (int, float)):
            curves["margin"].append((step, float(margin)))
    return curves


def _mean_curve(curves: list[list[tuple[float, float]]]) -> tuple[list[float], list[float]]:
    by_step: dict[float, list[float]] = {}
    for curve in curves:
        for step, value in curve:
            if math.isfinite(value):
                by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    return steps, [float(np.mean(by_step[s])) for s in steps]


def training_curves(table) -> Figure | None:
    """Loss, implicit-reward accuracy and margin per method row (mean over its seeds at each step)."""
    logs = {}
    for row in table.rows:
        per_run = [read_train_log(run.folder / TRAIN_LOG) for run in row.runs]
        if any(curve for log in per_run for curve in log.values()):
            logs[row_label(row, table)] = per_run
    if not logs:
        return None
    figure = new_figure(15.0, 4.2)
    looks = dict(zip(logs, styles(len(logs))))
    for index, (key, title) in enumerate(CURVES, start=1):
        axes = figure.add_subplot(1, len(CURVES), index)
        for label, per_run in logs.items():
            steps, values = _mean_curve([log[key] for log in per_run])
            if steps:
                axes.plot(steps, values, label=label, linewidth=1.2, color=looks[label]["color"],
                          linestyle=looks[label]["linestyle"])
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("step")
        axes.set_title(title)
        if index == len(CURVES):
            axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.suptitle("Training curves (mean over seeds)")
    figure.tight_layout()
    return figure


def heatmap(table) -> Figure | None:
    """Methods × tasks: colour = Δ vs base where a base row exists (else the score), text = the score."""
    tasks = table.task_ids
    rows = table.rows
    scores = np.array([[row.mean.get(t) if row.mean.get(t) is not None else np.nan for t in tasks] for row in rows],
                      dtype=float)
    if np.isnan(scores).all():
        return None
    has_base = any(row.method == BASE_METHOD for row in rows)
    if has_base:
        colours = np.array([[0.0 if row.method == BASE_METHOD else
                             (row.delta.get(t) if row.delta.get(t) is not None else np.nan) for t in tasks]
                            for row in rows], dtype=float)
        limit = float(np.nanmax(np.abs(colours))) if not np.isnan(colours).all() else 1.0
        limit = limit or 1.0
        colour_map, vmin, vmax, bar_label = "RdBu", -limit, limit, "Δ vs base (points)"
    else:
        colours, colour_map, vmin, vmax, bar_label = scores, "viridis", None, None, "score (%)"
    figure = new_figure(max(5.0, 0.9 * len(tasks) + 3), max(3.0, 0.45 * len(rows) + 1.5))
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_invalid(colours), cmap=colour_map, vmin=vmin, vmax=vmax, aspect="auto")
    axes.set_xticks(range(len(tasks)), tasks, rotation=30, ha="right")
    axes.set_yticks(range(len(rows)), [row_label(row, table) for row in rows])
    for i in range(len(rows)):
        for j in range(len(tasks)):
            text = "missing" if math.isnan(scores[i, j]) else f"{scores[i, j]:.1f}"
            level = float(image.norm(colours[i, j])) if not math.isnan(colours[i, j]) else 0.5
            dark = level < 0.2 or level > 0.8 if has_base else level < 0.3  # RdBu's ends, viridis' low end
            axes.text(j, i, text, ha="center", va="center", fontsize="small", color="white" if dark else "black")
    figure.colorbar(image, ax=axes, label=bar_label)
    axes.set_title(f"{table.spec.name}: methods × tasks (score %)")
    figure.tight_layout()
    return figure


PLOTS = {"task_bars": task_bars, "frontier": frontier, "training_curves": training_curves, "heatmap": heatmap}


def save_figure(figure: Figure, stem: Path) -> tuple[Path, Path]:
    """``stem``.png and ``stem``.svg, each written atomically."""
    paths = []
    for fmt in ("png", "svg"):
        buffer = io.BytesIO()
        figure.savefig(buffer, format=fmt)
        path = stem.with_suffix(f".{fmt}")
        write_bytes_atomic(path, buffer.getvalue())
        paths.append(path)
    return paths[0], paths[1]


def write_plots(table, out_dir: Path, prefix: str = "") -> dict[str, tuple[Path, Path]]:
    """Every plot that has something to draw: {name: (png, svg)}; a plot with nothing to draw is left out
    (and a stale one from an earlier call removed)."""
    out_dir = Path(out_dir)
    written = {}
    for name, draw in PLOTS.items():
        stem = out_dir / f"{prefix}{name}"
        figure = draw(table)
        if figure is None:
            for suffix in (".png", ".svg"):
                stem.with_suffix(suffix).unlink(missing_ok=True)
            continue
        written[name] = save_figure(figure, stem)
    return written
