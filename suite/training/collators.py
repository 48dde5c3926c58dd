"""Collators: the padded layout that stacks the k-th sequence of every example into one block.

Shared-prompt packing (``suite.training.packing``) is the other layout; the trainer chooses between them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from suite.modeling.sequences import pad_sequences


@dataclass
class FeedbackCollator:
    """Stacks the k-th sequence of every example into one block: [chosen…, rejected…, mismatched…]."""

    pad_token_id: int

    def __call__(self, examples: list[dict]) -> dict:
        per_example = len(examples[0]["sequences"])
        sequences = [ex["sequences"][k] for k in range(per_example) for ex in examples]
        mismatched = [ex["mismatched"][0] for ex in examples if "mismatched" in ex]
        batch = pad_sequences(sequences + mismatched, self.pad_token_id)
        batch["num_main"] = torch.tensor(len(sequences))
        if "reference_logps" in examples[0]:
            batch["reference_logps"] = torch.tensor(
                [ex["reference_logps"][k] for k in range(per_example) for ex in examples], dtype=torch.float32
            )
        if "mismatched_reference_logps" in examples[0]:
            batch["mismatched_reference_logps"] = torch.tensor(
                [ex["mismatched_reference_logps"][0] for ex in examples], dtype=torch.float32
            )
        for key, out in (("label", "labels"), ("score", "scores")):  # listwise scores: [B, K]
            if key in examples[0]:
                batch[out] = torch.tensor([ex[key] for ex in examples], dtype=torch.float32)
        return batch


