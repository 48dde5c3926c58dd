"""Bootstrap intervals, paired tests and McNemar: hand-computed values, coverage on a known distribution,
and the leaderboard comparison rebuilt from per-document results as the harness scores them."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from support.stores import ROW_DOCS, make_store, spec_file, write_run

from suite.analysis.statistics import (
    alignment_intervals,
    bootstrap_ci,
    compare_alignment,
    compare_leaderboard,
    load_items,
    mcnemar,
    paired_bootstrap,
)
from suite.cli import main
from suite.core.errors import SuiteError
from suite.evaluation.leaderboard import load_leaderboard


def test_mcnemar_on_a_hand_computed_table():
    # 8 items only A gets right, 2 only B, 5 both, 3 neither
    a = [1] * 8 + [0] * 2 + [1] * 5 + [0] * 3
    b = [0] * 8 + [1] * 2 + [1] * 5 + [0] * 3
    result = mcnemar(a, b)
    assert (result.a_only, result.b_only, result.n) == (8, 2, 18)
    assert result.statistic == pytest.approx((abs(8 - 2) - 1) ** 2 / 10)  # 2.5
    # exact: 2 · P(X ≤ 2), X ~ Binomial(10, 1/2) = 2 · (1 + 10 + 45) / 1024
    assert result.p_value == pytest.approx(112 / 1024)
    assert not result.significant
    lopsided = mcnemar([1] * 12 + [0] * 4, [0] * 12 + [0] * 4)  # 12 vs 0 discordant: 2 / 4096
    assert lopsided.p_value == pytest.approx(2 / 4096) and lopsided.significant
    assert mcnemar([1, 0], [1, 0]).p_value == 1.0  # no discordant item
    with pytest.raises(SuiteError, match="binary outcomes"):
        mcnemar([0.5, 1], [1, 0])


def test_bootstrap_interval_covers_the_true_mean_at_its_nominal_rate():
    rng = np.random.default_rng(7)
    trials, hits = 300, 0
    for trial in range(trials):
        sample = rng.normal(loc=1.0, scale=2.0, size=40)
        interval = bootstrap_ci(sample, resamples=400, confidence=0.9, seed=trial)
        hits += interval.low <= 1.0 <= interval.high
    coverage = hits / trials
    # nominal 0.90; the percentile bootstrap runs a little narrow at n = 40. 300 trials: sd of the rate ≈ 0.017
    assert 0.84 <= coverage <= 0.95, coverage


def test_bootstrap_interval_of_a_known_sample():
    interval = bootstrap_ci([1.0, 1.0, 1.0], resamples=50)
    assert (interval.estimate, interval.low, interval.high) == (1.0, 1.0, 1.0)
    values = np.arange(100, dtype=float)
    interval = bootstrap_ci(values, resamples=2000, confidence=0.95)
    # the mean's standard error is 29.01 / 10 ≈ 2.9: a 95 % interval about ± 5.7 around 49.5
    assert interval.estimate == pytest.approx(49.5)
    assert 43.0 < interval.low < 45.0 and 54.0 < interval.high < 56.0
    median = bootstrap_ci(values, np.median, resamples=300)
    assert median.estimate == pytest.approx(49.5) and median.low < 49.5 < median.high
    with pytest.raises(SuiteError, match="confidence"):
        bootstrap_ci(values, confidence=1.5)


def test_paired_bootstrap_sees_a_shift_that_unpaired_noise_hides():
    rng = np.random.default_rng(0)
    item_difficulty = rng.normal(0.0, 5.0, size=60)  # large, shared by both models
    a = item_difficulty + 0.5 + rng.normal(0.0, 0.2, size=60)
    b = item_difficulty + rng.normal(0.0, 0.2, size=60)
    paired = paired_bootstrap(a, b, resamples=2000)
    assert paired.difference == pytest.approx(a.mean() - b.mean())
    assert paired.significant and paired.low > 0 and paired.p_value < 0.01
    separate = (bootstrap_ci(a, resamples=2000), bootstrap_ci(b, resamples=2000))
    assert separate[0].low < separate[1].high  # unpaired, the intervals overlap
    same = paired_bootstrap(b, b, resamples=200)
    assert same.difference == 0 and not same.significant and same.p_value == 1.0


def test_alignment_intervals_are_centred_on_the_stored_metrics(tmp_path):
    results, _ = make_store(tmp_path)
    metrics = json.loads((results / "runs" / "weak-s0-3333" / "metrics.json").read_text())
    intervals = alignment_intervals(metrics["alignment_pairs"], resamples=500)
    for name in ("reward_accuracy", "reward_margin", "logp_accuracy", "logratio_mean"):
        assert intervals[name].estimate == pytest.approx(metrics["alignment"][name], abs=1e-6)
        assert intervals[name].low <= intervals[name].estimate <= intervals[name].high
    with pytest.raises(SuiteError, match="no per-pair alignment results"):
        alignment_intervals({}, where="old-run")


def test_alignment_comparison_checks_the_pairs_match():
    pairs = {"pair_id": ["a", "b", "c", "d"], "reward_margin": [1.0, 2.0, -1.0, 0.5],
             "chosen_logratio": [0.5, 1.0, 0.0, 0.5], "rejected_logratio": [-0.5, -1.0, 1.0, 0.0],
             "logp_margin": [1.0, -1.0, 1.0, 1.0]}
    base = {**pairs, "reward_margin": [0.0] * 4, "chosen_logratio": [0.0] * 4, "rejected_logratio": [0.0] * 4}
    result = compare_alignment([pairs], [base], resamples=300)
    comparison, exact = result["reward_accuracy"]
    assert comparison.a == pytest.approx(0.75) and comparison.b == pytest.approx(0.5)
    assert result["logp_accuracy"][1] is not None and exact is None  # McNemar only for binary metrics
    with pytest.raises(SuiteError, match="different held-out pairs"):
        compare_alignment([pairs], [{**base, "pair_id": ["a", "b", "c", "x"]}])


def test_leaderboard_comparison_rebuilds_the_stored_scores(tmp_path):
    results, spec_path = make_store(tmp_path)
    spec = load_leaderboard(str(spec_path))
    strong = load_items([results / "runs" / "strong-s0-1111"], spec)
    base = load_items([results / "runs" / "base-0000"], spec)
    result = compare_leaderboard(strong, base, spec, resamples=500)
    stored = {run: json.loads((results / "runs" / run / "metrics.json").read_text())
              for run in ("strong-s0-1111", "base-0000")}
    for task in ("quiz", "gen"):  # the bootstrap's point estimates are the harness's own numbers
        assert result.tasks[task].a == pytest.approx(stored["strong-s0-1111"]["eval_headline"][task])
        assert result.tasks[task].b == pytest.approx(stored["base-0000"]["eval_headline"][task])
    assert result.average.difference == pytest.approx(
        stored["strong-s0-1111"]["eval_average"] - stored["base-0000"]["eval_average"])
    assert result.average.significant and result.tasks["quiz"].significant
    # gen is one 0/1 metric of one run per side: McNemar on its 16 documents. strong right where base is
    # wrong on 4 gen_x + 2 gen_y documents, base right where strong is wrong on none: p = 2 / 2^6
    assert (result.mcnemar["gen"].a_only, result.mcnemar["gen"].b_only) == (6, 0)
    assert result.mcnemar["gen"].p_value == pytest.approx(2 / 64)


def test_two_seeds_average_per_document_and_missing_results_are_said(tmp_path):
    results, spec_path = make_store(tmp_path)
    spec = load_leaderboard(str(spec_path))
    strong = load_items([results / "runs" / "strong-s0-1111", results / "runs" / "strong-s1-2222"], spec)
    assert strong["quiz"]["quiz_a"].sums["acc,none"][0] == pytest.approx(0.5)  # the seeds disagree on doc 0
    assert not strong["quiz"]["quiz_a"].binary["acc,none"]
    weak = load_items([results / "runs" / "weak-s0-3333"], spec)
    result = compare_leaderboard(weak, load_items([results / "runs" / "base-0000"], spec), spec, resamples=100)
    assert result.tasks["gen"] is None and result.average is None
    assert any("gen: not compared" in note for note in result.notes)
    (results / "runs" / "base-0000" / "lm_eval_samples.json").unlink()
    with pytest.raises(SuiteError, match="lm_eval_samples.json: missing"):
        load_items([results / "runs" / "base-0000"], spec)


def test_the_compare_command_reports_significance(tmp_path, capsys):
    results, spec_path = make_store(tmp_path)
    assert main(["compare", str(results), "--spec", str(spec_path), "--a", "strong", "--b", "base",
                 "--resamples", "300"]) == 0
    text = capsys.readouterr().out
    assert "## strong vs base" in text
    average = next(line for line in text.splitlines() if line.startswith("| average |"))
    assert average.endswith("| yes |")
    assert "| reward_accuracy |" in text
    assert main(["compare", str(results), "--spec", str(spec_path), "--a", "dpo", "--b", "base"]) == 2
    assert "no complete run labelled 'dpo'" in capsys.readouterr().err


def test_documents_are_paired_by_id(tmp_path):
    spec_path = spec_file(tmp_path / "specs")
    results = tmp_path / "results"
    write_run(results, spec_path, "a-s0", "a", 0, ROW_DOCS["strong"])
    write_run(results, spec_path, "b-s0", "b", 0, ROW_DOCS["strong"])
    # b's quiz_a results listed in another order: the same documents, the same outcomes
    samples_path = results / "runs" / "b-s0" / "lm_eval_samples.json"
    samples = json.loads(samples_path.read_text())
    columns = samples["quiz"]["quiz_a"]
    order = list(reversed(range(len(columns["doc_id"]))))
    samples["quiz"]["quiz_a"] = {key: [values[i] for i in order] for key, values in columns.items()}
    samples_path.write_text(json.dumps(samples))
    spec = load_leaderboard(str(spec_path))
    result = compare_leaderboard(load_items([results / "runs" / "a-s0"], spec),
                                 load_items([results / "runs" / "b-s0"], spec), spec, resamples=100)
    assert result.tasks["quiz"].difference == 0 and math.isclose(result.tasks["quiz"].high, 0.0, abs_tol=1e-12)


def test_per_pair_details_by_hand_and_their_means_are_the_pair_metrics():
    import torch

    from suite.evaluation.alignment import pair_details, pair_metrics

    tensors = [torch.tensor(v) for v in ([-1.0, -2.0], [-2.0, -1.0], [-2.0, -2.0], [-2.0, -1.0])]
    details = pair_details(*tensors)
    # Δ(y_w) = [1, 0], Δ(y_l) = [0, 0], h = [1, 0]; ℓ(y_w) − ℓ(y_l) = [1, −1]
    assert details == {"reward_margin": [1.0, 0.0], "chosen_logratio": [1.0, 0.0], "rejected_logratio": [0.0, 0.0],
                       "logp_margin": [1.0, -1.0]}
    intervals = alignment_intervals(details, resamples=50)
    metrics = pair_metrics(*tensors)
    for name in ("reward_accuracy", "reward_margin", "logp_accuracy", "logratio_mean"):
        assert intervals[name].estimate == pytest.approx(metrics[name])  # accuracy 0.75: the tie counts one half


def test_a_partial_average_is_compared_only_when_asked_and_said(tmp_path):
    results, spec_path = make_store(tmp_path)
    spec = load_leaderboard(str(spec_path))
    weak = load_items([results / "runs" / "weak-s0-3333"], spec)  # gen_y did not run: gen is not compared
    base = load_items([results / "runs" / "base-0000"], spec)
    partial = compare_leaderboard(weak, base, spec, resamples=100, partial_average=True)
    assert partial.average.difference == pytest.approx(partial.tasks["quiz"].difference)  # quiz alone
    assert "average: over the 1 of 2 tasks compared (partial), without gen" in partial.notes
