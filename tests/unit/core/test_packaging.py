"""The suite installs as a wheel: every package is listed in pyproject.toml, and the shipped folders
(leaderboards/, reports/) travel as package data found through importlib.resources."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib

import pytest

from support import REPO_ROOT


def test_pyproject_lists_every_package():
    listed = set(tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(path.parent.relative_to(REPO_ROOT).parts)
        for top in ("suite", "methods") for path in (REPO_ROOT / top).rglob("__init__.py")
    }
    shipped = {name for name in listed if name.startswith("suite.shipped.")}
    assert listed - shipped == on_disk
    assert shipped == {"suite.shipped.leaderboards", "suite.shipped.reports"}


def _run(command: list[str], cwd, env=None) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result


def test_the_installed_wheel_lists_leaderboards_and_plans_the_demo_from_another_directory(tmp_path):
    pytest.importorskip("setuptools")
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "results", "*.egg-info")
    for name in ("suite", "methods", "leaderboards", "reports"):
        shutil.copytree(REPO_ROOT / name, source / name, ignore=ignore)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", str(wheels),
          str(source)], cwd=tmp_path)
    (wheel,) = wheels.glob("alignsuite-*.whl")
    site = tmp_path / "site"
    _run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile", "--target", str(site),
          str(wheel)], cwd=tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = dict(os.environ, PYTHONPATH=str(site))
    where = _run([sys.executable, "-c", "import suite, methods; print(suite.__file__); print(methods.__file__)"],
                 cwd=elsewhere, env=env).stdout.split()
    assert all(path.startswith(str(site)) for path in where), where  # the wheel's copy, not this checkout
    boards = _run([sys.executable, "-m", "suite.cli", "leaderboards"], cwd=elsewhere, env=env).stdout
    for name in ("open-llm-v1", "open-llm-v2", "quick"):
        assert name in boards
    plan = _run([sys.executable, "-m", "suite.cli", "run", "demo", "--plan"], cwd=elsewhere, env=env).stdout
    assert "5 run(s) planned" in plan and "una-score-mse" in plan  # base + the demo's four methods
