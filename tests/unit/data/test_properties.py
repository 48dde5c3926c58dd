"""Property-based tests (hypothesis) of the data loaders and the losses.

* Loaders: any valid record written to a file in TRL's columns (.jsonl, .jsonl.gz, .json) reads back as
  the same record; anything else — arbitrary JSON rows, broken fields, raw bytes, truncated gzip — is one
  DataError that names the file and the first bad row, never another exception. The registered sources'
  row parsers (HH-RLHF transcripts, AlpacaEval annotations, Alpaca, GSM8K) hold to the same rule.
* Losses: every registered objective, on finite random log-probs of a plausible shape, gives a finite
  loss with finite gradients with respect to the policy's per-token log-probs.

The profile is derandomized (the same examples on every run, so CI is deterministic) and kept small.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.batches import synthetic_batch

from suite.core.errors import DataError
from suite.data.loaders import load_local
from suite.data.records import (
    BinaryRecord,
    ListwiseRecord,
    PairwiseRecord,
    ScalarRecord,
    SFTRecord,
)
from suite.data.registry import (
    alpaca_demonstrations,
    alpaca_scalars,
    gsm8k_demonstrations,
    hh_pairs,
)
from suite.method.registry import all_methods

settings.register_profile("alignsuite", max_examples=25, derandomize=True, deadline=None, database=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("alignsuite")

FORMATS = ("pairwise", "binary", "scalar", "sft", "listwise")
SUFFIXES = (".jsonl", ".jsonl.gz", ".json")

# -- strategies for valid records -------------------------------------------------------------------

# Any text a person could write (hypothesis's text() never draws lone surrogates), with something visible.
text = st.text(min_size=1, max_size=30).filter(lambda s: s.strip())
finite = st.floats(allow_nan=False, allow_infinity=False, width=64)
unit_score = st.floats(min_value=0.0, max_value=1.0)


@st.composite
def prompts(draw):
    """A plain string, or chat messages ending with a user turn."""
    if draw(st.booleans()):
        return draw(text)
    earlier = draw(st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]),
                                                   "content": st.text(max_size=20)}), max_size=3))
    return earlier + [{"role": "user", "content": draw(text)}]


@st.composite
def responses(draw, value=text):
    """(the field as written, the text it reads as): a string, or TRL's list of one assistant message."""
    content = draw(value)
    if draw(st.booleans()):
        return content, content
    message = {"content": content} if draw(st.booleans()) else {"role": "assistant", "content": content}
    return [message], content


@st.composite
def valid_rows(draw, feedback: str):
    """(a JSON row in ``feedback``'s columns, the record it must read as)."""
    prompt = draw(prompts())
    if feedback == "pairwise":
        (chosen, chosen_text), (rejected, rejected_text) = draw(responses()), draw(responses())
        if chosen_text == rejected_text:
            rejected, rejected_text = rejected_text + " (worse)", rejected_text + " (worse)"
        row = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
        scores = draw(st.one_of(st.none(), st.tuples(unit_score, unit_score)))
        if scores:
            row.update(chosen_score=scores[0], rejected_score=scores[1])
        return row, PairwiseRecord(prompt, chosen_text, rejected_text, *(scores or (None, None)))
    if feedback == "listwise":
        texts = draw(st.lists(text, min_size=2, max_size=5, unique=True))
        scores = draw(st.lists(finite, min_size=len(texts), max_size=len(texts)))
        order = sorted(range(len(texts)), key=lambda i: -scores[i])  # best first, ties in file order
        return ({"prompt": prompt, "responses": texts, "scores": scores},
                ListwiseRecord(prompt, tuple(texts[i] for i in order), tuple(float(scores[i]) for i in order)))
    completion, completion_text = draw(responses())
    row = {"prompt": prompt, "completion": completion}
    if feedback == "binary":
        row["label"] = draw(st.booleans())
        return row, BinaryRecord(prompt, completion_text, row["label"])
    if feedback == "scalar":
        row["score"] = draw(unit_score)
        return row, ScalarRecord(prompt, completion_text, row["score"])
    return row, SFTRecord(prompt, completion_text)


def write_rows(folder: Path, suffix: str, rows: list, ascii_only: bool = True) -> Path:
    """Rows as a .jsonl (one per line), .jsonl.gz or .json (a list) file."""
    path = folder / f"data{suffix}"
    if suffix == ".json":
        payload = json.dumps(rows, ensure_ascii=ascii_only, indent=1).encode()
    else:
        payload = "".join(json.dumps(row, ensure_ascii=ascii_only) + "\n" for row in rows).encode()
    path.write_bytes(gzip.compress(payload) if suffix.endswith(".gz") else payload)
    return path


def first_bad_row(folder: Path, feedback: str, rows: list) -> int | None:
    """The 1-based number of the first row that does not load on its own (None: all load)."""
    for number, row in enumerate(rows, start=1):
        try:
            load_local(write_rows(folder, ".jsonl", [row]), feedback)
        except DataError:
            return number
    return None


# -- loaders: valid records round-trip ----------------------------------------------------------------


@pytest.mark.parametrize("feedback", FORMATS)
@given(data=st.data())
def test_valid_records_round_trip_through_every_file_format(feedback, data):
    drawn = data.draw(st.lists(valid_rows(feedback), min_size=1, max_size=6))
    rows, expected = [row for row, _ in drawn], [record for _, record in drawn]
    suffix, ascii_only = data.draw(st.sampled_from(SUFFIXES)), data.draw(st.booleans())
    with tempfile.TemporaryDirectory() as folder:
        assert load_local(write_rows(Path(folder), suffix, rows, ascii_only), feedback) == expected


# -- loaders: invalid input is one DataError naming the file and the first bad row ---------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
# Values no field accepts in the place they are put, by field.
NOT_A_PROMPT = st.one_of(st.integers(), finite, st.booleans(), st.just({}), st.just(""), st.just("  \n"),
                         st.just([]), st.lists(st.integers(), min_size=1, max_size=2),
                         st.just([{"role": "assistant", "content": "an answer, no question"}]),
                         st.just([{"role": "narrator", "content": "x"}]), st.just("\ud800 lone surrogate"))
NOT_A_RESPONSE = st.one_of(st.integers(), finite, st.booleans(), st.just({"text": "x"}), st.just(""), st.just(" "),
                           st.just([{"role": "user", "content": "x"}]), st.just([7]), st.just("\udfff"))
NOT_A_SCORE = st.one_of(st.floats(min_value=1.0, exclude_min=True), st.floats(max_value=0.0, exclude_max=True),
                        st.just(math.nan), st.just(math.inf), st.just(-math.inf), st.booleans(),
                        st.text(max_size=5), st.lists(unit_score, min_size=1, max_size=2))
NOT_A_LABEL = st.one_of(st.integers(), finite, st.text(max_size=5), st.just([True]), st.just({"value": True}))
BAD_VALUES = {
    "prompt": NOT_A_PROMPT, "chosen": NOT_A_RESPONSE, "rejected": NOT_A_RESPONSE, "completion": NOT_A_RESPONSE,
    "score": NOT_A_SCORE, "chosen_score": NOT_A_SCORE, "rejected_score": NOT_A_SCORE, "label": NOT_A_LABEL,
    "responses": st.one_of(st.just([]), st.lists(text, min_size=1, max_size=1), st.text(max_size=5),
                           st.just(["same", "same"]), st.just(["fine", ""])),
    "scores": st.one_of(st.just([math.nan, 1.0]), st.just([math.inf, 0.0]), st.just(["1", 0]), st.just(3)),
}


@pytest.mark.parametrize("feedback", FORMATS)
@given(data=st.data())
def test_a_broken_field_is_an_error_naming_the_row_and_key(feedback, data):
    good = [row for row, _ in data.draw(st.lists(valid_rows(feedback), min_size=1, max_size=4))]
    broken, _ = data.draw(valid_rows(feedback))
    key = data.draw(st.sampled_from(sorted(set(broken) & set(BAD_VALUES))))
    if data.draw(st.booleans()) or key in ("chosen_score", "rejected_score"):
        broken[key] = data.draw(BAD_VALUES[key])
    else:
        del broken[key]
    position = data.draw(st.integers(0, len(good)))
    rows = good[:position] + [broken] + good[position:]
    if feedback == "listwise" and key in ("responses", "scores"):
        expected = rf"row {position + 1}(, key '(responses|scores)(\[\d+\])?')?: "  # a length mismatch names the row
    else:
        expected = rf"row {position + 1}, key '{key}(\[\d+\])?': "
    with tempfile.TemporaryDirectory() as folder:
        path = write_rows(Path(folder), data.draw(st.sampled_from(SUFFIXES)), rows)
        with pytest.raises(DataError) as info:
            load_local(path, feedback)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and re.search(expected, message), message


@pytest.mark.parametrize("feedback", FORMATS)
@given(data=st.data())
def test_a_lone_surrogate_in_any_text_is_an_error_naming_the_row_and_key(feedback, data):
    """JSON can escape a lone surrogate (\\ud800): valid JSON, but no text; it must not reach the tokenizer."""
    row, _ = data.draw(valid_rows(feedback))
    row = json.loads(json.dumps(row))  # a plain copy to edit
    fields = [key for key in ("prompt", "chosen", "rejected", "completion") if isinstance(row.get(key), str)]
    key = data.draw(st.sampled_from(fields)) if fields else None
    surrogate = chr(data.draw(st.integers(0xD800, 0xDFFF)))
    if key is None:  # chat-form fields only: spoil the last user message, or a listwise response
        key = "prompt" if feedback != "listwise" or data.draw(st.booleans()) else "responses[0]"
        if key == "prompt":
            row["prompt"][-1]["content"] += surrogate
        else:
            row["responses"][0] += surrogate
    else:
        cut = data.draw(st.integers(0, len(row[key])))
        row[key] = row[key][:cut] + surrogate + row[key][cut:]
    with tempfile.TemporaryDirectory() as folder:
        path = write_rows(Path(folder), data.draw(st.sampled_from(SUFFIXES)), [row])
        with pytest.raises(DataError, match=rf"row 1, key '{re.escape(key)}': not valid Unicode"):
            load_local(path, feedback)


@pytest.mark.parametrize("feedback", FORMATS)
@given(data=st.data())
def test_arbitrary_json_rows_load_or_name_the_first_bad_row(feedback, data):
    """Whatever JSON the rows hold, the loader returns records or one DataError for the first bad row."""
    rows = data.draw(st.lists(st.one_of(json_values, valid_rows(feedback).map(lambda pair: pair[0])),
                              min_size=1, max_size=5))
    with tempfile.TemporaryDirectory() as folder:
        path = write_rows(Path(folder), ".jsonl", rows)
        try:
            records = load_local(path, feedback)
        except DataError as exc:
            bad = first_bad_row(Path(folder), feedback, rows)
            assert bad is not None and str(exc).startswith(f"{path}: row {bad}"), (str(exc), bad)
        else:
            assert len(records) == len(rows) and first_bad_row(Path(folder), feedback, rows) is None


@given(good=st.lists(valid_rows("sft"), min_size=1, max_size=3), junk=st.binary(min_size=1, max_size=40))
def test_raw_bytes_in_a_jsonl_file_are_a_data_error_naming_the_row(good, junk):
    lines = [json.dumps(row).encode() for row, _ in good] + [junk.replace(b"\n", b" ")]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        try:
            records = load_local(path, "sft")
        except DataError as exc:
            assert re.match(rf"{re.escape(str(path))}: (row {len(lines)}|empty file)", str(exc)), str(exc)
        else:  # the bytes happened to be a valid row (or blank, which is no row)
            assert len(records) in (len(good), len(good) + 1)


@given(rows=st.lists(valid_rows("sft"), min_size=1, max_size=20), cut=st.floats(0.0, 0.95))
def test_a_truncated_gzip_file_is_a_data_error_naming_the_file(rows, cut):
    payload = gzip.compress("".join(json.dumps(row) + "\n" for row, _ in rows).encode())
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.jsonl.gz"
        path.write_bytes(payload[: int(len(payload) * cut)])
        with pytest.raises(DataError, match=re.escape(str(path))):
            load_local(path, "sft")


@given(rows=st.lists(valid_rows("sft"), min_size=1, max_size=20), flips=st.lists(st.tuples(st.floats(0.0, 1.0),
                                                                                        st.integers(1, 255)),
                                                                              min_size=1, max_size=4))
def test_a_corrupt_gzip_file_loads_or_is_a_data_error(rows, flips):
    """Flipped bits in a .gz either still decode (then the rows are validated as usual) or are a DataError."""
    payload = bytearray(gzip.compress("".join(json.dumps(row) + "\n" for row, _ in rows).encode(), mtime=0))
    for where, mask in flips:
        payload[min(int(where * len(payload)), len(payload) - 1)] ^= mask
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.jsonl.gz"
        path.write_bytes(bytes(payload))
        try:
            load_local(path, "sft")
        except DataError as exc:
            assert str(exc).startswith(f"{path}: "), str(exc)


# -- the registered sources' row parsers --------------------------------------------------------------

cues = st.sampled_from(["\n\nHuman:", "\n\nAssistant:", " ", "\n"])
transcript_parts = st.lists(st.one_of(cues, st.text(max_size=8)), max_size=8).map("".join)
SOURCE_PARSERS = {
    "hh-rlhf": (hh_pairs, st.fixed_dictionaries({"chosen": transcript_parts, "rejected": transcript_parts})),
    "alpaca-eval": (alpaca_scalars, st.fixed_dictionaries(
        {"instruction": text, "output_2": st.text(max_size=10),
         "preference": st.one_of(st.floats(1.0, 2.0), st.none(), st.just(math.nan))})),
    "alpaca": (alpaca_demonstrations, st.fixed_dictionaries(
        {"instruction": text, "input": st.text(max_size=10), "output": st.text(max_size=10)})),
    "gsm8k": (gsm8k_demonstrations, st.fixed_dictionaries({"question": text, "answer": text})),
}


@pytest.mark.parametrize("source", SOURCE_PARSERS)
@given(data=st.data())
def test_registered_source_rows_give_records_or_a_data_error(source, data):
    parse, good_row = SOURCE_PARSERS[source]
    rows = data.draw(st.lists(st.one_of(good_row, json_values), min_size=1, max_size=6))
    try:
        loaded = parse(list(enumerate(rows, start=1)), "mirror-file")
    except DataError as exc:
        assert re.match(r"mirror-file: row [1-9]", str(exc)), str(exc)
        return
    assert len(loaded.records) + loaded.skipped == len(rows)
    for record in loaded.records:
        if isinstance(record, PairwiseRecord):  # HH: a real preference after a user turn
            assert record.chosen and record.rejected and record.chosen != record.rejected
            assert record.prompt[-1]["role"] == "user"
        if isinstance(record, ScalarRecord):
            assert 0.0 <= record.score <= 1.0


# -- losses: finite inputs give a finite loss and finite gradients ---------------------------------------

OBJECTIVES = [method for method in all_methods() if method.objective is not None]


@pytest.mark.parametrize("method", OBJECTIVES, ids=lambda method: method.id)
@settings(max_examples=15)
@given(
    seed=st.integers(0, 2**31 - 1),
    examples=st.sampled_from([2, 4, 6]),
    tokens=st.integers(3, 16),
    logp_scale=st.floats(1e-3, 20.0),  # per-token log-probs in (-logp_scale, 0]: from near-certain to very unlikely
    reference_noise=st.floats(0.0, 5.0),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_finite_inputs_give_a_finite_loss_and_gradients(method, seed, examples, tokens, logp_scale,
                                                        reference_noise, dtype):
    batch, token_logps = synthetic_batch(method, examples, tokens, seed, logp_scale, reference_noise, dtype)
    loss, metrics = method.objective(batch, method.hyperparameters())
    assert loss.dim() == 0 and torch.isfinite(loss), f"{method.id}: loss {loss.item()}"
    loss.backward()
    assert token_logps.grad is not None and torch.isfinite(token_logps.grad).all(), f"{method.id}: gradient"
    for name, value in metrics.items():
        assert torch.isfinite(torch.as_tensor(value)).all(), f"{method.id}: metric {name} = {value}"
