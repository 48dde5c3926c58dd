"""Reproduce a paper's table: ``alignsuite reproduce TABLE [--scale small|paper] [--out DIR] [--report-only]``.

Finds the table among ``reports/papers/*.yaml`` (the command knows no table by name), runs the recipe the
table names for the scale (``suite.execution.runner.run_experiment``: runs already complete are reused),
judges its claims with ``suite.analysis.claims`` and writes ``DIR/report/reproduce-<table>.md`` and
``.json`` (the verdicts as data, which ``report/index.html`` shows too): the paper's numbers, ours, the
difference, each claim's verdict; for tables about fine-tuned deltas, the deltas' sparsity and histogram.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from suite.analysis.claims import (
    PAPERS_DIR,
    REPO_ROOT,
    RESAMPLES,
    SCALES,
    VERDICTS,
    PaperTable,
    Reproduction,
    check_recipe,
    find_table,
    recipe_path,
    reproduce_table,
)
from suite.analysis.tables import build_table, collect_runs
from suite.core.errors import SuiteError
from suite.core.io import write_bytes_atomic
from suite.execution.store import load_runs
from suite.merging.delta import sparsity_at
from suite.reporting.plots import delta_histograms, save_png
from suite.reporting.render import fmt, html_table, markdown_table

SETTING_KEYS = ("lm_eval_version", "batch_size", "chat_template", "apply_chat_template", "fewshot_as_multiturn",
                "chat_template_sha256", "data_source")
CLAIMS_HEADER = ["claim", "the paper says", "in the paper's numbers", "ours (difference [95 % interval])", "verdict"]


# -- cell text (shared by the Markdown and the HTML views) -----------------------------------------


def number(value, signed: bool = False) -> str:
    return fmt(value, signed=signed) if value is None or isinstance(value, (int, float)) else str(value)


def pair_text(pair: dict, claim: dict) -> str:
    """One (better, worse) pair of a claim as stored in the verdicts' JSON."""
    name = f"{pair['better']} vs {pair['worse']}" if claim.get("above") is not None or \
        claim.get("equals") is not None else \
        f"{pair['better']} − {pair['worse']}"
    if pair["outcome"] == "not measured":
        return f"{name}: not measured"
    text = f"{name}: {number(pair['difference'], True)}"
    if pair.get("ratio") is not None:
        text += f" (ratio {pair['ratio']:.2f}, claimed {'below' if claim.get('lower_is_better') else 'above'} " \
                f"{claim['factor']:g})"
    if pair.get("interval"):
        low, high = pair["interval"]
        return text + f" [{low:+.2f}, {high:+.2f}] ({pair['outcome']})"
    return text + f" ({pair['outcome']}; no paired test)"


def paper_holds_text(claim: dict) -> str:
    if claim.get("equals") is not None:
        return f"published {claim['equals']:g}"
    if claim.get("paper_holds") is None:
        return "stated (no numbers in the table)"
    return "holds" if claim["paper_holds"] else "does not hold in the paper's numbers"


def ours_cells(payload: dict, row: str, columns: list[str]) -> list[str]:
    ours, spreads = payload["ours"].get(row) or {}, payload["ours_std"].get(row) or {}
    noted = {note.split(": ", 1)[0] for note in payload["notes"]}
    cells = []
    for column in columns:
        value = ours.get(column)
        if column in payload["unmeasured"]:
            cells.append("not measured")
            continue
        text = "missing" if value is None else number(value)
        if value is not None and spreads.get(column) is not None:
            text += f" ± {number(spreads[column])}"
        cells.append(text + (" *" if f"{row}, {column}" in noted else ""))
    return cells


# -- Markdown -------------------------------------------------------------------------------------


def delta_markdown(deltas: dict, histogram: Path | None) -> list[str]:
    """The sparsity of every component delta the composites measured (fraction of |δ| ≤ ε · mean|θ_base|)."""
    if not deltas:
        return []
    epsilons = [row["relative_epsilon"] for row in next(iter(deltas.values()))["overall"]["sparsity"]]
    rows = [[label, f"{r['overall']['entries']:,}", f"{r['overall']['relative_norm']:.3g}", f"{r['overall']['hoyer']:.3f}",
             *(f"{sparsity_at(r, e):.1%}" for e in epsilons)] for label, r in sorted(deltas.items())]
    lines = ["## Delta sparsity (fraction of |δ| ≤ ε · mean|θ_base| per weight)", "",
             markdown_table(["component", "entries", "‖δ‖/‖θ‖", "Hoyer", *(f"ε = {e:g}" for e in epsilons)], rows), "",
             "Hoyer sparsity is scale-free: 0 when all entries are equal in size, 1 when one entry holds the whole "
             "delta.", ""]
    return lines + ([f"![delta histogram]({histogram.name})", ""] if histogram else [])


def report_markdown(reproduction: Reproduction, recipe: Path, results_dir: Path, resamples: int = RESAMPLES,
                    model: str | None = None, histogram: Path | None = None) -> str:
    table, payload, board = reproduction.table, reproduction.payload(), reproduction.board
    names = [c.name for c in table.columns]
    paper_rows = [[row] + [number(table.values.get(row, {}).get(n)) for n in names] for row in table.rows]
    ours_rows = [[row] + ours_cells(payload, row, names) for row in table.rows]
    diff_rows = []
    for row in table.rows:
        diffs = [row]
        for column in table.columns:
            value, paper = payload["ours"][row][column.name], table.values.get(row, {}).get(column.name)
            diffs.append(fmt(None if column.unmeasured or value is None or paper is None else value - paper, signed=True))
        diff_rows.append(diffs)
    claim_rows = [[c["id"], c["text"], paper_holds_text(c), "; ".join(pair_text(p, c) for p in c["pairs"]),
                   f"**{c['verdict']}**" + (f" ({c['note']})" if c["note"] else "")] for c in payload["claims"]]
    spec = board.spec if board is not None else None
    shown_recipe = recipe.relative_to(REPO_ROOT) if recipe.is_relative_to(REPO_ROOT) else recipe
    lines = [f"# Reproduction: {table.title}", "",
             f"{table.paper.get('paper')} (arXiv {table.paper.get('arxiv')}). Paper data: `{table.path.name}` — "
             f"{table.source}.", ""]
    if table.note:
        lines += [f"Note: {table.note}", ""]
    lines += [f"Scale `{reproduction.scale}`: recipe `{shown_recipe}`, results `{results_dir}`" +
              (f", model `{model}`" if model else "") + (f", leaderboard `{spec.name}`" if spec else "") +
              ". Every number marked ours comes from the stored runs."]
    if reproduction.scale != "paper":
        lines += ["", "> **Small scale: not the paper's setting.** A small model, other data, a tiny budget and a "
                      "cut-down leaderboard: the numbers are not comparable with the paper's; what can be compared is "
                      "the direction of each claim, within its statistical noise."]
    elif spec is not None and not spec.comparable:
        lines += ["", f"> The leaderboard spec `{spec.name}` is not comparable with the Open LLM Leaderboard."]
    if spec is not None:
        settings = sorted({json.dumps({k: (run.metrics.get("eval_settings") or {}).get(k) for k in SETTING_KEYS})
                           for row in board.rows for run in row.runs})
        lines += ["", "Evaluation settings recorded by the runs: " + "; ".join(
            ", ".join(f"{k} {v}" for k, v in json.loads(text).items()) for text in settings) + "."]
    derived = {row: target for row, target in table.rows.items() if not isinstance(target, str)}
    lines += ["", "## The paper's numbers", "", markdown_table(["row", *names], paper_rows), "",
              "## Ours", "", markdown_table(["row", *names], ours_rows), "",
              "Mean over seeds (± sample std with several seeds). `missing`: not measured in these runs (e.g. a task "
              "not in the offline mirror, a row the recipe does not make). `*`: as noted below."
              + (" Derived rows: " + "; ".join(f"{row} = {kind.replace('_', ' ')} {', '.join(labels)}"
                                               for row, t in derived.items() for kind, labels in t.items()) + "."
                 if derived else ""), ""]
    lines += [f"- {note}" for note in payload["notes"]] + ([""] if payload["notes"] else [])
    lines += ["## Ours − paper", "", markdown_table(["row", *names], diff_rows), ""]
    lines += delta_markdown(reproduction.deltas, histogram)
    lines += ["## Claims", "", markdown_table(CLAIMS_HEADER, claim_rows), "",
              "A claim holds when every `better` row beats every `worse` row (or the stated value) on its column. Each "
              "of our differences between two measured leaderboard rows is tested by a paired bootstrap over the "
              f"documents both were scored on ({resamples} resamples): a claim **agrees** when every difference is "
              "significantly positive, **disagrees** when one is significantly negative, and is **inconclusive** when "
              "a difference is within noise or rounds to 0.00. Without a paired test a difference within the "
              "column's noise margin (leaderboard scores: 1 point; stored metrics: as the table says) is noise.", ""]
    summary = ", ".join(f"{n} {v}" for v in VERDICTS if (n := sum(c["verdict"] == v for c in payload["claims"])))
    lines += [f"Summary: {summary or 'no claims'}.", ""]
    return "\n".join(lines)


# -- HTML (a section of report/index.html) --------------------------------------------------------


def _slug(text: str) -> str:
    import re

    return re.sub(r"[^A-Za-z0-9_-]+", "-", str(text)).strip("-") or "x"


def reproduction_html(path: Path, payload: dict | None) -> str:
    """A reproduction report's tables (the paper's numbers, ours) and its claims with our verdicts, from its
    JSON; the Markdown as written when there is no readable JSON."""
    name = path.stem.removeprefix("reproduce-")
    slug = _slug(name)
    if payload is None:
        return (f"<h3>{html.escape(name)}</h3><p>No readable verdicts file (<code>{html.escape(path.stem)}.json"
                "</code>; reports written before it was): rerun <code>alignsuite reproduce "
                f"{html.escape(name)} --report-only</code> for its verdict table. The report as written:</p>"
                f"<details><summary>{html.escape(path.name)}</summary><pre>{html.escape(path.read_text())}</pre>"
                "</details>")
    payload = {"ours_std": {}, "notes": [], "unmeasured": {}, **payload}
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
    rows = list(ours) or list(paper)
    columns = list(next(iter(ours.values()), {}) or next(iter(paper.values()), {}))
    if rows and columns:
        header = ["row"] + [f"{html.escape(c)} (paper)" for c in columns] + [f"{html.escape(c)} (ours)" for c in columns]
        body = [[html.escape(row)] + [html.escape(number((paper.get(row) or {}).get(c))) for c in columns] +
                [html.escape(cell.removesuffix(" *")) for cell in ours_cells(payload, row, columns)] for row in rows]
        parts += ["<h4>The paper's numbers and ours</h4>",
                  html_table(header, body, 1, table_id=f"reproduce-{slug}-numbers", markup=True)]
        if payload["notes"]:
            parts.append("<ul>" + "".join(f"<li>{html.escape(str(n))}</li>" for n in payload["notes"]) + "</ul>")
    claims = payload.get("claims") or []
    body, classes = [], []
    for claim in claims:
        claim = {"factor": 1.0, "above": None, **claim}
        pairs = [pair_text({"ratio": None, **pair}, claim) for pair in claim.get("pairs") or []]
        verdict = str(claim.get("verdict"))
        note = f" ({claim['note']})" if claim.get("note") else ""
        body.append([html.escape(str(claim.get("id"))), html.escape(str(claim.get("text"))),
                     html.escape(paper_holds_text(claim)), "<br>".join(html.escape(p) for p in pairs) or "—",
                     f"<strong>{html.escape(verdict)}</strong>{html.escape(note)}"])
        classes.append([""] * 4 + [f"verdict-{_slug(verdict)}"])
    parts += ["<h4>Claims</h4>", html_table(CLAIMS_HEADER, body, 5, table_id=f"reproduce-{slug}-claims",
                                            cell_classes=classes, markup=True)
              if body else "<p>The table states no claims.</p>"]
    tally = {}
    for claim in claims:
        tally[claim.get("verdict")] = tally.get(claim.get("verdict"), 0) + 1
    if tally:
        parts.append("<p>Summary: " + html.escape(", ".join(f"{n} {v}" for v, n in tally.items())) + ".</p>")
    return "\n".join(parts)


# -- running and writing --------------------------------------------------------------------------


def write_reproduction_report(table: PaperTable, scale: str, recipe: Path, results_dir: Path,
                              resamples: int = RESAMPLES, assignments: list[str] = ()) -> tuple[Path, list]:
    """Read the stored runs of ``results_dir`` and write report/reproduce-<table>.{md,json} (+ the deltas'
    histogram for tables about deltas)."""
    from suite.config.schema import load_config

    config = load_config(recipe, list(assignments))
    results_dir = Path(results_dir)
    records = load_runs(results_dir) if (results_dir / "runs").is_dir() else []
    board = None
    if any(c.task for c in table.columns):
        board = build_table(collect_runs([results_dir], config.eval.leaderboard))
    reproduction = reproduce_table(table, scale, records, board, resamples)
    path = results_dir / "report" / f"reproduce-{table.id}.md"
    histogram = save_png(delta_histograms(reproduction.deltas, "Delta magnitudes per component"),
                         path.with_name(f"reproduce-{table.id}-deltas.png"))
    write_bytes_atomic(path, report_markdown(reproduction, recipe, results_dir, resamples, config.model,
                                             histogram).encode())
    write_bytes_atomic(path.with_suffix(".json"), (json.dumps(reproduction.payload(), indent=2) + "\n").encode())
    return path, reproduction.verdicts


def reproduce(table_id: str, scale: str = "small", out_dir: Path | None = None, jobs: int = 1,
              assignments: list[str] = (), run: bool = True, resamples: int = RESAMPLES,
              papers_dir: Path = PAPERS_DIR) -> tuple[Path, list]:
    """Find the table, run its recipe at ``scale`` (unless ``run`` is False), write the report."""
    from suite.config.schema import load_config
    from suite.execution.runner import require_all_complete, run_experiment

    if scale not in SCALES:
        raise SuiteError(f"--scale: expected one of {', '.join(SCALES)}, got {scale!r}")
    table = find_table(table_id, papers_dir).at_scale(scale)
    recipe = recipe_path(table, scale)
    if not recipe.is_file():
        raise SuiteError(f"{table.id}: recipe {recipe} (named in {table.path}) does not exist")
    config = load_config(recipe, list(assignments))
    check_recipe(table, config)
    out_dir = Path(out_dir) if out_dir else REPO_ROOT / "results" / config.name
    measurable = any(not c.unmeasured for c in table.columns)
    if run and measurable:
        require_all_complete(run_experiment(config, out_dir, jobs=jobs))
    elif not measurable:
        out_dir.mkdir(parents=True, exist_ok=True)  # nothing the suite can measure: the report alone
    return write_reproduction_report(table, scale, recipe, out_dir, resamples, assignments)
