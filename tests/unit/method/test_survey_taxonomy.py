"""The survey's full table (suite/method/survey_methods.yaml rendered by suite/method/taxonomy.py): every
registered method appears once, every survey method appears, every row not runnable here says why, and a
malformed survey file is one error naming the file, the entry and the key."""

import csv
import io

import pytest
import yaml

from suite.cli import main
from suite.core.errors import ConfigError
from suite.method.registry import TAXONOMY, all_methods
from suite.method.taxonomy import NOT_IN_SURVEY, load_survey, render_csv, render_markdown, taxonomy_rows

# Named in the survey (arXiv 2407.16216) and in issue 21: each must have a row, runnable or not.
SURVEY_NAMES = {
    "PPO-ptx", "RSO (statistical rejection sampling)", "GPO", "Pairwise CRINGE", "LiPO", "Iterative DPO",
    "Self-rewarding language models", "RLAIF (Anthropic, Constitutional AI)", "RLAIF (Google) and direct RLAIF",
    "NLHF (Nash-MD)", "DNO", "SPPO", "DPO", "IPO", "SLiC-HF", "KTO", "RRHF", "PRO", "TDPO", "SimPO", "ORPO",
}


@pytest.fixture(scope="module")
def rows():
    return taxonomy_rows(all_methods())


def test_every_registered_method_appears_exactly_once(rows):
    registered = [m.id for m in all_methods()]
    runnable = [r["method"] for r in rows if r["runnable"] == "yes"]
    assert sorted(runnable) == sorted(registered)


def test_every_survey_method_has_a_row_and_the_new_ones_run(rows):
    assert SURVEY_NAMES <= {r["survey"] for r in rows}
    by_id = {r["method"]: r for r in rows if r["runnable"] == "yes"}
    assert by_id["gpo"]["survey"] == "GPO" and by_id["pairwise-cringe"]["survey"] == "Pairwise CRINGE"
    assert by_id["lipo"]["survey"] == "LiPO" and by_id["una-pairwise"]["survey"] == NOT_IN_SURVEY
    assert by_id["ppo-ptx"]["survey"] == "PPO-ptx"


def test_every_non_runnable_row_says_why_and_has_a_full_position(rows):
    allowed = {direction: values for _, direction, values in TAXONOMY}
    not_runnable = [r for r in rows if r["runnable"] == "no"]
    assert {r["survey"] for r in not_runnable} >= {"NLHF (Nash-MD)", "Anthropic HH RLHF"}
    for row in not_runnable:
        assert len(row["why not"]) > 20, row["method"]
        assert all(row[direction] in values for direction, values in allowed.items()), row["method"]
        assert "arXiv" in row["paper"]
    assert all(r["why not"] == "" for r in rows if r["runnable"] == "yes")


def test_survey_entries_cite_the_methods_own_papers():
    survey = load_survey()
    assert all(entry.paper.arxiv and entry.paper.arxiv != "2407.16216" for entry in survey)


def test_rendered_formats_carry_the_reasons(rows, capsys, tmp_path):
    parsed = list(csv.DictReader(io.StringIO(render_csv(rows))))
    assert len(parsed) == len(rows)
    nash_md = next(r for r in parsed if r["survey"] == "NLHF (Nash-MD)")
    assert nash_md["runnable"] == "no" and "geometric mixture" in nash_md["why not"] and nash_md["online"] == "online"
    ppo_ptx = next(r for r in parsed if r["method"] == "ppo-ptx")
    assert ppo_ptx["runnable"] == "yes" and ppo_ptx["sft"] == "merged" and ppo_ptx["online"] == "online"
    assert "| NLHF (Nash-MD) |" in render_markdown(rows)
    assert main(["methods", "--taxonomy"]) == 0
    out = capsys.readouterr().out
    assert "not runnable here:" in out and "  NLHF (Nash-MD): " in out


def _write(tmp_path, methods):
    path = tmp_path / "survey.yaml"
    path.write_text(yaml.safe_dump({"methods": methods}))
    return path


FULL_TAGS = {direction: values[0] for _, direction, values in TAXONOMY}


@pytest.mark.parametrize("entry,message", [
    ({"name": "X", "arxiv": "1"}, r"methods\[0\] \(X\): give either 'registry'"),
    ({"name": "X", "registry": ["dpo"], "not_runnable": "why"}, r"methods\[0\] \(X\): give either"),
    ({"name": "X", "registry": []}, r"\(X\): 'registry' must be a non-empty list"),
    ({"name": "X", "registry": ["dpo"], "colour": "red"}, r"\(X\): unknown key\(s\) colour"),
    ({"name": "X", "not_runnable": "why"}, r"\(X\): missing feedback, needs_reference, needs_reward_model, taxonomy"),
    ({"name": "X", "not_runnable": " ", "taxonomy": FULL_TAGS, "feedback": "sft", "needs_reference": True,
      "needs_reward_model": True}, r"\(X\): 'not_runnable' must say why"),
    ({"name": "X", "not_runnable": "why", "taxonomy": {**FULL_TAGS, "reward": "magic"}, "feedback": "sft",
      "needs_reference": True, "needs_reward_model": True}, r"\(X\): taxonomy reward='magic'"),
    ({"name": "X", "not_runnable": "why", "taxonomy": {"reward": "explicit"}, "feedback": "sft",
      "needs_reference": True, "needs_reward_model": True}, r"\(X\): 'taxonomy' must give exactly the 13"),
])
def test_malformed_entries_are_one_clear_error(tmp_path, entry, message):
    path = _write(tmp_path, [entry])
    with pytest.raises(ConfigError, match=message) as caught:
        load_survey(path)
    assert str(path) in str(caught.value)


def test_an_id_under_two_entries_or_unregistered_is_an_error(tmp_path):
    path = _write(tmp_path, [{"name": "A", "registry": ["dpo"]}, {"name": "B", "registry": ["dpo"]}])
    with pytest.raises(ConfigError, match="'dpo' is listed under both 'A' and 'B'"):
        load_survey(path)
    survey = load_survey(_write(tmp_path, [{"name": "A", "registry": ["no-such-method"]}]))
    with pytest.raises(ConfigError, match="names method 'no-such-method', which is not registered"):
        taxonomy_rows(all_methods(), survey)
