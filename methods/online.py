"""The online family: PPO (RLHF), RLOO, GRPO, online DPO and online UNA on one shared rollout loop.

Each entry is an :class:`suite.training.online.OnlineAlgorithm` — how many responses per prompt, what to compute
once per rollout (``prepare``), the loss on a micro-batch, how many updates per rollout — and the loop in
``suite/online.py`` does the rest (sampling, scoring with the reward model or a rule, reference
log-probs, logging). The losses below are pure tensor functions.

Feedback: the prompts come from the run's data as demonstrations (``sft``: prompt + the data's reference
answer, which rule rewards such as the GSM8K check compare against); the responses are the policy's own.
The reward is the ``reward-model`` component trained on the experiment's preference pairs
(``reward: model``, the default; ``reward_model_overrides`` / ``reward_model_dataset`` configure it) or a
registered rule (``reward: gsm8k``).
"""

from __future__ import annotations

import torch

from methods.common import taxonomy
from methods.dpo import dpo_loss
from methods.una import UNA_PAPER, una_mse_loss
from suite.core.errors import ConfigError
from suite.method.registry import Method, Paper, register
from suite.training.online import (
    OnlineAlgorithm,
    OnlineLoop,
    RolloutBatch,
    reward_components,
)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(x − mean) / sqrt(var + eps) over the masked entries (population variance), 0 elsewhere."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * torch.rsqrt(variance + eps) * mask.to(values.dtype)


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last True entry (its last response token)."""
    positions = torch.arange(mask.shape[-1], device=mask.device)
    return (positions * mask.long()).argmax(-1)


# -- PPO --------------------------------------------------------------------------------------------------


def ppo_token_rewards(scores: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor, mask: torch.Tensor,
                      beta: float) -> torch.Tensor:
    """RLHF's per-token reward (Ziegler et al. 2019, arXiv 1909.08593; InstructGPT, arXiv 2203.02155):

        r_t = −β · (log π_old(y_t | x, y_<t) − log π_ref(y_t | x, y_<t))   on every response token,
        r_T += r_φ(x, y)                                                 on the last one,

    so the return of a response is r_φ − β · KL estimate. Shapes [N, T]; ``scores`` [N]; 0 off the mask.
    """
    rewards = -beta * (old_logps - ref_logps) * mask
    rows = torch.arange(scores.shape[0], device=scores.device)
    rewards[rows, last_token_index(mask)] += scores.to(rewards.dtype)
    return rewards


def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float):
    """Generalised advantage estimation (Schulman et al. 2016, arXiv 1506.02438) over response tokens:

        δ_t = r_t + γ · V_{t+1} − V_t        (V after the last response token is 0)
        A_t = δ_t + γλ · A_{t+1}             (= Σ_l (γλ)^l δ_{t+l})
        R_t = A_t + V_t                      (the value target)

    ``rewards``, ``values``, ``mask`` are [N, T] with each row's response tokens contiguous. Returns
    (advantages, returns), 0 off the mask.
    """
    mask = mask.to(rewards.dtype)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        next_mask = mask[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        next_value = values[:, t + 1] * next_mask if t + 1 < rewards.shape[1] else torch.zeros_like(running)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = delta + gamma * lam * next_mask * running
        advantages[:, t] = running * mask[:, t]
    return advantages, (advantages + values) * mask


def ppo_policy_loss(logps: torch.Tensor, old_logps: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
                    clip_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate (Schulman et al. 2017, arXiv 1707.06347, eq. 7), as a loss:

        ρ_t = exp(log π_θ(y_t) − log π_old(y_t))
        L = mean_t max(−A_t · ρ_t, −A_t · clip(ρ_t, 1 − ε, 1 + ε))      (mean over response tokens)

    Returns (loss, share of tokens where the clipped term was taken).
    """
    ratio = torch.exp(logps - old_logps)
    unclipped, clipped = -advantages * ratio, -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    return masked_mean(torch.maximum(unclipped, clipped), mask), masked_mean((clipped > unclipped).float(), mask)


def ppo_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                   clip_range: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped value loss (as in OpenAI's baselines and TRL):

        V_clip = V_old + clip(V − V_old, −ε_v, ε_v)
        L_V = ½ · mean_t max((V_t − R_t)², (V_clip,t − R_t)²)

    Returns (loss, share of tokens where the clipped term was taken).
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip_range, clip_range)
    unclipped, clipped = (values - returns) ** 2, (clipped_values - returns) ** 2
    return 0.5 * masked_mean(torch.maximum(unclipped, clipped), mask), masked_mean((clipped > unclipped).float(), mask)


def _ppo_prepare(batch: RolloutBatch, hp: dict) -> dict:
    rewards = ppo_token_rewards(batch.rewards, batch.old_logps, batch.ref_logps, batch.mask, hp["beta"])
    advantages, returns = gae(rewards, batch.old_values, batch.mask, hp["gamma"], hp["lam"])
    if hp["whiten_advantages"]:
        advantages = masked_whiten(advantages, batch.mask)
    return {"advantages": advantages, "returns": returns}


def _ppo_loss(batch: RolloutBatch, hp: dict):
    policy_loss, clipped = ppo_policy_loss(batch.logps, batch.old_logps, batch.extras["advantages"], batch.mask,
                                           hp["clip_range"])
    value_loss, value_clipped = ppo_value_loss(batch.values, batch.old_values, batch.extras["returns"], batch.mask,
                                               hp["value_clip_range"])
    return policy_loss + hp["value_coef"] * value_loss, {
        "policy_loss": policy_loss.detach(), "value_loss": value_loss.detach(), "clipfrac": clipped,
        "value_clipfrac": value_clipped, "value/mean": masked_mean(batch.values.detach(), batch.mask),
        "approx_kl": masked_mean(0.5 * (batch.logps.detach() - batch.old_logps) ** 2, batch.mask),
    }


# -- PPO-ptx ----------------------------------------------------------------------------------------------


def ptx_loss(rl_loss: torch.Tensor, demo_logps: torch.Tensor, demo_mask: torch.Tensor, coef: float) -> torch.Tensor:
    """InstructGPT's PPO-ptx (Ouyang et al. 2022, arXiv 2203.02155, eq. 2), as a loss:

        objective(φ) = E_(x,y)~π_φ [r_θ(x, y) − β · log(π_φ(y|x) / π_SFT(y|x))] + γ · E_x~D_pretrain [log π_φ(x)]
        loss = L_PPO − γ · mean_t log π_φ(d_t | x, d_<t)

    The PPO loss plus γ times the negative log-likelihood of pre-training text, to keep the regressions on
    public NLP tasks ("alignment tax") small. Here the pre-training text is the run's own demonstrations
    (prompt + the data's reference answer d), the SFT distribution; the likelihood is the mean over the
    answer tokens (``demo_logps`` [N, T], 0 off ``demo_mask``).
    """
    return rl_loss - coef * masked_mean(demo_logps, demo_mask)


def _ppo_ptx_loss(batch: RolloutBatch, hp: dict):
    loss, metrics = _ppo_loss(batch, hp)
    demo_nll = -masked_mean(batch.demo_logps.detach(), batch.demo_mask)
    return ptx_loss(loss, batch.demo_logps, batch.demo_mask, hp["ptx_coef"]), {**metrics, "ptx/nll": demo_nll}


# -- RLOO -------------------------------------------------------------------------------------------------


def rloo_advantages(returns: torch.Tensor, k: int) -> torch.Tensor:
    """RLOO's leave-one-out baseline (Ahmadian et al. 2024, arXiv 2402.14740, eq. 6), per group of the k
    samples of one prompt (prompt-major layout):

        A_i = R_i − 1/(k − 1) · Σ_{j ≠ i} R_j
    """
    grouped = returns.reshape(-1, k)
    baseline = (grouped.sum(-1, keepdim=True) - grouped) / (k - 1)
    return (grouped - baseline).reshape(-1)


def rloo_loss(sequence_logps: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """REINFORCE with the whole response as one action: L = −mean_i A_i · log π_θ(y_i | x), where
    log π_θ(y|x) = Σ_t log π_θ(y_t | x, y_<t) and A_i is fixed (no gradient)."""
    return -(advantages.detach() * sequence_logps).mean()


def _rloo_prepare(batch: RolloutBatch, hp: dict) -> dict:
    # The KL penalty is part of the sequence reward, as in the paper: R = r_φ − β · Σ_t (log π_old − log π_ref).
    returns = batch.rewards - hp["beta"] * batch.sequence_sum(batch.old_logps - batch.ref_logps)
    return {"advantages": rloo_advantages(returns, batch.group_size)}


def _rloo_loss(batch: RolloutBatch, hp: dict):
    advantages = batch.extras["advantages"]
    return rloo_loss(batch.sequence_sum(batch.logps), advantages), {"advantage/abs_mean": advantages.abs().mean()}


# -- GRPO -------------------------------------------------------------------------------------------------


def grpo_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-4) -> torch.Tensor:
    """GRPO's group-normalised advantage (Shao et al. 2024, DeepSeekMath, arXiv 2402.03300, §4.1.2), the
    same for every token of response i in a group of G:

        Â_i = (r_i − mean(r_1..G)) / (std(r_1..G) + eps)

    std is the sample standard deviation (Bessel-corrected, as TRL computes it); eps as TRL's 1e-4.
    """
    grouped = rewards.reshape(-1, group_size)
    normalised = (grouped - grouped.mean(-1, keepdim=True)) / (grouped.std(-1, keepdim=True) + eps)
    return normalised.reshape(-1)


def grpo_loss(logps: torch.Tensor, old_logps: torch.Tensor, ref_logps: torch.Tensor, advantages: torch.Tensor,
              mask: torch.Tensor, clip_range: float, beta: float) -> tuple[torch.Tensor, dict]:
    """GRPO's objective (DeepSeekMath eq. 3), as a loss averaged per response, then over responses:

        ρ_t = exp(log π_θ(o_t) − log π_old(o_t))
        KL_t = exp(log π_ref(o_t) − log π_θ(o_t)) − (log π_ref(o_t) − log π_θ(o_t)) − 1     (eq. 4, k3 estimator)
        L = 1/G Σ_i 1/|o_i| Σ_t −[min(ρ_t Â_i, clip(ρ_t, 1 − ε, 1 + ε) Â_i) − β · KL_t]

    ``advantages`` [N] (one per response), per-token tensors [N, T]. Returns (loss, metrics).
    """
    maskf = mask.to(logps.dtype)
    ratio = torch.exp(logps - old_logps)
    advantage = advantages.detach().unsqueeze(-1)
    surrogate = torch.minimum(ratio * advantage, torch.clamp(ratio, 1 - clip_range, 1 + clip_range) * advantage)
    log_ratio_ref = ref_logps - logps
    kl = torch.exp(log_ratio_ref) - log_ratio_ref - 1
    per_token = -(surrogate - beta * kl)
    per_response = (per_token * maskf).sum(-1) / maskf.sum(-1).clamp(min=1)
    return per_response.mean(), {"kl_k3": masked_mean(kl.detach(), mask)}


def _grpo_prepare(batch: RolloutBatch, hp: dict) -> dict:
    return {"advantages": grpo_advantages(batch.rewards, batch.group_size, hp["std_epsilon"])}


def _grpo_loss(batch: RolloutBatch, hp: dict):
    return grpo_loss(batch.logps, batch.old_logps, batch.ref_logps, batch.extras["advantages"], batch.mask,
                     hp["clip_range"], hp["beta"])


# -- online DPO -------------------------------------------------------------------------------------------


def rank_pairs(rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two responses per prompt (prompt-major) ranked by reward: (chosen [N], valid [N]) per row — chosen
    is 1 on the pair's higher-reward response; a tie carries no preference (valid 0 on both rows)."""
    pairs = rewards.reshape(-1, 2)
    first_better = (pairs[:, 0] > pairs[:, 1]).float()
    valid = (pairs[:, 0] != pairs[:, 1]).float()
    return torch.stack([first_better, 1 - first_better], -1).reshape(-1), valid.repeat_interleave(2)


def _online_dpo_prepare(batch: RolloutBatch, hp: dict) -> dict:
    chosen, valid = rank_pairs(batch.rewards)
    return {"chosen": chosen, "valid": valid}


def _online_dpo_loss(batch: RolloutBatch, hp: dict):
    """DPO's loss (``methods.dpo.dpo_loss``) on the ranked pairs; ties are left out of the mean."""
    policy, reference = batch.sequence_sum(batch.logps).reshape(-1, 2), batch.sequence_sum(batch.ref_logps).reshape(-1, 2)
    first = batch.extras["chosen"].reshape(-1, 2)[:, 0].bool()
    valid = batch.extras["valid"].reshape(-1, 2)[:, 0]

    def pick(values, take_first):
        return torch.where(take_first, values[:, 0], values[:, 1])

    losses, chosen_rewards, rejected_rewards = dpo_loss(pick(policy, first), pick(policy, ~first),
                                                        pick(reference, first), pick(reference, ~first), hp["beta"])
    pairs = valid.sum().clamp(min=1)
    margin = ((chosen_rewards - rejected_rewards) * valid).sum() / pairs
    return (losses * valid).sum() / pairs, {"pairs/valid": valid.mean(), "rewards/margin": margin}


# -- online UNA -------------------------------------------------------------------------------------------


def una_online_loss(policy_logps: torch.Tensor, baseline_logps: torch.Tensor, rewards: torch.Tensor,
                    beta: float) -> torch.Tensor:
    """Online UNA (arXiv 2408.15339, §3.4), per response: the implicit score regressed onto the squashed
    explicit reward of the reward model,

        loss = (σ(β · [ℓ_θ(y) − ℓ_base(y)]) − σ(r_φ(x, y)))²

    — UNA's MSE loss (``methods.una.una_mse_loss``) with target σ(r_φ). The paper's base is π_ref; the
    authors' code measures the log-ratio against the rollout-time policy π_old instead.
    """
    return una_mse_loss(policy_logps, baseline_logps, torch.sigmoid(rewards), beta)


UNA_BASELINES = ("reference", "rollout")


def _una_loss(batch: RolloutBatch, hp: dict):
    baseline = batch.ref_logps if hp["log_ratio_against"] == "reference" else batch.old_logps
    policy_logps = batch.sequence_sum(batch.logps)
    losses = una_online_loss(policy_logps, batch.sequence_sum(baseline), batch.rewards, hp["beta"])
    score = torch.sigmoid(hp["beta"] * (policy_logps - batch.sequence_sum(baseline))).detach()
    return losses.mean(), {"implicit_score/mean": score.mean(), "target/mean": torch.sigmoid(batch.rewards).mean()}


# -- registration -----------------------------------------------------------------------------------------

# What every online method shares. lr 5e-6 is the UNA paper's for both RLHF and UNA in its online runs.
# Sampling at temperature 1 without top-k/top-p draws from π itself, the distribution the objectives are
# defined over. 64 new tokens and 16 held-out prompts are ours (CPU-sized); set them per experiment.
LOOP_DEFAULTS = {
    "learning_rate": 5e-6,
    "reward": "model",
    "reward_model_overrides": {},
    "reward_model_dataset": None,
    "max_new_tokens": 64,
    "temperature": 1.0,
    "missing_eos_penalty": None,
    "eval_prompts": 16,
}
ONLINE = dict(policy="on-policy", online="online")
# The registered method whose runs are the online methods' reward model (methods/reward_model.py).
REWARD_MODEL_METHOD = "reward-model"


def _components(check=None):
    """Components (the reward model) after ``check(hp)`` has validated the method's own values, so a bad
    value fails when the config is read."""

    def components(hp: dict) -> dict:
        if check is not None:
            check(hp)
        return reward_components(hp, REWARD_MODEL_METHOD)

    return components


def _at_least(key: str, minimum: int):
    def check(hp: dict) -> None:
        value = hp[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{key} must be an integer >= {minimum}, got {value!r}")

    return check


def _una_check(hp: dict) -> None:
    if hp["log_ratio_against"] not in UNA_BASELINES:
        raise ConfigError(f"log_ratio_against must be one of {', '.join(UNA_BASELINES)}, got {hp['log_ratio_against']!r}")
    _at_least("epochs", 1)(hp)


def _online(method_id, name, paper, tags, defaults, algorithm, check, description):
    register(Method(
        id=method_id, name=name, paper=paper, feedback="sft", taxonomy=taxonomy(**ONLINE, **tags),
        needs_reference=True, needs_reward_model={**LOOP_DEFAULTS, **defaults}["reward"] == "model",
        defaults={**LOOP_DEFAULTS, **defaults}, objective=None,
        components=_components(check), train_loop=OnlineLoop(algorithm), description=description,
    ))


EXPLICIT = dict(reward="explicit")

_online(
    "ppo", "RLHF (PPO)", Paper("Training language models to follow instructions with human feedback", "2203.02155"),
    EXPLICIT,
    # β = 0.05: the UNA paper's RLHF run. The PPO settings are TRL's PPOTrainer defaults (4 epochs per rollout,
    # ε = ε_v = 0.2, value coefficient 0.1, γ = 1, λ = 0.95, whitened advantages); the value model shares the lr.
    {"beta": 0.05, "ppo_epochs": 4, "clip_range": 0.2, "value_clip_range": 0.2, "value_coef": 0.1, "gamma": 1.0,
     "lam": 0.95, "whiten_advantages": True, "value_learning_rate": None},
    OnlineAlgorithm(samples_per_prompt=lambda hp: 1, prepare=_ppo_prepare, loss=_ppo_loss,
                    epochs=lambda hp: hp["ppo_epochs"], value_model=True),
    _at_least("ppo_epochs", 1),
    "PPO against the reward model with a per-token KL penalty to the reference; value model from the reward model, GAE.",
)

_online(
    "ppo-ptx", "RLHF (PPO-ptx)", Paper("Training language models to follow instructions with human feedback",
                                       "2203.02155"),
    dict(EXPLICIT, sft="merged"),
    # PPO's settings as above. γ = 0.05 on the per-token mean NLL is OpenRLHF's ptx_coef default; InstructGPT's
    # γ = 27.8 goes with its own loss normalisation (and GPT-3's pre-training mix, 8 pre-training examples per
    # PPO episode), which we do not have: with our token-mean PPO loss 27.8 would turn the run into SFT.
    {"beta": 0.05, "ppo_epochs": 4, "clip_range": 0.2, "value_clip_range": 0.2, "value_coef": 0.1, "gamma": 1.0,
     "lam": 0.95, "whiten_advantages": True, "value_learning_rate": None, "ptx_coef": 0.05},
    OnlineAlgorithm(samples_per_prompt=lambda hp: 1, prepare=_ppo_prepare, loss=_ppo_ptx_loss,
                    epochs=lambda hp: hp["ppo_epochs"], value_model=True, demonstrations=True),
    _at_least("ppo_epochs", 1),
    "PPO with the demonstrations' log-likelihood mixed into the objective (γ · NLL), against the alignment tax.",
)

_online(
    "rloo", "RLOO",
    Paper("Back to Basics: Revisiting REINFORCE Style Optimization for Learning from Human Feedback in LLMs",
          "2402.14740"),
    EXPLICIT,
    # k = 4 samples per prompt as in the paper's best runs; β = 0.05 as TRL's RLOO default (the paper sweeps it).
    {"beta": 0.05, "num_samples": 4},
    OnlineAlgorithm(samples_per_prompt=lambda hp: hp["num_samples"], prepare=_rloo_prepare, loss=_rloo_loss),
    _at_least("num_samples", 2),
    "REINFORCE on whole responses with a leave-one-out baseline over k samples per prompt; KL penalty in the reward.",
)

_online(
    "direct-rlaif", "Direct RLAIF",
    Paper("RLAIF vs. RLHF: Scaling Reinforcement Learning from Human Feedback with AI Feedback", "2309.00267"),
    dict(EXPLICIT, feedback_source="ai", feedback_kind="scalar", feedback_arity="pointwise"),
    # d-RLAIF: no reward model; the AI judge scores each response and that score is the reward. The judge is
    # the starting model, frozen (the paper's same-size labeller; give reward_judge: {type: llm, ...} for
    # another). The policy gradient is RLOO's REINFORCE with a leave-one-out baseline over 2 samples per
    # prompt (the paper uses a REINFORCE-style policy gradient with a baseline); β = 0.05 as RLOO's.
    {"beta": 0.05, "num_samples": 2, "reward": "judge", "reward_judge": "base"},
    OnlineAlgorithm(samples_per_prompt=lambda hp: hp["num_samples"], prepare=_rloo_prepare, loss=_rloo_loss),
    _at_least("num_samples", 2),
    "The AI judge's score of each sampled response is the reward (no reward model); REINFORCE with a baseline.",
)

_online(
    "grpo", "GRPO", Paper("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models",
                          "2402.03300"),
    EXPLICIT,
    # β = 0.04, ε = 0.2, lr 1e-6 and one update per rollout (μ = 1) are DeepSeekMath's; G = 4 (the paper
    # samples 64 per question) keeps CPU runs small.
    {"learning_rate": 1e-6, "beta": 0.04, "num_generations": 4, "clip_range": 0.2, "num_iterations": 1,
     "std_epsilon": 1e-4},
    OnlineAlgorithm(samples_per_prompt=lambda hp: hp["num_generations"], prepare=_grpo_prepare, loss=_grpo_loss,
                    epochs=lambda hp: hp["num_iterations"]),
    lambda hp: [_at_least(key, minimum)(hp) for key, minimum in (("num_generations", 2), ("num_iterations", 1))],
    "Group-normalised advantages over G samples per prompt, PPO clipping, a k3 KL term to the reference in the loss.",
)

_online(
    "online-dpo", "Online DPO",
    Paper("Direct Language Model Alignment from Online AI Feedback", "2402.04792"),
    dict(reward="implicit", reward_form="preference"),
    # β = 0.1 as the paper (and DPO); two samples per prompt ranked by the reward model.
    {"beta": 0.1},
    OnlineAlgorithm(samples_per_prompt=lambda hp: 2, prepare=_online_dpo_prepare, loss=_online_dpo_loss),
    None,
    "Two samples per prompt ranked by the reward model (ties dropped), then DPO's loss against the reference.",
)

_online(
    "una-online", "UNA (online)", UNA_PAPER,
    dict(reward="implicit", feedback_kind="scalar", feedback_arity="pointwise"),
    # β = 0.03 and lr 5e-6: the paper's online run. One update per rollout (not stated in the paper).
    {"beta": 0.03, "log_ratio_against": "reference", "epochs": 1},
    OnlineAlgorithm(samples_per_prompt=lambda hp: 1, prepare=lambda batch, hp: {}, loss=_una_loss,
                    epochs=lambda hp: hp["epochs"]),
    _una_check,
    "The implicit score σ(β·log π/π_ref) regressed onto σ(r_φ) of the reward model on fresh samples; replaces PPO.",
)
