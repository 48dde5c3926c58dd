"""Trainer machinery added for the offline family: per-token log-probs, TDPO's sequential KL, DRO's
value head, sDPO's stages — hand-computed values and short real trainings on tiny-llama."""

import json
import math

import pytest
import torch
import yaml

from methods.dro import dro_loss
from methods.token_level import tdpo_loss
from suite.cli import main
from suite.data.records import PairwiseRecord, ScalarRecord
from suite.method.registry import get_method
from suite.modeling.models import add_lora, load_model
from suite.modeling.reference import ReferenceCache
from suite.modeling.sequences import sequence_kl, token_logps
from suite.training.trainer import (
    TrainSettings,
    attach_reference_logps,
    build_examples,
    train,
)

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731


def test_token_logps_hand_values():
    # vocab 2, logits [0, ln 3] → p = (1/4, 3/4); sequence tokens [x, 1, 0], response = positions 1..2
    logits = torch.tensor([[[0.0, math.log(3)], [0.0, math.log(3)]]])
    ids = torch.tensor([[0, 1, 0]])
    response = torch.tensor([[False, True, True]])
    per_token, mask = token_logps(logits, ids, response)
    assert per_token[0].tolist() == pytest.approx([math.log(0.75), math.log(0.25)])
    assert mask.tolist() == [[True, True]]
    # the prompt position is masked out
    per_token, mask = token_logps(logits, ids, torch.tensor([[False, False, True]]))
    assert per_token[0].tolist() == pytest.approx([0.0, math.log(0.25)])


def test_sequence_kl_hand_values():
    # π_ref = (½, ½), π_θ = (0.9, 0.1): KL = ½ ln(0.5/0.9) + ½ ln(0.5/0.1) = 0.5108256 per position
    reference = torch.zeros(1, 3, 2)
    policy = torch.log(torch.tensor([0.9, 0.1])).expand(1, 3, 2)
    kl = sequence_kl(reference, policy, torch.tensor([[True, True, False]]))
    assert kl.item() == pytest.approx(2 * 0.5108256, abs=1e-6)
    assert sequence_kl(policy, policy, torch.ones(1, 3, dtype=torch.bool)).item() == pytest.approx(0.0, abs=1e-7)


def test_tdpo_loss_hand_values_and_stop_gradient():
    # u = (−1 − −2) − (−3 − −3) = 1; KL_w = 0.2, KL_l = 0.6, β = 1
    # TDPO2 (α = 0.5): margin = 1 − 0.5·(0.6 − 0.2) = 0.8 → ln(1 + e^−0.8) = 0.3711007
    # TDPO1 (α = 1, no stop-gradient): margin = 1 − 0.4 = 0.6 → ln(1 + e^−0.6) = 0.4374879
    chosen_kl, rejected_kl = T(0.2).requires_grad_(), T(0.6).requires_grad_()
    tdpo2 = tdpo_loss(T(1.0), T(0.0), chosen_kl, rejected_kl, beta=1.0, alpha=0.5)
    assert tdpo2.item() == pytest.approx(0.3711007, abs=1e-6)
    tdpo2.backward()
    assert chosen_kl.grad is None and rejected_kl.grad.item() > 0  # more KL on y_l raises the loss
    tdpo1 = tdpo_loss(T(1.0), T(0.0), T(0.2), T(0.6), beta=1.0, alpha=1.0, stop_gradient_chosen_kl=False)
    assert tdpo1.item() == pytest.approx(0.4374879, abs=1e-6)
    # with no KL it is DPO: −log σ(β u)
    assert tdpo_loss(T(1.0), T(0.0), T(0.0), T(0.0), beta=1.0).item() == pytest.approx(math.log1p(math.exp(-1)))


def test_dro_loss_hand_values_and_gradients():
    # r = 1, V = 0.2, β = 0.5, log-ratio 0.4 → ½ (1 − 0.2 − 0.2)² = 0.18
    values, logps = T(0.2).requires_grad_(), T(-1.6).requires_grad_()
    loss = dro_loss(T(1.0), values, logps, T(-2.0), beta=0.5)
    assert loss.item() == pytest.approx(0.18)
    loss.backward()
    # residual 0.6 > 0: both V and the policy's log-prob are pushed up (∂/∂V = −0.6, ∂/∂ℓ = −0.5·0.6)
    assert values.grad.item() == pytest.approx(-0.6) and logps.grad.item() == pytest.approx(-0.3)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-llama")


def _settings(steps, lr=1e-3):
    return TrainSettings(max_steps=steps, per_device_batch_size=2, gradient_accumulation_steps=1, learning_rate=lr,
                         lr_scheduler="constant", warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, seed=0)


def _log(path):
    return [json.loads(line) for line in (path / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("lora", [True, False], ids=["lora", "full"])
def test_tdpo_trains_with_a_live_reference(tmp_path, lora):
    loaded = load_model("tiny-llama")  # fresh weights: training mutates the model
    model = add_lora(loaded.model, {"r": 4}) if lora else loaded.model
    pairs = [PairwiseRecord(f"q{i}", f"good answer {i}", f"bad {i}") for i in range(4)]
    examples = build_examples(pairs, loaded.tokenizer, 64)
    attach_reference_logps(examples, ReferenceCache(tmp_path / "cache", "tiny"), model, loaded.tokenizer.pad_token_id, 4)
    method = get_method("tdpo")
    summary = train(model, loaded.tokenizer, method, method.hyperparameters({"beta": 1.0}), examples,
                    _settings(3), tmp_path)
    log = [r for r in _log(tmp_path) if "loss" in r]
    assert summary["steps"] == 3 and len(log) == 3
    # step 1: policy = reference, so margin 0 and sequential KL 0: loss = ln 2
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-4)
    assert log[0]["kl/chosen"] == pytest.approx(0.0, abs=1e-5)
    assert log[-1]["kl/chosen"] > 0 and log[-1]["kl/rejected"] > 0  # the policy moved away from the reference
    assert all(math.isfinite(r["loss"]) for r in log)


def test_dro_trains_policy_and_value_head(tiny, tmp_path):
    records = [ScalarRecord(f"q{i}", f"answer {i}", 0.9 if i % 2 else 0.1) for i in range(4)]
    examples = build_examples(records, tiny.tokenizer, 64)
    attach_reference_logps(examples, ReferenceCache(tmp_path / "cache", "tiny"), tiny.model, tiny.tokenizer.pad_token_id, 4)
    assert [ex["score"] for ex in examples] == [0.1, 0.9, 0.1, 0.9]
    method = get_method("dro")
    train(load_model("tiny-llama").model, tiny.tokenizer, method, method.hyperparameters({"value_learning_rate": 1e-3}),
          examples, _settings(4), tmp_path)
    log = [r for r in _log(tmp_path) if "loss" in r]
    assert log[0]["value/mean"] == 0.0  # zero-initialised V(x)
    # mean reward is 0.5 and V starts at 0: the value head (own lr) climbs towards it
    assert 0.05 < log[-1]["value/mean"] < 0.5


def test_sdpo_runs_in_stages_each_with_the_previous_model_as_reference(tmp_path, pairwise_file, local_leaderboard,
                                                                        monkeypatch):
    monkeypatch.setenv("ALIGNSUITE_CACHE", str(tmp_path / "cache"))  # count this test's reference computations only
    config = {
        "name": "staged", "model": "tiny-llama", "dataset": {"path": str(pairwise_file), "format": "pairwise"},
        "methods": ["sdpo"], "seeds": [0], "data": {"heldout_fraction": 0.25},
        "train": {"max_steps": 4, "per_device_batch_size": 2, "learning_rate": 1e-2, "max_length": 64,
                  "warmup_ratio": 0.0, "lora": {"r": 4}},
        "eval": {"leaderboard": str(local_leaderboard), "batch_size": 4, "alignment_pairs": 4,
                 "generation_prompts": 0, "max_new_tokens": 4},
    }
    path = tmp_path / "staged.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "results"
    assert main(["run", str(path), "--out", str(out)]) == 0
    (run_dir,) = [p.parent for p in (out / "runs").glob("sdpo-*/manifest.json")]
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "complete"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    train_metrics = metrics["train"]
    first, second = train_metrics["stages"]
    assert train_metrics["steps"] == 4 and first["steps"] == second["steps"] == 2
    # each stage computes its reference log-probs once: stage 1 under the base, stage 2 under stage 1's model
    first_cache, second_cache = (stage["reference_cache"] for stage in metrics["execution"]["stages"])
    assert first_cache["computed"] == 8 and second_cache["computed"] == 8
    assert first["examples"] + second["examples"] == train_metrics["examples"]
    log = [r for r in _log(run_dir) if "loss" in r]
    assert [(r["stage"], r["step"]) for r in log] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    # each stage starts at its own reference (margin 0, loss ln 2) and moves away from it
    assert log[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert log[1]["loss"] != pytest.approx(math.log(2), abs=1e-6)
    assert log[2]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert (run_dir / "model" / "config.json").is_file()  # the merged final model, not an adapter


def test_methods_taxonomy_table(capsys, tmp_path):
    from suite.method.registry import TAXONOMY_DIRECTIONS, all_methods
    from suite.method.taxonomy import taxonomy_rows

    assert main(["methods", "--taxonomy"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(direction in lines[0] for direction in TAXONOMY_DIRECTIONS)
    rows = taxonomy_rows(all_methods())
    not_runnable = sum(r["runnable"] == "no" for r in rows)
    assert len(lines) == 1 + len(rows) + (2 + not_runnable if not_runnable else 0)  # + the "not runnable here" notes
    out = tmp_path / "survey.csv"
    assert main(["methods", "--format", "csv", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    import csv

    rows = {r["method"]: r for r in csv.DictReader(out.open())}
    assert len(next(iter(rows.values()))) == 1 + 13 + 3 + 3 + 1  # method, 13 directions, needs, survey, paper
    assert rows["tdpo"]["reward-level"] == "token" and rows["sft"]["needs reference"] == "no"
    assert rows["dpo"]["online"] == "offline" and rows["dpo"]["needs reward model"] == "no"
    assert "2305.18290" in rows["dpo"]["paper"]
    assert main(["methods", "--format", "md"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| method | reward (reward model)") and table[1].startswith("|---|")
