"""TRL as a parity oracle for our losses: TRL's own loss code, run on synthetic log-probs.

Pinned version
--------------
The oracle targets **TRL 1.16.0**, the version pinned in ``pyproject.toml``'s ``test`` extra
(``trl==1.16.0``). TRL moves its loss code between releases (1.x inlined the DPO losses into
``DPOTrainer._compute_loss``, moved ORPO/CPO to ``trl.experimental`` and dropped the ``bco_pair``
running mean), so the attribute lists below are written against that source;
:func:`require_pinned_trl` makes the parity tests fail loudly on any other version instead of
quietly comparing against different code.

How it works
------------
No trainer is constructed and nothing is trained. For each TRL trainer we create the object with
``object.__new__`` (skipping ``__init__``, which wants a real model, tokenizer and dataset) and set
only the attributes the loss method reads, with the values ``__init__`` would derive from the
config. Then we call TRL's real method:

* **DPO** — ``DPOTrainer._compute_loss(model, inputs, return_outputs=False)``, the method that holds
  every DPO-family loss type inline. ``model`` is a stub of a causal LM patched by TRL's
  ``add_fused_lm_head``: called with ``labels=...`` and ``fused_lm_head=True`` it returns a
  :class:`trl.trainer.utils.FusedCausalLMOutput` whose ``log_probs`` are our per-token
  log-probabilities ``[2B, T-1]`` (chosen block, then rejected block), zeroed wherever TRL's labels
  are ``-100`` — exactly the contract of the real fused head. TRL itself builds the labels from the
  completion mask, sums the per-token log-probs, splits chosen/rejected, reads the cached
  reference sums ``ref_chosen_logps`` / ``ref_rejected_logps`` (``precompute_ref_logps=True``) and
  returns ``per_sequence_loss.mean()``. Per-pair losses are read by calling it on one-pair batches
  (valid for every loss type except ``aot``, which sorts across the batch and is compared on the
  batch mean only). Attributes set: ``loss_types``, ``loss_weights``, ``beta``,
  ``label_smoothing``, ``f_divergence_type="reverse_kl"``, ``f_alpha_divergence_coef``,
  ``ld_alpha=None``, ``use_weighting=False``, ``precompute_ref_logps=True``,
  ``aux_loss_enabled=False``, ``args.discopop_tau``, and the logging plumbing ``accelerator``
  (identity gathers on CPU), ``model`` (for ``.training``), ``_metrics``, ``_total_train_tokens``,
  ``_tp_size``. TRL's logged ``rewards/chosen`` / ``rewards/rejected`` are returned too.
* **KTO / APO-zero unpaired** — ``KTOTrainer._compute_loss`` with the same stub model, which
  answers both TRL forwards: the batch itself and the mismatched ("KL") batch, told apart by their
  ``input_ids``. TRL estimates KL from the mismatched batch (mean, clamped at 0, no gradient),
  splits desirable/undesirable, weights them and returns ``losses.nanmean()``; the KL estimate is
  read back from ``_metrics``. Since the KL batch is a separate tensor, per-example losses are read
  by calling TRL with one example and the full KL batch. Attributes set: ``loss_type``, ``beta``,
  ``desirable_weight``, ``undesirable_weight``, ``calculate_KL`` (``False`` for
  ``apo_zero_unpaired``, as ``__init__`` sets it), ``precompute_ref_logps=True``, plus the plumbing.
* **ORPO** — ``ORPOTrainer.odds_ratio_loss`` on given mean log-probs, and the whole
  ``ORPOTrainer.get_batch_loss_metrics`` (concatenation, ``get_batch_logps`` with length
  averaging, the chosen NLL over prompt+response by ``nn.CrossEntropyLoss``, and
  ``loss = nll - mean(β·log σ(log odds))``) with a stub model that returns fixed logits
  ``[2B, T, V]``. Attributes: ``beta``, ``is_encoder_decoder=False``, ``padding_value``,
  ``aux_loss_enabled=False``, ``accelerator``. Note: ``odds_ratio_loss`` upcasts to float32
  (``.float()``), so ORPO comparisons are float32-accurate, not float64.
* **CPO / SimPO** — ``CPOTrainer.cpo_loss`` on given log-probs (sums for ``sigmoid``,
  length-averages for ``simpo``, as ``concatenated_forward`` would pass them), and the whole
  ``CPOTrainer.get_batch_loss_metrics`` (``loss = mean(losses) + cpo_alpha · NLL`` with the NLL over
  chosen completion tokens) on stub logits. Attributes: ``loss_type``, ``beta``,
  ``label_smoothing``, ``simpo_gamma``, ``cpo_alpha``, ``alpha=0.0`` (no AlphaPO transform),
  ``is_encoder_decoder=False``, ``pad_token_id``, ``aux_loss_enabled=False``, ``accelerator``.

Synthetic data
--------------
:func:`make_pair_batch` / :func:`make_unpaired_batch` draw per-token log-probs and a completion mask
with varied prompt and completion lengths (and right padding), so sequence sums and per-token means
differ; ``regime="extreme"`` scales each row's per-token log-probs by ~1e-3 or 15-25× so sequence
log-ratios reach ± hundreds of nats. :func:`make_logit_batch` draws logits and token ids for the
ORPO/CPO forward path. The ``*_sums``/``*_lengths`` helpers compute what our loss functions take
from the very tensors TRL sees.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from types import SimpleNamespace

import torch

TRL_VERSION = "1.16.0"


def require_pinned_trl() -> None:
    import trl

    if trl.__version__ != TRL_VERSION:
        raise AssertionError(
            f"the TRL parity oracle is written against trl=={TRL_VERSION} (pyproject's test extra); "
            f"found trl=={trl.__version__}: re-read TRL's loss code and update tests/support/trl_oracle.py"
        )


# ---------------------------------------------------------------------------------------------
# Synthetic batches
# ---------------------------------------------------------------------------------------------


def _neg_logps(gen: torch.Generator, shape, regime: str, dtype) -> torch.Tensor:
    """Per-token log-probs (< 0), Exp(1)-distributed magnitudes. Extreme: each row scaled either by
    ~1e-3 (near-certain tokens) or by 15-25x (very unlikely ones), so sequence log-ratios reach
    ±hundreds of nats and β·h saturates every sigmoid."""
    base = -torch.empty(shape, dtype=dtype).exponential_(1.0, generator=gen) - 1e-4
    if regime == "moderate":
        return base
    if regime == "extreme":
        big = 15.0 + 10.0 * torch.rand(shape[0], 1, generator=gen, dtype=dtype)
        tiny = 1e-3 * torch.rand(shape[0], 1, generator=gen, dtype=dtype) + 1e-4
        scale = torch.where(torch.rand(shape[0], 1, generator=gen) < 0.5, big, tiny)
        return base * scale
    raise ValueError(regime)


def _completion_mask(gen: torch.Generator, rows: int, seq_len: int, max_completion: int | None = None) -> torch.Tensor:
    """[rows, seq_len] completion mask: prompt of ≥1 token, completion of ≥1 token, then padding."""
    mask = torch.zeros(rows, seq_len, dtype=torch.long)
    for i in range(rows):
        prompt = int(torch.randint(1, seq_len // 2, (1,), generator=gen))
        longest = seq_len - prompt if max_completion is None else min(max_completion, seq_len - prompt)
        length = int(torch.randint(1, longest + 1, (1,), generator=gen))
        mask[i, prompt : prompt + length] = 1
    return mask


def _attention_mask(completion_mask: torch.Tensor) -> torch.Tensor:
    """Attend to everything up to the end of the completion (right padding after it)."""
    last = torch.arange(completion_mask.size(1)) * completion_mask
    end = last.max(dim=1).values + 1
    return (torch.arange(completion_mask.size(1)).unsqueeze(0) < end.unsqueeze(1)).long()


@dataclass
class TokenBatch:
    """Rows of per-token log-probs, TRL-style: ``tokens[:, t]`` is the log-prob of ``input_ids[:, t+1]``."""

    input_ids: torch.Tensor  # [N, T]
    attention_mask: torch.Tensor  # [N, T]
    completion_mask: torch.Tensor  # [N, T]
    policy_tokens: torch.Tensor  # [N, T-1]
    reference_tokens: torch.Tensor  # [N, T-1]

    @property
    def shift_mask(self) -> torch.Tensor:
        return self.completion_mask[:, 1:].to(self.policy_tokens.dtype)

    @property
    def policy_sums(self) -> torch.Tensor:
        return (self.policy_tokens * self.shift_mask).sum(dim=1)

    @property
    def reference_sums(self) -> torch.Tensor:
        return (self.reference_tokens * self.shift_mask).sum(dim=1)

    @property
    def lengths(self) -> torch.Tensor:
        return self.completion_mask[:, 1:].sum(dim=1)

    def rows(self, index) -> "TokenBatch":
        index = torch.as_tensor(index)
        return TokenBatch(*(t.index_select(0, index) for t in (
            self.input_ids, self.attention_mask, self.completion_mask, self.policy_tokens, self.reference_tokens
        )))


def _token_batch(gen, rows, seq_len, regime, dtype, vocab=50, max_completion=None) -> TokenBatch:
    completion_mask = _completion_mask(gen, rows, seq_len, max_completion)
    return TokenBatch(
        input_ids=torch.randint(0, vocab, (rows, seq_len), generator=gen),
        attention_mask=_attention_mask(completion_mask),
        completion_mask=completion_mask,
        policy_tokens=_neg_logps(gen, (rows, seq_len - 1), regime, dtype),
        reference_tokens=_neg_logps(gen, (rows, seq_len - 1), regime, dtype),
    )


@dataclass
class PairBatch:
    """B preference pairs as TRL's DPO collator lays them out: rows [0, B) chosen, [B, 2B) rejected."""

    tokens: TokenBatch

    @property
    def size(self) -> int:
        return self.tokens.input_ids.size(0) // 2

    def _split(self, t):
        return t[: self.size], t[self.size :]

    def sums(self):
        """(policy_chosen, policy_rejected, reference_chosen, reference_rejected) sequence sums."""
        return (*self._split(self.tokens.policy_sums), *self._split(self.tokens.reference_sums))

    def lengths(self):
        """(chosen_lengths, rejected_lengths): completion token counts."""
        return self._split(self.tokens.lengths)

    def mean_logps(self):
        """(policy_chosen, policy_rejected) per-token averages."""
        pc, pr, _, _ = self.sums()
        lc, lr = self.lengths()
        return pc / lc, pr / lr

    def pair(self, i: int) -> "PairBatch":
        return PairBatch(self.tokens.rows([i, self.size + i]))


def make_pair_batch(seed: int, batch_size: int, seq_len: int = 16, regime: str = "moderate",
                    dtype=torch.float64, max_completion: int | None = None) -> PairBatch:
    gen = torch.Generator().manual_seed(seed)
    return PairBatch(_token_batch(gen, 2 * batch_size, seq_len, regime, dtype, max_completion=max_completion))


@dataclass
class UnpairedBatch:
    """KTO-style batch: examples with binary labels, plus the mismatched (prompt_i, y_j) KL batch."""

    examples: TokenBatch
    labels: torch.Tensor  # [N] bool, True = desirable
    mismatched: TokenBatch


def make_unpaired_batch(seed: int, size: int, seq_len: int = 16, regime: str = "moderate",
                        dtype=torch.float64) -> UnpairedBatch:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.rand(size, generator=gen) < 0.5
    labels[0], labels[-1] = True, False  # both kinds present
    examples = _token_batch(gen, size, seq_len, regime, dtype)
    mismatched = _token_batch(gen, size, seq_len + 3, regime, dtype, vocab=50)
    mismatched.input_ids += 1000  # distinct ids: the stub model tells the two forwards apart by them
    return UnpairedBatch(examples, labels, mismatched)


@dataclass
class LogitBatch:
    """Logits ``[2B, T, V]`` and token ids for the ORPO/CPO forward path (chosen rows first)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor
    logits: torch.Tensor

    @property
    def size(self) -> int:
        return self.input_ids.size(0) // 2

    @property
    def labels(self) -> torch.Tensor:
        """TRL's ``*_labels``: the ids on completion tokens, -100 on prompt and padding."""
        return self.input_ids.masked_fill(self.completion_mask == 0, -100)

    @property
    def per_token_logps(self) -> torch.Tensor:
        """[2B, T-1] log p(input_ids[:, t+1] | logits[:, t]), by plain log_softmax + gather."""
        logp = torch.log_softmax(self.logits[:, :-1], dim=-1)
        return logp.gather(-1, self.input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)

    def sums_and_lengths(self):
        mask = self.completion_mask[:, 1:].to(self.logits.dtype)
        sums = (self.per_token_logps * mask).sum(dim=1)
        lengths = mask.sum(dim=1)
        b = self.size
        return sums[:b], sums[b:], lengths[:b], lengths[b:]

    def trl_batch(self) -> dict:
        b = self.size
        batch = {}
        for side, rows in (("chosen", slice(0, b)), ("rejected", slice(b, 2 * b))):
            batch[f"{side}_input_ids"] = self.input_ids[rows]
            batch[f"{side}_attention_mask"] = self.attention_mask[rows]
            batch[f"{side}_labels"] = self.labels[rows]
        return batch


def make_logit_batch(seed: int, batch_size: int, seq_len: int = 12, vocab: int = 11,
                     logit_scale: float = 2.0, dtype=torch.float64) -> LogitBatch:
    gen = torch.Generator().manual_seed(seed)
    completion_mask = _completion_mask(gen, 2 * batch_size, seq_len)
    attention_mask = _attention_mask(completion_mask)
    input_ids = torch.randint(0, vocab, (2 * batch_size, seq_len), generator=gen) * attention_mask
    logits = torch.randn(2 * batch_size, seq_len, vocab, generator=gen, dtype=dtype) * logit_scale
    return LogitBatch(input_ids, attention_mask, completion_mask, logits)


# ---------------------------------------------------------------------------------------------
# Stubs for what TRL's loss code touches besides the loss math
# ---------------------------------------------------------------------------------------------


class _Accelerator:
    """Single-process accelerator: CPU device, gathers are the identity."""

    device = torch.device("cpu")

    @staticmethod
    def gather(tensor):
        return tensor

    gather_for_metrics = gather


class FusedHeadStub:
    """A causal LM as TRL's ``add_fused_lm_head`` patches it, answering from fixed per-token log-probs.

    ``table`` maps input_ids tensors to per-token log-probs ``[N, T-1]``. Called with
    ``labels=...`` and ``fused_lm_head=True`` (what TRL passes), returns a ``FusedCausalLMOutput``
    whose per-token fields are zero where ``labels[:, 1:] == -100``, as the real fused head does.
    """

    training = False

    def __init__(self, table: list[tuple[torch.Tensor, torch.Tensor]]):
        self.table = table
        self.calls = 0

    def _lookup(self, input_ids):
        for ids, per_token in self.table:
            if ids is input_ids or (ids.shape == input_ids.shape and torch.equal(ids, input_ids)):
                return per_token
        raise AssertionError("stub model called with input_ids it does not know")

    def __call__(self, *args, labels=None, fused_lm_head=False, **kwargs):
        from trl.trainer.utils import FusedCausalLMOutput

        assert fused_lm_head and labels is not None, "TRL is expected to call the fused LM head"
        input_ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        self.calls += 1
        per_token = self._lookup(input_ids)
        mask = labels[:, 1:] != -100
        assert per_token.shape == mask.shape
        zeros = torch.zeros_like(per_token)
        return FusedCausalLMOutput(
            log_probs=per_token.masked_fill(~mask, 0.0),
            entropy=zeros,
            log_sum_sq_probs=zeros,
            mean_logits=zeros,
            is_top1=torch.zeros_like(mask),
            label_mask=mask,
        )


class LogitsStub:
    """A plain causal LM for the ORPO/CPO path: ``model(input_ids, attention_mask=..., use_cache=False)``
    returns fixed logits."""

    training = False

    def __init__(self, logits: torch.Tensor):
        self.logits = logits

    def __call__(self, input_ids, attention_mask=None, use_cache=False, **kwargs):
        assert input_ids.shape == self.logits.shape[:2]
        return SimpleNamespace(logits=self.logits)


def _logging_plumbing(trainer, model) -> None:
    trainer.accelerator = _Accelerator()
    trainer.model = model
    trainer.aux_loss_enabled = False
    trainer._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    trainer._total_train_tokens = 0
    trainer._tp_size = 1
    trainer.args = SimpleNamespace(gradient_checkpointing_kwargs=None, discopop_tau=0.05)


# ---------------------------------------------------------------------------------------------
# DPO family: DPOTrainer._compute_loss
# ---------------------------------------------------------------------------------------------


def _dpo_trainer(model, loss_type, beta, label_smoothing, discopop_tau):
    from trl.trainer.dpo_trainer import DPOTrainer

    trainer = object.__new__(DPOTrainer)
    _logging_plumbing(trainer, model)
    trainer.loss_types = [loss_type]
    trainer.loss_weights = [1.0]
    trainer.beta = beta
    trainer.label_smoothing = label_smoothing
    trainer.f_divergence_type = "reverse_kl"
    trainer.f_alpha_divergence_coef = 1.0
    trainer.ld_alpha = None
    trainer.use_weighting = False
    trainer.precompute_ref_logps = True
    trainer.args.discopop_tau = discopop_tau
    return trainer


def trl_dpo_loss(batch: PairBatch, loss_type: str, *, beta: float, label_smoothing: float = 0.0,
                 discopop_tau: float = 0.05, ref_shift: float = 0.0) -> dict:
    """TRL's DPO loss (batch mean) and logged reward means for ``batch``.

    ``ref_shift`` is added to both cached reference sums before TRL sees them.
    """
    tok = batch.tokens
    model = FusedHeadStub([(tok.input_ids, tok.policy_tokens)])
    trainer = _dpo_trainer(model, loss_type, beta, label_smoothing, discopop_tau)
    ref = tok.reference_sums + ref_shift
    inputs = {
        "input_ids": tok.input_ids,
        "attention_mask": tok.attention_mask,
        "completion_mask": tok.completion_mask,
        "ref_chosen_logps": ref[: batch.size],
        "ref_rejected_logps": ref[batch.size :],
    }
    loss = trainer._compute_loss(model, inputs, return_outputs=False)
    assert model.calls == 1
    metrics = trainer._metrics["eval"]
    return {
        "loss": loss,
        "rewards/chosen": metrics["rewards/chosen"][-1],
        "rewards/rejected": metrics["rewards/rejected"][-1],
    }


def trl_dpo_per_pair_losses(batch: PairBatch, loss_type: str, **kwargs) -> torch.Tensor:
    """TRL's per-pair losses, one ``_compute_loss`` call per pair (not for batch-coupled ``aot``)."""
    if loss_type.startswith("aot"):
        raise ValueError("aot sorts across the batch: it has no per-pair loss")
    return torch.stack([trl_dpo_loss(batch.pair(i), loss_type, **kwargs)["loss"] for i in range(batch.size)])


# ---------------------------------------------------------------------------------------------
# KTO / APO-zero unpaired: KTOTrainer._compute_loss
# ---------------------------------------------------------------------------------------------


def trl_kto_loss(examples: TokenBatch, labels: torch.Tensor, mismatched: TokenBatch, *, loss_type: str = "kto",
                 beta: float, desirable_weight: float = 1.0, undesirable_weight: float = 1.0) -> dict:
    """TRL's KTO-family loss (``nanmean`` over the batch) and its logged KL estimate."""
    from trl.trainer.kto_trainer import KTOTrainer

    calculate_kl = loss_type not in ["apo_zero_unpaired"]  # as KTOTrainer.__init__ decides
    table = [(examples.input_ids, examples.policy_tokens)]
    if calculate_kl:
        table.append((mismatched.input_ids, mismatched.policy_tokens))
    model = FusedHeadStub(table)
    trainer = object.__new__(KTOTrainer)
    _logging_plumbing(trainer, model)
    trainer.loss_type = loss_type
    trainer.beta = beta
    trainer.desirable_weight = desirable_weight
    trainer.undesirable_weight = undesirable_weight
    trainer.calculate_KL = calculate_kl
    trainer.precompute_ref_logps = True
    inputs = {
        "input_ids": examples.input_ids,
        "attention_mask": examples.attention_mask,
        "completion_mask": examples.completion_mask,
        "label": labels,
        "ref_logps": examples.reference_sums,
    }
    if calculate_kl:
        inputs.update({
            "KL_input_ids": mismatched.input_ids,
            "KL_attention_mask": mismatched.attention_mask,
            "KL_completion_mask": mismatched.completion_mask,
            "ref_KL_logps": mismatched.reference_sums,
        })
    loss = trainer._compute_loss(model, inputs, return_outputs=False)
    assert model.calls == len(table)
    return {"loss": loss, "kl": trainer._metrics["eval"]["kl"][-1]}


def trl_kto_per_example_losses(batch: UnpairedBatch, **kwargs) -> torch.Tensor:
    """Per-example losses: one call per example, each against the full mismatched (KL) batch."""
    return torch.stack([
        trl_kto_loss(batch.examples.rows([i]), batch.labels[i : i + 1], batch.mismatched, **kwargs)["loss"]
        for i in range(batch.labels.numel())
    ])


# ---------------------------------------------------------------------------------------------
# ORPO and CPO/SimPO (trl.experimental)
# ---------------------------------------------------------------------------------------------


def _experimental(module: str, name: str):
    """A class from ``trl.experimental``, without its import-time "unstable API" warning (the pinned
    version is exactly what we mean to compare against)."""
    import importlib
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*trl.experimental.*")
        return getattr(importlib.import_module(f"trl.experimental.{module}"), name)


def _orpo_trainer(beta: float):
    trainer = object.__new__(_experimental("orpo.orpo_trainer", "ORPOTrainer"))
    trainer.beta = beta
    trainer.accelerator = _Accelerator()
    trainer.is_encoder_decoder = False
    trainer.padding_value = 0
    trainer.aux_loss_enabled = False
    return trainer


def trl_orpo_odds_ratio(policy_chosen_mean_logps, policy_rejected_mean_logps, *, beta: float):
    """``ORPOTrainer.odds_ratio_loss``: per pair β·log σ(log odds ratio) (the term ORPO *subtracts*), float32."""
    losses, _, _, _, _ = _orpo_trainer(beta).odds_ratio_loss(policy_chosen_mean_logps, policy_rejected_mean_logps)
    return losses


def trl_orpo_batch_loss(batch: LogitBatch, *, beta: float) -> dict:
    """``ORPOTrainer.get_batch_loss_metrics``: the full ORPO loss (NLL − mean odds-ratio term) and the NLL."""
    trainer = _orpo_trainer(beta)
    loss, metrics = trainer.get_batch_loss_metrics(LogitsStub(batch.logits), batch.trl_batch(), train_eval="train")
    return {"loss": loss, "nll_loss": metrics["nll_loss"], "log_odds_ratio": metrics["log_odds_ratio"]}


def _cpo_trainer(loss_type: str, beta: float, label_smoothing: float, simpo_gamma: float, cpo_alpha: float):
    trainer = object.__new__(_experimental("cpo.cpo_trainer", "CPOTrainer"))
    trainer.loss_type = loss_type
    trainer.beta = beta
    trainer.label_smoothing = label_smoothing
    trainer.simpo_gamma = simpo_gamma
    trainer.cpo_alpha = cpo_alpha
    trainer.alpha = 0.0  # no AlphaPO reward transform
    trainer.accelerator = _Accelerator()
    trainer.is_encoder_decoder = False
    trainer.pad_token_id = 0
    trainer.aux_loss_enabled = False
    return trainer


def trl_cpo_loss(policy_chosen_logps, policy_rejected_logps, *, loss_type: str, beta: float,
                 label_smoothing: float = 0.0, simpo_gamma: float = 0.5) -> torch.Tensor:
    """``CPOTrainer.cpo_loss`` per pair (the preference term; no NLL)."""
    trainer = _cpo_trainer(loss_type, beta, label_smoothing, simpo_gamma, cpo_alpha=0.0)
    losses, _, _ = trainer.cpo_loss(policy_chosen_logps, policy_rejected_logps)
    return losses


def trl_cpo_batch_loss(batch: LogitBatch, *, loss_type: str, beta: float, label_smoothing: float = 0.0,
                       simpo_gamma: float = 0.5, cpo_alpha: float = 1.0) -> dict:
    """``CPOTrainer.get_batch_loss_metrics``: mean preference loss + cpo_alpha · NLL, and the NLL."""
    trainer = _cpo_trainer(loss_type, beta, label_smoothing, simpo_gamma, cpo_alpha)
    loss, metrics = trainer.get_batch_loss_metrics(LogitsStub(batch.logits), batch.trl_batch(), train_eval="train")
    return {"loss": loss, "nll_loss": metrics["nll_loss"]}


def chosen_token_nll(batch: LogitBatch, *, include_prompt: bool) -> torch.Tensor:
    """Per chosen sequence, (sum of token NLL, token count) over completion tokens, or over all attended
    tokens after the first when ``include_prompt`` (ORPO's NLL is over prompt + response)."""
    b = batch.size
    mask = (batch.attention_mask if include_prompt else batch.completion_mask)[:b, 1:].to(batch.logits.dtype)
    nll = -(batch.per_token_logps[:b] * mask).sum(dim=1)
    return nll, mask.sum(dim=1)

