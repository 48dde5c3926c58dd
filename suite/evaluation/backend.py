"""Our lm-eval model: lm-eval's HF backend (``HFLM``) without its repeated work.

lm-eval's HF backend runs every (context, continuation) request as its own padded row, so the context of
a multiple-choice question goes through the model once per answer choice (4× for ARC and HellaSwag, about
7× for TruthfulQA-MC2, whose long preamble is also the same for every question), and the vocabulary
projection and log-softmax run over every context position although only continuation positions are read.
Its generation decodes the whole batch, padding included, until the longest sequence has stopped.

``SharedContextLM`` keeps ``HFLM``'s request handling (tokenisation, ``_encode_pair``, truncation, the
cache hook, generation kwargs, stop sequences and post-processing) and replaces the two inner loops:

* **Log-likelihoods as a token tree.** The requests' input tokens (context + continuation minus its last
  token, left-truncated exactly as ``HFLM`` does) are sorted and inserted into prefix trees (tries) of up
  to ``row_tokens`` nodes (256 by default: a row's attention scores every node against every other, masked
  or not, so rows wider than the requests they share cost more than they save — on one thread 256 beat 1,024
  by 10-15 % on HellaSwag, Winogrande, ARC, MMLU and TruthfulQA; on two, MMLU and TruthfulQA were the same
  within noise); each tree is one row. A 4-D attention mask lets each node attend to its ancestors and itself
  only, and its position id is its depth, so every token sees exactly the context it sees in ``HFLM``'s own
  row: the same log-probs (up to float summation order), with each distinct prefix — a context shared by its
  answer choices, a preamble or few-shot block shared by questions — computed once.
  Logits are projected only at positions that predict a continuation token (``logits_to_keep`` mask).
  A context's answer choices stay in one row, and rows are batched by length, cut where padding plus the
  fixed cost of a forward pass is least (``pack_trees``, ``batch_rows``).
* **Greedy generation with the KV cache, finished sequences dropped.** Contexts are encoded and left-padded
  by ``HFLM.tok_batch_encode``, prefilled once, then decoded one token per step; a sequence leaves the batch
  as soon as it emits an end-of-sequence token, contains a stop sequence or reaches ``max_gen_toks``, and
  padding columns no remaining sequence needs are cut from the cache. Batches are ``generation_batch_size``
  sequences (default 4× the log-likelihood batch size): on a CPU a decoding step costs about the same for
  8 or 32 sequences.

Requests this cannot run exactly like ``HFLM`` go to ``HFLM``'s own code: sampling or extra generation
kwargs, a model whose generation config adds logits processors, seq2seq models, attention kernels without
4-D masks (FlashAttention), thinking-token stripping.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from lm_eval.api.registry import register_model
from lm_eval.models.huggingface import HFLM
from lm_eval.models.utils import (
    Collator,
    handle_stop_sequences,
    normalize_gen_kwargs,
    postprocess_generated_text,
)
from tqdm import tqdm

from suite.core.progress import progress_enabled

BACKEND_NAME = "alignsuite-hf"
# Bump when a change could move a number (what is computed, not how fast): recorded in every run's eval_settings.
BACKEND_VERSION = "1"
MASKED_ATTENTION = ("sdpa", "eager")  # attention kernels that take a custom 4-D mask
GREEDY_KWARGS = {"do_sample", "temperature", "until", "max_gen_toks"}
# generation-config fields whose non-default value makes HF's generate change greedy tokens
PROCESSOR_FIELDS = ("repetition_penalty", "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
                    "min_length", "min_new_tokens", "forced_bos_token_id", "forced_eos_token_id", "suppress_tokens",
                    "begin_suppress_tokens", "sequence_bias", "exponential_decay_length_penalty", "watermarking_config")


@dataclass
class _Request:
    index: int  # position in the caller's list
    key: object  # lm-eval's cache key (None for rolling windows)
    inputs: tuple  # the model's input tokens: context + continuation[:-1], left-truncated like HFLM
    continuation: tuple


@dataclass
class _Tree:
    """One packed row: a prefix tree of token sequences, nodes in insertion order (parents first)."""

    tokens: list = field(default_factory=list)
    parents: list = field(default_factory=list)
    depths: list = field(default_factory=list)
    children: dict = field(default_factory=dict)  # (parent node or -1, token) -> node
    members: list = field(default_factory=list)  # (request, node path of its inputs)

    @classmethod
    def of(cls, requests) -> _Tree:
        tree = cls()
        for request in requests:
            tree.insert(request)
        return tree

    def new_nodes(self, sequence) -> int:
        """How many nodes inserting ``sequence`` would add."""
        node = -1
        for depth, token in enumerate(sequence):
            node = self.children.get((node, token))
            if node is None:
                return len(sequence) - depth
        return 0

    def insert(self, request: _Request) -> None:
        node, path = -1, []
        for depth, token in enumerate(request.inputs):
            child = self.children.get((node, token))
            if child is None:
                child = len(self.tokens)
                self.children[(node, token)] = child
                self.tokens.append(token)
                self.parents.append(node)
                self.depths.append(depth)
            path.append(child)
            node = child
        self.members.append((request, path))

    def ancestor_mask(self, width: int) -> np.ndarray:
        """[width, width] booleans: node j sees its ancestors and itself; padding sees itself only."""
        mask = np.zeros((width, width), dtype=bool)
        mask[np.arange(width), np.arange(width)] = True
        for j, parent in enumerate(self.parents):
            if parent >= 0:
                mask[j] |= mask[parent]
        return mask


def pack_trees(requests: list[_Request], row_tokens: int) -> list[_Tree]:
    """Requests in token order (shared prefixes adjacent), each tree filled up to ``row_tokens`` nodes; a
    request longer than that gets a tree of its own, which the requests sharing at least half of its tokens
    (its other answer choices, the next question after the same few-shot block) join up to twice the longest
    request's length: with the budget alone, each answer choice of a context longer than ``row_tokens`` (v2's
    5-shot MMLU-Pro, 3-shot BBH) would run that context again in a row of its own.

    When a request does not fit, the requests of the full tree that share its prefix (the earlier answer
    choices of its context) move with it to the next tree if they fit there, so a context is not split
    across two rows and computed twice (HellaSwag's context and four endings: 12 % fewer tokens)."""
    trees, current, longest = [], _Tree(), 0
    for request in sorted(requests, key=lambda r: (r.inputs, r.continuation)):
        added = current.new_nodes(request.inputs)
        length = len(request.inputs)
        budget = max(row_tokens, 2 * max(longest, length)) if 2 * (length - added) >= length else row_tokens
        if current.members and len(current.tokens) + added > budget:
            kept, moved = _split_off_open_group(current, request, length - added, budget)
            trees.append(kept)
            current = moved
            longest = max((len(r.inputs) for r, _ in moved.members), default=0)
        current.insert(request)
        longest = max(longest, length)
    if current.members:
        trees.append(current)
    return trees


def _split_off_open_group(tree: _Tree, request: _Request, shared: int, budget: int) -> tuple[_Tree, _Tree]:
    """(the full tree, the next tree): the tree's last members that share ``request``'s first ``shared``
    tokens start the next tree, unless they are the whole tree or would not fit ``budget`` nodes with
    ``request``."""
    if not shared:
        return tree, _Tree()
    prefix = request.inputs[:shared]
    start = len(tree.members)
    while start > 0 and tree.members[start - 1][0].inputs[:shared] == prefix:
        start -= 1
    if start in (0, len(tree.members)):
        return tree, _Tree()
    group = _Tree.of([r for r, _ in tree.members[start:]])
    if len(group.tokens) + group.new_nodes(request.inputs) > budget:
        return tree, _Tree()
    return _Tree.of([r for r, _ in tree.members[:start]]), group


# A forward pass costs about as much as this many more tokens whatever its size (it streams every weight
# once): SmolLM2-135M on 2 CPU cores, 0.13 s a pass + 1/450 s a token.
FORWARD_COST_TOKENS = 64


def batch_rows(trees: list[_Tree], max_rows: int, batch_tokens: int) -> list[list[_Tree]]:
    """Rows sorted by length, cut into batches of at most ``max_rows`` rows and ``batch_tokens`` padded
    tokens (a row longer than that alone) where the padded tokens plus ``FORWARD_COST_TOKENS`` a batch are
    fewest (a dynamic programme over the cut points: a batch pads its rows to its longest)."""
    rows = sorted(trees, key=lambda t: -len(t.tokens))
    lengths = [len(t.tokens) for t in rows]
    cost = [0] + [None] * len(rows)  # cost[j]: cheapest batching of the j longest rows
    start = [0] * (len(rows) + 1)  # start[j]: first row of the last batch in it
    for end in range(1, len(rows) + 1):
        for first in range(end - 1, max(-1, end - 1 - max_rows), -1):
            size, width = end - first, lengths[first]
            if size > 1 and size * width > batch_tokens:
                break
            candidate = cost[first] + FORWARD_COST_TOKENS + size * width
            if cost[end] is None or candidate < cost[end]:
                cost[end], start[end] = candidate, first
    batches, end = [], len(rows)
    while end > 0:
        batches.append(rows[start[end]:end])
        end = start[end]
    return batches[::-1]


@register_model(BACKEND_NAME)
class SharedContextLM(HFLM):
    """lm-eval's ``HFLM`` with shared-context log-likelihoods and cache-based greedy generation (see the
    module docstring). Extra arguments: ``row_tokens`` (nodes per packed row), ``batch_tokens`` (padded
    tokens per forward pass), ``generation_batch_size`` (sequences decoded together)."""

    def __init__(self, *args, row_tokens: int = 256, batch_tokens: int | None = None,
                 generation_batch_size: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.row_tokens = int(row_tokens)
        # up to 8 full rows a forward pass: narrow rows, but matmuls large enough to keep both cores busy
        self.batch_tokens = int(batch_tokens) if batch_tokens else 8 * self.row_tokens
        rows = self.batch_size if isinstance(self.batch_size, int) else 8  # "auto" sizes: a fixed default
        self.max_rows = max(1, rows)
        self.generation_batch_size = int(generation_batch_size) if generation_batch_size else 4 * self.max_rows
        self.stats = {"loglikelihood_requests": 0, "request_tokens": 0, "computed_tokens": 0, "forwards": 0,
                      "generated_tokens": 0, "fallback_requests": 0}

    # -- log-likelihoods ---------------------------------------------------------------------------------

    def _packs(self) -> bool:
        implementation = getattr(self.model.config, "_attn_implementation", None)
        return self.backend == "causal" and implementation in MASKED_ATTENTION

    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, override_bs: int | None = None):
        if not self._packs():
            self.stats["fallback_requests"] += len(requests)
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        items = []
        for index, (key, context, continuation) in enumerate(requests):
            assert len(context) > 0 and len(continuation) > 0 and len(continuation) <= self.max_length
            window = (list(context) + list(continuation))[-(self.max_length + 1):]  # HFLM's left truncation
            items.append(_Request(index, key, tuple(window[:-1]), tuple(continuation)))
        trees = pack_trees(items, self.row_tokens)
        results: list = [None] * len(items)
        pbar = tqdm(total=len(items), disable=(disable_tqdm or self.rank != 0 or not progress_enabled()),
                    desc="evaluation: loglikelihood requests")
        for batch in batch_rows(trees, self.max_rows, self.batch_tokens):
            for request, answer in self._score_rows(batch):
                results[request.index] = answer
                if request.key is not None:  # kept as it comes: a killed evaluation resumes from here
                    self.cache_hook.add_partial("loglikelihood", request.key, answer)
                pbar.update(1)
        pbar.close()
        self.stats["loglikelihood_requests"] += len(items)
        self.stats["request_tokens"] += sum(len(i.inputs) for i in items)
        self.stats["computed_tokens"] += sum(len(t.tokens) for t in trees)
        return results

    def _score_rows(self, rows: list[_Tree]):
        width = max(len(t.tokens) for t in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eot_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        mask = torch.from_numpy(np.stack([t.ancestor_mask(width) for t in rows])).unsqueeze(1)
        keep = torch.zeros((len(rows), width), dtype=torch.bool)
        for r, tree in enumerate(rows):
            n = len(tree.tokens)
            input_ids[r, :n] = torch.tensor(tree.tokens)
            positions[r, :n] = torch.tensor(tree.depths)
            for request, path in tree.members:
                keep[r, path[len(path) - len(request.continuation):]] = True
        if self.model.config._attn_implementation == "eager":  # eager attention adds a float mask
            dtype = self.model.dtype
            mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
        device = self.device
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            logits = self._logits_at(input_ids.to(device), mask.to(device), positions.to(device), keep.to(device))
        logprobs = F.log_softmax(logits, dim=-1, dtype=self.softmax_dtype)  # [kept positions, vocab]
        greedy = logprobs.argmax(dim=-1).cpu()
        # flat index of each kept (row, column), in the row-major order the kept logits come in
        flat = torch.full((len(rows), width), -1, dtype=torch.long)
        flat[keep] = torch.arange(int(keep.sum()))
        self.stats["forwards"] += 1
        for r, tree in enumerate(rows):
            for request, path in tree.members:
                where = flat[r, path[len(path) - len(request.continuation):]].to(logprobs.device)
                target = torch.tensor(request.continuation, dtype=torch.long, device=logprobs.device)
                values = logprobs[where].gather(-1, target.unsqueeze(-1)).squeeze(-1)
                yield request, (float(values.sum()), bool((greedy[where.cpu()] == target.cpu()).all()))

    def _logits_at(self, input_ids, mask, positions, keep):
        """Logits at the ``keep`` positions only, flattened row-major: [kept, vocab]."""
        if "logits_to_keep" in inspect.signature(self._forward_model().forward).parameters:
            out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                             logits_to_keep=keep, use_cache=False)
            return out.logits.reshape(-1, out.logits.shape[-1])
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False)
        return out.logits[keep]

    def _forward_model(self):
        """The causal LM under a PEFT wrapper (whose forward passes extra kwargs through)."""
        model = self.model
        while hasattr(model, "get_base_model") and model.get_base_model() is not model:
            model = model.get_base_model()
        return model

    # -- generation --------------------------------------------------------------------------------------

    def _greedy_plain(self, gen_kwargs: dict) -> bool:
        """Whether HF's generate would decode these kwargs greedily with no logits processor."""
        if self.backend != "causal" or self.think_end_token is not None:
            return False
        kwargs = normalize_gen_kwargs(gen_kwargs, self.max_gen_toks)
        if set(kwargs) - GREEDY_KWARGS or kwargs.get("do_sample"):
            return False
        from transformers import GenerationConfig

        config, default = self.model.generation_config, GenerationConfig()
        return all(getattr(config, name, None) == getattr(default, name, None) for name in PROCESSOR_FIELDS)

    def generate_until(self, requests, disable_tqdm: bool = False):
        ours = [i for i, r in enumerate(requests) if self._greedy_plain(r.args[1])]
        others = [i for i in range(len(requests)) if i not in set(ours)]
        results: list = [None] * len(requests)
        if others:
            self.stats["fallback_requests"] += len(others)
            for i, text in zip(others, super().generate_until([requests[i] for i in others], disable_tqdm)):
                results[i] = text
        if not ours:
            return results
        collator = Collator([requests[i].args for i in ours], sort_fn=lambda req: (-len(self.tok_encode(req[0])), req[0]),
                            group_by="gen_kwargs", group_fn=lambda req: req[1])
        eos = self.tok_decode(self.eot_token_id, skip_special_tokens=False)
        pbar = tqdm(total=len(ours), disable=(disable_tqdm or self.rank != 0 or not progress_enabled()),
                    desc="evaluation: generate_until requests")
        texts = []
        for chunk in collator.get_batched(n=self.generation_batch_size):
            contexts, all_kwargs = zip(*chunk)
            kwargs = normalize_gen_kwargs(all_kwargs[0], self.max_gen_toks)
            until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
            max_gen_toks = kwargs.pop("max_gen_toks")
            max_ctx_len = self.max_length - max_gen_toks
            assert max_ctx_len > 0, f"max_gen_toks {max_gen_toks} leaves no room for a context of max_length {self.max_length}"
            input_ids, attention = self.tok_batch_encode(list(contexts), left_truncate_len=max_ctx_len,
                                                         truncation=self.truncation)
            for context, tokens in zip(contexts, self._greedy_decode(input_ids, attention, until, max_gen_toks)):
                text = postprocess_generated_text(self.tok_decode(tokens), stop=until, think_end_token=None)
                texts.append(text)
                self.cache_hook.add_partial("generate_until", (context, all_kwargs[0]), text)
                pbar.update(1)
        pbar.close()
        for i, text in zip(ours, collator.get_original(texts)):
            results[i] = text
        return results

    def _eos_ids(self) -> set:
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.eot_token_id
        return set(eos) if isinstance(eos, (list, tuple)) else {int(eos)}

    def _greedy_decode(self, input_ids, attention, until: list[str], max_gen_toks: int) -> list[list[int]]:
        """Greedy tokens of each left-padded context, each stopped on its own: at an end-of-sequence token,
        once its text contains a stop sequence, or after ``max_gen_toks`` tokens."""
        from transformers import DynamicCache

        device = self.device
        input_ids, attention = input_ids.to(device), attention.to(device)
        batch = input_ids.shape[0]
        generated: list[list[int]] = [[] for _ in range(batch)]
        active = list(range(batch))  # caller's index of each row still in the batch
        eos_ids = self._eos_ids()
        stops = [s for s in until if s]
        positions = (attention.long().cumsum(-1) - 1).masked_fill(attention == 0, 0)
        cache = DynamicCache(config=self.model.config)
        step_input, step_positions = input_ids, positions
        with torch.no_grad(), torch.autocast(device_type=device.type, dtype=self.mixed_precision_dtype,
                                             enabled=self.mixed_precision_dtype is not None):
            while active:
                out = self.model(input_ids=step_input, attention_mask=attention, position_ids=step_positions,
                                 cache=cache, use_cache=True, logits_to_keep=1)
                next_tokens = out.logits[:, -1, :].argmax(dim=-1)
                keep = []
                for row, token in enumerate(next_tokens.tolist()):
                    tokens = generated[active[row]]
                    tokens.append(token)
                    self.stats["generated_tokens"] += 1
                    done = token in eos_ids or len(tokens) >= max_gen_toks or (
                        stops and any(s in self.tok_decode(tokens, skip_special_tokens=False) for s in stops))
                    if not done:
                        keep.append(row)
                if len(keep) < len(active):
                    if not keep:
                        break
                    index = torch.tensor(keep, device=device)
                    cache.batch_select_indices(index)
                    attention, next_tokens = attention[index], next_tokens[index]
                    step_positions = step_positions[index]
                    active = [active[row] for row in keep]
                    attention = self._trim_padding(cache, attention)
                attention = torch.cat([attention, attention.new_ones((len(active), 1))], dim=1)
                step_input = next_tokens.unsqueeze(1)
                step_positions = step_positions[:, -1:] + 1
        return generated

    @staticmethod
    def _trim_padding(cache, attention):
        """Cut the left-padding columns that no remaining sequence needs from the mask and the cache."""
        seen = attention.any(dim=0).nonzero()
        start = int(seen[0]) if len(seen) else 0
        layers = getattr(cache, "layers", None)
        if start == 0 or not layers or any(type(layer).__name__ != "DynamicLayer" for layer in layers):
            return attention
        for layer in layers:
            if layer.is_initialized:
                layer.keys = layer.keys[..., start:, :]
                layer.values = layer.values[..., start:, :]
        return attention[:, start:]
