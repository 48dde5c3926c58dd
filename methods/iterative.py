"""Rounds of generate → judge → build pairs → DPO: iterative (online) DPO, RLAIF and self-rewarding language
models. The loop is :mod:`suite.execution.rounds`; the entries differ in who judges, how many rounds, and
their sampling. Each round's pairs are the best and the worst of the current model's candidates for a fresh
prompt, as the judge ranks them against the data's reference answer; DPO trains on them from the current
model, which is also its reference.

Feedback: the run's data as demonstrations (prompt + reference answer); the preferences are the judge's.
"""

from __future__ import annotations

import math
import random

from methods.common import taxonomy
from suite.core.ranges import MAPPING, NON_NEGATIVE, POSITIVE, POSITIVE_INT, Range
from suite.execution.rounds import RoundsLoop, rounds_components
from suite.method.registry import Method, Paper, register

# What every rounds method shares: the pairs are trained with DPO at its paper's defaults (override with
# offline_method / offline_overrides); candidates are cut at 64 new tokens (ours, CPU-sized).
# learning_rate is the offline steps' (DPO's 5e-6, as UNA's comparison uses; sweepable like any method's) unless
# offline_overrides names one.
SHARED = {"learning_rate": 5e-6, "offline_method": "dpo", "offline_overrides": {}, "max_new_tokens": 64,
          "min_gap": 0.0, "reward_model_overrides": {}}
RANGES = {
    "judge": Range(kind="text-or-mapping"),  # policy | base | reward-model, or a judge spec (checked by the loop)
    "offline_overrides": MAPPING,
    "offline_method": Range(kind="text"),
    "rounds": POSITIVE_INT,
    "prompts_per_round": POSITIVE_INT,
    "candidates": Range(low=2, integer=True),  # a pair needs two
    "min_gap": NON_NEGATIVE,  # preferences lie in [1, 2]: a gap of 1 or more keeps nothing
}
# The registered method whose runs are the reward model when it judges (methods/reward_model.py).
REWARD_MODEL_METHOD = "reward-model"
ONLINE_ROUNDS = dict(policy="on-policy", online="online", reward_form="preference")


def _rounds(method_id, name, paper, tags, defaults, description, loop=RoundsLoop(), ranges=None, check=None):
    register(Method(
        id=method_id, name=name, paper=paper, feedback="sft", taxonomy=taxonomy(**{**ONLINE_ROUNDS, **tags}),
        needs_reference=True, needs_reward_model=defaults["judge"] == "reward-model",
        defaults={**SHARED, **defaults}, objective=None, components=rounds_components(REWARD_MODEL_METHOD, check),
        train_loop=loop, description=description, ranges={**RANGES, **(ranges or {})},
    ))


# -- RSO --------------------------------------------------------------------------------------------------


def rso_accept(rewards: list[float], beta: float, count: int, rng: random.Random) -> list[int]:
    """Statistical rejection sampling (Liu et al. 2024, RSO, arXiv 2309.06657, Algorithm 1, as in its code):
    indices of ``count`` of the candidates y_i ~ π_sft, accepted without replacement so that they approximately
    follow the optimal policy π*(y|x) ∝ π_sft(y|x) · exp(r(x, y)/β):

        repeat until ``count`` are accepted:
            M = max r_j over the remaining candidates
            for each remaining candidate i in order: u ~ U[0, 1]; accept i when u < exp((r_i − M) / β)

    Each sweep accepts at least the best remaining one (u < 1 always), so it ends; β → ∞ accepts in order
    (π_sft itself), β → 0 accepts in descending reward. Returned in acceptance order.
    """
    if count > len(rewards):
        raise ValueError(f"cannot accept {count} of {len(rewards)} candidates")
    remaining, accepted = list(range(len(rewards))), []
    while len(accepted) < count:
        top = max(rewards[i] for i in remaining)
        for index in list(remaining):
            if rng.random() < math.exp((rewards[index] - top) / beta):
                accepted.append(index)
                remaining.remove(index)
                if len(accepted) == count:
                    break
    return accepted


def preference_reward(preference: float) -> float:
    """The reward difference behind a Bradley–Terry preference p = 1 + σ(r(y) − r(y_ref)) ∈ (1, 2):
    r(y) − r(y_ref) = logit(p − 1) (clipped away from 0 and 1: an LLM judge can be certain)."""
    q = min(max(preference - 1.0, 1e-6), 1 - 1e-6)
    return math.log(q / (1 - q))


def rso_pairs(preferences: list[float], hp: dict, rng: random.Random) -> list[tuple[int, int]]:
    """RSO's pairs of one prompt: ``accepted`` candidates by rejection sampling under the judge's reward,
    paired in acceptance order, the higher reward chosen (a tie is no pair)."""
    rewards = [preference_reward(p) for p in preferences]
    accepted = rso_accept(rewards, float(hp["rso_beta"]), int(hp["accepted"]), rng)
    pairs = []
    for a, b in zip(accepted[0::2], accepted[1::2]):
        if rewards[a] != rewards[b]:
            pairs.append((a, b) if rewards[a] > rewards[b] else (b, a))
    return pairs


def _check_rso(hp: dict) -> None:
    from suite.core.errors import ConfigError

    if hp["accepted"] > hp["candidates"] or hp["accepted"] % 2:
        raise ConfigError(f"accepted must be even (candidates are paired) and at most candidates ({hp['candidates']}), "
                          f"got {hp['accepted']}")


_rounds(
    "iterative-dpo", "Iterative DPO (online, with a preference oracle)",
    Paper("Iterative Preference Learning from Human Feedback: Bridging Theory and Practice for RLHF under "
          "KL-Constraint", "2312.11456"),
    {},
    # 3 rounds and best-vs-worst of n candidates under a reward model: the recipe of Xiong et al. and its
    # follow-up "RLHF Workflow" (Dong et al. 2024, arXiv 2405.07863), which samples 8; 4 here (CPU-sized).
    {"rounds": 3, "prompts_per_round": 64, "candidates": 4, "temperature": 1.0, "judge": "reward-model"},
    "Rounds of: sample n answers, rank them with the reward model, DPO on (best, worst) from the last round's model.",
)

_rounds(
    "rso", "RSO (statistical rejection sampling)",
    Paper("Statistical Rejection Sampling Improves Preference Optimization", "2309.06657"),
    dict(policy="off-policy", online="offline", reward_form="pointwise"),
    # One pass: candidates from the SFT policy (the starting model), accepted by rejection sampling from
    # π_sft · exp(r/β) under the reward model, paired, labelled by the reward model, then DPO (the paper's
    # "rso-sample-rank" with the sigmoid loss; offline_method: slic-hf for its hinge loss). The paper samples
    # 64 and accepts 8; 8 and 4 here (CPU-sized). β_rso = 0.5 is ours: the paper sets it per task.
    {"rounds": 1, "prompts_per_round": 64, "candidates": 8, "accepted": 4, "rso_beta": 0.5, "temperature": 1.0,
     "judge": "reward-model"},
    "Rejection-sample candidates of the SFT policy towards π_sft·exp(r/β) with the reward model, pair, label, DPO.",
    loop=RoundsLoop(select=rso_pairs),
    ranges={"accepted": Range(low=2, integer=True), "rso_beta": POSITIVE},
    check=_check_rso,
)

_rounds(
    "dno", "DNO (Direct Nash Optimization, DNO-Prct)",
    Paper("Direct Nash Optimization: Teaching Language Models to Self-Improve with General Preferences", "2404.03715"),
    dict(reward_form="preference"),
    # DNO-Prct (the paper's practical Algorithm 2), chosen over NLHF's Nash-MD because it needs only a
    # preference function P(y ≻ y') and batched rounds, which the suite's judges and rounds give: per round,
    # samples of π_t plus the reference ("gold") answer as a candidate, ranked by the preference against that
    # answer, the (best, worst) pair kept when the margin is large, and a DPO-form loss with π_t as the
    # reference. The paper runs 6 rounds, 5 samples, GPT-4 as the preference; 3 rounds, 4 samples, the
    # experiment's reward model here. The 0.1 margin (on AlpacaEval's [1, 2] preference) is ours.
    {"rounds": 3, "prompts_per_round": 64, "candidates": 4, "temperature": 0.7, "judge": "reward-model",
     "include_reference": True, "min_gap": 0.1},
    "Rounds of on-policy samples plus the reference answer, ranked by a preference function; DPO on large-margin pairs.",
    ranges={"include_reference": Range(kind="bool")},
)

_rounds(
    "rlaif", "RLAIF (AI-labelled preferences)",
    Paper("RLAIF vs. RLHF: Scaling Reinforcement Learning from Human Feedback with AI Feedback", "2309.00267"),
    dict(feedback_source="ai"),
    # One labelling pass over pairs of 2 samples, as the paper labels pairs; the labeller is the starting model
    # itself, frozen (the paper's "same-size" RLAIF, which it finds still improves on SFT). The paper trains a
    # reward model on the AI labels and runs RL; here the labels go to DPO directly (offline_method: any
    # pairwise method). Give judge: {type: llm, model: ... | endpoint: ...} for a larger labeller.
    {"rounds": 1, "prompts_per_round": 128, "candidates": 2, "temperature": 1.0, "judge": "base"},
    "An AI judge (default: the starting model, frozen) labels pairs of the policy's samples; DPO trains on them.",
)

_rounds(
    "self-rewarding", "Self-Rewarding Language Models",
    Paper("Self-Rewarding Language Models", "2401.10020"),
    dict(feedback_source="ai"),
    # 3 iterations (M1 → M3), N = 4 candidates at temperature 0.7, DPO on (best, worst): the paper's. Its judge
    # prompt is a 5-point additive rubric; ours is AlpacaEval's pairwise template against the reference
    # answer, read from the same model's next-token probabilities (suite.evaluation.judges.llm).
    {"rounds": 3, "prompts_per_round": 64, "candidates": 4, "temperature": 0.7, "judge": "policy"},
    "The policy judges its own samples (LLM-as-a-judge) to build DPO pairs, round after round.",
)
