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
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from suite.core.errors import SuiteError

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


def _spec_argument(name: str, runs: list, explicit: dict) -> str | None:
    """What to load the spec ``name`` from: a spec given by the caller, a shipped spec, or the spec file the
    runs' own config named (a local spec YAML) when it still holds that spec."""
    from suite.evaluation.leaderboard import list_leaderboards, load_leaderboard

    if name in explicit:
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


def build_boards(results_dir: Path, specs: list[str] = (), significance_resamples: int = 1000) -> Boards:
    """One table per leaderboard the folder's complete runs were evaluated on (``specs``: spec names or YAML
    paths to use for specs that are neither shipped nor findable through the runs' configs)."""
    from suite.evaluation.leaderboard import load_leaderboard
    from suite.reporting.leaderboard import _run_leaderboard, build_table, collect_runs
    from suite.reporting.report import STATUS_COMPLETE, load_runs

    runs = load_runs(results_dir)  # a SuiteError when there are none
    explicit = {load_leaderboard(str(s)).name: str(s) for s in specs}
    used = sorted({name for run in runs if run.status == STATUS_COMPLETE and (name := _run_leaderboard(run))})
    if not used:
        complete = sum(run.status == STATUS_COMPLETE for run in runs)
        raise SuiteError(f"{results_dir}: no complete run was evaluated on a leaderboard ({complete} complete of "
                         f"{len(runs)} runs): there is no leaderboard table for report/index.html")
    boards = Boards()
    for name in used:
        argument = _spec_argument(name, runs, explicit)
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
    from suite.reporting.plots import PLOTS

    images = {}
    for name, draw in PLOTS.items():
        figure = draw(table)
        if figure is None:
            continue
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        images[f"{table.spec.name}: {PLOT_TITLES.get(name, name)}"] = buffer.getvalue()
    return images


# -- reproduction reports ---------------------------------------------------------------------------


def reproduction_reports(report_dir: Path) -> list[tuple[Path, dict | None]]:
    """Each ``reproduce-<table>`` report in ``report_dir``, by table: (its .json, the verdicts as stored), or
    (its .md, None) when only the Markdown was kept or the JSON cannot be read."""
    from suite.core.io import read_json_object

    found = {}
    for path in sorted(Path(report_dir).glob("reproduce-*.json")):
        try:
            found[path.stem] = (path, read_json_object(path))
        except SuiteError:
            pass  # unreadable: the Markdown below stands in for it
    for path in sorted(Path(report_dir).glob("reproduce-*.md")):
        found.setdefault(path.stem, (path, None))
    return [found[stem] for stem in sorted(found)]


def _number(value, signed: bool = False) -> str:
    from suite.reporting.reproduce import _fmt

    return _fmt(value, signed) if value is None or isinstance(value, (int, float)) else html.escape(str(value))


def _simple_table(header: list[str], rows: list[list[str]], table_id: str, text_columns: int = 1,
                  cell_classes: list[list[str]] | None = None) -> str:
    """A table of already escaped cells (markup allowed), sortable like the leaderboard's."""
    from suite.reporting.leaderboard import _sort_value

    lines = [f'<table class="sortable" id="{html.escape(table_id)}">', "<thead><tr>"]
    lines += [f'<th class="{"text" if i < text_columns else "num"}">{h}</th>' for i, h in enumerate(header)]
    lines += ["</tr></thead>", "<tbody>"]
    for r, row in enumerate(rows):
        cells = []
        for i, cell in enumerate(row):
            css = ["text" if i < text_columns else "num"] + ([cell_classes[r][i]] if cell_classes and cell_classes[r][i]
                                                              else [])
            plain = html.unescape(re.sub(r"<[^>]+>", "", cell))
            value = plain if i < text_columns else _sort_value(plain)
            cells.append(f'<td class="{" ".join(css)}" data-value="{html.escape(value)}">{cell}</td>')
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines += ["</tbody>", "</table>"]
    return "\n".join(lines)


def reproduction_section(path: Path, payload: dict | None) -> str:
    """A reproduction report's tables (the paper's numbers, ours) and its claims with our verdicts."""
    from suite.reporting.reproduce import PairResult, _pair_text

    name = path.stem.removeprefix("reproduce-")
    slug = _slug(name)
    if payload is None:
        return (f"<h3>{html.escape(name)}</h3><p>No readable verdicts file (<code>{html.escape(path.stem)}.json"
                "</code>; reports written before it was): rerun <code>alignsuite reproduce "
                f"{html.escape(name)} --report-only</code> for its verdict table. The report as written:</p>"
                f"<details><summary>{html.escape(path.name)}</summary><pre>{html.escape(path.read_text())}</pre>"
                "</details>")
    title = payload.get("title") or payload.get("table") or name
    parts = [f"<h3>Reproduction: {html.escape(str(title))}</h3>",
             f"<p>Table <code>{html.escape(str(payload.get('table', name)))}</code>, scale "
             f"<code>{html.escape(str(payload.get('scale')))}</code>; from <code>{html.escape(path.name)}</code> "
             "(written by <code>alignsuite reproduce</code> from this folder's runs; the full report is "
             f"<code>{html.escape(path.with_suffix('.md').name)}</code>).</p>"]
    if payload.get("scale") != "paper":
        parts.append('<p class="warning">Small scale: not the paper\'s setting, so the numbers are not comparable '
                     "with the paper's; what can be compared is the direction of each claim, within its noise.</p>")
    paper, ours = payload.get("paper") or {}, payload.get("ours") or {}
    ours_std, unmeasured = payload.get("ours_std") or {}, payload.get("unmeasured") or {}
    rows = list(ours) or list(paper)
    columns = list(next(iter(ours.values()), {}) or next(iter(paper.values()), {}))
    if rows and columns:
        header = ["row"] + [f"{html.escape(c)} (paper)" for c in columns] + \
            [f"{html.escape(c)} (ours)" for c in columns]
        body = []
        for row in rows:
            cells = [html.escape(row)] + [_number((paper.get(row) or {}).get(c)) for c in columns]
            for c in columns:
                value = (ours.get(row) or {}).get(c)
                if c in unmeasured:
                    text = "not measured"
                elif value is None:
                    text = "missing"
                else:
                    text = _number(value)
                    spread = (ours_std.get(row) or {}).get(c)
                    if spread is not None:
                        text += f" ± {_number(spread)}"
                cells.append(text)
            body.append(cells)
        parts += ["<h4>The paper's numbers and ours</h4>", _simple_table(header, body, f"reproduce-{slug}-numbers")]
        notes = payload.get("notes") or []
        if notes:
            parts.append("<ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in notes) + "</ul>")
    claims = payload.get("claims") or []
    header = ["claim", "the paper says", "in the paper's numbers", "ours (difference [95 % interval])", "verdict"]
    body, classes = [], []
    for claim in claims:
        pairs = []
        for pair in claim.get("pairs") or []:
            interval = pair.get("interval")
            pairs.append(_pair_text(PairResult(pair.get("better"), pair.get("worse"), pair.get("paper_difference"),
                                               pair.get("difference"), tuple(interval) if interval else None,
                                               pair.get("p_value"), pair.get("outcome"))))
        verdict = str(claim.get("verdict"))
        note = f" ({claim['note']})" if claim.get("note") else ""
        body.append([html.escape(str(claim.get("id"))), html.escape(str(claim.get("text"))),
                     "holds" if claim.get("paper_holds") else "does not hold in the paper's numbers",
                     "<br>".join(html.escape(p) for p in pairs) or "—",
                     f"<strong>{html.escape(verdict)}</strong>{html.escape(note)}"])
        classes.append([""] * 4 + [f"verdict-{_slug(verdict)}"])
    parts += ["<h4>Claims</h4>", _simple_table(header, body, f"reproduce-{slug}-claims", text_columns=5,
                                               cell_classes=classes) if body else "<p>The table states no claims.</p>"]
    counts = {}
    for claim in claims:
        counts[claim.get("verdict")] = counts.get(claim.get("verdict"), 0) + 1
    if counts:
        parts.append("<p>Summary: " + html.escape(", ".join(f"{n} {v}" for v, n in counts.items())) + ".</p>")
    return "\n".join(parts)


# -- runs: failures and manifests -------------------------------------------------------------------


def failed_section(runs: list) -> str:
    """The runs that did not complete: status, the recorded error and ``failure`` (step, key, checkpoint)."""
    from suite.reporting.report import STATUS_COMPLETE, STATUS_FAILED

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
    table = _simple_table(header, body, "failed-runs", text_columns=6)
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
    from suite.reporting.leaderboard import (
        HTML_SORT_SCRIPT,
        HTML_STYLE,
        render_html_section,
    )
    from suite.reporting.report import (
        KNOWN_STATUSES,
        STATUS_COMPLETE,
        distinct,
        load_runs,
    )

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
        parts += [reproduction_section(path, payload) for path, payload in reproductions] + ["</section>"]
    parts += ['<section id="failed">', "<h2>Failed and unfinished runs</h2>", failed_section(runs), "</section>",
              '<section id="manifests">', "<h2>Run manifests</h2>",
              "<p>Each run's <code>manifest.json</code> as stored: config, hash, status, versions, git revision, "
              "times.</p>", manifests_section(runs), "</section>",
              f"<script>{HTML_SORT_SCRIPT}</script>", "</body>", "</html>"]
    return "\n".join(parts) + "\n"


def write_html_report(results_dir: Path, specs: list[str] = (), significance_resamples: int = 1000) -> Path:
    """Write ``results_dir/report/index.html`` (see the module docstring) and return its path. A SuiteError
    when the folder has no runs or no complete run evaluated on a leaderboard."""
    from suite.core.io import write_bytes_atomic

    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise SuiteError(f"{results_dir}: no such results directory")
    page = render_page(results_dir, specs, significance_resamples)
    path = results_dir / "report" / "index.html"
    write_bytes_atomic(path, page.encode())
    return path
