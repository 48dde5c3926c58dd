"""UNA's online reproduction report: RLHF (PPO) vs online UNA from the same policy, next to the paper.

Reads only the stored runs of a results folder made from ``reports/recipes/una-online.yaml`` (or any
config with ``ppo`` and ``una-online`` rows, a ``reward-model`` component and the base row) and the paper's
published numbers in ``reports/papers/una-online.yaml``; writes ``report/una-online.md``: for each online
row the reward on held-out prompts before and after training, training wall time and peak memory; the
quick-leaderboard scores next to the paper's Tables 4–6 (through the tables' own column → task mapping)
and its 8 h vs 3.5 h; the training-cost claims judged from the measured numbers; and a closing note with
the measured UNA/PPO time and memory ratios and both final rewards. The tables' score claims, with paired
bootstrap tests, are ``alignsuite reproduce una-online-table4|5 --report-only`` (``suite/reproduce.py``).
"""

from __future__ import annotations

from pathlib import Path

from suite.core.errors import SuiteError
from suite.core.io import load_yaml_mapping, write_bytes_atomic
from suite.reporting.report import (
    BASE_METHOD,
    STATUS_COMPLETE,
    load_runs,
    markdown_table,
)

PAPER_FILE = Path(__file__).resolve().parent.parent / "reports" / "papers" / "una-online.yaml"
ONLINE_ROLES = {"ppo": "rlhf", "una-online": "una"}


def _mean(values: list):
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def _fmt(value, digits: int = 2, suffix: str = "") -> str:
    return "—" if value is None else f"{value:.{digits}f}{suffix}"


def _task_scores(metrics: dict) -> dict:
    """Each task's leaderboard number (percent): the headline recorded at evaluation, else its one metric."""
    scores = {task: 100 * next(iter(values.values())) for task, values in (metrics.get("eval") or {}).items()
              if values and next(iter(values.values())) is not None}
    scores.update(metrics.get("eval_headline") or {})
    return scores


def collect_rows(runs) -> dict[str, dict]:
    """Measured numbers per row label (seeds averaged): role, held-out reward before/after, quick scores,
    wall time, seconds per step, peak memory, KL; the reward model's held-out accuracy."""
    grouped: dict[str, list] = {}
    for run in runs:
        if run.status == STATUS_COMPLETE:
            grouped.setdefault(run.method, []).append(run)
    rows = {}
    for label, group in grouped.items():
        method_id = group[0].manifest.get("method_id", label)
        trains = [r.metrics.get("train") or {} for r in group]
        heldout = [t.get("heldout_reward") or {} for t in trains]
        rows[label] = {
            "method_id": method_id,
            "role": ONLINE_ROLES.get(method_id, "base" if label == BASE_METHOD else method_id),
            "seeds": len(group),
            "reward_before": _mean([(h.get("before") or {}).get("mean") for h in heldout]),
            "reward_after": _mean([(h.get("after") or {}).get("mean") for h in heldout]),
            "reward_stderr": _mean([(h.get("after") or {}).get("stderr") for h in heldout]),
            "average": _mean([r.metrics.get("eval_average") for r in group]),
            "tasks": {task: _mean([_task_scores(r.metrics).get(task) for r in group])
                      for task in {t for r in group for t in _task_scores(r.metrics)}},
            "runtime_s": _mean([t.get("runtime_s") for t in trains]),
            "seconds_per_step": _mean([t.get("seconds_per_step") for t in trains]),
            "steps": _mean([t.get("steps") for t in trains]),
            "peak_memory_mb": _mean([t.get("peak_memory_mb") for t in trains]),
            "memory_measure": next((t.get("memory_measure") for t in trains if t.get("memory_measure")), None),
            "kl_last_step": _mean([t.get("kl_last_step") for t in trains]),
            "rm_accuracy": _mean([(r.metrics.get("alignment") or {}).get("reward_accuracy") for r in group])
            if method_id == "reward-model" else None,
        }
    return rows


def _ratio(numerator, denominator):
    return None if numerator is None or not denominator else numerator / denominator


def judge_claims(rlhf: dict | None, una: dict | None) -> list[tuple[str, str, str]]:
    """(claim id, what was measured, verdict) for the training-cost claims, from the PPO and UNA rows."""
    if rlhf is None or una is None:
        return [(claim, "needs a ppo and a una-online row", "not measured") for claim in ("una-faster", "una-less-memory")]
    verdicts = []
    time_ratio = _ratio(una["runtime_s"], rlhf["runtime_s"])
    if time_ratio is None:
        verdicts.append(("una-faster", "no training times", "not measured"))
    else:
        verdict = "reproduced" if time_ratio < 0.5 else "partly (faster, not by half)" if time_ratio < 1 else "not reproduced"
        verdicts.append(("una-faster", f"UNA/PPO wall time {time_ratio:.2f} ({una['runtime_s']:.0f} s vs "
                                       f"{rlhf['runtime_s']:.0f} s; paper 3.5/8 = 0.44)", verdict))
    memory_ratio = _ratio(una["peak_memory_mb"], rlhf["peak_memory_mb"])
    if memory_ratio is None:
        verdicts.append(("una-less-memory", "no peak memory", "not measured"))
    else:
        verdicts.append(("una-less-memory", f"UNA/PPO peak memory {memory_ratio:.2f} ({una['peak_memory_mb']:.0f} MB "
                                            f"vs {rlhf['peak_memory_mb']:.0f} MB)",
                         "reproduced" if memory_ratio < 1 else "not reproduced"))
    return verdicts


def _score_tables(paper: dict, rows: dict) -> list[str]:
    """Each paper table with our rows under the paper's, through the table's column → task mapping."""
    lines = []
    for table in paper["tables"]:
        columns = table["columns"]

        def ours(label):
            row = rows.get(label)
            values = {}
            for name, spec in columns.items():
                if row is None or "unmeasured" in spec:
                    values[name] = None
                elif "task" in spec:
                    values[name] = row["tasks"].get(spec["task"])
                else:
                    present = [values[c] for c in spec["mean_of"] if values.get(c) is not None]
                    values[name] = sum(present) / len(present) if len(present) == len(spec["mean_of"]) else None
            return [("n/m" if "unmeasured" in columns[name] else _fmt(values[name], 1)) for name in columns]

        body = [[f"paper: {paper_row}", *(f"{v:g}" for v in table["values"][paper_row])] for paper_row in table["rows"]]
        body += [[f"ours: {label}", *ours(label)] for label in table["rows"].values()]
        lines += [f"**{table['title']}**", "", markdown_table(["row", *columns], body), ""]
    return lines


def write_una_online_report(results_dir: Path, paper_file: Path = PAPER_FILE) -> Path:
    results_dir = Path(results_dir)
    paper = load_yaml_mapping(paper_file)
    runs = load_runs(results_dir)
    rows = collect_rows(runs)
    leaderboard = next((r.manifest.get("leaderboard") for r in runs if r.manifest.get("leaderboard")), None)
    by_role = {}
    for label, row in rows.items():
        by_role.setdefault(row["role"], row)
    rlhf, una = by_role.get("rlhf"), by_role.get("una")
    if rlhf is None and una is None:
        raise SuiteError(f"{results_dir}: no complete ppo or una-online runs to report")
    online = [(label, row) for label, row in rows.items() if row["role"] in ("base", "rlhf", "una")]
    online.sort(key=lambda item: ("base", "rlhf", "una").index(item[1]["role"]))
    memory_kind = next((row["memory_measure"] for _, row in online if row["memory_measure"]), "not recorded")

    measured = [[label, _fmt(row["reward_before"]), _fmt(row["reward_after"]) +
                 (f" ± {row['reward_stderr']:.2f}" if row["reward_stderr"] is not None else ""),
                 _fmt(row["average"]), _fmt(row["runtime_s"], 0), _fmt(row["seconds_per_step"], 1),
                 _fmt(row["peak_memory_mb"], 0), _fmt(row["kl_last_step"], 2)] for label, row in online]
    reward_models = [[label, _fmt(row["rm_accuracy"], 3), _fmt(row["steps"], 0), _fmt(row["runtime_s"], 0),
                      _fmt(row["peak_memory_mb"], 0)] for label, row in rows.items() if row["rm_accuracy"] is not None]
    claims = {claim["id"]: claim["text"] for claim in paper["online_claims"]}
    verdicts = judge_claims(rlhf, una)
    hours = paper["training_hours"]
    time_ratio = _ratio(una and una["runtime_s"], rlhf and rlhf["runtime_s"])
    memory_ratio = _ratio(una and una["peak_memory_mb"], rlhf and rlhf["peak_memory_mb"])
    lines = [
        f"# UNA online reproduction — {paper['paper']} (arXiv {paper['arxiv']})", "",
        f"Results folder `{results_dir}`; every measured number below comes from its stored runs. PPO and UNA train "
        "from the same policy on the same prompts, steps and batch, against the same reward model. Scores use the "
        f"`{leaderboard}` leaderboard spec (cut down: **not comparable** with the Open LLM Leaderboard); the paper's "
        f"runs are Qwen2-1.5B, 20,000 steps on 8×A100. Paper data: `{Path(paper_file).name}` — {paper['source'].strip()}", "",
        "## Measured", "",
        markdown_table(["row", "held-out reward before", "after (± s.e.)", "leaderboard average", "train wall time (s)",
                        "s / step", "peak memory (MB)", "KL (last step)"], measured),
        "", f"Held-out reward: the reward of one sampled answer per held-out prompt (the same prompts and seed in "
        f"every run), before and after training; the base row is the policy both start from. Peak memory: "
        f"{memory_kind}.", "",
    ]
    if reward_models:
        lines += ["Reward model (shared by both runs):", "",
                  markdown_table(["row", "held-out pairwise accuracy", "steps", "train wall time (s)", "peak memory (MB)"],
                                 reward_models), ""]
    lines += ["## Leaderboard scores next to the paper's Tables 4–6", "",
              "Ours: the recipe's cut-down leaderboard, one seed — the direction of a difference is what can be "
              "compared, not the level; `n/m`: not measured (GPT-4-judged), `—`: no score. Each table's claims with "
              "paired bootstrap tests: `alignsuite reproduce una-online-table4 --report-only --out DIR` (and table5, "
              "table6).", "", *_score_tables(paper, rows),
              f"Training time (paper): about {hours['rlhf']:g} h for RLHF vs {hours['una']:g} h for UNA "
              f"(ratio {hours['una'] / hours['rlhf']:.2f}).", "",
              "## Claims", "",
              markdown_table(["claim", "paper", "measured", "verdict"],
                             [[cid, claims.get(cid, ""), text, verdict] for cid, text, verdict in verdicts]),
              "",
              "## Closing note", "",
              f"Measured UNA/PPO wall-time ratio: {_fmt(time_ratio)} (paper: {hours['una'] / hours['rlhf']:.2f}); "
              f"peak-memory ratio: {_fmt(memory_ratio)} ({memory_kind}); final held-out reward: PPO "
              f"{_fmt(rlhf and rlhf['reward_after'])}, UNA {_fmt(una and una['reward_after'])} (from "
              f"{_fmt((una or rlhf)['reward_before'])} before training).", ""]
    path = results_dir / "report" / "una-online.md"
    write_bytes_atomic(path, "\n".join(lines).encode())
    return path


def _cmd_una_online_report(args) -> int:
    print(f"una-online: {write_una_online_report(Path(args.results_dir))}")
    return 0


def add_command(subparsers) -> None:
    parser = subparsers.add_parser("una-online-report",
                                   help="UNA's online comparison (PPO vs online UNA) from stored runs: report/una-online.md")
    parser.add_argument("results_dir")
    parser.set_defaults(func=_cmd_una_online_report)
