"""The run store: ``DIR/runs/<run_id>/{manifest.json, metrics.json, lm_eval_results.json, train_log.jsonl}``.

Every file is written atomically (temp file in the same folder, then ``os.replace``), so a reader never
sees half a file, and ``metrics.json`` is written before the manifest turns ``complete``: a run is
complete only once everything it promises is on disk. A complete manifest records the SHA-256 of each
result file (``checksums``); a run whose files no longer match (truncated, edited, lost) is not complete,
and is redone rather than trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from pathlib import Path

from suite.core.io import utc_now, write_json_atomic

STATUS_RUNNING, STATUS_COMPLETE, STATUS_FAILED = "running", "complete", "failed"
# The result files a complete run's manifest vouches for (those that exist).
RESULT_FILES = ("metrics.json", "lm_eval_results.json", "lm_eval_samples.json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
