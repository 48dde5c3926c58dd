"""Each loss's math on hand-computed values (values worked out by hand in the comments)."""

import math

import pytest
import torch

from methods.dpo import dpo_loss
from methods.kto import kto_loss
from methods.sft import sft_loss
from methods.una import una_bce_loss, una_implicit_score, una_mse_loss
from suite.evaluation.alignment import pair_metrics
from suite.method.registry import FeedbackBatch, all_methods, get_method

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731


def test_dpo_loss_hand_values():
    # pair 1: h = (-1 - -1.5) - (-2 - -1.5) = 1   -> -log σ(0.1)  = ln(1 + e^-0.1) = 0.6443967
    # pair 2: h = (-3 - -2) - (-1 - -2)    = -2  -> -log σ(-0.2) = ln(1 + e^0.2)  = 0.7981389
    losses, chosen, rejected = dpo_loss(T(-1, -3), T(-2, -1), T(-1.5, -2), T(-1.5, -2), beta=0.1)
    assert losses.tolist() == pytest.approx([0.6443967, 0.7981389], abs=1e-6)
    assert chosen.tolist() == pytest.approx([0.05, -0.1])
    assert rejected.tolist() == pytest.approx([-0.05, 0.1])


def test_dpo_gradient_pushes_chosen_up():
    policy_chosen = T(-1.0).requires_grad_()
    losses, _, _ = dpo_loss(policy_chosen, T(-1.0), T(-1.0), T(-1.0), beta=0.5)
    losses.sum().backward()
    # d/dpc −log σ(β h) = −β σ(−β h) = −0.5 · 0.5 at h = 0
    assert policy_chosen.grad.item() == pytest.approx(-0.25)


def test_kto_loss_hand_values():
    # KL estimate: mean((-1 - -2), (-2 - -2)) = 0.5
    # desirable, r = 1:    1 − σ(0.5·(1 − 0.5))  = 1 − σ(0.25) = 0.4378235
    # undesirable, r = −1: 1 − σ(0.5·(0.5 + 1))  = 1 − σ(0.75) = 0.3208213
    losses, rewards, kl = kto_loss(T(-1, -3), T(-2, -2), T(1, 0), T(-1, -2), T(-2, -2), beta=0.5)
    assert kl.item() == pytest.approx(0.5)
    assert losses.tolist() == pytest.approx([0.4378235, 0.3208213], abs=1e-6)
    assert rewards.tolist() == pytest.approx([0.5, -0.5])


def test_kto_reference_point_is_clamped_at_zero_and_weighted():
    # mismatched log-ratio mean is −1 → z0 = 0; desirable r = 0 → λ_D (1 − σ(0)) = 2 · 0.5
    losses, _, kl = kto_loss(T(-2.0), T(-2.0), T(1.0), T(-3.0), T(-2.0), beta=1.0, desirable_weight=2.0)
    assert kl.item() == 0.0
    assert losses.item() == pytest.approx(1.0)


def test_kto_reference_point_has_no_gradient():
    mismatched = T(0.0, 1.0).requires_grad_()
    losses, _, _ = kto_loss(T(-1.0).requires_grad_(), T(-2.0), T(1.0), mismatched, T(-2.0, -2.0), beta=1.0)
    losses.sum().backward()
    assert mismatched.grad is None or torch.all(mismatched.grad == 0)


def test_una_scores_and_losses_hand_values():
    # Δ = 1, β = 1: s = σ(1) = 0.7310586
    assert una_implicit_score(T(-1.0), T(-2.0), 1.0).item() == pytest.approx(0.7310586)
    mse = una_mse_loss(T(-1, -1), T(-2, -2), T(1, 0), beta=1.0)
    assert mse.tolist() == pytest.approx([(1 - 0.7310586) ** 2, 0.7310586**2], abs=1e-6)
    bce = una_bce_loss(T(-1, -1), T(-2, -2), T(1, 0), beta=1.0)
    assert bce.tolist() == pytest.approx([-math.log(0.7310586), -math.log(1 - 0.7310586)], abs=1e-6)
    # UNA-score: Δ = 0 → s = 0.5; target 0.25 → 0.0625
    assert una_mse_loss(T(-3.0), T(-3.0), T(0.25), beta=2.0).item() == pytest.approx(0.0625)


def test_una_bce_is_stable_for_large_margins():
    loss = una_bce_loss(T(0.0), T(-5000.0), T(0.0), beta=1.0)
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(5000.0)


def test_sft_loss_is_token_mean_nll():
    # (4 + 6) / (2 + 3) = 2
    assert sft_loss(T(-4, -6), T(2, 3)).item() == pytest.approx(2.0)


def test_objectives_use_the_batch_layout():
    # pairwise batches: chosen block first, then rejected
    batch = FeedbackBatch(policy_logps=T(-1, -3, -2, -1), lengths=T(1, 1, 1, 1), reference_logps=T(-1.5, -2, -1.5, -2))
    loss, metrics = get_method("dpo").objective(batch, {"beta": 0.1})
    assert loss.item() == pytest.approx((0.6443967 + 0.7981389) / 2, abs=1e-6)
    assert metrics["rewards/accuracy"].item() == pytest.approx(0.5)


def test_registry_entries_are_complete():
    ids = {m.id for m in all_methods()}
    assert {"sft", "dpo", "kto", "una-binary-mse", "una-binary-bce", "una-score-mse"} <= ids
    for method in all_methods():
        assert method.paper.title and method.paper.arxiv
        assert method.feedback in ("pairwise", "binary", "scalar", "sft", "listwise")
        if method.train_loop is not None:  # its own loop (reward model, online family; staged methods' stages)
            assert method.compose is None and "learning_rate" in method.defaults
            assert callable(method.objective) == method.staged  # a staged loop drives the offline objective
        elif method.compose is None:
            assert callable(method.objective) and "learning_rate" in method.defaults
        else:  # a composite trains nothing itself: its components carry the learning rates
            assert method.objective is None and callable(method.components)
        assert len(method.taxonomy) == 13


def test_pair_metrics_hand_values():
    # margins: (−1 − −2) − (−2 − −2) = 1 > 0 ; (−2 − −2) − (−1 − −1) = 0 → tie counts ½
    metrics = pair_metrics(T(-1, -2), T(-2, -1), T(-2, -2), T(-2, -1))
    assert metrics["reward_accuracy"] == pytest.approx(0.75)
    assert metrics["reward_margin"] == pytest.approx(0.5)
    assert metrics["logp_accuracy"] == pytest.approx(0.5)
    assert metrics["logratio_mean"] == pytest.approx((1 + 0 + 0 + 0) / 4)
