"""Pairwise CRINGE: a contrastive penalty on the rejected response's tokens, gated by the pair's margin,
plus the chosen response's likelihood.

Xu et al. 2023, "Some things are more CRINGE than others: Iterative Preference Optimization with the
Pairwise Cringe Loss" (arXiv 2312.16682), built on the binary Cringe loss of Adolphs et al. 2022, "The
CRINGE Loss: Learning what language not to model" (arXiv 2211.05826). Per pair:

    L_CE(y_w)  = −(1/|y_w|) Σ_t log π(y_w,t | x, y_w,<t)                   (NLL of the chosen response)
    L_Cr(y_l)  = (1/|y_l|) Σ_t −log( e^{s⁺_t} / (e^{s⁺_t} + e^{s⁻_t}) )   (token contrast on the rejected one)
    M          = log π(y_w | x) − log π(y_l | x)                            (the policy's sequence margin)
    g          = σ((b − M) / τ)                                             (soft margin gate, no gradient)
    loss       = L_CE(y_w) + α · g · L_Cr(y_l)

s⁻_t is the score of the rejected token y_l,t; s⁺_t the score of a "positive" token to prefer in its
place. The gate switches the penalty off for pairs the policy already separates by more than the margin b
(σ → 0 as M − b grows, with softness τ), so only pairs it still gets wrong or nearly wrong are pushed apart.

Difference from the paper (documented, deliberate): Cringe draws s⁺_t from the model's top-k predictions
at position t (excluding y_l,t), which needs the full next-token distribution. The suite's trainer gives a
method the log-prob of the observed token only (``FeedbackBatch.token_logps``), so the registered
objective contrasts y_l,t with *all* the alternatives at once: s⁺_t = log(1 − p_t), the total probability of
every other token, s⁻_t = log p_t. The token contrast then equals −log(1 − p_t), the unlikelihood loss of
Welleck et al. 2020 — Cringe's contrast with the sampled alternative replaced by the whole alternative mass.
Both push p_t down; the paper's form moves the freed mass to one likely alternative, this one spreads it in
proportion to the alternatives' probabilities. :func:`cringe_token_contrast` takes any (s⁺, s⁻) in log
space, so the sampled form needs only the top-k scores passed in.

The gate reads the policy's own margin M (as the paper does), not a reward: pairwise records carry none.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from methods.common import pairwise_reward_metrics, taxonomy
from suite.core.errors import SuiteError
from suite.method.registry import FeedbackBatch, Method, Paper, register

CRINGE_PAPER = Paper(
    "Some things are more CRINGE than others: Iterative Preference Optimization with the Pairwise Cringe Loss",
    "2312.16682",
)

# p_t is capped at 1 − 1e-6 for log(1 − p_t): a per-token penalty of at most ln 1e6 ≈ 13.8 nats.
MAX_LOGP = math.log1p(-1e-6)


def cringe_token_contrast(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> torch.Tensor:
    """Cringe's per-token contrast, −log(e^{s⁺} / (e^{s⁺} + e^{s⁻})) = softplus(s⁻ − s⁺), elementwise.

    Scores may be logits or log-probs (the softmax normaliser of a position cancels in s⁻ − s⁺).
    """
    return F.softplus(negative_scores - positive_scores)


def log1mexp(logp: torch.Tensor) -> torch.Tensor:
    """log(1 − e^x) for x < 0, accurate at both ends (Mächler 2012): log(−expm1 x) near 0, log1p(−e^x) below −ln 2."""
    return torch.where(logp > -math.log(2), torch.log(-torch.expm1(logp)), torch.log1p(-torch.exp(logp)))


def pairwise_cringe_loss(
    chosen_token_logps: torch.Tensor,
    chosen_mask: torch.Tensor,
    rejected_token_logps: torch.Tensor,
    rejected_mask: torch.Tensor,
    *,
    alpha: float,
    margin: float,
    temperature: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pairwise Cringe (see the module docstring), per pair, with the all-alternatives positive
    s⁺_t = log(1 − p_t).

    Inputs are per-token log-probs of the observed tokens [B, T] and their response masks (True on
    response tokens; other positions are ignored whatever they hold). Returns (losses, gates, token
    contrasts L_Cr, chosen NLLs L_CE), each [B].
    """
    if chosen_token_logps.shape != chosen_mask.shape or rejected_token_logps.shape != rejected_mask.shape:
        raise SuiteError("pairwise_cringe_loss: per-token log-probs and masks must have the same shape")
    chosen_mask, rejected_mask = chosen_mask.to(chosen_token_logps.dtype), rejected_mask.to(rejected_token_logps.dtype)
    chosen_logps = (chosen_token_logps * chosen_mask).sum(-1)
    rejected_logps = (rejected_token_logps * rejected_mask).sum(-1)
    chosen_nll = -chosen_logps / chosen_mask.sum(-1).clamp(min=1)
    # clamp first, so masked positions (any value) and p_t = 1 give finite values and gradients
    negative = rejected_token_logps.clamp(max=MAX_LOGP)
    contrast = cringe_token_contrast(log1mexp(negative), negative)
    contrast = (contrast * rejected_mask).sum(-1) / rejected_mask.sum(-1).clamp(min=1)
    gate = torch.sigmoid((margin - (chosen_logps - rejected_logps).detach()) / temperature)
    return chosen_nll + alpha * gate * contrast, gate, contrast, chosen_nll


def pairwise_cringe_objective(batch: FeedbackBatch, hp: dict):
    if batch.token_logps is None or batch.token_mask is None:
        raise SuiteError("pairwise-cringe: needs per-token log-probs (FeedbackBatch.token_logps / token_mask)")
    chosen_tokens, rejected_tokens = batch.token_logps.chunk(2)
    chosen_mask, rejected_mask = batch.token_mask.chunk(2)
    losses, gate, contrast, chosen_nll = pairwise_cringe_loss(
        chosen_tokens, chosen_mask, rejected_tokens, rejected_mask, alpha=float(hp["alpha"]),
        margin=float(hp["margin"]), temperature=float(hp["temperature"]),
    )
    policy_chosen, policy_rejected, _, _ = batch.pairwise()
    metrics = pairwise_reward_metrics(policy_chosen, policy_rejected)  # no reference: the sequence log-probs
    metrics.update({"cringe/gate": gate.mean(), "cringe/contrast": contrast.detach().mean(),
                    "nll/chosen": chosen_nll.detach().mean()})
    return losses.mean(), metrics


register(
    Method(
        id="pairwise-cringe",
        name="Pairwise CRINGE",
        paper=CRINGE_PAPER,
        feedback="pairwise",
        # Reference-free (no π_ref anywhere), the penalty acts on tokens, the NLL term is part of the loss.
        taxonomy=taxonomy(reward_form="preference", reward_level="token", reference="reference-free",
                          divergence="none", sft="merged"),
        needs_reference=False,
        defaults={
            # α, b, τ: the paper tunes them on AlpacaFarm and its chosen values could not be confirmed
            # here, so these are named, configurable choices: α = 1 weighs both terms alike; b = 0 gates
            # pairs the policy ranks wrong
            # (g > ½ when M < 0) and fades as the chosen response pulls ahead; τ = 1 nat of softness.
            "alpha": 1.0,
            "margin": 0.0,
            "temperature": 1.0,
            "learning_rate": 5e-6,  # as the DPO-family entries
        },
        objective=pairwise_cringe_objective,
        description="NLL on the chosen response plus a token-level contrast against the rejected response's "
                    "tokens, gated by σ((b − M)/τ) on the policy's margin M (unlikelihood form of the contrast: "
                    "see methods/cringe.py).",
    )
)
