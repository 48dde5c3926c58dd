"""A sweep's point is selected on validation pairs from training prompts, never on the held-out test pairs."""

from pathlib import Path

from suite.analysis.sweep import select_points, unselected_labels
from suite.data import prepare_data
from suite.data.records import prompt_key
from suite.execution.store import RunRecord
from support import preference_rows, write_jsonl

CONFIG = {"methods": [
    {"id": "dpo", "label": "dpo.beta-0.1", "sweep_of": "dpo", "sweep_point": {"beta": 0.1}},
    {"id": "dpo", "label": "dpo.beta-0.5", "sweep_of": "dpo", "sweep_point": {"beta": 0.5}},
    {"id": "sft", "label": None},
]}


def record(label, seed, validation, test):
    manifest = {"run_id": f"{label}-s{seed}", "method": label, "status": "complete", "config": CONFIG}
    metrics = {"alignment": {"reward_accuracy": test}, "validation": {"reward_accuracy": validation},
               "eval_average": 100 * test}
    return RunRecord(Path("."), manifest, metrics)


def test_the_selection_follows_validation_even_where_the_test_pairs_disagree():
    records = [record("dpo.beta-0.1", 0, 0.60, 0.90), record("dpo.beta-0.1", 1, 0.62, 0.95),
               record("dpo.beta-0.5", 0, 0.70, 0.10), record("dpo.beta-0.5", 1, 0.68, 0.05),
               record("sft", 0, 0.5, 0.5)]
    (result,) = select_points(records)
    assert result.row == "dpo" and result.selected.label == "dpo.beta-0.5"
    assert [round(p.score, 3) for p in result.points] == [0.61, 0.69]
    assert unselected_labels([result]) == {"dpo.beta-0.1"}


def test_equal_scores_select_the_earlier_point_and_unscored_sweeps_select_nothing():
    records = [record("dpo.beta-0.1", 0, 0.6, 0.1), record("dpo.beta-0.5", 0, 0.6, 0.9)]
    assert select_points(records)[0].selected.label == "dpo.beta-0.1"
    (unscored,) = select_points([RunRecord(Path("."), {"run_id": "x", "method": "dpo.beta-0.1", "status": "failed",
                                                       "config": CONFIG}, None)])
    assert unscored.selected is None


def test_validation_prompts_are_neither_trained_on_nor_test_prompts(tmp_path):
    path = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(60))
    plain = prepare_data({"path": str(path), "format": "pairwise"}, "pairwise", heldout_fraction=0.2)
    data = prepare_data({"path": str(path), "format": "pairwise"}, "pairwise", heldout_fraction=0.2,
                        validation_fraction=0.2)
    train = {prompt_key(r.prompt) for r in data.train}
    test = {prompt_key(r.prompt) for r in data.heldout_pairs}
    validation = {prompt_key(r.prompt) for r in data.validation_pairs}
    assert validation and not validation & train and not validation & test
    assert test == {prompt_key(r.prompt) for r in plain.heldout_pairs}  # the test split does not move
