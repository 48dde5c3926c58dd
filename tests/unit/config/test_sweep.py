"""sweep: every method at every point of a grid, as ordinary labelled runs; bad sweeps are config errors."""

import pytest

from suite.config.schema import build_config
from suite.core.errors import ConfigError
from suite.execution.runner import plan_runs

BASE = {"name": "s", "model": "tiny-llama", "dataset": "alpaca-eval-scored"}


def config(**raw):
    return build_config({**BASE, **raw})


def test_each_method_is_expanded_over_the_names_it_has():
    c = config(methods=["sft", {"id": "dpo", "label": "d"}], sweep={"learning_rate": [1.0e-6, 3.0e-6], "beta": [0.1]})
    rows = [(m.id, m.label, m.overrides, m.sweep_of) for m in c.methods]
    assert rows == [
        ("sft", "sft.learning_rate-1e-06", {"learning_rate": 1e-6}, "sft"),
        ("sft", "sft.learning_rate-3e-06", {"learning_rate": 3e-6}, "sft"),
        ("dpo", "d.learning_rate-1e-06.beta-0.1", {"learning_rate": 1e-6, "beta": 0.1}, "d"),
        ("dpo", "d.learning_rate-3e-06.beta-0.1", {"learning_rate": 3e-6, "beta": 0.1}, "d"),
    ]
    assert c.data.validation_fraction == 0.1  # selection needs a validation split
    runs = plan_runs(c)
    assert len({run.run_id for run in runs}) == len(runs) == 5  # base + 4 ordinary runs
    assert all("validation_fraction" in run.definition["data"] for run in runs)


def test_without_a_sweep_nothing_changes():
    c = config(methods=["dpo"])
    assert c.sweep is None and c.data.validation_fraction == 0.0
    assert "validation_fraction" not in plan_runs(c)[1].definition["data"]


@pytest.mark.parametrize("sweep, message", [
    ({"gamma_beta_ratio": [0.5]}, "sweep.gamma_beta_ratio: no configured method has this hyper-parameter"),
    ({"beta": []}, "sweep.beta: expected a non-empty list"),
    ({"beta": [0.1, 0.1]}, "sweep.beta: a value is given twice"),
    ({"beta": [-1.0]}, "beta"),
    ([0.1], "sweep: expected a mapping"),
])
def test_bad_sweeps_are_config_errors(sweep, message):
    with pytest.raises(ConfigError, match=message):
        config(methods=["dpo"], sweep=sweep)


def test_a_swept_name_is_given_in_one_place_only():
    with pytest.raises(ConfigError, match=r"methods\[0\]\.beta: also swept"):
        config(methods=[{"id": "dpo", "beta": 0.2}], sweep={"beta": [0.1]})
    with pytest.raises(ConfigError, match="sweep.learning_rate: train.learning_rate sets one rate"):
        config(methods=["dpo"], sweep={"learning_rate": [1.0e-6]}, train={"learning_rate": 5.0e-6})
