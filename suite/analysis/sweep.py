"""Selecting a sweep's point per method, on validation pairs only.

A sweep (``suite.config.sweep``) stores one ordinary run per method, point and seed. Each run's
``metrics.json`` has ``validation``: the implicit-reward metrics on pairs from training prompts that were kept
apart (``data.validation_fraction``). Per swept row the point with the highest validation reward accuracy
(mean over seeds) is selected; ties go to the earlier point of the grid. The held-out test pairs
(``alignment``) and the leaderboard are never read here, so the selection cannot see the test data.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from suite.execution.store import RunRecord

SELECTION_METRIC = "reward_accuracy"


@dataclass
class SweepPoint:
    label: str  # the variant's row
    point: dict  # its hyper-parameters
    validation: list = field(default_factory=list)  # SELECTION_METRIC per complete seed

    @property
    def score(self) -> float | None:
        return statistics.fmean(self.validation) if self.validation else None


@dataclass
class SweepResult:
    row: str  # the row the sweep expanded (method id or label)
    points: list  # SweepPoint, in grid order
    selected: SweepPoint | None  # None when no point has a validation score yet


def sweep_choices(records: list[RunRecord]) -> dict[str, tuple[str, dict, int]]:
    """Variant label -> (swept row, point, grid position), from the configs the runs recorded."""
    choices = {}
    for record in records:
        for position, choice in enumerate((record.manifest.get("config") or {}).get("methods") or []):
            if isinstance(choice, dict) and choice.get("sweep_of") and choice.get("label"):
                choices.setdefault(choice["label"], (choice["sweep_of"], choice.get("sweep_point") or {}, position))
    return choices


def select_points(records: list[RunRecord]) -> list[SweepResult]:
    """Every swept row with its points' validation scores and the selected point."""
    choices = sweep_choices(records)
    rows: dict[str, dict[str, SweepPoint]] = {}
    for label, (row, point, position) in sorted(choices.items(), key=lambda item: item[1][2]):
        rows.setdefault(row, {})[label] = SweepPoint(label, point)
    for record in records:
        if record.complete and record.method in choices:
            value = ((record.metrics or {}).get("validation") or {}).get(SELECTION_METRIC)
            if isinstance(value, (int, float)):
                rows[choices[record.method][0]][record.method].validation.append(float(value))
    results = []
    for row, points in rows.items():
        scored = [p for p in points.values() if p.score is not None]
        best = max(scored, key=lambda p: p.score) if scored else None  # max keeps the first of equal scores
        results.append(SweepResult(row, list(points.values()), best))
    return results


def unselected_labels(results: list[SweepResult]) -> set[str]:
    """The variants a report leaves out of its leaderboard of selected models."""
    return {p.label for result in results for p in result.points if result.selected is None or p is not result.selected}
