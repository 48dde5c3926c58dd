"""LiPO-λ (methods/listwise.py): hand-computed lambda weights and loss, invariances, and the objective."""

import math

import pytest
import torch

from methods.dpo import dpo_loss
from methods.listwise import lipo_lambda_loss
from suite.method.registry import FeedbackBatch, get_method

T = lambda *rows: torch.tensor(rows, dtype=torch.float64)  # noqa: E731


def _example():
    # labels ψ = (1, 0.5, 0); policy log-ratios ℓ − ℓ_ref = (0, 2, −2), β = 0.5 → s = (0, 1, −1):
    # the policy puts the middle response first, so τ = (2, 1, 3)
    reference = T([-10.0, -12.0, -8.0])
    policy = reference + T([0.0, 2.0, -2.0])
    return policy, reference, T([1.0, 0.5, 0.0])


def test_lambda_weights_and_loss_by_hand():
    # G = 2^ψ − 1 = (1, √2 − 1, 0); 1/D(τ) = 1/log2(1 + τ) = (1/log2 3, 1, 1/log2 4) = (0.6309298, 1, 0.5)
    # Δ12 = (2 − √2)·(1 − 0.6309298) = 0.2161963;  Δ13 = 1·(0.6309298 − 0.5) = 0.1309298;  Δ23 = (√2 − 1)·0.5
    # L = Δ12·log(1 + e^{1}) + Δ13·log(1 + e^{−1}) + Δ23·log(1 + e^{−2}) = 0.3512253
    losses, weights = lipo_lambda_loss(*_example(), beta=0.5)
    assert weights[0, 0, 1].item() == pytest.approx(0.2161963449, abs=1e-9)
    assert weights[0, 0, 2].item() == pytest.approx(0.1309297536, abs=1e-9)
    assert weights[0, 1, 2].item() == pytest.approx(0.2071067812, abs=1e-9)
    # only pairs with ψ_i > ψ_j carry weight
    assert weights[0, 1, 0] == weights[0, 2, 0] == weights[0, 2, 1] == weights[0].diagonal().abs().sum() == 0
    assert losses.item() == pytest.approx(0.3512253041, abs=1e-9)


def test_gradient_is_the_lambda_weighted_logistic_gradient():
    policy, reference, labels = _example()
    policy.requires_grad_()
    losses, _ = lipo_lambda_loss(policy, reference, labels, beta=0.5)
    losses.sum().backward()
    # ∂L/∂ℓ_1 = −β·[Δ12·σ(−(s1 − s2)) + Δ13·σ(−(s1 − s3))], with s1 − s2 = −1, s1 − s3 = 1
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = -0.5 * (0.2161963449 * sig(1) + 0.1309297536 * sig(-1))
    assert policy.grad[0, 0].item() == pytest.approx(expected, abs=1e-9)
    assert policy.grad.sum().item() == pytest.approx(0.0, abs=1e-12)  # pairwise: only differences matter


def test_the_order_of_the_columns_does_not_matter():
    policy, reference, labels = _example()
    permutation = [2, 0, 1]
    first, _ = lipo_lambda_loss(policy, reference, labels, beta=0.5)
    second, _ = lipo_lambda_loss(policy[:, permutation], reference[:, permutation], labels[:, permutation], beta=0.5)
    torch.testing.assert_close(first, second)


def test_ties_carry_no_weight_and_a_pair_is_weighted_dpo():
    policy, reference, _ = _example()
    losses, weights = lipo_lambda_loss(policy, reference, T([0.3, 0.3, 0.3]), beta=0.5)
    assert losses.item() == 0.0 and weights.abs().sum() == 0
    # K = 2 with labels (1, 0): Δ = (2^1 − 1)·(1/log2 2 − 1/log2 3) whatever the policy's order, times DPO's loss
    pc, pr, rc, rr = (torch.tensor([v], dtype=torch.float64) for v in (-3.0, -5.0, -4.0, -4.5))
    losses, _ = lipo_lambda_loss(torch.stack([pc, pr], 1), torch.stack([rc, rr], 1), T([1.0, 0.0]), beta=0.3)
    dpo, _, _ = dpo_loss(pc, pr, rc, rr, beta=0.3)
    torch.testing.assert_close(losses, (1 - 1 / math.log2(3)) * dpo)


def test_objective_on_a_listwise_batch():
    policy, reference, labels = _example()
    # K blocks of B: sequence k of every example together
    batch = FeedbackBatch(policy_logps=policy.T.reshape(-1), reference_logps=reference.T.reshape(-1),
                          lengths=torch.full((3,), 5), scores=labels)
    method = get_method("lipo")
    loss, metrics = method.objective(batch, method.hyperparameters({"beta": 0.5}))
    assert loss.item() == pytest.approx(0.3512253041, abs=1e-9)
    assert metrics["rewards/accuracy"].item() == pytest.approx(2 / 3)  # (1, 3) and (2, 3) right, (1, 2) wrong
    assert method.feedback == "listwise" and method.needs_reference and method.paper.arxiv == "2402.01878"
    assert method.taxonomy["feedback-arity"] == "listwise" and method.taxonomy["reference"] == "reference-based"
