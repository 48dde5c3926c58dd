"""Listwise feedback in the data layer: conversions to and from ranked lists, local ``listwise`` files and
their validation, the ``data.list_size`` option, and listwise data from the mirrored AlpacaEval scores."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from suite.config.schema import build_config
from suite.core.errors import ConfigError, DataError
from suite.data import prepare_data
from suite.data.convert import (
    can_convert,
    convert,
    listwise_to_pairwise,
    listwise_to_sft,
    pairwise_to_listwise,
    resize_lists,
    scalar_to_listwise,
)
from suite.data.loaders import load_local
from suite.data.records import (
    BinaryRecord,
    ListwiseRecord,
    PairwiseRecord,
    ScalarRecord,
    SFTRecord,
    prompt_key,
)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def reference_scalar_to_listwise(records, seed, list_size):
    """The documented rule, written out independently of the implementation."""
    lists = []
    prompts = list(dict.fromkeys(prompt_key(r.prompt) for r in records))
    for key in prompts:
        group = [r for r in records if prompt_key(r.prompt) == key]
        texts = sorted({r.completion for r in group})
        mean = {t: sum(r.score for r in group if r.completion == t) / sum(r.completion == t for r in group)
                for t in texts}
        if len(texts) < list_size:
            continue
        rng = random.Random(f"{seed}:{key}")
        rng.shuffle(texts)
        texts.sort(key=lambda t: -mean[t])
        kept = [0] + sorted(rng.sample(range(1, len(texts)), list_size - 1))
        lists.append(ListwiseRecord(group[0].prompt, tuple(texts[i] for i in kept),
                                    tuple(mean[texts[i]] for i in kept)))
    return lists


SCALARS = [
    ScalarRecord("p1", "a", 0.9), ScalarRecord("p1", "b", 0.2), ScalarRecord("p1", "c", 0.5),
    ScalarRecord("p1", "d", 0.5), ScalarRecord("p1", "e", 0.1), ScalarRecord("p1", "f", 0.7),
    ScalarRecord("p2", "x", 0.4), ScalarRecord("p2", "y", 0.4), ScalarRecord("p2", "z", 0.4),
    ScalarRecord("p3", "same", 0.3), ScalarRecord("p3", "same", 0.8), ScalarRecord("p3", "other", 0.6),
    ScalarRecord("p4", "one", 0.3), ScalarRecord("p4", "two", 0.6),
]


# -- scalar → listwise ------------------------------------------------------------------------------


def test_scalar_to_listwise_exact_output_for_seed_0():
    # pinned: a change to the sampling changes every listwise benchmark's data
    assert scalar_to_listwise(SCALARS, seed=0, list_size=3) == [
        ListwiseRecord("p1", ("a", "f", "c"), (0.9, 0.7, 0.5)),  # top "a" kept, two of the other five sampled
        ListwiseRecord("p2", ("x", "y", "z"), (0.4, 0.4, 0.4)),  # all tied: the seeded order (other seeds differ)
    ]  # p3 has two distinct texts ("same" twice), p4 two responses: fewer than 3, dropped


def test_scalar_to_listwise_follows_the_documented_rule_for_every_seed_and_size():
    for list_size in (2, 3, 4):
        for seed in range(10):
            lists = scalar_to_listwise(SCALARS, seed, list_size)
            assert lists == reference_scalar_to_listwise(SCALARS, seed, list_size)
            assert lists == scalar_to_listwise(SCALARS, seed, list_size)  # seeded: reproducible
            for item in lists:
                assert len(item.responses) == len(item.scores) == list_size
                assert len(set(item.responses)) == list_size
                assert list(item.scores) == sorted(item.scores, reverse=True)  # best first


def test_scalar_to_listwise_keeps_the_top_response_and_samples_the_rest_by_seed():
    sampled = set()
    for seed in range(20):
        (p1,) = [item for item in scalar_to_listwise(SCALARS, seed, 3) if item.prompt == "p1"]
        assert p1.responses[0] == "a" and p1.scores[0] == 0.9  # the best is always kept
        sampled.add(p1.responses[1:])
    assert len(sampled) > 3  # the others vary with the seed


def test_scalar_to_listwise_ties_are_seeded_and_independent_of_input_order():
    orders = set()
    for seed in range(12):
        forward = scalar_to_listwise(SCALARS, seed, 3)
        backward = scalar_to_listwise(list(reversed(SCALARS)), seed, 3)
        assert sorted(forward, key=lambda r: r.prompt) == sorted(backward, key=lambda r: r.prompt)
        (p2,) = [item for item in forward if item.prompt == "p2"]
        orders.add(p2.responses)
    assert len(orders) > 1  # the seed, not the text, decides a tie


def test_scalar_to_listwise_merges_equal_texts_with_their_mean_score():
    records = SCALARS + [ScalarRecord("p3", "third", 0.1)]  # p3 now has three distinct texts
    (p3,) = [item for item in scalar_to_listwise(records, 0, 3) if item.prompt == "p3"]
    assert p3 == ListwiseRecord("p3", ("other", "same", "third"), (0.6, 0.55, 0.1))  # "same": (0.3 + 0.8) / 2


def test_a_prompts_list_does_not_depend_on_the_other_prompts():
    alone = [r for r in SCALARS if r.prompt == "p1"]
    assert scalar_to_listwise(alone, 5, 4) == [r for r in scalar_to_listwise(SCALARS, 5, 4) if r.prompt == "p1"]


def test_chat_prompts_group_by_content():
    chat = [{"role": "user", "content": "Hi"}]
    records = [ScalarRecord([dict(m) for m in chat], text, score) for text, score in (("a", 0.1), ("b", 0.9))]
    assert scalar_to_listwise(records, 0, 2) == [ListwiseRecord(chat, ("b", "a"), (0.9, 0.1))]


# -- the other conversions --------------------------------------------------------------------------

PAIRS = [PairwiseRecord("p", "good", "bad", 0.4, 0.4), PairwiseRecord("q", "yes", "no")]
LISTS = [ListwiseRecord("p", ("best", "mid", "worst"), (0.9, 0.5, 0.2)),
         ListwiseRecord("q", ("top", "low"), (0.7, 0.3))]


def test_pairwise_to_listwise_only_as_lists_of_two():
    expected = [ListwiseRecord("p", ("good", "bad"), (1.0, 0.0)), ListwiseRecord("q", ("yes", "no"), (1.0, 0.0))]
    assert pairwise_to_listwise(PAIRS) == expected  # chosen first, scores (1, 0) even when the pair's scores tie
    assert convert(PAIRS, "listwise", list_size=2) == expected
    for size in (3, 4):
        with pytest.raises(ConfigError, match=f"pairwise dataset with data.list_size {size}: .*set data.list_size: 2"):
            convert(PAIRS, "listwise", list_size=size)
    with pytest.raises(ConfigError, match="data.list_size: expected an integer >= 2, got 1"):
        convert(PAIRS, "listwise", list_size=1)


def test_listwise_to_pairwise_binary_scalar_sft_go_through_best_vs_worst():
    pairs = [PairwiseRecord("p", "best", "worst", 0.9, 0.2), PairwiseRecord("q", "top", "low", 0.7, 0.3)]
    assert listwise_to_pairwise(LISTS) == pairs == convert(LISTS, "pairwise")
    assert listwise_to_sft(LISTS) == [SFTRecord("p", "best"), SFTRecord("q", "top")] == convert(LISTS, "sft")
    assert convert(LISTS, "binary") == [BinaryRecord("p", "best", True), BinaryRecord("p", "worst", False),
                                        BinaryRecord("q", "top", True), BinaryRecord("q", "low", False)]
    assert convert(LISTS, "scalar") == [ScalarRecord("p", "best", 0.9), ScalarRecord("p", "worst", 0.2),
                                        ScalarRecord("q", "top", 0.7), ScalarRecord("q", "low", 0.3)]
    unbounded = [ListwiseRecord("p", ("a", "b"), (7.0, -2.0))]
    assert convert(unbounded, "pairwise") == [PairwiseRecord("p", "a", "b", 7.0, -2.0)]
    with pytest.raises(DataError, match=r"scalar feedback needs scores in \[0, 1\]: pair 1 has score 7.0"):
        convert(unbounded, "scalar")


def test_listwise_to_listwise_brings_every_list_to_list_size():
    assert convert(LISTS, "listwise", list_size=3) == [LISTS[0]]  # the list of two is too short
    assert convert(LISTS, "listwise", list_size=2, seed=0) == resize_lists(LISTS, 0, 2)
    for seed in range(8):
        first, second = resize_lists(LISTS, seed, 2)
        assert first.responses[0] == "best" and first.responses[1] in ("mid", "worst")  # top kept, one sampled
        assert first.scores == (0.9, 0.5 if first.responses[1] == "mid" else 0.2)
        assert second == LISTS[1]  # already of size 2
    assert {resize_lists(LISTS, seed, 2)[0].responses[1] for seed in range(8)} == {"mid", "worst"}


def test_can_convert_matrix():
    assert can_convert("scalar", "listwise") and can_convert("listwise", "listwise")
    assert can_convert("pairwise", "listwise", list_size=2) and not can_convert("pairwise", "listwise", list_size=4)
    assert not can_convert("binary", "listwise") and not can_convert("sft", "listwise")
    assert all(can_convert("listwise", target) for target in ("pairwise", "binary", "scalar", "sft"))
    for records, source in (([BinaryRecord("p", "a", True)], "binary"), ([SFTRecord("p", "a")], "sft")):
        with pytest.raises(ConfigError, match=f"needs listwise feedback cannot be trained on a {source} dataset"):
            convert(records, "listwise")


# -- local listwise files ---------------------------------------------------------------------------

CHAT_PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hey"}]


def test_local_listwise_file_plain_and_chat_forms_stored_best_first(tmp_path):
    rows = [
        {"prompt": "Hi", "responses": ["meh", "great", "bad"], "scores": [0.5, 2, -1]},
        {"prompt": CHAT_PROMPT, "responses": [[{"role": "assistant", "content": "Hello!"}], "Yo", "Hey."],
         "scores": [1, 3, 1]},
    ]
    expected = [ListwiseRecord("Hi", ("great", "meh", "bad"), (2.0, 0.5, -1.0)),
                ListwiseRecord(CHAT_PROMPT, ("Yo", "Hello!", "Hey."), (3.0, 1.0, 1.0))]  # tie: file order kept
    assert load_local(write_jsonl(tmp_path / "l.jsonl", rows), "listwise") == expected
    as_json = tmp_path / "l.json"
    as_json.write_text(json.dumps(rows))
    assert load_local(as_json, "listwise") == expected


GOOD = {"prompt": "q", "responses": ["a", "b"], "scores": [1, 0]}
BAD_ROWS = [
    ({"prompt": "q", "scores": [1, 0]}, "row 2, key 'responses': missing field (a listwise record needs prompt, "
                                        "responses, scores)"),
    ({"prompt": "q", "responses": ["a", "b"]}, "row 2, key 'scores': missing field"),
    ({"responses": ["a", "b"], "scores": [1, 0]}, "row 2, key 'prompt': missing field"),
    ({"prompt": "q", "responses": "a", "scores": [1]}, "row 2, key 'responses': expected a list of responses"),
    ({"prompt": "q", "responses": ["a", "b"], "scores": 1}, "row 2, key 'scores': expected a list of numbers"),
    ({"prompt": "q", "responses": ["a", "b", "c"], "scores": [1, 0]},
     "row 2: responses and scores differ in length (3 responses, 2 scores)"),
    ({"prompt": "q", "responses": ["a"], "scores": [1]},
     "row 2, key 'responses': 1 response(s); a ranking needs at least 2"),
    ({"prompt": "q", "responses": [], "scores": []}, "row 2, key 'responses': 0 response(s)"),
    ({"prompt": "q", "responses": ["a", ""], "scores": [1, 0]}, "row 2, key 'responses[1]': empty response"),
    ({"prompt": "q", "responses": ["a", "  "], "scores": [1, 0]}, "row 2, key 'responses[1]': empty response"),
    ({"prompt": "q", "responses": ["a", 3], "scores": [1, 0]}, "row 2, key 'responses[1]': expected a string"),
    ({"prompt": "q", "responses": ["a", [{"role": "user", "content": "b"}]], "scores": [1, 0]},
     "row 2, key 'responses[1]': message 1 has role 'user'"),
    ({"prompt": "q", "responses": ["a", "b", "a"], "scores": [1, 0, 2]},
     "row 2, key 'responses': responses[0] and responses[2] are identical"),
    ({"prompt": "q", "responses": ["a", [{"role": "assistant", "content": "a"}]], "scores": [1, 0]},
     "responses[0] and responses[1] are identical"),
    ({"prompt": "q", "responses": ["a", "b"], "scores": [1, float("nan")]}, "row 2, key 'scores[1]': score is nan"),
    ({"prompt": "q", "responses": ["a", "b"], "scores": [float("inf"), 0]}, "row 2, key 'scores[0]': score is inf"),
    ({"prompt": "q", "responses": ["a", "b"], "scores": [float("-inf"), 0]}, "row 2, key 'scores[0]': score is -inf"),
    ({"prompt": "q", "responses": ["a", "b"], "scores": [1, "high"]}, "row 2, key 'scores[1]': expected a number"),
    ({"prompt": "q", "responses": ["a", "b"], "scores": [True, 0]}, "row 2, key 'scores[0]': expected a number"),
    ({"prompt": " ", "responses": ["a", "b"], "scores": [1, 0]}, "row 2, key 'prompt': empty prompt"),
    (["not", "an", "object"], "row 2: expected a JSON object, got list"),
]


@pytest.mark.parametrize("bad, message", BAD_ROWS)
def test_listwise_row_errors_name_the_file_and_row(tmp_path, bad, message):
    for name in ("data.jsonl", "data.json"):
        path = tmp_path / name
        rows = [GOOD, bad]
        path.write_text(json.dumps(rows) if name.endswith(".json") else "".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(DataError) as info:
            load_local(path, "listwise")
        assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


# -- prepare_data -----------------------------------------------------------------------------------


def scalar_rows(prompts: int = 40, per_prompt: int = 5):
    return [{"prompt": f"Question {p}?", "completion": f"Answer {r} to {p}",
             "score": round((p * 7 + r * 3) % 10 / 10, 1)}
            for p in range(prompts) for r in range(per_prompt)]


@pytest.fixture
def scalar_file(tmp_path) -> dict:
    return {"path": str(write_jsonl(tmp_path / "scores.jsonl", scalar_rows())), "format": "scalar"}


def test_prepare_listwise_from_scalar_shares_the_heldout_split_and_pairs(scalar_file):
    kwargs = dict(heldout_fraction=0.25, split_seed=7)
    lists = prepare_data(scalar_file, "listwise", seed=3, list_size=4, **kwargs)
    pairwise = prepare_data(scalar_file, "pairwise", seed=3, **kwargs)
    assert lists.heldout_pairs == pairwise.heldout_pairs and lists.heldout_pairs  # evaluation stays pairwise
    heldout_prompts = {p.prompt for p in lists.heldout_pairs}
    assert heldout_prompts.isdisjoint({item.prompt for item in lists.train})
    assert len(lists.train) == lists.stats["train_prompts"] == 40 - lists.stats["heldout_prompts"]
    for item in lists.train:
        assert isinstance(item, ListwiseRecord) and len(item.responses) == 4
        assert list(item.scores) == sorted(item.scores, reverse=True)
    assert lists.stats["list_size"] == 4 and lists.stats["train_units"] == len(lists.train)
    # the lists are made once from split_seed; the run's seed only orders them
    other = prepare_data(scalar_file, "listwise", seed=4, list_size=4, **kwargs)
    assert other.train != lists.train and sorted(map(repr, other.train)) == sorted(map(repr, lists.train))
    assert prepare_data(scalar_file, "listwise", seed=3, list_size=4, **kwargs).train == lists.train
    capped = prepare_data(scalar_file, "listwise", seed=3, list_size=4, train_max=5, **kwargs)
    assert capped.train == lists.train[:5]
    assert all(len(item.responses) == 5 for item in prepare_data(scalar_file, "listwise", list_size=5).train)
    with pytest.raises(ConfigError, match="no lists of 6 responses left for training"):
        prepare_data(scalar_file, "listwise", list_size=6)


def test_prepare_from_a_local_listwise_file(tmp_path):
    rows = [{"prompt": f"q{i}", "responses": [f"r{j} for {i}" for j in range(3 + i % 2)],
             "scores": [float(j) for j in range(3 + i % 2)]} for i in range(30)]
    dataset = {"path": str(write_jsonl(tmp_path / "ranked.jsonl", rows)), "format": "listwise"}
    lists = prepare_data(dataset, "listwise", list_size=3, heldout_fraction=0.2)
    assert len(lists.train) == 30 - lists.stats["heldout_native"]
    assert all(len(item.responses) == 3 and item.scores[0] == max(item.scores) for item in lists.train)
    assert lists.stats["source_feedback"] == "listwise"
    heldout_prompts = {p.prompt for p in lists.heldout_pairs}
    assert len(heldout_prompts) == lists.stats["heldout_native"] > 0
    for pair in lists.heldout_pairs:  # best vs worst of the held-out lists
        n = 3 + int(pair.prompt[1:]) % 2
        assert (pair.chosen, pair.rejected) == (f"r{n - 1} for {pair.prompt[1:]}", f"r0 for {pair.prompt[1:]}")
    four = prepare_data(dataset, "listwise", list_size=4, heldout_fraction=0.2)
    assert all(int(item.prompt[1:]) % 2 == 1 for item in four.train)  # lists of three are dropped
    pairs = prepare_data(dataset, "pairwise", heldout_fraction=0.2)
    assert pairs.heldout_pairs == lists.heldout_pairs and len(pairs.train) == len(lists.train)
    sft = prepare_data(dataset, "sft", heldout_fraction=0.2, seed=1)
    assert {r.completion for r in sft.train} == {p.chosen for p in pairs.train}


def test_prepare_data_list_size_errors(tmp_path, scalar_file):
    for bad in (1, 0, "4", True, 2.5):
        with pytest.raises(ConfigError, match=f"data.list_size: expected an integer >= 2, got {bad!r}"):
            prepare_data(scalar_file, "listwise", list_size=bad)
    pairs = {"path": str(write_jsonl(tmp_path / "p.jsonl", [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"}
                                                           for i in range(10)])), "format": "pairwise"}
    with pytest.raises(ConfigError, match=r"p.jsonl: .*pairwise dataset with data.list_size 4"):
        prepare_data(pairs, "listwise")
    two = prepare_data(pairs, "listwise", list_size=2, heldout_fraction=0)
    assert two.train and all(item.responses == ("a", "b") and item.scores == (1.0, 0.0) for item in two.train)
    binary = {"path": str(write_jsonl(tmp_path / "b.jsonl", [{"prompt": "q", "completion": "a", "label": True}])),
              "format": "binary"}
    with pytest.raises(ConfigError, match="needs listwise feedback cannot be trained on a binary dataset"):
        prepare_data(binary, "listwise")


# -- config -----------------------------------------------------------------------------------------

BASE = {"name": "t", "model": "tiny-llama", "dataset": "alpaca-eval-scored", "methods": ["rrhf", "pro"],
        "train": {"max_steps": 2, "per_device_batch_size": 2}}


@pytest.mark.parametrize("value, fragment", [
    (1, "data.list_size: must be >= 2, got 1"),
    (0, "data.list_size: must be >= 2, got 0"),
    ("four", "data.list_size: expected int, got str"),
    (True, "data.list_size: expected int, got bool"),
    (2.0, "data.list_size: expected int, got float"),
])
def test_config_list_size_is_validated(value, fragment):
    with pytest.raises(ConfigError) as info:
        build_config({**BASE, "data": {"list_size": value}})
    assert fragment in str(info.value)


def test_config_list_size_reaches_prepare_data(tmp_path, scalar_file):
    assert build_config(BASE).data.list_size == 4
    config = build_config({**BASE, "dataset": scalar_file, "data": {"list_size": 3}})
    from suite.execution.runner import Runner

    data = Runner(config, tmp_path / "results").prepare_data("listwise", 0)
    assert data.train and all(len(item.responses) == 3 for item in data.train)
    local = build_config({**BASE, "dataset": {"path": str(tmp_path / "x.jsonl"), "format": "listwise"}})
    assert local.dataset["format"] == "listwise"


# -- the mirrored AlpacaEval scores -----------------------------------------------------------------


def test_alpaca_eval_scored_as_lists_of_four(mirror):
    data = prepare_data("alpaca-eval-scored", "listwise", train_max=10, heldout_max=20)
    assert len(data.train) == 10 and len(data.heldout_pairs) == 20
    for item in data.train:
        assert isinstance(item, ListwiseRecord) and isinstance(item.prompt, str)
        assert len(item.responses) == len(set(item.responses)) == 4
        assert list(item.scores) == sorted(item.scores, reverse=True) and all(0 <= s <= 1 for s in item.scores)
    assert len({item.prompt for item in data.train}) == 10  # one list per prompt
    assert data.stats["list_size"] == 4 and data.stats["train_converted"] == data.stats["train_prompts"]
    pairwise = prepare_data("alpaca-eval-scored", "pairwise", train_max=10, heldout_max=20)
    assert data.heldout_pairs == pairwise.heldout_pairs
