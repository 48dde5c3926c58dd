"""Evaluation: leaderboard specs run through lm-evaluation-harness on an in-memory model."""

from suite.evaluation.harness import EvalResult, evaluate_leaderboard
from suite.evaluation.leaderboard import (
    LeaderboardSpec,
    TaskSpec,
    list_leaderboards,
    load_leaderboard,
)

__all__ = ["EvalResult", "evaluate_leaderboard", "LeaderboardSpec", "TaskSpec", "list_leaderboards", "load_leaderboard"]
