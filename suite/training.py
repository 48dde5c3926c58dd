"""One trainer for every offline method: a ``transformers.Trainer`` whose loss is the method's objective.

Records become examples holding one or more encoded sequences (a pair holds two). A batch stacks the
k-th sequence of every example together — chosen block then rejected block — so a pair is scored in
one forward pass. Reference log-probs come from the on-disk cache, never from a second model.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from suite.data.records import BinaryRecord, PairwiseRecord, ScalarRecord, SFTRecord
from suite.errors import SuiteError
from suite.reference import ReferenceCache
from suite.registry import FeedbackBatch, Method
from suite.sequences import EncodedSequence, encode_sequence, pad_sequences


def _sequences_of(record, tokenizer, max_length: int) -> list[EncodedSequence]:
    """The sequences a record contributes, in a fixed order (pairwise: chosen, rejected)."""
    if isinstance(record, PairwiseRecord):
        responses = [record.chosen, record.rejected]
    elif isinstance(record, (BinaryRecord, ScalarRecord, SFTRecord)):
        responses = [record.completion]
    else:
        raise SuiteError(f"cannot train on a record of type {type(record).__name__}")
    return [encode_sequence(tokenizer, record.prompt, r, max_length) for r in responses]


def build_examples(records: list, tokenizer, max_length: int, mismatched_pairs: bool = False) -> list[dict]:
    """Training examples: encoded sequences plus the record's label / score.

    With ``mismatched_pairs`` (KTO's KL estimate) example i also carries prompt i with the completion of
    example i+1, fixed here rather than per batch so its reference log-prob can be cached.
    """
    examples = []
    for index, record in enumerate(records):
        example = {"sequences": _sequences_of(record, tokenizer, max_length)}
        if isinstance(record, BinaryRecord):
            example["label"] = float(record.label)
        if isinstance(record, ScalarRecord):
            example["score"] = float(record.score)
        if mismatched_pairs:
            other = records[(index + 1) % len(records)]
            example["mismatched"] = [encode_sequence(tokenizer, record.prompt, other.completion, max_length)]
        examples.append(example)
    return examples


def attach_reference_logps(examples: list[dict], cache: ReferenceCache, model, pad_token_id: int, batch_size: int):
    """Fill ``reference_logps`` (and ``mismatched_reference_logps``) from the cache, computing what is missing."""
    for field, out in (("sequences", "reference_logps"), ("mismatched", "mismatched_reference_logps")):
        flat = [s for ex in examples for s in ex.get(field, [])]
        if not flat:
            continue
        values = iter(cache.logps(model, flat, pad_token_id, batch_size))
        for ex in examples:
            if field in ex:
                ex[out] = [next(values) for _ in ex[field]]


@dataclass
class FeedbackCollator:
    """Stacks the k-th sequence of every example into one block: [chosen…, rejected…, mismatched…]."""

    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict:
        per_example = len(examples[0]["sequences"])
        sequences = [ex["sequences"][k] for k in range(per_example) for ex in examples]
        mismatched = [ex["mismatched"][0] for ex in examples if "mismatched" in ex]
        batch = pad_sequences(sequences + mismatched, self.pad_token_id)
        batch["num_main"] = torch.tensor(len(sequences))
        if "reference_logps" in examples[0]:
            batch["reference_logps"] = torch.tensor(
                [ex["reference_logps"][k] for k in range(per_example) for ex in examples], dtype=torch.float32
            )
        if "mismatched_reference_logps" in examples[0]:
            batch["mismatched_reference_logps"] = torch.tensor(
                [ex["mismatched_reference_logps"][0] for ex in examples], dtype=torch.float32
            )
        for key, out in (("label", "labels"), ("score", "scores")):
            if key in examples[0]:
                batch[out] = torch.tensor([ex[key] for ex in examples], dtype=torch.float32)
        return batch


class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


class AlignmentTrainer(Trainer):
    """A Trainer whose loss is ``method.objective`` on per-sequence log-probs."""

    def __init__(self, *args, method: Method, hyperparameters: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.hyperparameters = hyperparameters
        self._stored = defaultdict(list)
        # Our objective returns a batch mean: let the Trainer divide by accumulation steps.
        self.model_accepts_loss_kwargs = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        from suite.sequences import sequence_logps

        logps, lengths = sequence_logps(model, inputs["input_ids"], inputs["attention_mask"], inputs["response_mask"])
        n = int(inputs["num_main"])
        batch = FeedbackBatch(
            policy_logps=logps[:n],
            lengths=lengths[:n],
            reference_logps=inputs.get("reference_logps"),
            labels=inputs.get("labels"),
            scores=inputs.get("scores"),
            mismatched_policy_logps=logps[n:] if logps.shape[0] > n else None,
            mismatched_reference_logps=inputs.get("mismatched_reference_logps"),
        )
        loss, metrics = self.method.objective(batch, self.hyperparameters)
        for name, value in metrics.items():
            self._stored[name].append(float(value))
        return (loss, {"metrics": metrics}) if return_outputs else loss

    def log(self, logs: dict, start_time=None) -> None:
        # Method metrics averaged over the steps since the last log, as TRL's trainers do.
        for name, values in self._stored.items():
            logs[name] = sum(values) / len(values)
        self._stored.clear()
        super().log(logs, start_time)


class JsonlLogCallback(TrainerCallback):
    """Appends every training log record to a JSON-lines file (the run's train_log.jsonl)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        record = {"step": state.global_step, **{k: v for k, v in logs.items() if _is_number(v)}}
        with open(self.path, "a") as out:
            out.write(json.dumps(record) + "\n")


class NonFiniteLossCallback(TrainerCallback):
    """Stops training on a NaN/inf loss or gradient norm so a diverged run is recorded as failed, never as a score."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "grad_norm"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                raise SuiteError(f"training diverged: {key} is {value} at step {state.global_step}")


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class TrainSettings:
    max_steps: int
    per_device_batch_size: int
    gradient_accumulation_steps: int
    learning_rate: float
    lr_scheduler: str
    warmup_ratio: float
    weight_decay: float
    max_grad_norm: float
    seed: int
    bf16: bool = False


def train(
    model,
    tokenizer,
    method: Method,
    hyperparameters: dict,
    examples: list[dict],
    settings: TrainSettings,
    output_dir: Path,
) -> dict:
    """Run the Trainer; returns the train summary (final loss, steps, runtime, examples)."""
    output_dir = Path(output_dir)
    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.per_device_batch_size,
        gradient_accumulation_steps=settings.gradient_accumulation_steps,
        learning_rate=settings.learning_rate,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_ratio,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=settings.bf16,
        logging_steps=1,
        logging_nan_inf_filter=False,  # a NaN loss must be seen, not averaged away
        save_strategy="no",
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = AlignmentTrainer(
        model=model,
        args=args,
        train_dataset=_ListDataset(examples),
        data_collator=FeedbackCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        callbacks=[JsonlLogCallback(output_dir / "train_log.jsonl"), NonFiniteLossCallback()],
        method=method,
        hyperparameters=hyperparameters,
    )
    result = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "final_loss": losses[-1] if losses else None,
        "mean_loss": result.training_loss,
        "steps": trainer.state.global_step,
        "runtime_s": result.metrics.get("train_runtime"),
        "examples": len(examples),
    }
