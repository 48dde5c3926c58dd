"""Logging for the whole suite: one ``alignsuite`` logger tree, configured once by the CLI.

Modules log through ``logging.getLogger(__name__)`` (names under ``suite.``/``methods.``); the CLI's ``-v``
shows debug messages, ``-q`` only warnings and errors. Progress goes to stderr, so stdout stays the
command's result (a table, a path) and can be piped.
"""

from __future__ import annotations

import logging
import sys

LEVELS = {-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}
FORMAT = "%(asctime)s %(levelname).1s %(name)s: %(message)s"


def configure(verbosity: int = 0, stream=None) -> None:
    """Route the suite's loggers (``suite``, ``methods``) to ``stream`` (stderr) at the level ``verbosity``
    asks for: -1 quiet (warnings), 0 normal (progress), 1 verbose (debug). Calling it again replaces the
    handler, so tests and repeated CLI calls in one process do not print twice."""
    level = LEVELS[max(-1, min(1, verbosity))]
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    for name in ("suite", "methods"):
        logger = logging.getLogger(name)
        for old in list(logger.handlers):
            if getattr(old, "alignsuite", False):
                logger.removeHandler(old)
        handler.alignsuite = True
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
