"""The performance benchmark (``nox -s perf`` / ``python -m suite.bench.perf``): our trainer against TRL's
DPOTrainer on the same work, plus the costs the suite is built to cut.

In one run, on one machine:

* **DPO, ours vs TRL** — the same model, the same first N = steps × batch pairs of ``hh-rlhf-harmless``
  (the runner's training side of the split; pairs whose two sequences carry differently truncated prompts
  are skipped so that both trainers can be fed identical token ids), the same batch size, max_length,
  steps, AdamW, learning-rate schedule, seed and precision. Ours runs through ``Runner.train_offline``, the
  runner's own code path, with a cold reference cache (its reference log-probs are computed inside the
  timed span); TRL runs its ``DPOTrainer`` as shipped (a live reference model by default), fed our token
  ids so it does the same work. Each training runs in its own subprocess (a clean peak RSS), alternating
  ours / TRL to cancel machine drift; full fine-tuning and LoRA. Their per-step losses are compared too.
* **bf16 autocast** — our trainer in bf16 against fp32 on the same steps: speed and the largest
  per-step loss difference (skipped, with the reason recorded, on a CPU that only emulates bf16: there
  torch runs bf16 matmuls about a hundred times slower than fp32).
* **Shared-prompt packing** — our trainer with it switched off (``suite.training.packing.enabled``).
* **N methods with the shared reference cache vs without** — the reference pass of N methods (over the
  feedback types they consume, built from the same pairs) with one cache against a fresh cache each.
* **Evaluation throughput** — lm-eval loglikelihood (and generation) requests per second on the quick
  leaderboard with a small limit, through ``evaluate_leaderboard``.
* **Evaluation backends** — our lm-eval backend (``suite.evaluation.backend``) against lm-eval's HF
  backend on the same requests (a seeded sample of each task of the leaderboard), same model and batch
  size, per task type: requests/s, tokens/s, achieved FLOP/s against the matmul peak, and whether every
  answer agreed (``suite.bench.eval_backends``).
* **The physical limit** — 2048³ fp32 and bf16 matmul FLOP/s, measured in the same run, against the
  achieved training FLOP/s (6·N + attention FLOPs per token for full fine-tuning, 4·N for LoRA).

Results go to ``OUT/perf.json`` and ``OUT/perf.md``. Each measurement records how much CPU other
processes took meanwhile (from /proc/stat), so numbers taken on a busy machine are flagged.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from suite.bench.machine import CONTENDED_SHARE, MachineShare, matmul_params, matmul_peak, processor_name
from suite.core.errors import SuiteError

DATASET = "hh-rlhf-harmless"
TIERS = {  # --quick: the tiny test model, a few steps, seconds per measurement
    "default": {"model": "smollm2-135m-instruct", "steps": 8, "batch_size": 4, "max_length": 256,
                "learning_rate": None},  # None: DPO's paper value
    # a random model barely moves at DPO's lr; a larger one makes the per-step loss comparison say something
    "quick": {"model": "tiny-llama", "steps": 3, "batch_size": 2, "max_length": 128, "learning_rate": 1e-3},
}
LOSS_TOLERANCE = 1e-3  # per-step |Δloss| under which two trainers count as doing the same computation


# -- machine ---------------------------------------------------------------------------------------------


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime



# -- the shared inputs -----------------------------------------------------------------------------------

def _shares_prompt(pair, tokenizer, max_length: int) -> bool:
    from suite.training.trainer import build_examples

    chosen, rejected = build_examples([pair], tokenizer, max_length)[0]["sequences"]
    return chosen.input_ids[: chosen.response_start] == rejected.input_ids[: rejected.response_start]


def prepare_inputs(model_name: str, count: int, max_length: int, seed: int, workdir: Path) -> dict:
    """The model folder both trainers load (TRL loads its reference model from it) and the first
    ``count`` pairs, written to a pairwise JSONL file."""
    from suite.config.schema import build_config
    from suite.execution.runner import Runner
    from suite.modeling.models import (
        EMBEDDED_MODEL,
        TINY_MODEL,
        embedded_model_dir,
        load_model,
    )

    workdir.mkdir(parents=True, exist_ok=True)
    if model_name == EMBEDDED_MODEL:
        model_dir = embedded_model_dir()
    elif model_name == TINY_MODEL:  # random weights: save them so every process loads the same ones
        model_dir = workdir / "model"
        if not (model_dir / "config.json").is_file():
            loaded = load_model(TINY_MODEL)
            loaded.model.save_pretrained(model_dir)
            loaded.tokenizer.save_pretrained(model_dir)
    else:
        model_dir = Path(model_name)
        if not model_dir.is_dir():
            raise SuiteError(f"--model {model_name}: expected {EMBEDDED_MODEL}, {TINY_MODEL} or a local model folder")
    tokenizer = load_model(str(model_dir)).tokenizer
    config = build_config({"name": "perf", "model": str(model_dir), "dataset": DATASET, "methods": ["dpo"],
                           "seeds": [seed], "data": {"train_max": 4 * count}, "eval": {"leaderboard": None}})
    records = Runner(config, workdir / "results").prepare_data("pairwise", seed).train
    chosen, skipped = [], 0
    for pair in records:
        if len(chosen) == count:
            break
        if _shares_prompt(pair, tokenizer, max_length):
            chosen.append(pair)
        else:
            skipped += 1
    if len(chosen) < count:
        raise SuiteError(f"{DATASET}: only {len(chosen)} usable pairs for {count} (steps × batch size)")
    pairs_file = workdir / "pairs.jsonl"
    pairs_file.write_text("".join(json.dumps(dataclasses.asdict(p)) + "\n" for p in chosen))
    return {"model_dir": str(model_dir), "pairs_file": str(pairs_file), "pairs": count,
            "skipped_for_prompt_truncation": skipped}


def _load_pairs(path: str):
    from suite.data.loaders import load_local

    return load_local(path, "pairwise")


def _token_counts(pairs, tokenizer, max_length: int) -> dict:
    """Tokens of the work: every chosen and rejected sequence once (one epoch of the pairs)."""
    from suite.training.trainer import build_examples

    sequences = [s for ex in build_examples(pairs, tokenizer, max_length) for s in ex["sequences"]]
    lengths = [len(s.input_ids) for s in sequences]
    return {"tokens": sum(lengths), "response_tokens": sum(s.response_length for s in sequences),
            "sequence_lengths": lengths}


def training_flops(params: int, lengths: list[int], layers: int, hidden: int, lora: bool) -> float:
    """Model FLOPs of one training pass over sequences of ``lengths``: per token 2·N forward (N the
    parameters used in matmuls) plus causal attention 4·layers·hidden·(t+1) at position t; backward twice
    the forward for full fine-tuning, once (input gradients only, the weights are frozen) for LoRA."""
    forward = sum(2 * params * n + 4 * layers * hidden * n * (n + 1) / 2 for n in lengths)
    return forward * (2 if lora else 3)


# -- one training, in its own process ------------------------------------------------------------------

def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _current_rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        return float("nan")



def _train_ours(spec: dict, model, tokenizer, pairs) -> dict:
    """Through ``Runner.train_offline``: examples, reference cache (cold), LoRA, TrainSettings, ``train``."""
    from transformers import set_seed

    import suite.training.packing
    from suite.config.schema import TrainConfig, build_config
    from suite.execution.runner import Runner, plan_runs

    suite.training.packing.enabled = spec["packing"]
    train = {"max_steps": spec["steps"], "per_device_batch_size": spec["batch_size"],
             "max_length": spec["max_length"], "bf16": spec["bf16"], "lora": spec["lora"], "save_model": False,
             "learning_rate": spec["learning_rate"]}
    if "checkpoint_steps" in {f.name for f in dataclasses.fields(TrainConfig)}:
        train["checkpoint_steps"] = 0  # no checkpoint writes inside the timed span (TRL writes none either)
    config = build_config({"name": "perf", "model": spec["model_dir"], "dataset": {"path": spec["pairs_file"],
                           "format": "pairwise"}, "methods": ["dpo"], "seeds": [spec["seed"]], "train": train,
                           "eval": {"leaderboard": None}})
    runner = Runner(config, Path(spec["workdir"]) / "results")
    run = next(r for r in plan_runs(config) if r.method is not None)
    runner.base_fingerprint(model)  # outside the timed span, as before any run
    set_seed(spec["seed"])
    timings: dict = {}
    started = time.perf_counter()
    _, summary = runner.train_offline(run, model, tokenizer, pairs, timings)
    wall = time.perf_counter() - started
    log = runner.store.run_dir(run.run_id) / "train_log.jsonl"
    losses = [r["loss"] for r in map(json.loads, log.read_text().splitlines()) if "loss" in r]
    return {"wall_s": wall, "train_loop_s": summary["runtime_s"], "reference_s": timings.get("reference_s"),
            "losses": losses, "hyperparameters": run.hyperparameters}


def _train_trl(spec: dict, model, tokenizer, pairs) -> dict:
    """TRL's DPOTrainer as shipped, fed our token ids (its text tokenisation, done before training,
    is the only part replaced) so both trainers train on identical sequences."""
    import datasets
    import torch
    from transformers import set_seed
    from trl import DPOConfig, DPOTrainer

    from suite.method.registry import get_method
    from suite.modeling.models import add_lora
    from suite.training.trainer import build_examples

    class PretokenizedDPOTrainer(DPOTrainer):
        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            return dataset

    overrides = {} if spec["learning_rate"] is None else {"learning_rate": spec["learning_rate"]}
    hyperparameters = get_method("dpo").hyperparameters(overrides)
    rows = []
    for example in build_examples(pairs, tokenizer, spec["max_length"]):
        chosen, rejected = example["sequences"]
        rows.append({"prompt_ids": list(chosen.input_ids[: chosen.response_start]),
                     "chosen_ids": list(chosen.input_ids[chosen.response_start:]),
                     "rejected_ids": list(rejected.input_ids[rejected.response_start:])})
    started = time.perf_counter()
    set_seed(spec["seed"])
    if spec["lora"] is not None:
        model = add_lora(model, spec["lora"])  # the same adapter and init as ours (same seed, same call)
    args = DPOConfig(
        output_dir=str(Path(spec["workdir"]) / "trl"), max_steps=spec["steps"],
        per_device_train_batch_size=spec["batch_size"], gradient_accumulation_steps=1,
        learning_rate=float(hyperparameters["learning_rate"]), lr_scheduler_type="cosine", warmup_steps=0.1,
        weight_decay=0.0, max_grad_norm=1.0, seed=spec["seed"], data_seed=spec["seed"], bf16=spec["bf16"],
        gradient_checkpointing=False, logging_steps=1, save_strategy="no", report_to=[], disable_tqdm=True,
        dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(), beta=float(hyperparameters["beta"]),
        loss_type=["sigmoid"], max_length=spec["max_length"], precompute_ref_log_probs=spec["trl_precompute_ref"],
    )
    trainer = PretokenizedDPOTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(rows),
                                     processing_class=tokenizer)
    result = trainer.train()
    wall = time.perf_counter() - started
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {"wall_s": wall, "train_loop_s": result.metrics.get("train_runtime"), "losses": losses,
            "reference_model_in_memory": trainer.ref_model is not None}


TRAINERS = {"ours": _train_ours, "trl": _train_trl}


def run_training(spec: dict) -> dict:
    """One training measurement (called in a fresh process): load, train, report time and memory."""
    import torch

    from suite.modeling.models import load_model

    os.environ["ALIGNSUITE_CACHE"] = str(Path(spec["workdir"]) / "cache")  # a cold reference cache
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    loaded = load_model(spec["model_dir"])
    pairs = _load_pairs(spec["pairs_file"])
    rss_loaded = _current_rss_mb()
    params = matmul_params(loaded.model)
    config = loaded.model.config
    result = TRAINERS[spec["trainer"]](spec, loaded.model, loaded.tokenizer, pairs)
    counts = _token_counts(pairs, loaded.tokenizer, spec["max_length"])
    result.update(
        peak_rss_mb=_peak_rss_mb(), rss_after_load_mb=rss_loaded, threads=torch.get_num_threads(),
        tokens=counts["tokens"], response_tokens=counts["response_tokens"],
        model_flops=training_flops(params, counts["sequence_lengths"], config.num_hidden_layers,
                                   config.hidden_size, spec["lora"] is not None),
        params=params,
    )
    return result


# -- the other measurements --------------------------------------------------------------------------------

def run_reference_cache(spec: dict) -> dict:
    """Reference log-probs for N methods: one shared cache vs a fresh cache per method."""
    import torch

    from suite.data import convert
    from suite.method.registry import get_method
    from suite.modeling.models import load_model, model_fingerprint
    from suite.modeling.reference import ReferenceCache
    from suite.training.trainer import attach_reference_logps, build_examples

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    loaded = load_model(spec["model_dir"])
    pairs = _load_pairs(spec["pairs_file"])
    fingerprint = model_fingerprint(loaded.model)
    per_method = []
    for method_id in spec["methods"]:
        method = get_method(method_id)
        records = convert(pairs, method.feedback, spec["seed"])
        examples = build_examples(records, loaded.tokenizer, spec["max_length"],
                                  "mismatched_pairs" in method.extra_inputs)
        per_method.append((method_id, method.needs_reference, examples))
    timings = {}
    for mode in ("shared", "separate"):
        root = Path(tempfile.mkdtemp(dir=spec["workdir"], prefix=f"cache-{mode}-"))
        started, detail = time.perf_counter(), []
        for index, (method_id, needs_reference, examples) in enumerate(per_method):
            if not needs_reference:
                detail.append({"method": method_id, "computed": 0, "hits": 0})
                continue
            cache = ReferenceCache(root if mode == "shared" else root / str(index), fingerprint)
            fresh = [{k: v for k, v in ex.items() if "reference" not in k} for ex in examples]
            attach_reference_logps(fresh, cache, loaded.model, loaded.tokenizer.pad_token_id, 8)
            detail.append({"method": method_id, "computed": cache.computed, "hits": cache.hits})
        timings[mode] = {"seconds": time.perf_counter() - started, "methods": detail}
    return {"methods": spec["methods"], **timings,
            "saving": 1 - timings["shared"]["seconds"] / max(timings["separate"]["seconds"], 1e-9)}


def run_evaluation(spec: dict) -> dict:
    """lm-eval requests per second on a leaderboard, through the runner's ``evaluate_leaderboard``."""
    import torch

    from suite.evaluation import evaluate_leaderboard, load_leaderboard
    from suite.modeling.models import load_model

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    counted: dict[str, dict] = {}

    def counting(kind, original):
        def wrapper(self, requests, *args, **kwargs):
            started = time.perf_counter()
            out = original(self, requests, *args, **kwargs)
            entry = counted.setdefault(kind, {"requests": 0, "seconds": 0.0})
            entry["requests"] += len(requests)
            entry["seconds"] += time.perf_counter() - started
            return out
        return wrapper

    if spec["eval_backend"] == "vllm":
        from lm_eval.models.vllm_causallms import VLLM as backend_class
    elif spec["eval_backend"] == "hf":
        from suite.evaluation.backend import SharedContextLM as backend_class
    else:
        from lm_eval.models.huggingface import HFLM as backend_class
    for kind in ("loglikelihood", "loglikelihood_rolling", "generate_until"):
        setattr(backend_class, kind, counting(kind, getattr(backend_class, kind)))
    loaded = load_model(spec["model_dir"])
    started = time.perf_counter()
    result = evaluate_leaderboard(loaded.model, loaded.tokenizer, load_leaderboard(spec["leaderboard"]),
                                  limit=spec["limit"], batch_size=spec["eval_batch_size"],
                                  workdir=Path(spec["workdir"]) / "lm_eval_tasks", backend=spec["eval_backend"])
    wall = time.perf_counter() - started
    for entry in counted.values():
        entry["per_second"] = entry["requests"] / entry["seconds"] if entry["seconds"] else None
    return {"leaderboard": spec["leaderboard"], "limit": spec["limit"], "backend": spec["eval_backend"],
            "wall_s": wall, "requests": counted,
            "average": result.average}


def run_eval_backends(spec: dict) -> dict:
    from suite.bench.eval_backends import measure_backends

    return measure_backends(spec)


MEASUREMENTS = {"train": run_training, "reference_cache": run_reference_cache, "evaluation": run_evaluation,
                "eval_backends": run_eval_backends}


def measure_in_subprocess(kind: str, spec: dict, timeout: float | None = None) -> dict:
    """Run one measurement in a fresh interpreter; its result plus the machine share others took."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump({"kind": kind, "spec": spec}, handle)
        spec_path = handle.name
    result_path = spec_path + ".out"
    cpu_before = _children_cpu_s()
    with MachineShare() as share:
        process = subprocess.run([sys.executable, "-m", "suite.bench.perf", "--worker", spec_path, result_path],
                                 capture_output=True, text=True, timeout=timeout)
        machine = share.finish(_children_cpu_s() - cpu_before)
    if process.returncode != 0:
        tail = "\n".join(process.stderr.splitlines()[-25:])
        raise SuiteError(f"perf measurement {kind} ({spec.get('label', '')}) failed:\n{tail}")
    result = json.loads(Path(result_path).read_text())
    for path in (spec_path, result_path):
        Path(path).unlink(missing_ok=True)
    return {**result, "machine": machine}


def _worker(spec_path: str, result_path: str) -> None:
    payload = json.loads(Path(spec_path).read_text())
    result = MEASUREMENTS[payload["kind"]](payload["spec"])
    Path(result_path).write_text(json.dumps(result))


# -- the benchmark ----------------------------------------------------------------------------------------

def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _summary(runs: list[dict], peak_flops: float) -> dict:
    """Medians over repeats: tokens/s end to end and in the training loop, peak RSS, achieved FLOP/s."""
    wall = _median([r["wall_s"] for r in runs])
    loop = _median([r["train_loop_s"] for r in runs])
    tokens, flops = runs[0]["tokens"], runs[0]["model_flops"]
    return {
        "repeats": len(runs), "wall_s": wall, "train_loop_s": loop,
        "tokens": tokens, "tokens_per_s": tokens / wall, "loop_tokens_per_s": tokens / loop if loop else None,
        "peak_rss_mb": _median([r["peak_rss_mb"] for r in runs]),
        "rss_after_load_mb": _median([r["rss_after_load_mb"] for r in runs]),
        "model_flops": flops, "achieved_flops_per_s": flops / loop if loop else None,
        "fraction_of_matmul_peak": flops / loop / peak_flops if loop and peak_flops else None,
        "reference_s": _median([r.get("reference_s") for r in runs]),
        "losses": runs[0]["losses"], "contended": any(r["machine"].get("contended") for r in runs),
        "others_share": _median([r["machine"].get("others_share") for r in runs]),
    }


def _precision_of(run_name: str, default: str) -> str:
    """The precision a run trained in: its name's -fp32 / -bf16 suffix, else the comparison's."""
    return next((p for p in ("fp32", "bf16") if run_name.endswith(f"-{p}")), default)


def _max_loss_gap(a: list[float], b: list[float]) -> float | None:
    if not a or len(a) != len(b):
        return None
    return max(abs(x - y) for x, y in zip(a, b))


def _comparison(ours: dict, trl: dict) -> dict:
    return {
        "tokens_per_s_ratio": ours["tokens_per_s"] / trl["tokens_per_s"],
        "loop_tokens_per_s_ratio": (ours["loop_tokens_per_s"] / trl["loop_tokens_per_s"]
                                    if ours["loop_tokens_per_s"] and trl["loop_tokens_per_s"] else None),
        "peak_rss_ratio": ours["peak_rss_mb"] / trl["peak_rss_mb"],
        "max_step_loss_gap": _max_loss_gap(ours["losses"], trl["losses"]),
    }


def run_benchmark(options) -> dict:
    import torch

    tier = TIERS["quick" if options.quick else "default"]
    model = options.model or tier["model"]
    steps, batch_size = options.steps or tier["steps"], options.batch_size or tier["batch_size"]
    max_length = options.max_length or tier["max_length"]
    learning_rate = options.learning_rate if options.learning_rate is not None else tier["learning_rate"]
    out = Path(options.out)
    workdir = Path(tempfile.mkdtemp(prefix="alignsuite-perf-"))

    def log(message: str) -> None:
        print(f"[perf {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    machine = {"platform": platform.platform(), "processor": processor_name(),
               "cpus": os.cpu_count(), "torch_threads": options.threads or torch.get_num_threads(),
               "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               "loadavg_at_start": os.getloadavg()}
    log(f"machine: {machine['processor']}, {machine['cpus']} CPUs, load {machine['loadavg_at_start']}")
    if options.threads:
        torch.set_num_threads(options.threads)
    with MachineShare() as share:
        peak = matmul_peak()
        peak_machine = share.finish(time.process_time())
    log(f"matmul peak: fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s ({peak['sizes']['fp32']}³), bf16 "
        f"{peak['bf16'] / 1e9:.1f} GFLOP/s ({peak['sizes']['bf16']}³){'' if peak['bf16_native'] else ', emulated'}")

    inputs = prepare_inputs(model, steps * batch_size, max_length, options.seed, workdir)
    base = {"model_dir": inputs["model_dir"], "pairs_file": inputs["pairs_file"], "steps": steps,
            "batch_size": batch_size, "max_length": max_length, "seed": options.seed, "threads": options.threads,
            "bf16": options.precision == "bf16", "lora": None, "packing": True,
            "trl_precompute_ref": options.trl_precompute_ref, "learning_rate": learning_rate}
    lora = {"r": options.lora_r}

    def train(label: str, trainer: str, **changes) -> dict:
        spec = {**base, **changes, "trainer": trainer, "label": label,
                "workdir": tempfile.mkdtemp(dir=workdir, prefix=f"{label}-")}
        log(f"{label} ({trainer}) …")
        result = measure_in_subprocess("train", spec)
        log(f"{label} ({trainer}): {result['wall_s']:.1f} s, peak RSS {result['peak_rss_mb']:.0f} MB, "
            f"losses {[round(v, 4) for v in result['losses']]}")
        return result

    skip = set(options.skip)
    runs: dict[str, list] = {}
    # Alternate ours / TRL (A B A B) so drift in the machine's speed hits both alike.
    plan = [("full", {}, options.repeats)]
    if "lora" not in skip:
        plan.append(("lora", {"lora": lora}, options.lora_repeats))
    for mode, changes, repeats in plan:
        for _ in range(repeats):
            for trainer in ("ours", "trl"):
                runs.setdefault(f"{mode}/{trainer}", []).append(train(f"{mode}-{trainer}", trainer, **changes))
    if options.precision == "bf16" and not peak["bf16_native"]:
        raise SuiteError("--precision bf16: this machine has no native bf16 (torch emulates it, about 100× "
                         "slower than fp32); compare in fp32")
    bf16_note = None
    if "bf16" not in skip and not peak["bf16_native"]:
        bf16_note = (f"not measured: no native bf16 on this machine (bf16 matmul {peak['bf16'] / 1e9:.1f} GFLOP/s "
                     f"vs fp32 {peak['fp32'] / 1e9:.1f}), so bf16 autocast cannot be the default here")
        log(f"bf16 autocast {bf16_note}")
    elif "bf16" not in skip:
        other = "fp32" if options.precision == "bf16" else "bf16"
        runs[f"full/ours-{other}"] = [train(f"full-ours-{other}", "ours", bf16=other == "bf16")]
    if "packing" not in skip:
        runs["full/ours-unpacked"] = [train("full-ours-unpacked", "ours", packing=False)]

    summaries = {name: _summary(rs, peak[_precision_of(name, options.precision)]) for name, rs in runs.items()}
    comparisons = {mode: _comparison(summaries[f"{mode}/ours"], summaries[f"{mode}/trl"])
                   for mode, _, _ in plan}
    results = {
        "benchmark": "alignsuite perf",
        "settings": {"model": model, "dataset": DATASET, "pairs": inputs["pairs"], "steps": steps,
                     "batch_size": batch_size, "max_length": max_length, "precision": options.precision,
                     "learning_rate": learning_rate or "DPO's default (5e-6)",
                     "optimizer": "AdamW (TrainingArguments default)", "lr_schedule": "cosine, warmup ratio 0.1",
                     "lora": lora, "seed": options.seed, "repeats": options.repeats,
                     "lora_repeats": options.lora_repeats, "trl_reference": "precomputed" if options.trl_precompute_ref
                     else "live reference model (TRL's default)",
                     "skipped_pairs_for_prompt_truncation": inputs["skipped_for_prompt_truncation"]},
        "machine": {**machine, "matmul_peak_flops": peak, "matmul_machine": peak_machine,
                    "loadavg_at_end": os.getloadavg()},
        "dpo": summaries, "ours_vs_trl": comparisons,
        "raw_runs": runs,
    }
    other = "fp32" if options.precision == "bf16" else "bf16"
    if bf16_note:
        results["bf16_autocast"] = {"note": bf16_note}
    if f"full/ours-{other}" in summaries:
        fp32 = summaries["full/ours" if other == "bf16" else f"full/ours-{other}"]
        bf16 = summaries[f"full/ours-{other}" if other == "bf16" else "full/ours"]
        results["bf16_autocast"] = {"max_step_loss_gap": _max_loss_gap(fp32["losses"], bf16["losses"]),
                                    "speedup": bf16["tokens_per_s"] / fp32["tokens_per_s"],
                                    "peak_rss_ratio": bf16["peak_rss_mb"] / fp32["peak_rss_mb"]}
    if "full/ours-unpacked" in summaries:
        packed, unpacked = summaries["full/ours"], summaries["full/ours-unpacked"]
        results["packing"] = {"speedup": packed["tokens_per_s"] / unpacked["tokens_per_s"],
                              "loop_speedup": packed["loop_tokens_per_s"] / unpacked["loop_tokens_per_s"],
                              "peak_rss_ratio": packed["peak_rss_mb"] / unpacked["peak_rss_mb"],
                              "max_step_loss_gap": _max_loss_gap(packed["losses"], unpacked["losses"])}
    if "refcache" not in skip:
        log(f"reference cache, {len(options.methods)} methods …")
        spec = {**base, "methods": options.methods, "workdir": str(workdir)}
        results["reference_cache"] = measure_in_subprocess("reference_cache", spec)
    if "eval" not in skip:
        log(f"evaluation, leaderboard {options.leaderboard} limit {options.eval_limit} …")
        spec = {**base, "leaderboard": options.leaderboard, "limit": options.eval_limit,
                "eval_batch_size": options.eval_batch_size, "eval_backend": options.eval_backend,
                "workdir": str(workdir)}
        results["evaluation"] = measure_in_subprocess("evaluation", spec)
    if "eval-backends" not in skip:
        from suite.bench.eval_backends import FEWSHOT

        sample = options.eval_sample or (2 if options.quick else 8)
        fewshot = options.eval_fewshot_sample if options.eval_fewshot_sample is not None else (1 if options.quick else 8)
        spec = {**base, "leaderboard": options.leaderboard, "sample": sample,
                "samples": {"alignsuite_gsm8k": options.eval_generation_sample or (2 if options.quick else 16)},
                "fewshot": {**FEWSHOT, "sample": fewshot},
                "eval_batch_size": options.eval_batch_size, "workdir": str(workdir)}
        log(f"evaluation backends, ours vs lm-eval's HF, {options.leaderboard}, {sample} documents a task …")
        results["eval_backends"] = measure_in_subprocess("eval_backends", spec)
    results["contended"] = any(r["machine"].get("contended") for rs in runs.values() for r in rs) or bool(
        peak_machine.get("contended"))
    out.mkdir(parents=True, exist_ok=True)
    (out / "perf.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (out / "perf.md").write_text(render_markdown(results))
    return results


def _fmt(value, spec=".2f", suffix=""):
    return "–" if value is None else f"{value:{spec}}{suffix}"


def render_markdown(results: dict) -> str:
    s, machine = results["settings"], results["machine"]
    peak = machine["matmul_peak_flops"]
    emulated = "" if peak["bf16_native"] else ", emulated: no native bf16"
    lines = [
        "# alignsuite perf",
        "",
        f"{s['model']}, DPO, {s['pairs']} pairs of {s['dataset']}, {s['steps']} steps × batch {s['batch_size']}, "
        f"max_length {s['max_length']}, {s['precision']}; TRL: {s['trl_reference']}. Machine: "
        f"{machine['processor']}, {machine['cpus']} CPUs, {machine['torch_threads']} torch threads; matmul peak "
        f"fp32 {peak['fp32'] / 1e9:.1f} GFLOP/s ({peak['sizes']['fp32']}³), bf16 {peak['bf16'] / 1e9:.1f} GFLOP/s "
        f"({peak['sizes']['bf16']}³{emulated}).",
    ]
    if results.get("contended"):
        lines += ["", f"**Contended:** other processes used more than {CONTENDED_SHARE:.0%} of the machine during "
                      "some measurements (see perf.json `machine`)."]
    lines += ["", "| run | tokens/s (end to end) | tokens/s (training loop) | peak RSS MB | FLOP/s | of matmul peak |",
              "|---|---|---|---|---|---|"]
    for name, row in results["dpo"].items():
        flops = None if row["achieved_flops_per_s"] is None else row["achieved_flops_per_s"] / 1e9
        lines.append(f"| {name} | {_fmt(row['tokens_per_s'], '.0f')} | {_fmt(row['loop_tokens_per_s'], '.0f')} | "
                     f"{_fmt(row['peak_rss_mb'], '.0f')} | {_fmt(flops, '.1f', ' G')} | "
                     f"{_fmt(row['fraction_of_matmul_peak'], '.1%')} |")
    lines += ["", "Tokens: every chosen and rejected sequence of the pairs, once. FLOP/s: the model FLOPs of that work "
                  "(6·N + attention per token, 4·N for LoRA; packing's saved tokens not subtracted) per second of the "
                  "training loop, against the fp32 (or bf16) matmul peak."]
    lines += ["", "| ours / TRL | tokens/s | tokens/s (loop) | peak RSS | max per-step loss gap |",
              "|---|---|---|---|---|"]
    for mode, c in results["ours_vs_trl"].items():
        lines.append(f"| {mode} | {_fmt(c['tokens_per_s_ratio'], '.2f', '×')} | "
                     f"{_fmt(c['loop_tokens_per_s_ratio'], '.2f', '×')} | {_fmt(c['peak_rss_ratio'], '.2f', '×')} | "
                     f"{_fmt(c['max_step_loss_gap'], '.2e')} |")
    bf16 = results.get("bf16_autocast")
    if bf16 and "note" in bf16:
        lines += ["", f"bf16 autocast: {bf16['note']}."]
    elif bf16:
        lines += ["", f"bf16 autocast vs fp32 (ours): {_fmt(bf16['speedup'], '.2f', '×')} tokens/s, peak RSS "
                      f"{_fmt(bf16['peak_rss_ratio'], '.2f', '×')}, max per-step loss gap "
                      f"{_fmt(bf16['max_step_loss_gap'], '.2e')}."]
    if "packing" in results:
        p = results["packing"]
        lines += ["", f"Shared-prompt packing: {_fmt(p['speedup'], '.2f', '×')} tokens/s end to end "
                      f"({_fmt(p['loop_speedup'], '.2f', '×')} in the training loop), peak RSS "
                      f"{_fmt(p['peak_rss_ratio'], '.2f', '×')}, max per-step loss gap "
                      f"{_fmt(p['max_step_loss_gap'], '.2e')}."]
    if "reference_cache" in results:
        r = results["reference_cache"]
        lines += ["", f"Reference log-probs for {len(r['methods'])} methods ({', '.join(r['methods'])}): shared cache "
                      f"{r['shared']['seconds']:.1f} s, a cache per method {r['separate']['seconds']:.1f} s "
                      f"({r['saving']:.0%} saved)."]
    if "evaluation" in results:
        e = results["evaluation"]
        parts = [f"{kind} {v['requests']} requests, {_fmt(v['per_second'], '.1f')}/s"
                 for kind, v in e["requests"].items()]
        lines += ["", f"Evaluation ({e['leaderboard']}, limit {e['limit']}, {e['backend']} backend): "
                      f"{e['wall_s']:.0f} s; " + "; ".join(parts) + "."]
    if "eval_backends" in results:
        from suite.bench.eval_backends import render_backends

        lines += [""] + render_backends(results["eval_backends"])
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m suite.bench.perf", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/perf", help="folder for perf.json and perf.md")
    parser.add_argument("--quick", action="store_true", help="tiny-llama, 3 steps × 2 pairs: a check in seconds")
    parser.add_argument("--model", help="smollm2-135m-instruct (default), tiny-llama or a local model folder")
    parser.add_argument("--steps", type=int, help="optimizer steps (default 8); pairs = steps × batch size")
    parser.add_argument("--batch-size", type=int, help="pairs per step (default 4)")
    parser.add_argument("--max-length", type=int, help="tokens per sequence (default 256)")
    parser.add_argument("--learning-rate", type=float, help="default DPO's 5e-6 (--quick: 1e-3)")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="precision of the ours/TRL comparison (the other is measured for ours)")
    parser.add_argument("--repeats", type=int, default=2, help="full fine-tuning runs per trainer (alternated)")
    parser.add_argument("--lora-repeats", type=int, default=1, help="LoRA runs per trainer (alternated)")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice, the physical cores)")
    parser.add_argument("--trl-precompute-ref", action="store_true",
                        help="TRL with precompute_ref_log_probs=True instead of its default live reference model")
    parser.add_argument("--methods", default="dpo,ipo,kto,una-binary-mse",
                        type=lambda text: [m for m in text.split(",") if m],
                        help="methods for the shared-reference-cache measurement")
    parser.add_argument("--leaderboard", default="quick")
    parser.add_argument("--eval-limit", type=int, default=4, help="documents per task for the evaluation throughput")
    parser.add_argument("--eval-batch-size", type=int, default=8)
    parser.add_argument("--eval-backend", choices=["hf", "hf-plain", "vllm"], default="hf",
                        help="lm-eval model backend (hf: ours; hf-plain: lm-eval's HFLM)")
    parser.add_argument("--eval-sample", type=int,
                        help="documents per task for ours vs lm-eval's HF backend (seeded sample; default 8, --quick 2)")
    parser.add_argument("--eval-generation-sample", type=int, help="the same for GSM8K, generation (default 16, --quick 2)")
    parser.add_argument("--eval-fewshot-sample", type=int,
                        help="the same for the v1 leaderboard's few-shot ARC, HellaSwag, MMLU and Winogrande "
                             "(default 8, --quick 1; 0 leaves them out)")
    parser.add_argument("--skip", action="append", default=[],
                        choices=["lora", "bf16", "packing", "refcache", "eval", "eval-backends"],
                        help="leave a measurement out (repeatable)")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        _worker(*argv[1:3])
        return 0
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    options = build_parser().parse_args(argv)
    try:
        results = run_benchmark(options)
    except SuiteError as exc:
        print(f"perf: error: {exc}", file=sys.stderr)
        return 2
    print(render_markdown(results))
    print(f"written: {Path(options.out) / 'perf.json'}, {Path(options.out) / 'perf.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
