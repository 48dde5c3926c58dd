"""Synthetic FeedbackBatch inputs for any registered method's objective."""

import torch
from suite.method.registry import FeedbackBatch


SEQUENCES_PER_EXAMPLE = {"pairwise": 2, "listwise": 4}


def synthetic_batch(method, examples: int = 4, tokens: int = 5, seed: int = 0, logp_scale: float = 3.0,
                    reference_noise: float = 0.5, dtype=torch.float64) -> FeedbackBatch:
    """A batch of ``method``'s feedback type: per-token log-probs in (-logp_scale, 0], the reference the
    policy plus ``reference_noise`` Gaussian noise per sequence; ``examples`` must be even (binary labels
    alternate). Also used by tests/unit/data/test_properties.py with random arguments."""
    generator = torch.Generator().manual_seed(seed)
    k = SEQUENCES_PER_EXAMPLE.get(method.feedback, 1)
    n = k * examples
    token_mask = torch.ones(n, tokens, dtype=torch.bool)
    token_mask[::2, -2:] = False  # varied lengths
    token_logps = (-torch.rand(n, tokens, generator=generator, dtype=dtype) * logp_scale * token_mask).requires_grad_()
    batch = FeedbackBatch(
        policy_logps=token_logps.sum(-1),
        lengths=token_mask.sum(-1),
        reference_logps=(token_logps.detach().sum(-1)
                         + torch.randn(n, generator=generator, dtype=dtype) * reference_noise)
        if method.needs_reference else None,
        token_logps=token_logps,
        token_mask=token_mask,
    )
    if method.feedback == "binary":
        batch.labels = torch.tensor([1.0, 0.0] * (examples // 2), dtype=dtype)
    if method.feedback == "scalar":
        batch.scores = torch.rand(examples, generator=generator, dtype=dtype)
    if method.feedback == "listwise":
        batch.scores = torch.sort(torch.rand(examples, k, generator=generator, dtype=dtype), descending=True).values
    if "mismatched_pairs" in method.extra_inputs:
        batch.mismatched_policy_logps = batch.policy_logps - 0.3
        batch.mismatched_reference_logps = batch.reference_logps
    if "sequence_kl" in method.extra_inputs:
        batch.sequence_kl = torch.rand(n, generator=generator, dtype=dtype)
    if "values" in method.extra_inputs:
        batch.values = torch.zeros(n, dtype=dtype, requires_grad=True)
    if "delta_l1" in method.extra_inputs:
        batch.delta_l1 = torch.tensor(2.0, dtype=dtype, requires_grad=True)
    return batch, token_logps

