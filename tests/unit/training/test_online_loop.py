"""The online loop end to end on tiny-llama: every online method moves a rule reward the right way over a
short run; PPO and online UNA share one reward-model component, are evaluated like every other run, and
the UNA online report renders from their stored runs."""

import json

import pytest
import torch
import yaml
from support import preference_rows, write_jsonl

from suite.config.schema import load_config
from suite.core.errors import ConfigError
from suite.execution.runner import run_experiment
from suite.training.online import REWARD_RULES, register_reward_rule

ONLINE = ("ppo", "rloo", "grpo", "online-dpo", "una-online")
# Responses per step: 16 for every method (prompts per step × samples per prompt).
PROMPTS_PER_STEP = {"ppo": 16, "una-online": 16, "online-dpo": 8, "rloo": 4, "grpo": 4}
STEPS = 6


def even_token_reward(record, response: str, response_ids: list) -> float:
    """4 · (share of the response's tokens, end-of-turn left out, with an even id) − 2, in [−2, 2].

    A token-level property a tiny random model can learn in a few steps: at temperature 0.1 its
    near-uniform next-token distribution is sharp enough for sampled tokens to recur, so raising the even
    ones shows in the next samples and on held-out prompts.
    """
    ids = [i for i in response_ids if i != 2]
    return 4.0 * (sum(i % 2 == 0 for i in ids) / len(ids) - 0.5) if ids else 0.0


@pytest.fixture(autouse=True, scope="module")
def setup_module_state():
    """The test rule is registered for this module only; one thread (tiny matrices gain nothing from more,
    and on a busy machine extra threads wait on each other)."""
    if "test-even-tokens" not in REWARD_RULES:
        register_reward_rule("test-even-tokens", even_token_reward)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    REWARD_RULES.remove("test-even-tokens")


def _config(tmp_path, methods, train=None, eval_=None, rows=128) -> dict:
    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(rows))
    return {
        "name": "online", "model": "tiny-llama", "dataset": {"path": str(data), "format": "pairwise"},
        "methods": methods, "evaluate_base": False, "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": STEPS, "per_device_batch_size": 4, "max_length": 64, "warmup_ratio": 0.0,
                  "lr_scheduler": "constant", **(train or {})},
        "eval": {"leaderboard": None, "alignment_pairs": 4, "generation_prompts": 2, "max_new_tokens": 4, **(eval_ or {})},
    }


def _run(tmp_path, config: dict):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    outcomes = run_experiment(load_config(tmp_path / "config.yaml"), tmp_path / "out")
    assert all(o.status == "complete" for o in outcomes), outcomes
    runs = {}
    for outcome in outcomes:
        folder = tmp_path / "out" / "runs" / outcome.run_id
        runs[outcome.method] = {
            "manifest": json.loads((folder / "manifest.json").read_text()),
            "metrics": json.loads((folder / "metrics.json").read_text()),
            "log": [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
            if (folder / "train_log.jsonl").is_file() else [],  # the base row trains nothing
        }
    return runs


@pytest.mark.parametrize("method", ONLINE)
def test_online_method_moves_a_rule_reward_up(method, tmp_path):
    config = _config(tmp_path, [{"id": method, "reward": "test-even-tokens", "temperature": 0.1, "max_new_tokens": 4,
                                 "eval_prompts": 16, "learning_rate": 3e-4}],
                     train={"per_device_batch_size": PROMPTS_PER_STEP[method]})
    run = _run(tmp_path, config)[method]
    log, train = run["log"], run["metrics"]["train"]
    assert [r["step"] for r in log] == list(range(1, STEPS + 1))
    for record in log:
        assert {"loss", "reward", "kl", "response_length", "step_time_s", "peak_memory_mb"} <= set(record)
        assert record["response_length"] <= 4 and record["peak_memory_mb"] > 0
    assert log[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # the first rollout comes from the reference itself
    before, after = train["heldout_reward"]["before"], train["heldout_reward"]["after"]
    assert before["prompts"] == after["prompts"] == 16
    assert after["mean"] > before["mean"] + 0.5, (before, after, [r["reward"] for r in log])
    assert sum(r["reward"] for r in log[-2:]) > sum(r["reward"] for r in log[:2])
    assert train["steps"] == STEPS and train["runtime_s"] > 0 and train["peak_memory_mb"] > 0


def test_ppo_ptx_raises_the_demonstrations_likelihood_that_plain_ppo_leaves(tmp_path):
    # PPO-ptx's extra term is the demonstrations' NLL: with a large γ it falls over the run, and the run
    # still optimises the reward (the PPO part is PPO's own loss)
    config = _config(tmp_path, [{"id": "ppo-ptx", "reward": "test-even-tokens", "temperature": 0.1,
                                 "max_new_tokens": 4, "eval_prompts": 4, "learning_rate": 3e-4, "ptx_coef": 2.0}],
                     train={"per_device_batch_size": 8})
    log = _run(tmp_path, config)["ppo-ptx"]["log"]
    nll = [record["ptx/nll"] for record in log]
    assert len(nll) == STEPS and all(value > 0 for value in nll)
    assert nll[-1] < nll[0] - 0.5, nll
    assert {"policy_loss", "value_loss", "reward", "kl"} <= set(log[-1])


def test_direct_rlaif_takes_the_judges_score_as_the_reward(tmp_path):
    config = _config(tmp_path, [{"id": "direct-rlaif", "max_new_tokens": 4, "eval_prompts": 2, "learning_rate": 1e-3}],
                     train={"per_device_batch_size": 2}, rows=48)
    config["train"]["max_steps"] = 2
    run = _run(tmp_path, config)["direct-rlaif"]
    train = run["metrics"]["train"]
    assert train["reward_source"] == "judge" and run["manifest"]["components"] == {}  # no reward model trained
    assert all(-1.0 <= record["reward"] <= 1.0 for record in run["log"]) and len(run["log"]) == 2
    # the judge is a language model reading AlpacaEval's prompt: its preferences are not all one value
    assert train["reward"]["first_step"] != 0.0


def test_a_judge_reward_needs_a_judge(tmp_path):
    config = _config(tmp_path, [{"id": "direct-rlaif", "reward_judge": "nobody"}])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="reward_judge: expected 'base' or a judge spec"):
        load_config(tmp_path / "config.yaml")


def test_ppo_and_una_share_one_reward_model_and_are_evaluated_like_any_run(tmp_path, local_leaderboard):
    from suite.analysis.claims import find_table, recipe_path
    from suite.reporting.report import write_report
    from suite.reporting.reproduce import write_reproduction_report

    shared = {"reward_model_overrides": {"max_steps": 3}, "max_new_tokens": 6, "eval_prompts": 4}
    config = _config(tmp_path, [{"id": "ppo", "ppo_epochs": 2, **shared}, {"id": "una-online", **shared}],
                     train={"max_steps": 2, "per_device_batch_size": 2, "learning_rate": 1e-3},
                     eval_={"leaderboard": str(local_leaderboard), "batch_size": 4}, rows=24)
    config["evaluate_base"] = True
    runs = _run(tmp_path, config)
    assert sorted(runs) == ["base", "ppo", "reward-model", "una-online"]  # one reward model for both
    reward_model = runs["reward-model"]["manifest"]["run_id"]
    for method in ("ppo", "una-online"):
        manifest, metrics = runs[method]["manifest"], runs[method]["metrics"]
        assert manifest["components"] == {"reward_model": reward_model}
        assert 0 <= metrics["eval"]["colors"]["acc"] <= 1  # the leaderboard and alignment metrics, as for any run
        assert 0 <= metrics["alignment"]["reward_accuracy"] <= 1
        assert metrics["train"]["reward_source"] == "model" and len(runs[method]["log"]) == 2
        assert metrics["train"]["heldout_reward"]["before"]["mean"] == pytest.approx(
            runs["una-online"]["metrics"]["train"]["heldout_reward"]["before"]["mean"])  # same prompts, seed, policy
    assert "value_loss" in runs["ppo"]["log"][0] and "implicit_score/mean" in runs["una-online"]["log"][0]
    assert runs["reward-model"]["metrics"]["eval"] == {}

    # the training-cost comparison is a paper table like any other (reports/papers/una-online.yaml)
    table = find_table("una-online-cost")
    path, verdicts = write_reproduction_report(table, "small", recipe_path(table, "small"), tmp_path / "out")
    report = path.read_text()
    ppo, una = runs["ppo"]["metrics"]["train"], runs["una-online"]["metrics"]["train"]
    assert f"ratio {una['runtime_s'] / ppo['runtime_s']:.2f}, claimed below 0.5" in report
    assert {v.claim.id: v.verdict for v in verdicts}["una-less-memory"] in ("agrees", "disagrees", "inconclusive")
    ours = report.split("## Ours\n")[1]
    assert f"| {ppo['heldout_reward']['after']['mean']:.2f} |" in next(l for l in ours.splitlines() if l.startswith("| RLHF |"))
    assert f"| {una['heldout_reward']['after']['mean']:.2f} |" in next(l for l in ours.splitlines() if l.startswith("| UNA |"))
    assert find_table("una-online-table4").values["UNA"]["Average"] == 25.91  # the paper's numbers, from reports/papers
    assert write_report(tmp_path / "out").markdown.is_file()  # the general report takes the reward-model row too


def test_online_config_errors_name_the_method(tmp_path):
    config = _config(tmp_path, [{"id": "grpo", "reward": "no-such-rule"}])
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"methods\[0\].*no-such-rule.*gsm8k"):
        load_config(tmp_path / "bad.yaml")
    config["methods"] = [{"id": "rloo", "num_samples": 1}]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"methods\[0\].*num_samples must be an integer >= 2"):
        load_config(tmp_path / "bad.yaml")
    config["methods"] = [{"id": "una-online", "log_ratio_against": "policy"}]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="log_ratio_against must be one of reference, rollout"):
        load_config(tmp_path / "bad.yaml")


def test_gsm8k_verifier_rewards_through_the_loop(tmp_path):
    """A rule reward that needs the data's reference answer: GSM8K-style SFT records."""
    rows = [{"prompt": f"What is {i} + {i}?", "completion": f"{i} + {i} = {2 * i}.\n#### {2 * i}"} for i in range(24)]
    data = write_jsonl(tmp_path / "math.jsonl", rows)
    config = _config(tmp_path, [{"id": "una-online", "reward": "gsm8k", "max_new_tokens": 4, "eval_prompts": 4}],
                     train={"max_steps": 1, "per_device_batch_size": 2})
    config["dataset"] = {"path": str(data), "format": "sft"}
    run = _run(tmp_path, config)["una-online"]
    assert run["log"][0]["reward"] in (0.0, 0.5, 1.0)  # each response scores 0 or 1
    assert run["metrics"]["train"]["heldout_reward"]["after"]["prompts"] == 4
