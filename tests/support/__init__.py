"""Shared test helpers (a package, imported as ``support``; pytest puts tests/ on sys.path): the
folders of fixtures, a local lm-eval task + leaderboard spec, and small preference files."""

import json
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = TESTS_DIR.parent
FIXTURES = TESTS_DIR / "fixtures"
BAD_INPUTS = TESTS_DIR / "bad_inputs"


TASK_YAML = """task: alignsuite_test_colors
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: multiple_choice
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


SPEC_YAML = """name: tiny-test
description: one local multiple-choice task, for tests
comparable: false
include_path: tasks
tasks:
  - {id: colors, lm_eval: alignsuite_test_colors, num_fewshot: 0, metric: [acc, acc_norm], lower: 0.3333333333}
"""


def write_local_leaderboard(folder: Path) -> Path:
    """A leaderboard spec whose one task is a local lm-eval task on a 6-question JSONL file."""
    tasks = folder / "tasks"
    tasks.mkdir()
    (tasks / "colors.yaml").write_text(TASK_YAML.format(data=FIXTURES / "lm_eval_tasks" / "colors.jsonl"))
    spec = folder / "tiny-test.yaml"
    spec.write_text(SPEC_YAML)
    return spec


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def preference_rows(n: int = 24):
    """Deterministic little pairwise data with a learnable signal (polite vs curt answers)."""
    topics = ["tea", "rain", "maps", "bread", "chess", "rivers", "owls", "glass", "music", "paint", "salt", "wind"]
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        rows.append({
            "prompt": f"Tell me one fact about {topic} (#{i}).",
            "chosen": f"Certainly! Here is a fact about {topic}: it is interesting.",
            "rejected": f"No. {topic} {i}",
            "chosen_score": 0.9,
            "rejected_score": 0.1,
        })
    return rows
