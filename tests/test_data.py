"""Data: transcript splitting, conversions, validation errors, local files, held-out split, the mirror."""

import gzip
import json

import pytest

from conftest import write_jsonl
from suite.data import heldout_split, load_native, prepare_data
from suite.data.convert import convert, scalar_to_pairwise
from suite.data.loaders import load_local, split_hh_transcript
from suite.data.records import BinaryRecord, PairwiseRecord, ScalarRecord, SFTRecord
from suite.errors import ConfigError, DataError


def test_hh_transcript_split_multi_turn():
    shared = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant:"
    prompt, chosen, rejected = split_hh_transcript(shared + " Mix flour and water.", shared + " I won't help.")
    assert prompt == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How do I bake bread?"},
    ]
    assert (chosen, rejected) == ("Mix flour and water.", "I won't help.")


def test_hh_split_when_responses_share_a_prefix():
    shared = "\n\nHuman: Name a color\n\nAssistant:"
    prompt, chosen, rejected = split_hh_transcript(shared + " Blue is nice", shared + " Blue.")
    assert prompt == [{"role": "user", "content": "Name a color"}]
    assert (chosen, rejected) == ("Blue is nice", "Blue.")


SCALARS = [
    ScalarRecord("p1", "a", 0.9), ScalarRecord("p1", "b", 0.2), ScalarRecord("p1", "c", 0.5),
    ScalarRecord("p2", "x", 0.4), ScalarRecord("p2", "y", 0.4),
]


def test_scalar_to_pairwise_higher_chosen_tie_second_and_seeded():
    pairs = scalar_to_pairwise(SCALARS, seed=0)
    assert pairs == scalar_to_pairwise(SCALARS, seed=0)  # deterministic
    p1 = [p for p in pairs if p.prompt == "p1"]
    assert len(p1) == 1  # three responses: one pair, the odd one out dropped
    assert p1[0].chosen_score > p1[0].rejected_score
    (p2,) = [p for p in pairs if p.prompt == "p2"]
    # tie → the second of the (shuffled) pair is chosen, as UNA does
    assert p2.chosen_score == p2.rejected_score == 0.4
    first_of_pair = "x" if p2.rejected == "x" else "y"
    assert p2.rejected == first_of_pair


def test_conversions_from_pairs():
    pairs = [PairwiseRecord("p", "good", "bad", 0.8, 0.3)]
    assert convert(pairs, "binary") == [BinaryRecord("p", "good", True), BinaryRecord("p", "bad", False)]
    assert convert(pairs, "scalar") == [ScalarRecord("p", "good", 0.8), ScalarRecord("p", "bad", 0.3)]
    assert convert(pairs, "sft") == [SFTRecord("p", "good")]
    assert convert(pairs, "pairwise") == pairs


def test_scalar_to_binary_goes_through_the_same_pairs():
    pairs = scalar_to_pairwise(SCALARS, seed=3)
    binary = convert(SCALARS, "binary", seed=3)
    assert [(b.completion, b.label) for b in binary] == [
        x for p in pairs for x in ((p.chosen, True), (p.rejected, False))
    ]


def test_impossible_conversions_are_config_errors():
    with pytest.raises(ConfigError, match="no scores"):
        convert([PairwiseRecord("p", "a", "b")], "scalar")
    with pytest.raises(ConfigError, match="pairwise feedback cannot be made from binary"):
        convert([BinaryRecord("p", "a", True)], "pairwise")
    assert convert([BinaryRecord("p", "a", True), BinaryRecord("p", "b", False)], "sft") == [SFTRecord("p", "a")]


def test_local_files_jsonl_json_and_chat_messages(tmp_path):
    rows = [
        {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."},
        {"prompt": [{"role": "user", "content": "Hey"}], "chosen": [{"role": "assistant", "content": "Hi!"}],
         "rejected": [{"role": "assistant", "content": "No."}]},
    ]
    jsonl = write_jsonl(tmp_path / "p.jsonl", rows)
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps(rows))
    for path in (jsonl, as_json):
        records = load_local(path, "pairwise")
        assert records[0] == PairwiseRecord("Hi", "Hello!", "Go away.")
        assert records[1] == PairwiseRecord([{"role": "user", "content": "Hey"}], "Hi!", "No.")
    gz = tmp_path / "b.jsonl.gz"
    with gzip.open(gz, "wt") as out:
        out.write(json.dumps({"prompt": "q", "completion": "a", "label": False}) + "\n")
    assert load_local(gz, "binary") == [BinaryRecord("q", "a", False)]
    scalar = write_jsonl(tmp_path / "s.jsonl", [{"prompt": "q", "completion": "a", "score": 1}])
    assert load_local(scalar, "scalar") == [ScalarRecord("q", "a", 1.0)]
    sft = write_jsonl(tmp_path / "t.jsonl", [{"prompt": "q", "completion": "a"}])
    assert load_local(sft, "sft") == [SFTRecord("q", "a")]


BAD_ROWS = [
    ("pairwise", {"prompt": "q", "chosen": "a"}, "row 2, key 'rejected': missing field"),
    ("pairwise", {"prompt": "q", "chosen": "a", "rejected": "a"}, "row 2: chosen and rejected are identical"),
    ("pairwise", {"prompt": "q", "chosen": "  ", "rejected": "a"}, "row 2, key 'chosen': empty response"),
    ("pairwise", {"prompt": "", "chosen": "b", "rejected": "a"}, "row 2, key 'prompt': empty prompt"),
    ("pairwise", {"prompt": 5, "chosen": "b", "rejected": "a"}, "row 2, key 'prompt': expected a string"),
    ("pairwise", {"prompt": "q", "chosen": 3, "rejected": "a"}, "row 2, key 'chosen': expected a string"),
    ("scalar", {"prompt": "q", "completion": "a", "score": float("nan")}, "row 2, key 'score': score is nan"),
    ("scalar", {"prompt": "q", "completion": "a", "score": 1.5}, "row 2, key 'score': score 1.5 is outside [0, 1]"),
    ("scalar", {"prompt": "q", "completion": "a", "score": "high"}, "row 2, key 'score': expected a number"),
    ("binary", {"prompt": "q", "completion": "a", "label": "yes"}, "row 2, key 'label': expected true or false"),
    ("binary", {"prompt": "q", "completion": "a", "label": 1}, "row 2, key 'label': expected true or false"),
    ("sft", ["not", "an", "object"], "row 2: expected a JSON object"),
]


@pytest.mark.parametrize("feedback, bad, message", BAD_ROWS)
def test_validation_errors_name_file_row_and_key(tmp_path, feedback, bad, message):
    good = {"pairwise": {"prompt": "q", "chosen": "b", "rejected": "a"},
            "scalar": {"prompt": "q", "completion": "a", "score": 0.5},
            "binary": {"prompt": "q", "completion": "a", "label": True},
            "sft": {"prompt": "q", "completion": "a"}}[feedback]
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad).replace("NaN", "NaN") + "\n")
    with pytest.raises(DataError) as info:
        load_local(path, feedback)
    assert str(path) in str(info.value) and message in str(info.value)


def test_file_level_errors(tmp_path):
    with pytest.raises(DataError, match="missing.jsonl: file not found"):
        load_local(tmp_path / "missing.jsonl", "sft")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "q", "completion": "a"}\n{"prompt": "q", "comp\n')
    with pytest.raises(DataError, match=r"broken.jsonl: row 2: invalid JSON"):
        load_local(broken, "sft")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DataError, match="empty.jsonl: no rows"):
        load_local(empty, "sft")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"prompt": "caf\xe9", "completion": "a"}\n')
    with pytest.raises(DataError, match="latin.jsonl: not valid UTF-8"):
        load_local(latin, "sft")
    not_list = tmp_path / "obj.json"
    not_list.write_text('{"prompt": "q"}')
    with pytest.raises(DataError, match="must be a list of objects"):
        load_local(not_list, "sft")
    with pytest.raises(DataError, match="unknown format 'ranking'"):
        load_local(empty, "ranking")
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        load_native("nope")


def test_heldout_split_is_by_prompt_fixed_and_independent_of_the_run_seed(pairwise_file):
    records = load_local(pairwise_file, "pairwise")
    train, heldout = heldout_split(records * 2, 0.3, split_seed=7)
    assert {r.prompt for r in train}.isdisjoint({r.prompt for r in heldout})
    assert heldout and train
    dataset = {"path": str(pairwise_file), "format": "pairwise"}
    a = prepare_data(dataset, "pairwise", seed=0, heldout_fraction=0.3, split_seed=7)
    b = prepare_data(dataset, "binary", seed=5, heldout_fraction=0.3, split_seed=7)
    assert a.heldout_pairs and [p.prompt for p in a.heldout_pairs] == [p.prompt for p in b.heldout_pairs]
    assert {r.prompt for r in a.train} == {r.prompt for r in b.train}
    again = prepare_data(dataset, "pairwise", seed=0, heldout_fraction=0.3, split_seed=7, train_max=4)
    assert again.train == a.train[:4]
    # binary records come in (chosen, rejected) pairs from the same pairs as the pairwise method's
    c = prepare_data(dataset, "binary", seed=0, heldout_fraction=0.3, split_seed=7)
    assert [(r.completion, r.label) for r in c.train[:2]] == [(a.train[0].chosen, True), (a.train[0].rejected, False)]


def test_hh_rlhf_harmless_from_the_mirror(mirror):
    data = prepare_data("hh-rlhf-harmless", "pairwise", heldout_fraction=0.1)
    total = data.stats["rows"] + data.stats["skipped"]
    assert total == 2312 and data.stats["skipped"] < 20
    first = data.train[0]
    assert isinstance(first.prompt, list) and first.prompt[-1]["role"] == "user"
    assert first.chosen != first.rejected and "Assistant:" not in first.chosen
    assert 150 < len(data.heldout_pairs) < 320


def test_alpaca_eval_scored_from_the_mirror(mirror):
    _, records, stats = load_native("alpaca-eval-scored")
    assert stats["rows"] + stats["skipped"] == 46680
    assert len({r.prompt for r in records}) == 805
    assert all(0.0 <= r.score <= 1.0 for r in records)
    data = prepare_data("alpaca-eval-scored", "scalar", train_max=10)
    assert len(data.train) == 10 and data.heldout_pairs
    assert data.train[0].prompt == data.train[1].prompt  # a pair split into two scored examples
