"""GPO (methods/gpo.py): hand-computed values of every convex function, and its logistic / squared / hinge
instances against the registered dpo, ipo and slic-hf objectives on the same tensors."""

import math

import pytest
import torch

from methods.dpo_family import hinge_loss
from methods.gpo import CONVEX_FUNCTIONS, gpo_loss
from suite.core.errors import ConfigError
from suite.method.registry import FeedbackBatch, get_method

T = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731

# f(ρ) at ρ = 1, −1, 0.5 (ρ = β·h), computed by hand from Table 1's formulas:
# logistic ln(1 + e^−ρ); hinge max(0, 1 − ρ); squared (ρ − 1)²; exponential e^−ρ; truncated quadratic
# max(0, 1 − ρ)²; Savage 1/(1 + e^ρ)².
HAND = {
    "logistic": (0.3132616875, 1.3132616875, 0.4740769842),
    "hinge": (0.0, 2.0, 0.5),
    "squared": (0.0, 4.0, 0.25),
    "exponential": (0.3678794412, 2.7182818285, 0.6065306597),
    "truncated-quadratic": (0.0, 4.0, 0.25),
    "savage": (0.0723294881, 0.5344466454, 0.1425369566),
}


def test_the_paper_s_six_convex_functions_are_all_there():
    assert set(CONVEX_FUNCTIONS) == set(HAND)


@pytest.mark.parametrize("f", list(HAND))
def test_gpo_loss_hand_values(f):
    # policy (chosen, rejected) log-probs and reference ones giving h = 2, −2, 1; β = 0.5 → ρ = 1, −1, 0.5
    policy_chosen, policy_rejected = T(-1.0, -3.0, -2.0), T(-3.0, -1.0, -3.0)
    reference_chosen, reference_rejected = T(-2.0, -2.0, -2.0), T(-2.0, -2.0, -2.0)
    losses = gpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta=0.5, f=f)
    assert losses.tolist() == pytest.approx(HAND[f], abs=1e-9)


def test_convexity_and_decrease_at_zero():
    """f'(0) < 0 for every f (the paper's condition for a valid preference loss); all are convex except
    Savage's, which is bounded (at most 1) and so cannot be convex: it is concave for ρ < −ln 2."""
    rho = torch.linspace(-4, 4, 161, dtype=torch.float64)
    for name, f in CONVEX_FUNCTIONS.items():
        values = f(rho)
        second_difference = values[:-2] - 2 * values[1:-1] + values[2:]
        convex = bool((second_difference >= -1e-12).all())
        assert convex == (name != "savage"), name
        zero = torch.zeros((), dtype=torch.float64, requires_grad=True)
        (slope,) = torch.autograd.grad(f(zero), zero)
        assert slope < 0, name


def test_unknown_f_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown convex function f='cubic'"):
        gpo_loss(T(0.0), T(0.0), T(0.0), T(0.0), beta=0.1, f="cubic")


def _pairs(seed=0, n=6, with_reference=True):
    generator = torch.Generator().manual_seed(seed)
    logps = -torch.rand(2 * n, generator=generator, dtype=torch.float64) * 30
    reference = (logps + torch.randn(2 * n, generator=generator, dtype=torch.float64) * 3) if with_reference \
        else torch.zeros(2 * n, dtype=torch.float64)
    lengths = torch.randint(1, 40, (2 * n,), generator=generator)
    return FeedbackBatch(policy_logps=logps, lengths=lengths, reference_logps=reference)


def _objective(method_id, batch, **overrides):
    method = get_method(method_id)
    loss, _ = method.objective(batch, method.hyperparameters(overrides))
    return loss


@pytest.mark.parametrize("beta", [0.05, 0.1, 0.7])
def test_logistic_instance_is_the_dpo_entry(beta):
    batch = _pairs()
    torch.testing.assert_close(_objective("gpo", batch, f="logistic", beta=beta), _objective("dpo", batch, beta=beta))


@pytest.mark.parametrize("tau", [0.05, 0.1, 0.7])
def test_squared_instance_at_two_tau_is_the_ipo_entry_times_four_tau_squared(tau):
    batch = _pairs(1)
    gpo = _objective("gpo", batch, f="squared", beta=2 * tau)
    ipo = _objective("ipo", batch, beta=tau)  # the paper's sums (length_normalize false, the default)
    torch.testing.assert_close(gpo, (2 * tau) ** 2 * ipo)


@pytest.mark.parametrize("delta", [0.5, 1.0, 4.0])
def test_hinge_instance_is_the_slic_hf_entry_without_its_sft_term(delta):
    """slic-hf is reference-free: GPO on the same policy log-probs with the reference at 0."""
    batch = _pairs(2, with_reference=False)
    gpo = _objective("gpo", batch, f="hinge", beta=1 / delta)
    slic = _objective("slic-hf", batch, delta=delta, regularization_weight=0.0)
    torch.testing.assert_close(delta * gpo, slic)
    # with its SFT term on, slic-hf adds λ · (per-token NLL of the chosen response)
    chosen_mean_logps, _ = batch.pairwise_mean_logps()
    torch.testing.assert_close(_objective("slic-hf", batch, delta=delta, regularization_weight=0.5),
                               slic + 0.5 * (-chosen_mean_logps).mean())


def test_hinge_instance_is_trl_s_hinge_on_the_reference_margin():
    batch = _pairs(3)
    for beta in (0.1, 0.5):
        torch.testing.assert_close(gpo_loss(*batch.pairwise(), beta=beta, f="hinge"),
                                   hinge_loss(*batch.pairwise(), beta=beta))


def test_new_variants_differ_from_dpo_but_agree_on_the_direction_of_the_gradient():
    """On a margin of 0 every f pushes h up (f'(0) < 0); they differ in how hard."""
    policy_chosen = T(-5.0).requires_grad_()
    slopes = {}
    for f in CONVEX_FUNCTIONS:
        policy_chosen.grad = None
        gpo_loss(policy_chosen, T(-5.0), T(-5.0), T(-5.0), beta=1.0, f=f).backward()
        slopes[f] = policy_chosen.grad.item()
    # f'(0): logistic −½, hinge −1, squared −2, exponential −1, truncated quadratic −2, Savage −2·¼·½ = −¼
    assert slopes == pytest.approx({"logistic": -0.5, "hinge": -1.0, "squared": -2.0, "exponential": -1.0,
                                    "truncated-quadratic": -2.0, "savage": -0.25})


def test_registry_entry():
    method = get_method("gpo")
    assert method.paper.arxiv == "2402.05749" and method.feedback == "pairwise" and method.needs_reference
    assert method.defaults["f"] in CONVEX_FUNCTIONS and len(method.taxonomy) == 13
    assert math.isfinite(float(_objective("gpo", _pairs(4))))
