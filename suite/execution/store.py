"""The run store: ``DIR/runs/<run_id>/{manifest.json, metrics.json, lm_eval_results.json, train_log.jsonl}``.

Every file is written atomically (temp file in the same folder, then ``os.replace``), so a reader never
sees half a file, and ``metrics.json`` is written before the manifest turns ``complete``: a run is
complete only once everything it promises is on disk.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from suite.core.io import utc_now, write_json_atomic

STATUS_RUNNING, STATUS_COMPLETE, STATUS_FAILED = "running", "complete", "failed"

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
            return json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # unreadable: treat as not complete, the run is redone

    def is_complete(self, run_id: str) -> bool:
        manifest = self.manifest(run_id)
        return bool(manifest) and manifest.get("status") == STATUS_COMPLETE and (
            self.run_dir(run_id) / "metrics.json"
        ).is_file()

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
    return True


class RunClaim:
    """One process's exclusive claim on a run: a file created with O_EXCL holding its host and pid.

    Two ``alignsuite run`` processes on one results folder never train the same run: the second finds the
    claim and leaves the run to the first. A claim left by a process that died (same host, pid gone) is
    stale and taken over, so a killed run can be resumed.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.owner = {"host": platform.node(), "pid": os.getpid()}

    def holder(self) -> dict | None:
        try:
            return json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            return None

    def acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):  # the second try follows the removal of a stale claim
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self.holder()
                stale = (holder is not None and holder.get("host") == self.owner["host"]
                         and not _process_alive(int(holder.get("pid", -1))))
                if not stale:
                    return False
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(handle, "w") as out:
                json.dump({**self.owner, "since": utc_now()}, out)
            return True
        return False

    def release(self) -> None:
        holder = self.holder()
        if holder is None or (holder.get("host"), holder.get("pid")) == (self.owner["host"], self.owner["pid"]):
            self.path.unlink(missing_ok=True)
