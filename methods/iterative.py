"""Rounds of generate → judge → build pairs → DPO: iterative (online) DPO, RLAIF and self-rewarding language
models. The loop is :mod:`suite.execution.rounds`; the entries differ in who judges, how many rounds, and
their sampling. Each round's pairs are the best and the worst of the current model's candidates for a fresh
prompt, as the judge ranks them against the data's reference answer; DPO trains on them from the current
model, which is also its reference.

Feedback: the run's data as demonstrations (prompt + reference answer); the preferences are the judge's.
"""

from __future__ import annotations

from methods.common import taxonomy
from suite.core.ranges import MAPPING, NON_NEGATIVE, POSITIVE_INT, Range
from suite.execution.rounds import RoundsLoop, rounds_components
from suite.method.registry import Method, Paper, register

# What every rounds method shares: the pairs are trained with DPO at its paper's defaults (override with
# offline_method / offline_overrides); candidates are cut at 64 new tokens (ours, CPU-sized).
SHARED = {"offline_method": "dpo", "offline_overrides": {}, "max_new_tokens": 64, "min_gap": 0.0,
          "reward_model_overrides": {}}
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


def _rounds(method_id, name, paper, tags, defaults, description):
    register(Method(
        id=method_id, name=name, paper=paper, feedback="sft", taxonomy=taxonomy(**ONLINE_ROUNDS, **tags),
        needs_reference=True, needs_reward_model=defaults["judge"] == "reward-model",
        defaults={**SHARED, **defaults}, objective=None, components=rounds_components(REWARD_MODEL_METHOD),
        train_loop=RoundsLoop(), description=description, ranges=RANGES,
    ))


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
