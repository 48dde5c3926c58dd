"""The run store: ``DIR/runs/<run_id>/{manifest.json, metrics.json, lm_eval_results.json, train_log.jsonl}``.

Every file is written atomically (temp file in the same folder, then ``os.replace``), so a reader never
sees half a file, and ``metrics.json`` is written before the manifest turns ``complete``: a run is
complete only once everything it promises is on disk. A complete manifest records the SHA-256 of each
result file (``checksums``); a run whose files no longer match (truncated, edited, lost) is not complete,
and is redone rather than trusted.

This module is also the one reader of a results folder (``load_runs`` / ``read_run`` → ``RunRecord``,
``train_curves``): every report, table and claim reads runs through it. Only runs whose manifest says
``complete`` carry metrics; failed and running runs are read for listing, never for numbers. The reader
checks what it reads and names the file, key or line of anything malformed.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path

from suite.core.errors import SuiteError
from suite.core.io import file_sha256, read_json_object, utc_now, write_json_atomic

STATUS_RUNNING, STATUS_COMPLETE, STATUS_FAILED = "running", "complete", "failed"
# The result files a complete run's manifest vouches for (those that exist).
RESULT_FILES = ("metrics.json", "lm_eval_results.json", "lm_eval_samples.json")



KNOWN_STATUSES = (STATUS_COMPLETE, STATUS_FAILED, STATUS_RUNNING)
BASE_ROW = "base"  # the untouched base model's row label (suite.execution.runner plans it)
REQUIRED_MANIFEST_KEYS = ("run_id", "method", "status")
TRAIN_LOG = "train_log.jsonl"

class RunStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def manifest(self, run_id: str) -> dict | None:
        path = self.run_dir(run_id) / "manifest.json"
        if not path.is_file():
            return None
        try:
            manifest = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None  # unreadable: treat as not complete, the run is redone
        return manifest if isinstance(manifest, dict) else None

    def checksums(self, run_id: str) -> dict:
        """SHA-256 of each result file of the run, for its complete manifest."""
        run_dir = self.run_dir(run_id)
        return {name: file_sha256(run_dir / name) for name in RESULT_FILES if (run_dir / name).is_file()}

    def is_complete(self, run_id: str) -> bool:
        """Complete, and its files are what the manifest vouches for: a truncated or edited result file
        makes the run incomplete (redone), never a result that is trusted and skipped."""
        manifest = self.manifest(run_id)
        if not manifest or manifest.get("status") != STATUS_COMPLETE:
            return False
        run_dir = self.run_dir(run_id)
        if not (run_dir / "metrics.json").is_file():
            return False
        recorded = manifest.get("checksums")
        try:
            if isinstance(recorded, dict):  # runs stored before checksums: the metrics must at least parse
                return all((run_dir / name).is_file() and file_sha256(run_dir / name) == digest
                           for name, digest in recorded.items()) and "metrics.json" in recorded
            return isinstance(json.loads((run_dir / "metrics.json").read_text()), dict)
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return False

    def write_manifest(self, run_id: str, manifest: dict) -> None:
        write_json_atomic(self.run_dir(run_id) / "manifest.json", manifest)

    def write_json(self, run_id: str, name: str, payload) -> None:
        write_json_atomic(self.run_dir(run_id) / name, payload)

    def claim(self, run_id: str) -> "RunClaim | None":
        """Claim ``run_id`` for this process, or None when another live process holds it (see RunClaim)."""
        claim = RunClaim(self.run_dir(run_id) / ".claim")
        return claim if claim.acquire() else None


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, someone else's
    except (OverflowError, ValueError):
        return False
    return True


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, /proc), or None where /proc is not there: with the
    pid it identifies the process, so a claim whose pid now belongs to another process is seen as stale."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22, counted after the command name


class RunClaim:
    """One process's exclusive claim on a run: a file holding its host, pid, the process's start time and
    when it claimed the run.

    Two ``alignsuite run`` processes on one results folder never train the same run: the second finds the
    claim and leaves the run to the first. The claim is written whole to a temp file and then linked into
    place (exclusive and atomic), so it is never seen empty or half written. A claim that is stale — empty
    or unreadable (left by a crash of an older writer, a full disk), or naming a process on this host that
    is gone or is now another process (the pid was reused) — is taken over, so a killed run can be resumed.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.owner = {"host": platform.node(), "pid": os.getpid(), "pid_start": process_start(os.getpid())}

    def holder(self) -> dict | None:
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None
        return holder if isinstance(holder, dict) else None

    def _stale(self, holder: dict | None) -> bool:
        if holder is None:
            return self.path.exists()  # present but empty or unreadable: no process can be holding it
        if holder.get("host") != self.owner["host"]:
            return False  # another machine's process: cannot tell, leave it
        try:
            pid = int(holder.get("pid", -1))
        except (TypeError, ValueError):
            return True
        if not _process_alive(pid):
            return True
        started = holder.get("pid_start")
        return started is not None and process_start(pid) not in (None, started)

    def _create(self) -> bool:
        """Create the claim file with its content in one step; False when one exists."""
        handle, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".claim.")
        try:
            with os.fdopen(handle, "w") as out:
                json.dump({**self.owner, "since": utc_now()}, out)
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            Path(tmp).unlink(missing_ok=True)

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # the second try follows the removal of a stale claim
            if self._create():
                return True
            try:
                before = self.path.read_bytes()
            except FileNotFoundError:
                continue  # released meanwhile
            if not self._stale(self.holder()):
                return False
            try:
                if self.path.read_bytes() == before:  # still the stale claim, not a new one made meanwhile
                    self.path.unlink()
            except FileNotFoundError:
                pass
        return False

    def release(self) -> None:
        holder = self.holder()
        if holder is None or (holder.get("host"), holder.get("pid")) == (self.owner["host"], self.owner["pid"]):
            self.path.unlink(missing_ok=True)


# -- reading a results folder ----------------------------------------------------------------------


@dataclass
class RunRecord:
    """One run folder as stored: its manifest, and its metrics when the run is complete (else None)."""

    folder: Path
    manifest: dict
    metrics: dict | None

    @property
    def run_id(self) -> str:
        return str(self.manifest["run_id"])

    @property
    def method(self) -> str:
        """The row label: the method id, or the config's label for a variant."""
        return str(self.manifest["method"])

    @property
    def status(self) -> str:
        return self.manifest["status"]

    @property
    def complete(self) -> bool:
        return self.status == STATUS_COMPLETE

    @property
    def leaderboard(self) -> str | None:
        """The leaderboard spec the run was evaluated on (manifest, else the recorded eval settings)."""
        settings = (self.metrics or {}).get("eval_settings") or {}
        return self.manifest.get("leaderboard") or settings.get("leaderboard")


def check_manifest(manifest: dict, path: Path) -> dict:
    for key in REQUIRED_MANIFEST_KEYS:
        if key not in manifest:
            raise SuiteError(f"{path}: missing key '{key}'")
    if manifest["status"] not in KNOWN_STATUSES:
        raise SuiteError(f"{path}: status must be one of {', '.join(KNOWN_STATUSES)}, got {manifest['status']!r}")
    return manifest


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_number_or_null(value) -> bool:
    return value is None or is_number(value)


def check_metrics(metrics: dict, path: Path) -> dict:
    """The parts of metrics.json reports read must be numbers (or null) where numbers are expected."""
    evals = metrics.get("eval") or {}
    if not isinstance(evals, dict):
        raise SuiteError(f"{path}: key 'eval' must be an object of tasks")
    for task, scores in evals.items():
        if not isinstance(scores, dict):
            raise SuiteError(f"{path}: key 'eval.{task}' must be an object of metric: number")
        for metric, value in scores.items():
            if not _is_number_or_null(value):
                raise SuiteError(f"{path}: key 'eval.{task}.{metric}' must be a number, got {value!r}")
    if not _is_number_or_null(metrics.get("eval_average")):
        raise SuiteError(f"{path}: key 'eval_average' must be a number or null, got {metrics['eval_average']!r}")
    for section in ("alignment", "train"):
        values = metrics.get(section) or {}
        if not isinstance(values, dict):
            raise SuiteError(f"{path}: key '{section}' must be an object")
        if section == "alignment":
            for key, value in values.items():
                if not _is_number_or_null(value):
                    raise SuiteError(f"{path}: key 'alignment.{key}' must be a number, got {value!r}")
    if not _is_number_or_null((metrics.get("train") or {}).get("runtime_s")):
        raise SuiteError(f"{path}: key 'train.runtime_s' must be a number or null")
    return metrics


def read_run(folder: Path) -> RunRecord:
    manifest_path = folder / "manifest.json"
    manifest = check_manifest(read_json_object(manifest_path), manifest_path)
    if manifest["status"] != STATUS_COMPLETE:
        return RunRecord(folder, manifest, None)  # unfinished runs never contribute numbers
    metrics_path = folder / "metrics.json"
    if not metrics_path.is_file():
        raise SuiteError(f"{metrics_path}: missing, but {manifest_path} says the run is complete")
    record = RunRecord(folder, manifest, check_metrics(read_json_object(metrics_path), metrics_path))
    train_curves(folder)  # a malformed train log is an error now, not when a plot is drawn
    return record


def load_runs(results_dir: Path) -> list[RunRecord]:
    """Every run folder under ``results_dir/runs`` with a manifest, base runs first, then by run id."""
    runs_dir = Path(results_dir) / "runs"
    folders = sorted(p for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if runs_dir.is_dir() else []
    # A folder without manifest.json holds only an interrupted temp file: there is no run to report.
    runs = [read_run(folder) for folder in folders if (folder / "manifest.json").is_file()]
    if not runs:
        raise SuiteError(f"{runs_dir}: there are no runs to report (run `alignsuite run CONFIG` first)")
    return sorted(runs, key=lambda r: (r.method != BASE_ROW, r.run_id))


def train_log_records(path: Path):
    """(line number, record) for each non-empty line of a train_log.jsonl (none if the file is absent);
    a line that is not a JSON object names the file and line."""
    if not path.is_file():
        return
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SuiteError(f"{path}: line {number} is not valid JSON ({exc})") from exc
        if not isinstance(record, dict):
            raise SuiteError(f"{path}: line {number} must be a JSON object")
        yield number, record


def train_curves(folder: Path) -> dict[str, list[tuple[float, float]]]:
    """{curve: [(step, value)]} for loss, implicit-reward accuracy and margin from a run's train_log.jsonl
    (empty curves when there is none). Methods that log desirable/undesirable rewards (KTO, UNA-binary) get
    their difference as the margin. A record with a loss needs a numeric step; a bad line names file and line."""
    path = Path(folder) / TRAIN_LOG
    curves: dict[str, list] = {"loss": [], "accuracy": [], "margin": []}
    for number, record in train_log_records(path):
        step, loss = record.get("step"), record.get("loss")
        if loss is not None and not (is_number(step) and is_number(loss)):
            raise SuiteError(f"{path}: line {number} needs numeric 'step' and 'loss'")
        if not is_number(step):
            continue
        step = float(step)
        if loss is not None:  # the Trainer's end-of-training summary carries train_loss, not a step's loss
            curves["loss"].append((step, float(loss)))
        if is_number(record.get("rewards/accuracy")):
            curves["accuracy"].append((step, float(record["rewards/accuracy"])))
        margin = record.get("rewards/margin")
        if not is_number(margin) and all(is_number(record.get(k)) for k in ("rewards/desirable", "rewards/undesirable")):
            margin = record["rewards/desirable"] - record["rewards/undesirable"]
        if is_number(margin):
            curves["margin"].append((step, float(margin)))
    return curves


def dataset_label(dataset) -> str:
    """A dataset id, or the path of a local dataset given as {"path": ..., "format": ...}."""
    if isinstance(dataset, dict):
        return str(dataset.get("path", json.dumps(dataset, sort_keys=True)))
    return "" if dataset is None else str(dataset)


def metric_at(metrics: dict | None, path: str):
    """The value at a dotted key path of metrics.json (``train.runtime_s``), or None where it is absent."""
    node = metrics
    for key in path.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node
