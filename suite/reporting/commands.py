"""The reporting commands' handlers: ``alignsuite report``, ``leaderboard``, ``compare`` and ``reproduce``
(their arguments are defined in ``suite.cli``).

Each reads stored runs through ``suite.execution.store``, aggregates them with ``suite.analysis`` and
writes one of the views in this package; ``report`` and ``leaderboard`` share every table, formatter and
plot, and both write the folder's ``report/index.html``.
"""

from __future__ import annotations

from pathlib import Path

from suite.analysis.statistics import (
    LeaderboardComparison,
    compare_alignment,
    compare_leaderboard,
    load_items,
)
from suite.analysis.tables import collect_runs
from suite.core.errors import SuiteError
from suite.core.io import write_or_print
from suite.reporting.html import write_html_report
from suite.reporting.leaderboard import write_leaderboard
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


def report_command(args) -> int:
    write_folder_report(Path(args.results_dir))
    return 0


def leaderboard_command(args) -> int:
    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    written = write_leaderboard([Path(d) for d in args.results_dirs], args.spec, Path(args.out) if args.out else None,
                                formats, plots=not args.no_plots, significance_resamples=args.resamples)
    for kind, path in written.items():
        print(f"{kind}: {path}")
    if len(args.results_dirs) == 1 and not args.out and "html" in formats:  # the folder's one page (suite.reporting.html)
        write_index(Path(args.results_dirs[0]), [args.spec] if args.spec else [], args.resamples)
    return 0


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


def compare_command(args) -> int:
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
    if board is None and alignment is None:  # nothing compared is an error, not an empty report
        raise SuiteError(f"{args.a} vs {args.b}: nothing could be compared: {'; '.join(notes)}")
    text = comparison_markdown(args.a, args.b, board, alignment, notes)
    write_or_print(text, args.out)
    return 0


def reproduce_command(args) -> int:
    path, verdicts = reproduce(args.table, args.scale, Path(args.out) if args.out else None,
                               jobs=args.jobs, assignments=args.set or [], run=not args.report_only,
                               resamples=args.resamples, papers_dir=Path(args.papers))
    width = max((len(v.claim.id) for v in verdicts), default=0)
    for verdict in verdicts:
        print(f"{verdict.claim.id:<{width}}  {verdict.verdict}")
    print(f"report: {path}")
    return 0
