"""The reporting commands: ``alignsuite report``, ``leaderboard``, ``compare``, ``reproduce`` and ``delta``.

Each reads stored runs through ``suite.execution.store``, aggregates them with ``suite.analysis`` and
writes one of the views in this package; ``report`` and ``leaderboard`` share every table, formatter and
plot, and both write the folder's ``report/index.html``.
"""

from __future__ import annotations

from pathlib import Path

from suite.analysis.claims import PAPERS_DIR, RESAMPLES, SCALES
from suite.analysis.statistics import (
    DEFAULT_RESAMPLES,
    LeaderboardComparison,
    compare_alignment,
    compare_leaderboard,
    load_items,
)
from suite.analysis.tables import collect_runs
from suite.core.errors import SuiteError
from suite.reporting import deltas
from suite.reporting.html import write_html_report
from suite.reporting.leaderboard import FORMATS, write_leaderboard
from suite.reporting.report import write_report
from suite.reporting.reproduce import reproduce


def one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def write_index(results_dir: Path, specs: list[str] = (), resamples: int = 1000) -> None:
    """report/index.html next to report.md; without a leaderboard among the runs, a note saying why not."""
    try:
        print(f"index: {write_html_report(Path(results_dir), specs, resamples)}")
    except SuiteError as exc:
        print(f"index: not written ({one_line(str(exc))})")


def write_folder_report(results_dir: Path) -> None:
    """report.md, leaderboard.csv, plots and index.html for one results folder (``report``, ``run --report``)."""
    if not Path(results_dir).is_dir():
        raise SuiteError(f"{results_dir}: no such results directory")
    paths = write_report(Path(results_dir))
    for field, value in vars(paths).items():
        print(f"{field}: {value}")
    write_index(Path(results_dir))


def _cmd_report(args) -> int:
    write_folder_report(Path(args.results_dir))
    return 0


def add_report_command(sub) -> None:
    report = sub.add_parser("report", help="write report.md, leaderboard.csv, charts and index.html from stored runs")
    report.add_argument("results_dir")
    report.set_defaults(func=_cmd_report)


def _cmd_leaderboard(args) -> int:
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = write_leaderboard([Path(d) for d in args.results_dirs], args.spec, Path(args.out) if args.out else None,
                                formats, plots=not args.no_plots, significance_resamples=args.resamples)
    for kind, path in written.items():
        print(f"{kind}: {path}")
    if len(args.results_dirs) == 1 and not args.out and "html" in formats:  # the folder's one page (suite.reporting.html)
        write_index(Path(args.results_dirs[0]), [args.spec] if args.spec else [], args.resamples)
    return 0


def add_leaderboard_command(sub) -> None:
    parser = sub.add_parser("leaderboard", help="leaderboard tables (md, csv, html, tex) and plots from stored runs")
    parser.add_argument("results_dirs", nargs="+", metavar="DIR", help="results directories (several combine)")
    parser.add_argument("--spec", help="leaderboard spec the runs were evaluated on (default: the one they share)")
    parser.add_argument("--out", help="output folder (default: the first DIR's report/)")
    parser.add_argument("--format", default=",".join(FORMATS), help=f"comma-separated subset of {','.join(FORMATS)}")
    parser.add_argument("--no-plots", action="store_true", help="tables only")
    parser.add_argument("--resamples", type=int, default=1000,
                        help="bootstrap resamples for the significance of each row against base (0: skip)")
    parser.set_defaults(func=_cmd_leaderboard)


def comparison_markdown(name_a: str, name_b: str, board: LeaderboardComparison | None,
                        alignment: dict | None, notes: list[str] = ()) -> str:
    """A − B, task by task and on the alignment metrics, each marked significant or not."""
    lines = [f"## {name_a} vs {name_b}", ""]
    if board is not None:
        example = next((c for c in [*board.tasks.values(), board.average] if c is not None), None)
        if example is not None:
            lines += [f"Leaderboard scores (%): paired bootstrap over the documents both were scored on "
                      f"({example.resamples} resamples, {example.confidence:.0%} interval); McNemar's exact test "
                      "where a task is one 0/1 metric of one run per side.", ""]
        header = "| task | " + name_a + " | " + name_b + " | difference | interval | p | McNemar (A only / B only, p) | significant |"
        lines += [header, "|---|---|---|---|---|---|---|---|"]
        rows = list(board.tasks.items()) + [("average", board.average)]
        for task_id, result in rows:
            if result is None:
                lines.append(f"| {task_id} | — | — | — | — | — | — | not compared |")
                continue
            exact = board.mcnemar.get(task_id)
            exact_text = f"{exact.a_only} / {exact.b_only}, {exact.p_value:.3f}" if exact else "—"
            lines.append(f"| {task_id} | {result.a:.2f} | {result.b:.2f} | {result.difference:+.2f} | "
                         f"[{result.low:+.2f}, {result.high:+.2f}] | {result.p_text()} | {exact_text} | "
                         f"{result.verdict_text()} |")
        lines += [""] + [f"- {note}" for note in board.notes]
    if alignment:
        lines += ["", "Alignment metrics on the held-out pairs (paired bootstrap over pairs):", "",
                  "| metric | " + name_a + " | " + name_b + " | difference | interval | p | McNemar | significant |",
                  "|---|---|---|---|---|---|---|---|"]
        for metric, (result, exact) in alignment.items():
            exact_text = f"{exact.a_only} / {exact.b_only}, {exact.p_value:.3f}" if exact else "—"
            lines.append(f"| {metric} | {result.a:.4f} | {result.b:.4f} | {result.difference:+.4f} | "
                         f"[{result.low:+.4f}, {result.high:+.4f}] | {result.p_text()} | {exact_text} | "
                         f"{'yes' if result.significant else 'no'} |")
    lines += [f"- {note}" for note in notes]
    return "\n".join(lines).rstrip() + "\n"


def _cmd_compare(args) -> int:
    collected = collect_runs([Path(d) for d in args.results_dirs], args.spec)
    groups = {}
    for label in (args.a, args.b):
        runs = [run for run in collected.runs if run.method == label]
        if not runs:
            raise SuiteError(f"no complete run labelled {label!r} on {collected.spec.name}; rows: "
                             f"{', '.join(sorted({r.method for r in collected.runs}))}")
        groups[label] = runs
    notes, board, alignment = [], None, None
    try:
        board = compare_leaderboard(load_items([r.folder for r in groups[args.a]], collected.spec),
                                    load_items([r.folder for r in groups[args.b]], collected.spec), collected.spec,
                                    resamples=args.resamples, seed=args.seed, partial_average=True)
    except SuiteError as exc:
        notes.append(f"leaderboard: not compared ({exc})")
    try:
        alignment = compare_alignment([r.alignment_pairs for r in groups[args.a]],
                                      [r.alignment_pairs for r in groups[args.b]], resamples=args.resamples,
                                      seed=args.seed, names=(args.a, args.b))
    except SuiteError as exc:
        notes.append(f"alignment: not compared ({exc})")
    text = comparison_markdown(args.a, args.b, board, alignment, notes)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def add_compare_command(sub) -> None:
    compare = sub.add_parser("compare", help="is one row better than another? paired tests on the same items")
    compare.add_argument("results_dirs", nargs="+", metavar="DIR", help="results directories (several combine)")
    compare.add_argument("--a", required=True, metavar="ROW", help="a row label (method, or a config label)")
    compare.add_argument("--b", required=True, metavar="ROW", help="the row it is compared with (e.g. base)")
    compare.add_argument("--spec", help="leaderboard spec (default: the one the runs used)")
    compare.add_argument("--resamples", type=positive_int, default=DEFAULT_RESAMPLES)
    compare.add_argument("--seed", type=seed_value, default=0)
    compare.add_argument("--out", help="write the Markdown here instead of printing it")
    compare.set_defaults(func=_cmd_compare)


def _cmd_reproduce(args) -> int:
    path, verdicts = reproduce(args.table, args.scale, Path(args.out) if args.out else None,
                               jobs=args.jobs, assignments=args.set or [], run=not args.report_only,
                               resamples=args.resamples, papers_dir=Path(args.papers))
    width = max((len(v.claim.id) for v in verdicts), default=0)
    for verdict in verdicts:
        print(f"{verdict.claim.id:<{width}}  {verdict.verdict}")
    print(f"report: {path}")
    return 0


def add_reproduce_command(sub) -> None:
    parser = sub.add_parser("reproduce", help="run a paper table's recipe and check its claims against ours")
    parser.add_argument("table", help="a table id from reports/papers/*.yaml (e.g. una-table2, paft, una-online-cost)")
    parser.add_argument("--scale", default="small", choices=SCALES,
                        help="small: the embedded model on CPU; paper: the paper's models and data (GPU, hub)")
    parser.add_argument("--out", help="results directory (default results/<recipe name>)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    parser.add_argument("--report-only", action="store_true", help="do not run: report from the stored runs")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples for the claims")
    parser.add_argument("--papers", default=str(PAPERS_DIR), help="folder of the papers' table files")
    parser.set_defaults(func=_cmd_reproduce)


def add_commands(sub) -> None:
    add_report_command(sub)
    deltas.add_command(sub)
    add_leaderboard_command(sub)
    add_compare_command(sub)
    add_reproduce_command(sub)


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (resample counts)."""
    import argparse

    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def seed_value(text: str) -> int:
    """argparse type: a seed in [0, 2**32), the range numpy and torch accept."""
    import argparse

    if not text.strip().isdigit() or int(text) >= 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {text!r}")
    return int(text)
