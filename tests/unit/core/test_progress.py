"""Progress lines: drawn on a terminal, silent under -q and when stderr is not a terminal; a sweep's runs
done / total with an ETA; a training run's step, loss and ETA."""

import io
import logging
import sys

import yaml

from suite.cli import main
from suite.core.log import configure
from suite.core.progress import ProgressLine, SweepProgress, format_seconds, progress_enabled


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_drawn_only_on_a_terminal_and_not_when_quiet():
    configure(0)
    assert progress_enabled(Terminal()) and not progress_enabled(io.StringIO())
    configure(-1)
    assert not progress_enabled(Terminal())
    configure(0)
    screen = Terminal()
    with ProgressLine("run-1 training", 4, "steps", stream=screen, interval=0) as line:
        for step in range(1, 5):
            line.update(done=step, loss=0.5 / step)
    text = screen.getvalue()
    assert "\r" in text and "run-1 training: 2/4 steps  loss 0.25  ETA" in text and text.endswith("\n")
    assert text.count("\n") == 1  # one line, rewritten in place
    silent = io.StringIO()
    ProgressLine("x", 2, stream=silent, interval=0).update(done=1)
    assert silent.getvalue() == ""
    assert format_seconds(3725) == "1:02:05" and format_seconds(65) == "1:05" and format_seconds(None) == "?"


def test_sweep_progress_logs_runs_done_and_eta(caplog):
    sweep = SweepProgress(3, logging.getLogger("suite.test"))
    logging.getLogger("suite.test").propagate = True
    with caplog.at_level(logging.INFO, logger="suite.test"):
        sweep.run_finished("a", "complete")
        sweep.run_finished("b", "failed")
        sweep.run_finished("c", "complete")
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("sweep: 1/3 runs done (a: complete), ETA ") and lines[2] == "sweep: 3/3 runs done (c: complete)"


def test_a_run_on_a_terminal_shows_training_progress_and_the_sweep(tmp_path, pairwise_file, monkeypatch):
    config = {"name": "p", "model": "tiny-llama", "dataset": {"path": str(pairwise_file), "format": "pairwise"},
              "methods": ["dpo"], "data": {"heldout_fraction": 0.25},
              "train": {"max_steps": 3, "per_device_batch_size": 2, "max_length": 64, "checkpoint_steps": 0},
              "eval": {"leaderboard": None, "alignment_pairs": 2, "generation_prompts": 2, "max_new_tokens": 2}}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(config))
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    assert main(["run", str(path), "--out", str(tmp_path / "r")]) == 0
    text = screen.getvalue()
    assert "training: 3/3 steps  loss " in text and "generation (response length): 2/2 prompts" in text
    assert "sweep: 1/2 runs done" in text and "sweep: 2/2 runs done" in text
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(["run", str(path), "--out", str(tmp_path / "q"), "-q"]) == 0
    assert "training:" not in quiet.getvalue() and "sweep:" not in quiet.getvalue()
