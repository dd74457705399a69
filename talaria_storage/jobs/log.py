"""The job log: one JSON object per line, appended, never rewritten; also the record of finished steps.

``<state_dir>/log.jsonl`` gets a line for every event of every run::

    {"event": "job-start", "run": "...", "time": "2026-12-01T02:00:00Z", "ts": ..., "pid": ..., "host": ...}
    {"event": "skip",  "run": ..., "step": "import", "kind": "import", "fingerprint": "3f2a...",
     "reason": "fingerprint match: finished 2026-11-30T02:00:07Z (run ...)"}
    {"event": "start", "run": ..., "step": "export", "kind": "export", "fingerprint": "...", "reason": "..."}
    {"event": "end",   "run": ..., "step": "export", "fingerprint": "...", "outcome": "ok",
     "bytes": 100565, "seconds": 0.21, "outputs": {...}, "parts": {...}, "summary": "..."}
    {"event": "job-end", "run": ..., "outcome": "ok" | "failed", "seconds": ...}

An ``end`` line with ``outcome`` ``"ok"`` is what makes a fingerprint
*finished*: the runner skips a step whose current fingerprint has one (and
whose recorded ``outputs`` still exist). A ``start`` with no ``end`` after it
is a step that was cut off; its next run resumes it. Like Nextflow's cache
and DVC's run cache, the log is local to where the job runs.

Each line is written with one ``write`` of a whole line to a file opened in
append mode, then flushed and fsynced, so a killed run leaves at worst one
torn last line, which the reader skips.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JobLog", "StepHistory", "iso_time"]


def iso_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


@dataclass(frozen=True, slots=True)
class StepHistory:
    """What the log says about one step: its finished runs, and whether its last run was cut off."""

    finished: tuple[dict[str, Any], ...]  # "end" lines with outcome ok, oldest first
    cut_off: dict[str, Any] | None  # the "start" line of a run that has no "end", if the last event is one

    def finished_with(self, fingerprint: str) -> dict[str, Any] | None:
        """The most recent finished run with this fingerprint, or None."""
        for entry in reversed(self.finished):
            if entry.get("fingerprint") == fingerprint:
                return entry
        return None

    @property
    def last_finished(self) -> dict[str, Any] | None:
        return self.finished[-1] if self.finished else None


class JobLog:
    """Appends events to, and reads the history from, one job's JSON-lines log."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: dict[str, Any]) -> None:
        """Write ``event`` as one line (with the time added), durably."""
        now = time.time()
        line = json.dumps({"time": iso_time(now), "ts": round(now, 3), **event}, sort_keys=False) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every readable event, oldest first (a torn line is skipped)."""
        try:
            handle = self.path.open("r", encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if isinstance(entry, dict):
                    yield entry

    def history(self) -> dict[str, StepHistory]:
        """Step name -> :class:`StepHistory`, from the whole log."""
        finished: dict[str, list[dict[str, Any]]] = {}
        open_starts: dict[str, dict[str, Any] | None] = {}
        for entry in self.entries():
            step = entry.get("step")
            if not isinstance(step, str):
                continue
            event = entry.get("event")
            if event == "start":
                open_starts[step] = entry
            elif event in ("end", "skip"):
                open_starts[step] = None
                if event == "end" and entry.get("outcome") == "ok":
                    finished.setdefault(step, []).append(entry)
        names = set(finished) | set(open_starts)
        return {n: StepHistory(tuple(finished.get(n, ())), open_starts.get(n)) for n in names}
