"""Every plot of the reports, drawn from a ``suite.analysis.tables.Table`` (matplotlib's Agg, no pyplot state):

- ``task_bars``: each score column per method row, error bars = std over seeds (several seeds) or the
  standard error over documents (one run);
- ``frontier``: the leaderboard average (or the partial one) against the KL proxy — the mean held-out
  log-ratio Δ(y) = log π_θ(y|x) − log π_ref(y|x) — one point per method: how far a method moved from
  its reference for what it gained (the alignment frontier);
- ``training_curves``: loss, implicit-reward accuracy and margin against step, per method (mean over
  seeds) or per run, from ``train_log.jsonl`` (``suite.execution.store.train_curves``);
- ``heatmap``: methods × tasks; colour = difference from the base model where there is one (else the
  score), each cell annotated with the score;
- ``alignment_bars``: held-out implicit-reward accuracy and margin per trained method, the base as a line;
- ``delta_histograms``: the share of a fine-tuned delta's entries per log10|δ| bin, one line per delta.

A plot with nothing to draw is None. Leaderboard tables get the first four (``PLOTS``) as PNG and SVG.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from suite.analysis.tables import (
    AVERAGE,
    FRACTION,
    PARTIAL,
    Table,
    headline_column,
    identity_columns,
)
from suite.core.io import write_bytes_atomic
from suite.execution.store import BASE_ROW, train_curves
from suite.merging.delta import HISTOGRAM_EDGES

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


def row_label(row, table: Table) -> str:
    return " · ".join(str(getattr(row, name)) for name in identity_columns(table))


def column_title(column: str) -> str:
    return {AVERAGE: "Average", PARTIAL: "Partial avg"}.get(column, column)


def percent(table: Table, column: str, value):
    """A value on the plots' percent scale (stored fractions × 100); NaN when missing."""
    if value is None:
        return np.nan
    return 100 * value if table.kind(column) == FRACTION else value


def task_bars(table: Table, columns: list[str] | None = None, title: str | None = None) -> Figure | None:
    """Grouped bars: each score column (tasks, then the average) on x, one bar per method row."""
    columns = [c for c in (columns or table.columns) if any(row.mean.get(c) is not None for row in table.rows)]
    if not columns:
        return None
    figure = new_figure(max(6.0, 1.1 * len(columns) + 3), 4.8)
    axes = figure.add_subplot()
    width = 0.8 / len(table.rows)
    looks = styles(len(table.rows))
    for index, row in enumerate(table.rows):
        values = [percent(table, c, row.mean.get(c)) for c in columns]
        spread = row.std if len(row.runs) > 1 else row.runs[0].stderr
        errors = [percent(table, c, spread.get(c) or 0.0) for c in columns]
        positions = [p - 0.4 + width * (index + 0.5) for p in range(len(columns))]
        axes.bar(positions, values, width, yerr=errors, capsize=2, label=row_label(row, table),
                 color=looks[index]["color"])
    axes.set_xticks(range(len(columns)), [column_title(c) for c in columns], rotation=20, ha="right")
    for position, column in enumerate(columns):
        if column in (AVERAGE, PARTIAL):
            axes.axvline(position - 0.5, color="grey", linewidth=0.8)
    axes.set_ylabel("score (%)")
    name = table.spec.name if table.spec else "scores"
    axes.set_title(title or f"{name}: per task (error bars: std over seeds, or stderr for one run)")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


def frontier(table: Table) -> Figure | None:
    """Average score against the KL proxy, one point per method row (error bars = std over seeds)."""
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
                      label=row_label(row, table), markersize=9 if row.method == BASE_ROW else 6)
    axes.axvline(0.0, color="grey", linewidth=0.8, linestyle=":")
    axes.set_xlabel("KL proxy: mean held-out log-ratio Δ(y) vs the reference (nats)")
    axes.set_ylabel(("average" if column == AVERAGE else "partial average") + " score (%)")
    note = "" if column == AVERAGE else " — partial: some tasks missing"
    axes.set_title(f"Alignment frontier ({table.spec.name if table.spec else 'runs'}){note}", fontsize="medium")
    axes.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


def _mean_curve(curves: list[list[tuple[float, float]]]) -> tuple[list[float], list[float]]:
    by_step: dict[float, list[float]] = {}
    for curve in curves:
        for step, value in curve:
            if math.isfinite(value):
                by_step.setdefault(step, []).append(value)
    steps = sorted(by_step)
    return steps, [float(np.mean(by_step[s])) for s in steps]


def training_curves(table: Table, per_run: bool = False) -> Figure | None:
    """Loss, implicit-reward accuracy and margin per method row (mean over its seeds at each step), or with
    ``per_run`` one line per run."""
    logs = {}
    groups = [(run.run_id, [run]) for run in sorted(table.runs, key=lambda r: (r.method, r.run_id))] if per_run \
        else [(row_label(row, table), row.runs) for row in table.rows]
    for label, runs in groups:
        per_seed = [train_curves(run.folder) for run in runs]
        if any(curve for log in per_seed for curve in log.values()):
            logs[label] = per_seed
    if not logs:
        return None
    figure = new_figure(15.0, 4.2)
    looks = dict(zip(logs, styles(len(logs))))
    handles: dict = {}
    for index, (key, title) in enumerate(CURVES, start=1):
        axes = figure.add_subplot(1, len(CURVES), index)
        for label, per_seed in logs.items():
            steps, values = _mean_curve([log[key] for log in per_seed])
            if steps:
                (line,) = axes.plot(steps, values, label=label, linewidth=1.2, color=looks[label]["color"],
                                    linestyle=looks[label]["linestyle"])
                handles.setdefault(label, line)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.set_xlabel("step")
        axes.set_title(title)
        if index == len(CURVES):  # one legend for all panels (a run may log no accuracy or margin)
            axes.legend(list(handles.values()), list(handles), fontsize="small", loc="upper left",
                        bbox_to_anchor=(1.0, 1.0))
    figure.suptitle("Training curves" + ("" if per_run else " (mean over seeds)"))
    figure.tight_layout()
    return figure


def heatmap(table: Table) -> Figure | None:
    """Methods × tasks: colour = Δ vs base where a base row exists (else the score), text = the score."""
    tasks = table.task_ids
    rows = table.rows
    scores = np.array([[percent(table, t, row.mean.get(t)) for t in tasks] for row in rows], dtype=float)
    if not scores.size or np.isnan(scores).all():
        return None
    has_base = any(row.method == BASE_ROW for row in rows)
    if has_base:
        colours = np.array([[0.0 if row.method == BASE_ROW else percent(table, t, row.delta.get(t)) for t in tasks]
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
    axes.set_title(f"{table.spec.name if table.spec else 'runs'}: methods × tasks (score %)")
    figure.tight_layout()
    return figure


def alignment_bars(table: Table) -> Figure | None:
    """Held-out implicit-reward accuracy and margin per trained method; the base model as a dashed line."""
    metrics = [m for m in ("reward_accuracy", "reward_margin") if m in table.alignment_columns]
    if not metrics or all(row.mean.get(m) is None for row in table.rows for m in metrics):
        return None
    figure = new_figure(5.0 * len(metrics), 4.0)
    trained = [row for row in table.rows if row.method != BASE_ROW]
    bases = [row for row in table.rows if row.method == BASE_ROW]
    for index, metric in enumerate(metrics, start=1):
        axes = figure.add_subplot(1, len(metrics), index)
        axes.bar([row_label(row, table) for row in trained], [percent(table, metric, row.mean.get(metric))
                                                             for row in trained],
                 yerr=[percent(table, metric, row.std.get(metric) or 0.0) for row in trained], capsize=3)
        for row in bases:
            if row.mean.get(metric) is not None:
                axes.axhline(percent(table, metric, row.mean[metric]), color="black", linestyle="--", label="base")
        if bases:
            axes.legend(fontsize="small")
        axes.set_title(metric.replace("_", " ") + (" (%)" if table.kind(metric) == FRACTION else ""))
        axes.tick_params(axis="x", labelrotation=20)
    figure.suptitle("Held-out implicit reward (mean over seeds)")
    figure.tight_layout()
    return figure


def delta_histograms(reports: dict[str, dict], title: str = "Delta magnitudes") -> Figure | None:
    """One line per delta report (``suite.merging.delta.delta_report``): the share of entries in each
    log10|δ| bin (exact zeros left out)."""
    if not reports:
        return None
    figure = new_figure(7.0, 4.0)
    axes = figure.add_subplot()
    edges = HISTOGRAM_EDGES
    centres = [edges[0] - 0.5] + [(a + b) / 2 for a, b in zip(edges, edges[1:])] + [edges[-1] + 0.5]
    for label, report in reports.items():
        counts = report["histogram"]["counts"]
        total = max(1, report["overall"]["entries"])
        axes.plot(centres, [c / total for c in counts], marker="o", label=label)
    axes.set_xlabel("log10 |δ|")
    axes.set_ylabel("share of entries")
    axes.set_title(title)
    axes.legend(fontsize="small")
    figure.tight_layout()
    return figure


PLOTS = {"task_bars": task_bars, "frontier": frontier, "training_curves": training_curves, "heatmap": heatmap}


def png_bytes(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def save_png(figure: Figure | None, path: Path) -> Path | None:
    """Write ``figure`` as PNG; when there is nothing to draw, remove a stale plot and return None."""
    path = Path(path)
    if figure is None:
        path.unlink(missing_ok=True)
        return None
    write_bytes_atomic(path, png_bytes(figure))
    return path


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


def write_plots(table: Table, out_dir: Path, prefix: str = "") -> dict[str, tuple[Path, Path]]:
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
