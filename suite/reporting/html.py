"""One HTML page per results folder: ``DIR/report/index.html``, everything the folder holds in one file.

``alignsuite report DIR`` writes it next to report.md (``write_html_report``). The page holds, for every
leaderboard spec the complete runs were evaluated on, the leaderboard tables (``suite.reporting.leaderboard``:
methods, per-task differences, runs, alignment metrics, missing tasks, evaluation settings; sortable by a
click on a header) and their plots (``suite.reporting.plots``, drawn from the same table and embedded as PNG data
URIs); the claim verdicts of every reproduction report in ``DIR/report/`` (``reproduce-<table>.json``, as
``alignsuite reproduce`` wrote it); the failed and unfinished runs with their recorded error and failure;
and every run's manifest, pretty-printed in a collapsed block.

It is self-contained and readable offline: the CSS, the sort script and the images are inline and nothing
is fetched. Every number on it is read from the stored run files (and the reproduction reports written
from them); nothing is recomputed from anything else.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from suite.analysis.tables import build_table, collect_runs, spec_source
from suite.core.errors import SuiteError
from suite.core.io import read_json_object, write_bytes_atomic
from suite.evaluation.leaderboard import list_leaderboards, load_leaderboard
from suite.execution.store import (
    KNOWN_STATUSES,
    STATUS_COMPLETE,
    STATUS_FAILED,
    load_runs,
)
from suite.reporting.leaderboard import render_html_section
from suite.reporting.plots import PLOTS, png_bytes
from suite.reporting.render import HTML_SORT_SCRIPT, HTML_STYLE, html_table
from suite.reporting.report import distinct
from suite.reporting.reproduce import reproduction_html

PAGE_STYLE = """
nav ul { columns: 2; }
section { margin-bottom: 2.5em; }
details { margin: 0.3em 0; }
summary { cursor: pointer; }
pre { background: #f7f7f7; border: 1px solid #e3e3e3; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
td.verdict-agrees { background: #eaf6ea; }
td.verdict-disagrees { background: #fbeaea; }
td.verdict-inconclusive { background: #fff8e0; }
"""
PLOT_TITLES = {"task_bars": "scores per task", "frontier": "average against the KL proxy (alignment frontier)",
               "training_curves": "training curves", "heatmap": "methods × tasks"}
ERROR_LOG_LINES = 40  # the end of a failed run's error.log shown on the page


@dataclass
class Boards:
    """The leaderboard tables of a results folder, and the specs whose runs could not be tabled (with why)."""

    tables: list = field(default_factory=list)
    skipped: list = field(default_factory=list)  # (spec name, reason)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def build_boards(results_dir: Path, specs: list[str] = (), significance_resamples: int = 1000) -> Boards:
    """One table per leaderboard the folder's complete runs were evaluated on (``specs``: spec names or YAML
    paths to use for specs that are neither shipped nor findable through the runs' configs)."""
    runs = load_runs(results_dir)  # a SuiteError when there are none
    explicit = {load_leaderboard(str(s)).name: str(s) for s in specs}
    used = sorted({name for run in runs if run.complete and (name := run.leaderboard)})
    if not used:
        complete = sum(run.status == STATUS_COMPLETE for run in runs)
        raise SuiteError(f"{results_dir}: no complete run was evaluated on a leaderboard ({complete} complete of "
                         f"{len(runs)} runs): there is no leaderboard table for report/index.html")
    boards = Boards()
    for name in used:
        argument = spec_source(name, runs, explicit)
        if argument is None:
            boards.skipped.append((name, "the spec is not in leaderboards/ and no run's config names its file"))
            continue
        try:
            boards.tables.append(build_table(collect_runs([Path(results_dir)], argument), significance_resamples))
        except SuiteError as exc:
            boards.skipped.append((name, str(exc)))
    if not boards.tables:
        raise SuiteError(f"{results_dir}: no leaderboard table could be built: " +
                         "; ".join(f"{name}: {why}" for name, why in boards.skipped))
    return boards


def plot_images(table) -> dict[str, bytes]:
    """Every plot of ``suite.reporting.plots`` that has something to draw for ``table``, as PNG bytes: {caption: png}."""
    images = {}
    for name, draw in PLOTS.items():
        figure = draw(table)
        if figure is not None:
            images[f"{table.spec.name}: {PLOT_TITLES.get(name, name)}"] = png_bytes(figure)
    return images


# -- reproduction reports ---------------------------------------------------------------------------


def reproduction_reports(report_dir: Path) -> list[tuple[Path, dict | None]]:
    """Each ``reproduce-<table>`` report in ``report_dir``, by table: (its .json, the verdicts as stored), or
    (its .md, None) when only the Markdown was kept or the JSON cannot be read."""
    found = {}
    for path in sorted(Path(report_dir).glob("reproduce-*.json")):
        try:
            found[path.stem] = (path, read_json_object(path))
        except SuiteError:
            pass  # unreadable: the Markdown below stands in for it
    for path in sorted(Path(report_dir).glob("reproduce-*.md")):
        found.setdefault(path.stem, (path, None))
    return [found[stem] for stem in sorted(found)]


# -- runs: failures and manifests -------------------------------------------------------------------


def failed_section(runs: list) -> str:
    """The runs that did not complete: status, the recorded error and ``failure`` (step, key, checkpoint)."""
    unfinished = sorted((run for run in runs if run.status != STATUS_COMPLETE),
                        key=lambda r: (r.status != STATUS_FAILED, r.run_id))
    if not unfinished:
        return "<p>None: every run completed.</p>"
    header = ["run", "method", "seed", "status", "error", "failure"]
    body, logs = [], []
    for run in unfinished:
        manifest = run.manifest
        failure = manifest.get("failure")
        failure_text = "—"
        if isinstance(failure, dict):
            failure_text = ", ".join(f"{k}: {v}" for k, v in failure.items())
        elif failure is not None:
            failure_text = str(failure)
        state = "failed" if run.status == STATUS_FAILED else "incomplete (still running or interrupted)"
        error = manifest.get("error") or ("(no error recorded)" if run.status == STATUS_FAILED else "—")
        body.append([html.escape(str(c)) for c in (run.run_id, run.method, manifest.get("seed"), state, error,
                                                   failure_text)])
        log = run.folder / "error.log"
        if log.is_file():
            tail = "\n".join(log.read_text(errors="replace").splitlines()[-ERROR_LOG_LINES:])
            logs.append(f"<details><summary>{html.escape(run.run_id)}: error.log (last {ERROR_LOG_LINES} lines)"
                        f"</summary><pre>{html.escape(tail)}</pre></details>")
    table = html_table(header, body, 6, table_id="failed-runs", markup=True)
    return "\n".join(["<p>Listed, never scored.</p>", table] + logs)


def manifests_section(runs: list) -> str:
    blocks = []
    for run in runs:
        text = json.dumps(run.manifest, indent=2, default=str)
        summary = f"{run.run_id} — {run.method}, seed {run.manifest.get('seed')}, {run.status}"
        blocks.append(f'<details class="manifest" id="manifest-{_slug(run.run_id)}"><summary>{html.escape(summary)}'
                      f"</summary><pre>{html.escape(text)}</pre></details>")
    return "\n".join(blocks)


# -- the page --------------------------------------------------------------------------------------


def render_page(results_dir: Path, specs: list[str] = (), significance_resamples: int = 1000) -> str:
    results_dir = Path(results_dir)
    boards = build_boards(results_dir, specs, significance_resamples)
    runs = load_runs(results_dir)
    experiments = [str(e) for e in distinct(run.manifest.get("experiment") for run in runs) if e is not None]
    title = f"alignsuite report: {', '.join(experiments) or results_dir.name}"
    counts = {status: sum(run.status == status for run in runs) for status in KNOWN_STATUSES}
    reproductions = reproduction_reports(results_dir / "report")
    unfinished = len(runs) - counts[STATUS_COMPLETE]

    contents = [(f"leaderboard-{_slug(t.spec.name)}", f"Leaderboard: {t.spec.name}") for t in boards.tables]
    if reproductions:
        contents.append(("reproductions", "Reproductions"))
    contents += [("failed", f"Failed and unfinished runs ({unfinished})"),
                 ("manifests", f"Run manifests ({len(runs)})")]
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             f"<title>{html.escape(title)}</title>", f"<style>{HTML_STYLE}{PAGE_STYLE}</style>", "</head>", "<body>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p>Results folder <code>{html.escape(str(results_dir))}</code>: {counts['complete']} complete, "
             f"{counts['failed']} failed, {counts['running']} running run(s). Every number on this page is read from "
             "the stored run files (<code>runs/&lt;id&gt;/</code>) and the reproduction reports written from them; "
             "the page is self-contained (nothing is fetched).</p>",
             "<nav><ul>" + "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in contents)
             + "</ul></nav>"]
    for table in boards.tables:
        slug = _slug(table.spec.name)
        parts += [f'<section id="leaderboard-{slug}">',
                  render_html_section(table, plot_images(table), id_prefix=f"{slug}-", level=2), "</section>"]
    if boards.skipped:
        parts.append('<p class="warning">Not tabled: ' + "; ".join(
            f"runs evaluated on <code>{html.escape(n)}</code> ({html.escape(why)})" for n, why in boards.skipped)
            + ".</p>")
    if reproductions:
        parts += ['<section id="reproductions">', "<h2>Reproductions</h2>",
                  "<p>Each paper claim against our numbers: <strong>agrees</strong> when every difference is "
                  "significantly positive (paired bootstrap over documents), <strong>disagrees</strong> when one is "
                  "significantly negative, <strong>inconclusive</strong> within noise.</p>"]
        parts += [reproduction_html(path, payload) for path, payload in reproductions] + ["</section>"]
    parts += ['<section id="failed">', "<h2>Failed and unfinished runs</h2>", failed_section(runs), "</section>",
              '<section id="manifests">', "<h2>Run manifests</h2>",
              "<p>Each run's <code>manifest.json</code> as stored: config, hash, status, versions, git revision, "
              "times.</p>", manifests_section(runs), "</section>",
              f"<script>{HTML_SORT_SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_html_report(results_dir: Path, specs: list[str] = (), significance_resamples: int = 1000) -> Path:
    """Write ``results_dir/report/index.html`` (see the module docstring) and return its path. A SuiteError
    when the folder has no runs or no complete run evaluated on a leaderboard."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise SuiteError(f"{results_dir}: no such results directory")
    page = render_page(results_dir, specs, significance_resamples)
    path = results_dir / "report" / "index.html"
    write_bytes_atomic(path, page.encode())
    return path
