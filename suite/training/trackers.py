"""Experiment trackers for every training loop: ``train.report_to: [tensorboard, mlflow, wandb, trackio]``.

The offline Trainer reports through its own integrations (``TrainingArguments.report_to``); the step loops
(online methods, reward models: suite.training.loop.StepLoop) drive the very same transformers integration
callbacks with the same step records, so a curve looks the same whichever loop made it. Each run is its own
tracker run, named by its run id (``<label>-s<seed>-<hash>``; the method id added when a label names a
variant; ``-stage<k>`` per stage of a staged method).

Where the logs go: TensorBoard event files in the run folder (``runs/<id>/tensorboard/``); MLflow to
``MLFLOW_TRACKING_URI`` (e.g. ``file:results/mlruns``; MLflow's default otherwise), experiment
``MLFLOW_EXPERIMENT_NAME``; Weights & Biases and Trackio to their project (``WANDB_PROJECT``; offline with
``WANDB_MODE=offline``). Which trackers a run reports to never changes its results: the key is not part of
the run id.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from suite.core.errors import ConfigError

# tracker -> (module it needs, pip install command)
TRACKERS = {
    "tensorboard": ("tensorboard", "pip install tensorboard  (or pip install 'alignsuite[trackers]')"),
    "mlflow": ("mlflow", "pip install mlflow  (or pip install 'alignsuite[trackers]')"),
    "wandb": ("wandb", "pip install wandb"),
    "trackio": ("trackio", "pip install trackio"),
}
TENSORBOARD_DIR = "tensorboard"


def check_trackers(names, key: str = "train.report_to") -> list[str]:
    """``names`` if each is a known tracker whose package is installed; one ConfigError otherwise."""
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{key}: expected a list of tracker names ({', '.join(TRACKERS)}), got {names!r}")
    for index, name in enumerate(names):
        if name not in TRACKERS:
            raise ConfigError(f"{key}[{index}]: unknown tracker {name!r}; known: {', '.join(TRACKERS)}")
        module, install = TRACKERS[name]
        if importlib.util.find_spec(module) is None:
            raise ConfigError(f"{key}[{index}]: tracker {name!r} needs the {module} package, which is not "
                              f"installed: {install}")
    return list(dict.fromkeys(names))


def tracker_run_name(run_id: str, method_id: str | None = None, label: str | None = None,
                     stage: int | None = None) -> str:
    """The tracker run's name: the run id (label and seed in it), the method id when the label is a variant's."""
    name = run_id if not method_id or method_id == label else f"{method_id}.{run_id}"
    return name + (f"-stage{stage}" if stage else "")


def place_logs(callbacks, run_dir: Path, stage: int | None = None) -> None:
    """Point TensorBoard's writer at the run folder (the Trainer's default is under checkpoints/, removed
    when the run completes)."""
    from transformers.integrations import TensorBoardCallback

    for callback in callbacks:
        if isinstance(callback, TensorBoardCallback) and callback.tb_writer is None:
            callback.logging_dir = str(Path(run_dir) / TENSORBOARD_DIR / (f"stage{stage}" if stage else ""))


def finish_runs(callbacks) -> None:
    """End the tracker runs a training opened that the integrations leave open (W&B's: the next run in this
    process would otherwise log into it), so every run of a sweep is its own tracker run."""
    from transformers.integrations import WandbCallback

    for callback in callbacks:
        if isinstance(callback, WandbCallback) and getattr(callback, "_wandb", None) is not None \
                and callback._wandb.run is not None:
            callback._wandb.finish()


class LoopTrackers:
    """transformers' integration callbacks driven by a step loop: begin, one log per step, end."""

    def __init__(self, report_to: list[str], run_dir: Path, run_name: str, hyperparameters: dict | None = None):
        from transformers import TrainerControl, TrainerState, TrainingArguments
        from transformers.integrations import get_reporting_integration_callbacks

        self.enabled = bool(report_to)
        self.callbacks = [cls() for cls in get_reporting_integration_callbacks(list(report_to))] if report_to else []
        if not self.enabled:
            return
        # what the callbacks read: the run name, report_to, and the settings they log as parameters
        self.args = TrainingArguments(output_dir=str(Path(run_dir) / "checkpoints"), report_to=list(report_to),
                                      run_name=run_name, use_cpu=True, **(hyperparameters or {}))
        self.state, self.control = TrainerState(), TrainerControl()
        place_logs(self.callbacks, run_dir)

    def begin(self, model, max_steps: int, step: int = 0) -> None:
        if self.enabled:
            self.state.max_steps, self.state.global_step = max_steps, step
            for callback in self.callbacks:
                callback.on_train_begin(self.args, self.state, self.control, model=model)

    def log(self, step: int, record: dict) -> None:
        if self.enabled:
            self.state.global_step = step
            logs = {k: v for k, v in record.items()
                    if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}
            self.state.log_history.append({**logs, "step": step})
            for callback in self.callbacks:
                callback.on_log(self.args, self.state, self.control, logs=logs)

    def end(self, model=None) -> None:
        if self.enabled:
            for callback in self.callbacks:
                callback.on_train_end(self.args, self.state, self.control, model=model)
            finish_runs(self.callbacks)
            self.enabled = False
