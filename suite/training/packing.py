"""Shared-prompt packing: a pair's prompt is run through the model once, not once per response.

The padded layout (``FeedbackCollator``) runs ``[prompt, chosen]`` and ``[prompt, rejected]`` as two rows,
each padded to the longest sequence of the batch. Here every example whose sequences share their prompt
tokens becomes one row ``[prompt, response_1, …, response_K]``; a 4-D attention mask lets each response
attend the prompt and its own earlier tokens only, and position ids restart after the prompt, so every
response token sees exactly the context it sees in its own row. The log-probs are therefore the same
numbers (up to float summation order) computed from fewer tokens: on hh-rlhf pairs at max_length 256 the
prompt is about three quarters of each sequence. Logits are kept only from the first position that
predicts a response token (``logits_to_keep``), so the vocabulary projection skips most prompt positions.

The forward goes through the top-level model (``model(...)``), so DDP / FSDP wrappers and LoRA work as
usual. Packing is off where a method needs the full per-position outputs (a live reference's logits, the
value head's hidden states) and for attention kernels without 4-D masks (FlashAttention).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from suite.modeling.sequences import EncodedSequence

# Extra inputs known not to read the model's per-position outputs (which a packed row does not lay out per
# sequence): KTO's mismatched completions are sequences like any other, the L1 penalty reads the weights.
# Any other (a live reference's logits, the value head's hidden states, one added later) keeps the padded layout.
PACKABLE_EXTRA_INPUTS = frozenset({"mismatched_pairs", "delta_l1"})
MASKED_ATTENTION = ("sdpa", "eager")  # kernels that take a custom 4-D mask
enabled = True  # the benchmark's with/without switch (python -m suite.bench.perf); results are equal either way


def prompt_of(sequence: EncodedSequence) -> tuple[int, ...]:
    return sequence.input_ids[: sequence.response_start]


def packing_applies(method, model) -> bool:
    """Whether ``method`` can train on packed rows of ``model`` (see module docstring)."""
    implementation = getattr(getattr(model, "config", None), "_attn_implementation", None)
    return enabled and method.extra_inputs <= PACKABLE_EXTRA_INPUTS and implementation in MASKED_ATTENTION


@dataclass
class SharedPromptCollator:
    """Packs each example into one row when its sequences share a prompt; the rest of the batch (an
    example whose responses truncated its prompt differently, KTO's mismatched completions) gets one row
    per sequence. Falls back to the padded layout (``fallback``) for a batch with nothing to share.

    Besides the packed rows, the batch says where every sequence's response tokens are, in the order
    of the padded layout ([first sequences…, second sequences…, mismatched…]), so the per-sequence
    log-probs come out exactly as ``FeedbackCollator``'s batch gives them.
    """

    fallback: object  # FeedbackCollator: labels, scores, reference log-probs and the padded layout
    eager_mask_dtype: torch.dtype | None = None  # eager attention adds a float mask; SDPA takes booleans

    def __call__(self, examples: list[dict]) -> dict:
        batch = self.fallback(examples)
        per_example = len(examples[0]["sequences"])
        ordered = [(ex, k) for k in range(per_example) for ex in examples]  # the padded layout's row order
        ordered += [(ex, "mismatched") for ex in examples if "mismatched" in ex]
        rows: list[list[EncodedSequence]] = []  # each row: [prompt-carrying sequences sharing one prompt]
        placed: dict[tuple[int, object], tuple[int, int]] = {}  # (example id, k) -> (row, segment)
        for ex in examples:
            sequences = ex["sequences"]
            if len(sequences) > 1 and len({prompt_of(s) for s in sequences}) == 1:
                placed.update({(id(ex), k): (len(rows), k) for k in range(len(sequences))})
                rows.append(list(sequences))
            else:
                for k, sequence in enumerate(sequences):
                    placed[(id(ex), k)] = (len(rows), 0)
                    rows.append([sequence])
            if "mismatched" in ex:
                placed[(id(ex), "mismatched")] = (len(rows), 0)
                rows.append([ex["mismatched"][0]])
        if len(rows) >= len(ordered):
            return batch  # no prompt is shared: the padded layout is as small
        batch.update(self._pack(rows, [placed[(id(ex), k)] for ex, k in ordered]))
        return batch

    def _pack(self, rows: list[list[EncodedSequence]], order: list[tuple[int, int]]) -> dict:
        width = max(len(prompt_of(row[0])) + sum(s.response_length for s in row) for row in rows)
        input_ids = torch.full((len(rows), width), self.fallback.pad_token_id, dtype=torch.long)
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)
        segment = torch.full((len(rows), width), -1, dtype=torch.long)  # -1 padding, 0 prompt, k+1 response k
        # (row, column that predicts the token, token id) for every response token, per segment
        sources: dict[tuple[int, int], list[int]] = {}
        targets: dict[tuple[int, int], list[int]] = {}
        for r, row in enumerate(rows):
            prompt = prompt_of(row[0])
            p = len(prompt)
            input_ids[r, :p] = torch.tensor(prompt)
            position_ids[r, :p] = torch.arange(p)
            segment[r, :p] = 0
            start = p
            for k, sequence in enumerate(row):
                response = sequence.input_ids[sequence.response_start :]
                n = len(response)
                input_ids[r, start : start + n] = torch.tensor(response)
                position_ids[r, start : start + n] = torch.arange(p, p + n)
                segment[r, start : start + n] = k + 1
                # token j of the response is predicted at the previous token: the prompt's last, then its own
                sources[(r, k)] = [p - 1] + list(range(start, start + n - 1))
                targets[(r, k)] = list(response)
                start += n
        mask = _tree_attention_mask(segment, position_ids)
        if self.eager_mask_dtype is not None:
            mask = torch.zeros(mask.shape, dtype=self.eager_mask_dtype).masked_fill(
                ~mask, torch.finfo(self.eager_mask_dtype).min)
        gather_row, gather_col, target, seq_index, tok_index = [], [], [], [], []
        for n, (r, k) in enumerate(order):
            cols = sources[(r, k)]
            gather_row += [r] * len(cols)
            gather_col += cols
            target += targets[(r, k)]
            seq_index += [n] * len(cols)
            tok_index += range(len(cols))
        first_needed = min(gather_col)
        return {
            "packed_rows": input_ids,
            "packed_position_ids": position_ids,
            "packed_attention_mask": mask,
            # logits are kept for columns first_needed.. only; the gather columns are relative to it
            "packed_logits_to_keep": torch.tensor(width - first_needed),
            "packed_gather_row": torch.tensor(gather_row),
            "packed_gather_col": torch.tensor(gather_col) - first_needed,
            "packed_target": torch.tensor(target),
            "packed_seq_index": torch.tensor(seq_index),
            "packed_tok_index": torch.tensor(tok_index, dtype=torch.long),
            "packed_shape": torch.tensor([len(order), max(len(sources[place]) for place in order)]),
        }


def _tree_attention_mask(segment: torch.Tensor, position_ids: torch.Tensor) -> torch.Tensor:
    """[rows, 1, W, W] booleans: a token attends earlier columns of the prompt and of its own segment.

    Within a row the prompt comes first and each segment is contiguous, so "earlier column" is causal
    order within a segment; padding attends only itself (its outputs are never read, and a row of
    attention with nothing to attend would be NaN).
    """
    width = segment.shape[1]
    columns = torch.arange(width)
    causal = columns.view(1, -1, 1) >= columns.view(1, 1, -1)  # query column >= key column
    query, key = segment.unsqueeze(2), segment.unsqueeze(1)
    visible = causal & (key != -1) & (query != -1) & ((key == 0) | (key == query))
    padding = (segment == -1).unsqueeze(2) & torch.eye(width, dtype=torch.bool).unsqueeze(0)
    return (visible | padding).unsqueeze(1)


def packed_token_logps(model, inputs: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token response log-probs [N, R] (0 beyond a response's length) and their mask, N in the
    padded layout's sequence order, from one forward pass over the packed rows."""
    outputs = model(
        input_ids=inputs["packed_rows"],
        attention_mask=inputs["packed_attention_mask"],
        position_ids=inputs["packed_position_ids"],
        logits_to_keep=int(inputs["packed_logits_to_keep"]),
        use_cache=False,
    )
    logits = outputs.logits[inputs["packed_gather_row"], inputs["packed_gather_col"]].float()  # [M, V]
    target = inputs["packed_target"]
    values = logits.gather(-1, target.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    seq_index, tok_index = inputs["packed_seq_index"], inputs["packed_tok_index"]
    shape = tuple(int(n) for n in inputs["packed_shape"])
    per_token = torch.zeros(shape, dtype=values.dtype, device=values.device).index_put((seq_index, tok_index), values)
    mask = torch.zeros(shape, dtype=torch.bool, device=values.device).index_put(
        (seq_index, tok_index), torch.ones_like(seq_index, dtype=torch.bool))
    return per_token, mask


def choose_collator(method, model, pad_token_id: int):
    """The collator ``train`` uses: packed when the method and model allow it, else the padded layout."""
    from suite.training.collators import FeedbackCollator

    padded = FeedbackCollator(pad_token_id)
    if not packing_applies(method, model):
        return padded
    eager = model.config._attn_implementation == "eager"
    return SharedPromptCollator(padded, eager_mask_dtype=model.dtype if eager else None)
