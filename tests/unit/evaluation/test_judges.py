"""Judges on tiny models: the registry, the reward-model, LLM (local and OpenAI-compatible endpoint) and
implicit-reward judges, answers + judged metrics, the runner's eval.judge and the bad-input errors."""

import json
import math
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch
import yaml

from suite.core.errors import ConfigError, DataError, SuiteError
from suite.evaluation.judges import build_judge, judge_types
from suite.modeling.models import load_model

INSTRUCTIONS = ["Name a colour.", "What is two plus two?", "Say hello politely."]
REFERENCES = ["Blue is a colour.", "Two plus two is four.", "Hello, it is a pleasure to meet you."]
ANSWERS = ["red", "4", "hi"]


@pytest.fixture(scope="module")
def tiny_reward_model(tmp_path_factory):
    from suite.training.reward_model import classifier_from_causal_lm

    loaded = load_model("tiny-llama")
    classifier = classifier_from_causal_lm(loaded.model, loaded.tokenizer.pad_token_id)
    folder = tmp_path_factory.mktemp("rm") / "model"
    classifier.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def local_llm_judge():
    return build_judge({"type": "llm", "model": "tiny-llama"})


def test_registry_lists_the_three_judges():
    assert judge_types() == ["implicit-reward", "llm", "reward-model"]
    with pytest.raises(ConfigError, match="unknown judge 'gpt5'"):
        build_judge({"type": "gpt5"})
    with pytest.raises(ConfigError, match=r"eval.judge.temperature: unknown key"):
        build_judge({"type": "reward-model", "model": "x/y", "temperature": 1})


def test_reward_model_judge_is_bradley_terry_on_the_classifier(tiny_reward_model):
    from suite.training.reward_model import load_reward_model, sequence_rewards
    from suite.modeling.sequences import encode_sequence, pad_sequences

    judge = build_judge({"type": "reward-model", "model": str(tiny_reward_model), "max_length": 64})
    forward = judge.preferences(INSTRUCTIONS, REFERENCES, ANSWERS)
    backward = judge.preferences(INSTRUCTIONS, ANSWERS, REFERENCES)
    assert all(1 <= p <= 2 for p in forward)
    assert [f + b for f, b in zip(forward, backward)] == pytest.approx([3.0] * 3)
    model, tokenizer = load_reward_model(tiny_reward_model)
    batch = pad_sequences([encode_sequence(tokenizer, INSTRUCTIONS[0], y, 64) for y in (REFERENCES[0], ANSWERS[0])],
                          tokenizer.pad_token_id)
    r1, r2 = sequence_rewards(model, batch["input_ids"], batch["attention_mask"]).tolist()
    assert forward[0] == pytest.approx(1 + 1 / (1 + math.exp(-(r2 - r1))), abs=1e-5)
    assert judge.describe()["type"] == "reward-model"


def test_reward_model_judge_that_cannot_be_loaded(tmp_path):
    with pytest.raises(ConfigError, match="cannot load the reward model 'nobody/no-such-reward-model'"):
        build_judge({"type": "reward-model", "model": "nobody/no-such-reward-model"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(SuiteError, match="no saved reward model here"):
        build_judge({"type": "reward-model", "model": str(tmp_path / "empty")})


def test_llm_judge_uses_alpaca_eval_prompt_and_both_orders(local_llm_judge):
    judge = local_llm_judge
    prompt = judge.prompts(INSTRUCTIONS[:1], REFERENCES[:1], ANSWERS[:1])[0]
    # alpaca-eval's own template (weighted_alpaca_eval_gpt4_turbo), filled in
    assert "## Best Model Identifier" in prompt and REFERENCES[0] in prompt and ANSWERS[0] in prompt
    assert prompt.index('"""' + REFERENCES[0]) < prompt.index('"""' + ANSWERS[0])
    forward = judge.preferences(INSTRUCTIONS, REFERENCES, ANSWERS)
    backward = judge.preferences(INSTRUCTIONS, ANSWERS, REFERENCES)
    assert all(1 <= p <= 2 for p in forward)
    assert [f + b for f, b in zip(forward, backward)] == pytest.approx([3.0] * 3)  # position bias cancelled
    # one order by hand: 2 − P(m) / (P(m) + P(M)) from the next-token logits
    logps = judge.answer_logprobs([prompt])[0]
    single = 2 - math.exp(logps["m"]) / (math.exp(logps["m"]) + math.exp(logps["M"]))
    assert judge.first_preferences([prompt])[0] == pytest.approx(single)


def test_llm_judge_rejects_a_config_without_token_probabilities():
    with pytest.raises(ConfigError, match="reads token probabilities"):
        build_judge({"type": "llm", "endpoint": "http://127.0.0.1:9/v1", "config": "alpaca_eval_gpt4"})
    with pytest.raises(ConfigError, match="no evaluator config 'no_such_config'"):
        build_judge({"type": "llm", "endpoint": "http://127.0.0.1:9/v1", "config": "no_such_config"})


class _JudgeServer(BaseHTTPRequestHandler):
    """An OpenAI-compatible /chat/completions that answers with a local causal LM's next-token log-probs
    (the answer tokens among its top_logprobs, as vLLM reports them)."""

    judge = None

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert self.path == "/v1/chat/completions" and body["logprobs"] and body["max_tokens"] == 1
        messages = body["messages"]
        prompt = "".join(f"<|im_start|>{m['role']}\n{m['content']}\n<|im_end|>\n" for m in messages).strip()
        logps = self.judge.answer_logprobs([prompt])[0]
        top = [{"token": t, "logprob": v} for t, v in sorted(logps.items(), key=lambda kv: -kv[1])]
        payload = {"choices": [{"index": 0, "message": {"role": "assistant", "content": top[0]["token"]},
                                "logprobs": {"content": [{"token": top[0]["token"], "logprob": top[0]["logprob"],
                                                          "top_logprobs": top}]}}]}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_endpoint_llm_judge_matches_the_same_model_run_locally(local_llm_judge):
    _JudgeServer.judge = local_llm_judge
    server = HTTPServer(("127.0.0.1", 0), _JudgeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{server.server_port}/v1"
        judge = build_judge({"type": "llm", "endpoint": endpoint, "model_name": "tiny"})
        assert judge.preferences(INSTRUCTIONS, REFERENCES, ANSWERS) == pytest.approx(
            local_llm_judge.preferences(INSTRUCTIONS, REFERENCES, ANSWERS), abs=1e-5)
        assert judge.describe()["endpoint"] == endpoint
    finally:
        server.shutdown()


def test_unreachable_endpoint_names_its_address():
    judge = build_judge({"type": "llm", "endpoint": "http://127.0.0.1:9/v1", "model_name": "judge", "timeout": 5})
    with pytest.raises(SuiteError, match=r"cannot reach endpoint http://127.0.0.1:9/v1/chat/completions"):
        judge.preferences(INSTRUCTIONS, REFERENCES, ANSWERS)


def test_implicit_reward_judge(tmp_path):
    from suite.evaluation.judges.implicit import ImplicitRewardJudge

    reference = load_model("tiny-llama")
    same = ImplicitRewardJudge(reference.model, reference.model, reference.tokenizer, "tiny", "tiny", max_length=64)
    assert same.preferences(INSTRUCTIONS, REFERENCES, ANSWERS) == [1.5, 1.5, 1.5]  # r = 0 for the reference itself
    policy = load_model("tiny-llama").model
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.add_(0.02 * torch.randn_like(parameter))
    judge = ImplicitRewardJudge(policy, reference.model, reference.tokenizer, "perturbed", "tiny", beta=0.5, max_length=64)
    forward = judge.preferences(INSTRUCTIONS, REFERENCES, ANSWERS)
    assert forward != [1.5, 1.5, 1.5]
    assert [f + b for f, b in zip(forward, judge.preferences(INSTRUCTIONS, ANSWERS, REFERENCES))] == pytest.approx([3.0] * 3)
    policy.save_pretrained(tmp_path / "policy")
    reference.tokenizer.save_pretrained(tmp_path / "policy")
    built = build_judge({"type": "implicit-reward", "model": str(tmp_path / "policy"), "reference": "tiny-llama",
                         "beta": 0.5, "max_length": 64})
    assert built.preferences(INSTRUCTIONS, REFERENCES, ANSWERS) == pytest.approx(forward, abs=1e-5)
    with pytest.raises(ConfigError, match="needs model"):
        build_judge({"type": "implicit-reward", "model": str(tmp_path / "policy")})


def _instruction_file(tmp_path):
    path = tmp_path / "instructions.jsonl"
    path.write_text("".join(json.dumps({"instruction": x, "output": y}) + "\n" for x, y in zip(INSTRUCTIONS, REFERENCES)))
    return path


def test_judged_evaluation_writes_answers_annotations_and_metrics(tmp_path, tiny_reward_model):
    from suite.evaluation.judged import ANNOTATIONS_FILE, ANSWERS_FILE, judged_evaluation, load_preferences

    loaded = load_model("tiny-llama")
    spec = {"judge": {"type": "reward-model", "model": str(tiny_reward_model), "max_length": 64},
            "instructions": str(_instruction_file(tmp_path)), "max_new_tokens": 4, "batch_size": 2}
    metrics = judged_evaluation(loaded.model, loaded.tokenizer, spec, tmp_path, "tiny")
    answers = [json.loads(line) for line in (tmp_path / ANSWERS_FILE).read_text().splitlines()]
    assert [a["instruction"] for a in answers] == INSTRUCTIONS and all(a["generator"] == "tiny" for a in answers)
    preferences = load_preferences(tmp_path)
    assert sorted(preferences) == [0, 1, 2]
    assert metrics["win_rate"] == pytest.approx(100 * (sum(preferences.values()) / 3 - 1))
    assert metrics["n_total"] == 3 and metrics["standard_error"] > 0 and metrics["avg_length_tokens"] <= 4
    assert metrics["length_controlled_winrate"] is None and "AlpacaEval's instructions only" in metrics["lc_missing"]
    assert (tmp_path / ANNOTATIONS_FILE).is_file()
    # the same model answers the same way: a paired comparison with itself is exactly even
    from suite.evaluation.winrate import paired_comparison

    assert paired_comparison(preferences, preferences)["difference"] == 0.0


def test_annotation_file_with_preference_outside_range(tmp_path):
    from suite.evaluation.judged import ANNOTATIONS_FILE, load_preferences

    (tmp_path / ANNOTATIONS_FILE).write_text(json.dumps({"index": 0, "preference": 1.2}) + "\n"
                                            + json.dumps({"index": 1, "preference": 0.5}) + "\n")
    with pytest.raises(DataError, match=r"row 2, key 'preference': 0.5 is outside \[1, 2\]"):
        load_preferences(tmp_path)


def test_runner_eval_judge(tmp_path, tiny_reward_model):
    from support import preference_rows, write_jsonl
    from suite.config.schema import load_config
    from suite.execution.runner import plan_runs, run_experiment

    data = write_jsonl(tmp_path / "pairs.jsonl", preference_rows(16))
    config = {"name": "judged", "model": "tiny-llama", "dataset": {"path": str(data), "format": "pairwise"},
              "methods": [{"id": "dpo"}], "train": {"max_steps": 1, "per_device_batch_size": 2, "max_length": 48},
              "data": {"heldout_fraction": 0.25},  # 16 prompts: the default share would hold none out
              "eval": {"leaderboard": None, "alignment_pairs": 2, "generation_prompts": 0, "max_new_tokens": 4}}
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(config))
    config["eval"]["judge"] = {"judge": {"type": "reward-model", "model": str(tiny_reward_model), "max_length": 64},
                               "instructions": str(_instruction_file(tmp_path)), "max_new_tokens": 4}
    (tmp_path / "judged.yaml").write_text(yaml.safe_dump(config))
    plain, judged = load_config(tmp_path / "plain.yaml"), load_config(tmp_path / "judged.yaml")
    assert "judge" not in plan_runs(plain)[0].definition["eval"]  # runs planned without a judge keep their ids
    assert {r.run_id for r in plan_runs(plain)}.isdisjoint({r.run_id for r in plan_runs(judged)})
    outcomes = run_experiment(judged, tmp_path / "out")
    assert [o.status for o in outcomes] == ["complete", "complete"]
    for outcome in outcomes:
        metrics = json.loads((tmp_path / "out" / "runs" / outcome.run_id / "metrics.json").read_text())
        assert metrics["judged"]["n_total"] == 3 and 0 <= metrics["judged"]["win_rate"] <= 100
        assert metrics["judged"]["judge"]["type"] == "reward-model"


def test_config_refuses_a_bad_judge(tmp_path):
    from suite.config.schema import build_config

    base = {"name": "x", "model": "tiny-llama", "dataset": "hh-rlhf-harmless", "methods": ["dpo"]}
    with pytest.raises(ConfigError, match="eval.judge.judge: expected a mapping with type"):
        build_config({**base, "eval": {"judge": {"judge": {"type": "oracle"}}}}, "cfg")
    with pytest.raises(ConfigError, match="eval.judge.max_tokens: unknown key"):
        build_config({**base, "eval": {"judge": {"judge": {"type": "llm"}, "max_tokens": 3}}}, "cfg")
    with pytest.raises(ConfigError, match="instruction file not found"):
        build_config({**base, "eval": {"judge": {"judge": {"type": "llm"}, "instructions": str(tmp_path / "no.jsonl")}}},
                     "cfg")
