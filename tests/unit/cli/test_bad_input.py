"""The bad-input corpus (tests/bad_inputs/cases.yaml): malformed configs, data files, mirrors, leaderboard
specs, results folders and command lines, each run through the real CLI.

Every case must give one error line that names the file, row or key (the case's regex), a non-zero exit,
no traceback (unless --debug), and no run recorded — `run` cases are rejected by the config check or the
runner's preflight, before any model is loaded.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from suite.cli import main
from support import BAD_INPUTS, REPO_ROOT

CORPUS = BAD_INPUTS
REPO = REPO_ROOT
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text())["cases"]
SUBPROCESS_CASES = [case for case in CASES if case.get("subprocess")]
# Cases that need lm-eval's whole task index (seconds to build) run with the slow tests.
PARAMETRIZED = [pytest.param(case, id=case["id"], marks=[pytest.mark.slow] if case.get("slow") else [])
                for case in CASES]


def _expand(text: str, tmp_path: Path) -> str:
    """``{out}``: a fresh results folder; ``{missing}``: a path that does not exist."""
    return text.replace("{out}", str(tmp_path / "results")).replace("{missing}", str(tmp_path / "missing"))


def _case_environment(case: dict, tmp_path: Path) -> dict[str, str]:
    env = {}
    for key, value in (case.get("env") or {}).items():
        value = _expand(value, tmp_path)
        env[key] = value if Path(value).is_absolute() else str(CORPUS / value)
    return env


def _error_line(stderr: str) -> str:
    """The one error line: argparse may print its usage before it; nothing else may be printed."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    errors = [line for line in lines if "error:" in line]
    assert len(errors) == 1 and errors[0] == lines[-1], f"expected one error line, last; got:\n{stderr}"
    if len(lines) > 1:  # only argparse adds lines: its usage text
        assert lines[0].startswith("usage: alignsuite"), f"more than the error line on stderr:\n{stderr}"
    return errors[0]


def _recorded_runs(results: Path) -> list[Path]:
    return sorted((results / "runs").glob("*/manifest.json")) if results.is_dir() else []


@pytest.fixture
def refuse_model_loading(monkeypatch):
    """Bad input must be rejected before any model is loaded: loading one fails the test."""
    import suite.modeling.models

    def refuse(name, **_):
        raise AssertionError(f"model {name!r} was loaded before the bad input was rejected")

    monkeypatch.setattr(suite.modeling.models, "load_model", refuse)


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse exits itself
        return exc.code


def test_the_corpus_is_large_and_every_file_in_it_is_used():
    ids = [case["id"] for case in CASES]
    assert len(ids) >= 100 and len(set(ids)) == len(ids)
    # the cases, and the configs (data files are named there too)
    index = "".join(path.read_text(errors="replace") for path in [CORPUS / "cases.yaml", *CORPUS.glob("configs/*")])
    for folder in ("configs", "data", "leaderboards", "mirrors", "stores", "recipes", "models"):
        for item in (CORPUS / folder).iterdir():
            assert f"{folder}/{item.name}" in index, f"{folder}/{item.name} is in the corpus but no case uses it"
    for case in CASES:
        assert set(case) <= {"id", "args", "env", "exit", "message", "subprocess", "slow"}, case["id"]
        assert case["exit"] != 0 and re.compile(case["message"])


def test_the_valid_base_config_passes_the_preflight(monkeypatch, tmp_path, refuse_model_loading):
    """The corpus's base config is valid: the `run` cases fail because of their one change, not the base."""
    from suite.config.schema import load_config
    from suite.execution.runner import Runner, plan_runs

    monkeypatch.chdir(CORPUS)
    binary = ["methods=[kto]", "dataset={path: data/good_binary.jsonl, format: binary}", "evaluate_base=false"]
    for overrides in ([], binary):
        config = load_config("configs/valid.yaml", overrides)
        Runner(config, tmp_path / "results").preflight(plan_runs(config))
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("case", PARAMETRIZED)
def test_bad_input_gives_one_clear_error(case, monkeypatch, tmp_path, capsys, refuse_model_loading):
    monkeypatch.chdir(CORPUS)
    monkeypatch.delenv("ALIGNSUITE_DATA", raising=False)  # only the cases that name a mirror get one
    for key, value in _case_environment(case, tmp_path).items():
        monkeypatch.setenv(key, value)
    status = run_cli([_expand(arg, tmp_path) for arg in case["args"]])
    out, err = capsys.readouterr()
    assert status == case["exit"], f"exit {status}, expected {case['exit']}; stderr:\n{err}"
    assert "Traceback" not in out + err
    line = _error_line(err)
    assert re.search(case["message"], line), f"{line!r} does not match {case['message']!r}"
    assert _recorded_runs(tmp_path / "results") == [], "a bad input left a run recorded"


def test_debug_shows_the_traceback_in_process(monkeypatch):
    """--debug re-raises the error (before or after the subcommand) instead of printing one line."""
    from suite.core.errors import ConfigError

    monkeypatch.chdir(CORPUS)
    for argv in (["--debug", "run", "configs/unknown_method.yaml"], ["run", "configs/unknown_method.yaml", "--debug"]):
        with pytest.raises(ConfigError, match="unknown method 'dpo-plus-plus'"):
            main(argv)


def _subprocess_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "ALIGNSUITE_DATA"}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


@pytest.fixture(scope="module")
def subprocess_results(tmp_path_factory):
    """Every subprocess case plus one --debug run, started together (each process pays the imports once)."""
    tmp_path = tmp_path_factory.mktemp("bad-input-subprocess")
    started = {}
    for case in SUBPROCESS_CASES + [{"id": "--debug", "args": ["--debug", "run", "configs/unknown_method.yaml",
                                                                 "--out", "{out}"]}]:
        folder = tmp_path / case["id"]
        folder.mkdir()
        env = {**_subprocess_environment(), **_case_environment(case, folder)}
        argv = [sys.executable, "-m", "suite.cli", *(_expand(arg, folder) for arg in case["args"])]
        started[case["id"]] = (folder, subprocess.Popen(argv, cwd=CORPUS, env=env, text=True,
                                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = {}
    for case_id, (folder, process) in started.items():
        out, err = process.communicate(timeout=300)
        results[case_id] = (folder, process.returncode, out, err)
    return results


@pytest.mark.parametrize("case", SUBPROCESS_CASES, ids=[case["id"] for case in SUBPROCESS_CASES])
def test_bad_input_in_a_real_process_exits_non_zero_without_traceback(case, subprocess_results):
    folder, status, out, err = subprocess_results[case["id"]]
    assert status == case["exit"], f"exit {status}, expected {case['exit']}; stderr:\n{err}"
    assert "Traceback" not in out + err
    assert re.search(case["message"], _error_line(err))
    assert _recorded_runs(folder / "results") == []


def test_debug_in_a_real_process_prints_the_traceback(subprocess_results):
    folder, status, _, err = subprocess_results["--debug"]
    assert status != 0 and "Traceback (most recent call last)" in err
    assert "ConfigError" in err and "unknown method 'dpo-plus-plus'" in err
    assert _recorded_runs(folder / "results") == []
