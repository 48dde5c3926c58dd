"""Tokenising (prompt, response) pairs and scoring them: the per-sequence log-probs every method uses.

A sequence is the chat-templated prompt followed by the response and the end-of-turn token. Only
response tokens are scored: ℓ(y) = Σ_t log π(y_t | x, y_<t).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from suite.data.records import Prompt

FALLBACK_TEMPLATE = "{role}: {content}\n\n"  # for tokenizers without a chat template


@dataclass(frozen=True)
class EncodedSequence:
    input_ids: tuple[int, ...]
    response_start: int  # index of the first response token

    @property
    def response_length(self) -> int:
        return len(self.input_ids) - self.response_start

    @property
    def key(self) -> str:
        """Content hash: the identity of this sequence in the reference log-prob cache."""
        digest = hashlib.sha1(f"{self.response_start}:".encode())
        digest.update(torch.tensor(self.input_ids, dtype=torch.int64).numpy().tobytes())
        return digest.hexdigest()


def prompt_messages(prompt: Prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def encode_prompt(tokenizer, prompt: Prompt) -> list[int]:
    messages = prompt_messages(prompt)
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True)
        if isinstance(ids, dict) or hasattr(ids, "keys"):  # BatchEncoding in recent transformers
            ids = ids["input_ids"]
        return list(ids)
    text = "".join(FALLBACK_TEMPLATE.format(**m) for m in messages) + "assistant: "
    return tokenizer(text, add_special_tokens=True)["input_ids"]


def encode_sequence(tokenizer, prompt: Prompt, response: str, max_length: int) -> EncodedSequence:
    """Prompt ids + response ids + end-of-turn, truncated to ``max_length``.

    When too long, the prompt keeps its last max_length/2 tokens (the turn being answered) and the
    response is cut at the end, as TRL's "keep_end" prompt truncation does.
    """
    prompt_ids = encode_prompt(tokenizer, prompt)
    response_ids = tokenizer(response, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(prompt_ids) + len(response_ids) > max_length:
        prompt_ids = prompt_ids[-max(1, max_length // 2) :] if len(prompt_ids) > max_length // 2 else prompt_ids
        response_ids = response_ids[: max_length - len(prompt_ids)]
    return EncodedSequence(tuple(prompt_ids + response_ids), len(prompt_ids))


def pad_sequences(sequences: list[EncodedSequence], pad_token_id: int) -> dict[str, torch.Tensor]:
    """Right-padded input_ids, attention_mask and response_mask (1 on response tokens)."""
    width = max(len(s.input_ids) for s in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    response_mask = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, seq in enumerate(sequences):
        n = len(seq.input_ids)
        input_ids[row, :n] = torch.tensor(seq.input_ids)
        attention_mask[row, :n] = 1
        response_mask[row, seq.response_start : n] = True
    return {"input_ids": input_ids, "attention_mask": attention_mask, "response_mask": response_mask}


def left_padded_prompts(prompts: list[list[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) of prompt token ids padded on the left, as ``generate`` wants them."""
    width = max(len(ids) for ids in prompts)
    input_ids = torch.full((len(prompts), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, ids in enumerate(prompts):
        input_ids[row, width - len(ids) :] = torch.tensor(ids)
        attention_mask[row, width - len(ids) :] = 1
    return input_ids, attention_mask


def forward_logits(model, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs):
    """The model's outputs with ``logits`` cut to predict tokens 1..T−1 (position t scores token t+1)."""
    outputs = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
    outputs.logits = outputs.logits[:, :-1].float()
    return outputs


def token_logps(logits: torch.Tensor, input_ids: torch.Tensor, response_mask: torch.Tensor):
    """(per-token log-probs of the response tokens, 0 elsewhere; their mask), each [N, T−1].

    log p(token) = logit[token] − logsumexp(logits): avoids materialising a second vocab-sized tensor.
    """
    targets, mask = input_ids[:, 1:], response_mask[:, 1:]
    logps = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return logps * mask, mask


def sequence_logps(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(Σ response-token log-probs, response length) per sequence, in one forward pass."""
    logits = forward_logits(model, input_ids, attention_mask).logits
    per_token, mask = token_logps(logits, input_ids, response_mask)
    return per_token.sum(-1), mask.sum(-1)


def sequence_kl(reference_logits: torch.Tensor, policy_logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ_t KL(π_ref(·|x, y_<t) ‖ π_θ(·|x, y_<t)) over response positions: TDPO's sequential KL, per sequence."""
    reference = torch.log_softmax(reference_logits, dim=-1)
    policy = torch.log_softmax(policy_logits, dim=-1)
    per_position = (reference.exp() * (reference - policy)).sum(-1)
    return (per_position * mask).sum(-1)


@torch.no_grad()
def score_sequences(model, sequences: list[EncodedSequence], pad_token_id: int, batch_size: int = 8) -> list[float]:
    """Summed response log-probs for many sequences (eval mode, length-sorted batches)."""
    was_training = model.training
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i].input_ids))
    results = [0.0] * len(sequences)
    device = next(model.parameters()).device
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        batch = {k: v.to(device) for k, v in pad_sequences([sequences[i] for i in chunk], pad_token_id).items()}
        logps, _ = sequence_logps(model, **batch)
        for index, value in zip(chunk, logps.tolist()):
            results[index] = value
    model.train(was_training)
    return results
