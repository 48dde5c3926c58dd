"""Training progress on one line per run (step/total, loss, ETA): a Trainer callback for the offline
trainer; :class:`suite.training.loop.StepLoop` draws the same line itself. Drawn only on a terminal
without ``-q`` (suite.core.progress)."""

from __future__ import annotations

from transformers import TrainerCallback

from suite.core.progress import ProgressLine


def train_label(run_dir, stage: int | None = None) -> str:
    """``<run id> training`` (``stage k``): the run folder is named by the run id."""
    name = getattr(run_dir, "name", str(run_dir))
    return f"{name} training" + (f" stage {stage}" if stage else "")


class TrainProgressCallback(TrainerCallback):
    """The offline Trainer's step and loss as a progress line."""

    def __init__(self, label: str):
        self.label = label
        self.line: ProgressLine | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.line = ProgressLine(self.label, state.max_steps or args.max_steps, "steps")
        self.line.update(done=state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.line is not None and logs and "loss" in logs:
            self.line.update(done=state.global_step, loss=float(logs["loss"]))

    def on_train_end(self, args, state, control, **kwargs):
        if self.line is not None:
            self.line.close()
