"""The reward model: Bradley–Terry on hand values, a separable toy preference learned on tiny-llama through
the runner (saved in Hugging Face format, evaluated by held-out pairwise accuracy, no leaderboard), and the
trained model labelling a dataset as scalar, pairwise and binary feedback."""

import json
import math

import pytest
import torch
import yaml

from methods.reward_model import bradley_terry_loss
from suite.core.errors import DataError
from suite.data import load_local
from suite.data.records import PairwiseRecord
from suite.training.reward_model import (
    _pair_margins,
    label_with_reward_model,
    load_reward_model,
    pairwise_accuracy,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """A tiny model's matrices gain nothing from threads, and on a busy machine extra threads wait on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bradley_terry_loss_hand_values():
    # r_w − r_l = 1: −log σ(1) = log(1 + e^−1); a margin of 1 makes it −log σ(0) = log 2
    assert bradley_terry_loss(torch.tensor(2.0), torch.tensor(1.0)).item() == pytest.approx(math.log1p(math.exp(-1)))
    assert bradley_terry_loss(torch.tensor(2.0), torch.tensor(1.0), 1.0).item() == pytest.approx(math.log(2))
    chosen = torch.tensor([0.0], requires_grad=True)
    bradley_terry_loss(chosen, torch.tensor([0.0])).sum().backward()
    assert chosen.grad.item() == pytest.approx(-0.5)  # raising the chosen reward lowers the loss


def test_score_margin_needs_scored_pairs():
    pairs = [PairwiseRecord("q", "a", "b", 0.9, 0.2), PairwiseRecord("q", "c", "d")]
    assert _pair_margins(pairs[:1], {"margin": 0.5, "score_margin": True}).tolist() == pytest.approx([1.2])
    with pytest.raises(DataError, match="training pair 2 has no chosen_score"):
        _pair_margins(pairs, {"margin": 0.0, "score_margin": True})


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A reward model trained through the runner on polite-vs-curt pairs (tests/support)."""
    from support import preference_rows, write_jsonl

    from suite.config.schema import load_config
    from suite.execution.runner import run_experiment

    folder = tmp_path_factory.mktemp("reward-model")
    data = write_jsonl(folder / "pairs.jsonl", preference_rows(48))
    config = {
        "name": "rm", "model": "tiny-llama", "dataset": {"path": str(data), "format": "pairwise"},
        "methods": [{"id": "reward-model", "learning_rate": 1e-3}], "evaluate_base": False,
        "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": 10, "per_device_batch_size": 4, "max_length": 64, "warmup_ratio": 0.0},
        "eval": {"leaderboard": None, "alignment_pairs": 16},
    }
    (folder / "rm.yaml").write_text(yaml.safe_dump(config))
    outcomes = run_experiment(load_config(folder / "rm.yaml"), folder / "out")
    assert [o.status for o in outcomes] == ["complete"]
    run_dir = folder / "out" / "runs" / outcomes[0].run_id
    return run_dir, data


def test_reward_model_learns_a_separable_preference(trained):
    run_dir, _ = trained
    metrics = json.loads((run_dir / "metrics.json").read_text())
    alignment = metrics["alignment"]
    assert alignment["pairs"] >= 8 and alignment["reward_accuracy"] >= 0.9  # chance is 0.5
    assert alignment["reward_margin"] > 0
    assert metrics["eval"] == {} and not (run_dir / "lm_eval_results.json").exists()  # not a policy: no leaderboard
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(1, 11))
    assert log[-1]["loss"] < log[0]["loss"] and all(r["peak_memory_mb"] > 0 for r in log)
    assert metrics["train"]["steps"] == 10


def test_saved_reward_model_is_a_hugging_face_classifier(trained):
    from transformers import AutoModelForSequenceClassification

    run_dir, data = trained
    from transformers import AutoConfig

    config = json.loads((run_dir / "model" / "config.json").read_text())
    assert config["architectures"] == ["LlamaForSequenceClassification"]
    assert AutoConfig.from_pretrained(str(run_dir / "model")).num_labels == 1  # one scalar reward
    plain = AutoModelForSequenceClassification.from_pretrained(str(run_dir / "model"))
    model, tokenizer = load_reward_model(run_dir)  # a run folder or its model/ folder
    pairs = load_local(data, "pairwise")[:6]
    accuracy = pairwise_accuracy(model, tokenizer, pairs, max_length=64)
    assert accuracy["reward_accuracy"] >= 0.9
    encoded = tokenizer(["hello there", "hi"], return_tensors="pt", padding=True)
    assert torch.allclose(plain(**encoded).logits, model(**encoded).logits)


def test_reward_model_labels_any_dataset(trained, tmp_path):
    from suite.cli import main

    run_dir, data = trained
    model, tokenizer = load_reward_model(run_dir / "model")
    pairs = load_local(data, "pairwise")[:6]
    scalar = label_with_reward_model(model, tokenizer, pairs, "scalar", max_length=64)
    assert len(scalar) == 12 and all(0 < row["score"] < 1 for row in scalar)
    assert scalar[0]["score"] == pytest.approx(1 / (1 + math.exp(-scalar[0]["reward"])))
    ranked = label_with_reward_model(model, tokenizer, pairs, "pairwise", max_length=64)
    assert all(row["chosen"].startswith("Certainly") for row in ranked)  # the reward model agrees with the data
    binary = label_with_reward_model(model, tokenizer, pairs, "binary", max_length=64)
    assert [row["label"] for row in binary] == [True, False] * len(ranked)

    out = tmp_path / "scored.jsonl"
    assert main(["reward-label", str(run_dir), str(data), "--dataset-format", "pairwise", "--format", "scalar",
                 "--out", str(out), "--max-length", "64", "--limit", "4"]) == 0
    records = load_local(out, "scalar")  # usable as {path, format: scalar}: UNA-score on RM scores
    assert len(records) == 8 and records[0].score == pytest.approx(scalar[0]["score"], abs=1e-5)
