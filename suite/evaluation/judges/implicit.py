"""Implicit-reward judge: a preference-trained (DPO-family) policy scores a response by its implicit reward
r(x, y) = β·(log π(y|x) − log π_ref(y|x)) against its reference model — RewardBench's way of scoring DPO
models (Lambert et al. 2024, arXiv 2403.13787); preference = 1 + σ(r(x, y₂) − r(x, y₁))."""

from __future__ import annotations

from suite.core.errors import ConfigError
from suite.evaluation.judges.base import check_keys, preference_from_margin, register_judge


class ImplicitRewardJudge:
    name = "implicit-reward"

    def __init__(self, policy, reference, tokenizer, source: str, reference_source: str, beta: float = 0.1,
                 max_length: int = 1024, batch_size: int = 8):
        self.policy, self.reference, self.tokenizer = policy.eval(), reference.eval(), tokenizer
        self.source, self.reference_source = source, reference_source
        self.beta, self.max_length, self.batch_size = beta, max_length, batch_size

    def rewards(self, instructions: list[str], outputs: list[str]) -> list[float]:
        from suite.modeling.sequences import encode_sequence, score_sequences

        sequences = [encode_sequence(self.tokenizer, x, y, self.max_length) for x, y in zip(instructions, outputs)]
        pad = self.tokenizer.pad_token_id
        policy = score_sequences(self.policy, sequences, pad, self.batch_size)
        reference = score_sequences(self.reference, sequences, pad, self.batch_size)
        return [self.beta * (p - r) for p, r in zip(policy, reference)]

    def preferences(self, instructions, outputs_1, outputs_2):
        first, second = self.rewards(instructions, outputs_1), self.rewards(instructions, outputs_2)
        return [preference_from_margin(r2 - r1) for r1, r2 in zip(first, second)]

    def describe(self) -> dict:
        return {"type": self.name, "model": self.source, "reference": self.reference_source, "beta": self.beta}


def load_policy(name: str, reference: str):
    """A suite run (folder with model/, full weights or a LoRA adapter on ``reference``) or any causal LM name."""
    from pathlib import Path

    from suite.modeling.models import load_model

    path = Path(str(name)).expanduser()
    model_dir = path / "model" if (path / "model").is_dir() else path
    if (model_dir / "adapter_config.json").is_file() or (model_dir / "config.json").is_file():
        from suite.modeling.models import load_trained

        return load_trained(model_dir, reference, "float32")
    return load_model(str(name)).model


@register_judge("implicit-reward")
def _build(spec: dict) -> ImplicitRewardJudge:
    check_keys(spec, {"model", "reference", "beta", "max_length", "batch_size"}, "implicit-reward")
    if not spec.get("model") or not spec.get("reference"):
        raise ConfigError("eval.judge: an implicit-reward judge needs model (the trained policy: a run folder, local "
                          "path or hub id) and reference (its reference model)")
    from suite.modeling.models import load_model

    try:
        reference = load_model(str(spec["reference"]))
        policy = load_policy(str(spec["model"]), str(spec["reference"]))
    except (ConfigError, OSError, ValueError) as exc:
        raise ConfigError(f"eval.judge: cannot load the implicit-reward judge: {exc}") from None
    return ImplicitRewardJudge(policy, reference.model, reference.tokenizer, str(spec["model"]), str(spec["reference"]),
                               float(spec.get("beta", 0.1)), int(spec.get("max_length", 1024)),
                               int(spec.get("batch_size", 8)))
