"""Alignment metrics on held-out preference pairs, for every model, with the base model as reference.

- ``reward_accuracy``: share of pairs whose implicit reward margin h = Δ(y_w) − Δ(y_l) is positive
  (ties count one half, so the base model itself scores exactly 0.5);
- ``reward_margin``: mean h (β = 1, so methods with different β are comparable);
- ``logp_accuracy``: share of pairs where the model alone gives y_w a higher log-prob than y_l
  (meaningful for the base model too);
- ``logratio_mean``: mean Δ(y) = ℓ(y) − ℓ_ref(y) over all held-out responses, a KL proxy;
- ``response_length``: mean length in tokens of greedy answers to held-out prompts.

With ``keep_pairs`` the per-pair values behind these means are kept too (``pair_details``), so reports
can put bootstrap intervals on them and compare two models pair by pair.
"""

from __future__ import annotations

import hashlib
import json

import torch

from suite.core.progress import ProgressLine
from suite.data.records import PairwiseRecord
from suite.modeling.reference import ReferenceCache
from suite.modeling.sequences import (
    encode_prompt,
    encode_sequence,
    left_padded_prompts,
    score_sequences,
)


def pair_metrics(
    policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor
) -> dict:
    """The pairwise metrics above from per-pair log-prob tensors (pure; tested on hand values)."""
    chosen_ratio, rejected_ratio = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    margin = chosen_ratio - rejected_ratio
    accuracy = (margin > 0).float() + 0.5 * (margin == 0).float()
    return {
        "reward_accuracy": accuracy.mean().item(),
        "reward_margin": margin.mean().item(),
        "logp_accuracy": (policy_chosen > policy_rejected).float().mean().item(),
        "logratio_mean": torch.cat([chosen_ratio, rejected_ratio]).mean().item(),
        "pairs": int(margin.numel()),
    }


def pair_details(
    policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor, ref_rejected: torch.Tensor
) -> dict:
    """Per-pair lists behind ``pair_metrics``: the implicit reward margin h, the log-ratios Δ(y_w) and
    Δ(y_l), and the policy's own log-prob margin ℓ(y_w) − ℓ(y_l) (pure; its means are pair_metrics')."""
    chosen_ratio, rejected_ratio = policy_chosen - ref_chosen, policy_rejected - ref_rejected
    return {
        "reward_margin": (chosen_ratio - rejected_ratio).tolist(),
        "chosen_logratio": chosen_ratio.tolist(),
        "rejected_logratio": rejected_ratio.tolist(),
        "logp_margin": (policy_chosen - policy_rejected).tolist(),
    }


def pair_id(pair: PairwiseRecord) -> str:
    """A short content hash of a held-out pair: paired comparisons check they compare the same pairs."""
    text = json.dumps([pair.prompt, pair.chosen, pair.rejected], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@torch.no_grad()
def mean_response_length(model, tokenizer, prompts: list, max_new_tokens: int, batch_size: int = 8) -> float:
    """Mean number of generated tokens (greedy, up to the end-of-turn token) over ``prompts``."""
    if not prompts:
        return float("nan")
    model.eval()
    device = next(model.parameters()).device
    lengths = []
    progress = ProgressLine("generation (response length)", len(prompts), "prompts")
    for start in range(0, len(prompts), batch_size):
        progress.update(done=start)
        encoded = [encode_prompt(tokenizer, p) for p in prompts[start : start + batch_size]]
        input_ids, attention = left_padded_prompts(encoded, tokenizer.pad_token_id)
        width = input_ids.shape[1]
        output = model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention.to(device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )[:, width:]
        for row in output.tolist():
            length = row.index(tokenizer.eos_token_id) if tokenizer.eos_token_id in row else len(row)
            lengths.append(length)
    progress.update(done=len(prompts))
    progress.close()
    return sum(lengths) / len(lengths)


def alignment_metrics(
    model,
    tokenizer,
    pairs: list[PairwiseRecord],
    reference_cache: ReferenceCache,
    reference_model,
    *,
    max_length: int,
    generation_prompts: int,
    max_new_tokens: int,
    batch_size: int = 8,
    is_reference: bool = False,
    keep_pairs: bool = False,
) -> dict:
    """All metrics for ``model`` on held-out ``pairs``; the reference log-probs come from the cache.
    ``keep_pairs`` adds ``per_pair``: ``pair_details`` plus each pair's ``pair_id``."""
    metrics: dict = {}
    if pairs:
        chosen = [encode_sequence(tokenizer, p.prompt, p.chosen, max_length) for p in pairs]
        rejected = [encode_sequence(tokenizer, p.prompt, p.rejected, max_length) for p in pairs]
        ref = torch.tensor(reference_cache.logps(reference_model, chosen + rejected, tokenizer.pad_token_id, batch_size))
        if is_reference:  # the base model is its own reference: reuse the cached values
            policy = ref.clone()
        else:
            policy = torch.tensor(score_sequences(model, chosen + rejected, tokenizer.pad_token_id, batch_size))
        n = len(pairs)
        metrics.update(pair_metrics(policy[:n], policy[n:], ref[:n], ref[n:]))
        if keep_pairs:
            metrics["per_pair"] = {"pair_id": [pair_id(p) for p in pairs],
                                   **pair_details(policy[:n], policy[n:], ref[:n], ref[n:])}
    prompts = list(dict.fromkeys(_hashable(p.prompt) for p in pairs))[:generation_prompts]
    if prompts:
        metrics["response_length"] = mean_response_length(
            model, tokenizer, [_unhashable(p) for p in prompts], max_new_tokens, batch_size
        )
        metrics["generation_prompts"] = len(prompts)
    return metrics


def _hashable(prompt):
    return prompt if isinstance(prompt, str) else tuple(tuple(sorted(m.items())) for m in prompt)


def _unhashable(prompt):
    return prompt if isinstance(prompt, str) else [dict(m) for m in prompt]
