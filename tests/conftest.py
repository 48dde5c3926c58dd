"""Shared fixtures; the helpers they use live in the ``support`` package (tests/support/)."""

import os
from pathlib import Path

import pytest

from support import preference_rows, write_jsonl, write_local_leaderboard


@pytest.fixture
def local_leaderboard(tmp_path) -> Path:
    return write_local_leaderboard(tmp_path)


@pytest.fixture
def pairwise_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "pairs.jsonl", preference_rows())


@pytest.fixture
def mirror():
    root = os.environ.get("ALIGNSUITE_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("ALIGNSUITE_DATA is not set to a dataset mirror (CI sets it to ../shared/data)")
    return Path(root)


@pytest.fixture
def diverging_method():
    """A registered method whose loss is NaN at its first step: a run that fails while training (every legal
    learning rate is too small to make tiny-llama diverge in a few steps; out-of-range ones are refused first)."""
    from suite.method.registry import METHODS, Method, Paper, register

    def objective(batch, hp):
        return batch.policy_logps.mean() * float("nan"), {}

    register(Method(id="test-diverges", name="diverges", paper=Paper("test fixture"), feedback="pairwise",
                    taxonomy={}, needs_reference=False, defaults={"learning_rate": 1e-3}, objective=objective))
    yield "test-diverges"
    METHODS.remove("test-diverges")
