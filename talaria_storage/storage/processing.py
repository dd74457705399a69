"""Processing state: the progress of resumable operations, kept in the store under ``state/``.

An import or a sync that is killed (SIGKILL, a lost link, a reboot) and
re-run must continue where it stopped: the objects it already wrote and
verified are recorded here, in the store itself, so the state survives the
process and moves with the store. Terms:

operation
    One run of an :class:`OperationType` (import, sync-push, ...) on one
    *identity*: the database, the operation, the target manifest hash (None
    when not known yet, as for an import) and version, and the source
    (``SourceInfo.source``, ``.version`` and ``.files``; ``.extra`` is
    carried along but is not part of the identity, so it may hold
    timestamps or counters).
operation id
    ``<operation>-<16 hex>-<8 hex>``: SHA-256 digests of the target identity
    and of the source identity. Deterministic, so a re-run with the same
    identity finds the state of the killed run; made only of characters a
    key may hold (:func:`talaria_storage.core.keys.validate_key`), and never
    containing a dot, so segment keys cannot be mistaken for headers.
    :meth:`ProcessingStates.find` lists ``state/<operation>-<16 hex>-`` to
    find a state without knowing its source.

Layout (every object written whole, never modified in place)::

    state/<id>          header: JSON with the identity, total_chunks, the
                        start time and a random 8-byte nonce; created
                        create-only by the first start; rewritten only when a
                        resumed start brings a different total_chunks
    state/<id>.<seq>    segment: hashes completed by one record_completed
                        call, created create-only (``put_if_absent``), so
                        concurrent writers of one state never overwrite each
                        other: a writer that loses a sequence number takes
                        the next one
    state/<id>.note-<name>
                        note: bytes an operation keeps for its own re-run
                        (a distributed import's finished shards), written
                        whole by :meth:`ProcessingStates.put_note`; removed
                        with the state

A segment is binary: ``b"TPS1"``, the header's nonce (8 bytes), the count
(4 bytes, big-endian), the 32-byte digests, and the SHA-256 of all of that
(32 bytes). A reader merges every segment whose checksum holds and whose
nonce matches the header. A segment that fails its checksum (torn by a
writer killed mid-put on a backend without atomic puts) is skipped with a
warning: losing it costs a little repeated work, never a wrong answer.
Segments with a foreign nonce are left over from an earlier run of the same
identity that was completed or expired while another process still wrote;
they are ignored, and removed when a new header is created.

Costs: :meth:`ProcessingStates.record_completed` writes one object of the
batch's size (32 bytes per hash) and reads nothing, so a killed
80-million-record import never rewrites a growing object. Reading a state
costs one listing plus one read per segment; a resumed start with more than
:data:`COMPACT_AFTER` segments merges them into one first (written before the
old ones are deleted, so a crash in between only leaves duplicates).

Completing a state deletes the header first (the state disappears at once
for every reader, so it no longer protects objects from GC), then its
segments. :meth:`ProcessingStates.live_objects` gives GC the manifest hashes
and completed objects of every unfinished state as extra roots.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from talaria_storage.core.errors import ObjectNotFound, StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import STATE, validate_name
from talaria_storage.core.types import OperationType, ProcessingState, SourceInfo
from talaria_storage.storage.backend import Backend, ObjectInfo

_log = logging.getLogger(__name__)

HEADER_FORMAT = "talaria-processing-state"
HEADER_FORMAT_VERSION = 1
SEGMENT_MAGIC = b"TPS1"
_NONCE_SIZE = 8
_SEGMENT_HEAD = struct.Struct(">4s8sI")  # magic, nonce, count
_DIGEST_SIZE = 32
#: Hashes per segment object (2 MiB of digests): a huge batch is split so no object is unwieldy.
MAX_SEGMENT_HASHES = 65536
#: A resumed start merges the segments of a state that has more than this many.
COMPACT_AFTER = 64
NOTE = "note-"  # the key segment that marks a note (a segment key is all digits)

_ID = re.compile(r"^(?P<operation>[a-z][a-z-]*?)-(?P<target>[0-9a-f]{16})-(?P<source>[0-9a-f]{8})$")


# -- identity -------------------------------------------------------------------------------------


def _digest(parts: list[Any]) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _target_digest(
    database: str, operation: OperationType, manifest_hash: SHA256Hash | None, manifest_version: str
) -> str:
    hex_hash = None if manifest_hash is None else manifest_hash.to_hex()
    return _digest(["target", database, operation.value, hex_hash, manifest_version])[:16]


def _source_digest(source: SourceInfo) -> str:
    files = [[name, int(size), sha] for name, size, sha in source.files]
    return _digest(["source", source.source, source.version, files])[:8]


def operation_id(
    operation: OperationType,
    source: SourceInfo,
    *,
    manifest_hash: SHA256Hash | None,
    manifest_version: str,
) -> str:
    """The deterministic id of an operation on this identity (see the module docstring)."""
    target = _target_digest(source.database, operation, manifest_hash, manifest_version)
    return f"{operation.value}-{target}-{_source_digest(source)}"


def _check_id(op_id: str) -> str:
    if not isinstance(op_id, str) or not _ID.match(op_id):
        raise StorageError(
            f"invalid operation id {op_id!r}: expected <operation>-<16 hex>-<8 hex>, as 'state list' shows"
        )
    return op_id


def _header_key(op_id: str) -> str:
    return STATE + op_id


def _segment_key(op_id: str, seq: int) -> str:
    return f"{STATE}{op_id}.{seq:08d}"


def _note_key(op_id: str, name: str) -> str:
    return f"{STATE}{op_id}.{NOTE}{name}"


def _split_key(key: str) -> tuple[str, int | None] | None:
    """``state/<id>`` -> (id, None); ``state/<id>.<seq>`` -> (id, seq); anything else -> None."""
    name = key[len(STATE):]
    op_id, dot, seq = name.partition(".")
    if not _ID.match(op_id):
        return None
    if not dot:
        return op_id, None
    return (op_id, int(seq)) if seq.isdigit() else None


# -- encoding -------------------------------------------------------------------------------------


def _encode_segment(nonce: bytes, digests: list[bytes]) -> bytes:
    body = _SEGMENT_HEAD.pack(SEGMENT_MAGIC, nonce, len(digests)) + b"".join(digests)
    return body + hashlib.sha256(body).digest()


def _decode_segment(data: bytes) -> tuple[bytes, list[bytes]]:
    """(nonce, raw 32-byte digests); ``ValueError`` when the object is torn or not a segment."""
    if len(data) < _SEGMENT_HEAD.size + _DIGEST_SIZE:
        raise ValueError(f"{len(data)} bytes is too short for a segment")
    body, checksum = data[:-_DIGEST_SIZE], data[-_DIGEST_SIZE:]
    if hashlib.sha256(body).digest() != checksum:
        raise ValueError("checksum mismatch (torn or corrupt write)")
    magic, nonce, count = _SEGMENT_HEAD.unpack_from(body)
    if magic != SEGMENT_MAGIC:
        raise ValueError(f"unknown segment format {magic!r}")
    digests = body[_SEGMENT_HEAD.size:]
    if len(digests) != count * _DIGEST_SIZE:
        raise ValueError(f"segment says {count} hashes but holds {len(digests)} bytes of them")
    return nonce, [digests[i : i + _DIGEST_SIZE] for i in range(0, len(digests), _DIGEST_SIZE)]


@dataclasses.dataclass(frozen=True, slots=True)
class _Header:
    """The parsed ``state/<id>`` object."""

    operation_id: str
    operation: OperationType
    manifest_hash: SHA256Hash | None
    manifest_version: str
    total_chunks: int
    source: SourceInfo
    started: float
    nonce: bytes

    def encode(self) -> bytes:
        source = self.source
        document = {
            "format": HEADER_FORMAT,
            "format_version": HEADER_FORMAT_VERSION,
            "operation_id": self.operation_id,
            "operation": self.operation.value,
            "database": source.database,
            "manifest_hash": None if self.manifest_hash is None else self.manifest_hash.to_hex(),
            "manifest_version": self.manifest_version,
            "total_chunks": self.total_chunks,
            "source": {
                "database": source.database,
                "source": source.source,
                "version": source.version,
                "files": [list(f) for f in source.files],
                "extra": source.extra,
            },
            "started": self.started,
            "nonce": self.nonce.hex(),
        }
        return json.dumps(document, sort_keys=True, default=str).encode() + b"\n"

    @classmethod
    def decode(cls, data: bytes) -> _Header:
        """Parse a header; ``ValueError`` (or ``KeyError``/``TypeError``) when it is not one."""
        doc = json.loads(data)
        if doc.get("format") != HEADER_FORMAT:
            raise ValueError(f"not a processing state (format {doc.get('format')!r})")
        if int(doc["format_version"]) > HEADER_FORMAT_VERSION:
            raise ValueError(
                f"written by a newer talaria-storage (state format {doc['format_version']}): upgrade"
            )
        src = doc["source"]
        manifest = doc["manifest_hash"]
        return cls(
            operation_id=_check_id(doc["operation_id"]),
            operation=OperationType(doc["operation"]),
            manifest_hash=None if manifest is None else SHA256Hash.from_hex(manifest),
            manifest_version=str(doc["manifest_version"]),
            total_chunks=int(doc["total_chunks"]),
            source=SourceInfo(
                database=str(src["database"]),
                source=str(src["source"]),
                version=str(src["version"]),
                files=tuple((str(n), int(s), str(h)) for n, s, h in src["files"]),
                extra=dict(src["extra"]),
            ),
            started=float(doc["started"]),
            nonce=bytes.fromhex(doc["nonce"]),
        )


@dataclasses.dataclass(slots=True)
class _Cursor:
    """What this process needs to append to a state: its nonce and the next free sequence number."""

    nonce: bytes
    next_seq: int


# -- the store of states --------------------------------------------------------------------------


class ProcessingStates:
    """Resumable-operation state kept in a store under state/ (survives process death).

    Safe to share between threads; several processes may work on states of
    one store at once (every write is create-only or idempotent). See the
    module docstring for the layout and costs.
    """

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self._cursors: dict[str, _Cursor] = {}

    # -- starting and finding ---------------------------------------------------------------------

    def start(
        self,
        operation: OperationType,
        source: SourceInfo,
        *,
        manifest_hash: SHA256Hash | None,
        manifest_version: str,
        total_chunks: int,
    ) -> ProcessingState:
        """Record a new operation, or resume the unfinished one with the same identity.

        Resuming returns the existing state with everything completed so far;
        a different ``total_chunks`` replaces the recorded one.
        """
        validate_name(source.database, "database name")
        if total_chunks < 0:
            raise ValueError(f"total_chunks must not be negative, got {total_chunks}")
        op_id = operation_id(operation, source, manifest_hash=manifest_hash, manifest_version=manifest_version)
        fresh = _Header(
            operation_id=op_id,
            operation=operation,
            manifest_hash=manifest_hash,
            manifest_version=manifest_version,
            total_chunks=total_chunks,
            source=source,
            started=time.time(),
            nonce=os.urandom(_NONCE_SIZE),
        )
        key = _header_key(op_id)
        header = self._read_header(op_id)
        if header is None:
            if not self.backend.put_if_absent(key, fresh.encode()):
                header = self._read_header(op_id)  # a concurrent starter won (or the header is unreadable)
                if header is None:
                    self.backend.put(key, fresh.encode())
            if header is None:
                header = fresh
                # Segments of an earlier run of this identity (completed while another process still
                # wrote, or under an unreadable header) carry a foreign nonce: remove them now.
                self.backend.delete_many(k for k, _ in self._segment_objects(op_id))
        elif not _same_identity(header, fresh):
            raise StorageError(
                f"processing state '{_header_key(op_id)}' in {self.backend.location} belongs to another "
                "operation (an id collision): remove it with 'talaria-storage state clean --all'"
            )
        if header.total_chunks != total_chunks:
            header = dataclasses.replace(header, total_chunks=total_chunks)
            self.backend.put(key, header.encode())
        return self._load(header)

    def find(
        self,
        database: str,
        operation: OperationType,
        manifest_hash: SHA256Hash | None,
        manifest_version: str,
    ) -> ProcessingState | None:
        """The unfinished state of this operation on this target (any source), or None.

        When several sources have one (rare: two different inputs for the
        same version), the most recently updated is returned.
        """
        prefix = f"{STATE}{operation.value}-{_target_digest(database, operation, manifest_hash, manifest_version)}-"
        found = [state for state in self._states(self.backend.list(prefix))]
        return max(found, key=lambda s: s.updated) if found else None

    def get(self, operation_id: str) -> ProcessingState | None:
        """The state ``operation_id``, or None when there is none (finished, expired or never started)."""
        _check_id(operation_id)
        listed = [info for info in self.backend.list(_header_key(operation_id)) if _owner(info.key) == operation_id]
        found = list(self._states(listed))
        return found[0] if found else None

    # -- progress ---------------------------------------------------------------------------------

    def record_completed(self, operation_id: str, hashes: Iterable[SHA256Hash]) -> None:
        """Add ``hashes`` to the state's completed set; durable when it returns.

        Writes one new segment object per call (per :data:`MAX_SEGMENT_HASHES`
        hashes) and reads nothing once the state is known to this instance.
        Raises :class:`StorageError` when the state does not exist.
        """
        batch = list(dict.fromkeys(h.digest for h in hashes))
        if batch:
            self._append(operation_id, self._cursor(operation_id), batch)

    def _append(self, operation_id: str, cursor: _Cursor, digests: list[bytes]) -> None:
        """Write ``digests`` as new segments, each create-only under the next free sequence number."""
        for start in range(0, len(digests), MAX_SEGMENT_HASHES):
            blob = _encode_segment(cursor.nonce, digests[start : start + MAX_SEGMENT_HASHES])
            while True:
                with self._lock:
                    seq = cursor.next_seq
                    cursor.next_seq += 1
                if self.backend.put_if_absent(_segment_key(operation_id, seq), blob):
                    break
                # Another writer (a second process on the same state) took this number: take the next.

    def complete(self, operation_id: str) -> None:
        """Finish the operation: remove its header, then every segment. Completing twice is harmless."""
        _check_id(operation_id)
        with self._lock:
            self._cursors.pop(operation_id, None)
        self.backend.delete(_header_key(operation_id))
        # One listing gives its segments and its notes.
        self.backend.delete_many(
            info.key for info in self.backend.list(f"{STATE}{operation_id}.") if _owner(info.key) == operation_id
        )

    def put_note(self, operation_id: str, name: str, data: bytes) -> None:
        """Keep ``data`` under ``name`` with the state, for the operation's own re-run; replaces a note
        of that name. Names are key segments (letters, digits, ``._-``)."""
        self.backend.put(_note_key(_check_id(operation_id), name), data)

    def note(self, operation_id: str, name: str) -> bytes | None:
        """The note ``name`` of the state, or None."""
        try:
            return self.backend.get(_note_key(_check_id(operation_id), name))
        except ObjectNotFound:
            return None

    def delete_note(self, operation_id: str, name: str) -> None:
        self.backend.delete(_note_key(_check_id(operation_id), name))

    def notes(self, operation_id: str) -> dict[str, bytes]:
        """Every note of the state, by name (empty for an unknown or finished state)."""
        prefix = _note_key(_check_id(operation_id), "")
        found = self.backend.get_many(info.key for info in self.backend.list(prefix))
        return {key[len(prefix):]: data for key, data in found.items()}

    def expire(self, older_than_seconds: float) -> list[str]:
        """Remove the states not updated for ``older_than_seconds`` (all of them when <= 0); returns their ids.

        "Updated" is the newest modification time of the state's objects, as
        the backend reports it. Leftover segments with no header are removed
        by the same rule.
        """
        now = time.time()
        groups: dict[str, list[ObjectInfo]] = {}
        for info in self.backend.list(STATE):
            owner = _owner(info.key)
            if owner is not None:
                groups.setdefault(owner, []).append(info)
        removed: list[str] = []
        for op_id, objects in sorted(groups.items()):
            updated = max(info.modified for info in objects)
            if older_than_seconds > 0 and now - updated <= older_than_seconds:
                continue
            with self._lock:
                self._cursors.pop(op_id, None)
            header = _header_key(op_id)
            self.backend.delete(header)
            self.backend.delete_many(info.key for info in objects if info.key != header)
            if any(info.key == header for info in objects):
                removed.append(op_id)
        return removed

    def live_objects(self) -> set[SHA256Hash]:
        """Manifest hashes and completed objects of every unfinished state: extra GC roots."""
        live: set[SHA256Hash] = set()
        for state in self.list():
            if state.manifest_hash is not None:
                live.add(state.manifest_hash)
            live.update(state.completed_chunks)
        return live

    def compact(self, operation_id: str) -> int:
        """Merge the state's segments into as few as possible; returns how many objects were removed."""
        header = self._read_header(_check_id(operation_id))
        if header is None:
            return 0
        segments = self._segment_objects(operation_id)
        self._remember(header, segments)
        return self._compact(header, segments, self._merge(header, segments))

    def _compact(self, header: _Header, segments: list[tuple[str, ObjectInfo]], digests: set[bytes]) -> int:
        """Rewrite ``segments`` (already merged into ``digests``) as few new ones, then delete them.

        The new segments are written before the old are deleted, so a crash in
        between leaves duplicates, never a loss.
        """
        if len(segments) <= 1:
            return 0
        with self._lock:
            cursor = self._cursors[header.operation_id]
        self._append(header.operation_id, cursor, sorted(digests))
        self.backend.delete_many(key for key, _ in segments)
        return len(segments)

    # -- reading ----------------------------------------------------------------------------------

    def _read_header(self, op_id: str) -> _Header | None:
        key = _header_key(op_id)
        try:
            data = self.backend.get(key)
        except ObjectNotFound:
            return None
        try:
            return _Header.decode(data)
        except (ValueError, KeyError, TypeError) as exc:
            _log.warning("ignoring unreadable processing state '%s' in %s: %s", key, self.backend.location, exc)
            return None

    def _segment_objects(self, op_id: str) -> list[tuple[str, ObjectInfo]]:
        """(key, info) of every segment of ``op_id``, in sequence order."""
        found = []
        for info in self.backend.list(f"{STATE}{op_id}."):
            parts = _split_key(info.key)
            if parts is not None and parts[0] == op_id and parts[1] is not None:
                found.append((parts[1], info.key, info))
        return [(key, info) for _, key, info in sorted(found)]

    def _merge(self, header: _Header, segments: list[tuple[str, ObjectInfo]]) -> set[bytes]:
        """The union of the digests of every sound segment with the header's nonce."""
        blobs = self.backend.get_many(key for key, _ in segments)
        completed: set[bytes] = set()
        for key, _ in segments:
            data = blobs.get(key)
            if data is None:
                continue  # deleted meanwhile (a concurrent compact or complete)
            try:
                nonce, hashes = _decode_segment(data)
            except ValueError as exc:
                _log.warning(
                    "skipping processing-state segment '%s' in %s: %s; the work it recorded will be redone",
                    key,
                    self.backend.location,
                    exc,
                )
                continue
            if nonce == header.nonce:
                completed.update(hashes)
        return completed

    def _load(self, header: _Header) -> ProcessingState:
        """The full state of ``header``: merge its segments (compacting many) and remember its cursor."""
        op_id = header.operation_id
        segments = self._segment_objects(op_id)
        completed = self._merge(header, segments)
        self._remember(header, segments)
        if len(segments) > COMPACT_AFTER:
            self._compact(header, segments, completed)
        updated = max([header.started, *(info.modified for _, info in segments)])
        return _state(header, completed, updated)

    def _states(self, listed: Iterable[ObjectInfo]) -> Iterator[ProcessingState]:
        """The states whose headers appear in ``listed`` (with their segments from the same listing)."""
        groups: dict[str, list[ObjectInfo]] = {}
        for info in listed:
            owner = _owner(info.key)
            if owner is not None:
                groups.setdefault(owner, []).append(info)
        for op_id, objects in sorted(groups.items()):
            header_key = _header_key(op_id)
            header_info = next((info for info in objects if info.key == header_key), None)
            if header_info is None:
                continue  # leftover segments of a finished state: expire removes them
            header = self._read_header(op_id)
            if header is None:
                continue
            segments = sorted(
                (_split_key(info.key)[1], info.key, info)  # type: ignore[index]
                for info in objects
                if info.key != header_key and _split_key(info.key) is not None
            )
            pairs = [(key, info) for _, key, info in segments]
            completed = self._merge(header, pairs)
            self._remember(header, pairs)
            updated = max(info.modified for info in objects)
            yield _state(header, completed, updated)

    def _remember(self, header: _Header, segments: list[tuple[str, ObjectInfo]]) -> None:
        last = max((_split_key(key)[1] or 0 for key, _ in segments), default=-1)  # type: ignore[index]
        with self._lock:
            cursor = self._cursors.get(header.operation_id)
            if cursor is None or cursor.nonce != header.nonce:
                self._cursors[header.operation_id] = _Cursor(header.nonce, last + 1)
            else:
                cursor.next_seq = max(cursor.next_seq, last + 1)

    def _cursor(self, op_id: str) -> _Cursor:
        _check_id(op_id)
        with self._lock:
            cursor = self._cursors.get(op_id)
        if cursor is not None:
            return cursor
        header = self._read_header(op_id)
        if header is None:
            raise StorageError(
                f"no processing state '{op_id}' in {self.backend.location}: it was completed or "
                "expired; start the operation again"
            )
        self._remember(header, self._segment_objects(op_id))
        with self._lock:
            return self._cursors[op_id]

    # Defined last: inside the class body, ``list`` names this method from here on.
    def list(self) -> list[ProcessingState]:
        """Every unfinished state in the store, oldest first."""
        return sorted(self._states(self.backend.list(STATE)), key=lambda s: (s.started, s.operation_id))

    def __repr__(self) -> str:
        return f"ProcessingStates({self.backend.location!r})"


def _owner(key: str) -> str | None:
    """The operation id a ``state/`` key belongs to (header, segment or note), or None for a foreign key."""
    if not key.startswith(STATE):
        return None
    op_id, _, rest = key[len(STATE):].partition(".")
    if rest.startswith(NOTE) and _ID.match(op_id):
        return op_id
    parts = _split_key(key)
    return None if parts is None else parts[0]


def _same_identity(a: _Header, b: _Header) -> bool:
    return (
        a.operation == b.operation
        and a.source.database == b.source.database
        and a.manifest_hash == b.manifest_hash
        and a.manifest_version == b.manifest_version
        and _source_digest(a.source) == _source_digest(b.source)
    )


def _state(header: _Header, completed: set[bytes], updated: float) -> ProcessingState:
    return ProcessingState(
        operation_id=header.operation_id,
        operation=header.operation,
        database=header.source.database,
        manifest_hash=header.manifest_hash,
        manifest_version=header.manifest_version,
        total_chunks=header.total_chunks,
        completed_chunks=frozenset(SHA256Hash(d) for d in completed),
        source_info=header.source,
        started=header.started,
        updated=updated,
    )
