"""Wrapper backends for drills and tests: fault injection and request counting.

Both wrap another :class:`Backend` and satisfy the whole Backend contract
(they pass the shared conformance suite), forwarding the capabilities
(``is_local``, ``supports_native_ranges``, ``location``, ``close``) of the
backend they wrap. As restic's ``internal/backend`` wrappers do, they add
one cross-cutting behaviour each instead of flags on every backend.

:class:`FaultInjectingBackend`
    Makes a healthy backend behave like a bad network link:

    * ``transient_rate``: the fraction of calls that fail with a *retryable*
      :class:`BackendError` before reaching the backend (a 503, a timeout,
      a connection reset): nothing was read or written;
    * ``permanent_rate``: the fraction that fail with a *permanent* one (as
      with revoked credentials), whose message names the fix;
    * ``lost_response_rate``: the fraction of *writes* (``put``,
      ``put_if_version``, ``put_if_absent``, ``compare_and_swap``,
      ``delete``, ``delete_many``) that reach the backend and succeed, after
      which the response is lost: the caller gets a retryable error although
      the write landed. This is the fault that finds non-idempotent retry
      logic (a retried create-only write then reports "exists", a retried
      compare-and-swap finds its own value). Reads never lose responses: a
      lost read is indistinguishable from a transient failure;
    * ``latency_seconds``: a fixed delay before every call;
    * ``cut_after``: after that many calls the link is dead: every call fails
      (retryably, as a connection refused would) until :meth:`restore`;
      :meth:`cut` kills the link at once.

    ``operations`` limits all of the above to those method names (e.g.
    ``{"put_if_version"}``); other calls pass straight through uncounted.
    Decisions come from one ``random.Random(seed)`` behind a lock: with a
    seed, a sequential caller sees the same faults on every run; concurrent
    callers see the same number of faults, but which call gets which
    depends on thread scheduling. :attr:`injected` counts what was injected.

:class:`RequestCountingBackend`
    Counts the calls made to the backend it wraps, per method name, to prove
    request budgets such as "an up-to-date sync costs at most 3 requests and
    no listing". A batch call (``get_many``, ``exists_many``,
    ``delete_many``) counts once under its own name; :attr:`batched_keys`
    says how many keys those calls carried, since most cloud backends send
    one request per key. :attr:`writes_per_key` counts writes per key, to
    prove that nothing was written twice.

From a store location, ``faults+<location>?<options>`` opens any backend
wrapped in a :class:`FaultInjectingBackend` (see
:func:`fault_options_from_query` and :mod:`talaria_storage.storage.registry`).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any, TypeVar

from talaria_storage.core.errors import BackendError, ConfigError
from talaria_storage.storage.backend import Backend, ObjectInfo, Versioned, WrappingBackend

T = TypeVar("T")

#: Backend methods that change the store (a lost response can follow these).
WRITE_OPERATIONS = frozenset(
    {"put", "put_if_version", "put_if_absent", "compare_and_swap", "delete", "delete_many", "delete_unchanged",
     "touch"}
)
#: Backend methods that only read.
READ_OPERATIONS = frozenset(
    {"get", "get_range", "exists", "list", "stat", "read_versioned", "get_many", "exists_many", "stat_many"}
)
OPERATIONS = WRITE_OPERATIONS | READ_OPERATIONS


def check_fault_settings(
    *,
    transient_rate: float = 0.0,
    permanent_rate: float = 0.0,
    lost_response_rate: float = 0.0,
    latency_seconds: float = 0.0,
    cut_after: int | None = None,
    seed: int | None = None,
    operations: Collection[str] | None = None,
) -> None:
    """Raise ``ValueError`` naming the first setting of :class:`FaultInjectingBackend` that is out of range."""
    for name, rate in (
        ("transient_rate", transient_rate),
        ("permanent_rate", permanent_rate),
        ("lost_response_rate", lost_response_rate),
    ):
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{name} must be between 0 and 1, got {rate}")
    if transient_rate + permanent_rate > 1.0:
        raise ValueError("transient_rate + permanent_rate must not exceed 1")
    if latency_seconds < 0:
        raise ValueError(f"latency_seconds must not be negative, got {latency_seconds}")
    if cut_after is not None and cut_after < 0:
        raise ValueError(f"cut_after must not be negative, got {cut_after}")
    unknown = set(operations or ()) - OPERATIONS
    if unknown:
        raise ValueError(
            f"unknown backend operation(s) {', '.join(sorted(unknown))}: "
            f"choose from {', '.join(sorted(OPERATIONS))}"
        )


class FaultInjectingBackend(WrappingBackend):
    """A backend that fails, slows down or cuts off calls to ``inner``; see the module docstring."""

    @property
    def is_local(self) -> bool:
        """False with a latency: a drill with round trips stands for a remote store (it is cached)."""
        return self.inner.is_local and not self.latency_seconds

    def __init__(
        self,
        inner: Backend,
        *,
        transient_rate: float = 0.0,
        permanent_rate: float = 0.0,
        lost_response_rate: float = 0.0,
        latency_seconds: float = 0.0,
        cut_after: int | None = None,
        seed: int | None = None,
        operations: Collection[str] | None = None,
    ) -> None:
        check_fault_settings(
            transient_rate=transient_rate,
            permanent_rate=permanent_rate,
            lost_response_rate=lost_response_rate,
            latency_seconds=latency_seconds,
            cut_after=cut_after,
            operations=operations,
        )
        super().__init__(inner)
        self.transient_rate = transient_rate
        self.permanent_rate = permanent_rate
        self.lost_response_rate = lost_response_rate
        self.latency_seconds = latency_seconds
        self.operations = frozenset(operations) if operations is not None else OPERATIONS
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._cut_after = cut_after
        self._cut = False
        self._calls = 0
        self._injected: Counter[str] = Counter()

    # -- controls and counters ------------------------------------------------------------------

    @property
    def calls(self) -> int:
        """Calls subject to injection made so far (the count ``cut_after`` compares with)."""
        with self._lock:
            return self._calls

    @property
    def injected(self) -> dict[str, int]:
        """Faults injected so far: ``transient``, ``permanent``, ``lost_response``, ``cut``."""
        with self._lock:
            return {k: self._injected[k] for k in ("transient", "permanent", "lost_response", "cut")}

    @property
    def is_cut(self) -> bool:
        """True while the link is dead."""
        with self._lock:
            return self._cut

    def cut(self) -> None:
        """Kill the link now: every call fails until :meth:`restore`."""
        with self._lock:
            self._cut = True

    def restore(self, *, cut_after: int | None = None) -> None:
        """Bring the link back; ``cut_after`` arms a new cut that many calls from now."""
        with self._lock:
            self._cut = False
            self._cut_after = None if cut_after is None else self._calls + cut_after

    # -- the injection --------------------------------------------------------------------------

    def _call(self, operation: str, subject: str, action: Callable[[], T]) -> T:
        """Run ``action`` (the inner call) with the faults chosen for this call."""
        if operation not in self.operations:
            return action()
        with self._lock:
            self._calls += 1
            if self._cut_after is not None and self._calls > self._cut_after:
                self._cut = True
            cut = self._cut
            fault: str | None
            draw = self._random.random()
            lost = operation in WRITE_OPERATIONS and self._random.random() < self.lost_response_rate
            if cut:
                fault = "cut"
            elif draw < self.permanent_rate:
                fault = "permanent"
            elif draw < self.permanent_rate + self.transient_rate:
                fault = "transient"
            else:
                fault = "lost_response" if lost else None
            if fault is not None:
                self._injected[fault] += 1
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        where = f"{operation} '{subject}' at {self.location}" if subject else f"{operation} at {self.location}"
        if fault == "cut":
            raise BackendError(
                f"connection refused on {where} (injected: the link was cut; it stays down until restore())",
                retryable=True,
                key=subject or None,
            )
        if fault == "permanent":
            raise BackendError(
                f"access denied on {where} (injected permanent fault, as with revoked credentials): "
                "check the credentials and the bucket name, or remove the 'faults+' prefix from the location",
                retryable=False,
                key=subject or None,
            )
        if fault == "transient":
            raise BackendError(
                f"service unavailable (503) on {where} (injected transient fault): retry later",
                retryable=True,
                key=subject or None,
            )
        result = action()
        if fault == "lost_response":
            raise BackendError(
                f"connection reset after {where} was sent (injected lost response: the write landed)",
                retryable=True,
                key=subject or None,
            )
        return result

    # -- the Backend methods, each one call ----------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        self._call("put", key, lambda: self.inner.put(key, data))

    def get(self, key: str) -> bytes:
        return self._call("get", key, lambda: self.inner.get(key))

    def exists(self, key: str) -> bool:
        return self._call("exists", key, lambda: self.inner.exists(key))

    def delete(self, key: str) -> None:
        self._call("delete", key, lambda: self.inner.delete(key))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self._call("list", prefix, lambda: self.inner.list(prefix))

    def read_versioned(self, key: str) -> Versioned | None:
        return self._call("read_versioned", key, lambda: self.inner.read_versioned(key))

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        return self._call("put_if_version", key, lambda: self.inner.put_if_version(key, data, expected))

    def get_range(self, key: str, start: int, end: int) -> bytes:
        return self._call("get_range", key, lambda: self.inner.get_range(key, start, end))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        return self._call("put_if_absent", key, lambda: self.inner.put_if_absent(key, data))

    def compare_and_swap(self, key: str, expected: bytes | None, new: bytes) -> bool:
        return self._call("compare_and_swap", key, lambda: self.inner.compare_and_swap(key, expected, new))

    def stat(self, key: str) -> ObjectInfo:
        return self._call("stat", key, lambda: self.inner.stat(key))

    def touch(self, key: str) -> None:
        self._call("touch", key, lambda: self.inner.touch(key))

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = tuple(keys)
        return self._call("get_many", _batch_subject(wanted), lambda: self.inner.get_many(wanted))

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        wanted = tuple(keys)
        return self._call("exists_many", _batch_subject(wanted), lambda: self.inner.exists_many(wanted))

    def stat_many(self, keys: Iterable[str]) -> dict[str, ObjectInfo]:
        wanted = tuple(keys)
        return self._call("stat_many", _batch_subject(wanted), lambda: self.inner.stat_many(wanted))

    def delete_many(self, keys: Iterable[str]) -> None:
        wanted = tuple(keys)
        self._call("delete_many", _batch_subject(wanted), lambda: self.inner.delete_many(wanted))

    def delete_unchanged(self, infos: Iterable[ObjectInfo]) -> list[ObjectInfo]:
        wanted = tuple(infos)
        subject = _batch_subject(tuple(info.key for info in wanted))
        return self._call("delete_unchanged", subject, lambda: self.inner.delete_unchanged(wanted))

    def sweep_incomplete(self, older_than_seconds: float) -> int:
        # Maintenance, not a data path: never faulted.
        return self.inner.sweep_incomplete(older_than_seconds)

    def __repr__(self) -> str:
        return (
            f"FaultInjectingBackend({self.inner!r}, transient_rate={self.transient_rate}, "
            f"permanent_rate={self.permanent_rate}, lost_response_rate={self.lost_response_rate}, "
            f"latency_seconds={self.latency_seconds}, cut_after={self._cut_after})"
        )


def _batch_subject(keys: tuple[str, ...]) -> str:
    """How a batch call names its keys in a message: the first one and how many others."""
    if not keys:
        return ""
    return keys[0] if len(keys) == 1 else f"{keys[0]} (+{len(keys) - 1} more)"


class RequestCountingBackend(WrappingBackend):
    """Counts the calls made to ``inner`` per method name; see the module docstring."""

    def __init__(self, inner: Backend) -> None:
        super().__init__(inner)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._batched_keys = 0
        self._writes: Counter[str] = Counter()
        #: Bytes the reads (get, get_range, get_many) returned so far: what crossed the network.
        self.bytes_read = 0

    @property
    def counts(self) -> dict[str, int]:
        """Calls so far per method name (only methods that were called appear)."""
        with self._lock:
            return dict(self._counts)

    @property
    def total(self) -> int:
        """All calls so far."""
        with self._lock:
            return sum(self._counts.values())

    @property
    def listings(self) -> int:
        """Listing calls so far (the expensive, paginated kind)."""
        with self._lock:
            return self._counts["list"]

    @property
    def batched_keys(self) -> int:
        """Keys carried by batch calls so far."""
        with self._lock:
            return self._batched_keys

    @property
    def writes_per_key(self) -> dict[str, int]:
        """Successful and failed write calls so far per key (put, conditional puts, swaps)."""
        with self._lock:
            return dict(self._writes)

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._counts.clear()
            self._writes.clear()
            self._batched_keys = 0
            self.bytes_read = 0

    def _returned(self, data: bytes) -> bytes:
        with self._lock:
            self.bytes_read += len(data)
        return data

    def _count(self, method: str, key: str | None = None, batch: int = 0) -> None:
        with self._lock:
            self._counts[method] += 1
            self._batched_keys += batch
            if key is not None:
                self._writes[key] += 1

    def put(self, key: str, data: bytes) -> None:
        self._count("put", key)
        self.inner.put(key, data)

    def get(self, key: str) -> bytes:
        self._count("get")
        return self._returned(self.inner.get(key))

    def exists(self, key: str) -> bool:
        self._count("exists")
        return self.inner.exists(key)

    def delete(self, key: str) -> None:
        self._count("delete")
        self.inner.delete(key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._count("list")
        return self.inner.list(prefix)

    def read_versioned(self, key: str) -> Versioned | None:
        self._count("read_versioned")
        return self.inner.read_versioned(key)

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        self._count("put_if_version", key)
        return self.inner.put_if_version(key, data, expected)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        self._count("get_range")
        return self._returned(self.inner.get_range(key, start, end))

    def put_if_absent(self, key: str, data: bytes) -> bool:
        self._count("put_if_absent", key)
        return self.inner.put_if_absent(key, data)

    def compare_and_swap(self, key: str, expected: bytes | None, new: bytes) -> bool:
        self._count("compare_and_swap", key)
        return self.inner.compare_and_swap(key, expected, new)

    def stat(self, key: str) -> ObjectInfo:
        self._count("stat")
        return self.inner.stat(key)

    def touch(self, key: str) -> None:
        self._count("touch", key)
        self.inner.touch(key)

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        wanted = tuple(keys)
        self._count("get_many", batch=len(wanted))
        found = self.inner.get_many(wanted)
        with self._lock:
            self.bytes_read += sum(len(v) for v in found.values())
        return found

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        wanted = tuple(keys)
        self._count("exists_many", batch=len(wanted))
        return self.inner.exists_many(wanted)

    def stat_many(self, keys: Iterable[str]) -> dict[str, ObjectInfo]:
        wanted = tuple(keys)
        self._count("stat_many", batch=len(wanted))
        return self.inner.stat_many(wanted)

    def delete_many(self, keys: Iterable[str]) -> None:
        wanted = tuple(keys)
        self._count("delete_many", batch=len(wanted))
        self.inner.delete_many(wanted)

    def delete_unchanged(self, infos: Iterable[ObjectInfo]) -> list[ObjectInfo]:
        wanted = tuple(infos)
        self._count("delete_unchanged", batch=len(wanted))
        return self.inner.delete_unchanged(wanted)

    def sweep_incomplete(self, older_than_seconds: float) -> int:
        self._count("sweep_incomplete")
        return self.inner.sweep_incomplete(older_than_seconds)

    def __repr__(self) -> str:
        return f"RequestCountingBackend({self.inner!r})"


# -- options from a location query ----------------------------------------------------------------

#: ``faults+<location>?<name>=<value>&...`` option -> (constructor argument, parser, what it takes).
QUERY_OPTIONS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "transient": ("transient_rate", float, "a fraction between 0 and 1"),
    "permanent": ("permanent_rate", float, "a fraction between 0 and 1"),
    "lost_response": ("lost_response_rate", float, "a fraction between 0 and 1"),
    "latency": ("latency_seconds", float, "seconds, 0 or more"),
    "cut_after": ("cut_after", int, "a number of calls, 0 or more"),
    "seed": ("seed", int, "an integer"),
    "operations": (
        "operations",
        lambda text: frozenset(part.strip() for part in text.split(",") if part.strip()),
        "comma-separated backend method names",
    ),
}


def fault_options_from_query(pairs: Iterable[tuple[str, str]], location: str) -> dict[str, Any]:
    """Turn ``faults+`` query pairs into :class:`FaultInjectingBackend` keyword arguments.

    Every option is checked here, so a typo in a drill's location is a
    one-line :class:`ConfigError` naming the option and what it takes,
    not a drill that silently injects nothing.
    """
    options: dict[str, Any] = {}
    for name, text in pairs:
        known = QUERY_OPTIONS.get(name)
        if known is None:
            listed = ", ".join(QUERY_OPTIONS)
            raise ConfigError(f"unknown fault option '{name}' in '{location}': use {listed}")
        argument, parse, takes = known
        if argument in options:
            raise ConfigError(f"fault option '{name}' is given twice in '{location}'")
        try:
            options[argument] = parse(text)
        except ValueError:
            raise ConfigError(f"fault option {name}={text!r} in '{location}' is not {takes}") from None
    try:
        check_fault_settings(**options)
    except ValueError as exc:
        raise ConfigError(f"fault options in '{location}': {exc}") from None
    return options
