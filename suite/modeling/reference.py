"""The reference policy: a log-prob cache computed once per reference model and reused by every method,
and — for methods that need its whole next-token distribution or a fresh rollout's log-probs — the
reference run live next to the policy (:class:`LiveReference`).

Keyed by (reference weights' content hash, sequence content hash), so any method, feedback type or run
that scores the same tokens under the same reference reuses the value instead of keeping a second
model in memory at every training step. One JSON file per reference model, updated atomically under a
file lock so concurrent runs can share it.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from suite.core.errors import SuiteError
from suite.modeling.sequences import EncodedSequence, score_sequences


class ReferenceCache:
    def __init__(self, directory: Path, model_fingerprint: str):
        self.path = Path(directory) / f"{model_fingerprint}.json"
        self.fingerprint = model_fingerprint
        self.hits = 0
        self.computed = 0

    def _read(self) -> dict[str, float]:
        if not self.path.is_file():
            return {}
        try:
            return json.loads(self.path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}  # a damaged cache is only lost work: recompute

    @contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def logps(self, model, sequences: list[EncodedSequence], pad_token_id: int, batch_size: int = 8) -> list[float]:
        """Reference log-probs for ``sequences``: cached ones read, missing ones computed with ``model``."""
        known = self._read()
        keys = [s.key for s in sequences]
        missing = list(dict.fromkeys(k for k in keys if k not in known))
        if missing and model is None:
            raise SuiteError(f"{len(missing)} reference log-probs are not in {self.path} and no reference model was given")
        if missing:
            by_key = {s.key: s for s in sequences}
            values = score_sequences(model, [by_key[k] for k in missing], pad_token_id, batch_size)
            fresh = dict(zip(missing, values))
            with self._locked():
                merged = {**self._read(), **fresh}
                handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".ref-")
                with os.fdopen(handle, "w") as out:
                    json.dump(merged, out)
                os.replace(tmp, self.path)
            known.update(fresh)
        self.computed += len(missing)
        self.hits += len(keys) - len(missing)
        return [known[k] for k in keys]


class LiveReference:
    """The reference policy run next to the policy being trained: with a LoRA adapter, the same network
    with the adapter switched off (no second copy); with full fine-tuning, a frozen copy taken when this
    is built — before training, and before any checkpoint is restored."""

    def __init__(self, policy):
        import copy

        from peft import PeftModel

        self.frozen = None if isinstance(policy, PeftModel) else copy.deepcopy(policy).eval().requires_grad_(False)

    @contextmanager
    def model(self, policy):
        """The reference network, given the policy (whose adapter is off inside the block, with LoRA)."""
        if self.frozen is not None:
            yield self.frozen
        else:
            with policy.disable_adapter():
                yield policy
