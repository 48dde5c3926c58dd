"""Stored runs for reporting and statistics tests: a tiny leaderboard spec and runs with known per-document results."""

from __future__ import annotations
import json
import statistics
from pathlib import Path
import torch
from suite.evaluation.alignment import pair_details, pair_metrics
from suite.evaluation.harness import (
    compact_samples,
    eval_settings,
    score_leaderboard,
)
from suite.evaluation.leaderboard import load_leaderboard


SPEC_YAML = """name: tiny-board
description: two tasks, one per aggregation
comparable: false
tasks:
  - {id: quiz, lm_eval: [quiz_a, quiz_b], num_fewshot: 0, metric: acc, lower: {quiz_a: 0.5, quiz_b: 0.25}}
  - {id: gen, lm_eval: [gen_x, gen_y], num_fewshot: 0, metric: exact_match, lower: 0.0, aggregate: whole}
"""


def spec_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "tiny-board.yaml"
    path.write_text(SPEC_YAML)
    return path


def outcomes(pattern: str, repeat: int) -> list[int]:
    """A 0/1 string repeated: '1101' x 3 -> 12 outcomes."""
    return [int(c) for c in pattern] * repeat


ROW_DOCS = {
    "base": {"quiz_a": outcomes("1100", 4), "quiz_b": outcomes("1000", 3), "gen_x": outcomes("10000", 2),
             "gen_y": outcomes("000", 2)},
    "strong": {"quiz_a": outcomes("1111", 4), "quiz_b": outcomes("1110", 3), "gen_x": outcomes("11100", 2),
               "gen_y": outcomes("100", 2)},
    "weak": {"quiz_a": outcomes("1000", 4), "quiz_b": outcomes("0000", 3), "gen_x": outcomes("00000", 2),
             "gen_y": outcomes("000", 2)},
}


def flip_first(docs: dict, leaf: str) -> dict:
    """Another seed of the same model: the first document of one leaf answered the other way."""
    changed = {k: list(v) for k, v in docs.items()}
    changed[leaf][0] = 1 - changed[leaf][0]
    return changed


def write_run(results: Path, spec_path: Path, run_id: str, method: str, seed: int, docs: dict, *,
              margins: list[float] | None = None, log: list[dict] | None = None, status: str = "complete",
              model: str = "tiny-llama", leaderboard: str | None = None) -> Path:
    """One run folder as the runner writes it, from per-document 0/1 results ({leaf: [..]})."""
    spec = load_leaderboard(str(spec_path))
    metric_of = {leaf: f"{task.metrics[0]},{task.filter}" for task in spec.tasks for leaf in task.lm_eval}
    results_dict, samples = {}, {}
    for leaf, values in docs.items():
        key = metric_of[leaf]
        logged = [{"doc_id": i, "filter": key.split(",")[1], "metrics": [key.split(",")[0]], key.split(",")[0]: v}
                  for i, v in enumerate(values)]
        samples[leaf] = compact_samples(logged)
        results_dict[leaf] = {key: statistics.fmean(values), "sample_len": len(values)}
    plan = {t.id: [(leaf, leaf) for leaf in t.lm_eval if leaf in docs] for t in spec.tasks}
    missing = {t.id: [leaf for leaf in t.lm_eval if leaf not in docs] for t in spec.tasks}
    scored = score_leaderboard(spec, results_dict, plan, missing, samples)
    margins = margins if margins is not None else [0.5, -0.2, 0.1, 0.3, -0.1, 0.2, 0.4, 0.0]
    margin = torch.tensor(margins)
    chosen, rejected = -10.0 + margin, torch.full_like(margin, -10.0)  # the chosen response moved: KL proxy h/2
    reference = torch.full_like(margin, -10.0)
    per_pair = {"pair_id": [f"p{i}" for i in range(len(margins))],
                **pair_details(chosen, rejected, reference, reference)}
    metrics = {
        "eval": scored.scores, "eval_average": scored.average,
        "alignment": pair_metrics(chosen, rejected, reference, reference), "alignment_pairs": per_pair,
        "train": {"steps": 3, "runtime_s": 1.5} if method != "base" else {},
        "eval_deviations": [], "eval_headline": scored.headlines, "eval_stderr": scored.stderr,
        "eval_missing": scored.missing, "eval_partial_average": scored.partial_average,
        "eval_settings": eval_settings(spec, limit=None, batch_size=4, chat_template="off", seed=seed),
    }
    folder = results / "runs" / run_id
    folder.mkdir(parents=True)
    manifest = {"run_id": run_id, "experiment": "tiny", "method": method, "model": model,
                "dataset": "pairs.jsonl", "seed": seed, "status": status,
                "leaderboard": leaderboard or spec.name, "comparable": spec.comparable,
                "eval_settings": metrics["eval_settings"], "config": {}, "hyperparameters": {}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if status == "complete":
        (folder / "metrics.json").write_text(json.dumps(metrics))
        by_task = {t.id: {leaf: samples[leaf] for leaf in t.lm_eval if leaf in samples} for t in spec.tasks}
        (folder / "lm_eval_samples.json").write_text(json.dumps(by_task))
    if log is not None:
        (folder / "train_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    return folder


def train_log(start_loss: float) -> list[dict]:
    return [{"step": s, "loss": start_loss - 0.05 * s, "rewards/accuracy": 0.5 + 0.1 * s, "rewards/margin": 0.1 * s}
            for s in range(1, 4)] + [{"step": 3, "train_runtime": 1.5, "train_loss": start_loss}]


def make_store(root: Path) -> tuple[Path, Path]:
    """A results folder: base; 'strong' with two seeds; 'weak' with one seed missing gen_y; a failed run."""
    spec_path = spec_file(root / "specs")
    results = root / "results"
    write_run(results, spec_path, "base-0000", "base", 0, ROW_DOCS["base"], margins=[0.0] * 8)
    write_run(results, spec_path, "strong-s0-1111", "strong", 0, ROW_DOCS["strong"], log=train_log(0.7),
              margins=[0.5, 0.2, 0.1, 0.3, -0.1, 0.2, 0.4, 0.6])
    write_run(results, spec_path, "strong-s1-2222", "strong", 1, flip_first(ROW_DOCS["strong"], "quiz_a"),
              log=train_log(0.72), margins=[0.4, 0.3, 0.1, 0.3, -0.2, 0.2, 0.5, 0.6])
    weak_docs = {k: v for k, v in ROW_DOCS["weak"].items() if k != "gen_y"}
    write_run(results, spec_path, "weak-s0-3333", "weak", 0, weak_docs, log=[
        {"step": s, "loss": 0.9, "rewards/desirable": 0.1 * s, "rewards/undesirable": -0.1 * s} for s in (1, 2)])
    write_run(results, spec_path, "broken-s0-4444", "broken", 0, {}, status="failed")
    return results, spec_path


def expected_quiz(docs: dict) -> float:
    """quiz: each leaf normalised with its own lower bound, then the unweighted mean (percent)."""
    a, b = statistics.fmean(docs["quiz_a"]), statistics.fmean(docs["quiz_b"])
    return 100 * (max(0.0, (a - 0.5) / 0.5) + max(0.0, (b - 0.25) / 0.75)) / 2


def expected_gen(docs: dict) -> float:
    """gen: scored whole, all documents pooled (lower 0)."""
    values = docs["gen_x"] + docs.get("gen_y", [])
    return 100 * statistics.fmean(values)

