"""``alignsuite`` command line: run, report, methods, datasets, leaderboards."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from suite.core.errors import SuiteError


def _cmd_run(args) -> int:
    from suite.config.schema import load_config
    from suite.execution.runner import require_all_complete, run_experiment

    config = load_config(recipe_path(args.config), args.set or [])
    out_dir = Path(args.out or Path("results") / config.name)
    if args.plan:
        return _print_plan(config, out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SuiteError(f"{out_dir}: --out must be a results directory, and this is a file")
    blocking = next((parent for parent in out_dir.parents if parent.exists() and not parent.is_dir()), None)
    if blocking is not None:
        raise SuiteError(f"{out_dir}: --out cannot be made: {blocking} is a file")
    from suite.execution.runner import default_jobs

    jobs = default_jobs() if args.jobs == "auto" else int(args.jobs) if args.jobs.isdigit() else 0
    if jobs < 1:
        raise SuiteError(f"--jobs: expected a positive number or 'auto', got {args.jobs}")
    outcomes = run_experiment(config, out_dir, jobs=jobs, **_scale_out_options(args))
    for outcome in outcomes:
        print(f"{outcome.status:9} {outcome.run_id}")
    if args.report:
        from suite.reporting.commands import write_folder_report

        write_folder_report(out_dir)
    require_all_complete(outcomes)
    return 0


def recipe_path(name_or_path: str) -> Path:
    """A config file, or the name of a shipped recipe (``demo`` for reports/recipes/demo.yaml)."""
    path = Path(name_or_path)
    if path.exists() or path.suffix:
        return path
    from suite.core.resources import shipped_dir

    shipped = shipped_dir("reports") / "recipes" / f"{name_or_path}.yaml"
    if shipped.is_file():
        return shipped
    known = sorted(p.stem for p in (shipped_dir("reports") / "recipes").glob("*.yaml"))
    raise SuiteError(f"{name_or_path}: no such config file, and not a shipped recipe ({', '.join(known)})")


def _print_plan(config, out_dir: Path) -> int:
    """The runs a config expands to (methods x seeds + base, components first) and which are already stored."""
    from suite.execution.runner import plan_runs
    from suite.execution.store import RunStore

    store = RunStore(out_dir)
    runs = plan_runs(config)
    for run in runs:
        state = "complete" if store.is_complete(run.run_id) else "to run"
        print(f"{state:9} {run.run_id}  {run.label}  seed {run.seed}")
    print(f"{len(runs)} run(s) planned for {out_dir}")
    return 0


def _scale_out_options(args) -> dict:
    """--executor / --launcher flags as run_experiment's executor, launcher and executor options."""
    from suite.execution.launch import LAUNCHERS

    launcher = None
    if args.launcher is not None:
        launcher = LAUNCHERS[args.launcher](args.num_processes, args.accelerate_config)
    elif args.num_processes != 1 or args.accelerate_config:
        raise SuiteError("--num-processes and --accelerate-config need --launcher accelerate")
    options = {}
    if args.executor == "ray":
        options = {"address": args.ray_address, "cpus_per_run": args.cpus_per_run, "gpus_per_run": args.gpus_per_run}
    elif args.ray_address or args.cpus_per_run != 1.0 or args.gpus_per_run is not None:
        raise SuiteError("--ray-address, --cpus-per-run and --gpus-per-run need --executor ray")
    return {"executor": args.executor, "launcher": launcher, "executor_options": options}


def _cmd_methods(args) -> int:
    from suite.method.registry import all_methods

    if args.taxonomy or args.format:
        from suite.method.taxonomy import RENDERERS, taxonomy_rows

        table = RENDERERS[args.format or "text"](taxonomy_rows(all_methods()))
        from suite.core.io import write_or_print

        write_or_print(table, args.out)
        return 0
    rows = [m.summary() for m in all_methods()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        ref = "ref" if r["needs_reference"] else "no-ref"
        print(f"{r['id']:<{width}}  {r['feedback']:<8}  {ref:<6}  {r['paper']} (arXiv {r['arxiv']})")
    return 0


def _cmd_datasets(args) -> int:
    from suite.data import describe_datasets

    rows = describe_datasets()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        print(f"{r['id']:<{width}}  {r['feedback']:<8}  {r.get('rows', '?')!s:>6} rows  {r['hub_id']}  ({r['source']})")
    return 0


def _cmd_leaderboards(args) -> int:
    from suite.evaluation import list_leaderboards, load_leaderboard

    for name in list_leaderboards():
        spec = load_leaderboard(name)
        flag = "" if spec.comparable else "  [not comparable with the Open LLM Leaderboard]"
        print(f"{name:<14} {len(spec.tasks)} tasks  {spec.description}{flag}")
    return 0


def handler(target: str):
    """The function ``module:name`` as a command handler, imported only when its command runs: building the
    parser imports nothing heavy, so ``alignsuite --help`` answers at once."""
    module, name = target.split(":")

    def run(args):
        from importlib import import_module

        return getattr(import_module(module), name)(args)

    return run


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1 (resample counts)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def seed_value(text: str) -> int:
    """argparse type: a seed in [0, 2**32), the range numpy and torch accept."""
    if not text.strip().isdigit() or int(text) >= 2**32:
        raise argparse.ArgumentTypeError(f"expected an integer in [0, 2**32), got {text!r}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    from suite.analysis.claims import PAPERS_DIR, RESAMPLES, SCALES
    from suite.analysis.statistics import DEFAULT_RESAMPLES
    from suite.execution.executors import EXECUTORS
    from suite.execution.launch import LAUNCHERS
    from suite.reporting.leaderboard import DEFAULT_FORMATS, FORMATS

    parser = argparse.ArgumentParser(prog="alignsuite", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    verbosity = argparse.ArgumentParser(add_help=False)  # -v / -q, accepted before or after the command
    verbosity.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                           help="more progress detail (debug messages)")
    verbosity.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                           help="only warnings and errors on stderr")
    verbosity.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more progress detail (debug messages)")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str, func):
        made = sub.add_parser(name, help=help, parents=[verbosity])
        made.set_defaults(func=func)
        return made

    run = command("run", "train and evaluate every method of an experiment config", _cmd_run)
    run.add_argument("config", help="experiment YAML, or a shipped recipe's name (demo, all-offline, una-small, ...)")
    run.add_argument("--plan", action="store_true", help="list the planned runs and whether each is stored; train nothing")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    run.add_argument("--out", help="results directory (default results/<name>)")
    run.add_argument("--report", action="store_true", help="write the report when the runs finish")
    run.add_argument("--jobs", default="1", metavar="N|auto",
                     help="runs at once, each in its own process (auto: one per GPU); a composite waits for its "
                          "components (default 1: one after another in this process)")
    run.add_argument("--executor", choices=sorted(EXECUTORS),
                     help="where runs execute: local (one after another), processes (--jobs at once), ray (each run "
                          "a Ray task; needs alignsuite[ray]); default local, or processes with --jobs > 1")
    run.add_argument("--ray-address", help="Ray cluster to join (default RAY_ADDRESS, else a local instance)")
    run.add_argument("--cpus-per-run", type=float, default=1.0, help="Ray: CPUs each run asks for (default 1)")
    run.add_argument("--gpus-per-run", type=float,
                     help="Ray: GPUs each run asks for (default one per training process when the cluster has GPUs)")
    run.add_argument("--launcher", choices=sorted(LAUNCHERS),
                     help="train each run under `accelerate launch` (DDP; FSDP / DeepSpeed with --accelerate-config)")
    run.add_argument("--num-processes", type=int, default=1, metavar="N",
                     help="training processes per run with --launcher (each step's batch is split across them)")
    run.add_argument("--accelerate-config", metavar="FILE|NAME",
                     help="accelerate config file, or a shipped one in reports/accelerate/ (fsdp, deepspeed-zero2, "
                          "deepspeed-zero3, ddp-gpu)")

    methods = command("methods", "list registered alignment methods", _cmd_methods)
    methods.add_argument("--json", action="store_true")
    methods.add_argument("--taxonomy", action="store_true",
                         help="the survey's table: one column per direction (13) plus feedback and needs")
    methods.add_argument("--format", choices=["text", "md", "csv"], help="taxonomy table format (implies --taxonomy)")
    methods.add_argument("--out", help="write the taxonomy table to this file instead of printing it")

    datasets = command("datasets", "list registered datasets", _cmd_datasets)
    datasets.add_argument("--json", action="store_true")
    command("leaderboards", "list leaderboard specs", _cmd_leaderboards)

    report = command("report", "write report.md, leaderboard.csv, charts and index.html from stored runs",
                     handler("suite.reporting.commands:report_command"))
    report.add_argument("results_dir")

    board = command("leaderboard", "leaderboard tables (md, csv, html, tex) and plots from stored runs",
                    handler("suite.reporting.commands:leaderboard_command"))
    board.add_argument("results_dirs", nargs="+", metavar="DIR", help="results directories (several combine)")
    board.add_argument("--spec", help="leaderboard spec the runs were evaluated on (default: the one they share)")
    board.add_argument("--out", help="output folder (default: the first DIR's report/)")
    board.add_argument("--format", default=",".join(DEFAULT_FORMATS),
                       help=f"comma-separated subset of {','.join(FORMATS)} (default {','.join(DEFAULT_FORMATS)})")
    board.add_argument("--no-plots", action="store_true", help="tables only")
    board.add_argument("--resamples", type=int, default=1000,
                       help="bootstrap resamples for the significance of each row against base (0: skip)")

    compare = command("compare", "is one row better than another? paired tests on the same items",
                      handler("suite.reporting.commands:compare_command"))
    compare.add_argument("results_dirs", nargs="+", metavar="DIR", help="results directories (several combine)")
    compare.add_argument("--a", required=True, metavar="ROW", help="a row label (method, or a config label)")
    compare.add_argument("--b", required=True, metavar="ROW", help="the row it is compared with (e.g. base)")
    compare.add_argument("--spec", help="leaderboard spec (default: the one the runs used)")
    compare.add_argument("--resamples", type=positive_int, default=DEFAULT_RESAMPLES)
    compare.add_argument("--seed", type=seed_value, default=0)
    compare.add_argument("--out", help="write the Markdown here instead of printing it")

    reproduce = command("reproduce", "run a paper table's recipe and check its claims against ours",
                        handler("suite.reporting.commands:reproduce_command"))
    reproduce.add_argument("table", help="a table id from reports/papers/*.yaml (e.g. una-table2, paft, una-online-cost)")
    reproduce.add_argument("--scale", default="small", choices=SCALES,
                           help="small: the embedded model on CPU; paper: the paper's models and data (GPU, hub)")
    reproduce.add_argument("--out", help="results directory (default results/<recipe name>)")
    reproduce.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    reproduce.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    reproduce.add_argument("--report-only", action="store_true", help="do not run: report from the stored runs")
    reproduce.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples for the claims")
    reproduce.add_argument("--papers", default=str(PAPERS_DIR), help="folder of the papers' table files")

    delta = command("delta", "the delta between a base and a tuned model, and its sparsity",
                    handler("suite.reporting.deltas:delta_command"))
    delta.add_argument("base", help="base model: id, path")
    delta.add_argument("tuned", help="tuned model: id, path, LoRA adapter dir, or a run directory")
    delta.add_argument("--out", help="folder for delta.json and delta_histogram.png (default ./delta)")

    merge = command("merge", "merge fine-tuned models that share a base (a YAML recipe)",
                    handler("suite.merging.recipe:merge_command"))
    merge.add_argument("recipe", help="merge recipe YAML: base, models [{model, weight}], method, parameters, seed")
    merge.add_argument("--out", help="output folder (default: the recipe's out, else merged/<recipe name>)")

    export = command("export", "a run's model as a Hugging Face folder with a model card (from_pretrained, lm_eval)",
                     handler("suite.execution.export:export_command"))
    export.add_argument("run_dir", metavar="RUN_DIR", help="a complete run's folder: results/<name>/runs/<run id>")
    export.add_argument("--out", required=True, help="the folder to write (new or empty)")
    export.add_argument("--merge-lora", action="store_true",
                        help="merge a LoRA adapter into the base weights (a plain model; default: the adapter)")
    export.add_argument("--push-to-hub", metavar="OWNER/NAME",
                        help="then upload the folder to this hub repository (needs a token; opt-in)")
    export.add_argument("--private", action="store_true", help="with --push-to-hub: create a private repository")

    label = command("reward-label", "score a dataset's responses with a trained reward model: scalar, pairwise or "
                    "binary data", handler("suite.training.reward_model:reward_label_command"))
    label.add_argument("reward_model", help="a reward-model run folder (runs/<id>) or its model/ folder")
    label.add_argument("dataset", help="a registered dataset id, or a local file (with --dataset-format)")
    label.add_argument("--dataset-format", help="the local file's format: pairwise|binary|scalar|sft|listwise")
    label.add_argument("--format", required=True, choices=["scalar", "pairwise", "binary"], help="what to write")
    label.add_argument("--out", required=True, help="the JSONL file to write")
    label.add_argument("--max-length", type=int, default=512, help="tokens per scored sequence (default 512)")
    label.add_argument("--batch-size", type=int, default=8)
    label.add_argument("--limit", type=int, help="only the first N records")
    return parser


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _stdout_closed() -> int:
    """The reader of our output went away (``alignsuite methods | head``): stop quietly, as Unix tools do."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
    except (OSError, ValueError):
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    args = build_parser().parse_args(argv)
    from suite.core.log import configure

    configure(-1 if args.quiet else min(args.verbose, 1))
    from suite.core.progress import progress_enabled

    if not progress_enabled():  # -q or not a terminal: library progress bars (tqdm) stay off too, workers included
        os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(f"\nalignsuite: error: interrupted (Ctrl-C); run the same command again to resume: complete runs "
              "are kept and an interrupted run resumes from its last checkpoint", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _stdout_closed()
    except SuiteError as exc:
        if args.debug:
            raise
        print(f"alignsuite: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - not bad input (a bug, a full disk): still one line, traceback on request
        if args.debug:
            raise
        print(f"alignsuite: error: {type(exc).__name__}: {_one_line(str(exc))} "
              "(unexpected; rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
