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
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(table)
            print(f"wrote {args.out}")
        else:
            print(table, end="")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alignsuite", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train and evaluate every method of an experiment config")
    run.add_argument("config", help="experiment YAML, or a shipped recipe's name (demo, all-offline, una-small, ...)")
    run.add_argument("--plan", action="store_true", help="list the planned runs and whether each is stored; train nothing")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key (repeatable)")
    run.add_argument("--out", help="results directory (default results/<name>)")
    run.add_argument("--report", action="store_true", help="write the report when the runs finish")
    run.add_argument("--jobs", default="1", metavar="N|auto",
                     help="runs at once, each in its own process (auto: one per GPU); a composite waits for its "
                          "components (default 1: one after another in this process)")
    from suite.execution.executors import EXECUTORS
    from suite.execution.launch import LAUNCHERS

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
    run.set_defaults(func=_cmd_run)

    methods = sub.add_parser("methods", help="list registered alignment methods")
    methods.add_argument("--json", action="store_true")
    methods.add_argument("--taxonomy", action="store_true",
                         help="the survey's table: one column per direction (13) plus feedback and needs")
    methods.add_argument("--format", choices=["text", "md", "csv"], help="taxonomy table format (implies --taxonomy)")
    methods.add_argument("--out", help="write the taxonomy table to this file instead of printing it")
    methods.set_defaults(func=_cmd_methods)

    datasets = sub.add_parser("datasets", help="list registered datasets")
    datasets.add_argument("--json", action="store_true")
    datasets.set_defaults(func=_cmd_datasets)

    from suite.merging import recipe as merge_recipe
    from suite.reporting.commands import add_commands
    from suite.training import reward_model

    add_commands(sub)
    merge_recipe.add_command(sub)
    reward_model.add_command(sub)

    boards = sub.add_parser("leaderboards", help="list leaderboard specs")
    boards.set_defaults(func=_cmd_leaderboards)
    for command in sub.choices.values():  # `alignsuite run X --debug` works as well as `alignsuite --debug run X`
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
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
