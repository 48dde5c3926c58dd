"""Pairwise CRINGE (methods/cringe.py): hand-computed loss, gate and gradients on tiny per-token tensors."""

import math

import pytest
import torch

from methods.cringe import cringe_token_contrast, log1mexp, pairwise_cringe_loss
from suite.method.registry import FeedbackBatch, get_method

L = math.log


def _pair(requires_grad=False):
    # chosen: p = (0.5, 0.25); rejected: p = (0.5, 0.8) and a masked position holding junk (0.0 = log 1)
    chosen = torch.tensor([[L(0.5), L(0.25), 0.0]], dtype=torch.float64, requires_grad=requires_grad)
    rejected = torch.tensor([[L(0.5), L(0.8), 0.0]], dtype=torch.float64, requires_grad=requires_grad)
    chosen_mask = torch.tensor([[True, True, False]])
    rejected_mask = torch.tensor([[True, True, False]])
    return chosen, chosen_mask, rejected, rejected_mask


def test_token_contrast_is_the_two_way_softmax_loss():
    # logits s⁺ = 2, s⁻ = 1: −log(e² / (e² + e)) = log(1 + e^−1)
    assert cringe_token_contrast(torch.tensor(2.0), torch.tensor(1.0)).item() == pytest.approx(math.log1p(math.exp(-1)))
    # with the whole alternative mass as the positive, s⁺ = log(1 − p): the unlikelihood loss −log(1 − p)
    p = torch.tensor([0.1, 0.5, 0.99], dtype=torch.float64)
    contrast = cringe_token_contrast(log1mexp(p.log()), p.log())
    torch.testing.assert_close(contrast, -torch.log1p(-p))


def test_log1mexp_is_accurate_at_both_ends():
    x = torch.tensor([-1e-8, -0.1, -0.7, -5.0, -50.0], dtype=torch.float64)
    # reference values from Python's math: log(−expm1 x) is exact near 0, log1p(−e^x) far below it
    expected = torch.tensor([math.log(-math.expm1(v)) if v > -1 else math.log1p(-math.exp(v)) for v in x.tolist()],
                            dtype=torch.float64)
    assert expected[-1].item() == pytest.approx(-math.exp(-50.0), rel=1e-12)  # log(1 − ε) ≈ −ε, not 0
    torch.testing.assert_close(log1mexp(x), expected, rtol=1e-12, atol=0)


def test_pairwise_cringe_hand_values():
    # NLL(y_w) = −(ln 0.5 + ln 0.25)/2 = 1.0397208
    # L_Cr(y_l) = (−ln 0.5 − ln 0.2)/2 = 1.1512925       (−log(1 − p) per rejected token, masked one ignored)
    # M = ln 0.125 − ln 0.4 = −1.1631508 → g = σ((0 − M)/1) = 1/(1 + 0.3125) = 0.7619048
    # loss = 1.0397208 + 1 · 0.7619048 · 1.1512925 = 1.9168960
    losses, gate, contrast, nll = pairwise_cringe_loss(*_pair(), alpha=1.0, margin=0.0, temperature=1.0)
    assert nll.item() == pytest.approx(1.0397207708, abs=1e-9)
    assert contrast.item() == pytest.approx(1.1512925465, abs=1e-9)
    assert gate.item() == pytest.approx(0.7619047619, abs=1e-9)
    assert losses.item() == pytest.approx(1.9168960444, abs=1e-9)
    # α = 0.5, b = −2, τ = 0.5: g = σ((−2 + 1.1631508)/0.5) → loss = 1.0397208 + 0.5 · g · 1.1512925 = 1.1306336
    losses, *_ = pairwise_cringe_loss(*_pair(), alpha=0.5, margin=-2.0, temperature=0.5)
    assert losses.item() == pytest.approx(1.1306335719, abs=1e-9)


def test_gradients_the_gate_is_constant_and_masked_tokens_get_none():
    chosen, chosen_mask, rejected, rejected_mask = _pair(requires_grad=True)
    losses, *_ = pairwise_cringe_loss(chosen, chosen_mask, rejected, rejected_mask, alpha=1.0, margin=0.0,
                                      temperature=1.0)
    losses.sum().backward()
    # chosen: only the NLL (the gate carries no gradient): −1/|y_w| per response token
    assert chosen.grad[0].tolist() == pytest.approx([-0.5, -0.5, 0.0])
    # rejected: α·g/|y_l| · p/(1 − p): 0.7619048/2 · (1, 4); the masked position gets 0
    assert rejected.grad[0].tolist() == pytest.approx([0.3809523810, 1.5238095238, 0.0])


def test_a_pair_separated_beyond_the_margin_is_left_to_the_nll():
    chosen = torch.tensor([[-0.01, -0.01]], dtype=torch.float64)
    rejected = torch.tensor([[-30.0, -30.0]], dtype=torch.float64)
    mask = torch.ones(1, 2, dtype=torch.bool)
    losses, gate, _, nll = pairwise_cringe_loss(chosen, mask, rejected, mask, alpha=1.0, margin=0.0, temperature=1.0)
    assert gate.item() < 1e-25 and losses.item() == pytest.approx(nll.item())


def test_a_certain_rejected_token_gives_a_finite_penalty_and_gradient():
    rejected = torch.tensor([[0.0, -1e-12]], dtype=torch.float64, requires_grad=True)  # p = 1
    mask = torch.ones(1, 2, dtype=torch.bool)
    losses, _, contrast, _ = pairwise_cringe_loss(torch.tensor([[-1.0, -1.0]], dtype=torch.float64), mask, rejected,
                                                  mask, alpha=1.0, margin=0.0, temperature=1.0)
    assert contrast.item() == pytest.approx(-math.log(1e-6), rel=1e-4)  # capped at p = 1 − 1e-6
    losses.backward()
    assert torch.isfinite(rejected.grad).all()


def test_objective_reads_the_per_token_log_probs_of_the_batch():
    chosen, chosen_mask, rejected, rejected_mask = _pair()
    token_logps = torch.cat([chosen, rejected])
    token_mask = torch.cat([chosen_mask, rejected_mask])
    batch = FeedbackBatch(policy_logps=(token_logps * token_mask).sum(-1), lengths=token_mask.sum(-1),
                          token_logps=token_logps, token_mask=token_mask)
    method = get_method("pairwise-cringe")
    loss, metrics = method.objective(batch, method.hyperparameters())
    assert loss.item() == pytest.approx(1.9168960444, abs=1e-9)
    assert metrics["cringe/gate"].item() == pytest.approx(0.7619047619, abs=1e-9)
    assert not method.needs_reference and method.taxonomy["reward-level"] == "token"
    assert method.paper.arxiv == "2312.16682"
