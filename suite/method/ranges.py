"""The declared range of every method hyper-parameter, checked when a config is read.

A method entry may declare its own ``ranges`` (``Method.ranges``); a hyper-parameter it leaves out takes
the range its name has across the registry (``COMMON_RANGES``: β is a positive temperature in every
method, a label-smoothing rate lies in [0, 0.5), …). Registering a method whose default has neither is an
error, so every hyper-parameter of every method has a range.
"""

from __future__ import annotations

from suite.core.errors import ConfigError
from suite.core.ranges import (
    BOOL,
    FRACTION,
    LEARNING_RATE,
    MAPPING,
    NON_NEGATIVE,
    NON_NEGATIVE_INT,
    POSITIVE,
    POSITIVE_INT,
    SEED,
    Range,
)

COMMON_RANGES: dict[str, Range] = {
    "learning_rate": LEARNING_RATE,
    "beta": POSITIVE,  # a KL weight / temperature: β ≤ 0 inverts or removes the objective
    "alpha": NON_NEGATIVE,  # R-DPO's length weight, TDPO's KL weight, β-DPO's adaptation scale
    "label_smoothing": Range(low=0, high=0.5, high_open=True),  # a flip rate: 0.5 means no preference
    "chosen_nll_weight": NON_NEGATIVE,
    "cpo_alpha": NON_NEGATIVE,
    "sft_weight": NON_NEGATIVE,
    "regularization_weight": NON_NEGATIVE,
    "value_coef": NON_NEGATIVE,
    "ptx_coef": NON_NEGATIVE,  # PPO-ptx: weight of the demonstrations NLL
    "l1_lambda": NON_NEGATIVE,
    "lambda": NON_NEGATIVE,  # DPOP's penalty weight
    "delta": NON_NEGATIVE,  # SLiC's margin
    "margin": NON_NEGATIVE,
    "gamma_beta_ratio": NON_NEGATIVE,
    "desirable_weight": POSITIVE,
    "undesirable_weight": POSITIVE,
    "tau": POSITIVE,
    "temperature": POSITIVE,
    "std_epsilon": POSITIVE,
    "clip_range": POSITIVE,
    "value_clip_range": POSITIVE,
    "keep_ratio": Range(low=0, high=1, low_open=True),
    "momentum": Range(low=0, high=1, high_open=True),
    "gamma": FRACTION,  # a discount factor
    "lam": FRACTION,  # GAE's λ
    "stages": POSITIVE_INT,
    "epochs": POSITIVE_INT,
    "ppo_epochs": POSITIVE_INT,
    "num_iterations": POSITIVE_INT,
    "max_new_tokens": POSITIVE_INT,
    "num_generations": Range(low=2, integer=True),  # a group baseline needs two samples
    "num_samples": Range(low=2, integer=True),  # RLOO's leave-one-out baseline too
    "eval_prompts": NON_NEGATIVE_INT,
    "filter_seed": SEED,
    "merge_seed": SEED,
    "max_steps": Range(low=0, low_open=True, integer=True, nullable=True),
    "value_learning_rate": Range(low=0, high=1, low_open=True, nullable=True),
    "missing_eos_penalty": Range(low=0, nullable=True),
    "filter": Range(choices=("sample", "closest")),
    "reward_judge": Range(kind="text-or-mapping"),  # "base" or a judge spec (checked with the components)
    "log_ratio_against": Range(choices=("reference", "rollout")),
    "merge_weights": Range(length=2),
    # booleans and nested settings: their content is checked where it is used (component overrides, datasets)
    **{name: BOOL for name in ("length_normalize", "paired", "score_margin", "score_temperature",
                               "stop_gradient_chosen_kl", "whiten_advantages")},
    **{name: MAPPING for name in ("sft_overrides", "preference_overrides", "reward_model_overrides",
                                  "merge_parameters")},
    **{name: Range(kind="text") for name in ("sft_method", "preference_method", "reward", "merge_method")},
    **{name: Range(kind="text", nullable=True) for name in ("sft_dataset", "reward_model_dataset")},
}


def range_of(method, name: str) -> Range | None:
    """The range declared for ``name`` by ``method`` itself, else the registry-wide one."""
    declared = getattr(method, "ranges", None) or {}
    return declared.get(name) or COMMON_RANGES.get(name)


def missing_ranges(method) -> list[str]:
    """Hyper-parameters of ``method`` without a declared range (registering it then fails)."""
    return sorted(name for name in method.defaults if range_of(method, name) is None)


def check_hyperparameters(method, hyperparameters: dict, where: str, only=None) -> None:
    """Every value of ``hyperparameters`` (or of the keys in ``only``) within its declared range."""
    for name, value in hyperparameters.items():
        if only is not None and name not in only:
            continue
        declared = range_of(method, name)
        if declared is None:
            raise ConfigError(f"{where}.{name}: {method.id} declares no range for this hyper-parameter")
        if name.endswith("_dataset") and isinstance(value, dict):
            continue  # a local {path, format}: checked as a dataset
        declared.check(value, f"{where}.{name}")
