"""The online loop shared by every online method (PPO, RLOO, GRPO, online DPO, online UNA).

Each step of ``train.max_steps``:

1. take the next ``per_device_batch_size × gradient_accumulation_steps`` prompts of the run's data (the
   same prompts, in the same order, for every online method with the same seed);
2. sample K responses per prompt from the policy — batched, seeded per step, at most ``max_new_tokens``,
   each cut after its first end-of-turn token (the prompt keeps its last ``max_length − max_new_tokens``
   tokens);
3. score them: with the run's reward-model component (``reward: model``) or a registered rule
   (``reward: gsm8k`` — the GSM8K answer check —, or one added with :func:`register_reward_rule`);
4. compute per-token log-probs under the rollout policy and the reference (with LoRA the same network with
   its adapter switched off, else a frozen copy) and, for PPO, the value model's per-token values;
5. hand the batch to the method (an :class:`OnlineAlgorithm`): ``prepare`` once per rollout (advantages,
   returns, pairs), then ``loss`` on micro-batches of ``per_device_batch_size`` prompts, accumulated into
   one optimizer update, ``epochs`` times.

The policy runs with dropout off throughout (as TRL's RL trainers do), so before the first update of a
step its log-probs equal the rollout's. Every step appends one record to the run's ``train_log.jsonl``:
loss, reward (mean and std), KL to the reference (Σ_t log π_old − log π_ref, mean over responses),
response length (tokens before the end-of-turn), the share of responses that ended, the method's own
metrics, wall time and peak memory. Before and after training the policy answers ``eval_prompts``
held-out prompts (sampled with a fixed seed, the same for every run) and the rewards are recorded.

Peak memory is CUDA's peak allocation on a GPU; on a CPU it is the process's peak resident set (Linux's
VmHWM, reset before each step), which includes the weights of every model loaded in the process.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from suite.core.errors import ConfigError, DataError
from suite.core.registry import Registry
from suite.data.records import instruction_text
from suite.method.registry import Component
from suite.modeling.reference import LiveReference
from suite.modeling.sequences import EncodedSequence, encode_prompt, encode_sequence, left_padded_prompts
from suite.training.loop import LoopSettings, StepLoop, training_device

REWARD_MODEL_COMPONENT = "reward_model"
# Held-out answers are sampled with this seed (plus the run's) before and after training, in every run.
HELDOUT_SEED = 1_000_003


# -- measuring --------------------------------------------------------------------------------------



# -- rewards ----------------------------------------------------------------------------------------

# (the prompt's record — its ``completion`` is the data's reference answer —, response text, response ids)
RewardRule = Callable[[object, str, list], float]
REWARD_RULES: Registry[RewardRule] = Registry(
    "reward rule", "reward", hint=" (or 'model': the reward-model component)")


def register_reward_rule(name: str, rule: RewardRule) -> RewardRule:
    """Make ``rule`` available to online methods as ``reward: <name>``."""
    if name == "model":
        raise ValueError("reward rule 'model' is taken: it names the reward-model component")
    return REWARD_RULES.add(name, rule)


def reward_rule(name) -> RewardRule:
    return REWARD_RULES.get(name)


GSM8K_MARKED = re.compile(r"####\s*(-?[\d,]*\.?\d+)")
NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def _canonical_number(text: str) -> str | None:
    try:
        value = float(text.replace(",", "").rstrip("."))
    except ValueError:
        return None
    return str(int(value)) if value.is_integer() else repr(value)


def gsm8k_answer(text: str) -> str | None:
    """The final answer of a GSM8K-style solution: the number after ``####`` if there is one, else the
    last number in the text (lm-eval's strict and flexible extractions, in that order), canonicalised
    (thousands separators dropped, ``42.0`` → ``42``)."""
    marked = GSM8K_MARKED.findall(text)
    candidates = marked or NUMBER.findall(text)
    return _canonical_number(candidates[-1]) if candidates else None


def gsm8k_reward(record, response: str, response_ids: list) -> float:
    """1 when the response's final answer equals the reference's ``#### <answer>``, else 0."""
    reference = GSM8K_MARKED.findall(getattr(record, "completion", "") or "")
    if not reference:
        raise DataError(f"reward gsm8k: the prompt {str(record.prompt)[:80]!r} has no reference answer "
                        "'#### <number>' (use GSM8K data, e.g. dataset gsm8k-train)")
    return 1.0 if gsm8k_answer(response) == _canonical_number(reference[-1]) else 0.0


register_reward_rule("gsm8k", gsm8k_reward)


class ModelReward:
    """r_φ(x, y) from a trained reward model (frozen)."""

    def __init__(self, model, batch_size: int):
        self.model, self.batch_size = model, batch_size

    def __call__(self, sequences: list[EncodedSequence], records: list, texts: list[str], pad_token_id: int):
        from suite.training.reward_model import score_sequences_with

        return torch.tensor(score_sequences_with(self.model, sequences, pad_token_id, self.batch_size))


class RuleReward:
    def __init__(self, rule: RewardRule):
        self.rule = rule

    def __call__(self, sequences: list[EncodedSequence], records: list, texts: list[str], pad_token_id: int):
        return torch.tensor([float(self.rule(record, text, list(seq.input_ids[seq.response_start:])))
                             for seq, record, text in zip(sequences, records, texts)])


def require_reference_answers(records: list, purpose: str) -> None:
    """Every record carries the data's reference answer (``completion``), which ``purpose`` needs."""
    for record in records:
        if not getattr(record, "completion", None):
            raise DataError(f"the prompt {str(record.prompt)[:80]!r} has no reference answer (completion), which "
                            f"{purpose}")


def reference_preferences(judge, records: list, responses: list[str]) -> list[float]:
    """The judge's AlpacaEval preference p ∈ [1, 2] of each response over its record's reference answer."""
    require_reference_answers(records, "the judge compares the response with")
    return judge.preferences([instruction_text(r.prompt) for r in records], [r.completion for r in records],
                             list(responses))


class JudgeReward:
    """Direct RLAIF (Lee et al. 2024, arXiv 2309.00267, §2.3): an AI judge's score is the reward. Here the
    judge's AlpacaEval preference p ∈ [1, 2] for the response over the data's reference answer, rescaled to
    [−1, 1] as the paper rescales its 1–10 score: r = 2 · (p − 1.5)."""

    def __init__(self, judge):
        self.judge = judge

    def __call__(self, sequences: list[EncodedSequence], records: list, texts: list[str], pad_token_id: int):
        return torch.tensor([2.0 * (p - 1.5) for p in reference_preferences(self.judge, records, texts)])


# Reward sources besides a rule: the reward model (a component run) or a judge (``reward_judge``).
REWARD_MODEL, REWARD_JUDGE = "model", "judge"
JUDGE_REWARD_SPECS = ("base",)  # or a judge spec mapping (suite.evaluation.judges)


def reward_components(hp: dict, reward_method: str) -> dict:
    """An online method's components: the reward model it trains against — a run of the registered method
    ``reward_method`` —, when ``reward: model`` (trained once, shared by every method naming the same one);
    none for a rule (checked here, so an unknown rule fails when the config is read)."""
    if hp["reward"] == REWARD_MODEL:
        return {REWARD_MODEL_COMPONENT: Component(reward_method, dict(hp["reward_model_overrides"]),
                                                  hp["reward_model_dataset"])}
    if hp["reward"] == REWARD_JUDGE:
        spec = hp.get("reward_judge")
        if not (spec in JUDGE_REWARD_SPECS or isinstance(spec, dict) and spec.get("type")):
            raise ConfigError(f"reward_judge: expected 'base' or a judge spec mapping with a type, got {spec!r}")
        return {}
    reward_rule(hp["reward"])
    return {}


def build_reward(context, hp: dict, device: torch.device):
    if hp["reward"] == REWARD_JUDGE:  # the judge comes from the run's context (judges are a later stage)
        return JudgeReward(context.judge(hp["reward_judge"]))
    if hp["reward"] == REWARD_MODEL:
        from suite.training.reward_model import load_reward_model

        model, _ = load_reward_model(context.component_dir(REWARD_MODEL_COMPONENT), context.config.train.dtype)
        return ModelReward(model.to(device), context.config.train.reference_batch_size)
    return RuleReward(reward_rule(hp["reward"]))


# -- the batch a method sees ----------------------------------------------------------------------------


@dataclass
class RolloutBatch:
    """Responses sampled from the policy, ``group_size`` per prompt, laid out prompt-major (row i answers
    prompt i // group_size), with what the loop measured on them.

    Rows are right-aligned (padding on the left, explicit ``position_ids``), so every response lies in the
    last ``width`` columns and only those positions' next-token distributions are computed. Per-token
    tensors are [N, width]: entry j is about the token in column T − width + j, 0 off the response;
    ``mask`` marks response tokens (contiguous, ending in the last column). ``old_logps`` are the rollout
    policy's, ``ref_logps`` the reference's, ``old_values`` the value model's (PPO) — the value of the
    state before each token. ``extras`` holds what the method's ``prepare`` computed once per rollout
    (per-row tensors: advantages, returns, …). During an update ``logps`` (and ``values``) hold the
    current policy's (value model's), with gradients.
    """

    group_size: int
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    mask: torch.Tensor
    rewards: torch.Tensor
    old_logps: torch.Tensor
    ref_logps: torch.Tensor
    old_values: torch.Tensor | None = None
    extras: dict = field(default_factory=dict)
    logps: torch.Tensor | None = None
    values: torch.Tensor | None = None
    # With ``OnlineAlgorithm.demonstrations``: each row's prompt with the data's reference answer (right-aligned
    # like the responses, ``demo_mask`` on the answer's tokens) and, during an update, the current policy's
    # per-token log-probs of that answer, with gradients (the likelihood PPO-ptx mixes into its objective).
    demo_input_ids: torch.Tensor | None = None
    demo_attention_mask: torch.Tensor | None = None
    demo_position_ids: torch.Tensor | None = None
    demo_mask: torch.Tensor | None = None
    demo_logps: torch.Tensor | None = None

    @property
    def size(self) -> int:
        return int(self.rewards.shape[0])

    @property
    def width(self) -> int:
        return int(self.mask.shape[-1])

    def sequence_sum(self, per_token: torch.Tensor) -> torch.Tensor:
        """Σ over response tokens, per sequence: sequence log-probs ℓ(y) from per-token ones."""
        return (per_token * self.mask).sum(-1)

    def rows(self, start: int, stop: int) -> "RolloutBatch":
        """Rows start..stop−1 (whole groups when the bounds are multiples of ``group_size``)."""
        n = self.size

        def cut(value):
            return value[start:stop] if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == n else value

        changes = {f.name: cut(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name != "extras"}
        return dataclasses.replace(self, **changes, extras={k: cut(v) for k, v in self.extras.items()})


@dataclass(frozen=True)
class OnlineAlgorithm:
    """What makes one online method: everything else is the shared loop.

    ``samples_per_prompt(hp)`` responses per prompt; ``prepare(batch, hp)`` → per-row tensors computed
    once per rollout without gradients (stored in ``batch.extras``); ``loss(batch, hp)`` → (loss, metrics)
    on a micro-batch whose ``logps`` / ``values`` carry gradients; ``epochs(hp)`` optimizer updates per
    rollout; ``value_model``: train a value model next to the policy (initialised from the reward model
    when there is one — InstructGPT's choice — else from the policy with a zero head).
    """

    samples_per_prompt: Callable[[dict], int]
    prepare: Callable[[RolloutBatch, dict], dict]
    loss: Callable[[RolloutBatch, dict], tuple]
    epochs: Callable[[dict], int] = lambda hp: 1
    value_model: bool = False
    demonstrations: bool = False  # the batch carries the prompts' reference answers (``RolloutBatch.demo_*``)


@dataclass(frozen=True)
class OnlineLoop:
    """A method's ``train_loop``: the shared loop driven by ``algorithm``."""

    algorithm: OnlineAlgorithm

    def __call__(self, context, hyperparameters: dict, records: list, save: bool = True):
        return train_online(context, self.algorithm, hyperparameters, records, save)


# -- generation and scoring -------------------------------------------------------------------------------


@torch.no_grad()
def generate_responses(policy, tokenizer, prompts: list, *, samples: int, max_new_tokens: int, temperature: float,
                       max_prompt_tokens: int, seed: int, batch_size: int) -> list[tuple[list, list, bool]]:
    """(prompt ids, response ids, ended) for ``samples`` responses to each prompt, prompt-major.

    Sampling is plain (temperature, no top-k / top-p; temperature 0 is greedy) and seeded; a response
    ends with its first end-of-turn token, included, or is cut at ``max_new_tokens``.
    """
    from transformers import GenerationConfig

    eos = tokenizer.eos_token_id
    settings = dict(max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
    config = (GenerationConfig(do_sample=True, temperature=temperature, top_k=0, top_p=1.0, **settings)
              if temperature > 0 else GenerationConfig(do_sample=False, **settings))
    jobs = [encode_prompt(tokenizer, prompt)[-max_prompt_tokens:] for prompt in prompts for _ in range(samples)]
    device = next(policy.parameters()).device
    torch.manual_seed(seed)
    results = []
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start : start + batch_size]
        input_ids, attention = left_padded_prompts(chunk, tokenizer.pad_token_id)
        width = input_ids.shape[1]
        output = policy.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                 generation_config=config)[:, width:]
        for ids, row in zip(chunk, output.tolist()):
            ended = eos in row
            results.append((list(ids), row[: row.index(eos) + 1] if ended else row, ended))
    return results


def _chunked(function, tensors: tuple, size: int) -> torch.Tensor:
    return torch.cat([function(*(t[i : i + size] for t in tensors)) for i in range(0, tensors[0].shape[0], size)])


def right_aligned(sequences: list[EncodedSequence], pad_token_id: int) -> dict[str, torch.Tensor]:
    """input_ids, attention_mask, position_ids (counting from each row's first real token) and
    response_mask of ``sequences`` padded on the left, plus ``width``: the longest response."""
    width_all = max(len(s.input_ids) for s in sequences)
    input_ids = torch.full((len(sequences), width_all), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    response_mask = torch.zeros_like(input_ids, dtype=torch.bool)
    for row, seq in enumerate(sequences):
        n = len(seq.input_ids)
        input_ids[row, width_all - n :] = torch.tensor(seq.input_ids)
        attention_mask[row, width_all - n :] = 1
        response_mask[row, width_all - seq.response_length :] = True
    position_ids = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    width = max(s.response_length for s in sequences)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
            "response_mask": response_mask, "width": width}


def response_logps(model, input_ids, attention_mask, position_ids, width: int, temperature: float) -> torch.Tensor:
    """log π(token) for the last ``width`` columns [N, width], under the distribution responses are sampled
    from: the logits divided by the sampling temperature (as TRL's online trainers do), for the policy and
    the reference alike. Only those positions' logits are computed."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False,
                   logits_to_keep=width + 1).logits[:, :-1].float()
    if temperature > 0 and temperature != 1:
        logits = logits / temperature
    targets = input_ids[:, -width:]
    return logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def response_values(value_model, input_ids, attention_mask, position_ids, width: int) -> torch.Tensor:
    """The value model's V(state before each of the last ``width`` tokens) [N, width]."""
    from suite.training.reward_model import classifier_backbone, classifier_head

    hidden = classifier_backbone(value_model)(input_ids=input_ids, attention_mask=attention_mask,
                                              position_ids=position_ids, use_cache=False).last_hidden_state
    return classifier_head(value_model)(hidden[:, -width - 1 : -1]).squeeze(-1).float()


@dataclass
class Sampled:
    """One rollout's responses before the method sees them: sequences, texts, rewards, lengths."""

    sequences: list[EncodedSequence]
    texts: list[str]
    rewards: torch.Tensor
    ended: torch.Tensor
    lengths: torch.Tensor  # tokens before the end-of-turn


def sample_and_score(policy, tokenizer, reward_fn, records: list, *, samples: int, hp: dict, max_length: int,
                     seed: int, batch_size: int) -> Sampled:
    max_new_tokens = int(hp["max_new_tokens"])
    generated = generate_responses(
        policy, tokenizer, [r.prompt for r in records], samples=samples, max_new_tokens=max_new_tokens,
        temperature=float(hp["temperature"]), max_prompt_tokens=max_length - max_new_tokens, seed=seed,
        batch_size=batch_size)
    sequences = [EncodedSequence(tuple(p + y), len(p)) for p, y, _ in generated]
    texts = [tokenizer.decode(y, skip_special_tokens=True) for _, y, _ in generated]
    row_records = [records[i // samples] for i in range(len(generated))]
    rewards = reward_fn(sequences, row_records, texts, tokenizer.pad_token_id).float()
    ended = torch.tensor([e for _, _, e in generated])
    if hp.get("missing_eos_penalty") is not None:  # TRL's option: responses cut at max_new_tokens lose this much
        rewards = rewards - float(hp["missing_eos_penalty"]) * (~ended).float()
    lengths = torch.tensor([len(y) - int(e) for _, y, e in generated], dtype=torch.float32)
    return Sampled(sequences, texts, rewards, ended, lengths)


@torch.no_grad()
def build_rollout(sampled: Sampled, policy, reference: LiveReference, value_model, samples: int, pad_token_id: int,
                  batch_size: int, device: torch.device, temperature: float) -> RolloutBatch:
    aligned = right_aligned(sampled.sequences, pad_token_id)
    width = aligned.pop("width")
    ids, attention, positions, response = (aligned[k].to(device) for k in
                                           ("input_ids", "attention_mask", "position_ids", "response_mask"))
    mask = response[:, -width:]
    tensors = (ids, attention, positions)
    old = _chunked(lambda i, a, p: response_logps(policy, i, a, p, width, temperature), tensors, batch_size)
    with reference.model(policy) as reference_model:
        ref = _chunked(lambda i, a, p: response_logps(reference_model, i, a, p, width, temperature), tensors, batch_size)
    values = None
    if value_model is not None:
        values = _chunked(lambda i, a, p: response_values(value_model, i, a, p, width), tensors, batch_size) * mask
    return RolloutBatch(samples, ids, attention, positions, mask, sampled.rewards.to(device), old * mask, ref * mask,
                        values)


def attach_demonstrations(rollout: RolloutBatch, tokenizer, records: list, samples: int, max_length: int,
                          device: torch.device) -> None:
    """Each rollout row's prompt with its record's reference answer (``completion``), right-aligned, into
    ``rollout.demo_*`` (a prompt's answer repeated for each of its ``samples`` rows, so rows slice together)."""
    require_reference_answers(records, "this method's demonstration likelihood needs")
    sequences = []
    for record in records:
        sequences += [encode_sequence(tokenizer, record.prompt, record.completion, max_length)] * samples
    aligned = right_aligned(sequences, tokenizer.pad_token_id)
    width = aligned.pop("width")
    rollout.demo_input_ids = aligned["input_ids"].to(device)
    rollout.demo_attention_mask = aligned["attention_mask"].to(device)
    rollout.demo_position_ids = aligned["position_ids"].to(device)
    rollout.demo_mask = aligned["response_mask"][:, -width:].to(device)


def heldout_records(context, count: int) -> list:
    """Up to ``count`` held-out prompts of the run's data (one record each, with its reference answer),
    in a fixed order: the same prompts for every run of the experiment."""
    import random

    from suite.data import convert, heldout_split, load_native
    from suite.data.records import prompt_key

    cfg = context.config
    dataset = cfg.dataset if context.run.dataset is None else context.run.dataset
    _, native, _ = load_native(dataset)
    _, held = heldout_split(native, cfg.data.heldout_fraction, cfg.data.split_seed)
    if not held or count == 0:
        return []
    unique = list({prompt_key(r.prompt): r for r in convert(held, "sft", cfg.data.split_seed)}.values())
    random.Random(cfg.data.split_seed).shuffle(unique)
    return unique[:count]


def heldout_reward(policy, tokenizer, reward_fn, records: list, hp: dict, max_length: int, seed: int,
                   batch_size: int) -> dict:
    """Mean reward (and its standard error) of one sampled answer per held-out prompt."""
    if not records:
        return {}
    sampled = sample_and_score(policy, tokenizer, reward_fn, records, samples=1, hp=hp, max_length=max_length,
                               seed=seed, batch_size=batch_size)
    rewards = sampled.rewards
    stderr = rewards.std().item() / math.sqrt(len(rewards)) if len(rewards) > 1 else None
    return {"mean": rewards.mean().item(), "stderr": stderr, "prompts": len(records),
            "response_length": sampled.lengths.mean().item()}


# -- the loop ---------------------------------------------------------------------------------------------


def build_value_model(policy, reward_fn, tokenizer, lora: dict | None):
    from suite.training.reward_model import (
        add_lora_to_classifier,
        classifier_from_causal_lm,
    )

    if isinstance(reward_fn, ModelReward):
        value_model = copy.deepcopy(reward_fn.model).requires_grad_(True)
    else:
        value_model = classifier_from_causal_lm(policy, tokenizer.pad_token_id, zero_head=True)
    if lora is not None:
        value_model = add_lora_to_classifier(value_model, lora)
    return value_model.eval()


def train_online(context, algorithm: OnlineAlgorithm, hp: dict, records: list, save: bool = True):
    """Train the policy with ``algorithm`` (see the module docstring); returns (policy, train summary).

    ``context`` is the run's :class:`suite.execution.context.RunContext`. Optimizer, schedule, clipping,
    finite checks, the step log and checkpoints are :class:`suite.training.loop.StepLoop`'s: a run killed
    mid-training resumes from its last checkpoint (policy, value model, optimizer, schedule, RNG, step)
    to the same result as an uninterrupted run.
    """
    from suite.modeling.models import add_lora

    cfg, run, tokenizer = context.config, context.run, context.tokenizer
    samples, epochs = int(algorithm.samples_per_prompt(hp)), int(algorithm.epochs(hp))
    if samples < 1 or epochs < 1:
        raise ConfigError(f"methods: {run.method.id}: samples per prompt ({samples}) and epochs ({epochs}) must be >= 1")
    if not 0 < int(hp["max_new_tokens"]) < cfg.train.max_length:
        raise ConfigError(f"methods: {run.method.id}: max_new_tokens must be between 1 and train.max_length − 1 "
                          f"({cfg.train.max_length - 1}), got {hp['max_new_tokens']}")
    device = training_device()
    reward_fn = build_reward(context, hp, device)
    policy = context.base_model
    value_model = build_value_model(policy, reward_fn, tokenizer, cfg.train.lora).to(device) \
        if algorithm.value_model else None
    if cfg.train.lora is not None:
        policy = add_lora(policy, cfg.train.lora)
    policy = policy.to(device).eval()  # dropout off: rollout and update log-probs agree
    reference = LiveReference(policy)  # before any checkpoint is restored: the untrained policy

    groups = [{"params": [p for p in policy.parameters() if p.requires_grad], "lr": float(hp["learning_rate"])}]
    if value_model is not None:
        value_lr = hp.get("value_learning_rate") or hp["learning_rate"]
        groups.append({"params": [p for p in value_model.parameters() if p.requires_grad], "lr": float(value_lr)})
    loop = StepLoop(policy, groups, LoopSettings.from_train(cfg.train, updates_per_step=epochs), context.run_dir,
                    device, learners={} if value_model is None else {"value_model": value_model})

    batch_size, temperature = cfg.train.reference_batch_size, float(hp["temperature"])
    eval_records = heldout_records(context, int(hp["eval_prompts"]))
    eval_kwargs = dict(hp=hp, max_length=cfg.train.max_length, seed=HELDOUT_SEED + run.seed, batch_size=batch_size)
    started = time.perf_counter()
    before = heldout_reward(policy, tokenizer, reward_fn, eval_records, **eval_kwargs)  # the untrained policy's
    eval_s = time.perf_counter() - started
    loop.resume()

    prompts_per_step = cfg.train.per_device_batch_size * cfg.train.gradient_accumulation_steps
    micro_rows = cfg.train.per_device_batch_size * samples
    started_all = time.perf_counter()
    for step in loop.steps():
        started = time.perf_counter()
        prompts = [records[((step - 1) * prompts_per_step + i) % len(records)] for i in range(prompts_per_step)]
        sampled = sample_and_score(policy, tokenizer, reward_fn, prompts, samples=samples, hp=hp,
                                   max_length=cfg.train.max_length, seed=run.seed * 100_003 + step,
                                   batch_size=batch_size)
        generation_s = time.perf_counter() - started
        rollout = build_rollout(sampled, policy, reference, value_model, samples, tokenizer.pad_token_id, batch_size,
                                device, temperature)
        if algorithm.demonstrations:
            attach_demonstrations(rollout, tokenizer, prompts, samples, cfg.train.max_length, device)
        with torch.no_grad():
            rollout.extras = algorithm.prepare(rollout, hp)
        totals: dict[str, float] = {}
        for _ in range(epochs):
            for start in range(0, rollout.size, micro_rows):
                part = rollout.rows(start, start + micro_rows)
                weight = part.size / rollout.size / epochs
                inputs = (part.input_ids, part.attention_mask, part.position_ids)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.train.bf16):
                    part.logps = response_logps(policy, *inputs, rollout.width, temperature) * part.mask
                    if value_model is not None:
                        part.values = response_values(value_model, *inputs, rollout.width) * part.mask
                    if part.demo_input_ids is not None:  # the model's own likelihood: no sampling temperature
                        part.demo_logps = response_logps(
                            policy, part.demo_input_ids, part.demo_attention_mask, part.demo_position_ids,
                            part.demo_mask.shape[-1], 1.0) * part.demo_mask
                loss, metrics = algorithm.loss(part, hp)
                (loss * part.size / rollout.size).backward()
                for name, value in {"loss": loss.detach(), **metrics}.items():
                    totals[name] = totals.get(name, 0.0) + float(value) * weight
            grad_norm = loop.update(step, totals["loss"])
        kl = rollout.sequence_sum(rollout.old_logps - rollout.ref_logps)
        loop.end_step(step, {
            **totals,
            "reward": sampled.rewards.mean().item(),
            "reward_std": sampled.rewards.std().item() if len(sampled.rewards) > 1 else 0.0,
            "kl": kl.mean().item(),
            "response_length": sampled.lengths.mean().item(),
            "ended": sampled.ended.float().mean().item(),
            "grad_norm": grad_norm,
            "learning_rate": loop.learning_rate,
            "generation_s": generation_s,
        })
    runtime = time.perf_counter() - started_all

    started = time.perf_counter()
    after = heldout_reward(policy, tokenizer, reward_fn, eval_records, **eval_kwargs)
    context.timings["heldout_reward_s"] = eval_s + time.perf_counter() - started
    context.timings["train_s"] = context.timings.get("train_s", 0.0) + runtime
    del value_model, reward_fn, reference
    if save:
        context.save_model(policy)
    if cfg.train.lora is not None:
        policy = policy.merge_and_unload()  # plain weights for evaluation
    steps = loop.records
    summary = {
        "final_loss": steps[-1]["loss"],
        "mean_loss": sum(r["loss"] for r in steps) / len(steps),
        "steps": len(steps),
        "runtime_s": runtime,
        "seconds_per_step": runtime / max(1, len(steps) - (loop.resumed_from_step or 0)),
        "examples": len(steps) * prompts_per_step,
        "responses": len(steps) * prompts_per_step * samples,
        "reward": {"first_step": steps[0]["reward"], "last_step": steps[-1]["reward"]},
        "kl_last_step": steps[-1]["kl"],
        "heldout_reward": {"before": before, "after": after},
        "peak_memory_mb": loop.log.max("peak_memory_mb"),
        "memory_measure": loop.memory.kind,
        "reward_source": hp["reward"],
    }
    if loop.resumed_from_step is not None:
        summary["resumed_from_step"] = loop.resumed_from_step
    return policy, summary
