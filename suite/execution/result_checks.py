"""What a run must satisfy before it is recorded complete: finite weights and metrics, and inputs that
did not change while it ran.

A NaN score, an all-NaN merged model or results computed from a data file that was replaced mid-run are
not results: each raises a SuiteError, and the runner records the run as failed with that message.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

from suite.core.errors import SuiteError

# The metrics sections that hold the run's numbers (per-pair lists, settings and timings are not scores).
SCORED_SECTIONS = ("eval", "eval_average", "alignment", "train")


def input_files_hash(leaderboard: str | None, dataset) -> str:
    """Hash of the files a run reads besides the code: the leaderboard spec and a local dataset file."""
    digest = hashlib.sha256()
    paths = []
    if leaderboard:
        from suite.evaluation.leaderboard import LEADERBOARD_DIR

        spec = Path(leaderboard)
        paths.append(spec if spec.is_file() else LEADERBOARD_DIR / f"{leaderboard}.yaml")
    if isinstance(dataset, dict):
        paths.append(Path(str(dataset.get("path"))))
    for path in paths:
        try:
            content = path.read_bytes() if path.is_file() else str(path).encode()
            if path in paths[:1] and leaderboard:
                # a spec's top-level chat_template pin is part of the run's eval definition instead
                # (suite.execution.runner.eval_definition): pinning what a spec already did keeps the ids
                content = re.sub(rb"(?m)^chat_template:[^\n]*\n", b"", content)
            digest.update(content)
        except OSError as exc:
            raise SuiteError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return digest.hexdigest()


def non_finite_numbers(value, where: str = "") -> list[str]:
    """Dotted keys of every NaN or infinite float inside ``value`` (dicts and lists walked)."""
    if isinstance(value, float):
        return [] if math.isfinite(value) else [where]
    if isinstance(value, dict):
        return [bad for key, item in value.items() for bad in non_finite_numbers(item, f"{where}.{key}" if where else str(key))]
    if isinstance(value, (list, tuple)):
        return [bad for index, item in enumerate(value) for bad in non_finite_numbers(item, f"{where}[{index}]")]
    return []


def check_weights(model, run_id: str) -> None:
    """A trained or merged model with a NaN or infinite weight is a failed run, never evaluated or kept."""
    if model is None:
        return
    from suite.modeling.weights import first_non_finite

    bad = first_non_finite(model.state_dict())
    if bad is not None:
        raise SuiteError(f"{run_id}: the trained model has non-finite weights ({bad})")


def check_result(run, metrics: dict, config) -> None:
    """Finite scores, and the same input files as when the run was planned (its id holds their hash)."""
    bad = [key for section in SCORED_SECTIONS for key in non_finite_numbers(metrics.get(section), section)]
    if bad:
        raise SuiteError(f"{run.run_id}: non-finite metrics: {', '.join(bad[:5])}" + (" …" if len(bad) > 5 else ""))
    definition = run.definition
    if "inputs_hash" in definition and input_files_hash(config.eval.leaderboard, config.dataset) != definition["inputs_hash"]:
        changed = config.dataset.get("path") if isinstance(config.dataset, dict) else config.eval.leaderboard
        raise SuiteError(f"{changed}: changed while the run was in progress; its results would be stored under "
                         "the old file's hash (rerun to use the new file)")
    if "train_inputs_hash" in definition and \
            input_files_hash(None, definition.get("train_dataset")) != definition["train_inputs_hash"]:
        raise SuiteError(f"{definition['train_dataset'].get('path')}: changed while the run was in progress")
