"""TRL 1.16.0 parity for the survey methods added in issue 21, where TRL implements the same loss.

TRL has no GPO entry, no Pairwise CRINGE and no LiPO (its DPOTrainer loss types are sigmoid, hinge, ipo,
exo_pair, nca_pair, robust, bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sft,
sigmoid_norm). What it does implement are three of GPO's instances: ``sigmoid`` is GPO-logistic, ``hinge``
GPO-hinge, and ``ipo`` GPO-squared up to a constant and TRL's length normalisation (equal where every
completion is one token). Exponential, truncated-quadratic and Savage have no TRL counterpart.
"""

from __future__ import annotations

import pytest

pytest.importorskip("trl")

import torch  # noqa: E402
from support import trl_oracle as oracle  # noqa: E402

from methods.gpo import gpo_loss  # noqa: E402

TOL = {"rtol": 1e-6, "atol": 1e-6}
DATA = [(0, 1, "moderate"), (2, 8, "moderate"), (4, 8, "extreme")]


@pytest.fixture(scope="module", autouse=True)
def _pinned_trl():
    oracle.require_pinned_trl()


@pytest.mark.parametrize("seed,size,regime", DATA)
@pytest.mark.parametrize("beta", [0.1, 0.5])
@pytest.mark.parametrize("f,loss_type", [("logistic", "sigmoid"), ("hinge", "hinge")])
def test_gpo_instances_match_trl_loss_types(seed, size, regime, beta, f, loss_type):
    batch = oracle.make_pair_batch(seed, size, regime=regime)
    ours = gpo_loss(*batch.sums(), beta=beta, f=f)
    torch.testing.assert_close(ours.mean(), oracle.trl_dpo_loss(batch, loss_type, beta=beta)["loss"], **TOL)
    torch.testing.assert_close(ours, oracle.trl_dpo_per_pair_losses(batch, loss_type, beta=beta), **TOL)


@pytest.mark.parametrize("tau", [0.1, 0.5])
def test_gpo_squared_is_trl_ipo_times_four_tau_squared_on_one_token_completions(tau):
    """TRL's ipo divides each log-ratio by the completion length; with 1-token completions sums and means
    coincide, and GPO-squared at β = 2τ is (2τ)² times IPO(τ)."""
    batch = oracle.make_pair_batch(31, 6, max_completion=1)
    assert (batch.tokens.lengths == 1).all()
    ours = gpo_loss(*batch.sums(), beta=2 * tau, f="squared")
    torch.testing.assert_close(ours, (2 * tau) ** 2 * oracle.trl_dpo_per_pair_losses(batch, "ipo", beta=tau), **TOL)
