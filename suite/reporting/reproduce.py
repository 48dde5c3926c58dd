"""Reproduce a paper's table: ``alignsuite reproduce una-table2 [--scale small|paper] [--out DIR]``.

A paper's tables are data files in ``reports/papers/`` (one per paper, with its source); the command knows
no table by name. It finds the table with the given id, runs the recipe the table names for the scale
(``suite.execution.runner.run_experiment``: runs already complete are reused), and writes
``DIR/report/reproduce-<table>.md`` (+ ``.json``): the paper's numbers, ours, the difference, and for each
of the paper's claims whether ours agrees.

A table entry (see ``reports/papers/una.yaml``)::

    - id: una-table2
      title: ...
      source: where the numbers come from
      recipes: {small: reports/recipes/....yaml, paper: reports/recipes/....yaml}
      rows: {<paper row>: <our row label, "base" for the untouched model>}
      columns:                              # in the order of the values
        <paper column>: {task: <task id in the recipe's leaderboard spec>}
        <paper column>: {mean_of: [<paper column>, ...]}      # e.g. the average
        <paper column>: {unmeasured: <why the suite cannot measure it>}
      values: {<paper row>: [numbers, one per column]}
      claims:                               # holds when every `better` row beats every `worse` row on `column`
        - {id: ..., text: ..., column: <paper column>, better: [<paper row>...], worse: [<paper row>...]}

Verdicts: each (better, worse) pair's difference in our numbers is tested by a paired bootstrap over the
documents both rows were scored on (``suite.analysis.statistics``). A claim **agrees** when every pair's difference
is significantly positive, **disagrees** when any is significantly negative, and is **inconclusive**
otherwise — a difference within noise neither supports nor refutes it. Without per-document results a
difference under ``NOISE_POINTS`` counts as noise; one under ``MIN_DIFFERENCE`` always does. A column that cannot be measured makes its claims
"not measured"; an average over a column that is missing (e.g. MuSR offline) is taken over the columns
that ran and says so.
"""

from __future__ import annotations

import json
import math
import statistics as stats
from dataclasses import dataclass, field
from pathlib import Path

from suite.analysis.statistics import NEGLIGIBLE_POINTS
from suite.core.errors import ConfigError, SuiteError
from suite.core.io import load_yaml_mapping, write_bytes_atomic
from suite.reporting.report import markdown_table

REPO_ROOT = Path(__file__).resolve().parent.parent
PAPERS_DIR = REPO_ROOT / "reports" / "papers"
SCALES = ("small", "paper")
NOISE_POINTS = 1.0  # without per-document results, a difference below this (percentage points) is noise
# A difference that rounds to 0.00 at the tables' precision is a tie, however consistent (a model's tiny
# numerical drift on a continuous metric can be "significant" and still mean nothing).
MIN_DIFFERENCE = NEGLIGIBLE_POINTS
RESAMPLES = 2000
SETTING_KEYS = ("lm_eval_version", "batch_size", "apply_chat_template", "data_source")
TABLE_KEYS = {"id", "title", "source", "note", "recipes", "rows", "columns", "values", "claims"}
CLAIM_KEYS = {"id", "text", "column", "better", "worse"}


# -- the paper's table ----------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    task: str | None = None
    mean_of: list = field(default_factory=list)
    unmeasured: str | None = None


@dataclass
class Claim:
    id: str
    text: str
    column: str
    better: list
    worse: list


@dataclass
class PaperTable:
    id: str
    title: str
    source: str
    note: str
    paper: dict  # the file's paper, arxiv and source
    path: Path
    recipes: dict
    rows: dict  # paper row -> our label
    columns: list
    values: dict  # paper row -> {column: number}
    claims: list

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    def task_columns(self, name: str) -> list[Column]:
        """The task columns behind ``name`` (itself, or those it averages)."""
        column = self.column(name)
        return [column] if column.task else [self.column(n) for n in column.mean_of] if column.mean_of else []


def _fail(path: Path, where: str, message: str):
    raise ConfigError(f"{path}: {where}: {message}")


def table_ids(papers_dir: Path = PAPERS_DIR) -> dict[str, Path]:
    """Every table id in the papers' data files, with its file."""
    found = {}
    for path in sorted(Path(papers_dir).glob("*.yaml")):
        tables = load_yaml_mapping(path).get("tables")
        if isinstance(tables, list):
            for entry in tables:
                if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                    found.setdefault(entry["id"], path)
    return found


def parse_table(entry: dict, paper: dict, path: Path) -> PaperTable:
    """One table entry, checked: every key known, rows/columns/values/claims consistent with each other."""
    where = f"tables[{entry.get('id')}]"
    unknown = sorted(set(entry) - TABLE_KEYS)
    if unknown:
        _fail(path, f"{where}.{unknown[0]}", f"unknown key; known: {', '.join(sorted(TABLE_KEYS))}")
    for key in ("id", "title", "rows", "columns", "values", "recipes"):
        if key not in entry:
            _fail(path, f"{where}.{key}", "missing")
    if not isinstance(entry["rows"], dict) or not entry["rows"]:
        _fail(path, f"{where}.rows", "expected a mapping of paper row -> our row label")
    if not isinstance(entry["columns"], dict) or not entry["columns"]:
        _fail(path, f"{where}.columns", "expected a mapping of paper column -> {task | mean_of | unmeasured}")
    if not isinstance(entry["recipes"], dict) or not set(entry["recipes"]) <= set(SCALES):
        _fail(path, f"{where}.recipes", f"expected a mapping with keys among {', '.join(SCALES)}")
    columns = []
    for name, spec in entry["columns"].items():
        if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in ("task", "mean_of", "unmeasured"):
            _fail(path, f"{where}.columns.{name}", "expected {task: ID}, {mean_of: [COLUMNS]} or {unmeasured: WHY}")
        columns.append(Column(str(name), task=spec.get("task"), mean_of=list(spec.get("mean_of") or []),
                              unmeasured=spec.get("unmeasured")))
    names = [c.name for c in columns]
    for column in columns:
        for other in column.mean_of:
            if other not in names or not next(c for c in columns if c.name == other).task:
                _fail(path, f"{where}.columns.{column.name}.mean_of", f"{other!r} is not a task column of this table")
    values = {}
    if not isinstance(entry["values"], dict):
        _fail(path, f"{where}.values", "expected a mapping of paper row -> list of numbers")
    for row, numbers in entry["values"].items():
        if row not in entry["rows"]:
            _fail(path, f"{where}.values.{row}", f"not a row of the table ({', '.join(entry['rows'])})")
        if not isinstance(numbers, list) or len(numbers) != len(columns) or \
                not all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
            _fail(path, f"{where}.values.{row}", f"expected {len(columns)} numbers (one per column), got {numbers!r}")
        values[row] = dict(zip(names, (float(n) for n in numbers)))
    claims = []
    for index, raw in enumerate(entry.get("claims") or []):
        at = f"{where}.claims[{index}]"
        if not isinstance(raw, dict):
            _fail(path, at, "expected a mapping")
        unknown = sorted(set(raw) - CLAIM_KEYS)
        if unknown:
            _fail(path, f"{at}.{unknown[0]}", f"unknown key; known: {', '.join(sorted(CLAIM_KEYS))}")
        missing = [k for k in CLAIM_KEYS if k not in raw]
        if missing:
            _fail(path, f"{at}.{missing[0]}", "missing")
        if raw["column"] not in names:
            _fail(path, f"{at}.column", f"{raw['column']!r} is not a column ({', '.join(names)})")
        for side in ("better", "worse"):
            rows = raw[side] if isinstance(raw[side], list) else [raw[side]]
            bad = [r for r in rows if r not in entry["rows"]]
            if not rows or bad:
                _fail(path, f"{at}.{side}", f"{bad[0] if bad else 'nothing'!r} is not a row of the table")
        claims.append(Claim(str(raw["id"]), str(raw["text"]), raw["column"],
                            list(raw["better"]) if isinstance(raw["better"], list) else [raw["better"]],
                            list(raw["worse"]) if isinstance(raw["worse"], list) else [raw["worse"]]))
    return PaperTable(entry["id"], str(entry["title"]), str(entry.get("source", "")), str(entry.get("note") or ""),
                      {k: paper.get(k) for k in ("paper", "arxiv", "source")}, path, dict(entry["recipes"]),
                      dict(entry["rows"]), columns, values, claims)


def find_table(table_id: str, papers_dir: Path = PAPERS_DIR) -> PaperTable:
    known = table_ids(papers_dir)
    if table_id not in known:
        raise SuiteError(f"unknown table {table_id!r}; tables in {papers_dir}: {', '.join(sorted(known)) or 'none'}")
    path = known[table_id]
    payload = load_yaml_mapping(path)
    entry = next(t for t in payload["tables"] if isinstance(t, dict) and t.get("id") == table_id)
    return parse_table(entry, payload, path)


def recipe_path(table: PaperTable, scale: str) -> Path:
    if scale not in table.recipes:
        raise SuiteError(f"{table.id}: no {scale!r} recipe; scales: {', '.join(table.recipes) or 'none'} "
                         f"({table.path})")
    path = Path(table.recipes[scale])
    return path if path.is_absolute() else REPO_ROOT / path


def check_recipe(table: PaperTable, config) -> None:
    """Before anything runs: the recipe makes every row the table needs and its spec has every task column."""
    from suite.evaluation.leaderboard import load_leaderboard
    from suite.execution.runner import BASE_ROW, plan_runs

    labels = {run.label for run in plan_runs(config)} | ({BASE_ROW} if config.evaluate_base else set())
    lacking = sorted(set(table.rows.values()) - labels)
    if lacking:
        raise ConfigError(f"{table.id}: its recipe {config.name!r} makes no row {', '.join(map(repr, lacking))} "
                          f"(rows: {', '.join(sorted(labels))})")
    tasks = [c.task for c in table.columns if c.task]
    if tasks:
        if not config.eval.leaderboard:
            raise ConfigError(f"{table.id}: its recipe {config.name!r} runs no leaderboard (eval.leaderboard)")
        spec_tasks = {t.id for t in load_leaderboard(config.eval.leaderboard).tasks}
        absent = [t for t in tasks if t not in spec_tasks]
        if absent:
            raise ConfigError(f"{table.id}: the recipe's leaderboard {config.eval.leaderboard!r} has no task "
                              f"{', '.join(map(repr, absent))}")


# -- our numbers and the verdicts -----------------------------------------------------------------


@dataclass
class Measured:
    """Our table: per paper row, per column, mean over seeds (None: not measured), std, and notes."""

    values: dict
    std: dict
    notes: dict  # (row, column) -> note (e.g. a partial average)
    rows: dict  # paper row -> MethodRow or None


def measure(table: PaperTable, board) -> Measured:
    by_label = {}
    for row in board.rows:
        by_label.setdefault(row.method, row)
    values, std, notes, rows = {}, {}, {}, {}
    for paper_row, label in table.rows.items():
        row = by_label.get(label)
        rows[paper_row] = row
        values[paper_row], std[paper_row] = {}, {}
        for column in table.columns:
            value = spread = None
            if row is not None and column.task:
                value, spread = row.mean.get(column.task), row.std.get(column.task)
                if value is not None and column.task in row.missing:
                    notes[(paper_row, column.name)] = f"{column.name} ran in part (some subtasks missing)"
            elif row is not None and column.mean_of:
                parts = [row.mean.get(table.column(n).task) for n in column.mean_of]
                present = [p for p in parts if p is not None]
                if present:
                    value = stats.fmean(present)
                    lacking = [n for n, p in zip(column.mean_of, parts) if p is None]
                    in_part = [n for n, p in zip(column.mean_of, parts)
                               if p is not None and table.column(n).task in row.missing]
                    said = ([f"{', '.join(lacking)} missing"] if lacking else []) + \
                        ([f"{', '.join(in_part)} ran in part"] if in_part else [])
                    if said:
                        notes[(paper_row, column.name)] = "average of what ran: " + "; ".join(said)
                if len(row.runs) > 1:  # the average's spread over seeds, from each seed's own average
                    per_seed = []
                    for run in row.runs:
                        seed_parts = [run.scores.get(table.column(n).task) for n in column.mean_of]
                        seed_parts = [p for p in seed_parts if p is not None]
                        per_seed.append(stats.fmean(seed_parts) if seed_parts else None)
                    spread = stats.stdev(per_seed) if None not in per_seed else None
            values[paper_row][column.name], std[paper_row][column.name] = value, spread
    return Measured(values, std, notes, rows)


@dataclass
class PairResult:
    better: str
    worse: str
    paper_difference: float | None
    difference: float | None
    interval: tuple | None  # 95 % bootstrap interval of our difference
    p_value: float | None
    outcome: str  # holds | reversed | within noise | not measured


@dataclass
class Verdict:
    claim: Claim
    paper_holds: bool
    verdict: str  # agrees | disagrees | inconclusive | not measured
    pairs: list
    note: str = ""


def _tasks_measured(table: PaperTable, column: str, measured: Measured, rows: list[str]) -> list[str]:
    """The task ids behind ``column`` that every row in ``rows`` has (a partial average uses those)."""
    tasks = []
    for task_column in table.task_columns(column):
        if all(measured.rows[r] is not None and measured.rows[r].mean.get(task_column.task) is not None for r in rows):
            tasks.append(task_column.task)
    return tasks


def judge_pair(table: PaperTable, claim: Claim, better: str, worse: str, measured: Measured, spec,
               items: dict, resamples: int) -> PairResult:
    from suite.analysis.statistics import compare_leaderboard, load_items

    paper_b, paper_w = table.values.get(better, {}).get(claim.column), table.values.get(worse, {}).get(claim.column)
    paper_diff = None if paper_b is None or paper_w is None else paper_b - paper_w
    column = table.column(claim.column)
    if column.unmeasured:
        return PairResult(better, worse, paper_diff, None, None, None, "not measured")
    tasks = _tasks_measured(table, claim.column, measured, [better, worse])
    if not tasks:
        return PairResult(better, worse, paper_diff, None, None, None, "not measured")
    row_b, row_w = measured.rows[better], measured.rows[worse]
    ours_b = stats.fmean(row_b.mean[t] for t in tasks)
    ours_w = stats.fmean(row_w.mean[t] for t in tasks)
    difference = ours_b - ours_w
    try:
        for row in (row_b, row_w):
            if id(row) not in items:
                items[id(row)] = load_items([run.folder for run in row.runs], spec)
        result = compare_leaderboard(items[id(row_b)], items[id(row_w)], spec, tasks, resamples=resamples)
        tested = result.average
    except SuiteError:
        tested = None
    if tested is None:  # no per-document results: a fixed noise margin
        outcome = "within noise" if abs(difference) < NOISE_POINTS else "holds" if difference > 0 else "reversed"
        return PairResult(better, worse, paper_diff, difference, None, None, outcome)
    outcome = "holds" if tested.low > 0 else "reversed" if tested.high < 0 else "within noise"
    if abs(difference) < MIN_DIFFERENCE:
        outcome = "within noise"
    return PairResult(better, worse, paper_diff, difference, (tested.low, tested.high), tested.p_value, outcome)


def judge_claims(table: PaperTable, measured: Measured, spec, resamples: int = RESAMPLES) -> list[Verdict]:
    items: dict = {}
    verdicts = []
    for claim in table.claims:
        pairs = [judge_pair(table, claim, b, w, measured, spec, items, resamples)
                 for b in claim.better for w in claim.worse]
        paper_holds = all(p.paper_difference is not None and p.paper_difference > 0 for p in pairs)
        outcomes = {p.outcome for p in pairs}
        if "not measured" in outcomes:
            verdict = "not measured"
        elif "reversed" in outcomes:
            verdict = "disagrees"
        elif outcomes == {"holds"}:
            verdict = "agrees"
        else:
            verdict = "inconclusive"
        note = ""
        partial = sorted({measured.notes[(r, claim.column)] for p in pairs for r in (p.better, p.worse)
                          if (r, claim.column) in measured.notes})
        if partial:
            note = "; ".join(partial)
        column = table.column(claim.column)
        if column.unmeasured:
            note = column.unmeasured
        verdicts.append(Verdict(claim, paper_holds, verdict, pairs, note))
    return verdicts


# -- the report -----------------------------------------------------------------------------------


def run_settings(run) -> dict | None:
    """A run's recorded evaluation settings (metrics.json), for the report's header."""
    from suite.core.io import read_json_object

    return read_json_object(run.folder / "metrics.json").get("eval_settings")


def _fmt(value, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _pair_text(pair: PairResult) -> str:
    if pair.outcome == "not measured":
        return f"{pair.better} − {pair.worse}: not measured"
    text = f"{pair.better} − {pair.worse}: {_fmt(pair.difference, True)}"
    if pair.interval:
        return text + f" [{pair.interval[0]:+.2f}, {pair.interval[1]:+.2f}] ({pair.outcome})"
    return text + f" ({pair.outcome}; no paired test, {NOISE_POINTS:g}-point noise margin)"


def report_markdown(table: PaperTable, scale: str, recipe: Path, results_dir: Path, measured: Measured,
                    verdicts: list[Verdict], board, resamples: int = RESAMPLES, model: str | None = None) -> str:
    names = [c.name for c in table.columns]
    paper_rows = [[row] + [_fmt(table.values.get(row, {}).get(n)) for n in names] for row in table.rows]
    ours_rows, diff_rows = [], []
    for row in table.rows:
        cells, diffs = [row], [row]
        for column in table.columns:
            value = measured.values[row][column.name]
            if column.unmeasured:
                cells.append("not measured")
                diffs.append("—")
                continue
            text = "missing" if value is None else _fmt(value)
            if value is not None and measured.std[row].get(column.name) is not None:
                text += f" ± {_fmt(measured.std[row][column.name])}"
            if (row, column.name) in measured.notes:
                text += " *"
            cells.append(text)
            paper = table.values.get(row, {}).get(column.name)
            diffs.append(_fmt(None if value is None or paper is None else value - paper, True))
        ours_rows.append(cells)
        diff_rows.append(diffs)
    claim_rows = [[v.claim.id, v.claim.text, "holds" if v.paper_holds else "does not hold in the paper's numbers",
                   "; ".join(_pair_text(p) for p in v.pairs), f"**{v.verdict}**" + (f" ({v.note})" if v.note else "")]
                  for v in verdicts]
    spec = board.spec if board is not None else None
    lines = [f"# Reproduction: {table.title}", "",
             f"{table.paper.get('paper')} (arXiv {table.paper.get('arxiv')}). Paper data: `{table.path.name}` — "
             f"{table.source}.", ""]
    if table.note:
        lines += [f"Note: {table.note}", ""]
    lines += [f"Scale `{scale}`: recipe `{recipe.relative_to(REPO_ROOT) if recipe.is_relative_to(REPO_ROOT) else recipe}`, "
              f"results `{results_dir}`" + (f", model `{model}`" if model else "") +
              (f", leaderboard `{spec.name}`" if spec else "") + ". Every number marked ours comes from the stored runs."]
    if scale != "paper":
        lines += ["", "> **Small scale: not the paper's setting.** A small model, other data, a tiny budget and a "
                      "cut-down leaderboard: the numbers are not comparable with the paper's; what can be compared is "
                      "the direction of each claim, within its statistical noise."]
    elif spec is not None and not spec.comparable:
        lines += ["", f"> The leaderboard spec `{spec.name}` is not comparable with the Open LLM Leaderboard."]
    if spec is not None:
        settings = sorted({json.dumps({k: (run_settings(run) or {}).get(k) for k in SETTING_KEYS})
                           for row in board.rows for run in row.runs})
        lines += ["", "Evaluation settings recorded by the runs: " + "; ".join(
            ", ".join(f"{k} {v}" for k, v in json.loads(text).items()) for text in settings) + "."]
    lines += ["", "## The paper's numbers", "", markdown_table(["row", *names], paper_rows), "",
              "## Ours", "", markdown_table(["row", *names], ours_rows), "",
              "Mean over seeds (± sample std with several seeds). `missing`: the task could not run (e.g. not in the "
              "offline mirror). `*`: measured in part, as noted below.", ""]
    partial = sorted(f"{r}, {c}: {note}" for (r, c), note in measured.notes.items())
    lines += [f"- {p}" for p in partial] + ([""] if partial else [])
    lines += ["## Ours − paper", "", markdown_table(["row", *names], diff_rows), "",
              "## Claims", "", markdown_table(["claim", "the paper says", "in the paper's numbers",
                                                "ours (difference [95 % interval])", "verdict"], claim_rows), "",
              "A claim holds when every `better` row scores above every `worse` row. Each of our differences is tested "
              f"by a paired bootstrap over the documents both rows were scored on ({resamples} resamples): a claim "
              "**agrees** when every difference is significantly positive, **disagrees** when one is significantly "
              "negative, and is **inconclusive** when a difference is within noise (without per-document results: "
              f"|difference| < {NOISE_POINTS:g} point) or rounds to 0.00.", ""]
    counts = {v: sum(1 for x in verdicts if x.verdict == v)
              for v in ("agrees", "disagrees", "inconclusive", "not measured")}
    lines += ["Summary: " + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ".", ""]
    return "\n".join(lines)


def report_json(table: PaperTable, scale: str, measured: Measured, verdicts: list[Verdict]) -> dict:
    return {
        "table": table.id, "title": table.title, "scale": scale,
        "paper": table.values,
        "ours": measured.values,
        "ours_std": measured.std,  # sample std over seeds (several seeds only)
        "notes": sorted(f"{r}, {c}: {note}" for (r, c), note in measured.notes.items()),
        "unmeasured": {c.name: c.unmeasured for c in table.columns if c.unmeasured},
        "claims": [{"id": v.claim.id, "text": v.claim.text, "paper_holds": v.paper_holds, "verdict": v.verdict,
                    "note": v.note,
                    "pairs": [{"better": p.better, "worse": p.worse, "paper_difference": p.paper_difference,
                               "difference": p.difference, "interval": p.interval, "p_value": p.p_value,
                               "outcome": p.outcome} for p in v.pairs]} for v in verdicts],
    }


def write_reproduction_report(table: PaperTable, scale: str, recipe: Path, results_dir: Path,
                              resamples: int = RESAMPLES, assignments: list[str] = ()) -> tuple[Path, list[Verdict]]:
    """Read the stored runs of ``results_dir`` and write report/reproduce-<table>.{md,json}."""
    from suite.config.schema import load_config
    from suite.reporting.leaderboard import build_table, collect_runs

    config = load_config(recipe, list(assignments))
    board = None
    if any(c.task for c in table.columns):
        board = build_table(collect_runs([Path(results_dir)], config.eval.leaderboard))
    measured = measure(table, board) if board is not None else Measured(
        {r: {c.name: None for c in table.columns} for r in table.rows},
        {r: {} for r in table.rows}, {}, {r: None for r in table.rows})
    verdicts = judge_claims(table, measured, board.spec if board else None, resamples)
    path = Path(results_dir) / "report" / f"reproduce-{table.id}.md"
    write_bytes_atomic(path, report_markdown(table, scale, recipe, Path(results_dir), measured, verdicts, board,
                                             resamples, config.model).encode())
    write_bytes_atomic(path.with_suffix(".json"),
                       (json.dumps(report_json(table, scale, measured, verdicts), indent=2) + "\n").encode())
    return path, verdicts


def reproduce(table_id: str, scale: str = "small", out_dir: Path | None = None, jobs: int = 1,
              assignments: list[str] = (), run: bool = True, resamples: int = RESAMPLES,
              papers_dir: Path = PAPERS_DIR) -> tuple[Path, list[Verdict]]:
    """Find the table, run its recipe at ``scale`` (unless ``run`` is False), write the report."""
    from suite.config.schema import load_config
    from suite.execution.runner import require_all_complete, run_experiment

    if scale not in SCALES:
        raise SuiteError(f"--scale: expected one of {', '.join(SCALES)}, got {scale!r}")
    table = find_table(table_id, papers_dir)
    recipe = recipe_path(table, scale)
    if not recipe.is_file():
        raise SuiteError(f"{table.id}: recipe {recipe} (named in {table.path}) does not exist")
    config = load_config(recipe, list(assignments))
    check_recipe(table, config)
    out_dir = Path(out_dir) if out_dir else REPO_ROOT / "results" / config.name
    if run and any(c.task for c in table.columns):
        require_all_complete(run_experiment(config, out_dir, jobs=jobs))
    elif not any(c.task for c in table.columns):
        out_dir.mkdir(parents=True, exist_ok=True)  # nothing the suite can measure: the report alone
    return write_reproduction_report(table, scale, recipe, out_dir, resamples, assignments)


def _cmd_reproduce(args) -> int:
    path, verdicts = reproduce(args.table, args.scale, Path(args.out) if args.out else None,
                               jobs=args.jobs, assignments=args.set or [], run=not args.report_only,
                               resamples=args.resamples, papers_dir=Path(args.papers))
    width = max((len(v.claim.id) for v in verdicts), default=0)
    for verdict in verdicts:
        print(f"{verdict.claim.id:<{width}}  {verdict.verdict}")
    print(f"report: {path}")
    return 0


def add_command(sub) -> None:
    parser = sub.add_parser("reproduce", help="run a paper table's recipe and check its claims against ours")
    parser.add_argument("table", help="a table id from reports/papers/*.yaml (e.g. una-table2)")
    parser.add_argument("--scale", default="small", choices=SCALES,
                        help="small: the embedded model on CPU; paper: the paper's models and data (GPU, hub)")
    parser.add_argument("--out", help="results directory (default results/<recipe name>)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a recipe key (repeatable)")
    parser.add_argument("--report-only", action="store_true", help="do not run: report from the stored runs")
    parser.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples for the claims")
    parser.add_argument("--papers", default=str(PAPERS_DIR), help="folder of the papers' table files")
    parser.set_defaults(func=_cmd_reproduce)
