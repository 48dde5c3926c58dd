"""Rounds of generate → judge → pairs → DPO (iterative DPO, RLAIF, self-rewarding): the pair rule, the
config checks, and complete runs on tiny-llama with each kind of judge."""

import json
import math

import pytest
import yaml
from support import preference_rows, write_jsonl

from suite.config.schema import load_config
from suite.core.errors import ConfigError
from suite.data.records import instruction_text
from suite.execution.rounds import best_and_worst, check_rounds
from suite.execution.runner import run_experiment
from suite.method.registry import get_method


def test_the_pair_is_the_best_and_the_worst_candidate_unless_they_tie():
    assert best_and_worst([1.2, 1.8, 1.5], 0.0) == (1, 0)
    assert best_and_worst([1.5, 1.5], 0.0) is None  # a tie carries no preference
    assert best_and_worst([1.5, 1.6, 1.6, 1.4], 0.0) == (1, 3)  # the first of equal bests
    assert best_and_worst([1.50, 1.55], 0.1) is None and best_and_worst([1.4, 1.55], 0.1) == (1, 0)
    assert instruction_text([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                             {"role": "user", "content": "c"}]) == "c"


@pytest.mark.parametrize("change,message", [
    ({"candidates": 1}, "candidates must be an integer >= 2"),
    ({"judge": "nobody"}, "judge must be one of policy, base, reward-model"),
    ({"judge": {"type": "oracle"}}, "judge.type: expected one of"),
    ({"offline_method": "kto"}, "offline_method: kto is not an offline method trained on pairs"),
    ({"offline_overrides": {"gamma": 1}}, "has no hyper-parameter 'gamma'"),
    ({"rounds": 0}, "rounds must be an integer >= 1"),
])
def test_bad_round_settings_fail_when_the_config_is_read(change, message):
    hp = get_method("self-rewarding").hyperparameters()
    with pytest.raises(ConfigError, match=message):
        check_rounds({**hp, **change})


def _run(tmp_path, method: dict, rows: int = 48):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(rows))
    config = {"name": "rounds", "model": "tiny-llama", "dataset": {"path": str(data), "format": "pairwise"},
              "methods": [method], "evaluate_base": False, "data": {"heldout_fraction": 0.25},
              "train": {"max_steps": 2, "per_device_batch_size": 2, "max_length": 64, "warmup_ratio": 0.0,
                        "lr_scheduler": "constant"},
              "eval": {"leaderboard": None, "alignment_pairs": 4, "generation_prompts": 0}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    outcomes = run_experiment(load_config(tmp_path / "config.yaml"), tmp_path / "out")
    assert all(o.status == "complete" for o in outcomes), outcomes
    (outcome,) = [o for o in outcomes if o.method == method["id"]]
    folder = tmp_path / "out" / "runs" / outcome.run_id
    return json.loads((folder / "metrics.json").read_text()), folder


@pytest.mark.parametrize("method_id,judge_kind", [("self-rewarding", "the policy itself"), ("rlaif", "the starting model")])
def test_a_rounds_method_trains_round_after_round_on_its_judges_pairs(tmp_path, method_id, judge_kind):
    rounds = 2 if method_id == "self-rewarding" else 1
    metrics, folder = _run(tmp_path, {"id": method_id, "rounds": rounds, "prompts_per_round": 6, "candidates": 2,
                                      "max_new_tokens": 6, "offline_overrides": {"learning_rate": 1e-3}})
    train = metrics["train"]
    assert [r["round"] for r in train["rounds"]] == list(range(1, rounds + 1))
    assert judge_kind in train["judge"]["model"] and train["judge"]["type"] == "llm"
    for record in train["rounds"]:
        assert record["prompts"] == 6 and record["pairs"] + record["prompts_without_pair"] == 6 and record["pairs"] > 0
        assert 1.0 <= record["mean_preference"] <= 2.0 and record["train"]["steps"] == 2
    log = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
    assert {r.get("stage") for r in log if "loss" in r} == set(range(1, rounds + 1))  # one DPO stage per round
    assert (folder / "model").is_dir() and metrics["alignment"]


def test_iterative_dpo_judges_with_the_experiments_reward_model(tmp_path):
    metrics, _ = _run(tmp_path, {"id": "iterative-dpo", "rounds": 2, "prompts_per_round": 4, "candidates": 3,
                                 "max_new_tokens": 4, "reward_model_overrides": {"learning_rate": 1e-3}})
    train = metrics["train"]
    assert train["judge"]["type"] == "reward-model" and "reward-model" in train["judge"]["model"]
    assert len(train["rounds"]) == 2 and all(r["candidates"] == 3 for r in train["rounds"])


def test_too_few_prompts_for_the_rounds_is_a_clear_error(tmp_path):
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(8))
    config = {"name": "rounds", "model": "tiny-llama", "dataset": {"path": str(data), "format": "pairwise"},
              "methods": [{"id": "self-rewarding", "rounds": 3, "prompts_per_round": 50}], "evaluate_base": False,
              "data": {"heldout_fraction": 0.25}, "train": {"max_steps": 1, "max_length": 64},
              "eval": {"leaderboard": None, "alignment_pairs": 2, "generation_prompts": 0}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    outcomes = run_experiment(load_config(tmp_path / "config.yaml"), tmp_path / "out")
    (outcome,) = outcomes
    manifest = json.loads((tmp_path / "out" / "runs" / outcome.run_id / "manifest.json").read_text())
    assert outcome.status == "failed" and "need 150 training prompts" in manifest["error"]


def test_rso_rejection_sampling_follows_the_tilted_policy():
    import random
    from collections import Counter

    from methods.iterative import preference_reward, rso_accept, rso_pairs

    rewards = [0.0, 1.0, 2.0]
    # β → 0: only the best remaining can be accepted in a sweep, so acceptance follows the rewards down
    assert rso_accept(rewards, 1e-3, 3, random.Random(0)) == [2, 1, 0]
    # one accept at β = 1, by the algorithm's sweep in candidate order: P(0) = e^-2, P(1) = (1 − e^-2)·e^-1, P(2) the rest
    counts = Counter(rso_accept(rewards, 1.0, 1, random.Random(s))[0] for s in range(6000))
    p0 = math.exp(-2)
    expected = [p0, (1 - p0) * math.exp(-1), (1 - p0) * (1 - math.exp(-1))]
    assert all(abs(counts[i] / 6000 - expected[i]) < 0.02 for i in range(3)), counts
    assert sorted(rso_accept(rewards, 1.0, 3, random.Random(0))) == [0, 1, 2]  # without replacement
    assert rso_accept(rewards, 1e6, 2, random.Random(0)) == [0, 1]  # β → ∞: π_sft's own order
    # a preference is a Bradley-Terry probability: its logit is the reward difference
    assert preference_reward(1 + 1 / (1 + math.exp(-0.7))) == pytest.approx(0.7)
    pairs = rso_pairs([1.2, 1.9, 1.5, 1.1], {"rso_beta": 1e-3, "accepted": 4}, random.Random(0))
    assert pairs == [(1, 2), (0, 3)]  # β tiny: accepted by reward, 1, 2, 0, 3; each pair's higher reward chosen


def test_rso_and_dno_run_on_the_reward_model(tmp_path):
    metrics, _ = _run(tmp_path / "rso", {"id": "rso", "prompts_per_round": 4, "candidates": 4, "accepted": 2,
                                         "max_new_tokens": 4, "reward_model_overrides": {"learning_rate": 1e-3}})
    (rso_round,) = metrics["train"]["rounds"]
    assert rso_round["candidates"] == 4 and rso_round["pairs"] <= 4
    metrics, _ = _run(tmp_path / "dno", {"id": "dno", "rounds": 2, "prompts_per_round": 4, "candidates": 2,
                                         "max_new_tokens": 4, "min_gap": 0.0,
                                         "reward_model_overrides": {"learning_rate": 1e-3}})
    assert len(metrics["train"]["rounds"]) == 2


def test_rso_needs_an_even_accepted_count_within_the_candidates():
    hp = get_method("rso").hyperparameters()
    with pytest.raises(ConfigError, match="accepted must be even"):
        get_method("rso").components({**hp, "accepted": 3})
    with pytest.raises(ConfigError, match="accepted must be even"):
        get_method("rso").components({**hp, "accepted": 10})
