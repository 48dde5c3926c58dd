"""Run ids are content hashes of what determines a result: refactoring the engine must not change them, or
every stored result would be retrained. tests/fixtures/recipe_run_ids.json holds the ids the shipped recipes
planned to before the engine moved into stage packages (commit 0ea2828); una-table1-paper was re-pinned when
the recipe itself changed (Table 3's judge endpoint), not the engine, and demo when its methods and budget changed
(2026-12-07); una-cpu-power was pinned when its first run started (its results resume only while its ids hold)."""

import json

import pytest

from suite.config.schema import load_config
from suite.core.resources import shipped_dir
from suite.execution.runner import plan_runs
from support import FIXTURES

EXPECTED = json.loads((FIXTURES / "recipe_run_ids.json").read_text())


@pytest.mark.parametrize("recipe", sorted(EXPECTED))
def test_shipped_recipes_plan_the_same_run_ids(recipe):
    config = load_config(shipped_dir("reports") / "recipes" / f"{recipe}.yaml")
    assert [run.run_id for run in plan_runs(config)] == EXPECTED[recipe]
