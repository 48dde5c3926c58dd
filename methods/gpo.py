"""Generalized Preference Optimization (GPO): one offline loss family, parametrised by a convex function f.

Tang et al. 2024, "Generalized Preference Optimization: A Unified Approach to Offline Alignment"
(arXiv 2402.05749). With ℓ(y) the policy's sequence log-prob, ℓ_ref(y) the reference's and
h = [ℓ(y_w) − ℓ_ref(y_w)] − [ℓ(y_l) − ℓ_ref(y_l)] the log-ratio margin (as in ``methods/dpo.py``), GPO is

    loss = f(β · h)

for a convex f, read as a binary-classification loss on the margin ρ = β·h. The paper's Table 1 lists
(names as used here):

    logistic             f(ρ) = log(1 + e^−ρ)        → DPO
    hinge                f(ρ) = max(0, 1 − ρ)        → SLiC (on the reference-relative margin)
    squared              f(ρ) = (ρ − 1)²             → IPO
    exponential          f(ρ) = e^−ρ                 (new in GPO)
    truncated-quadratic  f(ρ) = max(0, 1 − ρ)²       (new in GPO)
    savage               f(ρ) = 1 / (1 + e^ρ)²       (new in GPO)

Every f decreases at 0 (f'(0) < 0), which is what makes f(β·h) a preference loss. All are convex except
Savage's, a bounded (≤ 1), hence non-convex, robust classification loss — concave for ρ < −ln 2 — which the
paper lists beside the convex ones.

How each instance maps onto this suite's entries (the scaling conventions differ, so the identities are
exact only with the factors below; ``tests/test_gpo.py`` checks them on the entries' objectives):

* logistic at β is ``dpo`` at β exactly: −log σ(β·h).
* squared at β: (β·h − 1)² = β²·(h − 1/β)². ``ipo`` (τ = its ``beta``, sums as in the IPO paper) is
  (h − 1/(2τ))², so GPO-squared at β = 2τ equals (2τ)² · IPO(τ): the same minimiser h = 1/(2τ), the
  gradient scaled by the constant 4τ².
* hinge at β is TRL's ``loss_type="hinge"`` (``methods.dpo_family.hinge_loss``) exactly:
  max(0, 1 − β·h). ``slic-hf`` is the paper's reference-free SLiC, max(0, δ − ℓ(y_w) + ℓ(y_l)) + λ·NLL:
  with the reference log-probs at 0 (no reference) and λ = 0 it is δ · GPO-hinge at β = 1/δ, since
  max(0, δ − x) = δ · max(0, 1 − x/δ). GPO has no SFT regulariser: SLiC-HF's λ·NLL(y_ref) term lies
  outside f.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from methods.common import pairwise_reward_metrics, taxonomy
from suite.core.errors import ConfigError
from suite.core.ranges import Range
from suite.method.registry import FeedbackBatch, Method, Paper, register

GPO_PAPER = Paper("Generalized Preference Optimization: A Unified Approach to Offline Alignment", "2402.05749")

# f(ρ) for each convex function of the paper's Table 1.
CONVEX_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "logistic": lambda rho: F.softplus(-rho),  # log(1 + e^−ρ) = −log σ(ρ), overflow-free
    "hinge": lambda rho: torch.relu(1 - rho),
    "squared": lambda rho: (rho - 1) ** 2,
    "exponential": lambda rho: torch.exp(-rho),
    "truncated-quadratic": lambda rho: torch.relu(1 - rho) ** 2,
    "savage": lambda rho: torch.sigmoid(-rho) ** 2,  # 1/(1 + e^ρ)² = σ(−ρ)²
}


def gpo_loss(
    policy_chosen_logps: torch.Tensor,
    policy_rejected_logps: torch.Tensor,
    reference_chosen_logps: torch.Tensor,
    reference_rejected_logps: torch.Tensor,
    *,
    beta: float,
    f: str,
) -> torch.Tensor:
    """GPO (Tang et al. 2024, eq. 4), per pair: f(β·h) with f one of :data:`CONVEX_FUNCTIONS`.

    h = [ℓ(y_w) − ℓ_ref(y_w)] − [ℓ(y_l) − ℓ_ref(y_l)] from sequence-level sums. See the module docstring
    for how the logistic, squared and hinge instances relate to ``dpo``, ``ipo`` and ``slic-hf``.
    """
    if f not in CONVEX_FUNCTIONS:
        raise ConfigError(f"gpo: unknown convex function f={f!r}; known: {', '.join(CONVEX_FUNCTIONS)}")
    margin = (policy_chosen_logps - reference_chosen_logps) - (policy_rejected_logps - reference_rejected_logps)
    return CONVEX_FUNCTIONS[f](beta * margin)


def gpo_objective(batch: FeedbackBatch, hp: dict):
    policy_chosen, policy_rejected, reference_chosen, reference_rejected = batch.pairwise()
    losses = gpo_loss(policy_chosen, policy_rejected, reference_chosen, reference_rejected, beta=hp["beta"], f=hp["f"])
    beta = hp["beta"]
    metrics = pairwise_reward_metrics(beta * (policy_chosen - reference_chosen), beta * (policy_rejected - reference_rejected))
    return losses.mean(), metrics


register(
    Method(
        id="gpo",
        name="GPO",
        paper=GPO_PAPER,
        feedback="pairwise",
        taxonomy=taxonomy(reward_form="preference"),
        needs_reference=True,
        defaults={
            # The paper fixes no default f (its study compares them all). Exponential is the first of its
            # new variants; logistic and squared are the dpo and ipo entries (see the module docstring).
            "f": "exponential",
            # β: the paper sweeps it per f (its optimal value differs by f, as its theory predicts);
            # 0.1 is DPO's default. lr 5e-6 as the DPO-family entries.
            "beta": 0.1,
            "learning_rate": 5e-6,
        },
        objective=gpo_objective,
        ranges={"f": Range(choices=tuple(sorted(CONVEX_FUNCTIONS)))},
        description="A convex function f of the margin β·h: logistic = DPO, squared = IPO, hinge = SLiC; "
                    "also exponential, truncated quadratic and Savage.",
    )
)
