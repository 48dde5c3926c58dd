"""A local judge validated on held-out models and instructions.

The suite trains its own Bradley–Terry reward model (method ``reward-model``, on the embedded
SmolLM2-135M-Instruct) on GPT-4-turbo's AlpacaEval 2.0 preferences of some generators and instructions, then
judges *other* generators on *other* instructions against the GPT-4-turbo reference answers with the
``reward-model`` judge, and is scored against GPT-4-turbo on those held-out comparisons:

* agreement: the share of held-out comparisons (GPT-4-turbo ties, |preference − 1.5| < 0.05, left out) where
  the judge prefers the same answer as GPT-4-turbo, and the Pearson correlation of the two preferences;
* ranking: the Spearman correlation between the held-out generators' win rates under the judge and their
  published AlpacaEval 2.0 win rate / LC win rate (and, as the ceiling this instruction sample allows,
  GPT-4-turbo's own win rates on the same instructions).

    python -m suite.evaluation.local_judge --out reports/results/judges [--train-pairs 240 --steps 30 ...]

Everything is seeded; the trained reward model is an ordinary run under ``<work>/runs/``.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

from suite.evaluation import winrate

TIE_BAND = 0.05


def split(frame, seed: int, train_generator_share: float, train_instruction_share: float):
    leaderboard = winrate.published_leaderboard()
    generators = sorted(set(frame["generator_2"]) & set(leaderboard.index) - {winrate.REFERENCE_GENERATOR})
    rng = random.Random(seed)
    rng.shuffle(generators)
    cut = round(len(generators) * train_generator_share)
    indices = list(range(805))
    rng.shuffle(indices)
    icut = round(805 * train_instruction_share)
    return sorted(generators[:cut]), sorted(generators[cut:]), set(indices[:icut]), sorted(indices[icut:])


def training_pairs(frame, generators, instructions, count: int, seed: int) -> list[dict]:
    """GPT-4-turbo's clear preferences (|preference − 1.5| ≥ 0.25) as pairs: the preferred answer chosen."""
    rows = frame[frame["generator_2"].isin(generators) & frame["index"].isin(instructions)
                 & ((frame["preference"] - 1.5).abs() >= 0.25)]
    rows = rows.sample(n=min(count, len(rows)), random_state=seed)
    return [{"prompt": r.instruction, "chosen": r.output_2 if r.preference > 1.5 else r.output_1,
             "rejected": r.output_1 if r.preference > 1.5 else r.output_2} for r in rows.itertuples()]


def train_reward_model(work: Path, pairs: list[dict], steps: int, batch: int, max_length: int, lr: float) -> Path:
    import yaml

    work.mkdir(parents=True, exist_ok=True)
    data = work / "pairs.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    config = {"name": "local-judge", "model": "smollm2-135m-instruct", "dataset": {"path": str(data), "format": "pairwise"},
              "methods": [{"id": "reward-model", "learning_rate": lr}], "seeds": [0], "evaluate_base": False,
              "data": {"heldout_fraction": 0.1, "heldout_max": 24},
              "train": {"max_steps": steps, "per_device_batch_size": batch, "max_length": max_length,
                        "save_model": True, "checkpoint_steps": 0},
              "eval": {"leaderboard": None, "alignment_pairs": 24, "generation_prompts": 0}}
    (work / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run([sys.executable, "-m", "suite.cli", "run", str(work / "config.yaml"), "--out", str(work)], check=True)
    runs = [p for p in (work / "runs").iterdir() if (p / "model" / "config.json").is_file()]
    if len(runs) != 1:
        raise RuntimeError(f"{work}/runs: expected one trained reward model, found {len(runs)}")
    return runs[0]


def evaluate(run_dir: Path, frame, generators, instructions, max_length: int) -> dict:
    import numpy as np
    from scipy.stats import pearsonr, spearmanr

    from suite.evaluation.judges import build_judge

    judge = build_judge({"type": "reward-model", "model": str(run_dir), "max_length": max_length})
    items = [i for i in winrate.alpaca_eval_instructions() if i.index in set(instructions)]
    reference = dict(zip([i.index for i in items], judge.rewards([i.instruction for i in items],
                                                                 [i.reference for i in items])))
    rows = frame[frame["generator_2"].isin(generators) & frame["index"].isin(instructions)]
    rewards = judge.rewards(rows["instruction"].tolist(), rows["output_2"].tolist())
    from suite.evaluation.judges import preference_from_margin

    ours = np.array([preference_from_margin(r - reference[i]) for r, i in zip(rewards, rows["index"])])
    gpt4 = rows["preference"].to_numpy(dtype=float)
    clear = clear_preferences(gpt4)
    agreement = float(((ours[clear] > 1.5) == (gpt4[clear] > 1.5)).mean())
    leaderboard = winrate.published_leaderboard()
    per_generator = []
    for generator in generators:
        mask = (rows["generator_2"] == generator).to_numpy()
        per_generator.append({"generator": generator, "n": int(mask.sum()),
                              "judge_win_rate": float((ours[mask] - 1).mean() * 100),
                              "gpt4_turbo_win_rate_same_instructions": float((gpt4[mask] - 1).mean() * 100),
                              "published_win_rate": float(leaderboard.loc[generator, "win_rate"]),
                              "published_lc_win_rate": float(leaderboard.loc[generator, "length_controlled_winrate"])})
    col = {k: [g[k] for g in per_generator] for k in per_generator[0]}
    return {
        "judge": judge.describe(), "held_out_generators": generators, "held_out_instructions": len(instructions),
        "comparisons": int(len(ours)), "clear_comparisons": int(clear.sum()),
        "agreement_with_gpt4_turbo": agreement,
        "pearson_preference": float(pearsonr(ours, gpt4).statistic),
        "spearman_vs_published_win_rate": float(spearmanr(col["judge_win_rate"], col["published_win_rate"]).statistic),
        "spearman_vs_published_lc_win_rate": float(spearmanr(col["judge_win_rate"], col["published_lc_win_rate"]).statistic),
        "gpt4_turbo_same_instructions_spearman_vs_published_win_rate": float(
            spearmanr(col["gpt4_turbo_win_rate_same_instructions"], col["published_win_rate"]).statistic),
        "length_baseline_agreement": float((((rows["output_2"].str.len() > rows["output_1"].str.len()).to_numpy())[clear]
                                            == (gpt4[clear] > 1.5)).mean()),
        "reference_baseline_agreement": reference_baseline(gpt4),
        "per_generator": per_generator,
    }


def reference_baseline(gpt4_preferences) -> float:
    """Agreement of the constant rule 'the GPT-4-turbo reference answer wins' with GPT-4-turbo on the
    non-tied comparisons: what a judge must beat when most generators lose to the reference."""
    import numpy as np

    gpt4 = np.asarray(gpt4_preferences, dtype=float)
    return float((gpt4[clear_preferences(gpt4)] < 1.5).mean())


def clear_preferences(gpt4):
    """Which of GPT-4-turbo's preferences (1 to 2) are not ties: |preference − 1.5| ≥ TIE_BAND."""
    import numpy as np

    return np.abs(np.asarray(gpt4, dtype=float) - 1.5) >= TIE_BAND


def write_report(result: dict, out: Path, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "local_judge.json").write_text(json.dumps(result, indent=2) + "\n")
    s = result["settings"]
    lines = [
        "# A local judge validated on held-out AlpacaEval models and instructions", "",
        f"Command: `{command}` (CPU, 2 shared cores; timings contended: {result['minutes']:.0f} min in all)", "",
        f"- Judge: the suite's Bradley–Terry reward model (`reward-model`) on SmolLM2-135M-Instruct, trained for "
        f"{s['steps']} steps × {s['batch']} pairs (lr {s['learning_rate']}, max_length {s['max_length']} tokens: "
        f"long answers are cut) on {s['train_pairs']} GPT-4-turbo preference pairs (|preference − 1.5| ≥ 0.25) of "
        f"{len(s['train_generators'])} generators and {s['train_instructions']} instructions.",
        f"- Held out: {len(result['held_out_generators'])} other generators × {result['held_out_instructions']} other "
        f"instructions (seeded sample, seed {s['seed']}) = {result['comparisons']} comparisons with the GPT-4-turbo "
        "reference answer, judged by `build_judge({type: reward-model, model: <run>})`.", "",
        "| measure | value |", "|---|---:|",
        f"| agreement with GPT-4-turbo ({result['clear_comparisons']} non-tied comparisons) | "
        f"{result['agreement_with_gpt4_turbo']:.3f} |",
        f"| same, 'the longer answer wins' baseline | {result['length_baseline_agreement']:.3f} |",
        f"| same, 'the reference answer always wins' baseline | {result['reference_baseline_agreement']:.3f} |",
        f"| Pearson r of the judge's and GPT-4-turbo's preferences | {result['pearson_preference']:.3f} |",
        f"| Spearman ρ, judge's generator ranking vs published win rate | {result['spearman_vs_published_win_rate']:.3f} |",
        f"| Spearman ρ, judge's generator ranking vs published LC win rate | "
        f"{result['spearman_vs_published_lc_win_rate']:.3f} |",
        f"| Spearman ρ, GPT-4-turbo on the same instructions vs published win rate (the ceiling) | "
        f"{result['gpt4_turbo_same_instructions_spearman_vs_published_win_rate']:.3f} |", "",
        "**How good a judge is this?** " + result["verdict"], "",
        "| held-out generator | n | judge WR | GPT-4-turbo WR (same instructions) | published WR | published LC |",
        "|---|---:|---:|---:|---:|---:|"]
    for g in sorted(result["per_generator"], key=lambda g: -g["published_win_rate"]):
        lines.append(f"| {g['generator']} | {g['n']} | {g['judge_win_rate']:.1f} | "
                     f"{g['gpt4_turbo_win_rate_same_instructions']:.1f} | {g['published_win_rate']:.1f} | "
                     f"{g['published_lc_win_rate']:.1f} |")
    (out / "local_judge.md").write_text("\n".join(lines) + "\n")


def verdict(result: dict) -> str:
    """Plain words on the judge's strength: against chance, and against the two trivial rules it must beat
    (the longer answer wins; the reference answer always wins)."""
    agree, rho = result["agreement_with_gpt4_turbo"], result["spearman_vs_published_win_rate"]
    length, reference = result["length_baseline_agreement"], result["reference_baseline_agreement"]
    trivial = max(length, reference)
    strength = ("no better than chance" if agree < 0.55 else "worse than a trivial rule" if agree < trivial
                else "weak" if agree < 0.75 else "moderate" if agree < 0.85 else "fair")
    pairs, steps = result["settings"]["train_pairs"], result["settings"]["steps"]
    usable = ("It is not usable as a judge. " if strength in ("no better than chance", "worse than a trivial rule")
              else "It is a smoke-level judge for CPU runs: use it to compare runs of the same model. ")
    return (f"{strength[0].upper() + strength[1:]}. A 135M-parameter reward model trained on {pairs} pairs ({steps} steps) "
            f"on a CPU budget agrees with GPT-4-turbo on {agree:.0%} of held-out comparisons, against {length:.0%} for "
            f"'the longer answer wins' and {reference:.0%} for 'the reference always wins', and ranks the held-out "
            f"generators with Spearman ρ = {rho:.2f} against the published leaderboard. " + usable +
            "It is no substitute for AlpacaEval's GPT-4-turbo annotator, and its numbers are never AlpacaEval numbers.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="reports/results/judges")
    parser.add_argument("--work", default="results/local-judge", help="where the reward-model run is stored")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-pairs", type=int, default=240)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=2e-5)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--heldout-instructions", type=int, default=16)
    args = parser.parse_args(argv)
    started = time.time()
    frame = winrate.load_annotations()
    train_gens, test_gens, train_instr, test_instr = split(frame, args.seed, 0.5, 0.5)
    pairs = training_pairs(frame, train_gens, train_instr, args.train_pairs, args.seed)
    run_dir = train_reward_model(Path(args.work), pairs, args.steps, args.batch, args.max_length, args.learning_rate)
    held_instructions = sorted(random.Random(args.seed).sample(test_instr, args.heldout_instructions))
    result = evaluate(run_dir, frame, test_gens, held_instructions, args.max_length)
    result["settings"] = {"seed": args.seed, "steps": args.steps, "batch": args.batch, "learning_rate": args.learning_rate,
                          "max_length": args.max_length, "train_pairs": len(pairs), "train_generators": train_gens,
                          "train_instructions": len(train_instr), "reward_model_run": run_dir.name}
    result["minutes"] = (time.time() - started) / 60
    result["verdict"] = verdict(result)  # needs result["settings"]
    command = "python -m suite.evaluation.local_judge " + " ".join(argv if argv is not None else sys.argv[1:])
    write_report(result, Path(args.out), command.strip())
    print(json.dumps({k: v for k, v in result.items() if k not in ("per_generator", "settings")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
