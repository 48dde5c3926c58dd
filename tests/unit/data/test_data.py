"""The data layer: HH-RLHF transcript splitting, conversions, validation errors, local files,
the held-out split, prepare_data's identical-conditions guarantees, and the two mirrored datasets."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
from pathlib import Path

import pytest

from suite.core.errors import ConfigError, DataError, SuiteError
from suite.data import (
    DATASETS,
    describe_datasets,
    get_dataset,
    heldout_split,
    is_heldout,
    load_native,
    prepare_data,
)
from suite.data.alpaca_eval_models import ALPACA_EVAL_MODELS
from suite.data.convert import convert, scalar_to_pairwise
from suite.data.loaders import (
    load_local,
    mirror_root,
    split_hh_transcript,
    transcript_messages,
)
from suite.data.records import (
    BinaryRecord,
    PairwiseRecord,
    ScalarRecord,
    SFTRecord,
    prompt_key,
)
from suite.data.registry import alpaca_scalars, download_alpaca_annotations, hh_pairs


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def mirror_data() -> Path:
    root = os.environ.get("ALIGNSUITE_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("ALIGNSUITE_DATA does not point at the dataset mirror (the CI sets it)")
    return Path(root)


# -- HH-RLHF transcripts -----------------------------------------------------------------------------


def test_hh_multi_turn_transcript_splits_into_chat_prompt_and_two_responses():
    shared = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: How do I bake bread?\n\nAssistant:"
    prompt, chosen, rejected = split_hh_transcript(shared + " Mix flour and water.", shared + " I won't help.")
    assert prompt == [
        {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "How do I bake bread?"},
    ]
    assert (chosen, rejected) == ("Mix flour and water.", "I won't help.")


def test_hh_split_is_at_the_last_shared_assistant_cue_even_when_responses_share_a_prefix():
    shared = "\n\nHuman: Name a color\n\nAssistant:"
    prompt, chosen, rejected = split_hh_transcript(shared + " Blue is nice", shared + " Blue.")
    assert prompt == [{"role": "user", "content": "Name a color"}]
    assert (chosen, rejected) == ("Blue is nice", "Blue.")
    # the responses diverge inside a later turn: the prompt ends at the last cue both still share
    a = shared + " Red.\n\nHuman: Why?\n\nAssistant: Because."
    b = shared + " Red.\n\nHuman: Why?\n\nAssistant: No idea."
    prompt, chosen, rejected = split_hh_transcript(a, b)
    assert [m["role"] for m in prompt] == ["user", "assistant", "user"] and prompt[-1]["content"] == "Why?"
    assert (chosen, rejected) == ("Because.", "No idea.")
    assert split_hh_transcript("no cue at all", "nothing either") is None


def test_hh_consecutive_turns_of_one_role_are_merged():
    transcript = "\n\nHuman: Joke?\n\nAssistant: Here:\n\nAssistant: a pun.\n\nHuman: More\n\nAssistant:"
    messages = transcript_messages(transcript)
    assert messages == [
        {"role": "user", "content": "Joke?"},
        {"role": "assistant", "content": "Here:\n\na pun."},
        {"role": "user", "content": "More"},
    ]


def test_hh_rows_with_empty_or_identical_responses_are_skipped_and_counted():
    cue = "\n\nHuman: Hi\n\nAssistant:"
    rows = [(1, {"chosen": cue + " Hello.", "rejected": cue + " Go away."}),
            (2, {"chosen": cue, "rejected": cue + " Hello."}),  # empty chosen response
            (3, {"chosen": cue + " Same", "rejected": cue + " Same "}),  # identical after stripping
            (4, {"chosen": "no cue", "rejected": "none"})]
    loaded = hh_pairs(rows, "rows.jsonl")
    assert loaded.records == (PairwiseRecord([{"role": "user", "content": "Hi"}], "Hello.", "Go away."),)
    assert loaded.skipped == 3
    with pytest.raises(DataError, match=r"rows.jsonl: row 7: expected an object with string 'chosen'"):
        hh_pairs([(7, {"chosen": "x"})], "rows.jsonl")


def test_alpaca_rows_become_scores_in_0_1_and_unusable_rows_are_skipped():
    rows = [(1, {"instruction": "Say hi", "output_2": "Hi!", "preference": 1.75}),
            (2, {"instruction": "Say hi", "output_2": "", "preference": 1.2}),
            (3, {"instruction": "Say hi", "output_2": "Hey", "preference": float("nan")}),
            (4, {"instruction": "Say hi", "output_2": "Yo", "preference": None}),
            (5, {"instruction": "Say hi", "output_2": "Hello", "preference": 2})]
    loaded = alpaca_scalars(rows, "a.jsonl")
    assert loaded.records == (ScalarRecord("Say hi", "Hi!", 0.75), ScalarRecord("Say hi", "Hello", 1.0))
    assert loaded.skipped == 3
    with pytest.raises(DataError, match=r"a.jsonl: row 9, key 'preference': 2.5 is outside \[1, 2\]"):
        alpaca_scalars([(9, {"instruction": "q", "output_2": "a", "preference": 2.5})], "a.jsonl")


def test_alpaca_upstream_download_path_reads_and_flattens_annotation_files(tmp_path):
    for model, outputs in (("m1", ["one", "two"]), ("m2", ["three"])):
        folder = tmp_path / "results" / model / "weighted_alpaca_eval_gpt4_turbo"
        folder.mkdir(parents=True)
        (folder / "annotations.json").write_text(json.dumps(
            [{"instruction": "q", "output_2": out, "generator_2": model, "preference": 1.5} for out in outputs]))
    rows = download_alpaca_annotations(tmp_path.as_uri(), ["m1", "m2"])
    assert [(n, r["output_2"]) for n, r in rows] == [(1, "one"), (2, "two"), (3, "three")]
    with pytest.raises(SuiteError, match=r"cannot download .*results/m3/.*set ALIGNSUITE_DATA"):
        download_alpaca_annotations(tmp_path.as_uri(), ["m1", "m3"])
    assert len(ALPACA_EVAL_MODELS) == 58 == len(set(ALPACA_EVAL_MODELS))


# -- conversions -------------------------------------------------------------------------------------

SCALARS = [
    ScalarRecord("p1", "a", 0.9), ScalarRecord("p1", "b", 0.2), ScalarRecord("p1", "c", 0.5),
    ScalarRecord("p1", "d", 0.5), ScalarRecord("p1", "e", 0.1),
    ScalarRecord("p2", "x", 0.4), ScalarRecord("p2", "y", 0.4),
    ScalarRecord("p3", "same", 0.3), ScalarRecord("p3", "same", 0.8),
]


def test_scalar_to_pairwise_exact_output_for_seed_0():
    # pinned: a change to the pairing changes every scalar-sourced benchmark's data
    assert scalar_to_pairwise(SCALARS, seed=0) == [
        PairwiseRecord("p1", "c", "d", 0.5, 0.5),
        PairwiseRecord("p1", "a", "e", 0.9, 0.1),  # five responses: two pairs, one dropped
        PairwiseRecord("p2", "y", "x", 0.4, 0.4),
    ]  # p3's two responses are the same text: skipped


def test_scalar_to_pairwise_higher_score_chosen_and_tie_makes_the_second_chosen():
    chosen_on_tie = set()
    for seed in range(12):
        pairs = scalar_to_pairwise(SCALARS, seed)
        assert pairs == scalar_to_pairwise(SCALARS, seed)  # seeded: deterministic
        assert all(p.chosen_score >= p.rejected_score for p in pairs)
        assert len([p for p in pairs if p.prompt == "p1"]) == 2 and not [p for p in pairs if p.prompt == "p3"]
        (tie,) = [p for p in pairs if p.prompt == "p2"]
        order = ["x", "y"]  # the documented per-prompt shuffle: Random(f"{seed}:{prompt_key}")
        random.Random(f"{seed}:p2").shuffle(order)
        assert (tie.rejected, tie.chosen) == tuple(order)  # tie → the second of the pair is chosen
        chosen_on_tie.add(tie.chosen)
    assert chosen_on_tie == {"x", "y"}  # the shuffle, not the input order, decides


def test_a_prompts_pairs_do_not_depend_on_the_other_prompts():
    alone = [r for r in SCALARS if r.prompt == "p1"]
    assert scalar_to_pairwise(alone, 5) == [p for p in scalar_to_pairwise(SCALARS, 5) if p.prompt == "p1"]


def test_conversions_from_pairs_exact():
    pairs = [PairwiseRecord("p", "good", "bad", 0.8, 0.3), PairwiseRecord("q", "yes", "no", 0.6, 0.6)]
    assert convert(pairs, "pairwise") == pairs
    assert convert(pairs, "binary") == [BinaryRecord("p", "good", True), BinaryRecord("p", "bad", False),
                                        BinaryRecord("q", "yes", True), BinaryRecord("q", "no", False)]
    assert convert(pairs, "scalar") == [ScalarRecord("p", "good", 0.8), ScalarRecord("p", "bad", 0.3),
                                        ScalarRecord("q", "yes", 0.6), ScalarRecord("q", "no", 0.6)]
    assert convert(pairs, "sft") == [SFTRecord("p", "good"), SFTRecord("q", "yes")]


def test_conversions_from_scalar_go_through_the_same_pairs():
    pairs = scalar_to_pairwise(SCALARS, seed=3)
    assert convert(SCALARS, "pairwise", seed=3) == pairs
    assert convert(SCALARS, "binary", seed=3) == [
        BinaryRecord(p.prompt, text, label) for p in pairs for text, label in ((p.chosen, True), (p.rejected, False))]
    assert convert(SCALARS, "sft", seed=3) == [SFTRecord(p.prompt, p.chosen) for p in pairs]
    assert convert(SCALARS, "scalar", seed=3) == SCALARS


def test_binary_to_sft_keeps_the_desirable_ones():
    binary = [BinaryRecord("p", "a", True), BinaryRecord("p", "b", False), BinaryRecord("q", "c", True)]
    assert convert(binary, "sft") == [SFTRecord("p", "a"), SFTRecord("q", "c")]


@pytest.mark.parametrize("records, target", [
    ([BinaryRecord("p", "a", True)], "pairwise"),
    ([BinaryRecord("p", "a", True)], "scalar"),
    ([SFTRecord("p", "a")], "pairwise"),
    ([SFTRecord("p", "a")], "binary"),
    ([SFTRecord("p", "a")], "scalar"),
])
def test_impossible_conversions_say_which_feedback_from_which_data(records, target):
    source = "binary" if isinstance(records[0], BinaryRecord) else "sft"
    with pytest.raises(ConfigError, match=f"needs {target} feedback cannot be trained on a {source} dataset"):
        convert(records, target)


def test_conversion_input_errors():
    with pytest.raises(DataError, match="scalar feedback needs scores, but this dataset has none: pair 2"):
        convert([PairwiseRecord("p", "a", "b", 0.9, 0.1), PairwiseRecord("p", "c", "d")], "scalar")
    with pytest.raises(ConfigError, match="unknown feedback type 'ranking'"):
        convert([SFTRecord("p", "a")], "ranking")
    with pytest.raises(DataError, match="one feedback type"):
        convert([SFTRecord("p", "a"), BinaryRecord("p", "a", True)], "sft")
    with pytest.raises(DataError, match="no records"):
        convert([], "sft")


# -- local files ------------------------------------------------------------------------------------

CHAT_PROMPT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hey"}]


def test_local_pairwise_jsonl_and_json_plain_and_chat_forms(tmp_path):
    rows = [
        {"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away.", "chosen_score": 0.75, "rejected_score": 0},
        {"prompt": CHAT_PROMPT, "chosen": [{"role": "assistant", "content": "Hi!"}],
         "rejected": [{"role": "assistant", "content": "No."}]},
    ]
    expected = [PairwiseRecord("Hi", "Hello!", "Go away.", 0.75, 0.0), PairwiseRecord(CHAT_PROMPT, "Hi!", "No.")]
    as_json = tmp_path / "p.json"
    as_json.write_text(json.dumps(rows, indent=2))
    assert load_local(write_jsonl(tmp_path / "p.jsonl", rows), "pairwise") == expected
    assert load_local(as_json, "pairwise") == expected


def test_local_binary_scalar_sft_files_including_gzip(tmp_path):
    gz = tmp_path / "b.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as out:
        out.write(json.dumps({"prompt": "q", "completion": "a", "label": False}) + "\n\n")
        out.write(json.dumps({"prompt": CHAT_PROMPT, "completion": [{"role": "assistant", "content": "b"}],
                              "label": True}) + "\n")
    assert load_local(gz, "binary") == [BinaryRecord("q", "a", False), BinaryRecord(CHAT_PROMPT, "b", True)]
    scalar = write_jsonl(tmp_path / "s.jsonl", [{"prompt": "q", "completion": "a", "score": 1},
                                                {"prompt": "q", "completion": "b", "score": 0.25}])
    assert load_local(scalar, "scalar") == [ScalarRecord("q", "a", 1.0), ScalarRecord("q", "b", 0.25)]
    sft = tmp_path / "t.json"
    sft.write_text(json.dumps([{"prompt": "q", "completion": "a", "extra": "ignored"}]))
    assert load_local(sft, "sft") == [SFTRecord("q", "a")]


GOOD = {"pairwise": {"prompt": "q", "chosen": "b", "rejected": "a"},
        "scalar": {"prompt": "q", "completion": "a", "score": 0.5},
        "binary": {"prompt": "q", "completion": "a", "label": True},
        "sft": {"prompt": "q", "completion": "a"}}

BAD_ROWS = [
    ("sft", ["not", "an", "object"], "row 2: expected a JSON object, got list"),
    ("pairwise", {"prompt": "q", "chosen": "a"}, "row 2, key 'rejected': missing field"),
    ("sft", {"completion": "a"}, "row 2, key 'prompt': missing field"),
    ("binary", {"prompt": "q", "completion": "a"}, "row 2, key 'label': missing field"),
    ("pairwise", {"prompt": "q", "chosen": "a", "rejected": "a"}, "row 2: chosen and rejected are identical"),
    ("pairwise", {"prompt": "q", "chosen": "  ", "rejected": "a"}, "row 2, key 'chosen': empty response"),
    ("sft", {"prompt": "q", "completion": ""}, "row 2, key 'completion': empty response"),
    ("pairwise", {"prompt": " ", "chosen": "b", "rejected": "a"}, "row 2, key 'prompt': empty prompt"),
    ("sft", {"prompt": [], "completion": "a"}, "row 2, key 'prompt': empty prompt"),
    ("pairwise", {"prompt": 5, "chosen": "b", "rejected": "a"}, "row 2, key 'prompt': expected a string"),
    ("pairwise", {"prompt": "q", "chosen": 3, "rejected": "a"}, "row 2, key 'chosen': expected a string"),
    ("sft", {"prompt": [{"role": "user"}], "completion": "a"}, "row 2, key 'prompt': message 1 needs a string"),
    ("sft", {"prompt": [{"role": "robot", "content": "hi"}], "completion": "a"}, "unknown role 'robot'"),
    ("sft", {"prompt": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
             "completion": "a"}, "row 2, key 'prompt': the last message must be the user turn"),
    ("sft", {"prompt": "q", "completion": [{"role": "user", "content": "a"}]},
     "row 2, key 'completion': message 1 has role 'user'"),
    ("scalar", {"prompt": "q", "completion": "a", "score": float("nan")}, "row 2, key 'score': score is nan"),
    ("scalar", {"prompt": "q", "completion": "a", "score": float("inf")}, "row 2, key 'score': score is inf"),
    ("scalar", {"prompt": "q", "completion": "a", "score": 1.5}, "row 2, key 'score': score 1.5 is outside [0, 1]"),
    ("scalar", {"prompt": "q", "completion": "a", "score": -0.1}, "row 2, key 'score': score -0.1 is outside"),
    ("scalar", {"prompt": "q", "completion": "a", "score": "high"}, "row 2, key 'score': expected a number"),
    ("scalar", {"prompt": "q", "completion": "a", "score": True}, "row 2, key 'score': expected a number"),
    ("pairwise", {"prompt": "q", "chosen": "b", "rejected": "a", "chosen_score": 2},
     "row 2, key 'chosen_score': score 2 is outside [0, 1]"),
    ("binary", {"prompt": "q", "completion": "a", "label": "yes"}, "row 2, key 'label': expected true or false"),
    ("binary", {"prompt": "q", "completion": "a", "label": 1}, "row 2, key 'label': expected true or false"),
]


@pytest.mark.parametrize("feedback, bad, message", BAD_ROWS)
def test_row_errors_name_the_file_row_and_key(tmp_path, feedback, bad, message):
    for name in ("data.jsonl", "data.json"):
        path = tmp_path / name
        rows = [GOOD[feedback], bad]
        path.write_text(json.dumps(rows) if name.endswith(".json") else "".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(DataError) as info:
            load_local(path, feedback)
        assert str(info.value).startswith(f"{path}: ") and message in str(info.value)


def test_file_errors_name_the_file(tmp_path):
    def fails(path, feedback, pattern):
        with pytest.raises(DataError, match=pattern) as info:
            load_local(path, feedback)
        assert str(path) in str(info.value)

    fails(tmp_path / "missing.jsonl", "sft", "file not found")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "q", "completion": "a"}\n\n{"prompt": "q", "comp\n')
    fails(broken, "sft", "row 3: invalid JSON at line 3")
    broken_list = tmp_path / "broken.json"
    broken_list.write_text('[\n {"prompt": "q", "completion": "a"},\n {"prompt" "q"}\n]')
    fails(broken_list, "sft", "invalid JSON at line 3")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    fails(empty, "sft", "empty file")
    empty_list = tmp_path / "empty.json"
    empty_list.write_text("[]")
    fails(empty_list, "sft", "empty file")
    not_list = tmp_path / "obj.json"
    not_list.write_text('{"prompt": "q", "completion": "a"}')
    fails(not_list, "sft", "must be a list of objects, got a dict")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"prompt": "caf\xe9", "completion": "a"}\n')
    fails(latin, "sft", "not valid UTF-8")
    not_gzip = tmp_path / "plain.jsonl.gz"
    not_gzip.write_text('{"prompt": "q", "completion": "a"}\n')
    fails(not_gzip, "sft", "cannot read")
    csv = tmp_path / "data.csv"
    csv.write_text("prompt,completion\n")
    fails(csv, "sft", "unsupported file type")
    fails(write_jsonl(tmp_path / "ok.jsonl", [GOOD["sft"]]), "ranking", "unknown format 'ranking'")


# -- mirror location and registry -------------------------------------------------------------------


def test_mirror_root_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("ALIGNSUITE_DATA", raising=False)
    assert mirror_root() is None
    monkeypatch.setenv("ALIGNSUITE_DATA", str(tmp_path))
    assert mirror_root() == tmp_path
    monkeypatch.setenv("ALIGNSUITE_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(SuiteError, match="ALIGNSUITE_DATA=.*nowhere: not a directory"):
        mirror_root()
    with pytest.raises(SuiteError, match="not a directory"):
        load_native("hh-rlhf-harmless")


def test_a_mirror_without_the_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIGNSUITE_DATA", str(tmp_path))
    with pytest.raises(DataError, match="train/hh-rlhf/harmless-base/test.jsonl.gz: not in the mirror"):
        load_native("hh-rlhf-harmless")


def test_registry_ids_specs_and_unknown_ids():
    assert {"hh-rlhf-harmless", "alpaca-eval-scored"} <= set(DATASETS)
    hh = get_dataset("hh-rlhf-harmless")
    assert (hh.hub_id, hh.hub_config, hh.hub_split, hh.feedback) == ("Anthropic/hh-rlhf", "harmless-base", "test",
                                                                     "pairwise")
    assert get_dataset("alpaca-eval-scored").feedback == "scalar"
    with pytest.raises(ConfigError, match="unknown dataset 'nope'; registered: alpaca-5k, alpaca-eval-scored, "
                                          "gsm8k-train, hh-rlhf-harmless"):
        get_dataset("nope")
    rows = describe_datasets()
    assert [r["id"] for r in rows] == list(DATASETS)
    for row in rows:
        assert {"id", "hub_id", "feedback", "source", "license", "rows", "description"} <= set(row)
        json.dumps(row)  # the CLI prints it as JSON


def test_sft_sets_parse_alpaca_and_gsm8k_rows():
    from suite.data.registry import alpaca_demonstrations, gsm8k_demonstrations

    loaded = alpaca_demonstrations([(1, {"instruction": "Add", "input": "2 and 3", "output": "5"}),
                                    (2, {"instruction": "Greet", "input": "", "output": "Hello"}),
                                    (3, {"instruction": "Empty", "input": "", "output": " "})], "a.json")
    assert [(r.prompt, r.completion) for r in loaded.records] == [("Add\n\n2 and 3", "5"), ("Greet", "Hello")]
    assert loaded.skipped == 1  # an empty output is skipped and counted, as upstream has a few
    with pytest.raises(DataError, match="a.json: row 1, key 'instruction': missing or empty"):
        alpaca_demonstrations([(1, {"input": "", "output": "x"})], "a.json")
    (record,) = gsm8k_demonstrations([(1, {"question": "1+1?", "answer": "1+1=2\n#### 2"})], "g.jsonl").records
    assert record.completion.endswith("#### 2")


def test_sft_sets_from_the_mirror(mirror):
    from suite.data import prepare_data

    alpaca = prepare_data("alpaca-5k", "sft", train_max=2)
    assert alpaca.stats["rows"] + alpaca.stats["skipped"] == 5000 and alpaca.heldout_pairs == []
    gsm8k = prepare_data("gsm8k-train", "sft", train_max=2)
    assert gsm8k.stats["train_native"] + gsm8k.stats["heldout_native"] == 7473
    assert "####" in gsm8k.train[0].completion


# -- held-out split and prepare_data ---------------------------------------------------------------


def scalar_rows(prompts: int = 40, per_prompt: int = 4):
    """Four scored answers per prompt, scores spread over [0, 1] with some ties."""
    return [{"prompt": f"Question {p}?", "completion": f"Answer {r} to {p}",
             "score": round((p * 7 + r * 3) % 10 / 10, 1)}
            for p in range(prompts) for r in range(per_prompt)]


@pytest.fixture
def scalar_file(tmp_path) -> dict:
    return {"path": str(write_jsonl(tmp_path / "scores.jsonl", scalar_rows())), "format": "scalar"}


def test_heldout_coin_is_a_stable_sha256_of_seed_and_prompt():
    digest = hashlib.sha256(b"1234:Question 3?").digest()
    value = int.from_bytes(digest[:8], "big") / 2**64
    assert is_heldout("Question 3?", value + 1e-9, 1234) and not is_heldout("Question 3?", value, 1234)
    chat = [{"role": "user", "content": "Question 3?"}]
    assert is_heldout(chat, 0.5, 7) == is_heldout([dict(m) for m in chat], 0.5, 7)  # by content, not identity


def test_heldout_split_is_by_prompt_and_disjoint(scalar_file):
    records = load_local(scalar_file["path"], "scalar")
    train, heldout = heldout_split(records, 0.25, split_seed=7)
    assert len(train) + len(heldout) == len(records)
    train_prompts, heldout_prompts = {r.prompt for r in train}, {r.prompt for r in heldout}
    assert train_prompts.isdisjoint(heldout_prompts) and 3 <= len(heldout_prompts) <= 18
    assert all(len([r for r in heldout if r.prompt == p]) == 4 for p in heldout_prompts)  # whole prompts
    other_train, _ = heldout_split(records, 0.25, split_seed=8)
    assert {r.prompt for r in other_train} != train_prompts  # the split seed moves prompts


def test_every_feedback_type_from_one_scalar_source_shares_prompts_and_pairs(scalar_file):
    kwargs = dict(seed=3, heldout_fraction=0.25, split_seed=7)
    pairwise = prepare_data(scalar_file, "pairwise", **kwargs)
    binary = prepare_data(scalar_file, "binary", **kwargs)
    scalar = prepare_data(scalar_file, "scalar", **kwargs)
    sft = prepare_data(scalar_file, "sft", **kwargs)
    heldout_prompts = {p.prompt for p in pairwise.heldout_pairs}
    assert heldout_prompts and heldout_prompts.isdisjoint({p.prompt for p in pairwise.train})
    for data in (binary, scalar, sft):
        assert data.heldout_pairs == pairwise.heldout_pairs
    assert len(pairwise.train) == 40 * 4 // 2 - pairwise.stats["heldout_native"] // 2
    for i, pair in enumerate(pairwise.train):  # pair i ↔ records 2i, 2i+1 ↔ sft record i
        assert binary.train[2 * i: 2 * i + 2] == [BinaryRecord(pair.prompt, pair.chosen, True),
                                                  BinaryRecord(pair.prompt, pair.rejected, False)]
        assert scalar.train[2 * i: 2 * i + 2] == [ScalarRecord(pair.prompt, pair.chosen, pair.chosen_score),
                                                  ScalarRecord(pair.prompt, pair.rejected, pair.rejected_score)]
        assert sft.train[i] == SFTRecord(pair.prompt, pair.chosen)
    capped = prepare_data(scalar_file, "binary", train_max=6, **kwargs)
    assert capped.train == binary.train[:6] and capped.stats["train_records"] == 6


def test_the_run_seed_orders_training_data_but_never_moves_the_heldout_split(scalar_file):
    a = prepare_data(scalar_file, "pairwise", seed=0, heldout_fraction=0.25, split_seed=7)
    b = prepare_data(scalar_file, "pairwise", seed=1, heldout_fraction=0.25, split_seed=7)
    assert a.heldout_pairs == b.heldout_pairs
    assert a.train != b.train and sorted(map(repr, a.train)) == sorted(map(repr, b.train))  # same pairs, new order
    assert prepare_data(scalar_file, "pairwise", seed=0, heldout_fraction=0.25, split_seed=7).train == a.train
    limited = prepare_data(scalar_file, "pairwise", seed=0, heldout_fraction=0.25, split_seed=7,
                           train_max=5, heldout_max=3)
    assert limited.train == a.train[:5] and limited.heldout_pairs == a.heldout_pairs[:3]
    assert limited.stats["train_converted"] == len(a.train) and limited.stats["heldout_pairs"] == 3
    assert a.dataset_id == scalar_file["path"] and a.feedback == "pairwise"
    assert a.stats["rows"] == 160 and a.stats["skipped"] == 0
    assert a.stats["train_native"] + a.stats["heldout_native"] == 160


def test_binary_source_gives_binary_and_sft_but_no_pairs(tmp_path):
    rows = [{"prompt": f"q{i}", "completion": f"a{i}", "label": i % 3 != 0} for i in range(30)]
    dataset = {"path": str(write_jsonl(tmp_path / "kto.jsonl", rows)), "format": "binary"}
    binary = prepare_data(dataset, "binary", heldout_fraction=0.2)
    assert binary.heldout_pairs == [] and len(binary.train) == 30 - binary.stats["heldout_native"]
    sft = prepare_data(dataset, "sft", heldout_fraction=0.2)
    assert {r.prompt for r in sft.train} == {r.prompt for r in binary.train if r.label}
    with pytest.raises(ConfigError, match=f"dataset {dataset['path']}: a method that needs pairwise feedback"):
        prepare_data(dataset, "pairwise")


def test_prepare_data_argument_errors(tmp_path):
    pairs = {"path": str(write_jsonl(tmp_path / "p.jsonl", [GOOD["pairwise"]])), "format": "pairwise"}
    with pytest.raises(DataError, match="p.jsonl: scalar feedback needs scores"):
        prepare_data(pairs, "scalar", heldout_fraction=0)
    with pytest.raises(ConfigError, match="unknown feedback type 'ranking'"):
        prepare_data(pairs, "ranking")
    with pytest.raises(ConfigError, match="heldout_fraction: expected a number in"):
        prepare_data(pairs, "pairwise", heldout_fraction=1.0)
    with pytest.raises(ConfigError, match="train_max: expected a positive integer"):
        prepare_data(pairs, "pairwise", train_max=0)
    with pytest.raises(ConfigError, match="dataset.split: unknown key"):
        prepare_data({**pairs, "split": "train"}, "pairwise")
    with pytest.raises(ConfigError, match="unknown dataset 'nope'"):
        prepare_data("nope", "pairwise")
    with pytest.raises(DataError, match="unknown format 'ranking'"):
        prepare_data({**pairs, "format": "ranking"}, "pairwise")


# -- the mirrored datasets --------------------------------------------------------------------------


def test_hh_rlhf_harmless_from_the_mirror(mirror_data):
    _, records, stats = load_native("hh-rlhf-harmless")
    assert stats["rows"] + stats["skipped"] == 2312 and 0 < stats["skipped"] <= 10
    assert stats["origin"].endswith("train/hh-rlhf/harmless-base/test.jsonl.gz")
    for record in records:
        roles = [m["role"] for m in record.prompt]
        assert roles[0] == roles[-1] == "user" and all(a != b for a, b in zip(roles, roles[1:]))
        assert record.chosen and record.rejected and record.chosen != record.rejected
        assert record.chosen == record.chosen.strip() and record.rejected == record.rejected.strip()
    # a handful of real responses contain hallucinated "\n\nAssistant:" turns of their own; they stay
    assert sum("\n\nAssistant:" in r.chosen or "\n\nAssistant:" in r.rejected for r in records) <= 10
    with gzip.open(mirror_data / "train/hh-rlhf/harmless-base/test.jsonl.gz", "rt") as handle:
        first_row = json.loads(handle.readline())
    assert first_row["chosen"].startswith("\n\nHuman: " + records[0].prompt[0]["content"])
    assert first_row["chosen"].rstrip().endswith(records[0].chosen)
    data = prepare_data("hh-rlhf-harmless", "binary", train_max=8)
    assert len(data.train) == 8 and 150 < len(data.heldout_pairs) < 320
    assert [r.label for r in data.train] == [True, False] * 4


def test_alpaca_eval_scored_from_the_mirror(mirror_data):
    _, records, stats = load_native("alpaca-eval-scored")
    assert stats["rows"] + stats["skipped"] == 46680 and stats["skipped"] < 100
    assert len({prompt_key(r.prompt) for r in records}) == 805
    assert all(isinstance(r.prompt, str) and 0.0 <= r.score <= 1.0 for r in records)
    with gzip.open(mirror_data / "train/alpaca_eval_annotations/weighted_alpaca_eval_gpt4_turbo.jsonl.gz", "rt") as f:
        first_row = json.loads(f.readline())
    assert records[0] == ScalarRecord(first_row["instruction"], first_row["output_2"], first_row["preference"] - 1)
    data = prepare_data("alpaca-eval-scored", "scalar", train_max=10, heldout_max=50)
    assert len(data.train) == 10 and len(data.heldout_pairs) == 50
    assert data.train[0].prompt == data.train[1].prompt and data.train[0].score >= data.train[1].score
    assert 60 <= data.stats["heldout_prompts"] <= 110  # ~10% of 805 prompts
