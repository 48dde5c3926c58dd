"""The trainer's machinery: batch layout, log-probs, the reference cache, loss = the method's objective."""

import pytest
import torch

from suite.data.records import BinaryRecord, PairwiseRecord, ScalarRecord
from suite.method.registry import FeedbackBatch, get_method
from suite.modeling.models import load_model, model_fingerprint
from suite.modeling.reference import ReferenceCache
from suite.modeling.sequences import (
    encode_sequence,
    pad_sequences,
    score_sequences,
    sequence_logps,
)
from suite.training.collators import FeedbackCollator
from suite.training.trainer import (
    AlignmentTrainer,
    attach_reference_logps,
    build_examples,
)


@pytest.fixture(scope="module")
def tiny():
    return load_model("tiny-llama")


def test_encode_marks_only_the_response_and_truncates(tiny):
    seq = encode_sequence(tiny.tokenizer, "Say hi", "Hello there", max_length=256)
    response = tiny.tokenizer.decode(seq.input_ids[seq.response_start:])
    assert response.startswith("Hello there") and response.endswith(tiny.tokenizer.eos_token)
    long = encode_sequence(tiny.tokenizer, "word " * 300, "answer " * 300, max_length=64)
    assert len(long.input_ids) == 64 and long.response_start == 32


def test_sequence_logps_match_a_manual_computation(tiny):
    seq = encode_sequence(tiny.tokenizer, "Say hi", "Hello", max_length=64)
    batch = pad_sequences([seq], tiny.tokenizer.pad_token_id)
    logps, lengths = sequence_logps(tiny.model, **batch)
    with torch.no_grad():
        logits = tiny.model(torch.tensor([seq.input_ids])).logits[0].log_softmax(-1)
    manual = sum(logits[t - 1, seq.input_ids[t]].item() for t in range(seq.response_start, len(seq.input_ids)))
    assert logps.item() == pytest.approx(manual, abs=1e-4)
    assert lengths.item() == seq.response_length
    # padding does not change a sequence's score
    other = encode_sequence(tiny.tokenizer, "A much longer prompt than the first one", "Hi", max_length=64)
    padded = score_sequences(tiny.model, [seq, other], tiny.tokenizer.pad_token_id)
    assert padded[0] == pytest.approx(manual, abs=1e-4)


def test_collator_stacks_chosen_then_rejected_and_kto_mismatched(tiny):
    pairs = [PairwiseRecord(f"q{i}", f"good {i}", f"bad {i}") for i in range(3)]
    batch = FeedbackCollator(tiny.tokenizer.pad_token_id)(build_examples(pairs, tiny.tokenizer, 64))
    assert batch["input_ids"].shape[0] == 6 and int(batch["num_main"]) == 6
    decoded = [tiny.tokenizer.decode(row[mask]) for row, mask in zip(batch["input_ids"], batch["response_mask"])]
    assert [d.split("<")[0] for d in decoded] == ["good 0", "good 1", "good 2", "bad 0", "bad 1", "bad 2"]
    unpaired = [BinaryRecord(f"q{i}", f"answer {i}", i % 2 == 0) for i in range(3)]
    examples = build_examples(unpaired, tiny.tokenizer, 64, mismatched_pairs=True)
    batch = FeedbackCollator(tiny.tokenizer.pad_token_id)(examples)
    assert int(batch["num_main"]) == 3 and batch["input_ids"].shape[0] == 6
    assert batch["labels"].tolist() == [1.0, 0.0, 1.0]
    mismatched = tiny.tokenizer.decode(batch["input_ids"][3][batch["response_mask"][3]])
    assert mismatched.startswith("answer 1")  # prompt 0 with completion 1


def test_reference_cache_computes_once_and_is_shared(tiny, tmp_path):
    cache = ReferenceCache(tmp_path, model_fingerprint(tiny.model))
    pairs = [PairwiseRecord("q", "good", "bad", 0.9, 0.1)]
    pairwise = build_examples(pairs, tiny.tokenizer, 64)
    attach_reference_logps(pairwise, cache, tiny.model, tiny.tokenizer.pad_token_id, 4)
    assert (cache.computed, cache.hits) == (2, 0)
    scalar = build_examples([ScalarRecord("q", "good", 0.9), ScalarRecord("q", "bad", 0.1)], tiny.tokenizer, 64)
    fresh = ReferenceCache(tmp_path, cache.fingerprint)  # another run, same reference: read from disk
    attach_reference_logps(scalar, fresh, None, tiny.tokenizer.pad_token_id, 4)
    assert (fresh.computed, fresh.hits) == (0, 2)
    assert [s["reference_logps"][0] for s in scalar] == pairwise[0]["reference_logps"]


def test_trainer_loss_is_the_method_objective(tiny, tmp_path):
    from transformers import TrainingArguments

    pairs = [PairwiseRecord(f"q{i}", f"good {i}", f"bad {i}") for i in range(2)]
    examples = build_examples(pairs, tiny.tokenizer, 64)
    cache = ReferenceCache(tmp_path, "reference")
    attach_reference_logps(examples, cache, tiny.model, tiny.tokenizer.pad_token_id, 4)
    batch = FeedbackCollator(tiny.tokenizer.pad_token_id)(examples)
    method = get_method("dpo")
    trainer = AlignmentTrainer(
        model=tiny.model, args=TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True),
        method=method, hyperparameters={"beta": 0.5},
    )
    loss = trainer.compute_loss(tiny.model, batch)
    logps, lengths = sequence_logps(tiny.model, batch["input_ids"], batch["attention_mask"], batch["response_mask"])
    expected, _ = method.objective(FeedbackBatch(logps, lengths, batch["reference_logps"]), {"beta": 0.5})
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)
    # the reference is the same weights, so the first loss is log 2 exactly
    assert loss.item() == pytest.approx(0.693147, abs=1e-4)
