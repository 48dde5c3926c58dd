"""Short real trainings on tiny-llama of the survey methods added in issue 21 (GPO, Pairwise CRINGE, LiPO):
each goes through the offline trainer (per-token log-probs, cached reference, listwise blocks) and moves
its loss off the value it must have at the first step."""

import json
import math

import pytest

from suite.data.records import ListwiseRecord, PairwiseRecord
from suite.method.registry import get_method
from suite.modeling.models import add_lora, load_model
from suite.modeling.reference import ReferenceCache
from suite.training.trainer import TrainSettings, attach_reference_logps, build_examples, train


def _settings(steps, lr=1e-2):
    return TrainSettings(max_steps=steps, per_device_batch_size=2, gradient_accumulation_steps=1, learning_rate=lr,
                         lr_scheduler="constant", warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, seed=0)


def _train(tmp_path, method_id, records, overrides=None, steps=3):
    loaded = load_model("tiny-llama")  # fresh weights: training mutates the model
    model = add_lora(loaded.model, {"r": 4})
    examples = build_examples(records, loaded.tokenizer, 64)
    method = get_method(method_id)
    if method.needs_reference:
        attach_reference_logps(examples, ReferenceCache(tmp_path / "cache", "tiny"), model,
                               loaded.tokenizer.pad_token_id, 4)
    summary = train(model, loaded.tokenizer, method, method.hyperparameters(overrides), examples, _settings(steps),
                    tmp_path / "run")
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    log = [record for record in log if "loss" in record]
    assert summary["steps"] == steps and len(log) == steps
    assert all(math.isfinite(record["loss"]) for record in log)
    return log


def _pairs():
    return [PairwiseRecord(f"q{i}", f"a good and helpful answer {i}", f"bad {i}") for i in range(4)]


@pytest.mark.parametrize("f", ["savage"])
def test_gpo_trains(tmp_path, f):
    log = _train(tmp_path, "gpo", _pairs(), {"f": f, "beta": 1.0})
    # step 1: policy = reference (LoRA B = 0), margin 0: f(0) = 1 (exponential), ¼ (Savage)
    assert log[0]["loss"] == pytest.approx({"exponential": 1.0, "savage": 0.25}[f], abs=1e-4)
    assert log[-1]["loss"] < log[0]["loss"]


def test_pairwise_cringe_trains(tmp_path):
    log = _train(tmp_path, "pairwise-cringe", _pairs())
    # the random tiny model ranks the longer chosen response below the rejected one (M < 0): gate > ½
    assert 0.5 < log[0]["cringe/gate"] <= 1 and log[0]["cringe/contrast"] > 0
    assert log[-1]["nll/chosen"] < log[0]["nll/chosen"]  # the chosen response's likelihood goes up
    assert log[-1]["loss"] < log[0]["loss"]


def test_lipo_trains_on_lists(tmp_path):
    records = [ListwiseRecord(f"q{i}", (f"best answer {i}", f"fine {i}", f"meh {i}", "no"), (0.9, 0.6, 0.3, 0.0))
               for i in range(4)]
    log = _train(tmp_path, "lipo", records, {"beta": 1.0})
    # step 1: policy = reference, every s_i = 0 and every pair's loss ln 2: L = ln 2 · Σ_pairs Δ_ij. (The ranks
    # τ come from s_i that differ only by float noise, so Δ is read back from the log: its mean over the
    # 6 strictly ranked pairs of each list.)
    assert log[0]["loss"] == pytest.approx(math.log(2) * 6 * log[0]["lipo/lambda_weight"], rel=1e-4)
    assert abs(log[0]["rewards/best"]) < 1e-4 and abs(log[0]["rewards/worst"]) < 1e-4
    assert log[-1]["loss"] < log[0]["loss"] and log[-1]["rewards/accuracy"] > 0
