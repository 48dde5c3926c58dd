"""Our lm-eval backend against lm-eval's own HF backend on the same real requests: same answers, and speed.

``task_requests`` builds lm-eval ``Instance``s the way ``simple_evaluate`` does (the spec's overlay tasks,
mirror data, few-shot seed) for a seeded sample of each task's documents; ``compare_answers`` runs both
backends on them and reports every difference (log-likelihood, greedy flag, multiple-choice decision,
generated text); ``time_backends`` measures requests/s and tokens/s of both, per task, alternating them.
The tests (``tests/test_eval_backend.py``) and the benchmark (``python -m suite.perf``) use these.
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


def task_requests(spec, workdir: Path, *, sample: int | None, seed: int = 0, tokenizer_lm=None) -> dict:
    """{leaf task: {"output_type", "instances" (lm-eval Instances), "docs"}} for every leaf task of ``spec``
    that can run, each on a seeded sample of ``sample`` documents (all when None; the spec's limit caps it)."""
    from lm_eval.tasks import TaskManager

    from suite.data.loaders import mirror_root
    from suite.evaluation.harness import _task_index, write_task_yamls

    index = _task_index(str(spec.include_path) if spec.include_path else None)
    plan, _ = write_task_yamls(spec, index, Path(workdir), mirror_root())
    overlays = TaskManager(include_path=str(workdir), include_defaults=False)
    names = [(task, name) for task in spec.tasks for _, name in plan[task.id]]
    loaded = overlays.load([name for _, name in names])["tasks"]
    out = {}
    for task_spec, name in names:
        task = loaded[name]
        task.set_config(key="num_fewshot", value=task_spec.num_fewshot)
        task.set_fewshot_seed(seed=seed)
        docs = list(range(len(task.eval_docs)))
        cap = task_spec.limit if task_spec.limit is not None else len(docs)
        docs = docs[:cap]
        if sample is not None and sample < len(docs):
            docs = sorted(random.Random(f"{seed}:{name}").sample(docs, sample))
        task.build_all_requests(samples=docs, rank=0, world_size=1)
        out[name] = {"output_type": task.OUTPUT_TYPE, "instances": list(task.instances), "docs": docs}
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


def _request_tokens(lm, instances) -> int:
    """Tokens the requests name (context + continuation, or the context of a generation) — the same count
    for both backends, so tokens/s ratios are request ratios."""
    total = 0
    for instance in instances:
        if instance.request_type == "loglikelihood":
            context, continuation = lm._encode_pair(*instance.args)
            total += len(context) + len(continuation)
        else:
            total += len(lm.tok_encode(instance.args[0]))
    return total


def time_backends(backends: dict, instances, repeats: int = 1) -> dict:
    """Seconds, requests/s and tokens/s of each backend on the same instances, backends alternated per repeat
    (machine drift hits all alike); the best of ``repeats``. Also the answers of the last repeat."""
    from suite.perf import MachineShare

    first = next(iter(backends.values()))
    tokens = _request_tokens(first, instances)
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
    result = {}
    for name, seconds in timing.items():
        best = min(seconds)
        result[name] = {"seconds": best, "requests_per_s": len(instances) / best, "tokens_per_s": tokens / best,
                        "contended": machine[name].get("contended"), "others_share": machine[name].get("others_share")}
    result["requests"], result["request_tokens"] = len(instances), tokens
    return {"timing": result, "answers": answers}
