"""One trainer for every offline method: a ``transformers.Trainer`` whose loss is the method's objective.

Records become examples holding one or more encoded sequences (a pair holds two). A batch stacks the
k-th sequence of every example together — chosen block then rejected block — so a pair is scored in
one forward pass. Reference log-probs come from the on-disk cache, never from a second model.
"""

from __future__ import annotations

import json
import math
import weakref
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from suite.core.errors import SuiteError, check_finite
from suite.data.records import (
    BinaryRecord,
    ListwiseRecord,
    PairwiseRecord,
    ScalarRecord,
    SFTRecord,
)
from suite.method.registry import FeedbackBatch, Method
from suite.modeling.reference import LiveReference, ReferenceCache
from suite.modeling.sequences import EncodedSequence, encode_sequence
from suite.training.loop import (
    CHECKPOINT_COMPLETE,
    checkpoint_dir,
    checkpoint_step,
    drop_other_checkpoints,
    last_complete_checkpoint,
)


def _sequences_of(record, tokenizer, max_length: int) -> list[EncodedSequence]:
    """The sequences a record contributes, in a fixed order (pairwise: chosen, rejected; listwise: best first)."""
    if isinstance(record, PairwiseRecord):
        responses = [record.chosen, record.rejected]
    elif isinstance(record, ListwiseRecord):
        responses = list(record.responses)
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
        if isinstance(record, ListwiseRecord):
            example["score"] = [float(score) for score in record.scores]
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



class _ListDataset(torch.utils.data.Dataset):
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


class ValueHead(torch.nn.Module):
    """V(x) for DRO: a linear read-out of the final hidden state at the prompt's last token.

    The hidden state is detached, so fitting the value never moves the policy — the value is its own
    learner, as in DRO where policy and value are separate. Starts at V = 0.
    """

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = torch.nn.Linear(hidden_size, 1)
        torch.nn.init.zeros_(self.linear.weight)
        torch.nn.init.zeros_(self.linear.bias)

    def forward(self, hidden_states: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
        last_prompt = response_mask.long().argmax(dim=-1).clamp(min=1) - 1
        rows = torch.arange(hidden_states.shape[0], device=hidden_states.device)
        return self.linear(hidden_states[rows, last_prompt].detach().float()).squeeze(-1)


class AlignmentTrainer(Trainer):
    """A Trainer whose loss is ``method.objective`` on per-sequence (and per-token) log-probs.

    The method's ``extra_inputs`` decide the extra work per step: a live reference forward pass for
    ``sequence_kl``, a value head for ``values``. ``state`` persists across steps for the objective.
    """

    def __init__(self, *args, method: Method, hyperparameters: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.hyperparameters = hyperparameters
        self.state_for_method: dict = {}
        self._stored = defaultdict(list)
        # Our objective returns a batch mean: let the Trainer divide by accumulation steps.
        self.model_accepts_loss_kwargs = False
        self.live_reference = LiveReference(self.model) if "sequence_kl" in method.extra_inputs else None
        self.trainable_delta = None
        if "delta_l1" in method.extra_inputs:
            from suite.modeling.trainable_delta import TrainableDelta

            self.trainable_delta = TrainableDelta(self.model)
        self.value_head = None
        if "values" in method.extra_inputs:
            self.value_head = ValueHead(self.model.config.hidden_size).to(self.args.device)

    def extra_state(self) -> dict:
        return {
            "method_state": self.state_for_method,
            "value_head": None if self.value_head is None else self.value_head.state_dict(),
        }

    def load_extra_state(self, checkpoint: Path) -> None:
        path = Path(checkpoint) / CHECKPOINT_COMPLETE
        if not path.is_file():
            return
        extra = torch.load(path, weights_only=False)
        self.state_for_method.clear()
        self.state_for_method.update(extra["method_state"])
        if self.value_head is not None and extra["value_head"] is not None:
            self.value_head.load_state_dict(extra["value_head"])

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        head = [] if self.value_head is None else list(self.value_head.parameters())
        present = {id(p) for group in optimizer.param_groups for p in group["params"]}
        if head and id(head[0]) not in present:  # before the scheduler is built, so it schedules this group too
            lr = float(self.hyperparameters.get("value_learning_rate", self.args.learning_rate))
            optimizer.add_param_group({"params": head, "weight_decay": 0.0, "lr": lr})
        return optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        from suite.modeling.sequences import forward_logits, sequence_kl, token_logps

        input_ids, attention_mask, response_mask = inputs["input_ids"], inputs["attention_mask"], inputs["response_mask"]
        if "packed_rows" in inputs:  # shared-prompt packing (suite.training.packing): the same log-probs from fewer tokens
            from suite.training.packing import packed_token_logps

            per_token, mask = packed_token_logps(model, inputs)
        else:
            outputs = forward_logits(model, input_ids, attention_mask, output_hidden_states=self.value_head is not None)
            per_token, mask = token_logps(outputs.logits, input_ids, response_mask)
        logps, lengths = per_token.sum(-1), mask.sum(-1)
        n = int(inputs["num_main"])
        batch = FeedbackBatch(
            policy_logps=logps[:n],
            lengths=lengths[:n],
            reference_logps=inputs.get("reference_logps"),
            labels=inputs.get("labels"),
            scores=inputs.get("scores"),
            mismatched_policy_logps=logps[n:] if logps.shape[0] > n else None,
            mismatched_reference_logps=inputs.get("mismatched_reference_logps"),
            token_logps=per_token[:n],
            token_mask=mask[:n],
            state=self.state_for_method,
        )
        if self.live_reference is not None:  # the reference's whole next-token distribution, run live
            with torch.no_grad(), self.live_reference.model(model) as reference:
                reference_logits = forward_logits(reference, input_ids[:n], attention_mask[:n]).logits
            batch.sequence_kl = sequence_kl(reference_logits, outputs.logits[:n], mask[:n])
        if self.value_head is not None:
            batch.values = self.value_head(outputs.hidden_states[-1][:n], response_mask[:n])
        if self.trainable_delta is not None:
            batch.delta_l1 = self.trainable_delta.l1()
        loss, metrics = self.method.objective(batch, self.hyperparameters)
        if self.trainable_delta is not None:  # how sparse the penalty has made δ so far
            metrics = {**metrics, **{f"delta/{k}": v for k, v in self.trainable_delta.sparsity().items()}}
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
    """Appends every training log record to a JSON-lines file (the run's train_log.jsonl).

    Stages of a multi-stage method append to the same file, each record tagged with its stage.
    """

    def __init__(self, path: Path, stage: int | None = None, resume_step: int | None = None):
        self.path = Path(path)
        self.stage = stage
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if stage is None and resume_step is None:
            self.path.write_text("")
        else:
            self._drop_records_after(resume_step or 0)

    def _drop_records_after(self, step: int) -> None:
        """Starting (or resuming at ``step``) this stage: drop the records of this stage that a killed
        attempt wrote after its last checkpoint, so the log reads as one uninterrupted run."""
        if not self.path.is_file():
            return
        kept = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by the kill
                continue
            if record.get("stage") != self.stage or record.get("step", 0) <= step:
                kept.append(line)
        self.path.write_text("".join(f"{line}\n" for line in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        record = {"step": state.global_step, **({} if self.stage is None else {"stage": self.stage}),
                  **{k: v for k, v in logs.items() if _is_number(v)}}
        with open(self.path, "a") as out:
            out.write(json.dumps(record) + "\n")


class NonFiniteLossCallback(TrainerCallback):
    """Stops training on a NaN/inf loss or gradient norm so a diverged run is recorded as failed, never as a score.

    Checked on every log (logging_steps=1, so every optimizer step) before any checkpoint of that step is
    written: the last checkpoint on disk is the last good one.
    """

    def on_log(self, args, state, control, logs=None, **kwargs):
        values = {key: (logs or {}).get(key) for key in ("loss", "grad_norm")}
        if any(value is not None and not math.isfinite(value) for value in values.values()):
            last = last_complete_checkpoint(Path(args.output_dir))
            check_finite(state.global_step, None if last is None else str(last), **values)


class CheckpointExtrasCallback(TrainerCallback):
    """Checkpoints what the Trainer does not know about — a method's running state (β-DPO) and the value
    head (DRO) — and always checkpoints the last step, so a later stage can resume from a finished one.
    Its file, written last, marks the checkpoint complete (``suite.training.loop``'s layout)."""

    FILE = CHECKPOINT_COMPLETE

    def __init__(self, trainer_ref):
        self.trainer_ref = trainer_ref

    def on_step_end(self, args, state, control, **kwargs):
        if args.save_strategy != "no" and state.global_step >= state.max_steps:
            control.should_save = True

    def on_save(self, args, state, control, **kwargs):
        trainer = self.trainer_ref()
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if trainer is None or not folder.is_dir():
            return
        write_atomic = folder / f"{self.FILE}.tmp"
        torch.save(trainer.extra_state(), write_atomic)
        write_atomic.replace(folder / self.FILE)  # written last: its presence marks the checkpoint complete
        # Only now is an older checkpoint redundant (the Trainer's own rotation would delete it before this
        # one is complete, so a kill in between would leave nothing to resume from).
        drop_other_checkpoints(Path(args.output_dir), folder)


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
    checkpoint_steps: int = 0  # 0: no checkpoints (no resume)
    report_to: tuple = ()  # experiment trackers (suite.training.trackers), through the Trainer's integrations
    run_name: str | None = None  # the tracker run's name


def train(
    model,
    tokenizer,
    method: Method,
    hyperparameters: dict,
    examples: list[dict],
    settings: TrainSettings,
    output_dir: Path,
    stage: int | None = None,
) -> dict:
    """Run the Trainer; returns the train summary (final loss, steps, runtime, examples).

    With ``settings.checkpoint_steps`` it checkpoints every that many steps (and the last) under
    ``output_dir/checkpoints``, and a call that finds a checkpoint there resumes from it — model,
    optimizer, scheduler, RNG states, data order and the method's own state — reaching the same result
    as an uninterrupted run.
    """
    from suite.training.packing import choose_collator
    from suite.training.progress import TrainProgressCallback, train_label

    output_dir = Path(output_dir)
    checkpoints = checkpoint_dir(output_dir, stage)
    resume_from = last_complete_checkpoint(checkpoints) if settings.checkpoint_steps else None
    drop_other_checkpoints(checkpoints, resume_from)  # saves a kill interrupted
    resume_step = checkpoint_step(resume_from) if resume_from else None
    resume_from = None if resume_from is None else str(resume_from)
    args = TrainingArguments(
        output_dir=str(checkpoints),
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
        save_strategy="steps" if settings.checkpoint_steps else "no",
        save_steps=settings.checkpoint_steps or 500,
        save_total_limit=None,  # CheckpointExtrasCallback keeps only the newest complete checkpoint
        report_to=list(settings.report_to),
        run_name=settings.run_name,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        disable_tqdm=True,
        use_cpu=not torch.cuda.is_available(),
    )
    trainer = AlignmentTrainer(
        model=model,
        args=args,
        train_dataset=_ListDataset(examples),
        data_collator=choose_collator(method, model, tokenizer.pad_token_id),  # suite.training.packing
        processing_class=tokenizer,
        callbacks=[JsonlLogCallback(output_dir / "train_log.jsonl", stage, resume_step), NonFiniteLossCallback(),
                   TrainProgressCallback(train_label(output_dir, stage))],
        method=method,
        hyperparameters=hyperparameters,
    )
    trainer.add_callback(CheckpointExtrasCallback(weakref.ref(trainer)))
    if settings.report_to:
        from suite.training.trackers import place_logs

        place_logs(trainer.callback_handler.callbacks, output_dir, stage)
    if resume_from:
        trainer.load_extra_state(Path(resume_from))
    try:
        result = trainer.train(resume_from_checkpoint=resume_from)
    finally:
        if settings.report_to:
            from suite.training.trackers import finish_runs

            finish_runs(trainer.callback_handler.callbacks)
    # From the log history, which a checkpoint carries: the same numbers whether or not the run resumed.
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    summary = {
        "final_loss": losses[-1] if losses else None,
        "mean_loss": sum(losses) / len(losses) if losses else result.training_loss,
        "steps": trainer.state.global_step,
        "runtime_s": result.metrics.get("train_runtime"),
        "examples": len(examples),
    }
    if resume_step is not None:
        summary["resumed_from_step"] = resume_step
    return summary


def combine_stage_summaries(summaries: list[dict]) -> dict:
    """One train summary for the run; a staged run also keeps its per-stage summaries."""
    if len(summaries) == 1:
        return summaries[0]
    combined = dict(summaries[-1])
    combined.update(
        steps=sum(s["steps"] for s in summaries),
        runtime_s=sum(s["runtime_s"] or 0.0 for s in summaries),
        examples=sum(s["examples"] for s in summaries),
        mean_loss=sum(s["mean_loss"] * s["steps"] for s in summaries) / max(1, sum(s["steps"] for s in summaries)),
        stages=summaries,
    )
    return combined
