"""Reading records: local JSON/JSONL files (TRL's column conventions) and the registered sources.

Every malformed input raises one DataError naming the file, the 1-based row and the key.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path

from suite.data.records import RECORD_TYPES, BinaryRecord, PairwiseRecord, ScalarRecord, SFTRecord
from suite.errors import DataError, SuiteError

MIRROR_ENV = "ALIGNSUITE_DATA"

# TRL's column conventions per feedback type: required columns, optional ones.
COLUMNS = {
    "pairwise": (("prompt", "chosen", "rejected"), ("chosen_score", "rejected_score")),
    "binary": (("prompt", "completion", "label"), ()),
    "scalar": (("prompt", "completion", "score"), ()),
    "sft": (("prompt", "completion"), ()),
}


def mirror_root() -> Path | None:
    """The local dataset mirror from ``ALIGNSUITE_DATA``, or None to use the hub."""
    value = os.environ.get(MIRROR_ENV)
    if not value:
        return None
    root = Path(value)
    if not root.is_dir():
        raise SuiteError(f"{MIRROR_ENV}={value}: not a directory")
    return root


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_json_rows(path: Path) -> list[tuple[int, object]]:
    """(row number, value) pairs from a .jsonl / .jsonl.gz (one object per line) or .json (a list) file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    name = path.name.removesuffix(".gz")
    try:
        with _open_text(path) as handle:
            if name.endswith(".jsonl"):
                rows = []
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        rows.append((number, json.loads(line)))
                    except json.JSONDecodeError as exc:
                        raise DataError(f"{path}: row {number}: invalid JSON: {exc.msg}") from None
            elif name.endswith(".json"):
                try:
                    data = json.load(handle)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
                if not isinstance(data, list):
                    raise DataError(f"{path}: a .json dataset must be a list of objects, got {type(data).__name__}")
                rows = list(enumerate(data, start=1))
            else:
                raise DataError(f"{path}: unsupported file type; use .jsonl, .jsonl.gz or .json")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (OSError, EOFError) as exc:  # e.g. a truncated gzip stream
        raise DataError(f"{path}: cannot read: {exc}") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _where(path, row, key=None) -> str:
    return f"{path}: row {row}" + (f", key {key!r}" if key else "")


def _text(value, path, row, key) -> str:
    """A response: a string, or a chat-message list whose assistant turns are the text."""
    if isinstance(value, list):
        parts = []
        for message in value:
            if not isinstance(message, dict) or not isinstance(message.get("content"), str):
                raise DataError(f"{_where(path, row, key)}: chat messages must be objects with a string 'content'")
            if message.get("role", "assistant") == "assistant":
                parts.append(message["content"])
        value = "".join(parts)
    if not isinstance(value, str):
        raise DataError(f"{_where(path, row, key)}: expected a string or a list of chat messages, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{_where(path, row, key)}: empty response")
    return value


def _prompt(value, path, row):
    if isinstance(value, list):
        if not value:
            raise DataError(f"{_where(path, row, 'prompt')}: empty prompt")
        messages = []
        for message in value:
            if not (isinstance(message, dict) and isinstance(message.get("role"), str)
                    and isinstance(message.get("content"), str)):
                raise DataError(f"{_where(path, row, 'prompt')}: chat messages need string 'role' and 'content'")
            messages.append({"role": message["role"], "content": message["content"]})
        if not any(m["content"].strip() for m in messages):
            raise DataError(f"{_where(path, row, 'prompt')}: empty prompt")
        return messages
    if not isinstance(value, str):
        raise DataError(f"{_where(path, row, 'prompt')}: expected a string or a list of chat messages, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{_where(path, row, 'prompt')}: empty prompt")
    return value


def _score(value, path, row, key) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{_where(path, row, key)}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise DataError(f"{_where(path, row, key)}: score is {value} (must be finite)")
    if not 0.0 <= value <= 1.0:
        raise DataError(f"{_where(path, row, key)}: score {value} is outside [0, 1]")
    return float(value)


def parse_record(obj, feedback: str, path, row):
    """One validated record of ``feedback`` type from a JSON object."""
    if not isinstance(obj, dict):
        raise DataError(f"{_where(path, row)}: expected a JSON object, got {type(obj).__name__}")
    required, optional = COLUMNS[feedback]
    for key in required:
        if key not in obj or obj[key] is None:
            raise DataError(f"{_where(path, row, key)}: missing field (a {feedback} record needs {', '.join(required)})")
    prompt = _prompt(obj["prompt"], path, row)
    if feedback == "pairwise":
        chosen, rejected = _text(obj["chosen"], path, row, "chosen"), _text(obj["rejected"], path, row, "rejected")
        if chosen == rejected:
            raise DataError(f"{_where(path, row)}: chosen and rejected are identical")
        scores = {k: _score(obj[k], path, row, k) for k in optional if obj.get(k) is not None}
        return PairwiseRecord(prompt, chosen, rejected, scores.get("chosen_score"), scores.get("rejected_score"))
    completion = _text(obj["completion"], path, row, "completion")
    if feedback == "binary":
        if not isinstance(obj["label"], bool):
            raise DataError(f"{_where(path, row, 'label')}: expected true or false, got {obj['label']!r}")
        return BinaryRecord(prompt, completion, obj["label"])
    if feedback == "scalar":
        return ScalarRecord(prompt, completion, _score(obj["score"], path, row, "score"))
    return SFTRecord(prompt, completion)


def load_local(path, feedback: str) -> list:
    """Records from a local file in TRL's column conventions for ``feedback``."""
    if feedback not in RECORD_TYPES:
        raise DataError(f"{path}: unknown format {feedback!r}; use one of {', '.join(RECORD_TYPES)}")
    return [parse_record(obj, feedback, path, row) for row, obj in read_json_rows(Path(path))]


# -- registered sources --------------------------------------------------------------------------

HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"


def split_hh_transcript(chosen: str, rejected: str):
    """Split two HH-RLHF transcripts into (chat-message prompt, chosen response, rejected response).

    The shared prompt is everything up to and including the last ``\\n\\nAssistant:`` the two have in
    common; its Human/Assistant turns become chat messages.
    """
    common = 0
    limit = min(len(chosen), len(rejected))
    while common < limit and chosen[common] == rejected[common]:
        common += 1
    cut = chosen.rfind(ASSISTANT, 0, common)  # the last assistant cue inside the shared prefix
    if cut == -1:
        return None
    boundary = cut + len(ASSISTANT)
    prompt_text = chosen[:boundary]
    return _hh_messages(prompt_text), chosen[boundary:].strip(), rejected[boundary:].strip()


def _hh_messages(transcript: str) -> list[dict]:
    messages = []
    rest = transcript
    while rest:
        human, assistant = rest.find(HUMAN), rest.find(ASSISTANT)
        starts = [(i, role, tag) for i, role, tag in ((human, "user", HUMAN), (assistant, "assistant", ASSISTANT)) if i != -1]
        if not starts:
            break
        index, role, tag = min(starts)
        rest = rest[index + len(tag):]
        following = [i for i in (rest.find(HUMAN), rest.find(ASSISTANT)) if i != -1]
        end = min(following) if following else len(rest)
        content = rest[:end].strip()
        if content or role == "user":
            messages.append({"role": role, "content": content})
        rest = rest[end:]
    return messages
