"""Statistics for reports: bootstrap confidence intervals and paired tests between two models.

Everything here resamples the items both models were measured on — held-out preference pairs for the
alignment metrics (``metrics.json`` → ``alignment_pairs``), benchmark documents for leaderboard scores
(``lm_eval_samples.json``: per-document correctness or score). Two models compared on the *same* items
are compared pair by pair, which removes the item-to-item variance both share:

- ``bootstrap_ci``: percentile bootstrap interval of a statistic of one sample (Efron & Tibshirani 1993);
- ``paired_bootstrap``: the same for the difference of a statistic between two paired samples, with a
  two-sided bootstrap p-value; the difference is *significant* when its interval excludes 0;
- ``mcnemar``: McNemar's test for two classifiers' right/wrong on the same items — the exact binomial
  test on the discordant items (McNemar 1947; exact form as in Fagerland et al. 2013), plus the
  continuity-corrected χ² statistic.

A leaderboard score is rebuilt inside every bootstrap replicate exactly as the spec scores it (leaf
means, subtask or whole-task aggregation, v2 normalisation, the mean of the tasks), so the interval is
that of the number the tables show. Documents are resampled within each leaf task; a method with several
seeds contributes each document's mean over its seeds (the interval is over items, not seeds — the
tables' ± std over seeds says the rest).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from suite.core.errors import SuiteError
from suite.evaluation.leaderboard import LeaderboardSpec, TaskSpec

DEFAULT_RESAMPLES = 2000
DEFAULT_CONFIDENCE = 0.95
SAMPLES_FILE = "lm_eval_samples.json"
REPLICATE_CHUNK = 250  # bootstrap replicates drawn at once (bounds memory on 10k-document tasks)
# Leaderboard differences (percentage points) that round to 0.00 in the tables: however consistent — a
# model's numerical drift on a continuous metric such as TruthfulQA's mc2 can be "significant" — they mean
# nothing, and reports say so.
NEGLIGIBLE_POINTS = 0.005


@dataclass(frozen=True)
class Interval:
    """A statistic's value and its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    confidence: float
    n: int

    def excludes(self, value: float = 0.0) -> bool:
        return value < self.low or value > self.high


@dataclass(frozen=True)
class PairedComparison:
    """statistic(A) − statistic(B) on the same items, its bootstrap interval and two-sided p-value."""

    a: float
    b: float
    difference: float
    low: float
    high: float
    p_value: float
    confidence: float
    n: int
    resamples: int

    @property
    def significant(self) -> bool:
        return self.low > 0 or self.high < 0

    def p_text(self) -> str:
        floor = 1.0 / self.resamples
        return f"< {floor:.0e}" if self.p_value < floor else f"{self.p_value:.3f}"

    def verdict_text(self, negligible: float = NEGLIGIBLE_POINTS) -> str:
        """yes / no, and "yes, negligible" for a significant difference too small to show."""
        if not self.significant:
            return "no"
        return "yes, negligible" if abs(self.difference) < negligible else "yes"


@dataclass(frozen=True)
class McNemar:
    """Discordant counts (A right & B wrong, A wrong & B right), χ² with continuity correction, exact p."""

    a_only: int
    b_only: int
    n: int
    statistic: float
    p_value: float

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - DEFAULT_CONFIDENCE


# -- the tests --------------------------------------------------------------------------------------


def _percentile_interval(replicates: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2
    low, high = np.quantile(replicates, [tail, 1 - tail])
    return float(low), float(high)


def _check_confidence(confidence: float, resamples: int) -> None:
    if not 0 < confidence < 1:
        raise SuiteError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise SuiteError(f"resamples must be positive, got {resamples}")


def bootstrap_ci(values, statistic=np.mean, *, resamples: int = DEFAULT_RESAMPLES,
                 confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``statistic`` over ``values`` (resampled with replacement)."""
    _check_confidence(confidence, resamples)
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or len(data) == 0:
        raise SuiteError(f"bootstrap_ci needs a non-empty 1-d sample, got shape {data.shape}")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(data), size=(resamples, len(data)))
    replicates = np.apply_along_axis(statistic, 1, data[indices]) if statistic is not np.mean \
        else data[indices].mean(axis=1)
    low, high = _percentile_interval(replicates, confidence)
    return Interval(float(statistic(data)), low, high, confidence, len(data))


def _bootstrap_p(replicates: np.ndarray) -> float:
    """Two-sided p-value of "no difference": twice the share of replicates on the far side of 0."""
    return float(min(1.0, 2 * min(np.mean(replicates <= 0), np.mean(replicates >= 0))))


def paired_bootstrap(a, b, statistic=np.mean, *, resamples: int = DEFAULT_RESAMPLES,
                     confidence: float = DEFAULT_CONFIDENCE, seed: int = 0) -> PairedComparison:
    """statistic(a) − statistic(b) where a[i] and b[i] were measured on the same item i: items are
    resampled together, so what the two share cancels."""
    _check_confidence(confidence, resamples)
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise SuiteError(f"paired_bootstrap needs two non-empty samples of equal length, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, len(a), size=(resamples, len(a)))
    if statistic is np.mean:
        replicates = a[indices].mean(axis=1) - b[indices].mean(axis=1)
    else:
        replicates = np.array([statistic(a[row]) - statistic(b[row]) for row in indices])
    low, high = _percentile_interval(replicates, confidence)
    value_a, value_b = float(statistic(a)), float(statistic(b))
    return PairedComparison(value_a, value_b, value_a - value_b, low, high, _bootstrap_p(replicates), confidence,
                            len(a), resamples)


def mcnemar(a_correct, b_correct) -> McNemar:
    """McNemar's test on paired right/wrong outcomes (0/1 or booleans, same items in the same order)."""
    a, b = np.asarray(a_correct), np.asarray(b_correct)
    if a.shape != b.shape or a.ndim != 1:
        raise SuiteError(f"mcnemar needs two outcome vectors of equal length, got {a.shape} and {b.shape}")
    if not (np.isin(a, (0, 1)).all() and np.isin(b, (0, 1)).all()):
        raise SuiteError("mcnemar needs binary outcomes (0/1); use paired_bootstrap for scores")
    a_only = int(np.sum((a == 1) & (b == 0)))
    b_only = int(np.sum((a == 0) & (b == 1)))
    discordant = a_only + b_only
    if discordant == 0:
        return McNemar(0, 0, len(a), 0.0, 1.0)
    statistic = (abs(a_only - b_only) - 1) ** 2 / discordant
    # exact: under H0 each discordant item is A's with probability 1/2
    tail = sum(math.comb(discordant, k) for k in range(min(a_only, b_only) + 1)) / 2 ** discordant
    return McNemar(a_only, b_only, len(a), statistic, min(1.0, 2 * tail))


# -- alignment metrics on held-out pairs ------------------------------------------------------------

# Each alignment metric as a per-pair value whose mean is the metric (suite.evaluation.alignment.pair_metrics).
ALIGNMENT_PER_PAIR = {
    "reward_accuracy": lambda p: (p["reward_margin"] > 0) + 0.5 * (p["reward_margin"] == 0),
    "reward_margin": lambda p: p["reward_margin"],
    "logp_accuracy": lambda p: (p["logp_margin"] > 0).astype(float),
    "logratio_mean": lambda p: (p["chosen_logratio"] + p["rejected_logratio"]) / 2,
}
BINARY_ALIGNMENT = ("logp_accuracy",)


def alignment_items(pairs: dict | None, where: str = "run") -> tuple[list[str], dict[str, np.ndarray]]:
    """(pair ids, {metric: per-pair values}) from a run's stored ``alignment_pairs``."""
    if not pairs:
        raise SuiteError(f"{where}: no per-pair alignment results (metrics.json 'alignment_pairs'); "
                         "runs made before they were kept cannot get intervals")
    try:
        arrays = {key: np.asarray(pairs[key], dtype=float) for key in
                  ("reward_margin", "chosen_logratio", "rejected_logratio", "logp_margin")}
    except (KeyError, TypeError, ValueError) as exc:
        raise SuiteError(f"{where}: malformed 'alignment_pairs' ({exc})") from exc
    return list(pairs.get("pair_id") or range(len(arrays["reward_margin"]))), \
        {name: np.asarray(fn(arrays), dtype=float) for name, fn in ALIGNMENT_PER_PAIR.items()}


def alignment_intervals(pairs: dict, *, resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                        seed: int = 0, where: str = "run") -> dict[str, Interval]:
    """Bootstrap intervals of every alignment metric over one run's held-out pairs."""
    _, values = alignment_items(pairs, where)
    return {name: bootstrap_ci(v, resamples=resamples, confidence=confidence, seed=seed) for name, v in values.items()}


def pooled_alignment_intervals(pairs_of_runs: list[dict], *, resamples: int = DEFAULT_RESAMPLES,
                               confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
                               where: str = "row") -> dict[str, Interval]:
    """Bootstrap intervals of every alignment metric over the held-out pairs, each pair's value averaged over
    the runs (seeds) first; the runs must have been measured on the same pairs."""
    _, values = _mean_over_runs([alignment_items(p, where) for p in pairs_of_runs], where)
    return {name: bootstrap_ci(v, resamples=resamples, confidence=confidence, seed=seed) for name, v in values.items()}


def _mean_over_runs(items: list[tuple[list, dict]], where: str) -> tuple[list, dict]:
    ids = items[0][0]
    for other, _ in items[1:]:
        if other != ids:
            raise SuiteError(f"{where}: the runs were measured on different held-out pairs")
    return ids, {name: np.mean([values[name] for _, values in items], axis=0) for name in items[0][1]}


def compare_alignment(pairs_a: list[dict], pairs_b: list[dict], *, resamples: int = DEFAULT_RESAMPLES,
                      confidence: float = DEFAULT_CONFIDENCE, seed: int = 0,
                      names: tuple[str, str] = ("A", "B")) -> dict[str, tuple[PairedComparison, McNemar | None]]:
    """Each alignment metric, A − B over the held-out pairs both were measured on (per-pair values averaged
    over each side's seeds); McNemar too for binary metrics when each side is one run."""
    ids_a, a = _mean_over_runs([alignment_items(p, names[0]) for p in pairs_a], names[0])
    ids_b, b = _mean_over_runs([alignment_items(p, names[1]) for p in pairs_b], names[1])
    if ids_a != ids_b:
        raise SuiteError(f"{names[0]} and {names[1]} were measured on different held-out pairs; no paired comparison")
    out = {}
    for name in a:
        exact = mcnemar(a[name], b[name]) if name in BINARY_ALIGNMENT and len(pairs_a) == len(pairs_b) == 1 else None
        out[name] = (paired_bootstrap(a[name], b[name], resamples=resamples, confidence=confidence, seed=seed), exact)
    return out


# -- leaderboard scores over documents --------------------------------------------------------------


@dataclass
class LeafItems:
    """One leaf task's documents: ids, and per metric each document's summed value and count (a count
    above 1 for list-valued metrics, e.g. IFEval's instruction-level accuracy), averaged over seeds."""

    doc_ids: list
    sums: dict  # metric key -> np.ndarray
    counts: dict  # metric key -> np.ndarray
    binary: dict  # metric key -> bool (every value 0/1, one run)


def read_samples(folder: Path) -> dict:
    """A run's ``lm_eval_samples.json`` ({task: {leaf: columns}}); a clear error when it is absent."""
    path = Path(folder) / SAMPLES_FILE
    if not path.is_file():
        raise SuiteError(f"{path}: missing — per-document results are kept by runs made since they were "
                         "(paired tests need them)")
    try:
        payload = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(payload, dict):
        raise SuiteError(f"{path}: expected an object of tasks")
    return payload


def _leaf_columns(columns: dict, key: str, where: str) -> tuple[list, np.ndarray, np.ndarray, bool]:
    if key not in columns or "doc_id" not in columns:
        raise SuiteError(f"{where}: no per-document {key!r}")
    sums, counts, binary = [], [], True
    for value in columns[key]:
        values = value if isinstance(value, list) else [value]
        sums.append(float(sum(values)))
        counts.append(len(values))
        binary = binary and not isinstance(value, list) and value in (0, 1)
    return list(columns["doc_id"]), np.asarray(sums), np.asarray(counts, dtype=float), binary


def load_items(folders: list[Path], spec: LeaderboardSpec) -> dict[str, dict[str, LeafItems]]:
    """{task id: {leaf: LeafItems}} over one model's runs (its seeds), for the spec's tasks they all have."""
    per_run = [read_samples(folder) for folder in folders]
    items: dict[str, dict[str, LeafItems]] = {}
    for task in spec.tasks:
        if not all(task.id in samples for samples in per_run):
            continue
        leaves = set.intersection(*(set(samples[task.id]) for samples in per_run))
        items[task.id] = {}
        for leaf in sorted(leaves):
            sums, counts, binary, doc_ids = {}, {}, {}, None
            for metric in task.metrics:
                key = f"{metric},{task.filter}"
                read = [_leaf_columns(samples[task.id][leaf], key, f"{folder}/{SAMPLES_FILE} {task.id}/{leaf}")
                        for samples, folder in zip(per_run, folders)]
                ids = read[0][0]
                if any(r[0] != ids for r in read):
                    raise SuiteError(f"{task.id}/{leaf}: the runs of one row were scored on different documents")
                doc_ids = ids
                sums[key] = np.mean([r[1] for r in read], axis=0)
                counts[key] = read[0][2]
                binary[key] = len(read) == 1 and read[0][3]
            items[task.id][leaf] = LeafItems(doc_ids, sums, counts, binary)
    return items


def _align(a: LeafItems, b: LeafItems) -> tuple[LeafItems, LeafItems]:
    """Both leaves restricted to the documents both were scored on, in one order."""
    common = sorted(set(a.doc_ids) & set(b.doc_ids))
    if common == a.doc_ids == b.doc_ids:
        return a, b

    def pick(leaf: LeafItems) -> LeafItems:
        where = {doc: i for i, doc in enumerate(leaf.doc_ids)}
        index = np.asarray([where[d] for d in common], dtype=int)
        return LeafItems(common, {k: v[index] for k, v in leaf.sums.items()},
                         {k: v[index] for k, v in leaf.counts.items()}, leaf.binary)

    return pick(a), pick(b)


def _task_headline(task: TaskSpec, leaf_means: dict[str, dict[str, np.ndarray]], sizes: dict[str, int]) -> np.ndarray:
    """The task's number (fraction) from leaf-level metric means — arrays over bootstrap replicates —
    as ``suite.evaluation.harness.score_leaderboard`` computes it."""
    leaves = sorted(leaf_means)
    per_metric = []
    for metric in task.metrics:
        key = f"{metric},{task.filter}"
        values = np.stack([leaf_means[leaf][key] for leaf in leaves])
        if task.aggregate == "whole":
            weights = np.asarray([sizes[leaf] for leaf in leaves], dtype=float)[:, None]
            value = (weights * values).sum(axis=0) / weights.sum()
            if task.lower is not None:
                lower = float(task.lower)
                value = np.maximum(0.0, (value - lower) / (1 - lower))
        else:
            if task.lower is not None:
                lowers = np.asarray([task.lower_for(leaf) or 0.0 for leaf in leaves])[:, None]
                values = np.maximum(0.0, (values - lowers) / (1 - lowers))
            value = values.mean(axis=0)
        per_metric.append(value)
    return np.mean(per_metric, axis=0)


def _replicate_means(leaf: LeafItems, key: str, indices: np.ndarray | None) -> np.ndarray:
    if indices is None:
        return np.asarray([leaf.sums[key].sum() / leaf.counts[key].sum()])
    return leaf.sums[key][indices].sum(axis=1) / leaf.counts[key][indices].sum(axis=1)


@dataclass(frozen=True)
class LeaderboardComparison:
    """Per-task and average comparisons of two rows (A − B, in percentage points)."""

    tasks: dict  # task id -> PairedComparison | None (None: not comparable, reason in notes)
    mcnemar: dict  # task id -> McNemar | None (binary single-run tasks only)
    average: PairedComparison | None
    notes: list


def compare_leaderboard(items_a: dict, items_b: dict, spec: LeaderboardSpec, task_ids: list[str] | None = None, *,
                        resamples: int = DEFAULT_RESAMPLES, confidence: float = DEFAULT_CONFIDENCE,
                        seed: int = 0, partial_average: bool = False) -> LeaderboardComparison:
    """A − B on each task of ``task_ids`` (default: all the spec's) and on their mean, by a paired bootstrap
    over the documents both were scored on; scores in percent, as the leaderboard shows them. The mean needs
    every task compared, unless ``partial_average``: then it is over the tasks that were, and a note says so."""
    _check_confidence(confidence, resamples)
    tasks = [t for t in spec.tasks if task_ids is None or t.id in task_ids]
    rng = np.random.default_rng(seed)
    aligned, notes = {}, []
    for task in tasks:
        leaves_a, leaves_b = items_a.get(task.id) or {}, items_b.get(task.id) or {}
        common = sorted(set(leaves_a) & set(leaves_b))
        if not common or set(leaves_a) != set(leaves_b):
            notes.append(f"{task.id}: not compared (per-document results missing for "
                         f"{'both' if not common else 'some subtasks'})")
            continue
        aligned[task.id] = {leaf: _align(leaves_a[leaf], leaves_b[leaf]) for leaf in common}
        if any(not a.doc_ids for a, _ in aligned[task.id].values()):
            notes.append(f"{task.id}: not compared (no documents in common)")
            del aligned[task.id]
    by_id = {task.id: task for task in tasks}
    sizes = {tid: {leaf: len(pair[0].doc_ids) for leaf, pair in leaves.items()} for tid, leaves in aligned.items()}

    def headlines(tid: str, indices: dict | None) -> tuple[np.ndarray, np.ndarray]:
        """Both sides' task score (percent) on the full documents (indices None) or on resampled ones."""
        return tuple(100 * _task_headline(by_id[tid], {
            leaf: {key: _replicate_means(pair[side], key, None if indices is None else indices[leaf])
                   for key in pair[side].sums} for leaf, pair in aligned[tid].items()}, sizes[tid]) for side in (0, 1))

    point = {tid: [float(v[0]) for v in headlines(tid, None)] for tid in aligned}
    replicates = {tid: ([], []) for tid in aligned}
    for start in range(0, resamples, REPLICATE_CHUNK):
        size = min(REPLICATE_CHUNK, resamples - start)
        for tid, leaves in aligned.items():
            # one draw per leaf, shared by both sides: the pairing
            indices = {leaf: rng.integers(0, n, size=(size, n)) for leaf, n in sizes[tid].items()}
            for side, values in enumerate(headlines(tid, indices)):
                replicates[tid][side].append(values)
    results, exact = {}, {}
    for task in tasks:
        if task.id not in aligned:
            results[task.id], exact[task.id] = None, None
            continue
        a, b = (np.concatenate(replicates[task.id][side]) for side in (0, 1))
        results[task.id] = _comparison(point[task.id][0], point[task.id][1], a - b, confidence, resamples,
                                       sum(len(p[0].doc_ids) for p in aligned[task.id].values()))
        exact[task.id] = _task_mcnemar(task, aligned[task.id])
    average = None
    averaged = [t for t in tasks if t.id in aligned]
    if averaged and (len(averaged) == len(tasks) or partial_average):
        diff = np.mean([np.concatenate(replicates[t.id][0]) - np.concatenate(replicates[t.id][1]) for t in averaged],
                       axis=0)
        average = _comparison(float(np.mean([point[t.id][0] for t in averaged])),
                              float(np.mean([point[t.id][1] for t in averaged])), diff, confidence, resamples,
                              sum(r.n for r in results.values() if r is not None))
        if len(averaged) < len(tasks):
            notes.append(f"average: over the {len(averaged)} of {len(tasks)} tasks compared (partial), without "
                         f"{', '.join(t.id for t in tasks if t.id not in aligned)}")
    elif tasks:
        notes.append("average: not compared (some tasks lack per-document results on one side)")
    return LeaderboardComparison(results, exact, average, notes)


def _comparison(a: float, b: float, replicates: np.ndarray, confidence: float, resamples: int, n: int):
    low, high = _percentile_interval(replicates, confidence)
    return PairedComparison(float(a), float(b), float(a - b), low, high, _bootstrap_p(replicates), confidence, n,
                            resamples)


def _task_mcnemar(task: TaskSpec, leaves: dict) -> McNemar | None:
    """McNemar on a one-metric task's pooled documents, when each side is one run with 0/1 outcomes."""
    if len(task.metrics) != 1:
        return None
    key = f"{task.metrics[0]},{task.filter}"
    if not all(a.binary.get(key) and b.binary.get(key) for a, b in leaves.values()):
        return None
    a = np.concatenate([pair[0].sums[key] for pair in leaves.values()])
    b = np.concatenate([pair[1].sums[key] for pair in leaves.values()])
    return mcnemar(a.astype(int), b.astype(int))


__all__ = [
    "Interval",
    "McNemar",
    "PairedComparison",
    "alignment_intervals",
    "pooled_alignment_intervals",
    "bootstrap_ci",
    "compare_alignment",
    "compare_leaderboard",
    "load_items",
    "mcnemar",
    "paired_bootstrap",
]
