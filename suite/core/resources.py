"""Where the shipped files are: leaderboard specs, recipes, paper tables, accelerate configs.

In a checkout they are the top-level folders ``leaderboards/`` and ``reports/``; ``pyproject.toml`` maps
them into the package as ``suite/shipped/<name>`` so that a wheel carries them. Both are found through
``importlib.resources`` from the ``suite`` package: the packaged copy first (an installed wheel), else the
checkout's folder beside the package (an editable install or a source tree).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path

from suite.core.errors import SuiteError

SHIPPED = ("leaderboards", "reports")


@cache
def shipped_dir(name: str) -> Path:
    """The folder of shipped files ``name`` (``leaderboards`` or ``reports``) as a real path."""
    if name not in SHIPPED:
        raise ValueError(f"unknown shipped folder {name!r}; known: {', '.join(SHIPPED)}")
    package = Path(str(resources.files("suite")))
    for folder in (package / "shipped" / name, package.parent / name):
        if folder.is_dir():
            return folder
    raise SuiteError(f"the suite's shipped {name}/ folder is missing from this installation (looked in "
                     f"{package / 'shipped' / name} and {package.parent / name}): reinstall alignsuite")
