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
average. Every number comes from the runs' files (read through ``suite.execution.store``, aggregated by ``suite.analysis.tables``).
"""

from __future__ import annotations

import base64
import csv
import html
import io
from pathlib import Path

from suite.analysis.tables import (
    ALIGNMENT_METRICS,
    AVERAGE,
    PARTIAL,
    MethodRow,
    RunRow,
    Table,
    build_table,
    collect_runs,
    headline_column,
    identity_columns,
)
from suite.core.errors import SuiteError
from suite.core.io import write_bytes_atomic
from suite.execution.store import BASE_ROW
from suite.reporting.render import (
    HTML_SORT_SCRIPT,
    HTML_STYLE,
    csv_number,
    fmt,
    html_list,
    html_table,
    latex_escape,
    latex_table,
    markdown_table,
)

FORMATS = ("md", "csv", "html", "tex", "parquet")
DEFAULT_FORMATS = ("md", "csv", "html", "tex")  # parquet on request (--format parquet)
ALIGNMENT_TITLES = {"reward_accuracy": "reward accuracy", "reward_margin": "reward margin",
                    "logp_accuracy": "log-prob accuracy", "logratio_mean": "KL proxy (mean Δ)"}


# -- cell text ------------------------------------------------------------------------------------


def column_title(column: str) -> str:
    return {AVERAGE: "Average", PARTIAL: "Partial avg"}.get(column, column)


def summary_cell(row: MethodRow, column: str, plus_minus: str = "±") -> str:
    if row.mean.get(column) is None:
        return "missing" if column in row.missing else "—"
    text = fmt(row.mean[column])
    if row.std.get(column) is not None:
        text += f" {plus_minus} {fmt(row.std[column])}"
    return text + (" (partial)" if column in row.missing else "")


def run_cell(run: RunRow, column: str) -> str:
    value = run.scores.get(column)
    if value is None:
        return "missing" if column in run.missing else "—"
    error = run.stderr.get(column)
    return fmt(value) + (f" ± {fmt(error)}" if error is not None else "") + \
        (" (partial)" if column in run.missing else "")


def delta_cell(row: MethodRow, column: str) -> str:
    if row.method == BASE_ROW:
        return "(base)"
    return fmt(row.delta.get(column), signed=True)


def delta_interval_cell(row: MethodRow, column: str) -> str:
    """Δ vs base with its paired 95 % interval where the column was tested, else the plain Δ."""
    result = row.significance.get(column)
    if row.method == BASE_ROW or result is None or isinstance(result, str):
        return delta_cell(row, column)
    return f"{fmt(result.difference, signed=True)} [{fmt(result.low, signed=True)}, {fmt(result.high, signed=True)}]"


def detectable_difference(row: MethodRow, column: str) -> float | None:
    """The half-width of the paired 95 % interval of ``row`` vs base on ``column``: the smallest difference
    this evaluation could tell from noise."""
    result = row.significance.get(column)
    if row.method == BASE_ROW or result is None or isinstance(result, str):
        return None
    return (result.high - result.low) / 2


def detectable_rows(table: Table) -> tuple[list[str], list[list[str]]]:
    """Per method row and tested column: the smallest detectable difference from base (±, points)."""
    rows = [row for row in table.rows if row.method != BASE_ROW]
    widths = {(row.method, c): detectable_difference(row, c) for row in rows for c in table.columns}
    columns = [c for c in table.columns if any(widths[row.method, c] is not None for row in rows)]
    body = [[row.method] + [width_cell(widths[row.method, c]) for c in columns] for row in rows]
    return ["method"] + [column_title(c) for c in columns], body


def unresolved_columns(table: Table) -> dict[str, float]:
    """column -> its smallest detectable difference, for every tested column that cannot rank the rows."""
    out = {}
    for column in table.columns:
        width = cannot_resolve(table, column)
        if width is not None:
            out[column] = width
    return out


def width_text(width: float) -> str:
    """A detectable difference, two decimals — or one significant digit when that rounds to 0.00 (identical
    answers on almost every document give intervals that narrow)."""
    return fmt(width) if width >= 0.005 else f"{width:.1g}"


def width_cell(width: float | None) -> str:
    """A table cell for a detectable difference: ±``width_text``, or — where nothing was tested."""
    return "—" if width is None else f"±{width_text(width)}"


def cannot_resolve_sentence(title: str, smallest: float, consequence: str) -> str:
    """The label of a column that cannot rank its rows, with the narrowest detectable difference among them."""
    return (f"**{title}: {CANNOT_RESOLVE}** — every method's difference from base is smaller than its own smallest "
            f"detectable difference (the half-width of its paired 95 % interval, ±{width_text(smallest)} at the "
            "narrowest); " + consequence)


def significance_cell(row: MethodRow, column: str) -> str:
    result = row.significance.get(column)
    if result is None:
        return "—"
    if isinstance(result, str):
        return f"n/a ({result})"
    return f"{result.verdict_text()} (p {result.p_text()}, [{fmt(result.low, signed=True)}, {fmt(result.high, signed=True)}])"


CANNOT_RESOLVE = "cannot resolve at this budget"


def cannot_resolve(table: Table, column: str) -> float | None:
    """The smallest detectable difference (half-width of the paired 95 % interval vs base) of ``column``
    when it exceeds every observed difference from base — the column cannot rank these rows — else None."""
    widths = []
    for row in table.rows:
        half = detectable_difference(row, column)
        if half is None:
            continue
        if abs(row.significance[column].difference) >= half:
            return None
        widths.append(half)
    return min(widths) if widths else None


def summary_rows(table: Table, plus_minus: str = "±") -> tuple[list[str], list[list[str]]]:
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
            cells.append("—" if row.method == BASE_ROW else significance_cell(row, focus))
        body.append(cells)
    return header, body


def delta_rows(table: Table) -> tuple[list[str], list[list[str]]]:
    columns = [c for c in table.columns]
    header = ["method"] + (["model"] if "model" in identity_columns(table) else []) + \
        [f"Δ {column_title(c)}" for c in columns]
    body = []
    for row in table.rows:
        if row.method == BASE_ROW:
            continue
        body.append([row.method] + ([row.model] if "model" in identity_columns(table) else []) +
                    [delta_interval_cell(row, c) for c in columns])
    return header, body


def runs_rows(table: Table) -> tuple[list[str], list[list[str]]]:
    header = ["run", "method", "model", "dataset", "seed"] + [column_title(c) for c in table.columns]
    body = [[run.run_id, run.method, run.model, run.dataset, str(run.seed)] +
            [run_cell(run, c) for c in table.columns] for run in table.runs]
    return header, body


def alignment_rows(table: Table, resamples: int = 2000) -> tuple[list[str], list[list[str]]]:
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
                cells.append(f"{fmt(row.mean[metric], 3)} [{fmt(ci.low, 3)}, {fmt(ci.high, 3)}]")
            elif row.std.get(metric) is not None:
                cells.append(f"{fmt(row.mean[metric], 3)} ± {fmt(row.std[metric], 3)}")
            else:
                cells.append(fmt(row.mean[metric], 3))
        body.append(cells)
    return header, body


def missing_notes(table: Table) -> list[str]:
    notes: dict[str, set] = {}
    for run in table.runs:
        for task, leaves in run.missing.items():
            text = f"{task}: " + (f"{', '.join(leaves)} did not run" if leaves else "did not run")
            notes.setdefault(text, set()).add(run.run_id)
    return [f"{text} ({len(ids)} run{'s' if len(ids) > 1 else ''})" for text, ids in sorted(notes.items())]


def settings_notes(table: Table) -> list[str]:
    """The evaluation settings the runs recorded (harness version, batch size, chat template, shots, data)."""
    seen: dict[str, set] = {}
    for run in table.runs:
        settings = run.metrics.get("eval_settings") or {}
        for key in ("lm_eval_version", "batch_size", "chat_template", "apply_chat_template", "fewshot_as_multiturn",
                    "chat_template_sha256", "data_source"):
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


def intro_lines(table: Table) -> list[str]:
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


def render_markdown(table: Table) -> str:
    focus = column_title(headline_column(table))
    sections = [f"# Leaderboard: {table.spec.name}", "\n".join(intro_lines(table)),
                "## Methods", markdown_table(*summary_rows(table)),
                f"Δ: difference from the base model's row (same model). `significant?`: paired bootstrap of the "
                f"{focus.lower()} over the documents both were scored on (95 % interval excludes 0)."]
    detectable = cannot_resolve(table, headline_column(table))
    if detectable is not None:
        sections.append(cannot_resolve_sentence(focus, detectable, "the order of the rows above is not a ranking."))
    header, body = delta_rows(table)
    if body:
        sections += ["## Difference from the base model, per task", markdown_table(header, body)]
        tested = any(not isinstance(r, str) for row in table.rows for r in row.significance.values())
        if tested:
            sections.append("Δ [paired 95 % bootstrap interval over the documents both rows were scored on], points.")
            sections += ["## Smallest detectable difference from base", markdown_table(*detectable_rows(table)),
                         "Half-width of each paired 95 % interval: a difference smaller than this cannot be told "
                         "from noise at this evaluation size."]
            unresolved = unresolved_columns(table)
            if unresolved:
                sections.append("**" + CANNOT_RESOLVE + "**: " + ", ".join(
                    f"{column_title(c)} (±{width_text(w)} needed; every observed difference is smaller)"
                    for c, w in unresolved.items()))
    sections += ["## Runs", markdown_table(*runs_rows(table)),
                 "## Alignment metrics (held-out pairs)", markdown_table(*alignment_rows(table)),
                 "One run: value [95 % bootstrap interval over the held-out pairs]; several seeds: mean ± std."]
    notes = missing_notes(table)
    sections += ["## Missing tasks", "\n".join(f"- {n}" for n in notes) if notes else "None: every task ran in full."]
    settings = settings_notes(table)
    if settings:
        sections += ["## Evaluation settings (as recorded by the runs)", "\n".join(f"- {s}" for s in settings)]
    if table.excluded:
        sections += ["## Runs left out", "\n".join(f"- `{run_id}`: {why}" for run_id, why in table.excluded)]
    return "\n\n".join(sections) + "\n"


def render_csv(table: Table) -> str:
    """One row per method row: mean, std over seeds and difference from base per column."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = table.columns + list(ALIGNMENT_METRICS)
    writer.writerow(["method", "model", "dataset", "seeds"] +
                    [f"{c}{suffix}" for c in columns for suffix in ("", "_std", "_delta")] + ["missing"])
    for row in table.rows:
        cells = [row.method, row.model, row.dataset, len(row.runs)]
        for column in columns:
            cells += [csv_number(row.mean.get(column)), csv_number(row.std.get(column)),
                      csv_number(row.delta.get(column))]
        writer.writerow(cells + [";".join(row.missing)])
    return out.getvalue()


def render_runs_csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = table.columns
    writer.writerow(["run_id", "method", "model", "dataset", "seed", "folder"] +
                    [f"{c}{suffix}" for c in columns for suffix in ("", "_stderr")] + list(ALIGNMENT_METRICS) +
                    ["missing"])
    for run in table.runs:
        cells = [run.run_id, run.method, run.model, run.dataset, run.seed, str(run.folder)]
        for column in columns:
            cells += [csv_number(run.scores.get(column)), csv_number(run.stderr.get(column))]
        cells += [csv_number(run.alignment.get(m)) for m in ALIGNMENT_METRICS]
        writer.writerow(cells + [";".join(sorted(run.missing))])
    return out.getvalue()


def method_records(table: Table) -> list[dict]:
    """The method rows as records (the CSV's columns, numbers as numbers): for parquet and DataFrames."""
    columns = table.columns + list(ALIGNMENT_METRICS)
    records = []
    for row in table.rows:
        record = {"method": row.method, "model": row.model, "dataset": row.dataset, "seeds": len(row.runs)}
        for column in columns:
            for suffix, values in (("", row.mean), ("_std", row.std), ("_delta", row.delta)):
                value = values.get(column)
                record[f"{column}{suffix}"] = None if value is None else float(value)
        records.append({**record, "missing": ";".join(row.missing)})
    return records


def run_records(table: Table) -> list[dict]:
    """The run rows as records (the runs CSV's columns, numbers as numbers)."""
    records = []
    for run in table.runs:
        record = {"run_id": run.run_id, "method": run.method, "model": run.model, "dataset": run.dataset,
                  "seed": run.seed, "folder": str(run.folder)}
        for column in table.columns:
            for suffix, values in (("", run.scores), ("_stderr", run.stderr)):
                value = values.get(column)
                record[f"{column}{suffix}"] = None if value is None else float(value)
        record.update({m: run.alignment.get(m) for m in ALIGNMENT_METRICS})
        records.append({**record, "missing": ";".join(sorted(run.missing))})
    return records


def write_parquet(records: list[dict], path: Path) -> None:
    """Records as a parquet file (pandas + pyarrow), written to a temp file then moved into place."""
    import os

    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pd.DataFrame(records).to_parquet(tmp, index=False)
    os.replace(tmp, path)


def render_latex(table: Table) -> str:
    """The methods table as a booktabs tabular (\\usepackage{booktabs})."""
    header, body = summary_rows(table, plus_minus="$\\pm$")
    header = [h for h in header if h != "significant?"]
    caption = (f"{latex_escape(table.spec.name)}: scores in percent, mean $\\pm$ sample std over seeds; "
               "$\\Delta$ against the base model.")
    if not table.spec.comparable:
        caption += " Not comparable with the Open LLM Leaderboard."
    return latex_table(header, [row[:len(header)] for row in body], len(identity_columns(table)),
                       f"alignsuite leaderboard: {latex_escape(table.spec.name)}", caption)


def render_html_section(table: Table, images: dict | None = None, id_prefix: str = "",
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
    classes = ["base" if row.method == BASE_ROW else "" for row in table.rows]
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
    parts += [heading("Missing tasks"), html_list(notes) if notes else "<p>None: every task ran in full.</p>"]
    settings = settings_notes(table)
    if settings:
        parts += [heading("Evaluation settings"), html_list([s.replace("**", "") for s in settings])]
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


def render_html(table: Table, images: dict | None = None) -> str:
    """Self-contained HTML: inline CSS and sort script, plots as data URIs; nothing is loaded from elsewhere."""
    name = html.escape(table.spec.name)
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>Leaderboard: {name}</title>", f"<style>{HTML_STYLE}</style>", "</head>", "<body>",
             render_html_section(table, images), f"<script>{HTML_SORT_SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


# -- writing and the command ----------------------------------------------------------------------


def write_leaderboard(results_dirs: list[Path], spec_name: str | None = None, out_dir: Path | None = None,
                      formats: tuple = DEFAULT_FORMATS, plots: bool = True, significance_resamples: int = 1000) -> dict:
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
    if "parquet" in formats:
        for name, records in (("parquet", method_records(table)), ("runs parquet", run_records(table))):
            path = out_dir / f"{stem}{'-runs' if name.startswith('runs') else ''}.parquet"
            write_parquet(records, path)
            written[name] = path
    for kind in [f for f in formats if f != "parquet"]:
        suffix, render = renderers[kind]
        path = out_dir / f"{stem}{suffix}"
        write_bytes_atomic(path, render().encode())
        written[kind] = path
    if "csv" in formats:
        path = out_dir / f"{stem}-runs.csv"
        write_bytes_atomic(path, render_runs_csv(table).encode())
        written["runs csv"] = path
    return written
