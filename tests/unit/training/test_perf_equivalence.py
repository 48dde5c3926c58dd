"""Speed-ups keep the numbers: shared-prompt packing gives the padded layout's log-probs and losses, and
the benchmark's FLOP count and comparisons are what they say."""

import json

import pytest
import torch

import suite.training.packing
from suite.data.records import BinaryRecord, ListwiseRecord, PairwiseRecord
from suite.method.registry import get_method
from suite.modeling.models import load_model
from suite.modeling.sequences import sequence_logps
from suite.training.collators import FeedbackCollator
from suite.training.packing import (
    SharedPromptCollator,
    packed_token_logps,
    packing_applies,
)
from suite.training.trainer import (
    TrainSettings,
    attach_reference_logps,
    build_examples,
    train,
)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-llama")


def _examples(tokenizer):
    pairs = [PairwiseRecord(f"Question {i}: " + "why " * (3 * i), f"Because {i}. " * (4 - i), f"No {i}")
             for i in range(3)]
    # A long prompt with one long response: only that sequence's prompt is cut (to max_length // 2), so the
    # pair shares no prompt and its two sequences get rows of their own.
    pairs.append(PairwiseRecord("tell me " * 8, "sure " * 40, "no"))  # a 47-token prompt
    return build_examples(pairs, tokenizer, max_length=64)


def _padded_sums(model, batch):
    return sequence_logps(model, batch["input_ids"], batch["attention_mask"], batch["response_mask"])


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_packed_log_probs_equal_the_padded_layout(tiny, implementation, monkeypatch):
    monkeypatch.setattr(tiny.model.config, "_attn_implementation", implementation)
    examples = _examples(tiny.tokenizer)
    first, second = examples[-1]["sequences"]
    assert first.input_ids[: first.response_start] != second.input_ids[: second.response_start]
    collator = SharedPromptCollator(FeedbackCollator(tiny.tokenizer.pad_token_id),
                                    eager_mask_dtype=torch.float32 if implementation == "eager" else None)
    batch = collator(examples)
    assert batch["packed_rows"].shape[0] == 5  # three shared rows + the unshared pair's two
    assert batch["packed_rows"].numel() < batch["input_ids"].numel()  # fewer tokens than the padded layout
    per_token, mask = packed_token_logps(tiny.model, batch)
    expected, lengths = _padded_sums(tiny.model, batch)
    assert mask.sum(-1).tolist() == lengths.tolist()
    torch.testing.assert_close(per_token.sum(-1), expected, atol=2e-4, rtol=1e-6)


def test_packing_covers_lists_and_kto_mismatched_completions(tiny):
    lists = [ListwiseRecord(f"rank these {i}", [f"best {i}", f"middle {i} " * 3, "worst"], [3.0, 2.0, 1.0])
             for i in range(2)]
    unpaired = [BinaryRecord(f"q{i} " * (i + 1), f"answer {i} " * (2 + i), i % 2 == 0) for i in range(3)]
    for examples in (build_examples(lists, tiny.tokenizer, 64),
                     build_examples(unpaired, tiny.tokenizer, 64, mismatched_pairs=True)):
        batch = SharedPromptCollator(FeedbackCollator(tiny.tokenizer.pad_token_id))(examples)
        expected, _ = _padded_sums(tiny.model, batch)
        if "packed_rows" not in batch:  # nothing shared (unpaired data): the padded layout is used as is
            assert "mismatched" in examples[0]
            continue
        per_token, _ = packed_token_logps(tiny.model, batch)
        torch.testing.assert_close(per_token.sum(-1), expected, atol=2e-4, rtol=1e-6)


def _train_losses(tiny, tmp_path, packing: bool, monkeypatch) -> tuple[list[float], torch.Tensor]:
    monkeypatch.setattr(suite.training.packing, "enabled", packing)
    loaded = load_model("tiny-llama")  # a fresh copy of the same weights for each run
    from suite.modeling.reference import ReferenceCache

    examples = _examples(loaded.tokenizer)[:3] * 2
    attach_reference_logps(examples, ReferenceCache(tmp_path / "cache", "tiny"), loaded.model,
                           loaded.tokenizer.pad_token_id, 4)
    settings = TrainSettings(max_steps=3, per_device_batch_size=2, gradient_accumulation_steps=1, learning_rate=1e-3,
                             lr_scheduler="cosine", warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=1.0, seed=0)
    out = tmp_path / ("packed" if packing else "padded")
    train(loaded.model, loaded.tokenizer, get_method("dpo"), {"beta": 0.1}, examples, settings, out)
    losses = [r["loss"] for r in map(json.loads, (out / "train_log.jsonl").read_text().splitlines()) if "loss" in r]
    return losses, loaded.model.model.embed_tokens.weight.detach().clone()


def test_training_with_packing_gives_the_same_losses_and_weights(tiny, tmp_path, monkeypatch):
    packed, packed_weights = _train_losses(tiny, tmp_path, True, monkeypatch)
    padded, padded_weights = _train_losses(tiny, tmp_path, False, monkeypatch)
    assert len(packed) == 3 and packed[0] == pytest.approx(0.693147, abs=1e-4)  # reference = policy at step 1
    assert packed == pytest.approx(padded, abs=1e-5)
    assert packed[-1] != pytest.approx(packed[0], abs=1e-4)  # it did train: later losses moved
    torch.testing.assert_close(packed_weights, padded_weights, atol=1e-5, rtol=1e-4)


def test_packing_is_off_where_the_full_outputs_are_needed(tiny, monkeypatch):
    assert all(packing_applies(get_method(m), tiny.model) for m in ("dpo", "kto", "sft-l1", "rrhf"))
    assert not packing_applies(get_method("tdpo"), tiny.model)  # a live reference's logits per position
    assert not packing_applies(get_method("dro"), tiny.model)  # the value head reads hidden states
    monkeypatch.setattr(tiny.model.config, "_attn_implementation", "flash_attention_2")
    assert not packing_applies(get_method("dpo"), tiny.model)  # no custom 4-D masks there
    monkeypatch.setattr(suite.training.packing, "enabled", False)
    monkeypatch.setattr(tiny.model.config, "_attn_implementation", "sdpa")
    assert not packing_applies(get_method("dpo"), tiny.model)


def test_training_flops_count_by_hand():
    from suite.bench.perf import _max_loss_gap, _precision_of, training_flops

    # one sequence of 3 tokens, N = 10 parameters, 2 layers of width 4:
    # forward = 2·10·3 + 4·2·4·(1 + 2 + 3) = 60 + 192 = 252; full fine-tuning ×3, LoRA ×2
    assert training_flops(10, [3], layers=2, hidden=4, lora=False) == 756
    assert training_flops(10, [3], layers=2, hidden=4, lora=True) == 504
    assert _max_loss_gap([0.5, 0.4], [0.5, 0.45]) == pytest.approx(0.05)
    assert _max_loss_gap([0.5], [0.5, 0.4]) is None
    assert _precision_of("full/ours-bf16", "fp32") == "bf16" and _precision_of("full/trl", "bf16") == "bf16"
