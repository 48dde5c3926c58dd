"""What separates the methods of a results folder at its budget: the section report.md leads with.

First the held-out alignment measures, which a short training run moves long before a leaderboard does:
reward accuracy with its 95 % bootstrap interval over the held-out pairs, reward margin, the KL proxy
(mean log-ratio to the reference), response length and judged win rates. The base model's reward accuracy
is 0.5 by construction (its policy is its reference, so every implicit reward margin is 0 and counts as a
tie), so a method whose interval contains 0.5 does not differ from base beyond noise: it is reported as
"not trained enough at this budget" and not ranked.

Then, per leaderboard the runs were evaluated on, each method's difference from base on the average with its
paired 95 % interval and the smallest difference the evaluation could detect (the interval's half-width);
when that exceeds every observed difference the leaderboard is labelled "cannot resolve at this budget".
"""

from __future__ import annotations

from pathlib import Path

from suite.analysis.statistics import pooled_alignment_intervals
from suite.analysis.tables import (
    JUDGED_METRICS,
    MethodRow,
    Table,
    build_table,
    collect_runs,
    headline_column,
    spec_source,
)
from suite.core.errors import SuiteError
from suite.execution.store import BASE_ROW, RunRecord
from suite.reporting.leaderboard import (
    cannot_resolve,
    cannot_resolve_sentence,
    column_title,
    delta_interval_cell,
    detectable_difference,
    width_cell,
)
from suite.reporting.render import fmt, markdown_table

NOT_TRAINED = "not trained enough at this budget"
TRAINED = "trained (differs from base beyond noise)"
BASE_REWARD_ACCURACY = 0.5  # policy = reference: every margin is 0, a tie, counted 0.5
SHOWN = (("reward_accuracy", "reward accuracy [95 % CI]"), ("reward_margin", "reward margin [95 % CI]"),
         ("logratio_mean", "KL proxy [95 % CI]"))


def reward_verdict(row: MethodRow, resamples: int) -> tuple[str, dict]:
    """(verdict, intervals) of one method row from its runs' per-pair held-out results."""
    if row.method == BASE_ROW:
        return "base", {}
    pairs = [run.alignment_pairs for run in row.runs]
    if not all(pairs):
        return "no per-pair results", {}
    try:
        intervals = pooled_alignment_intervals(pairs, resamples=resamples, where=row.method)
    except SuiteError as exc:
        return str(exc), {}
    return (TRAINED if intervals["reward_accuracy"].excludes(BASE_REWARD_ACCURACY) else NOT_TRAINED), intervals


def alignment_measures(table: Table, resamples: int) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, methods not trained enough) of the held-out measures per method row."""
    judged = [c for c in JUDGED_METRICS if any(row.mean.get(c) is not None for row in table.rows)]
    header = ["method", "verdict", "pairs"] + [title for _, title in SHOWN] + ["response length (tokens)"] + \
        [column_title(c) for c in judged]
    body, untrained = [], []
    for row in table.rows:
        verdict, intervals = reward_verdict(row, resamples)
        if verdict == NOT_TRAINED:
            untrained.append(row.method)
        n = next(iter(intervals.values())).n if intervals else None
        cells = [row.method, verdict, str(n) if n else "—"]
        for metric, _ in SHOWN:
            value = row.mean.get(metric)
            if metric in intervals:
                ci = intervals[metric]
                cells.append(f"{fmt(ci.estimate, 3)} [{fmt(ci.low, 3)}, {fmt(ci.high, 3)}]")
            else:
                cells.append(fmt(value, 3))
        lengths = [(run.metrics.get("alignment") or {}).get("response_length") for run in row.runs]
        known = [v for v in lengths if isinstance(v, (int, float))]
        cells.append(fmt(sum(known) / len(known), 1) if known else "—")
        cells += [fmt(row.mean.get(c), 1) for c in judged]
        body.append(cells)
    return header, body, untrained


def leaderboard_power(table: Table, untrained: list[str]) -> list[str]:
    """Lines: each trained method's Δ average vs base [paired 95 % CI] and the smallest detectable difference."""
    focus = headline_column(table)
    title = column_title(focus)
    rows = [row for row in table.rows if row.method != BASE_ROW]
    if not any(detectable_difference(row, focus) is not None for row in rows):
        return [f"{table.spec.name}: no paired comparison with base (no base row, or no per-document results)."]
    header = ["method", f"Δ {title} vs base [95 % CI]", "smallest detectable", "ranked?"]
    body = []
    for row in rows:
        width = detectable_difference(row, focus)
        ranked = "no: " + NOT_TRAINED if row.method in untrained else "yes"
        body.append([row.method, delta_interval_cell(row, focus), width_cell(width), ranked])
    lines = [f"**{table.spec.name}** ({title.lower()}, points):", "", markdown_table(header, body)]
    unresolved = cannot_resolve(table, focus)
    if unresolved is not None:
        lines += ["", cannot_resolve_sentence(title, unresolved, "the leaderboard's order is not a ranking.")]
    return lines


def separating_markdown(results_dir: Path, runs: list[RunRecord], table: Table, resamples: int = 1000) -> str | None:
    """The lead section of report.md (``table``: the folder's table of every complete run), or None when no
    run has held-out results and none was evaluated on a leaderboard."""
    used = sorted({name for run in runs if run.complete and (name := run.leaderboard)})
    boards = []
    for name in used:
        source = spec_source(name, runs)
        if source is None:
            continue  # a spec no longer findable: the leaderboard section below still lists its runs
        try:
            boards.append(build_table(collect_runs([Path(results_dir)], source), resamples))
        except SuiteError:
            continue
    measured = any(run.alignment_pairs for run in table.runs)
    if not measured and not boards:
        return None
    lines = ["## What separates the methods at this budget", ""]
    untrained: list[str] = []
    if measured:
        header, body, untrained = alignment_measures(table, resamples)
        lines += ["Held-out pairs, which a short training run moves before any leaderboard does. The base model's "
                  "reward accuracy is 0.5 by construction (its policy is its reference): a method whose interval "
                  f"contains 0.5 is *{NOT_TRAINED}* and is not ranked.", "", markdown_table(header, body), ""]
    for board in boards:
        lines += leaderboard_power(board, untrained) + [""]
    return "\n".join(lines).rstrip()
