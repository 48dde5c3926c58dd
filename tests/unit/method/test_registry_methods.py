"""Every registered method: the issue's ids are present, and each objective runs on a batch of its
feedback type, giving a finite loss whose gradient reaches the policy log-probs."""

import pytest
import torch

from suite.method.registry import all_methods
from support.batches import synthetic_batch

OFFLINE_IDS = {
    "sft", "dpo", "una-pairwise", "sdpo", "tdpo", "ipo", "cdpo", "robust-dpo", "r-dpo", "dpop", "beta-dpo", "slic-hf",
    "nca", "bco", "sppo-hard", "exo", "apo-zero", "aot", "discopop", "simpo", "cpo", "orpo",
    "kto", "apo-zero-unpaired", "npo", "una-binary-mse", "una-binary-bce", "una-score-mse", "dro", "rrhf", "pro",
}

def test_every_offline_method_of_the_survey_is_registered():
    assert OFFLINE_IDS <= {m.id for m in all_methods()}



@pytest.mark.parametrize("method", [m for m in all_methods() if m.objective is not None], ids=lambda m: m.id)
def test_objective_runs_on_its_feedback_type(method):
    batch, leaf = synthetic_batch(method)
    loss, metrics = method.objective(batch, method.hyperparameters())
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all() and leaf.grad.abs().sum() > 0
    assert all(torch.isfinite(torch.as_tensor(v)).all() for v in metrics.values())
