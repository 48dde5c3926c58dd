"""Reproduction reports: paper tables as data, recipes checked before running, claim verdicts from stored runs."""

from __future__ import annotations

import json
import statistics

import pytest
import yaml
from support.stores import (
    ROW_DOCS,
    expected_gen,
    expected_quiz,
)

from suite.cli import main
from suite.config.schema import load_config
from suite.core.errors import ConfigError, SuiteError
from suite.analysis.claims import (
    PAPERS_DIR,
    REPO_ROOT,
    check_recipe,
    find_table,
    recipe_path,
    table_ids,
)
from suite.reporting.reproduce import reproduce, write_reproduction_report
from support.papers import toy_paper



@pytest.fixture
def toy(tmp_path):
    return toy_paper(tmp_path)


def test_claim_verdicts_agree_disagree_inconclusive_and_not_measured(toy):
    papers, results = toy
    table = find_table("toy-table", papers)
    path, verdicts = write_reproduction_report(table, "small", recipe_path(table, "small"), results, resamples=500)
    by_id = {v.claim.id: v for v in verdicts}
    assert all(v.paper_holds for v in verdicts)  # every claim is true of the paper's own numbers
    assert by_id["strong-beats-base"].verdict == "agrees"
    assert by_id["base-beats-strong-quiz"].verdict == "disagrees"  # ours: strong far above base on quiz
    assert by_id["tie-beats-base"].verdict == "inconclusive"  # one document apart: within noise
    tie = by_id["tie-beats-base"].pairs[0]
    assert tie.difference > 0 and tie.interval[0] <= 0 <= tie.interval[1]
    assert by_id["weak-beats-base-gen"].verdict in ("disagrees", "inconclusive")
    assert "gen ran in part" in by_id["weak-beats-base-gen"].note  # weak's gen_y did not run
    assert by_id["people-prefer-strong"].verdict == "not measured"
    assert by_id["people-prefer-strong"].note == "needs people to judge"

    text = path.read_text()
    assert "## The paper's numbers" in text and "## Ours" in text and "## Ours − paper" in text
    strong_ours = next(l for l in text.split("## Ours\n")[1].splitlines() if l.startswith("| Strong |"))
    average = (expected_quiz(ROW_DOCS["strong"]) + expected_gen(ROW_DOCS["strong"])) / 2  # (83.33 + 50) / 2
    assert f"| {average:.2f} |" in strong_ours and strong_ours.endswith("| not measured |")
    diff_line = next(l for l in text.split("## Ours − paper")[1].splitlines() if l.startswith("| Strong |"))
    assert f"{average - 50:+.2f}" in diff_line
    assert "**agrees**" in text and "**disagrees**" in text and "**inconclusive**" in text
    report = json.loads(path.with_suffix(".json").read_text())
    assert [c["verdict"] for c in report["claims"]] == [v.verdict for v in verdicts]


def test_the_command_reports_from_stored_runs(toy, capsys):
    papers, results = toy
    code = main(["reproduce", "toy-table", "--papers", str(papers), "--out", str(results), "--report-only",
                 "--resamples", "300"])
    assert code == 0
    out = capsys.readouterr().out
    assert "strong-beats-base" in out and "agrees" in out and (results / "report" / "reproduce-toy-table.md").is_file()


def test_clear_errors_for_unknown_table_scale_and_rows(toy, tmp_path, capsys):
    papers, results = toy
    assert main(["reproduce", "toy-table9", "--papers", str(papers)]) == 2
    assert "unknown table 'toy-table9'; tables in" in capsys.readouterr().err
    with pytest.raises(SuiteError, match="toy-table: no 'paper' recipe; scales: small"):
        recipe_path(find_table("toy-table", papers), "paper")
    with pytest.raises(SuiteError, match="--scale"):
        reproduce("toy-table", "huge", papers_dir=papers)
    table = find_table("toy-table", papers)
    config = load_config(recipe_path(table, "small"), ["methods=[dpo]"])
    with pytest.raises(ConfigError, match=r"its recipe 'toy' makes no row 'strong', 'tie', 'weak' \(rows: base, dpo\)"):
        check_recipe(table, config)
    with pytest.raises(SuiteError, match="nowhere: no such results directory"):
        reproduce("toy-table", "small", tmp_path / "nowhere", run=False, papers_dir=papers)


def test_a_bad_table_file_names_the_file_and_key(toy):
    papers, _ = toy
    data = yaml.safe_load((papers / "toy.yaml").read_text())
    data["tables"][0]["values"]["Base"] = [1, 2]
    (papers / "toy.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"toy.yaml: tables\[toy-table\].values.Base: expected 4 numbers"):
        find_table("toy-table", papers)
    data["tables"][0]["values"]["Base"] = [1, 2, 3, 4]
    data["tables"][0]["claims"][0]["better"] = ["Nobody"]
    (papers / "toy.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"claims\[0\].better: 'Nobody' is not a row"):
        find_table("toy-table", papers)


def test_a_column_left_out_at_a_scale_is_not_measured_with_its_reason_and_the_average_says_so(toy):
    papers, results = toy
    data = yaml.safe_load((papers / "toy.yaml").read_text())
    data["tables"][0]["left_out"] = {"small": {"gen": "too long for this scale"}}
    (papers / "toy.yaml").write_text(yaml.safe_dump(data))
    table = find_table("toy-table", papers)
    assert table.column("gen").task == "gen"  # the table itself is unchanged
    small = table.at_scale("small")
    assert small.column("gen").task is None and small.column("gen").unmeasured == "too long for this scale"
    path, verdicts = write_reproduction_report(small, "small", recipe_path(small, "small"), results, resamples=300)
    by_id = {v.claim.id: v for v in verdicts}
    assert by_id["weak-beats-base-gen"].verdict == "not measured"
    assert by_id["weak-beats-base-gen"].note == "too long for this scale"
    # the average is quiz's alone now, and says which column it lacks
    assert by_id["strong-beats-base"].verdict == "agrees"
    strong_ours = next(l for l in path.read_text().split("## Ours\n")[1].splitlines() if l.startswith("| Strong |"))
    assert f"| {expected_quiz(ROW_DOCS['strong']):.2f} |" in strong_ours
    assert "average of what ran: gen not measured at this scale" in path.read_text()


@pytest.mark.parametrize("published, verdict", [(2.0, "agrees"), (40.0, "differs beyond noise")])
def test_a_task_whose_documents_all_scored_alike_is_judged_on_its_exact_interval(toy, published, verdict):
    """Weak solves none of its 10 gen documents: the standard error is 0 and a normal interval would collapse to
    the point 0, so any published value above 0 would 'differ'. 0 of 10 only bounds the rate below
    1 - 0.025^(1/10) = 30.85 % (Clopper-Pearson, 95 %)."""
    papers, results = toy
    data = yaml.safe_load((papers / "toy.yaml").read_text())
    data["tables"][0]["claims"] = [{"id": "weak-gen", "text": "Weak's gen as published.", "column": "gen",
                                    "better": ["Weak"], "equals": published}]
    (papers / "toy.yaml").write_text(yaml.safe_dump(data))
    table = find_table("toy-table", papers)
    _, verdicts = write_reproduction_report(table, "small", recipe_path(table, "small"), results, resamples=300)
    pair = verdicts[0].pairs[0]
    assert verdicts[0].verdict == verdict and pair.difference == pytest.approx(-published)
    upper = 100 * (1 - 0.025 ** (1 / 10))
    assert pair.interval == pytest.approx((0.0 - published, upper - published))


@pytest.mark.parametrize("left_out, key, message", [
    ({"huge": {"gen": "x"}}, "left_out.huge", "not a scale with a recipe"),
    ({"small": {"Average": "x"}}, "left_out.small.Average", "not a task column"),
    ({"small": {"gen": ""}}, "left_out.small.gen", "expected the reason"),
    ({"small": []}, "left_out.small", "expected a mapping"),
])
def test_a_bad_left_out_names_its_key(toy, left_out, key, message):
    papers, _ = toy
    data = yaml.safe_load((papers / "toy.yaml").read_text())
    data["tables"][0]["left_out"] = left_out
    (papers / "toy.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=rf"toy.yaml: tables\[toy-table\]\.{key}: {message}"):
        find_table("toy-table", papers)


# -- UNA's tables ---------------------------------------------------------------------------------


def test_una_tables_are_data_with_consistent_numbers_and_true_claims():
    assert {"una-table1", "una-table2", "una-table3"} <= set(table_ids(PAPERS_DIR))
    for table_id in ("una-table1", "una-table2"):
        table = find_table(table_id, PAPERS_DIR)
        assert table.source and table.paper["arxiv"] == "2408.15339"
        tasks = [c.name for c in table.columns if c.task]
        for row, values in table.values.items():  # the paper's average is the mean of its six columns
            assert values["Average"] == pytest.approx(statistics.fmean(values[c] for c in tasks), abs=0.015), row
    for table_id in ("una-table1", "una-table2", "una-table3"):
        table = find_table(table_id, PAPERS_DIR)
        for claim in table.claims:  # each claim, as written, is true of the paper's own numbers
            assert all(table.values[b][claim.column] > table.values[w][claim.column]
                       for b in claim.better for w in claim.worse), (table_id, claim.id)
    assert find_table("una-table1", PAPERS_DIR).values["UNA-score (MSE)"]["ifeval"] == 37.25
    assert find_table("una-table2", PAPERS_DIR).values["Mistral"]["mmlu"] == 62.51


@pytest.mark.parametrize("table_id", ["una-table1", "una-table2", "una-table3"])
@pytest.mark.parametrize("scale", ["small", "paper"])
def test_una_recipes_make_every_row_and_measure_every_column(table_id, scale):
    table = find_table(table_id, PAPERS_DIR).at_scale(scale)
    path = recipe_path(table, scale)
    assert path.is_file() and path.is_relative_to(REPO_ROOT / "reports" / "recipes")
    config = load_config(path)
    check_recipe(table, config)
    if scale == "small" and table_id != "una-table3":  # the CPU protocol measures these only as the scale says
        with pytest.raises(ConfigError, match="has no task"):
            check_recipe(find_table(table_id, PAPERS_DIR), config)
    if scale == "paper":
        assert config.model == "mistralai/Mistral-7B-v0.1" and config.train.lora["r"] == 32
        assert config.eval.leaderboard == {"una-table1": "open-llm-v2", "una-table3": "open-llm-v2",
                                           "una-table2": "open-llm-v1"}[table_id]
    else:  # the CPU protocol, sized to separate methods on 2 cores
        assert config.model == "smollm2-135m-instruct" and config.eval.leaderboard == "cpu-power"


def test_una_table3_is_reported_as_not_measured_without_running_anything(tmp_path):
    path, verdicts = reproduce("una-table3", "small", tmp_path / "out")
    assert [v.verdict for v in verdicts] == ["not measured"] * 3
    assert not (tmp_path / "out" / "runs").exists()
    assert "GPT-4" in path.read_text()


def test_a_consistent_but_negligible_difference_is_not_a_verdict(toy):
    """A metric that moves up by a hair on every document is 'significant' and still a tie."""
    papers, results = toy
    run = results / "runs" / "tie-s0-3333"
    base_run = results / "runs" / "base-0000"
    samples = json.loads((base_run / "lm_eval_samples.json").read_text())
    for leaf in samples["gen"].values():  # gen has no lower bound to clamp at: the shift survives scoring
        leaf["exact_match,none"] = [v + 1e-6 for v in leaf["exact_match,none"]]
    (run / "lm_eval_samples.json").write_text(json.dumps(samples))
    metrics = json.loads((base_run / "metrics.json").read_text())
    metrics["eval_headline"]["gen"] += 1e-4  # percent
    (run / "metrics.json").write_text(json.dumps(metrics))
    table = find_table("toy-table", papers)
    _, verdicts = write_reproduction_report(table, "small", recipe_path(table, "small"), results, resamples=300)
    pair = next(v for v in verdicts if v.claim.id == "tie-beats-base").pairs[0]
    assert pair.interval[0] > 0  # every resample is above base: statistically "holds"
    assert pair.outcome == "within noise"
    assert next(v for v in verdicts if v.claim.id == "tie-beats-base").verdict == "inconclusive"
