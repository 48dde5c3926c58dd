"""Reading records: local JSON / JSONL files in TRL's column conventions, and the shared file readers
and transcript parsing the registered sources use.

Every malformed input raises one DataError naming the file, the 1-based row and the key.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import zlib
from pathlib import Path

from suite.core.errors import DataError, SuiteError
from suite.data.records import (
    RECORD_TYPES,
    BinaryRecord,
    ListwiseRecord,
    PairwiseRecord,
    ScalarRecord,
    SFTRecord,
)

MIRROR_ENV = "ALIGNSUITE_DATA"

# TRL's column conventions per feedback type: (required columns, optional columns).
COLUMNS = {
    "pairwise": (("prompt", "chosen", "rejected"), ("chosen_score", "rejected_score")),
    "binary": (("prompt", "completion", "label"), ()),
    "scalar": (("prompt", "completion", "score"), ()),
    "sft": (("prompt", "completion"), ()),
    "listwise": (("prompt", "responses", "scores"), ()),  # not a TRL format: a ranking, scores any finite number
}
PROMPT_ROLES = ("system", "user", "assistant")


def mirror_root() -> Path | None:
    """The local dataset mirror named by ``ALIGNSUITE_DATA``, or None (unset or empty: use the hub)."""
    value = os.environ.get(MIRROR_ENV)
    if not value:
        return None
    root = Path(value)
    if not root.is_dir():
        raise SuiteError(f"{MIRROR_ENV}={value}: not a directory (unset it to use the hub)")
    return root


# -- reading JSON rows ---------------------------------------------------------------------------


def _open_binary(path: Path):
    # Bytes, decoded per row, so a bad byte is reported with the row it is in.
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _decode(data: bytes, path: Path, row: int | None = None) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if row is None:  # a whole .json file: the line the byte is on
            line = data.count(b"\n", 0, exc.start) + 1
            where, offset = f"line {line}", f"byte {exc.start}"
        else:
            where, offset = f"row {row}", f"byte {exc.start} of the row"
        raise DataError(f"{path}: {where}: not valid UTF-8 ({exc.reason} at {offset})") from None


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list) -> dict:
    """json's object hook: a key given twice is an error (json keeps the last value silently)."""
    keys = [key for key, _ in pairs]
    for index, key in enumerate(keys):
        if key in keys[:index]:
            raise _DuplicateKey(key)
    return dict(pairs)


def _parse_json(text: str, path: Path, where: str):
    """One JSON value; duplicate keys and nesting too deep to parse are errors naming ``where``."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise DataError(f"{path}: {where}, key {exc.key!r}: duplicate key (JSON would keep only the last value)") \
            from None
    except RecursionError:
        raise DataError(f"{path}: {where}: JSON nested too deeply to read") from None


def _read_jsonl(handle, path: Path) -> list[tuple[int, object]]:
    rows = []
    for number, raw in enumerate(handle, start=1):
        line = _decode(raw, path, number)
        if not line.strip():
            continue  # a trailing blank line is not a row
        try:
            rows.append((number, _parse_json(line, path, f"row {number}")))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: row {number}: invalid JSON at line {number}, column {exc.colno}: "
                            f"{exc.msg}") from None
    return rows


def _read_json_list(handle, path: Path) -> list[tuple[int, object]]:
    try:
        data = _parse_json(_decode(handle.read(), path), path, "the file")
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: a .json dataset must be a list of objects, got a {type(data).__name__}")
    return list(enumerate(data, start=1))


def read_json_rows(path) -> list[tuple[int, object]]:
    """(1-based row number, value) pairs from a ``.jsonl`` / ``.jsonl.gz`` file (one value per line; the
    row number is the line number) or a ``.json`` / ``.json.gz`` file holding a list."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    name = path.name.removesuffix(".gz")
    if name.endswith(".jsonl"):
        reader = _read_jsonl
    elif name.endswith(".json"):
        reader = _read_json_list
    else:
        raise DataError(f"{path}: unsupported file type; use .jsonl, .jsonl.gz or .json")
    try:
        with _open_binary(path) as handle:
            rows = reader(handle, path)
    except (OSError, EOFError, zlib.error) as exc:  # unreadable, or a truncated / corrupt / non-gzip .gz stream
        raise DataError(f"{path}: cannot read: {exc}") from None
    if not rows:
        raise DataError(f"{path}: empty file (no rows)")
    return rows


# -- validating one row --------------------------------------------------------------------------


def _where(path, row, key=None) -> str:
    return f"{path}: row {row}" + (f", key {key!r}" if key else "")


def _check_unicode(text: str, path, row, key) -> str:
    """JSON's ``\\ud800`` escapes can encode lone surrogates: valid JSON, but no text a tokenizer accepts."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise DataError(f"{_where(path, row, key)}: not valid Unicode (a lone surrogate "
                        f"{text[exc.start]!r} at character {exc.start})") from None
    return text


def _response_text(value, path, row, key) -> str:
    """A response: a string, or (TRL conversational format) a list of assistant messages."""
    if isinstance(value, list):
        parts = []
        for index, message in enumerate(value, start=1):
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                raise DataError(f"{_where(path, row, key)}: message {index} must be an object with a string 'content'")
            role = message.get("role", "assistant")
            if role != "assistant":
                raise DataError(f"{_where(path, row, key)}: message {index} has role {role!r}; a response holds "
                                "assistant messages only (the conversation so far belongs in 'prompt')")
            parts.append(message["content"])
        value = "\n\n".join(parts)
    if not isinstance(value, str):
        raise DataError(f"{_where(path, row, key)}: expected a string or a list of chat messages, "
                        f"got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{_where(path, row, key)}: empty response")
    return _check_unicode(value, path, row, key)


def _prompt(value, path, row):
    """A prompt: a non-empty string, or a list of chat messages that ends with a user turn."""
    where = _where(path, row, "prompt")
    if isinstance(value, str):
        if not value.strip():
            raise DataError(f"{where}: empty prompt")
        return _check_unicode(value, path, row, "prompt")
    if not isinstance(value, list):
        raise DataError(f"{where}: expected a string or a list of chat messages, got {type(value).__name__}")
    if not value:
        raise DataError(f"{where}: empty prompt (no messages)")
    messages = []
    for index, message in enumerate(value, start=1):
        if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                and isinstance(message.get("content"), str)):
            raise DataError(f"{where}: message {index} needs a string 'role' and 'content'")
        if message["role"] not in PROMPT_ROLES:
            raise DataError(f"{where}: message {index} has unknown role {message['role']!r}; "
                            f"use {', '.join(PROMPT_ROLES)}")
        messages.append({"role": message["role"], "content": _check_unicode(message["content"], path, row, "prompt")})
    if messages[-1]["role"] != "user":
        raise DataError(f"{where}: the last message must be the user turn being answered, "
                        f"got role {messages[-1]['role']!r}")
    if not messages[-1]["content"].strip():
        raise DataError(f"{where}: empty prompt (the last user message is empty)")
    return messages


def _score(value, path, row, key) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{_where(path, row, key)}: expected a number in [0, 1], got {value!r}")
    if not math.isfinite(value):
        raise DataError(f"{_where(path, row, key)}: score is {value} (must be a finite number in [0, 1])")
    if not 0.0 <= value <= 1.0:
        raise DataError(f"{_where(path, row, key)}: score {value} is outside [0, 1]")
    return float(value)


def _listwise(obj, prompt, path, row) -> ListwiseRecord:
    """A ranking: ``responses`` (≥ 2, distinct, non-empty) with one finite ``scores`` number each; stored
    best first (stable sort by score, descending: tied responses keep the file's order)."""
    responses, scores = obj["responses"], obj["scores"]
    if not isinstance(responses, list):
        raise DataError(f"{_where(path, row, 'responses')}: expected a list of responses, "
                        f"got {type(responses).__name__}")
    if not isinstance(scores, list):
        raise DataError(f"{_where(path, row, 'scores')}: expected a list of numbers, got {type(scores).__name__}")
    if len(responses) != len(scores):
        raise DataError(f"{_where(path, row)}: responses and scores differ in length "
                        f"({len(responses)} responses, {len(scores)} scores)")
    if len(responses) < 2:
        raise DataError(f"{_where(path, row, 'responses')}: {len(responses)} response(s); a ranking needs at least 2")
    texts = [_response_text(value, path, row, f"responses[{index}]") for index, value in enumerate(responses)]
    first_seen: dict[str, int] = {}
    for index, text in enumerate(texts):
        if text in first_seen:
            raise DataError(f"{_where(path, row, 'responses')}: responses[{first_seen[text]}] and "
                            f"responses[{index}] are identical (a ranking needs distinct responses)")
        first_seen[text] = index
    values = []
    for index, value in enumerate(scores):
        key = f"scores[{index}]"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(f"{_where(path, row, key)}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise DataError(f"{_where(path, row, key)}: score is {value} (must be a finite number)")
        values.append(float(value))
    order = sorted(range(len(texts)), key=lambda index: -values[index])
    return ListwiseRecord(prompt, tuple(texts[i] for i in order), tuple(values[i] for i in order))


def parse_record(obj, feedback: str, path, row):
    """One validated record of ``feedback`` type from a JSON object (TRL's column names)."""
    if not isinstance(obj, dict):
        raise DataError(f"{_where(path, row)}: expected a JSON object, got {type(obj).__name__}")
    required, optional = COLUMNS[feedback]
    for key in required:
        if obj.get(key) is None:
            raise DataError(f"{_where(path, row, key)}: missing field (a {feedback} record needs "
                            f"{', '.join(required)})")
    prompt = _prompt(obj["prompt"], path, row)
    if feedback == "listwise":
        return _listwise(obj, prompt, path, row)
    if feedback == "pairwise":
        chosen = _response_text(obj["chosen"], path, row, "chosen")
        rejected = _response_text(obj["rejected"], path, row, "rejected")
        if chosen == rejected:
            raise DataError(f"{_where(path, row)}: chosen and rejected are identical (no preference)")
        scores = {key: _score(obj[key], path, row, key) for key in optional if obj.get(key) is not None}
        return PairwiseRecord(prompt, chosen, rejected, scores.get("chosen_score"), scores.get("rejected_score"))
    completion = _response_text(obj["completion"], path, row, "completion")
    if feedback == "binary":
        if not isinstance(obj["label"], bool):
            raise DataError(f"{_where(path, row, 'label')}: expected true or false, got {obj['label']!r}")
        return BinaryRecord(prompt, completion, obj["label"])
    if feedback == "scalar":
        return ScalarRecord(prompt, completion, _score(obj["score"], path, row, "score"))
    return SFTRecord(prompt, completion)


def load_local(path, feedback: str) -> list:
    """Validated records from a local ``.jsonl`` / ``.jsonl.gz`` / ``.json`` file in TRL's columns:
    pairwise ``prompt, chosen, rejected [, chosen_score, rejected_score]``; binary ``prompt, completion,
    label``; scalar ``prompt, completion, score``; sft ``prompt, completion``; and listwise ``prompt,
    responses, scores`` (a list of responses and one finite score each, stored best first)."""
    if feedback not in RECORD_TYPES:
        raise DataError(f"{path}: unknown format {feedback!r}; use one of {', '.join(RECORD_TYPES)}")
    return [parse_record(obj, feedback, path, row) for row, obj in read_json_rows(path)]


# -- HH-RLHF transcripts ---------------------------------------------------------------------------

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
TRANSCRIPT_ROLES = {HUMAN: "user", ASSISTANT: "assistant"}


def split_hh_transcript(chosen: str, rejected: str):
    """Split two HH-RLHF transcripts into (chat-message prompt, chosen response, rejected response).

    The shared prompt is everything up to and including the last ``\\n\\nAssistant:`` inside the
    common prefix of the two; the responses are the rest, stripped. None when the two share no
    ``\\n\\nAssistant:`` cue (nothing to split on).
    """
    common = 0
    limit = min(len(chosen), len(rejected))
    while common < limit and chosen[common] == rejected[common]:
        common += 1
    cut = chosen.rfind(ASSISTANT, 0, common)  # the last assistant cue lying wholly in the shared prefix
    if cut == -1:
        return None
    boundary = cut + len(ASSISTANT)
    return transcript_messages(chosen[:boundary]), chosen[boundary:].strip(), rejected[boundary:].strip()


def _next_cue(text: str, start: int) -> tuple[int, str | None]:
    found = [(text.find(cue, start), cue) for cue in TRANSCRIPT_ROLES]
    found = [(index, cue) for index, cue in found if index != -1]
    return min(found) if found else (len(text), None)


def transcript_messages(transcript: str) -> list[dict]:
    """``\\n\\nHuman: … \\n\\nAssistant: …`` → chat messages.

    The empty final assistant cue (the turn to be generated) is dropped. Consecutive turns of one
    role (a few real transcripts have two ``Assistant:`` turns in a row) are merged, so the roles
    alternate as chat templates expect.
    """
    messages: list[dict] = []
    index, cue = _next_cue(transcript, 0)
    while cue is not None:
        start = index + len(cue)
        index, following = _next_cue(transcript, start)
        content = transcript[start:index].strip()
        role = TRANSCRIPT_ROLES[cue]
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"] = "\n\n".join(p for p in (messages[-1]["content"], content) if p)
        elif content or following is not None:
            messages.append({"role": role, "content": content})
        cue = following
    return messages
