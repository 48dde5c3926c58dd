"""The suite's Open LLM Leaderboard v2 normalisation (harness.normalise / headline with open-llm-v2.yaml's lower
bounds) turns SmolLM2-135M-Instruct's published raw scores into its published normalised scores and average."""

import statistics

import pytest

from suite.analysis.claims import find_table
from suite.core.io import load_yaml_mapping
from suite.core.resources import shipped_dir
from suite.evaluation import load_leaderboard
from suite.evaluation.harness import headline, normalise

PUBLISHED = load_yaml_mapping(shipped_dir("reports") / "papers" / "open-llm-v2-smollm2.yaml")["published"]


def significant(value: float, digits: int = 5) -> float:
    """``value`` rounded to the published precision (5 significant digits; 0 stays 0)."""
    return float(f"{value:.{digits}g}")


def ours_from_counts() -> dict:
    """Each task's normalised score (percent) computed by the suite from the published document counts."""
    spec = load_leaderboard("open-llm-v2")
    tasks = {task.id: task for task in spec.tasks}
    raw = PUBLISHED["raw"]
    scores = {}
    for task_id in ("ifeval", "math_hard", "gpqa", "mmlu_pro"):
        task = tasks[task_id]
        fractions = {metric: raw[task_id][metric][0] / raw[task_id][metric][1] for metric in task.metrics}
        assert significant(statistics.fmean(fractions.values())) == pytest.approx(raw[task_id]["value"], abs=1e-12)
        normalised = {f"{m}_normalised": normalise(v, float(task.lower)) for m, v in fractions.items()}
        scores[task_id] = 100 * headline(task, normalised)
    scores["bbh"], scores["musr"] = PUBLISHED["normalised"]["bbh"], PUBLISHED["normalised"]["musr"]
    return scores


def test_normalisation_gives_the_published_scores_and_average():
    published = PUBLISHED["normalised"]
    ours = ours_from_counts()
    for task_id, value in ours.items():
        assert significant(value) == pytest.approx(published[task_id], abs=1e-6), task_id
    assert ours["gpqa"] == 0.0  # 0.23574 is below GPQA's chance level 0.25: clamped to 0
    average = statistics.fmean(ours[t] for t in ("ifeval", "bbh", "math_hard", "gpqa", "musr", "mmlu_pro"))
    assert significant(average) == pytest.approx(published["average"], abs=1e-6)


def test_the_table_carries_the_published_row():
    table = find_table("open-llm-v2-smollm2")
    row = table.values["SmolLM2-135M-Instruct"]
    columns = {"IFEval": "ifeval", "BBH": "bbh", "MATH Lvl 5": "math_hard", "GPQA": "gpqa", "MuSR": "musr",
               "MMLU-Pro": "mmlu_pro", "Average": "average"}
    assert {name: row[name] for name in columns} == {name: PUBLISHED["normalised"][key] for name, key in columns.items()}
    assert [c.equals for c in table.claims] == [PUBLISHED["normalised"][columns[c.column]] for c in table.claims]
