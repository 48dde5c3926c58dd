"""Seeded document subsets (eval.subset) and the `equals` claims that hold our numbers against published ones."""

from suite.analysis.claims import Claim, Column, Measured, PaperTable, judge_equals, verdict_of
from suite.config.schema import build_config
from suite.evaluation.harness import subset_indices
from suite.execution.runner import eval_definition


def test_subset_is_seeded_sorted_and_per_leaf():
    first = subset_indices("leaderboard_bbh_navigate", 250, 8, seed=0)
    assert first == subset_indices("leaderboard_bbh_navigate", 250, 8, seed=0) == sorted(set(first))
    assert len(first) == 8 and all(0 <= i < 250 for i in first)
    assert first != subset_indices("leaderboard_bbh_snarks", 250, 8, seed=0)
    assert first != subset_indices("leaderboard_bbh_navigate", 250, 8, seed=1)
    assert subset_indices("small", 5, 8, seed=0) == [0, 1, 2, 3, 4]  # a task smaller than the subset: all of it


def test_subset_enters_the_run_identity_only_when_set():
    base = {"name": "t", "model": "tiny-llama", "dataset": "hh-rlhf-harmless", "methods": []}
    assert "subset" not in eval_definition(build_config({**base, "eval": {"leaderboard": "quick"}}))
    assert eval_definition(build_config({**base, "eval": {"leaderboard": "quick", "subset": 4}}))["subset"] == 4


class _Row:  # the MethodRow fields judge_equals reads, with one run's stored standard errors
    def __init__(self, mean, stderr):
        self.mean, self.runs = mean, [type("Run", (), {"stderr": stderr})()]


def test_equals_verdicts(monkeypatch):
    import suite.analysis.claims as claims

    monkeypatch.setattr(claims, "MethodRow", _Row)
    columns = [Column("A", task="a"), Column("B", task="b"), Column("Avg", mean_of=["A", "B"])]
    table = PaperTable("t", "t", "", "", {}, None, {}, {"M": "base"}, columns,
                       {"M": {"A": 10.0, "B": 2.0, "Avg": 6.0}}, [])
    row = _Row({"a": 11.0, "b": None}, {"a": 1.0})
    measured = Measured({"M": {"A": 11.0, "B": None, "Avg": 11.0}}, {}, {}, {"M": {"A": row, "B": row, "Avg": row}})
    agrees = judge_equals(table, Claim("a", "", "A", ["M"], [], equals=10.0), "M", measured)
    assert agrees.outcome == "agrees" and agrees.interval == (1.0 - 1.96, 1.0 + 1.96)
    differs = judge_equals(table, Claim("a", "", "A", ["M"], [], equals=7.0), "M", measured)
    assert differs.outcome == "differs" and verdict_of({differs.outcome}) == "differs beyond noise"
    assert judge_equals(table, Claim("b", "", "B", ["M"], [], equals=2.0), "M", measured).outcome == "not measured"
    # an average with a task missing: compared with the published mean over the tasks that ran (A only: 10)
    average = judge_equals(table, Claim("avg", "", "Avg", ["M"], [], equals=6.0), "M", measured)
    assert average.worse == "published 10" and average.difference == 1.0


def test_documents_are_counted_after_the_tasks_own_filter(tmp_path):
    # a task whose process_docs keeps 3 of its file's 6 rows (as MATH Lvl 5 keeps the level-5 problems):
    # a subset must draw from those 3, or lm-eval refuses the indices
    from lm_eval.tasks import TaskManager

    from suite.evaluation.harness import document_count
    from support import FIXTURES, TASK_YAML

    (tmp_path / "utils.py").write_text("def first_three(dataset):\n    return dataset.select(range(3))\n")
    task = TASK_YAML.format(data=FIXTURES / "lm_eval_tasks" / "colors.jsonl") + "process_docs: !function utils.first_three\n"
    (tmp_path / "colors.yaml").write_text(task)
    assert sum(1 for _ in open(FIXTURES / "lm_eval_tasks" / "colors.jsonl")) == 6
    assert document_count("alignsuite_test_colors", TaskManager(include_path=str(tmp_path), include_defaults=False)) == 3


def _two_task_spec(folder):
    from support import write_local_leaderboard

    path = write_local_leaderboard(folder)
    colors = folder / "tasks" / "colors.yaml"
    (folder / "tasks" / "shades.yaml").write_text(colors.read_text().replace("alignsuite_test_colors", "alignsuite_test_shades"))
    path.write_text(path.read_text() + "  - {id: shades, lm_eval: alignsuite_test_shades, num_fewshot: 0, metric: acc}\n")
    return path


def test_a_subset_per_task_names_every_task_of_the_spec(tmp_path):
    import pytest

    from suite.core.errors import ConfigError
    from suite.evaluation.harness import subset_for
    from suite.evaluation.leaderboard import load_leaderboard

    spec = load_leaderboard(str(_two_task_spec(tmp_path)))
    assert subset_for(3, spec, "colors") == 3 and subset_for(None, spec, "colors") is None
    assert subset_for({"colors": 2, "shades": None}, spec, "shades") is None
    with pytest.raises(ConfigError, match=r"eval.subset.nope: not a task of leaderboard tiny-test"):
        subset_for({"colors": 2, "shades": 1, "nope": 1}, spec, "colors")
    with pytest.raises(ConfigError, match="gives no count for task shades"):
        subset_for({"colors": 2}, spec, "colors")


def test_subset_values_are_range_checked_when_the_config_is_read():
    import pytest

    from suite.core.errors import ConfigError

    base = {"name": "t", "model": "tiny-llama", "dataset": "hh-rlhf-harmless", "methods": []}
    assert build_config({**base, "eval": {"subset": {"arc": 5, "mmlu": None}}}).eval.subset == {"arc": 5, "mmlu": None}
    for bad, fragment in [({"arc": 0}, "eval.subset.arc: must be > 0"), (0, "eval.subset: must be > 0"),
                          ({}, "eval.subset: an empty mapping"), ("all", "eval.subset: expected int or dict or null"),
                          (True, "eval.subset: expected int or dict or null")]:
        with pytest.raises(ConfigError, match=fragment):
            build_config({**base, "eval": {"subset": bad}})


def test_a_per_task_subset_runs_each_task_on_its_own_count(tmp_path):
    from suite.evaluation.harness import evaluate_leaderboard
    from suite.evaluation.leaderboard import load_leaderboard
    from suite.modeling.models import load_model

    spec = load_leaderboard(str(_two_task_spec(tmp_path)))
    loaded = load_model("tiny-llama")
    result = evaluate_leaderboard(loaded.model, loaded.tokenizer, spec, batch_size=4, workdir=tmp_path / "work",
                                  subset={"colors": 2, "shades": None})
    assert list(result.settings["subset_documents"].values()) == [2]  # shades: every document, no subset drawn
    assert result.settings["tasks"]["colors"]["subset"] == 2 and result.settings["tasks"]["shades"]["subset"] is None
    sizes = {task: len(next(iter(leaves.values()))["doc_id"]) for task, leaves in result.samples.items()}
    assert sizes == {"colors": 2, "shades": 6}


def test_an_evaluation_run_again_with_its_request_cache_answers_nothing_twice(tmp_path, monkeypatch):
    """A killed evaluation resumes: answers are kept as they come (lm-eval's request cache), so a rerun
    on the same model asks the backend nothing it answered before and scores the same."""
    from support import write_local_leaderboard

    from suite.evaluation import backend as ours
    from suite.evaluation.harness import evaluate_leaderboard
    from suite.evaluation.leaderboard import load_leaderboard
    from suite.modeling.models import load_model

    spec = load_leaderboard(str(write_local_leaderboard(tmp_path)))
    loaded = load_model("tiny-llama")
    cache = tmp_path / "requests"
    first = evaluate_leaderboard(loaded.model, loaded.tokenizer, spec, batch_size=4, workdir=tmp_path / "a",
                                 request_cache=cache)
    assert [path.name for path in cache.iterdir()] == [f"hf-{ours.BACKEND_VERSION}_rank0.db"]
    asked = []
    original = ours.SharedContextLM._loglikelihood_tokens
    monkeypatch.setattr(ours.SharedContextLM, "_loglikelihood_tokens",
                        lambda self, requests, **kw: asked.extend(requests) or original(self, requests, **kw))
    again = evaluate_leaderboard(loaded.model, loaded.tokenizer, spec, batch_size=4, workdir=tmp_path / "b",
                                 request_cache=cache)
    assert asked == [] and again.scores == first.scores
    evaluate_leaderboard(loaded.model, loaded.tokenizer, spec, batch_size=4, workdir=tmp_path / "c",
                         request_cache=tmp_path / "fresh")
    assert asked  # without the cache the backend answers every request
