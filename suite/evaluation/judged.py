"""Judged evaluation of a run: answer an instruction set, judge each answer against the reference answer,
and compute AlpacaEval's metrics (:mod:`suite.evaluation.winrate`).

Config (``eval.judge`` of an experiment)::

    eval:
      judge:
        judge: {type: reward-model, model: results/rm/runs/<id>}   # or {type: llm, endpoint: http://host:8000/v1,
                                                                     #     model_name: ...} / {type: implicit-reward, ...}
        instructions: alpaca_eval      # AlpacaEval's 805 (mirror), or a JSONL file {instruction, output}
        subset: 50                     # a seeded sample (seed: the run's seed unless `seed` is given); null = all
        max_new_tokens: 256
        batch_size: 8
        length_controlled: true        # alpaca-eval's LC GLM (AlpacaEval's own instructions only)

A run writes ``judged_answers.jsonl`` (index, instruction, output, generator) and ``judged_annotations.jsonl``
(AlpacaEval's annotation columns + preference) and puts the metrics under ``judged`` in ``metrics.json``.
``python -m suite.evaluation.judged compare RUN_A RUN_B`` is the paired comparison of two runs' annotations.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from suite.core.errors import ConfigError, DataError
from suite.core.progress import ProgressLine
from suite.evaluation import winrate

KEYS = {"judge", "instructions", "subset", "seed", "max_new_tokens", "batch_size", "length_controlled"}
ANSWERS_FILE, ANNOTATIONS_FILE = "judged_answers.jsonl", "judged_annotations.jsonl"


def check_judge_config(spec) -> None:
    """Config-time checks (nothing loaded): known keys and types, a judge mapping with a known type."""
    if spec is None:
        return
    if not isinstance(spec, dict):
        raise ConfigError(f"eval.judge: expected a mapping, got {type(spec).__name__}")
    unknown = sorted(set(spec) - KEYS)
    if unknown:
        raise ConfigError(f"eval.judge.{unknown[0]}: unknown key; known keys: {', '.join(sorted(KEYS))}")
    from suite.evaluation.judges import judge_types

    judge = spec.get("judge")
    if not isinstance(judge, dict) or judge.get("type") not in judge_types():
        raise ConfigError(f"eval.judge.judge: expected a mapping with type one of {', '.join(judge_types())}, got {judge!r}")
    for key in ("subset", "max_new_tokens", "batch_size"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ConfigError(f"eval.judge.{key}: expected a positive integer, got {value!r}")
    source = spec.get("instructions")
    if source not in (None, "alpaca_eval") and not Path(str(source)).is_file():
        raise ConfigError(f"eval.judge.instructions: {source}: instruction file not found")


@torch.no_grad()
def generate_answers(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 8) -> list[str]:
    """Greedy answers with the tokenizer's chat template, in length-sorted left-padded batches."""
    from suite.modeling.sequences import encode_prompt, left_padded_prompts

    model.eval()
    device = next(model.parameters()).device
    encoded = [encode_prompt(tokenizer, p) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
    answers = [""] * len(prompts)
    progress = ProgressLine("generation (judged answers)", len(prompts), "answers")
    for start in range(0, len(order), batch_size):
        progress.update(done=start)
        chunk = order[start : start + batch_size]
        input_ids, attention = left_padded_prompts([encoded[i] for i in chunk], tokenizer.pad_token_id)
        output = model.generate(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                eos_token_id=tokenizer.eos_token_id)[:, input_ids.shape[1] :]
        for index, row in zip(chunk, output.tolist()):
            if tokenizer.eos_token_id in row:
                row = row[: row.index(tokenizer.eos_token_id)]
            answers[index] = tokenizer.decode(row, skip_special_tokens=True).strip()
    progress.update(done=len(prompts))
    progress.close()
    return answers


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text("".join(json.dumps(row) + "\n" for row in rows))
    staging.replace(path)


def judged_evaluation(model, tokenizer, spec: dict, run_dir: Path, generator: str, seed: int = 0, judge=None) -> dict:
    """Answer, judge and score; writes the answers and annotations into ``run_dir``; returns the metrics."""
    import pandas as pd

    from suite.evaluation.judges import build_judge

    check_judge_config(spec)
    items = winrate.instruction_set(spec.get("instructions"), spec.get("subset"), spec.get("seed", seed))
    answers = generate_answers(model, tokenizer, [i.instruction for i in items], spec.get("max_new_tokens", 256),
                               spec.get("batch_size", 8))
    _write_jsonl(run_dir / ANSWERS_FILE, [{"index": i.index, "instruction": i.instruction, "output": a,
                                           "generator": generator, "dataset": i.dataset} for i, a in zip(items, answers)])
    judge = judge or build_judge(spec["judge"])
    preferences = judge.preferences([i.instruction for i in items], [i.reference for i in items], answers)
    for preference in preferences:
        if not 1.0 <= preference <= 2.0:
            raise DataError(f"judge {judge.name}: preference {preference} outside [1, 2]")
    rows = [{"index": i.index, "instruction": i.instruction, "output_1": i.reference, "generator_1": "reference",
             "output_2": a, "generator_2": generator, "annotator": judge.name, "preference": p}
            for i, a, p in zip(items, answers, preferences)]
    _write_jsonl(run_dir / ANNOTATIONS_FILE, rows)
    alpaca = spec.get("instructions") in (None, "alpaca_eval")
    metrics = winrate.win_rate_metrics(pd.DataFrame(rows), length_controlled=alpaca and spec.get("length_controlled", True))
    if not alpaca:
        metrics["lc_missing"] = "the LC GLM's instruction difficulties exist for AlpacaEval's instructions only"
    metrics["avg_length_tokens"] = sum(len(tokenizer(a, add_special_tokens=False)["input_ids"]) for a in answers) / len(answers)
    metrics.update(judge=judge.describe(), instructions=spec.get("instructions") or "alpaca_eval",
                   n_instructions=len(items), subset=spec.get("subset"), subset_seed=spec.get("seed", seed),
                   max_new_tokens=spec.get("max_new_tokens", 256), reference="gpt4_1106_preview" if alpaca else "file")
    return metrics


def load_preferences(run_dir: Path) -> dict[int, float]:
    path = Path(run_dir) / ANNOTATIONS_FILE
    if not path.is_file():
        raise DataError(f"{path}: no judged annotations (run with eval.judge set)")
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    frame = __import__("pandas").DataFrame(rows)
    winrate.check_preferences(frame, str(path))
    return {int(r["index"]): float(r["preference"]) for r in rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="judged evaluation tools")
    sub = parser.add_subparsers(dest="command", required=True)
    compare = sub.add_parser("compare", help="paired comparison of two runs judged on the same instructions")
    compare.add_argument("run_a")
    compare.add_argument("run_b")
    args = parser.parse_args(argv)
    print(json.dumps(winrate.paired_comparison(load_preferences(Path(args.run_a)), load_preferences(Path(args.run_b))),
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
