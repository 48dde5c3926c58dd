"""PAFT's L1-sparsified SFT: the trainable delta's L1 norm and sparsity, and that the penalty works."""

import json

import pytest
import torch

from suite.data.records import SFTRecord
from suite.method.registry import FeedbackBatch, get_method
from suite.modeling.models import add_lora, load_model
from suite.modeling.trainable_delta import TrainableDelta
from suite.training.trainer import TrainSettings, build_examples, train


def test_full_parameter_delta_hand_values():
    layer = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -1.0], [2.0, -2.0]]))  # mean |θ_0| = 1.5
    tracked = TrainableDelta(layer, relative_epsilon=0.1)  # ε = 0.15
    with torch.no_grad():
        layer.weight += torch.tensor([[0.5, 0.0], [-0.1, 0.2]])
    # Σ|δ| = 0.5 + 0 + 0.1 + 0.2 = 0.8; entries with |δ| ≤ 0.15: 0 and −0.1 → 2 of 4
    assert tracked.l1().item() == pytest.approx(0.8)
    assert tracked.sparsity()["sparsity"] == pytest.approx(0.5)
    tracked.l1().backward()
    assert layer.weight.grad.tolist() == [[1.0, 0.0], [-1.0, 1.0]]  # sign(δ): the penalty shrinks δ


def test_lora_delta_is_the_adapter_product():
    model = add_lora(load_model("tiny-llama").model, {"r": 2})
    tracked = TrainableDelta(model)
    assert tracked.l1().item() == 0.0 and tracked.sparsity() == {"sparsity": 1.0, "hoyer": 1.0}  # B = 0: δ = 0
    name, module = tracked.lora_layers[0]
    with torch.no_grad():
        module.lora_B["default"].weight.fill_(0.5)
    expected = (module.lora_B["default"].weight @ module.lora_A["default"].weight * module.scaling["default"]).abs().sum()
    assert tracked.l1().item() == pytest.approx(expected.item(), rel=1e-5)


def test_l1_sft_objective_adds_the_penalty():
    batch = FeedbackBatch(policy_logps=torch.tensor([-4.0, -2.0]), lengths=torch.tensor([2, 1]),
                          delta_l1=torch.tensor(3.0))
    loss, metrics = get_method("sft-l1").objective(batch, {"l1_lambda": 0.1})
    # NLL/token = 6 / 3 = 2; + 0.1 · 3
    assert loss.item() == pytest.approx(2.3)
    assert metrics["nll/token"].item() == pytest.approx(2.0) and metrics["delta/l1"].item() == 3.0


def _sparsity_after_training(method_id, overrides, tmp_path):
    loaded = load_model("tiny-llama")
    model = add_lora(loaded.model, {"r": 4})
    records = [SFTRecord(f"Say something about item {i}.", f"Item {i} is a fine thing to talk about.") for i in range(8)]
    settings = TrainSettings(max_steps=8, per_device_batch_size=2, gradient_accumulation_steps=1, learning_rate=5e-3,
                             lr_scheduler="constant", warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, seed=0)
    method = get_method(method_id)
    train(model, loaded.tokenizer, method, method.hyperparameters(overrides), build_examples(records, loaded.tokenizer, 64),
          settings, tmp_path)
    return TrainableDelta(model, relative_epsilon=1e-2).sparsity(), tmp_path / "train_log.jsonl"


def test_l1_penalty_makes_the_sft_delta_sparser(tmp_path):
    plain, _ = _sparsity_after_training("sft", {}, tmp_path / "plain")
    penalised, log_path = _sparsity_after_training("sft-l1", {"l1_lambda": 0.05}, tmp_path / "l1")
    # more entries near zero, and sparser in the scale-free sense too
    assert penalised["sparsity"] > plain["sparsity"] + 0.1, (plain, penalised)
    assert penalised["hoyer"] > plain["hoyer"], (plain, penalised)
    log = [json.loads(line) for line in log_path.read_text().splitlines() if '"loss"' in line]
    assert {"delta/sparsity", "delta/hoyer", "delta/l1"} <= set(log[-1])
