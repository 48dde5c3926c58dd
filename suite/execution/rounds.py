"""Rounds of generate → judge → build pairs → train an offline method: iterative (online) DPO, RLAIF and
self-rewarding language models share this loop; their registry entries (``methods/iterative.py``) differ
in the judge, the number of rounds and their defaults.

Round r of R, from the current model M_{r−1} (M_0: the experiment's model):

1. the next ``prompts_per_round`` prompts of the run's data (disjoint across rounds, as the papers use fresh
   prompts per iteration);
2. ``candidates`` responses per prompt sampled from M_{r−1} (temperature ``temperature``, seeded);
3. each candidate scored by the judge against the data's reference answer for the prompt: AlpacaEval's
   preference p ∈ [1, 2] that the candidate beats it (``suite.evaluation.judges``);
4. pairs chosen from them by the method's rule: by default (highest p, lowest p), kept when they differ by
   more than ``min_gap`` (ties carry no preference); RSO's statistical rejection sampling; with
   ``include_reference`` the reference answer is a candidate too (DNO);
5. the offline method (``offline_method``, default DPO) trained on those pairs from M_{r−1}, which is also its
   reference — so each round's reference is the previous round's model — as stage r of R (its own
   checkpoints: a killed run resumes, and a finished round is not retrained);
6. M_r = the result (LoRA merged into the weights).

The judge (``judge``): ``policy`` — M_{r−1} itself prompted as a judge (self-rewarding); ``base`` — M_0,
frozen (RLAIF with a same-size AI labeler); ``reward-model`` — the experiment's reward model, a component run
(iterative DPO with a preference oracle); or a judge spec (``{type: llm, model: ... | endpoint: ...}``, any
registered judge).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable

from suite.core.errors import ConfigError, DataError
from suite.data.records import PairwiseRecord
from suite.method.registry import Component

JUDGE_CHOICES = ("policy", "base", "reward-model")
REWARD_MODEL_COMPONENT = "reward_model"


def best_and_worst(preferences: list[float], min_gap: float) -> tuple[int, int] | None:
    """Indices (best, worst) of one prompt's candidates by the judge's preference, or None when the best
    does not beat the worst by more than ``min_gap`` (a tie carries no preference). First index wins ties."""
    best = max(range(len(preferences)), key=lambda i: (preferences[i], -i))
    worst = min(range(len(preferences)), key=lambda i: (preferences[i], i))
    return (best, worst) if preferences[best] - preferences[worst] > min_gap else None


def check_rounds(hp: dict) -> None:
    for key in ("rounds", "prompts_per_round"):
        if isinstance(hp[key], bool) or not isinstance(hp[key], int) or hp[key] < 1:
            raise ConfigError(f"{key} must be an integer >= 1, got {hp[key]!r}")
    if isinstance(hp["candidates"], bool) or not isinstance(hp["candidates"], int) or hp["candidates"] < 2:
        raise ConfigError(f"candidates must be an integer >= 2 (a pair needs two), got {hp['candidates']!r}")
    from suite.method.registry import get_method

    offline = get_method(hp["offline_method"])
    if offline.feedback != "pairwise" or offline.objective is None:
        raise ConfigError(f"offline_method: {offline.id} is not an offline method trained on pairs (feedback "
                          f"{offline.feedback}); the rounds build preference pairs")
    offline.hyperparameters(hp["offline_overrides"])  # unknown names fail now, not after a round
    judge = hp["judge"]
    if not (judge in JUDGE_CHOICES or isinstance(judge, dict)):
        raise ConfigError(f"judge must be one of {', '.join(JUDGE_CHOICES)} or a judge spec mapping, got {judge!r}")
    if isinstance(judge, dict):
        from suite.evaluation.judges import judge_types

        if judge.get("type") not in judge_types():
            raise ConfigError(f"judge.type: expected one of {', '.join(judge_types())}, got {judge.get('type')!r}")


def rounds_components(reward_method: str, check: Callable[[dict], None] | None = None) -> Callable[[dict], dict]:
    """A rounds method's components: the reward model when it is the judge (trained once, shared); the
    settings are checked first (``check``: the method's own checks), so a bad one fails when the config is read."""

    def components(hp: dict) -> dict:
        check_rounds(hp)
        if check is not None:
            check(hp)
        if hp["judge"] == "reward-model":
            return {REWARD_MODEL_COMPONENT: Component(reward_method, dict(hp.get("reward_model_overrides") or {}))}
        return {}

    return components


def best_vs_worst(preferences: list[float], hp: dict, rng: random.Random) -> list[tuple[int, int]]:
    """The default pair rule: the one pair (best, worst) of a prompt's candidates, unless they tie."""
    picked = best_and_worst(preferences, float(hp["min_gap"]))
    return [picked] if picked else []


@dataclass(frozen=True)
class RoundsLoop:
    """A method's ``train_loop``: the rounds above, pairing each prompt's candidates with ``select``
    (``(preferences, hp, rng) -> [(chosen, rejected)]``; default: best vs worst)."""

    select: Callable = best_vs_worst

    def __call__(self, context, hyperparameters: dict, records: list, save: bool = True):
        return train_rounds(context, hyperparameters, records, save, self.select)


def judged_pairs(model, judge, tokenizer, prompts: list, hp: dict, *, max_length: int, seed: int,
                 batch_size: int, select: Callable = best_vs_worst) -> tuple[list[PairwiseRecord], dict]:
    """(pairs, statistics) of one round: candidates sampled from ``model``, scored against the reference
    answers, and paired by ``select(preferences, hp, rng) -> [(chosen index, rejected index)]``."""
    from suite.training.online import generate_responses, reference_preferences, require_reference_answers

    require_reference_answers(prompts, "the judge compares candidates with")  # before any sampling
    n = int(hp["candidates"])
    generated = generate_responses(model, tokenizer, [r.prompt for r in prompts], samples=n,
                                   max_new_tokens=int(hp["max_new_tokens"]), temperature=float(hp["temperature"]),
                                   max_prompt_tokens=max_length - int(hp["max_new_tokens"]), seed=seed,
                                   batch_size=batch_size)
    texts = [tokenizer.decode(ids, skip_special_tokens=True).strip() for _, ids, _ in generated]
    preferences = reference_preferences(judge, [r for r in prompts for _ in range(n)], texts)
    with_reference = bool(hp.get("include_reference"))  # the reference answer competes too: p = 1.5 (a tie with itself)
    rng = random.Random(seed)
    pairs, gaps, empty = [], [], 0
    for index, record in enumerate(prompts):
        own = list(preferences[index * n : (index + 1) * n]) + ([1.5] if with_reference else [])
        candidates = list(texts[index * n : (index + 1) * n]) + ([record.completion] if with_reference else [])
        picked = select(own, hp, rng)
        if not picked:
            empty += 1
        for chosen, rejected in picked:
            pairs.append(PairwiseRecord(record.prompt, candidates[chosen], candidates[rejected],
                                        chosen_score=own[chosen], rejected_score=own[rejected]))
            gaps.append(own[chosen] - own[rejected])
    stats = {"prompts": len(prompts), "candidates": n, "pairs": len(pairs), "prompts_without_pair": empty,
             "mean_preference": sum(preferences) / len(preferences),
             "mean_gap": sum(gaps) / len(gaps) if gaps else 0.0}
    return pairs, stats


def train_rounds(context, hp: dict, records: list, save: bool = True, select: Callable = best_vs_worst):
    """Train ``hp["rounds"]`` rounds (see the module docstring); returns (model, train summary)."""
    check_rounds(hp)
    cfg, run, tokenizer = context.config, context.run, context.tokenizer
    total = int(hp["rounds"]) * int(hp["prompts_per_round"])
    # the runner sizes ``records`` for train.max_steps (which here is each round's DPO steps): the rounds
    # need their own count of prompts
    records = context.prepare_data(run.feedback, run.dataset, train_max=total).train
    if len(records) < total:
        raise DataError(f"{run.run_id}: {hp['rounds']} rounds of {hp['prompts_per_round']} fresh prompts need {total} "
                        f"training prompts; the data has {len(records)} (lower rounds or prompts_per_round)")
    model = context.base_model
    summary: dict = {"rounds": [], "judge": None}
    started_all = time.perf_counter()
    for round_index in range(1, int(hp["rounds"]) + 1):
        started = time.perf_counter()
        prompts = records[(round_index - 1) * hp["prompts_per_round"] : round_index * hp["prompts_per_round"]]
        judge = context.judge(hp["judge"], policy=model, reward_model_component=REWARD_MODEL_COMPONENT)
        summary["judge"] = judge.describe()
        pairs, stats = judged_pairs(model.eval(), judge, tokenizer, prompts, hp, max_length=cfg.train.max_length,
                                    seed=run.seed * 100_003 + round_index, batch_size=cfg.train.reference_batch_size,
                                    select=select)
        del judge
        if not pairs:
            raise DataError(f"{run.run_id}: round {round_index}: the judge preferred no candidate over another on "
                            f"any of {len(prompts)} prompts: no pair to train on")
        labelling_s = time.perf_counter() - started
        overrides = {"learning_rate": hp["learning_rate"], **hp["offline_overrides"]}
        model, trained = context.train(hp["offline_method"], model, overrides, records=pairs,
                                       stage=round_index, stages=int(hp["rounds"]))
        summary["rounds"].append({"round": round_index, **stats, "labelling_s": labelling_s, "train": trained})
    summary.update(runtime_s=time.perf_counter() - started_all, steps=sum(r["train"].get("steps", 0) for r in summary["rounds"]),
                   final_loss=summary["rounds"][-1]["train"].get("final_loss"))
    if save:
        context.save_model(model)
    return model, summary
