"""Config validation, --set overrides and run planning."""

import pytest

from suite.config.schema import apply_overrides, build_config, load_config
from suite.core.errors import ConfigError
from suite.execution.runner import plan_runs

BASE = {
    "name": "t",
    "model": "tiny-llama",
    "dataset": "hh-rlhf-harmless",
    "methods": ["dpo", "kto"],
    "seeds": [0, 1],
    "train": {"max_steps": 2, "per_device_batch_size": 2, "learning_rate": 1e-4},
}


def build(**changes):
    raw = {**BASE, **changes}
    return build_config({k: v for k, v in raw.items() if v is not None})


def test_valid_config_resolves_defaults():
    config = build()
    assert config.train.max_length == 256 and config.train.lora is None
    assert config.eval.leaderboard == "quick"


@pytest.mark.parametrize(
    "changes, fragment",
    [
        ({"bogus": 1}, "bogus: unknown key"),
        ({"train": {"max_stepz": 3}}, "train.max_stepz: unknown key"),
        ({"train": {"max_steps": "ten"}}, "train.max_steps: expected int"),
        ({"train": {"max_steps": 0}}, "train.max_steps: must be > 0"),
        ({"train": {"learning_rate": -1.0}}, "train.learning_rate: must be > 0"),
        ({"train": {"lora": {"rank": 4}}}, "train.lora.rank: unknown key"),
        ({"methods": ["dpo", "no-such-method"]}, "methods[1]: methods: unknown method 'no-such-method'"),
        ({"methods": [{"id": "dpo", "gamma": 1}]}, "dpo has no hyper-parameter 'gamma'"),
        ({"methods": [], "evaluate_base": False}, "methods: expected a non-empty list"),  # [] alone: base only
        ({"seeds": [0, "a"]}, "seeds: expected a non-empty list of integers"),
        ({"dataset": {"path": "x.jsonl"}}, "dataset.format: missing"),
        ({"model": None}, "model: missing required key"),
        ({"data": {"heldout_fraction": 1.5}}, "data.heldout_fraction: must be in (0, 1)"),
        ({"eval": "quick"}, "eval: expected a mapping"),
    ],
)
def test_bad_configs_name_the_key(changes, fragment):
    with pytest.raises(ConfigError) as info:
        build(**changes)
    assert fragment in str(info.value)


def test_overrides_parse_yaml_values():
    raw = apply_overrides(BASE, ["train.max_steps=7", "eval.limit=3", "methods=[sft]", "train.lora={r: 4}"])
    config = build_config(raw)
    assert config.train.max_steps == 7 and config.eval.limit == 3
    assert [m.id for m in config.methods] == ["sft"] and config.train.lora == {"r": 4}
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(BASE, ["train.max_steps"])


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: invalid YAML"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="empty.yaml: the config is empty"):
        load_config(empty)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("model: tiny-llama\ndataset: x\nmethods: [dpo]\ntrain: {max_steps: -2}\n")
    with pytest.raises(ConfigError, match=r"wrong.yaml: train.max_steps: must be > 0"):
        load_config(wrong)


def test_plan_has_base_once_and_methods_times_seeds():
    runs = plan_runs(build())
    assert [r.method_id for r in runs] == ["base", "dpo", "dpo", "kto", "kto"]
    assert len({r.run_id for r in runs}) == 5
    # one learning rate for every method when the config sets it (identical conditions)
    assert all(r.hyperparameters["learning_rate"] == 1e-4 for r in runs[1:])
    assert runs[1].hyperparameters["beta"] == 0.1 and runs[3].hyperparameters["beta"] == 0.03


def test_run_ids_are_stable_and_change_with_the_definition():
    first, again = plan_runs(build()), plan_runs(build())
    assert [r.run_id for r in first] == [r.run_id for r in again]
    changed = plan_runs(build(train={"max_steps": 3, "per_device_batch_size": 2, "learning_rate": 1e-4}))
    assert first[0].run_id == changed[0].run_id  # base does not depend on the train budget
    assert first[1].run_id != changed[1].run_id


def test_method_learning_rate_defaults_when_not_set():
    runs = plan_runs(build(train={"max_steps": 2}, seeds=[0], methods=["una-score-mse", {"id": "dpo", "learning_rate": 1e-3}]))
    assert runs[1].hyperparameters["learning_rate"] == 3e-5
    assert runs[2].hyperparameters["learning_rate"] == 1e-3


def test_the_config_keeps_its_name_after_every_check():
    # a loop variable of the range checks once overwrote `name` (every config was called "backend")
    from suite.core.resources import shipped_dir

    assert load_config(shipped_dir("reports") / "recipes" / "demo.yaml", ["methods=[dpo]"]).name == "demo"
    # and a component's name once did (survey-small's runs were recorded as experiment "reward_model")
    import yaml

    for recipe in sorted((shipped_dir("reports") / "recipes").glob("*.yaml")):
        assert load_config(recipe).name == yaml.safe_load(recipe.read_text())["name"], recipe.name
