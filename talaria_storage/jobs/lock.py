"""The job lock: one run of a job at a time, and a clear word about who holds it.

The lock is a small JSON file in the job's state folder, created with
``O_CREAT | O_EXCL`` (atomic on local filesystems and on NFSv3+), holding the
holder's pid, host, start time and a heartbeat that a background thread
rewrites every :data:`HEARTBEAT_SECONDS`. A second run refuses with the
holder's pid and host (:class:`JobLocked`).

A lock is *stale* -- broken with a message, and the run goes on -- when

* its holder ran on this host and that process is gone (``kill -9``, a
  crash), or the pid now belongs to another process (a different start time
  in ``/proc``; after a reboot, a different boot id); or
* its heartbeat is older than :data:`STALE_AFTER_SECONDS` and the holder ran on
  another host (whose processes this host cannot see).

A live process on this host keeps its lock however old the heartbeat (it may
be stopped in a debugger; killing it is the operator's call). Breaking is
done under an ``flock`` on a side file, so two runs that both find a stale
lock cannot both take it. Why not ``flock`` alone, which the kernel releases
when a process dies: it says nothing about *who* holds the lock, and is not
reliable across hosts on network filesystems, which is where a job folder on
a cluster lives.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from talaria_storage.core.errors import StorageError

if TYPE_CHECKING:
    from typing_extensions import Self

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["HEARTBEAT_SECONDS", "STALE_AFTER_SECONDS", "JobLock", "JobLocked", "LockHolder"]

HEARTBEAT_SECONDS = 10.0
STALE_AFTER_SECONDS = 120.0


class JobLocked(StorageError):
    """Another run holds this job's lock."""

    def __init__(self, message: str, holder: LockHolder) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True, slots=True)
class LockHolder:
    """What a lock file says about the run holding it."""

    pid: int
    host: str
    started: float
    heartbeat: float
    token: str
    boot_id: str = ""
    process_start: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "started": self.started, "heartbeat": self.heartbeat,
                "token": self.token, "boot_id": self.boot_id, "process_start": self.process_start}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LockHolder:
        return cls(int(data["pid"]), str(data["host"]), float(data["started"]), float(data["heartbeat"]),
                   str(data["token"]), str(data.get("boot_id", "")), str(data.get("process_start", "")))


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), or ""."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]  # fields after the command name; 22nd overall


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _ago(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f}s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


class JobLock:
    """The lock of one job (``<state_dir>/lock``); use as a context manager, or acquire/release."""

    def __init__(
        self,
        path: Path,
        *,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        stale_after_seconds: float = STALE_AFTER_SECONDS,
    ) -> None:
        self.path = path
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_after_seconds = stale_after_seconds
        self._holder: LockHolder | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- reading ----------------------------------------------------------------------------------

    def holder(self) -> LockHolder | None:
        """The current holder, or None when unlocked (an unreadable lock file counts as a dead holder)."""
        try:
            return LockHolder.from_dict(json.loads(self.path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return LockHolder(0, "?", 0.0, 0.0, "")  # torn by a writer killed mid-write: stale

    def stale_reason(self, holder: LockHolder, now: float | None = None) -> str | None:
        """Why ``holder`` no longer holds the lock, or None when it still does."""
        now = time.time() if now is None else now
        if holder.pid == 0:
            return "the lock file is unreadable"
        if holder.host == socket.gethostname():
            if holder.boot_id and holder.boot_id != _boot_id():
                return "the host has rebooted since"
            if not _alive(holder.pid):
                return f"pid {holder.pid} is not running"
            if holder.process_start and holder.process_start != _process_start(holder.pid):
                return f"pid {holder.pid} is now another process"
            return None
        if now - holder.heartbeat > self.stale_after_seconds:
            return f"its heartbeat is {_ago(now - holder.heartbeat)} (stale after {self.stale_after_seconds:.0f}s)"
        return None

    # -- taking and giving back ------------------------------------------------------------------

    def acquire(self) -> str | None:
        """Take the lock; return a message when a stale lock was broken, raise :class:`JobLocked` if held."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        now = time.time()
        me = LockHolder(os.getpid(), socket.gethostname(), now, now, uuid.uuid4().hex, _boot_id(),
                        _process_start(os.getpid()))
        broke = None
        for _ in range(3):
            with self._guard():  # so that no one judges our half-written lock file unreadable
                if self._create(me):
                    break
            with self._guard():
                holder = self.holder()
                if holder is None:
                    continue
                reason = self.stale_reason(holder)
                if reason is None:
                    raise JobLocked(
                        f"job is already running: pid {holder.pid} on host {holder.host} holds {self.path} "
                        f"(started {_ago(now - holder.started)}, heartbeat {_ago(now - holder.heartbeat)}); "
                        "wait for it, or stop that process",
                        holder,
                    )
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
                broke = (f"broke stale lock of pid {holder.pid} on host {holder.host} ({reason}); "
                         "its unfinished steps resume now")
        else:
            raise StorageError(f"cannot take the job lock {self.path}: it keeps changing hands; try again")
        self._holder = me
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="job-lock-heartbeat", daemon=True)
        self._thread.start()
        return broke

    def release(self) -> None:
        """Stop the heartbeat and remove the lock if it is still this run's."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        mine, self._holder = self._holder, None
        if mine is None:
            return
        with self._guard():
            current = self.holder()
            if current is not None and current.token == mine.token:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- the parts --------------------------------------------------------------------------------

    def _create(self, holder: LockHolder) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(holder.to_dict(), out)
            out.flush()
            os.fsync(out.fileno())
        return True

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            mine = self._holder
            if mine is None:
                return
            with self._guard():
                current = self.holder()
                if current is None or current.token != mine.token:
                    return  # broken by someone who judged it stale: do not take it back
                beat = LockHolder(**{**mine.to_dict(), "heartbeat": time.time()})
                fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".lock.", suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(beat.to_dict(), out)
                os.replace(temp, self.path)

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        """Exclusive among the processes of this host that inspect or change the lock file."""
        if fcntl is None:  # pragma: no cover - Windows
            yield
            return
        with open(self.path.with_name(self.path.name + ".guard"), "a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)
