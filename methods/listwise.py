"""Listwise methods: RRHF and PRO rank K responses per prompt with the policy's own length-normalised
log-probs, plus an SFT term on the best response (both reference-free); LiPO-λ ranks them by DPO's implicit
reward β·(ℓ − ℓ_ref) with a lambda-weighted pairwise logistic loss.

Inputs are [B, K] tensors from ``FeedbackBatch.listwise()`` (sequence log-prob sums ℓ, response lengths
|y|) and ``batch.scores`` (the ranking's scores, best first). Both losses read the ranking off the scores
(a stable sort, so a caller may pass any column order) and give tied responses no preference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.common import taxonomy
from suite.core.errors import SuiteError
from suite.method.registry import FeedbackBatch, Method, Paper, register

LIPO_PAPER = Paper("LiPO: Listwise Preference Optimization through Learning-to-Rank", "2402.01878")
RRHF_PAPER = Paper("RRHF: Rank Responses to Align Language Models with Human Feedback without tears", "2304.05302")
PRO_PAPER = Paper("Preference Ranking Optimization for Human Alignment", "2306.17492")


def _ranked(policy_logps: torch.Tensor, lengths: torch.Tensor, scores: torch.Tensor):
    """(ℓ, p = ℓ/|y|, scores), each [B, K] with the columns sorted by score, descending (stable)."""
    if policy_logps.dim() != 2 or policy_logps.shape != lengths.shape or policy_logps.shape != scores.shape:
        raise SuiteError(f"listwise loss: expected [B, K] log-probs, lengths and scores, got "
                         f"{tuple(policy_logps.shape)}, {tuple(lengths.shape)}, {tuple(scores.shape)}")
    scores = scores.to(device=policy_logps.device, dtype=policy_logps.dtype)
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    logps = policy_logps.gather(1, order)
    mean_logps = logps / lengths.gather(1, order).clamp(min=1).to(policy_logps.dtype)
    return logps, mean_logps, scores.gather(1, order)


def _strictly_better(scores: torch.Tensor) -> torch.Tensor:
    """[B, K, K] mask: entry (b, j, i) is True when response j outranks response i (r_j > r_i; ties: False)."""
    return scores[:, :, None] > scores[:, None, :]


def rrhf_loss(
    policy_logps: torch.Tensor,
    lengths: torch.Tensor,
    scores: torch.Tensor,
    *,
    chosen_nll_weight: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """RRHF (Yuan et al. 2023, §3), per example.

        p_i    = ℓ_i / |y_i|                                   (length-normalised log-prob)
        L_rank = Σ_{r_i < r_j} max(0, p_i − p_j)               (every pair ranked the wrong way round)
        L_ft   = −ℓ_best / |y_best| = −p_best                  (NLL of the best response, token-averaged)
        L      = L_rank + chosen_nll_weight · L_ft

    Pairs with equal scores contribute nothing to L_rank. L_rank is a sum over the example's pairs, as in
    the paper and its code (one prompt per batch there); the objective averages over examples.

    L_ft: the paper writes the sequence cross-entropy −Σ_t log π(y_t | …); the released code takes a mean
    over the (padded) token positions. We average over the best response's tokens — the usual SFT
    cross-entropy, and on the same per-token scale as the p_i in L_rank.

    Returns (losses, rank losses, NLL of the best) — each [B].
    """
    _, mean_logps, scores = _ranked(policy_logps, lengths, scores)
    wrong_way = mean_logps[:, None, :] - mean_logps[:, :, None]  # (b, j, i): p_i − p_j
    rank = (F.relu(wrong_way) * _strictly_better(scores)).sum(dim=(1, 2))
    nll = -mean_logps[:, 0]
    return rank + chosen_nll_weight * nll, rank, nll


def pro_loss(
    policy_logps: torch.Tensor,
    lengths: torch.Tensor,
    scores: torch.Tensor,
    *,
    sft_weight: float,
    temperature: float = 1.0,
    score_temperature: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """PRO (Song et al. 2024, §3), per example: a Plackett–Luce ranking loss over length-normalised
    log-probs p_i = ℓ_i / |y_i| (responses sorted best first, y^1 ≻ … ≻ y^K), plus SFT on the best.

    Plain (``score_temperature=False``):

        L_rank = −Σ_{k=1}^{K−1} log( exp(p_k / T) / Σ_{i ≥ k} exp(p_i / T) )

    with ties: the denominator of step k holds y^k and the responses strictly worse than it (r_i < r_k),
    so a tied response is never pushed below y^k, and a step whose remaining responses all tie with y^k
    contributes exactly 0.

    With ``score_temperature`` (the paper's §3.3 dynamic temperature, which its code always applies):
    1/T_k^i = r_k − r_i for i > k and 1/T_k^k = max_{i>k} (r_k − r_i), i.e. T_k^k = min_{i>k} T_k^i:

        L_rank = −Σ_k log( exp(p_k / (T·T_k^k)) / Σ_{i ≥ k} exp(p_i / (T·T_k^i)) )

    Here a tie (r_i = r_k) gives exp(0) = 1 in the denominator — the formula's limit T → ∞ — so the tied
    response gets no gradient; a step whose remaining responses all tie is a constant.

        L = L_rank + sft_weight · L_sft,   L_sft = −ℓ_best (the best response's sequence NLL, a sum over
                                                   tokens as in the released code)

    The paper sets β = 0.05·(K − 1)²; the registered objective passes ``sft_weight`` = that β.
    Returns (losses, rank losses, NLL of the best) — each [B].
    """
    logps, mean_logps, scores = _ranked(policy_logps, lengths, scores)
    k_total = mean_logps.shape[1]
    rank = mean_logps.new_zeros(mean_logps.shape[0])
    for k in range(k_total - 1):
        top, rest = mean_logps[:, k:k + 1], mean_logps[:, k + 1:]
        margins = scores[:, k:k + 1] - scores[:, k + 1:]  # r_k − r_i ≥ 0
        if score_temperature:
            logits = torch.cat([top * margins.max(dim=1, keepdim=True).values, rest * margins], dim=1) / temperature
        else:
            rest = rest.masked_fill(margins <= 0, float("-inf"))  # tied with y^k: not a competitor
            logits = torch.cat([top, rest], dim=1) / temperature
        rank = rank - (logits[:, 0] - torch.logsumexp(logits, dim=1))
    nll = -logps[:, 0]
    return rank + sft_weight * nll, rank, nll


def lipo_lambda_loss(
    policy_logps: torch.Tensor,
    reference_logps: torch.Tensor,
    scores: torch.Tensor,
    *,
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """LiPO-λ (Liu et al. 2024, "LiPO: Listwise Preference Optimization through Learning-to-Rank", §4), per list.

        s_i     = β · (ℓ_i − ℓ_ref,i)                        (DPO's implicit reward of response i)
        L       = Σ_{ψ_i > ψ_j} Δ_ij · log(1 + e^{−(s_i − s_j)})
        Δ_ij    = |G_i − G_j| · |1/D(τ(i)) − 1/D(τ(j))|      (the lambda weight, no gradient)
        G_i     = 2^{ψ_i} − 1                                 (gain of the label ψ_i, the response's score)
        D(τ)    = log2(1 + τ)                                 (rank discount)

    τ(i) is the rank (1 = first) of response i in the permutation the policy's own s induces (ties broken by
    position, stable). Δ_ij is the change of DCG when i and j swap places: pairs whose order matters more to
    the list's DCG weigh more, which is LambdaLoss's metric-driven weighting (Wang et al. 2018) — the
    discount in base 2 as there and in NDCG. Pairs with equal labels contribute nothing. Gains are computed
    in float64 so labels up to ~1000 stay finite. The list's columns may come in any order: only the labels
    say which response is better. Returns (losses [B], lambda weights Δ [B, K, K], zero where ψ_i ≤ ψ_j).
    """
    if policy_logps.dim() != 2 or policy_logps.shape != reference_logps.shape or policy_logps.shape != scores.shape:
        raise SuiteError(f"lipo: expected [B, K] log-probs, reference log-probs and scores, got "
                         f"{tuple(policy_logps.shape)}, {tuple(reference_logps.shape)}, {tuple(scores.shape)}")
    rewards = beta * (policy_logps - reference_logps)
    with torch.no_grad():
        labels = scores.to(device=rewards.device, dtype=torch.float64)
        order = torch.argsort(rewards.detach(), dim=1, descending=True, stable=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(1, order.shape[1] + 1, device=order.device).expand_as(order))
        inverse_discount = 1 / torch.log2(1 + ranks.to(torch.float64))
        gains = torch.exp2(labels) - 1
        weights = (gains[:, :, None] - gains[:, None, :]).abs() * \
            (inverse_discount[:, :, None] - inverse_discount[:, None, :]).abs()
        weights = (weights * _strictly_better(labels)).to(rewards.dtype)  # (b, i, j): ψ_i > ψ_j
    pair_losses = F.softplus(-(rewards[:, :, None] - rewards[:, None, :]))  # −log σ(s_i − s_j)
    return (weights * pair_losses).sum(dim=(1, 2)), weights


def _listwise_inputs(batch: FeedbackBatch, method_id: str):
    if batch.scores is None or batch.scores.dim() != 2:
        raise SuiteError(f"{method_id}: needs listwise feedback (scores of shape [B, K])")
    policy, _, lengths = batch.listwise()
    return policy, lengths, batch.scores


def _ranking_metrics(policy_logps, lengths, scores, rank, nll) -> dict:
    """Mean rank / SFT terms, the best and worst responses' p = ℓ/|y|, and how many strictly ranked pairs
    the policy already orders correctly (p_better > p_worse)."""
    with torch.no_grad():
        _, mean_logps, scores = _ranked(policy_logps.detach(), lengths, scores)
        better = _strictly_better(scores)
        correct = (mean_logps[:, :, None] > mean_logps[:, None, :]) & better
        pairs = better.sum()
        return {
            "loss/rank": rank.detach().mean(),
            "loss/sft": nll.detach().mean(),
            "logps/best": mean_logps[:, 0].mean(),
            "logps/worst": mean_logps[:, -1].mean(),
            "rewards/accuracy": correct.sum() / pairs.clamp(min=1),
        }


def rrhf_objective(batch: FeedbackBatch, hp: dict):
    policy, lengths, scores = _listwise_inputs(batch, "rrhf")
    losses, rank, nll = rrhf_loss(policy, lengths, scores, chosen_nll_weight=float(hp["chosen_nll_weight"]))
    return losses.mean(), _ranking_metrics(policy, lengths, scores, rank, nll)


def pro_objective(batch: FeedbackBatch, hp: dict):
    policy, lengths, scores = _listwise_inputs(batch, "pro")
    beta = float(hp["sft_weight"]) * (policy.shape[1] - 1) ** 2  # the paper's β = 0.05·(K − 1)²
    losses, rank, nll = pro_loss(policy, lengths, scores, sft_weight=beta, temperature=float(hp["temperature"]),
                                 score_temperature=bool(hp["score_temperature"]))
    return losses.mean(), _ranking_metrics(policy, lengths, scores, rank, nll)


def lipo_objective(batch: FeedbackBatch, hp: dict):
    policy, lengths, scores = _listwise_inputs(batch, "lipo")
    _, reference, _ = batch.listwise()
    if reference is None:
        raise SuiteError("lipo: needs the reference log-probs of every response")
    beta = float(hp["beta"])
    losses, weights = lipo_lambda_loss(policy, reference, scores, beta=beta)
    with torch.no_grad():
        rewards = beta * (policy - reference)
        better = _strictly_better(scores.to(rewards.dtype))
        correct = (rewards[:, :, None] > rewards[:, None, :]) & better
        metrics = {
            "rewards/best": rewards[:, 0].mean(),  # columns come best first from the data
            "rewards/worst": rewards[:, -1].mean(),
            "rewards/accuracy": correct.sum() / better.sum().clamp(min=1),
            "lipo/lambda_weight": weights.sum() / better.sum().clamp(min=1),
        }
    return losses.mean(), metrics


LISTWISE_TAXONOMY = taxonomy(
    feedback_arity="listwise",
    reference="reference-free",
    sft="merged",  # the SFT term on the best response is part of the loss
    divergence="none",  # no tie to a reference policy
    reward_form="preference",  # a ranking loss on the policy's own scores, as DPO's tag
    length_control="yes",  # responses compared by length-normalised log-prob ℓ/|y|
)

register(
    Method(
        id="rrhf",
        name="RRHF",
        paper=RRHF_PAPER,
        feedback="listwise",
        taxonomy=LISTWISE_TAXONOMY,
        needs_reference=False,
        # L = L_rank + L_ft (the paper's eq. 3: weight 1; the released train.sh passes --rrhf_weight 1);
        # lr 2e-5 as in the paper's training setup and train.sh.
        defaults={"chosen_nll_weight": 1.0, "learning_rate": 2e-5},
        objective=rrhf_objective,
        description="Hinge ranking loss on length-normalised log-probs of K scored responses, plus SFT on the best.",
    )
)

register(
    Method(
        id="pro",
        name="PRO",
        paper=PRO_PAPER,
        feedback="listwise",
        taxonomy=LISTWISE_TAXONOMY,
        needs_reference=False,
        # sft_weight 0.05 (β = 0.05·(K − 1)², the paper's §4 setting; train_hh.sh --sft_weight 0.05),
        # temperature 1 (train_hh.sh --temperature 1), score-difference temperatures on (the paper's full
        # PRO, §3.3; its code always applies them), lr 5e-6 (train_hh.sh --learning_rate 5e-6).
        defaults={"sft_weight": 0.05, "temperature": 1.0, "score_temperature": True, "learning_rate": 5e-6},
        objective=pro_objective,
        description="Plackett-Luce over a ranking of K responses (length-normalised log-probs, score-difference "
                    "temperatures), plus SFT on the best.",
    )
)

register(
    Method(
        id="lipo",
        name="LiPO-λ",
        paper=LIPO_PAPER,
        feedback="listwise",
        # DPO's implicit reward on a ranked list: reference-based, reverse-KL, no SFT term, no length control.
        taxonomy=taxonomy(feedback_arity="listwise", reward_form="preference"),
        needs_reference=True,
        # β = 0.05: the value of the paper's experiments as recalled, not re-checked against its text
        # here; configurable. The paper's lists hold 8 responses; data.list_size sets K (default 4).
        # lr 5e-6 as the DPO-family entries.
        defaults={"beta": 0.05, "learning_rate": 5e-6},
        objective=lipo_objective,
        description="Lambda-weighted pairwise logistic loss over a scored list on DPO's implicit reward "
                    "(weights: the DCG change of swapping two responses in the policy's own ranking).",
    )
)
