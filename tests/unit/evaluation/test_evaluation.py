"""Leaderboard specs, mirror overlays, and a real lm-eval run on a tiny model with a local task."""

import pytest
import yaml

from suite.core.errors import ConfigError
from suite.evaluation import evaluate_leaderboard, list_leaderboards, load_leaderboard
from suite.evaluation.harness import mirror_overrides, normalise
from suite.modeling.models import load_model


def test_shipped_specs_load():
    assert {"open-llm-v1", "open-llm-v2", "quick"} <= set(list_leaderboards())
    v1 = load_leaderboard("open-llm-v1")
    assert v1.comparable and [t.num_fewshot for t in v1.tasks] == [25, 10, 5, 0, 5, 5]
    assert [t.metrics for t in v1.tasks] == [["acc_norm"], ["acc_norm"], ["acc"], ["acc"], ["acc"], ["exact_match"]]
    v2 = load_leaderboard("open-llm-v2")
    bbh = next(t for t in v2.tasks if t.id == "bbh")
    assert len(bbh.lower) == 24 and bbh.lower_for("leaderboard_bbh_navigate") == 0.5
    assert not load_leaderboard("quick").comparable


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("name: x\ncomparable: true\ntasks: []\n", "tasks: expected a non-empty list"),
        ("name: x\ncomparable: yes-ish\ntasks: [{id: a, lm_eval: b, num_fewshot: 0, metric: acc}]\n", "comparable"),
        ("comparable: true\ntasks: [{id: a, lm_eval: b, metric: acc}]\n", "tasks[0].num_fewshot: missing"),
        ("comparable: true\ntasks: [{id: a, lm_eval: b, num_fewshot: -1, metric: acc}]\n", "expected an integer >= 0"),
        ("comparable: true\ntasks: [{id: a, lm_eval: b, num_fewshot: 0, metric: 3}]\n", "tasks[0].metric"),
        ("comparable: true\ntasks: [{id: a, lm_eval: b, num_fewshot: 0, metric: acc, shots: 2}]\n", "tasks[0].shots: unknown key"),
        ("comparable: true\nbogus: 1\ntasks: [{id: a, lm_eval: b, num_fewshot: 0, metric: acc}]\n", "bogus: unknown key"),
        ("tasks: [unclosed\n", "invalid YAML"),
    ],
)
def test_bad_specs_name_the_file_and_key(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_leaderboard(str(path))
    assert "bad.yaml" in str(info.value) and fragment in str(info.value)


def test_unknown_leaderboard_lists_the_available_ones():
    with pytest.raises(ConfigError, match="unknown leaderboard 'v9'.*quick"):
        load_leaderboard("v9")


def test_normalisation_is_the_leaderboard_rescaling():
    assert normalise(0.25, 0.25) == 0.0 and normalise(0.1, 0.25) == 0.0
    assert normalise(0.625, 0.25) == pytest.approx(0.5)


def test_mirror_overrides_for_a_task_without_train_split(mirror):
    cfg = {"dataset_path": "allenai/ai2_arc", "dataset_name": "ARC-Challenge", "training_split": "train",
           "validation_split": "validation", "test_split": "test"}
    overrides, notes = mirror_overrides(cfg, 5, mirror)
    assert overrides["dataset_path"] == "json" and overrides["training_split"] is None
    assert overrides["dataset_kwargs"]["data_files"]["test"].endswith("hub/allenai/ai2_arc/ARC-Challenge/test.jsonl")
    assert overrides["fewshot_split"] == "validation" and "not mirrored" in notes[0]
    # HellaSwag evaluates validation: few-shot from the eval split needs test_split set for self-exclusion
    hs = {"dataset_path": "Rowan/hellaswag", "dataset_name": None, "training_split": "train",
          "validation_split": "validation", "test_split": None}
    overrides, _ = mirror_overrides(hs, 10, mirror)
    assert overrides["fewshot_split"] == overrides["test_split"] == "validation"
    missing = {"dataset_path": "TAUR-Lab/MuSR", "dataset_name": None, "test_split": "murder_mysteries"}
    overrides, notes = mirror_overrides(missing, 0, mirror)
    assert overrides is None and "not in the mirror" in notes[0]


def test_local_task_end_to_end_on_a_tiny_model(local_leaderboard, tmp_path):
    spec = load_leaderboard(str(local_leaderboard))
    loaded = load_model("tiny-llama")
    result = evaluate_leaderboard(loaded.model, loaded.tokenizer, spec, batch_size=4, workdir=tmp_path / "work")
    colors = result.scores["colors"]
    assert set(colors) == {"acc", "acc_norm", "acc_normalised", "acc_norm_normalised"}
    assert all(0.0 <= v <= 1.0 for v in colors.values())
    # six questions: accuracy is a multiple of 1/6, and the average is the normalised headline in percent
    assert round(colors["acc"] * 6, 6) == round(colors["acc"] * 6)
    expected = 100 * (colors["acc_normalised"] + colors["acc_norm_normalised"]) / 2
    assert result.average == pytest.approx(expected)
    assert result.settings["leaderboard"] == "tiny-test" and result.settings["tasks"]["colors"]["num_fewshot"] == 0
    assert "alignsuite_test_colors" in str(result.raw["results"])
    overlay = yaml.safe_load((tmp_path / "work" / "alignsuite_alignsuite_test_colors.yaml").read_text())
    assert overlay["include"].endswith("colors.yaml") and overlay["num_fewshot"] == 0


def test_builtin_task_on_the_mirror(mirror, tmp_path):
    spec_path = tmp_path / "arc.yaml"
    spec_path.write_text("name: arc-only\ncomparable: false\ntasks:\n"
                         "  - {id: arc, lm_eval: arc_challenge, num_fewshot: 1, metric: acc_norm, limit: 3}\n")
    loaded = load_model("tiny-llama")
    result = evaluate_leaderboard(loaded.model, loaded.tokenizer, load_leaderboard(str(spec_path)),
                                  batch_size=4, workdir=tmp_path / "work")
    assert 0.0 <= result.scores["arc"]["acc_norm"] <= 1.0
    assert any("few-shot examples drawn from 'validation'" in d for d in result.deviations)
    assert result.raw["n-samples"]["alignsuite_arc_challenge"]["effective"] == 3
