"""The one error type users see: a message that names the file, row or key at fault."""


class SuiteError(Exception):
    """Bad input or a failed precondition; the CLI prints the message and exits non-zero."""


class ConfigError(SuiteError):
    """A bad experiment config (unknown key, wrong type, unknown method / dataset / model)."""


class DataError(SuiteError):
    """A malformed data file or record; the message names the file and row."""


class TrainingDiverged(SuiteError):
    """A NaN/inf loss or gradient: the run stops at that step and is recorded as failed."""

    def __init__(self, key: str, value: float, step: int, last_checkpoint: str | None):
        self.key, self.value, self.step, self.last_checkpoint = key, value, step, last_checkpoint
        where = f"last good checkpoint {last_checkpoint}" if last_checkpoint else "no checkpoint saved before it"
        super().__init__(f"training diverged: {key} is {value} at step {step} ({where})")


def check_finite(step: int, last_checkpoint: str | None = None, **values: float) -> None:
    """Raise :class:`TrainingDiverged` for the first NaN/inf among ``values`` (e.g. loss=…, grad_norm=…)."""
    import math

    for key, value in values.items():
        if value is not None and not math.isfinite(value):
            raise TrainingDiverged(key, value, step, last_checkpoint)
