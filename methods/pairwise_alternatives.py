"""Reference-based pairwise alternatives to DPO's logistic loss: NCA, BCO, SPPO (hard), EXO, APO, AOT, DiscoPOP.

All take sequence-level SUMS of response-token log-probs ℓ(y) of the policy and of the (cached) reference,
and write a = ℓ(y_w) − ℓ_ref(y_w), b = ℓ(y_l) − ℓ_ref(y_l) for the chosen / rejected log-ratios and
h = a − b for DPO's margin. Each pure ``*_loss`` function returns per-pair losses [B] (AOT: per quantile of
the sorted batch) and matches the TRL 1.16 ``DPOTrainer`` ``loss_type`` named in its docstring (with the
default ``f_divergence_type="reverse_kl"``, no length-desensitisation, no WPO weighting).

Defaults: where the method's own release config was checked it is cited; otherwise β = 0.1 is TRL's
DPOConfig default (not checked against the paper) and lr 5e-6 is the suite's comparison rate (as DPO's entry).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from methods.common import pairwise_reward_metrics, taxonomy
from suite.method.registry import FeedbackBatch, Method, Paper, register

NCA_PAPER = Paper("Noise Contrastive Alignment of Language Models with Explicit Rewards", "2402.05369")
BCO_PAPER = Paper("Binary Classifier Optimization for Large Language Model Alignment", "2404.04656")
SPPO_PAPER = Paper("Self-Play Preference Optimization for Language Model Alignment", "2405.00675")
EXO_PAPER = Paper("Towards Efficient Exact Optimization of Language Model Alignment", "2402.00856")
APO_PAPER = Paper(
    "Anchored Preference Optimization and Contrastive Revisions: Addressing Underspecification in Alignment",
    "2408.06266",
)
AOT_PAPER = Paper("Distributional Preference Alignment of LLMs via Optimal Transport", "2406.05882")
DISCOPOP_PAPER = Paper("Discovering Preference Optimization Algorithms with and for Large Language Models", "2406.08414")


def _logratios(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps):
    return policy_chosen_logps - reference_chosen_logps, policy_rejected_logps - reference_rejected_logps


def _smoothed_logistic(logits: torch.Tensor, label_smoothing: float) -> torch.Tensor:
    """−(1 − ε)·log σ(z) − ε·log σ(−z) (conservative / cDPO-style logistic loss; ε = 0 is plain logistic)."""
    return -(1 - label_smoothing) * F.logsigmoid(logits) - label_smoothing * F.logsigmoid(-logits)


# ----------------------------------------------------------------------------------------------------- NCA


def nca_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
) -> torch.Tensor:
    """NCA, pairwise preference version (Chen et al. 2024, "Noise Contrastive Alignment of Language Models
    with Explicit Rewards", arXiv 2402.05369), per pair:

        r_w = β·a,  r_l = β·b
        loss = −log σ(r_w) − ½·log σ(−r_w) − ½·log σ(−r_l)

    Unlike DPO it scores each response's reward on its own (not only the margin), so the chosen
    likelihood is pushed up in absolute terms. TRL ``loss_type="nca_pair"``.
    """
    a, b = _logratios(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    chosen_rewards, rejected_rewards = beta * a, beta * b
    return (
        -F.logsigmoid(chosen_rewards) - 0.5 * F.logsigmoid(-chosen_rewards) - 0.5 * F.logsigmoid(-rejected_rewards)
    )


# ----------------------------------------------------------------------------------------------------- BCO


def bco_pair_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    reward_shift: float | torch.Tensor,
) -> torch.Tensor:
    """BCO on pairs (Jung et al. 2024, "Binary Classifier Optimization for Large Language Model Alignment",
    arXiv 2404.04656), per pair:

        r_w = β·a,  r_l = β·b
        loss = −log σ(r_w − δ) − log σ(−(r_l − δ))

    a binary classifier with the implicit reward as logit: chosen = class 1, rejected = class 0. δ, the
    reward shift, is a running mean of the rewards (see :func:`update_reward_shift`) and carries no
    gradient. TRL ``loss_type="bco_pair"`` as earlier TRL releases computed it (``RunningMoments`` mean as δ);
    TRL 1.16 dropped the shift (δ = 0 here reproduces TRL 1.16).
    """
    a, b = _logratios(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    if isinstance(reward_shift, torch.Tensor):
        reward_shift = reward_shift.detach()
    return -F.logsigmoid(beta * a - reward_shift) - F.logsigmoid(-(beta * b - reward_shift))


def update_reward_shift(state: dict, rewards: torch.Tensor, key: str = "bco") -> float:
    """Update and return the running reward mean δ kept in ``state`` (the trainer's per-run dict).

    As TRL's ``RunningMoments.update`` called on the batch's mean reward (a single number per step, so
    count += 1): mean ← mean + (batch_mean − mean) / count. The first step's δ is that batch's mean.
    """
    batch_mean = float(rewards.detach().float().mean())
    count = state.get(f"{key}/reward_count", 0) + 1
    mean = state.get(f"{key}/reward_mean", 0.0)
    mean += (batch_mean - mean) / count
    state[f"{key}/reward_count"], state[f"{key}/reward_mean"] = count, mean
    return mean


# ----------------------------------------------------------------------------------------------- SPPO hard


def sppo_hard_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
) -> torch.Tensor:
    """SPPO with hard win probabilities (Wu et al. 2024, "Self-Play Preference Optimization for Language
    Model Alignment", arXiv 2405.00675), per pair:

        loss = (a − 1/(2β))² + (b + 1/(2β))²

    the paper's (log π/π_t − η·(P(y ≻ π_t) − ½))² with P = 1 for the winner, 0 for the loser and η = 1/β
    (the reference plays π_t, the previous iterate). Log-ratios are NOT scaled by β. TRL ``"sppo_hard"``.
    """
    a, b = _logratios(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return (a - 0.5 / beta) ** 2 + (b + 0.5 / beta) ** 2


# ----------------------------------------------------------------------------------------------------- EXO


def exo_pair_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float = 1e-3,
) -> torch.Tensor:
    """EXO for pairwise preferences (Ji et al. 2024, "Towards Efficient Exact Optimization of Language Model
    Alignment", arXiv 2402.00856, eq. 16 with K = 2), per pair:

        q_w = σ(β·h), q_l = σ(−β·h)          (the policy's softmax over {y_w, y_l} of β·log-ratio)
        p_w = 1 − ε,  p_l = ε                 (the smoothed preference label)
        loss = KL(q ‖ p) = q_w·(log q_w − log(1 − ε)) + q_l·(log q_l − log ε)

    the reverse KL, where DPO minimises the forward one. ε must lie in (0, 1): ε = 0 makes log ε = −∞.
    TRL ``loss_type="exo_pair"`` with ``label_smoothing=ε`` (TRL recommends 1e-3).
    """
    if not 0.0 < label_smoothing < 1.0:
        raise ValueError(f"exo: label_smoothing must be in (0, 1), got {label_smoothing}")
    a, b = _logratios(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    logits = beta * (a - b)
    log_pw, log_pl = math.log1p(-label_smoothing), math.log(label_smoothing)
    return torch.sigmoid(logits) * (F.logsigmoid(logits) - log_pw) + torch.sigmoid(-logits) * (
        F.logsigmoid(-logits) - log_pl
    )


# ----------------------------------------------------------------------------------------------------- APO


def apo_zero_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
) -> torch.Tensor:
    """APO-zero (D'Oosterlinck et al. 2024, "Anchored Preference Optimization and Contrastive Revisions",
    arXiv 2408.06266, eq. 7), per pair:

        loss = 1 − σ(β·a) + σ(β·b)

    anchored: the chosen likelihood is pushed up and the rejected one down, each against the reference
    (for data whose chosen answers beat the model's own). TRL ``loss_type="apo_zero"``.
    """
    a, b = _logratios(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return 1 - torch.sigmoid(beta * a) + torch.sigmoid(beta * b)


def apo_down_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
) -> torch.Tensor:
    """APO-down (same paper, eq. 8), per pair:

        loss = σ(β·a) + 1 − σ(β·(a − b))

    both likelihoods pushed down, the rejected more (for data whose chosen answers are worse than the
    model's own). TRL ``loss_type="apo_down"``. Not registered as a method of its own.
    """
    a, b = _logratios(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    return torch.sigmoid(beta * a) + 1 - torch.sigmoid(beta * (a - b))


# ----------------------------------------------------------------------------------------------------- AOT


def aot_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """AOT, paired (Melnyk et al. 2024, "Distributional Preference Alignment of LLMs via Optimal Transport",
    arXiv 2406.05882), per quantile of the batch:

        m_i   = ℓ(y_w,i) − ℓ(y_l,i)              (policy margins)     sorted over the batch: m_(1) ≤ … ≤ m_(B)
        m⁰_i  = ℓ_ref(y_w,i) − ℓ_ref(y_l,i)      (reference margins)  sorted: m⁰_(1) ≤ … ≤ m⁰_(B)
        loss_k = −(1 − ε)·log σ(β·(m_(k) − m⁰_(k))) − ε·log σ(−β·(m_(k) − m⁰_(k)))

    a logistic relaxation of first-order stochastic dominance of the policy's margin distribution over
    the reference's; the 1-D optimal-transport plan is the sorted matching, so the k-th loss belongs to
    the k-th quantile, not to pair k. TRL ``loss_type="aot"``.
    """
    margins, _ = torch.sort(policy_chosen_logps - policy_rejected_logps, dim=0)
    reference_margins, _ = torch.sort(reference_chosen_logps - reference_rejected_logps, dim=0)
    return _smoothed_logistic(beta * (margins - reference_margins), label_smoothing)


def aot_unpaired_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """AOT, unpaired (same paper), per quantile of the batch:

        a sorted over the batch: a_(1) ≤ … ≤ a_(B);  b sorted: b_(1) ≤ … ≤ b_(B)
        loss_k = −(1 − ε)·log σ(β·(a_(k) − b_(k))) − ε·log σ(−β·(a_(k) − b_(k)))

    stochastic dominance of the chosen-reward distribution over the rejected-reward distribution; the
    pairing of chosen and rejected is not used. TRL ``loss_type="aot_unpaired"``.
    """
    a, b = _logratios(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    a_sorted, _ = torch.sort(a, dim=0)
    b_sorted, _ = torch.sort(b, dim=0)
    return _smoothed_logistic(beta * (a_sorted - b_sorted), label_smoothing)


# ------------------------------------------------------------------------------------------------ DiscoPOP


def discopop_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    tau: float = 0.05,
) -> torch.Tensor:
    """DiscoPOP / log-ratio modulated loss (Lu et al. 2024, "Discovering Preference Optimization Algorithms
    with and for Large Language Models", arXiv 2406.08414, eq. 5), per pair:

        ρ = β·h
        loss = (1 − σ(ρ/τ))·(−log σ(ρ)) + σ(ρ/τ)·exp(−ρ)

    a blend of DPO's logistic loss and an exponential loss, weighted by σ(ρ/τ). TRL ``"discopop"`` with
    ``discopop_tau=τ``. The exponential term is computed as exp(log σ(ρ/τ) − ρ): equal in value, but stays
    finite for very negative ρ (where TRL's σ(ρ/τ)·exp(−ρ) is 0·∞ = NaN).
    """
    a, b = _logratios(policy_chosen_logps, policy_rejected_logps, reference_chosen_logps, reference_rejected_logps)
    rho = beta * (a - b)
    logistic = -F.logsigmoid(rho)
    exponential = torch.exp(F.logsigmoid(rho / tau) - rho)
    return logistic * torch.sigmoid(-rho / tau) + exponential


# -------------------------------------------------------------------------------------------- objectives


def _rewards(batch: FeedbackBatch, beta: float):
    policy_chosen, policy_rejected, reference_chosen, reference_rejected = batch.pairwise()
    return beta * (policy_chosen - reference_chosen).detach(), beta * (policy_rejected - reference_rejected).detach()


def _objective(name: str, loss_fn, *keys):
    """An objective applying ``loss_fn`` to the batch's pairs with hyper-parameters ``keys`` from ``hp``;
    logs the implicit rewards β·(ℓ − ℓ_ref) as DPO does."""

    def objective(batch: FeedbackBatch, hp: dict):
        losses = loss_fn(*batch.pairwise(), **{key: hp[key] for key in keys})
        return losses.mean(), pairwise_reward_metrics(*_rewards(batch, hp["beta"]))

    objective.__name__ = objective.__qualname__ = name
    return objective


nca_objective = _objective("nca_objective", nca_loss, "beta")
sppo_hard_objective = _objective("sppo_hard_objective", sppo_hard_loss, "beta")
exo_objective = _objective("exo_objective", exo_pair_loss, "beta", "label_smoothing")
apo_zero_objective = _objective("apo_zero_objective", apo_zero_loss, "beta")
discopop_objective = _objective("discopop_objective", discopop_loss, "beta", "tau")


def bco_objective(batch: FeedbackBatch, hp: dict):
    """BCO on pairs with δ the running mean of the rewards, kept in ``batch.state`` across steps.

    δ is updated with this batch (mean of the concatenated chosen and rejected rewards) before use, as
    TRL did. Only training steps (gradient enabled) update it; evaluation uses the stored δ, or this
    batch's mean before the first training step, without storing it.
    """
    chosen_rewards, rejected_rewards = _rewards(batch, hp["beta"])
    rewards = torch.cat((chosen_rewards, rejected_rewards))
    if torch.is_grad_enabled():
        delta = update_reward_shift(batch.state, rewards)
    else:
        delta = batch.state.get("bco/reward_mean", float(rewards.float().mean()))
    losses = bco_pair_loss(*batch.pairwise(), beta=hp["beta"], reward_shift=delta)
    metrics = pairwise_reward_metrics(chosen_rewards, rejected_rewards)
    metrics["bco/reward_shift"] = torch.tensor(delta)
    return losses.mean(), metrics


def aot_objective(batch: FeedbackBatch, hp: dict):
    """AOT, paired (TRL "aot") or unpaired (TRL "aot_unpaired") by ``hp["paired"]``."""
    loss_fn = aot_loss if hp["paired"] else aot_unpaired_loss
    losses = loss_fn(*batch.pairwise(), beta=hp["beta"], label_smoothing=hp["label_smoothing"])
    return losses.mean(), pairwise_reward_metrics(*_rewards(batch, hp["beta"]))


# --------------------------------------------------------------------------------------------- registry
# reward-form: the suite tags DPO "preference" (its loss is a Bradley–Terry preference probability of the
# margin). Losses of the margin alone (EXO, AOT, DiscoPOP) follow DPO; losses with a separate term for each
# response's own reward (NCA, BCO, APO-zero) are "pointwise"; SPPO is the survey's Nash-learning
# (preference-model) family, so "preference". All keep a reverse-KL tie to the reference (divergence).

register(
    Method(
        id="nca",
        name="NCA",
        paper=NCA_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(),
        needs_reference=True,
        # β = 0.01, lr 5e-6: the authors' release config (thu-ml/Noise-Contrastive-Alignment,
        # yamls/preference_qlora.yaml, zephyr/Mistral-7B on UltraFeedback).
        defaults={"beta": 0.01, "learning_rate": 5e-6},
        objective=nca_objective,
        description="Noise-contrastive estimation on each response's implicit reward: raises the chosen likelihood itself.",
    )
)

register(
    Method(
        id="bco",
        name="BCO",
        paper=BCO_PAPER,
        feedback="pairwise",
        # The paper trains on binary (thumbs-up/down) signals; this entry is its pairwise form (TRL's
        # bco_pair), chosen = desirable and rejected = undesirable, so it consumes preference pairs.
        taxonomy=taxonomy(),
        needs_reference=True,
        # β = 0.1: TRL's default (not checked against the paper); lr: the suite's comparison rate.
        defaults={"beta": 0.1, "learning_rate": 5e-6},
        objective=bco_objective,
        description="Binary classification of chosen vs rejected with the implicit reward as logit, shifted by its running mean.",
    )
)

register(
    Method(
        id="sppo-hard",
        name="SPPO (hard labels)",
        paper=SPPO_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # β = 0.001 (η = 1/β = 1000) and lr 5e-7: the authors' pipeline (uclaml/SPPO scripts/pipeline.sh,
        # Mistral-7B-Instruct). With hard labels the targets are ±1/(2β) = ±500 nats; TRL's default β = 0.1
        # (targets ±5) is the usual choice for small models.
        defaults={"beta": 0.001, "learning_rate": 5e-7},
        objective=sppo_hard_objective,
        description="Square loss pulling the chosen log-ratio to +1/(2β) and the rejected one to −1/(2β) (SPPO with P ∈ {0, 1}).",
    )
)

register(
    Method(
        id="exo",
        name="EXO",
        paper=EXO_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # β = 0.1: TRL's default (not checked against the paper); ε = 1e-3 as TRL recommends for exo_pair.
        defaults={"beta": 0.1, "label_smoothing": 1e-3, "learning_rate": 5e-6},
        objective=exo_objective,
        description="Reverse KL between the policy's pairwise preference distribution and the (smoothed) label.",
    )
)

register(
    Method(
        id="apo-zero",
        name="APO-zero",
        paper=APO_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(),
        needs_reference=True,
        # β = 0.1: TRL's default (not checked against the paper); lr: the suite's comparison rate.
        defaults={"beta": 0.1, "learning_rate": 5e-6},
        objective=apo_zero_objective,
        description="Anchored: chosen likelihood up and rejected down, each against the reference.",
    )
)

register(
    Method(
        id="aot",
        name="AOT",
        paper=AOT_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # β = 0.1, ε = 0: TRL's defaults (not checked against the paper); paired = TRL "aot",
        # False = TRL "aot_unpaired". lr: the suite's comparison rate.
        defaults={"beta": 0.1, "label_smoothing": 0.0, "paired": True, "learning_rate": 5e-6},
        objective=aot_objective,
        description="Distributional: logistic loss on sorted policy vs reference margins (first-order stochastic dominance).",
    )
)

register(
    Method(
        id="discopop",
        name="DiscoPOP",
        paper=DISCOPOP_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        # β = 0.05, lr 5e-7: the authors' config (luchris429/DiscoPOP recipes/zephyr-7b-gemma/gpo/config_full.yaml);
        # τ = 0.05 is the paper's (and TRL's discopop_tau default).
        defaults={"beta": 0.05, "tau": 0.05, "learning_rate": 5e-7},
        objective=discopop_objective,
        description="Log-ratio modulated loss: logistic for negative margins, exponential for positive ones.",
    )
)
