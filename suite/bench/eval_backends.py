"""Our lm-eval backend against lm-eval's own HF backend on the same real requests: same answers, and speed.

``task_requests`` builds lm-eval ``Instance``s the way ``simple_evaluate`` does (the spec's overlay tasks,
mirror data, few-shot seed) for a seeded sample of each task's documents; ``compare_answers`` runs both
backends on them and reports every difference (log-likelihood, greedy flag, multiple-choice decision,
generated text); ``time_backends`` measures requests/s and tokens/s of both, per task, alternating them.
The tests (``tests/unit/evaluation/test_eval_backend.py``) and the benchmark (``python -m suite.bench.perf``) use these.
"""

from __future__ import annotations

import random
import time
from collections import defaultdict
from pathlib import Path

LOGLIK_TOLERANCE = 1e-4  # absolute, per request: the bar for "same answers"


def make_backends(model, tokenizer, batch_size: int, **ours_options):
    """(ours, lm-eval's HFLM) on the same in-memory model."""
    from lm_eval.models.huggingface import HFLM

    from suite.evaluation.backend import SharedContextLM

    ours = SharedContextLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, **ours_options)
    plain = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
    return ours, plain


def task_requests(spec, workdir: Path, *, sample: int | None, seed: int = 0, spec_limits: bool = True,
                  samples: dict | None = None, only: set | None = None, chat_template=None) -> dict:
    """{leaf task: {"output_type", "instances" (lm-eval Instances), "docs"}} for every leaf task of ``spec``
    that can run (of the lm-eval leaf tasks in ``only`` when given), each on a seeded sample of ``sample``
    documents (all when None; ``samples`` sets it per leaf task) drawn from the spec's limit (from the whole
    eval split when ``spec_limits`` is False). With ``chat_template`` (a backend's ``apply_chat_template``),
    the tasks a run would evaluate with the template (``eval.chat_template: auto``) get it, few-shot examples
    as turns, as in ``suite.evaluation.harness``; without it no task does."""
    from lm_eval.tasks import TaskManager

    from suite.data.loaders import mirror_root
    from suite.evaluation.harness import resolve_chat_template, task_index, write_task_yamls

    index = task_index(str(spec.include_path) if spec.include_path else None)
    plan, _ = write_task_yamls(spec, index, Path(workdir), mirror_root())
    overlays = TaskManager(include_path=str(workdir), include_defaults=False)
    names = [(task, name) for task in spec.tasks for leaf, name in plan[task.id] if only is None or leaf in only]
    loaded = overlays.load([name for _, name in names])["tasks"]
    templates = resolve_chat_template("auto", spec, chat_template is not None)
    out = {}
    for task_spec, name in names:
        task = loaded[name]
        task.set_config(key="num_fewshot", value=task_spec.num_fewshot)
        task.set_fewshot_seed(seed=seed)
        docs = list(range(len(task.eval_docs)))
        if spec_limits and task_spec.limit is not None:
            docs = docs[: task_spec.limit]
        size = (samples or {}).get(name, sample)
        if size is not None and size < len(docs):
            docs = sorted(random.Random(f"{seed}:{name}").sample(docs, size))
        applied = templates[task_spec.id]
        task.build_all_requests(samples=docs, rank=0, world_size=1, apply_chat_template=applied,
                                fewshot_as_multiturn=applied and task_spec.num_fewshot > 0,
                                chat_template=chat_template if applied else None)
        out[name] = {"output_type": task.OUTPUT_TYPE, "instances": list(task.instances), "docs": docs,
                     "num_fewshot": task_spec.num_fewshot, "chat_template": applied}
    return out


def run_requests(lm, instances) -> list:
    """One backend's answers to a task's instances, in their order."""
    kind = instances[0].request_type
    return getattr(lm, kind)(list(instances))


def _decisions(instances, answers) -> dict:
    """Per document: the index of the most likely choice (raw log-likelihood) — lm-eval's ``acc`` decision."""
    by_doc = defaultdict(list)
    for instance, answer in zip(instances, answers):
        by_doc[instance.doc_id].append((instance.idx, answer[0]))
    return {doc: max(sorted(values), key=lambda v: v[1])[0] for doc, values in by_doc.items()}


def compare_answers(ours_answers, plain_answers, instances, tolerance: float = LOGLIK_TOLERANCE) -> dict:
    """Differences between two backends' answers to the same instances."""
    kind = instances[0].request_type
    report = {"requests": len(instances), "kind": kind}
    if kind == "generate_until":
        report["text_mismatches"] = [i for i, (a, b) in enumerate(zip(ours_answers, plain_answers)) if a != b]
        return report
    if kind == "loglikelihood_rolling":
        gaps = [abs(a - b) for a, b in zip(ours_answers, plain_answers)]
        report.update(max_gap=max(gaps), over_tolerance=sum(g > tolerance for g in gaps))
        return report
    gaps = [abs(a[0] - b[0]) for a, b in zip(ours_answers, plain_answers)]
    ours_dec, plain_dec = _decisions(instances, ours_answers), _decisions(instances, plain_answers)
    report.update(max_gap=max(gaps), over_tolerance=sum(g > tolerance for g in gaps),
                  greedy_mismatches=sum(a[1] != b[1] for a, b in zip(ours_answers, plain_answers)),
                  documents=len(plain_dec), decision_flips=sum(ours_dec[d] != plain_dec[d] for d in plain_dec))
    return report


def _request_tokens(lm, instances, answers=None) -> int:
    """Tokens of the work the requests name, the same count for both backends: context + continuation of a
    log-likelihood request; context + generated text (re-tokenised) of a generation."""
    total = 0
    for k, instance in enumerate(instances):
        if instance.request_type == "loglikelihood":
            context, continuation = lm._encode_pair(*instance.args)
            total += len(context) + len(continuation)
        else:
            total += len(lm.tok_encode(instance.args[0]))
            if answers is not None:
                total += len(lm.tok_encode(answers[k], add_special_tokens=False))
    return total


def time_backends(backends: dict, instances, repeats: int = 1) -> dict:
    """Seconds, requests/s and tokens/s of each backend on the same instances, backends alternated per repeat
    (machine drift hits all alike); the best of ``repeats``. Also the answers of the last repeat."""
    from suite.bench.machine import MachineShare

    timing = {name: [] for name in backends}
    answers, machine = {}, {}
    for _ in range(repeats):
        for name, lm in backends.items():
            with MachineShare() as share:
                cpu = time.process_time()
                started = time.perf_counter()
                answers[name] = run_requests(lm, instances)
                timing[name].append(time.perf_counter() - started)
                machine[name] = share.finish(time.process_time() - cpu)
    first = next(iter(backends))
    generated = answers[first] if instances[0].request_type == "generate_until" else None
    tokens = _request_tokens(backends[first], instances, generated)
    result = {"requests": len(instances), "request_tokens": tokens}
    for name, seconds in timing.items():
        best = min(seconds)
        result[name] = {"seconds": best, "requests_per_s": len(instances) / best, "tokens_per_s": tokens / best,
                        "contended": machine[name].get("contended"), "others_share": machine[name].get("others_share")}
    return {"timing": result, "answers": answers}


# -- the benchmark section (python -m suite.bench.perf; or alone: python -m suite.bench.eval_backends) -------

# task type of each quick-spec leaf task (the three kinds of work)
TASK_TYPES = {"alignsuite_arc_challenge": "multiple choice, shared context",
              "alignsuite_hellaswag": "multiple choice, shared context",
              "alignsuite_truthfulqa_mc2": "multiple choice, shared context (TruthfulQA-MC2)",
              "alignsuite_winogrande": "partial scoring (Winogrande)",
              "alignsuite_gsm8k": "generation (GSM8K, greedy)"}


# The v1 leaderboard's few-shot formats of the same multiple-choice tasks (ARC 25-shot, HellaSwag 10-shot, MMLU
# 5-shot on the quick spec's subjects, Winogrande 5-shot), measured beside the zero-shot quick spec: there the
# few-shot block is what lm-eval's backend runs again for every answer choice (and, for MMLU, every question).
FEWSHOT = {"leaderboard": "open-llm-v1",
           "tasks": ["arc_challenge", "hellaswag", "mmlu_high_school_geography", "mmlu_marketing",
                     "mmlu_high_school_psychology", "mmlu_miscellaneous", "winogrande"]}


def task_type(name: str, output_type: str) -> str:
    if name in TASK_TYPES:
        return TASK_TYPES[name]
    if output_type == "generate_until":
        return "generation"
    return "multiple choice, shared context (MMLU-style)" if "mmlu" in name else "multiple choice, shared context"


def _group(tasks: dict, names: list[str], params: int, peak: float) -> dict:
    """Requests, seconds, speed-up, requests/s, tokens/s and share of the matmul peak of some tasks together."""
    rows = [tasks[name] for name in names]
    group = {"tasks": names, "requests": sum(r["requests"] for r in rows),
             "request_tokens": sum(r["request_tokens"] for r in rows),
             "ours_s": sum(r["ours"]["seconds"] for r in rows),
             "lm_eval_hf_s": sum(r["lm_eval_hf"]["seconds"] for r in rows)}
    group["speedup"] = group["lm_eval_hf_s"] / group["ours_s"]
    for who in ("ours", "lm_eval_hf"):
        group[f"{who}_requests_per_s"] = group["requests"] / group[f"{who}_s"]
        group[f"{who}_tokens_per_s"] = group["request_tokens"] / group[f"{who}_s"]
        group[f"{who}_fraction_of_matmul_peak"] = 2 * params * group["request_tokens"] / group[f"{who}_s"] / peak
    return group


def _measure_tasks(ours, plain, requests: dict, params: int, peak: float, repeats: int = 1,
                   fewshot_of: str | None = None) -> dict:
    """Per task: both backends timed on its requests, their answers compared, ours' work counted; the rows of
    a spec's few-shot format (``fewshot_of``) get their type and name marked so."""
    tasks = {}
    for name, task in requests.items():
        instances = task["instances"]
        stats_before = dict(ours.stats)
        measured = time_backends({"ours": ours, "lm_eval_hf": plain}, instances, repeats=repeats)
        timing = measured["timing"]
        agreement = compare_answers(measured["answers"]["ours"], measured["answers"]["lm_eval_hf"], instances)
        flops = 2 * params * timing["request_tokens"]  # forward FLOPs of the requested tokens (attention aside)
        for who in ("ours", "lm_eval_hf"):
            timing[who]["achieved_flops_per_s"] = flops / timing[who]["seconds"]
            timing[who]["fraction_of_matmul_peak"] = timing[who]["achieved_flops_per_s"] / peak
        computed = {k: ours.stats[k] - stats_before.get(k, 0) for k in ours.stats}
        kind = task_type(name, task["output_type"])
        if fewshot_of:
            kind, name = f"{kind}, {fewshot_of} few-shot", f"{name} ({task['num_fewshot']}-shot, {fewshot_of})"
        tasks[name] = {"type": kind, "documents": len(task["docs"]), "num_fewshot": task["num_fewshot"],
                       **timing, "speedup": timing["lm_eval_hf"]["seconds"] / timing["ours"]["seconds"],
                       "agreement": agreement, "ours_work": computed}
    return tasks


def measure_backends(spec: dict) -> dict:
    """Ours vs lm-eval's HFLM on the same requests (a seeded sample of every task of a leaderboard spec, and
    with ``spec["fewshot"]`` = {"leaderboard", "tasks", "sample"} of some tasks in another spec's few-shot
    format), same model and batch size, alternated: requests/s, tokens/s, achieved FLOP/s against the matmul
    peak measured in this process, and whether every answer agreed."""
    import tempfile

    import torch

    from suite.evaluation import load_leaderboard
    from suite.modeling.models import load_model
    from suite.bench.machine import matmul_params, bf16_is_native, matmul_peak

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    peak = matmul_peak()
    loaded = load_model(spec["model_dir"])
    model = loaded.model.eval()
    ours, plain = make_backends(model, loaded.tokenizer, spec["eval_batch_size"])
    workdir = Path(tempfile.mkdtemp(dir=spec.get("workdir"), prefix="eval-backends-"))
    params = matmul_params(model)
    seed, repeats = spec.get("seed", 0), spec.get("repeats", 1)
    requests = task_requests(load_leaderboard(spec["leaderboard"]), workdir / "spec", sample=spec["sample"],
                             samples=spec.get("samples"), seed=seed, spec_limits=False,
                             chat_template=ours.apply_chat_template)
    tasks = _measure_tasks(ours, plain, requests, params, peak["fp32"], repeats)
    whole = list(tasks)
    fewshot = spec.get("fewshot")
    if fewshot and fewshot.get("sample"):
        requests = task_requests(load_leaderboard(fewshot["leaderboard"]), workdir / "fewshot",
                                 sample=fewshot["sample"], seed=seed, spec_limits=False, only=set(fewshot["tasks"]),
                                 chat_template=ours.apply_chat_template)
        tasks.update(_measure_tasks(ours, plain, requests, params, peak["fp32"], repeats, fewshot["leaderboard"]))
    by_type = {}
    for name, row in tasks.items():
        by_type.setdefault(row["type"], []).append(name)
    by_type["whole spec"] = whole  # the spec's own tasks (the few-shot formats are measured beside it)
    by_type = {kind: _group(tasks, names, params, peak["fp32"]) for kind, names in by_type.items()}
    agree = all(not (r["agreement"].get("over_tolerance") or r["agreement"].get("greedy_mismatches")
                     or r["agreement"].get("decision_flips") or r["agreement"].get("text_mismatches"))
                for r in tasks.values())
    bf16 = {"native": bf16_is_native(), "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if not bf16["native"]:
        bf16["note"] = (f"not measured: this CPU has no native bf16 ({bf16['cpu_capability']}; bf16 matmul "
                        f"{peak['bf16'] / 1e9:.1f} GFLOP/s vs fp32 {peak['fp32'] / 1e9:.1f}): torch emulates it, so "
                        "bf16 evaluation stays off here")
    return {"model": spec["model_dir"], "leaderboard": spec["leaderboard"], "batch_size": spec["eval_batch_size"],
            "generation_batch_size": ours.generation_batch_size, "row_tokens": ours.row_tokens,
            "sample": spec["sample"], "samples": spec.get("samples"), "seed": seed, "fewshot": fewshot,
            "matmul_params": params, "matmul_peak_flops": peak, "tasks": tasks, "by_type": by_type,
            "all_answers_agree": agree, "bf16": bf16}


def _fewshot_sentence(fewshot: dict | None) -> str:
    if not fewshot or not fewshot.get("sample"):
        return ""
    documents = f"{fewshot['sample']} seeded document{'s' if fewshot['sample'] != 1 else ''}"
    return (f" Beside them, {documents} of {', '.join(fewshot['tasks'])} in the "
            f"{fewshot['leaderboard']} spec's few-shot format (rows marked so; not part of the whole-spec row).")


def render_backends(result: dict) -> list[str]:
    """Markdown lines of the section."""
    peak = result["matmul_peak_flops"]["fp32"]
    lines = [f"Evaluation backends ({result['leaderboard']} tasks, a seeded sample of {result['sample']} documents "
             f"each, {result['model']}, batch size {result['batch_size']} for both; ours decodes up to "
             f"{result['generation_batch_size']} sequences together): ours vs lm-eval's HF backend on the same "
             f"requests. All answers agree (log-likelihoods within {LOGLIK_TOLERANCE:g}, greedy flags, decisions, "
             f"generated text): **{'yes' if result['all_answers_agree'] else 'NO'}**."
             + _fewshot_sentence(result.get("fewshot")), "",
             "| task type | requests | ours req/s | lm-eval req/s | ours tok/s | lm-eval tok/s | speed-up | "
             "ours of peak | lm-eval of peak |", "|---|---|---|---|---|---|---|---|---|"]
    for kind, g in result["by_type"].items():
        lines.append(f"| {kind} | {g['requests']} | {g['ours_requests_per_s']:.1f} | {g['lm_eval_hf_requests_per_s']:.1f}"
                     f" | {g['ours_tokens_per_s']:.0f} | {g['lm_eval_hf_tokens_per_s']:.0f} | {g['speedup']:.2f}× | "
                     f"{g['ours_fraction_of_matmul_peak']:.1%} | {g['lm_eval_hf_fraction_of_matmul_peak']:.1%} |")
    lines += ["", "| task | docs | requests | ours s | lm-eval s | speed-up | tokens computed / requested (ours) | "
                  "max |Δ log-lik| | contended |", "|---|---|---|---|---|---|---|---|---|"]
    for name, row in result["tasks"].items():
        work = row["ours_work"]
        ratio = (f"{work['computed_tokens'] / work['request_tokens']:.2f}" if work.get("request_tokens") else "–")
        gap = row["agreement"].get("max_gap")
        lines.append(f"| {name} | {row['documents']} | {row['requests']} | {row['ours']['seconds']:.2f} | "
                     f"{row['lm_eval_hf']['seconds']:.2f} | {row['speedup']:.2f}× | {ratio} | "
                     f"{'–' if gap is None else f'{gap:.1e}'} | "
                     f"{'yes' if row['ours']['contended'] or row['lm_eval_hf']['contended'] else 'no'} |")
    lines += ["", f"Tokens: context + continuation of every log-likelihood request, context + generated text of a "
                  f"generation, the same count for both backends. FLOP/s: 2 × {result['matmul_params'] / 1e6:.0f} M "
                  f"matmul parameters per requested token per second (attention aside), against the fp32 matmul peak "
                  f"measured in the same run ({peak / 1e9:.1f} GFLOP/s)."]
    bf16 = result["bf16"]
    lines += ["", f"bf16 evaluation: {bf16.get('note') or 'see bf16 flips'}."]
    return lines


def main(argv: list[str] | None = None) -> int:
    """This section alone: python -m suite.bench.eval_backends --out DIR."""
    import argparse
    import json
    import os
    import sys

    parser = argparse.ArgumentParser(prog="python -m suite.bench.eval_backends", description=main.__doc__)
    parser.add_argument("--out", default="results/eval-speed")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--leaderboard", default="quick")
    parser.add_argument("--sample", type=int, default=8, help="documents per task (seeded sample)")
    parser.add_argument("--generation-sample", type=int, default=16, help="documents of a generation task")
    parser.add_argument("--fewshot-sample", type=int, default=8,
                        help=f"documents of each task in {FEWSHOT['leaderboard']}'s few-shot format (0: leave them out)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    spec = {"model_dir": options.model, "leaderboard": options.leaderboard, "sample": options.sample,
            "samples": {"alignsuite_gsm8k": options.generation_sample}, "eval_batch_size": options.batch_size,
            "threads": options.threads, "seed": options.seed, "fewshot": {**FEWSHOT, "sample": options.fewshot_sample}}
    result = measure_backends(spec)
    result["command"] = "python -m suite.bench.eval_backends " + " ".join(argv if argv is not None else sys.argv[1:])
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "eval-speed.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    text = "\n".join(["# Evaluation speed: ours vs lm-eval's HF backend", ""] + render_backends(result)) + "\n"
    (out / "eval-speed.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
