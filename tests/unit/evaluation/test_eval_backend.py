"""Our lm-eval backend (``suite.evaluation.backend``) gives lm-eval's HF backend's answers on real requests:
log-likelihoods within 1e-4, the same greedy flags and multiple-choice decisions, the same generated text."""

import dataclasses
import os
from pathlib import Path

import pytest

from suite.evaluation import load_leaderboard
from suite.evaluation.backend import _Request, _Tree, batch_rows, pack_trees
from suite.bench.eval_backends import (FEWSHOT, LOGLIK_TOLERANCE, compare_answers, make_backends, run_requests,
                                       task_requests)
from suite.modeling.models import load_model


def _assert_same(report, where):
    assert report["requests"] > 0, where
    if report["kind"] == "generate_until":
        assert report["text_mismatches"] == [], where
        return
    assert report["over_tolerance"] == 0 and report["max_gap"] <= LOGLIK_TOLERANCE, (where, report)
    assert report["greedy_mismatches"] == 0 and report["decision_flips"] == 0, (where, report)


def _shorter_generations(instances, max_gen_toks):
    """The same generation requests with a smaller token budget (a random model never stops on its own)."""
    return [dataclasses.replace(i, arguments=(i.args[0], {**i.args[1], "max_gen_toks": max_gen_toks}))
            for i in instances]


@pytest.fixture(scope="module")
def tiny_backends():
    loaded = load_model("tiny-llama")
    return loaded, *make_backends(loaded.model, loaded.tokenizer, 4)


def test_prefix_trees_share_prefixes_and_respect_the_row_budget():
    requests = [_Request(0, None, (1, 2, 3, 4), (5,)), _Request(1, None, (1, 2, 3, 9), (5, 6)),
                _Request(2, None, (1, 2, 7), (8,)), _Request(3, None, tuple(range(20, 40)), (1,))]
    trees = pack_trees(requests, row_tokens=8)
    # 1 2 3 {4, 9} and 1 2 7 share "1 2": 6 nodes in one row; the 20-token request gets a row of its own
    assert [len(t.tokens) for t in trees] == [6, 20]
    first = trees[0]
    paths = {request.index: path for request, path in first.members}
    assert paths == {0: [0, 1, 2, 3], 1: [0, 1, 2, 4], 2: [0, 1, 5]}
    mask = first.ancestor_mask(7)  # one padding column
    assert mask[4].tolist() == [True, True, True, False, True, False, False]  # 9 sees 1 2 3, not its sibling 4
    assert mask[5].tolist() == [True, True, False, False, False, True, False]
    assert mask[6].tolist() == [False] * 6 + [True]  # padding sees itself only
    assert [first.depths[n] for n in paths[1]] == [0, 1, 2, 3]
    assert [len(b) for b in batch_rows(trees, max_rows=4, batch_tokens=40)] == [2]
    assert [len(b) for b in batch_rows(trees, max_rows=4, batch_tokens=30)] == [1, 1]


def test_answer_choices_of_a_context_longer_than_a_row_share_it():
    """A 5-shot context longer than the row budget: its choices, and the next question after the same shots,
    join its tree (up to twice the longest request); an unrelated long request does not."""
    shots = tuple(range(100, 130))  # 30 tokens of few-shot block, more than the 8-token budget
    choices = [_Request(i, None, shots + (1, 2), (40 + i,)) for i in range(4)]
    next_question = [_Request(4 + i, None, shots + (3, 4), (40 + i,)) for i in range(4)]
    unrelated = _Request(8, None, tuple(range(200, 230)), (1,))
    trees = pack_trees(choices + next_question + [unrelated], row_tokens=8)
    assert [len(t.tokens) for t in trees] == [34, 30]  # the shots once, then 1 2 and 3 4; the stranger alone
    assert sorted(r.index for r, _ in trees[0].members) == list(range(8))
    many = [_Request(i, None, shots + (i, i + 1000), (1,)) for i in range(40)]  # 40 questions after one block
    widths = [len(t.tokens) for t in pack_trees(many, row_tokens=8)]
    assert max(widths) <= 2 * 32 and sum(widths) < 40 * 32 / 2  # capped, and the block is not rerun per question


def test_a_context_is_not_split_across_rows():
    """The answer choices of a context that does not fit the rest of a row move, with the choices already
    placed, to the next row: the context is computed once, not once per row."""
    short = _Request(0, None, (1, 2, 3), (9,))
    choices = [_Request(1 + i, None, (5, 6, 7, 10 + i), (9,)) for i in range(3)]
    trees = pack_trees([short] + choices, row_tokens=8)
    # before: [1 2 3 | 5 6 7 10 11] and [5 6 7 12] (12 nodes); now 5 6 7 runs once
    assert [len(t.tokens) for t in trees] == [3, 6]
    assert sorted(r.index for r, _ in trees[1].members) == [1, 2, 3]
    # the tree of the moved choices gives each its own path (the row's paths are rebuilt, not copied)
    assert {r.index: [trees[1].tokens[n] for n in path] for r, path in trees[1].members} == {
        1: [5, 6, 7, 10], 2: [5, 6, 7, 11], 3: [5, 6, 7, 12]}
    # a group that is the whole row, or would not fit a row, is split as before
    many = [_Request(i, None, (5, 6, 7, 10 + i), (9,)) for i in range(8)]
    assert [len(t.tokens) for t in pack_trees(many, row_tokens=8)] == [8, 6]  # 5 6 7 + 5 endings, + 3 endings
    # after a few-shot block longer than a row: a question's choices move whole within the long-row budget
    shots = tuple(range(100, 130))
    questions = [_Request(10 * q + c, None, shots + (q, q + 50, 200 + c), (9,)) for q in range(4) for c in range(8)]
    trees = pack_trees(questions, row_tokens=8)
    assert [len(t.tokens) for t in trees] == [30 + 3 * 10, 30 + 10]  # three questions, then the fourth whole
    assert {r.inputs[30] for r, _ in trees[1].members} == {3}


def test_batches_cut_where_padding_and_passes_cost_least():
    """A long row with short ones pads them all to its length; the cut puts it alone when that is cheaper
    than a forward pass more (FORWARD_COST_TOKENS padded tokens)."""
    def row(n, start=0):
        return _Tree.of([_Request(start, None, tuple(range(1000 * start, 1000 * start + n)), (1,))])

    long_and_short = [row(200, 0), row(10, 1), row(12, 2), row(11, 3)]
    assert [[len(t.tokens) for t in b] for b in batch_rows(long_and_short, max_rows=4, batch_tokens=1000)] == [
        [200], [12, 11, 10]]
    similar = [row(100, 0), row(95, 1), row(90, 2)]  # padding (15 tokens) costs less than a pass more
    assert [len(b) for b in batch_rows(similar, max_rows=4, batch_tokens=1000)] == [3]
    assert [len(b) for b in batch_rows(similar, max_rows=2, batch_tokens=1000)] in ([2, 1], [1, 2])
    assert [len(b) for b in batch_rows(similar, max_rows=4, batch_tokens=250)] in ([2, 1], [1, 2])


@pytest.fixture(scope="module")
def quick_requests(tmp_path_factory):
    """Real lm-eval requests of every quick task (ARC, HellaSwag, MMLU, TruthfulQA-MC2, Winogrande, GSM8K)
    on the mirror, a seeded sample of two documents each; built once for the module."""
    root = os.environ.get("ALIGNSUITE_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("ALIGNSUITE_DATA is not set to a dataset mirror (CI sets it to ../shared/data)")
    return task_requests(load_leaderboard("quick"), tmp_path_factory.mktemp("work"), sample=2, seed=1)


@pytest.mark.parametrize("implementation, row_tokens", [("sdpa", 1024), ("eager", 64)])
def test_same_answers_as_lm_eval_hf_on_quick_tasks(tiny_backends, quick_requests, monkeypatch,
                                                   implementation, row_tokens):
    """Small rows force many trees and multi-row batches; eager attention takes the float mask."""
    loaded, ours, plain = tiny_backends
    monkeypatch.setattr(loaded.model.config, "_attn_implementation", implementation)
    monkeypatch.setattr(ours, "row_tokens", row_tokens)
    monkeypatch.setattr(ours, "batch_tokens", 2 * row_tokens)
    assert {t["output_type"] for t in quick_requests.values()} == {"multiple_choice", "generate_until"}
    for name, task in quick_requests.items():
        instances = task["instances"]
        if task["output_type"] == "generate_until":
            instances = _shorter_generations(instances, 12)
        _assert_same(compare_answers(run_requests(ours, instances), run_requests(plain, instances), instances), name)


def test_same_answers_in_the_v1_leaderboards_few_shot_formats(tiny_backends, mirror, tmp_path):
    """ARC 25-shot, HellaSwag 10-shot, MMLU 5-shot, Winogrande 5-shot: contexts longer than a row, whose
    answer choices and (MMLU) next questions share them in rows of up to twice their length."""
    _, ours, plain = tiny_backends
    requests = task_requests(load_leaderboard(FEWSHOT["leaderboard"]), tmp_path, sample=2, seed=1,
                             spec_limits=False, only=set(FEWSHOT["tasks"][:3] + FEWSHOT["tasks"][-1:]))
    assert {task["num_fewshot"] for task in requests.values()} == {25, 10, 5}
    for name, task in requests.items():
        instances = task["instances"]
        before = dict(ours.stats)
        _assert_same(compare_answers(run_requests(ours, instances), run_requests(plain, instances), instances), name)
        computed = ours.stats["computed_tokens"] - before["computed_tokens"]
        assert computed < 0.6 * (ours.stats["request_tokens"] - before["request_tokens"]), name  # shots shared


def test_generation_drops_finished_sequences_and_keeps_the_text(tiny_backends, quick_requests):
    """Contexts of different lengths in one batch, some stopped after their first tokens by a stop sequence
    drawn from their own greedy output: the batch shrinks, the padding is cut, the texts stay lm-eval's."""
    _, ours, plain = tiny_backends
    gsm8k = quick_requests["alignsuite_gsm8k"]["instances"]
    base = _shorter_generations(gsm8k, 10) + _shorter_generations(gsm8k[:1], 6)  # other kwargs: own batch
    first_texts = run_requests(plain, base)
    stopped = []
    for k, (instance, text) in enumerate(zip(base, first_texts)):
        until = list(instance.args[1].get("until", []))
        if k % 2 == 0 and len(text) > 3:
            until.append(text[2:4])  # stops this one after a few tokens
        stopped.append(dataclasses.replace(instance, arguments=(instance.args[0], {**instance.args[1], "until": until})))
    before = ours.stats["generated_tokens"]
    ours_texts, plain_texts = run_requests(ours, stopped), run_requests(plain, stopped)
    assert ours_texts == plain_texts
    assert any(len(t) < len(f) for t, f in zip(plain_texts, first_texts))  # some did stop early
    assert ours.stats["generated_tokens"] - before < 10 * 2 + 6  # finished sequences were not decoded on


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["quick", "cpu-power"])
def test_same_answers_on_the_embedded_model(mirror, tmp_path, spec):
    """Every task of the quick spec and of cpu-power (the spec that separates methods: all 57 MMLU subjects,
    IFEval with the chat template and its 1,280-token generations), a seeded sample of its documents, on
    SmolLM2-135M-Instruct."""
    loaded = load_model("smollm2-135m-instruct")
    ours, plain = make_backends(loaded.model, loaded.tokenizer, 8)
    sample = int(os.environ.get("ALIGNSUITE_BACKEND_SAMPLE", "4"))
    requests = task_requests(load_leaderboard(spec), Path(tmp_path) / "work", sample=sample, seed=0,
                             chat_template=ours.apply_chat_template)
    assert any(task["chat_template"] for task in requests.values()) == (spec == "cpu-power")  # IFEval's pin
    for name, task in requests.items():
        instances = task["instances"]
        if task["output_type"] == "generate_until":
            instances = instances[:2]
        _assert_same(compare_answers(run_requests(ours, instances), run_requests(plain, instances), instances), name)


def test_loglikelihoods_reach_the_request_cache_batch_by_batch(tiny_backends, quick_requests, monkeypatch):
    """Each batch's answers go to lm-eval's cache hook as soon as they are scored, so an evaluation killed
    in the middle of its log-likelihood requests keeps what it had answered (the run's request cache)."""
    loaded, ours, _ = tiny_backends
    arc = [instance for name in ("alignsuite_arc_challenge", "alignsuite_hellaswag", "alignsuite_winogrande")
           for instance in quick_requests[name]["instances"]]
    monkeypatch.setattr(ours, "row_tokens", 16)  # every question longer: a row of its own (its choices share it)
    monkeypatch.setattr(ours, "batch_tokens", 16)  # one row per batch: one batch per request
    kept = []
    monkeypatch.setattr(ours.cache_hook, "add_partial", lambda attr, key, answer: kept.append((attr, key, answer)))
    original, calls = type(ours)._score_rows, []

    def fail_on_the_third_batch(self, rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return original(self, rows)

    monkeypatch.setattr(type(ours), "_score_rows", fail_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        run_requests(ours, arc)
    assert 0 < len(kept) < len(arc) and {attr for attr, _, _ in kept} == {"loglikelihood"}
