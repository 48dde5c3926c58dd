"""Reading and writing files safely: atomic writes, strict YAML, JSON objects, provenance facts.

Every writer goes through a temp file in the same folder and ``os.replace``, so a reader never sees half
a file. YAML is loaded strictly (a key given twice is an error, not "the last one wins").
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path

import yaml

from suite.core.errors import ConfigError, SuiteError

TRACKED_PACKAGES = ("alignsuite", "torch", "transformers", "datasets", "lm_eval", "peft", "accelerate", "gguf")


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_json_atomic(path: Path, payload) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(payload, out, indent=2, sort_keys=False, default=str)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def package_versions() -> dict:
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> str | None:
    """The suite's own git revision (with ``-dirty`` when the tree has changes), or None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, timeout=10)
        return rev.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None



def read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object; anything else is a SuiteError naming the file."""
    try:
        payload = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(payload, dict):
        raise SuiteError(f"{path}: expected a JSON object, got {type(payload).__name__}")
    return payload


def write_bytes_atomic(path: Path, payload: bytes) -> None:
    """Temp file in the same folder, then os.replace: a reader never sees half a report."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(payload)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise



class StrictYamlLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (plain PyYAML silently keeps the last)."""


def _mapping_without_duplicates(loader, node, deep=False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            duplicate = key in seen
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


StrictYamlLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def yaml_error_text(exc: yaml.YAMLError) -> str:
    """A YAML error on one line: where, what, and the construct it was in (PyYAML's own spans lines)."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if problem is None:
        return " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + problem + (f" ({context})" if context else "")


def load_yaml_file(path: Path):
    """The YAML document in ``path``; one ConfigError naming the file for bad encoding or bad YAML."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        return yaml.load(text, Loader=StrictYamlLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {yaml_error_text(exc)}") from None


def load_yaml_mapping(path: Path, expected: str = "a mapping", kind: str = "file") -> dict:
    """A YAML file whose top level is a mapping (a recipe, a paper's tables, a leaderboard spec): one
    ConfigError naming the file when it is missing ("<kind> not found"), not UTF-8, not YAML (duplicate keys
    included) or not a mapping ("expected <expected>")."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: {kind} not found")
    payload = load_yaml_file(path)
    if not isinstance(payload, dict):
        raise ConfigError(f"{path}: expected {expected}")
    return payload


def content_hash(payload) -> str:
    """A stable hash of plain data (sorted-key JSON)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_or_print(text: str, out: str | Path | None) -> None:
    """A command's text result: into ``out`` (its folder made) with a line saying so, else to stdout."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
        print(f"wrote {out}")
    else:
        print(text, end="")
