"""The method registry: every alignment method is data — paper, taxonomy, feedback, defaults, loss.

Entries live in ``methods/`` and register themselves on import; the engine looks methods up by id and
never branches on one. A method's ``objective`` receives a :class:`FeedbackBatch` of per-sequence
log-probs (policy, cached reference), lengths and labels/scores, and returns the loss plus metrics to log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from suite.core.errors import ConfigError
from suite.core.registry import Registry

# The survey's 13 directions (arXiv 2407.16216), as (pillar, direction, allowed values).
TAXONOMY = (
    ("reward model", "reward", ("explicit", "implicit")),
    ("reward model", "reward-form", ("pointwise", "preference")),
    ("reward model", "reward-level", ("response", "token")),
    ("reward model", "negative-only", ("yes", "no")),
    ("feedback", "feedback-kind", ("preference", "binary", "scalar", "demonstration")),
    ("feedback", "feedback-arity", ("pairwise", "listwise", "pointwise")),
    ("feedback", "feedback-source", ("human", "ai", "any")),
    ("rl", "reference", ("reference-based", "reference-free")),
    ("rl", "length-control", ("yes", "no")),
    ("rl", "divergence", ("reverse-kl", "forward-kl", "none", "other")),
    ("rl", "policy", ("on-policy", "off-policy")),
    ("optimisation", "online", ("online", "offline")),
    ("optimisation", "sft", ("separate", "merged")),
)
TAXONOMY_DIRECTIONS = tuple(direction for _, direction, _ in TAXONOMY)


@dataclass(frozen=True)
class Paper:
    title: str
    arxiv: str | None = None

    def cite(self) -> str:
        return f"{self.title} (arXiv {self.arxiv})" if self.arxiv else self.title


@dataclass
class FeedbackBatch:
    """What a method's objective sees for one batch.

    Per-sequence tensors have shape [N]. Examples with K sequences (pairwise K = 2: chosen, rejected;
    listwise: K responses best first) are laid out in K blocks of B: sequence k of every example, then
    sequence k+1, … — so a pair or a list is scored in one forward pass. ``mismatched_*`` are KTO's
    KL-estimate sequences (prompt i with completion i+1), when requested.

    Per-token tensors have shape [N, T]: ``token_logps`` holds log π(y_t | x, y_<t) on response
    positions and 0 elsewhere; ``token_mask`` marks the response positions. ``sequence_kl`` (TDPO) is
    Σ_t KL(π_ref(·|x, y_<t) ‖ π_θ(·|x, y_<t)) per sequence, ``values`` (DRO) a learned V(x) per
    sequence, ``delta_l1`` (PAFT's sparse SFT) the scalar Σ|θ − θ_0| over the trainable delta (the LoRA
    product B·A·scaling, or the full-parameter delta).
    ``state`` is a dict kept by the trainer across steps, for methods with running statistics (β-DPO).
    """

    policy_logps: torch.Tensor
    lengths: torch.Tensor
    reference_logps: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    scores: torch.Tensor | None = None  # [B] scalar feedback, or [B, K] for listwise (descending)
    mismatched_policy_logps: torch.Tensor | None = None
    mismatched_reference_logps: torch.Tensor | None = None
    token_logps: torch.Tensor | None = None
    token_mask: torch.Tensor | None = None
    sequence_kl: torch.Tensor | None = None
    values: torch.Tensor | None = None
    delta_l1: torch.Tensor | None = None
    state: dict = field(default_factory=dict)

    def pairwise(self):
        """(policy_chosen, policy_rejected, reference_chosen, reference_rejected) log-probs."""
        half = self.policy_logps.shape[0] // 2
        ref = self.reference_logps
        return (
            self.policy_logps[:half],
            self.policy_logps[half:],
            None if ref is None else ref[:half],
            None if ref is None else ref[half:],
        )

    def pairwise_lengths(self):
        half = self.lengths.shape[0] // 2
        return self.lengths[:half], self.lengths[half:]

    def pairwise_mean_logps(self):
        """Length-averaged log-probs ℓ(y)/|y| of (chosen, rejected): SimPO, ORPO, IPO-normalised."""
        chosen, rejected, _, _ = self.pairwise()
        chosen_lengths, rejected_lengths = self.pairwise_lengths()
        return chosen / chosen_lengths.clamp(min=1), rejected / rejected_lengths.clamp(min=1)

    def blocks(self, values: torch.Tensor | None, k: int) -> torch.Tensor | None:
        """A per-sequence tensor [K·B, ...] as [B, K, ...]: row = example, column = its k-th sequence."""
        if values is None:
            return None
        return values.reshape(k, values.shape[0] // k, *values.shape[1:]).transpose(0, 1)

    def listwise(self):
        """(policy, reference, lengths), each [B, K] with column 0 the best response (K from ``scores``)."""
        k = self.scores.shape[-1]
        return (self.blocks(self.policy_logps, k), self.blocks(self.reference_logps, k),
                self.blocks(self.lengths, k))


Objective = Callable[[FeedbackBatch, dict], "tuple[torch.Tensor, dict[str, torch.Tensor]]"]

# What a method may declare in ``Method.extra_inputs``: the offline trainer's extra work per batch.
EXTRA_INPUTS = {
    "mismatched_pairs": "prompt i with completion i+1, with its reference log-prob (KTO's KL estimate)",
    "sequence_kl": "Σ_t KL(π_ref ‖ π_θ) per sequence: the reference model is run live next to the policy (TDPO)",
    "values": "a value head V(x) trained next to the policy, in its own optimizer group (DRO)",
    "delta_l1": "Σ|θ − θ_0| over the trainable delta, for a sparsity penalty (PAFT's sparse SFT)",
}


@dataclass(frozen=True)
class Component:
    """A run a composite method is built from: a registered method, its overrides, and the dataset it
    trains on (None: the experiment's). Components are ordinary runs — stored, reported, reused by
    every composite that names the same one."""

    method: str
    overrides: dict = field(default_factory=dict)
    dataset: str | dict | None = None


@dataclass(frozen=True)
class Method:
    id: str
    name: str
    paper: Paper
    feedback: str  # the record type it trains on: pairwise | binary | scalar | sft | listwise
    taxonomy: dict  # direction -> value, see TAXONOMY
    needs_reference: bool
    defaults: dict  # hyper-parameters with the paper's values (beta, learning_rate, ...)
    objective: Objective | None  # None for composite methods, which train nothing themselves
    description: str = ""
    # What the offline trainer must add to the batch beyond log-probs, lengths and per-token log-probs:
    # names from EXTRA_INPUTS (checked when the method registers). The engine serves these declarations
    # and never asks which method it trains.
    extra_inputs: frozenset = field(default_factory=frozenset)
    # Multi-stage methods (sDPO): the data is split into ``hyperparameters["stages"]`` chunks trained in
    # turn, each stage's reference and initialisation being the previous stage's model. The staging is
    # the method's own ``train_loop`` (it drives the offline trainer through the run context).
    staged: bool = False
    # Trains against a separately trained reward model (RLHF/PPO, RLOO, ...), not only against data.
    needs_reward_model: bool = False
    # Composite methods (PAFT, SFT→DPO) are built from other runs: ``components(hyperparameters)`` names
    # them ({name: Component}); ``compose(context, hyperparameters)`` returns (model, train summary) from
    # them, through a :class:`suite.execution.context.RunContext` (load a component, merge, train further).
    components: Callable[[dict], dict] | None = None
    compose: Callable | None = None
    # Methods with a training loop of their own (staged methods, reward models, the online family): the
    # runner calls ``train_loop(context, hyperparameters, records, save=...)`` instead of the offline
    # trainer, with a RunContext (its ``components``, e.g. a reward model, are planned and loaded as for
    # composites). With an ``objective`` too, the loop drives the offline trainer with it
    # (``context.train_offline``). It returns (trained policy, train summary), or (None, summary) for a
    # run that trains no policy: the summary's ``alignment`` then holds the run's own held-out metrics
    # and no leaderboard is run.
    train_loop: Callable | None = None
    # Declared ranges of hyper-parameters ({name: suite.core.ranges.Range}) where this method's differ from
    # the registry-wide ones (suite.method.ranges.COMMON_RANGES); checked when a config is read.
    ranges: dict = field(default_factory=dict)

    def hyperparameters(self, overrides: dict | None = None) -> dict:
        """The paper's defaults with overrides applied; unknown keys are a config error."""
        merged = dict(self.defaults)
        for key, value in (overrides or {}).items():
            if key not in self.defaults:
                raise ConfigError(
                    f"methods: {self.id} has no hyper-parameter {key!r}; known: {sorted(self.defaults)}"
                )
            merged[key] = value
        return merged

    def summary(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "feedback": self.feedback,
            "needs_reference": self.needs_reference,
            "needs_reward_model": self.needs_reward_model,
            "staged": self.staged,
            "composite": self.compose is not None,
            "own_train_loop": self.train_loop is not None,
            "paper": self.paper.title,
            "arxiv": self.paper.arxiv,
            "taxonomy": dict(self.taxonomy),
            "defaults": dict(self.defaults),
            "description": self.description,
        }


def register(method: Method) -> Method:
    if method.id in METHODS:
        raise ValueError(f"method {method.id!r} registered twice")
    for direction, value in method.taxonomy.items():
        allowed = dict((d, v) for _, d, v in TAXONOMY).get(direction)
        if allowed is None or value not in allowed:
            raise ValueError(f"method {method.id!r}: bad taxonomy tag {direction}={value!r}")
    trains = method.objective is not None or method.train_loop is not None
    if (method.compose is not None) == trains or (method.compose is not None and method.components is None) \
            or (method.components is not None and method.compose is None and method.train_loop is None):
        raise ValueError(f"method {method.id!r}: give an objective and/or a train_loop (with optional components), "
                         "or both components and compose")
    unknown = sorted(set(method.extra_inputs) - set(EXTRA_INPUTS))
    if unknown:
        raise ValueError(f"method {method.id!r}: unknown extra_inputs {unknown}; known: {sorted(EXTRA_INPUTS)}")
    if method.extra_inputs and method.objective is None:
        raise ValueError(f"method {method.id!r}: extra_inputs are served to an objective, and it has none")
    if method.staged and (method.train_loop is None or "stages" not in method.defaults):
        raise ValueError(f"method {method.id!r}: a staged method needs a 'stages' hyper-parameter and a train_loop "
                         "that trains the stages")
    from suite.method.ranges import missing_ranges

    if missing_ranges(method):
        raise ValueError(f"method {method.id!r}: no declared range for {', '.join(missing_ranges(method))} "
                         "(give Method.ranges or add the name to suite.method.ranges.COMMON_RANGES)")
    return METHODS.add(method.id, method)


PLUGIN_GROUP = "alignsuite.methods"  # entry-point group of the packages that register methods
_loaded_plugins: set[str] = set()


def load_plugins() -> None:
    """Import every package registered under the ``alignsuite.methods`` entry-point group (the suite's own
    ``methods`` package among them); each registers its entries on import. The engine never imports a
    method package by name, so method packages may build on the engine without an import cycle."""
    from importlib import import_module, metadata

    for entry in metadata.entry_points(group=PLUGIN_GROUP):
        if entry.value not in _loaded_plugins:
            _loaded_plugins.add(entry.value)
            import_module(entry.value)
    if not _loaded_plugins:
        raise ConfigError(f"no method package is installed: the entry-point group {PLUGIN_GROUP!r} is empty "
                          "(install the suite with `pip install -e .`)")


METHODS: Registry[Method] = Registry("method", "methods", listing="registered", loader=load_plugins)


def get_method(method_id: str) -> Method:
    return METHODS.get(method_id)


def all_methods() -> list[Method]:
    return [method for _, method in METHODS.items()]
