"""The local judge's validation (suite.evaluation.local_judge): training pairs from clear GPT-4-turbo
preferences only, the trivial baselines a judge must beat, and a verdict that says when it does not."""

import pandas as pd

from suite.evaluation.local_judge import reference_baseline, training_pairs, verdict


def test_training_pairs_take_clear_preferences_with_the_preferred_answer_chosen():
    frame = pd.DataFrame({
        "generator_2": ["a", "a", "a", "b"], "index": [0, 1, 2, 0],
        "instruction": ["i0", "i1", "i2", "i0"], "output_1": ["ref0", "ref1", "ref2", "ref0"],
        "output_2": ["a0", "a1", "a2", "b0"], "preference": [1.9, 1.1, 1.6, 2.0]})
    pairs = training_pairs(frame, ["a"], {0, 1, 2}, count=10, seed=0)
    by_prompt = {p["prompt"]: (p["chosen"], p["rejected"]) for p in pairs}
    # 1.6 is within 0.25 of a tie: left out; generator b is not a training generator
    assert by_prompt == {"i0": ("a0", "ref0"), "i1": ("ref1", "a1")}


def test_the_reference_baseline_counts_non_tied_reference_wins():
    # 1.5 and 1.52 are ties (|p - 1.5| < 0.05): out; of 1.1, 1.2, 1.9 the reference wins two
    assert reference_baseline([1.1, 1.2, 1.9, 1.5, 1.52]) == 2 / 3


def _result(agreement, length, reference):
    return {"agreement_with_gpt4_turbo": agreement, "spearman_vs_published_win_rate": 0.3,
            "length_baseline_agreement": length, "reference_baseline_agreement": reference,
            "settings": {"train_pairs": 240, "steps": 30}}


def test_the_verdict_names_a_judge_that_a_trivial_rule_beats():
    text = verdict(_result(0.69, 0.89, 0.95))
    assert text.startswith("Worse than a trivial rule.") and "not usable" in text
    assert verdict(_result(0.80, 0.6, 0.7)).startswith("Moderate.")
    assert verdict(_result(0.50, 0.6, 0.7)).startswith("No better than chance.")
