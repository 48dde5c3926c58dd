"""Reward models: a sequence classifier with a scalar head, trained on preference pairs, saved in Hugging
Face format, and used to score any responses.

The classifier starts from the experiment's model — its backbone, with a new scalar head
(``AutoModelForSequenceClassification``, ``num_labels=1``), as InstructGPT starts its reward model from
the SFT model. Its reward r(x, y) is the model's own pooled output: the head read at the last token that
is not padding, exactly as ``AutoModelForSequenceClassification`` computes it wherever the saved model is
loaded. (With SmolLM2, padding and end-of-turn are one token, so that is the last token before the
end-of-turn.)

The method's loss (Bradley–Terry, ``methods/reward_model.py``) is handed to :class:`RewardModelTraining`,
the train loop the runner calls for the ``reward-model`` entry. The run stores no policy: its metrics are
the held-out pairwise accuracy of the trained reward model, and its ``model/`` folder is the classifier,
which online methods load as their reward (``suite.training.online``) and ``alignsuite reward-label`` uses to label
any dataset: scalar feedback σ(r) for UNA-score ("RM distillation"), or pairwise / binary labels by ranking.
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from suite.core.errors import ConfigError, DataError, SuiteError
from suite.modeling.sequences import EncodedSequence, encode_sequence, pad_sequences

# LoRA's target modules when the config names none: the same default as suite.modeling.models.add_lora.
DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# -- the classifier -----------------------------------------------------------------------------------


def classifier_from_causal_lm(model, pad_token_id: int, zero_head: bool = False):
    """A sequence classifier with one scalar output whose backbone holds ``model``'s weights.

    The head is new: initialised as transformers initialises it, or to zero (a value model that starts at
    V = 0). ``pad_token_id`` is set so batches of any size are pooled at their last real token.
    """
    from transformers import AutoModelForSequenceClassification

    config = copy.deepcopy(model.config)
    config.num_labels = 1
    config.pad_token_id = pad_token_id
    classifier = AutoModelForSequenceClassification.from_config(config).to(model.dtype)
    missing, _ = classifier.load_state_dict(model.state_dict(), strict=False)  # the LM head is left out
    head = classifier_head(classifier)
    head_keys = {name for name, _ in classifier.named_parameters() if name.startswith(_head_name(classifier))}
    if set(missing) - head_keys:
        raise SuiteError(f"cannot build a reward model from {type(model).__name__}: backbone weights "
                         f"{sorted(set(missing) - head_keys)[:5]} did not load")
    if zero_head:
        for parameter in head.parameters():
            torch.nn.init.zeros_(parameter)
    return classifier


def _head_name(classifier) -> str:
    for name in ("score", "classifier"):
        if isinstance(getattr(classifier, name, None), torch.nn.Module):
            return name
    raise SuiteError(f"{type(classifier).__name__} has no scalar head named 'score' or 'classifier'")


def _unwrap(model):
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def classifier_head(model) -> torch.nn.Module:
    inner = _unwrap(model)
    return getattr(inner, _head_name(inner))


def classifier_backbone(model) -> torch.nn.Module:
    inner = _unwrap(model)
    return getattr(inner, inner.base_model_prefix)


def sequence_rewards(model, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """r(x, y) per sequence [N]: the classifier's pooled scalar output."""
    return model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, 0].float()


def add_lora_to_classifier(model, lora: dict):
    """LoRA on the classifier's backbone with the config's ``train.lora`` settings; the scalar head is
    trained in full (peft keeps it in ``modules_to_save`` for sequence classification)."""
    from peft import LoraConfig, get_peft_model

    unknown = set(lora) - {"r", "alpha", "dropout", "target_modules"}
    if unknown:
        raise ConfigError(f"train.lora: unknown key(s) {sorted(unknown)}")
    r = int(lora.get("r", 16))
    config = LoraConfig(r=r, lora_alpha=int(lora.get("alpha", 2 * r)), lora_dropout=float(lora.get("dropout", 0.0)),
                        target_modules=lora.get("target_modules", DEFAULT_LORA_TARGETS), task_type="SEQ_CLS")
    return get_peft_model(model, config)


def load_reward_model(path, dtype: str | None = None):
    """A saved reward model (a run folder or its ``model/``) and its tokenizer, frozen, in eval mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path = Path(path)
    if (path / "model").is_dir():
        path = path / "model"
    if not (path / "config.json").is_file():
        raise SuiteError(f"{path}: no saved reward model here (expected config.json of a sequence classifier)")
    torch_dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype or "float32")
    model = AutoModelForSequenceClassification.from_pretrained(str(path), dtype=torch_dtype)
    if model.config.num_labels != 1:
        raise SuiteError(f"{path}: a reward model has one output, this classifier has {model.config.num_labels}")
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model.eval().requires_grad_(False), tokenizer


@torch.no_grad()
def score_sequences_with(model, sequences: list[EncodedSequence], pad_token_id: int, batch_size: int = 8) -> list[float]:
    """r(x, y) for many encoded sequences (length-sorted batches)."""
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i].input_ids))
    scores = [0.0] * len(sequences)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = pad_sequences([sequences[i] for i in chunk], pad_token_id)
        values = sequence_rewards(model, batch["input_ids"].to(device), batch["attention_mask"].to(device))
        for index, value in zip(chunk, values.tolist()):
            scores[index] = value
    return scores


def pairwise_accuracy(model, tokenizer, pairs: list, max_length: int, batch_size: int = 8) -> dict:
    """Held-out metrics of a reward model on preference pairs: the share with r(y_w) > r(y_l) (ties count
    one half, as the policies' implicit-reward accuracy does) and the mean margin r(y_w) − r(y_l)."""
    if not pairs:
        return {}
    chosen = [encode_sequence(tokenizer, p.prompt, p.chosen, max_length) for p in pairs]
    rejected = [encode_sequence(tokenizer, p.prompt, p.rejected, max_length) for p in pairs]
    scores = torch.tensor(score_sequences_with(model, chosen + rejected, tokenizer.pad_token_id, batch_size))
    margin = scores[: len(pairs)] - scores[len(pairs) :]
    accuracy = (margin > 0).float() + 0.5 * (margin == 0).float()
    return {"reward_accuracy": accuracy.mean().item(), "reward_margin": margin.mean().item(), "pairs": len(pairs)}


# -- training --------------------------------------------------------------------------------------


# (chosen rewards [B], rejected rewards [B], margins [B], hyper-parameters) -> (loss, metrics)
PairLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, dict], "tuple[torch.Tensor, dict]"]


@dataclass(frozen=True)
class RewardModelTraining:
    """The train loop of a reward-model method: ``loss`` on the rewards of each batch of pairs.

    Hyper-parameters read: ``learning_rate``; ``max_steps`` (null: the experiment's ``train.max_steps``;
    set, the run draws that many batches of pairs from the data); ``margin`` (a constant m) and
    ``score_margin`` (add the pair's score difference, for data whose pairs carry scores).
    """

    loss: PairLoss

    def __call__(self, context, hyperparameters: dict, records: list, save: bool = True):
        return train_reward_model(context, self.loss, hyperparameters, records, save)


def _pair_margins(pairs: list, hp: dict) -> torch.Tensor:
    margins = []
    for index, pair in enumerate(pairs):
        margin = float(hp["margin"])
        if hp["score_margin"]:
            if pair.chosen_score is None or pair.rejected_score is None:
                raise DataError(f"reward-model: score_margin needs scored pairs, but training pair {index + 1} "
                                "has no chosen_score / rejected_score")
            margin += pair.chosen_score - pair.rejected_score
        margins.append(margin)
    return torch.tensor(margins, dtype=torch.float32)


def train_reward_model(context, loss_fn: PairLoss, hp: dict, records: list, save: bool = True):
    """Train a reward model on pairwise ``records``; returns (None — no policy —, summary).

    ``context`` is the run's :class:`suite.execution.context.RunContext`; the loop around the loss is
    :class:`suite.training.loop.StepLoop` (a run killed mid-training resumes from its last checkpoint).
    """
    from suite.training.loop import LoopSettings, StepLoop, training_device

    cfg, run, tokenizer = context.config, context.run, context.tokenizer
    per_update = cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps
    steps = int(hp["max_steps"] or cfg.train.max_steps)
    if hp["max_steps"]:  # its own budget: draw enough pairs for it, with the experiment's data options
        records = context.prepare_data("pairwise", dataset=run.dataset, train_max=steps * per_update).train
    device = training_device()
    model = classifier_from_causal_lm(context.base_model, tokenizer.pad_token_id).to(device)
    if cfg.train.lora is not None:
        model = add_lora_to_classifier(model, cfg.train.lora)
    model.eval()  # dropout off: the same function is trained and evaluated
    groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": float(hp["learning_rate"])}]
    loop = StepLoop(model, groups, LoopSettings.from_train(cfg.train, max_steps=steps), context.run_dir, device)
    loop.resume()
    micro = cfg.train.per_device_batch_size
    started_all = time.perf_counter()
    for step in loop.steps():
        pairs = [records[((step - 1) * per_update + i) % len(records)] for i in range(per_update)]
        totals = {"loss": 0.0}
        for start in range(0, len(pairs), micro):
            part = pairs[start : start + micro]
            sequences = ([encode_sequence(tokenizer, p.prompt, p.chosen, cfg.train.max_length) for p in part]
                         + [encode_sequence(tokenizer, p.prompt, p.rejected, cfg.train.max_length) for p in part])
            batch = pad_sequences(sequences, tokenizer.pad_token_id)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.train.bf16):
                rewards = sequence_rewards(model, batch["input_ids"].to(device), batch["attention_mask"].to(device))
            loss, metrics = loss_fn(rewards[: len(part)], rewards[len(part) :], _pair_margins(part, hp).to(device), hp)
            (loss * len(part) / len(pairs)).backward()
            totals["loss"] += loss.item() * len(part) / len(pairs)
            for name, value in metrics.items():
                totals[name] = totals.get(name, 0.0) + float(value) * len(part) / len(pairs)
        grad_norm = loop.update(step, totals["loss"])
        loop.end_step(step, {**totals, "grad_norm": grad_norm, "learning_rate": loop.learning_rate})
    runtime = time.perf_counter() - started_all
    context.timings["train_s"] = context.timings.get("train_s", 0.0) + runtime
    if cfg.train.lora is not None:
        model = model.merge_and_unload()  # a plain classifier in Hugging Face format
    started = time.perf_counter()
    alignment = pairwise_accuracy(model, tokenizer, context.heldout_pairs(), cfg.train.max_length,
                                  cfg.train.reference_batch_size)
    context.timings["alignment_s"] = time.perf_counter() - started
    if save:
        context.save_model(model)
    losses = [record["loss"] for record in loop.records]
    summary = {"final_loss": losses[-1], "mean_loss": sum(losses) / len(losses), "steps": steps, "runtime_s": runtime,
               "examples": steps * per_update, "peak_memory_mb": loop.log.max("peak_memory_mb"),
               "memory_measure": loop.memory.kind, "alignment": alignment}
    if loop.resumed_from_step is not None:
        summary["resumed_from_step"] = loop.resumed_from_step
    return None, summary


# -- labelling data with a reward model ----------------------------------------------------------------


def _responses(record) -> list[str]:
    from suite.data.records import ListwiseRecord, PairwiseRecord

    if isinstance(record, PairwiseRecord):
        return [record.chosen, record.rejected]
    if isinstance(record, ListwiseRecord):
        return list(record.responses)
    return [record.completion]


def label_with_reward_model(model, tokenizer, records: list, fmt: str, max_length: int, batch_size: int = 8) -> list[dict]:
    """Rows of a local data file (TRL columns) made from every response in ``records``, scored by the model:

    * ``scalar``: ``{prompt, completion, score = σ(r), reward = r}`` — UNA-score's target in [0, 1];
    * ``pairwise``: each prompt's responses paired in order (0-1, 2-3, …; a pairwise record's two responses
      are one pair), the higher reward chosen, ties skipped — UNA's pairing rule with the RM as judge;
    * ``binary``: those pairs split, chosen desirable and rejected undesirable.
    """
    from suite.data.convert import group_by_prompt

    if fmt not in ("scalar", "pairwise", "binary"):
        raise ConfigError(f"--format: expected scalar, pairwise or binary, got {fmt!r}")
    items = [(record.prompt, response) for record in records for response in _responses(record)]
    sequences = [encode_sequence(tokenizer, prompt, response, max_length) for prompt, response in items]
    rewards = score_sequences_with(model, sequences, tokenizer.pad_token_id, batch_size)
    if fmt == "scalar":
        return [{"prompt": p, "completion": y, "score": 1.0 / (1.0 + math.exp(-r)), "reward": r}
                for (p, y), r in zip(items, rewards)]
    scored = [{"prompt": p, "completion": y, "reward": r} for (p, y), r in zip(items, rewards)]
    rows = []
    for group in group_by_prompt([_Scored(**s) for s in scored]).values():
        for first, second in zip(group[0::2], group[1::2]):
            if first.reward == second.reward or first.completion == second.completion:
                continue
            chosen, rejected = (first, second) if first.reward > second.reward else (second, first)
            if fmt == "pairwise":
                rows.append({"prompt": chosen.prompt, "chosen": chosen.completion, "rejected": rejected.completion})
            else:
                rows += [{"prompt": chosen.prompt, "completion": chosen.completion, "label": True},
                         {"prompt": rejected.prompt, "completion": rejected.completion, "label": False}]
    return rows


@dataclass(frozen=True)
class _Scored:
    prompt: object
    completion: str
    reward: float


def reward_label_command(args) -> int:
    from suite.data import load_native

    model, tokenizer = load_reward_model(args.reward_model)
    dataset = {"path": args.dataset, "format": args.dataset_format} if args.dataset_format else args.dataset
    _, records, _ = load_native(dataset)
    records = records[: args.limit] if args.limit else records
    rows = label_with_reward_model(model, tokenizer, records, args.format, args.max_length, args.batch_size)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.tmp")  # written whole, then renamed: never half a file
    staging.write_text("".join(json.dumps(row) + "\n" for row in rows))
    staging.replace(out)
    print(f"wrote {len(rows)} {args.format} rows to {out} (use as dataset: {{path: {out}, format: {args.format}}})")
    return 0
