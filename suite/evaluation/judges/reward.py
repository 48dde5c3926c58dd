"""Reward-model judge: the suite's Bradley–Terry reward model (a ``reward-model`` run) or any Hugging Face
sequence-classification model with one output; preference = 1 + σ(r(x, y₂) − r(x, y₁))."""

from __future__ import annotations

from pathlib import Path

from suite.core.errors import ConfigError, SuiteError
from suite.evaluation.judges.base import check_keys, preference_from_margin, register_judge


class RewardModelJudge:
    name = "reward-model"

    def __init__(self, model, tokenizer, source: str, max_length: int = 1024, batch_size: int = 8):
        self.model, self.tokenizer, self.source = model, tokenizer, source
        self.max_length, self.batch_size = max_length, batch_size

    def rewards(self, instructions: list[str], outputs: list[str]) -> list[float]:
        from suite.training.reward_model import score_sequences_with
        from suite.modeling.sequences import encode_sequence

        sequences = [encode_sequence(self.tokenizer, x, y, self.max_length) for x, y in zip(instructions, outputs)]
        return score_sequences_with(self.model, sequences, self.tokenizer.pad_token_id, self.batch_size)

    def preferences(self, instructions, outputs_1, outputs_2):
        first, second = self.rewards(instructions, outputs_1), self.rewards(instructions, outputs_2)
        return [preference_from_margin(r2 - r1) for r1, r2 in zip(first, second)]

    def describe(self) -> dict:
        return {"type": self.name, "model": self.source, "max_length": self.max_length}


def load_sequence_classifier(name: str):
    """A suite reward-model run (folder or its model/), a local classifier folder, or a hub id."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from suite.training.reward_model import load_reward_model

    path = Path(str(name)).expanduser()
    if path.exists():
        try:
            return load_reward_model(path)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"eval.judge.model: cannot load the reward model at {path}: {exc}") from None
    if "/" not in str(name):
        raise ConfigError(f"eval.judge.model: {name!r} is neither a local path nor a hub id (org/name)")
    try:
        model = AutoModelForSequenceClassification.from_pretrained(str(name))
        tokenizer = AutoTokenizer.from_pretrained(str(name))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"eval.judge.model: cannot load the reward model {name!r}: {exc}") from None
    if model.config.num_labels != 1:
        raise SuiteError(f"eval.judge.model: {name} has {model.config.num_labels} outputs; a reward model has one")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.config.pad_token_id = tokenizer.pad_token_id
    return model.eval().requires_grad_(False), tokenizer


@register_judge("reward-model")
def _build(spec: dict) -> RewardModelJudge:
    check_keys(spec, {"model", "max_length", "batch_size"}, "reward-model")
    if not spec.get("model"):
        raise ConfigError("eval.judge.model: a reward-model judge needs a model (run folder, local path or hub id)")
    model, tokenizer = load_sequence_classifier(spec["model"])
    return RewardModelJudge(model, tokenizer, str(spec["model"]), int(spec.get("max_length", 1024)),
                            int(spec.get("batch_size", 8)))
