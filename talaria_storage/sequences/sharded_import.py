"""One import run by a Dask cluster: workers parse, pack and store; the client merges and publishes once.

:meth:`SequenceDatabase.import_files` with an ``executor`` (a ``distributed.Client``,
see :mod:`talaria_storage.sequences.dask_cluster`) splits its input into
shards, the input files in order. Shard ``j`` is one task,
:func:`import_shard`, on some worker, which runs the import's own
:class:`~talaria_storage.sequences.importing.ImportRun` over the file with
the **cluster as its pool**: the worker reads and decompresses the file and
cuts it into pieces at record boundaries; the pieces are parsed by tasks
anywhere on the cluster (canonical SHA-256, dedup and look-up keys, taxa:
most of an import's CPU); the worker chunks and packs the records; the
chunks are encoded by tasks anywhere; the worker writes the objects
straight to the shared store and records them in the import's processing
state. It returns a :class:`ShardSummary`: the file's manifest entry, its
chunk entries, its look-up rows (about 50 bytes a record) and the
:class:`~.importing.ImportCarry` the next shard starts from. The client
merges the summaries, in order, into the ``ImportRun`` it holds, and
publishes once, by compare-and-swap, as a single-process import does.
Objects are content-addressed and idempotent, so a shard run twice (a
worker killed mid-shard, its task retried by Dask) writes the same objects
again, and the client takes one summary per shard.

**Byte-identical by construction.** A single-process import dedups across
its files through one window and numbers its packs across them, so shard
``j``'s objects depend on what the shards before it packed: the carry is
exactly that state (the dedup window, the pack numbering, the chunk entries
before it, the packs and dictionaries used), and the shard runs the same
code from it. So the manifest hash equals the single-process one, and the
shards run one after another, each spread over the whole cluster. What
stays on one worker per shard -- reading, cutting, chunking, packing,
writing -- bounds the speed; ``docs/distributed.md`` measures it and models
it for many hosts.

**Resumable.** After each shard the client keeps its summary, and the carry
that follows it, as notes of the import's processing state
(:meth:`~talaria_storage.storage.processing.ProcessingStates.put_note`),
the carry first, so a summary on record always has its carry. A re-run of
the same import with an executor merges the recorded summaries and
continues at the first shard without one. The notes are plain data (JSON
and arrays, never pickles: a shared bucket is no place for code).
"""

from __future__ import annotations

import json
import os
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.sequences.chunking import ChunkingPolicy
from talaria_storage.sequences.dask_cluster import cluster_pool
from talaria_storage.sequences.importing import (
    DEDUP_WINDOW,
    DictionaryBases,
    FileResult,
    ImportCarry,
    ImportRun,
    Labeller,
)
from talaria_storage.sequences.manifest import ChunkEntry, SourceFile, chunk_from_row, chunk_row
from talaria_storage.sequences.streams import ChunkCodec
from talaria_storage.sequences.worker_store import StoreAddress, worker_sequences, worker_store

if TYPE_CHECKING:
    from talaria_storage.storage.store import Store

EXECUTOR_NOTE = "executor"  # names what ran the import's first attempt (see check_executor)
SHARDED = b"dask"
SHARD_NOTE = "shard-{:06d}-{:06d}"  # first file, files
SHARD_AT = "shard-{:06d}-"  # the start of the name of the shard that begins at this file
CARRY_NOTE = "carry-{:06d}"  # the carry after this many files
#: Input bytes (on disk) from which a run of files is cut into a shard of its own. A shard is
#: one task and the unit a re-run resumes at; its files pipeline into each other on the cluster.
SHARD_BYTES = 256 << 20
_MAGIC = b"TSHD1"
_LENGTH = struct.Struct("<I")


class DictionaryReader(Protocol):
    """Gives a worker the reader of the previous version's chunks (:meth:`DictionaryBases.rebind`)."""

    def bind(self, store: Store) -> Callable[[bytes], tuple[bytes, ...]]: ...


@dataclass(frozen=True)
class ShardTask:
    """Everything a worker needs for any shard of one import (sent with every task)."""

    store: StoreAddress  # how the worker opens the store
    codec: ChunkCodec
    chunking: ChunkingPolicy
    threads: int
    operation_id: str
    label: Labeller
    header_taxa: bool
    fallback: int
    alphabet: str = "iupac"
    declared: re.Pattern[bytes] | None = None
    completed: frozenset[SHA256Hash] = frozenset()
    live: dict[bytes, int] = field(default_factory=dict)  # the packs live versions lend (StoredSequences.live)
    dictionary_bases: DictionaryBases | None = None
    dictionary_texts: DictionaryReader | None = None  # how a worker reads them from its store
    window: int = DEDUP_WINDOW


@dataclass
class ShardSummary:
    """What one shard's import hands the client: small next to the shard's objects."""

    files: list[FileResult]
    entries: list[ChunkEntry]
    fingerprints: np.ndarray
    places: np.ndarray
    sequences: np.ndarray
    new_chunks: int
    new_packs: int
    new_bytes: int
    carry: ImportCarry | None  # None when read back from a note (the carry is a note of its own)


# --------------------------------------------------------------------------- worker tasks


def import_shard(task: ShardTask, paths: list[str], first: int, carry: ImportCarry) -> ShardSummary:
    """Worker task: import one shard, files ``first``... of the import, continuing from ``carry``;
    its parse and encode tasks go to the whole cluster."""
    store = worker_store(task.store)
    stored = worker_sequences(task.store, task.live)
    if task.dictionary_bases is not None and task.dictionary_texts is not None:
        task.dictionary_bases.rebind(task.dictionary_texts.bind(store))
    with cluster_pool() as pool, ImportRun(
        store, task.codec, task.chunking, processes=pool.workers(), threads=task.threads, window=task.window,
        operation_id=task.operation_id, completed=task.completed, stored=stored,
        dictionary_bases=task.dictionary_bases, alphabet=task.alphabet, declared=task.declared,
        pool=pool,  # type: ignore[arg-type] - it has the one method ImportRun calls, submit
    ) as run:
        run.take(carry)
        results = run.import_files(paths, task.label, task.header_taxa, task.fallback, first_index=first)
        entries = run.finish()
        fingerprints, places, sequences = run.lookup.columns()
        return ShardSummary(
            results, entries, fingerprints, places, sequences, run.new_chunks, run.new_packs, run.new_bytes, run.carry()
        )


# --------------------------------------------------------------------------- client


def check_executor(store: Store, operation_id: str, *, sharded: bool, begun: bool) -> None:
    """Refuse to resume an import with another kind of executor than the one that began it.

    ``begun``: the import's state already records objects. The two kinds
    keep different bookkeeping -- a single-process run records objects only,
    a distributed one also its shard summaries -- so neither could continue
    the other's: each would redo the work and leave the other's notes behind.
    ``local:N`` and ``dask://`` are one kind (both run shards on Dask).
    """
    if not sharded and not begun:
        return  # nothing done yet that another kind could have begun (and no request to ask)
    began_sharded = store.states.note(operation_id, EXECUTOR_NOTE) == SHARDED
    if (begun or began_sharded) and began_sharded != sharded:
        before, now = ("a Dask executor", "without one") if began_sharded else ("no executor", "with a Dask executor")
        raise StorageError(
            f"this import was begun with {before} and is resumed {now}: re-run it as it began, or drop "
            f"its state with 'talaria-storage state clean --operation {operation_id}' to start over"
        )
    if sharded and not began_sharded:
        store.states.put_note(operation_id, EXECUTOR_NOTE, SHARDED)


def import_sharded(
    executor: Any,
    run: ImportRun,
    task: ShardTask,
    paths: Sequence[str],
    progress: Callable[[int], None] | None = None,
) -> list[FileResult]:
    """Import ``paths`` on ``executor`` (a ``distributed.Client``) into ``run``; the file results.

    ``run`` ends holding the merged chunk entries, look-up rows, counters
    and carry, as if it had imported the files itself.
    """
    states, op = run.store.states, task.operation_id
    notes = states.notes(op)
    results: list[FileResult] = []
    carry, position = ImportCarry(), 0
    finished: list[tuple[str, int]] = []  # (note, files after it) of the shards a killed run finished
    while True:
        name = next((n for n in notes if n.startswith(SHARD_AT.format(position))), None)
        if name is None or position + int(name.rsplit("-", 1)[1]) > len(paths):
            break
        position += int(name.rsplit("-", 1)[1])
        finished.append((name, position))
    while finished and CARRY_NOTE.format(finished[-1][1]) not in notes:
        finished.pop()  # killed between a summary and the next carry: that shard runs again
    position = finished[-1][1] if finished else 0
    for name, _ in finished:
        results += _merge(run, decode_summary(notes[name]))
    if finished:
        carry = decode_carry(notes[CARRY_NOTE.format(position)])
        run.take(carry, holds_entries=True)
    for first, count in plan_shards(paths, position):
        shard = [os.path.abspath(p) for p in paths[first : first + count]]  # workers have another cwd
        summary = _result(executor.submit(import_shard, task, shard, first, carry, pure=False), shard)
        assert summary.carry is not None  # a worker's summary has its carry
        states.put_note(op, CARRY_NOTE.format(first + count), encode_carry(summary.carry))
        states.put_note(op, SHARD_NOTE.format(first, count), encode_summary(summary))
        if first:
            states.delete_note(op, CARRY_NOTE.format(first))
        results += _merge(run, summary)
        carry = summary.carry
        run.take(carry, holds_entries=True)
        if progress is not None:
            progress(sum(f.source.size for f in summary.files))
    return results


def plan_shards(paths: Sequence[str], start: int = 0) -> list[tuple[int, int]]:
    """(first file, files) of each shard of ``paths[start:]``: runs of at least :data:`SHARD_BYTES`."""
    shards: list[tuple[int, int]] = []
    first, size = start, 0
    for index in range(start, len(paths)):
        size += os.path.getsize(paths[index])
        if size >= SHARD_BYTES:
            shards.append((first, index + 1 - first))
            first, size = index + 1, 0
    if first < len(paths):
        shards.append((first, len(paths) - first))
    return shards


def _result(future: Any, paths: list[str]) -> ShardSummary:
    """A shard's summary; a failure on the worker as one line naming the shard's files."""
    try:
        summary: ShardSummary = future.result()
    except StorageError:  # InputFormatError included: the worker's own, one line naming file and line
        raise
    except Exception as exc:  # noqa: BLE001 - Dask re-raises the worker's error (or KilledWorker) here
        where = paths[0] if len(paths) == 1 else f"{paths[0]} (and {len(paths) - 1} more files)"
        raise StorageError(f"the Dask import of {where} failed: {type(exc).__name__}: {exc}") from None
    return summary


def _merge(run: ImportRun, summary: ShardSummary) -> list[FileResult]:
    """Take one shard's summary into the client's import, in file order (its carry apart)."""
    run.entries.extend(summary.entries)
    run.lookup.add_columns(summary.fingerprints, summary.places, summary.sequences)
    run.new_chunks += summary.new_chunks
    run.new_packs += summary.new_packs
    run.new_bytes += summary.new_bytes
    return summary.files


# --------------------------------------------------------------------------- notes


def _pack(doc: dict[str, Any], blobs: Sequence[bytes]) -> bytes:
    """Magic, a JSON document that gives each blob's length, then the blobs."""
    doc = {**doc, "blobs": [len(b) for b in blobs]}
    head = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return _MAGIC + _LENGTH.pack(len(head)) + head + b"".join(blobs)


def _unpack(data: bytes) -> tuple[dict[str, Any], list[bytes]]:
    if not data.startswith(_MAGIC):
        raise StorageError("a shard note of this import is damaged: remove it with 'talaria-storage state clean --operation ID'")
    (length,) = _LENGTH.unpack_from(data, len(_MAGIC))
    start = len(_MAGIC) + _LENGTH.size
    doc = json.loads(data[start : start + length])
    blobs, offset = [], start + length
    for size in doc["blobs"]:
        blobs.append(data[offset : offset + size])
        offset += size
    return doc, blobs


def _window(generation: dict[bytes, int]) -> list[bytes]:
    return [b"".join(generation), np.fromiter(generation.values(), dtype=np.uint64, count=len(generation)).tobytes()]


def _unwindow(keys: bytes, locations: bytes) -> dict[bytes, int]:
    width = 16
    values = np.frombuffer(locations, dtype=np.uint64).tolist()
    return {keys[i * width : (i + 1) * width]: v for i, v in enumerate(values)}


def encode_carry(carry: ImportCarry) -> bytes:
    if any(len(k) != 16 for k in carry.current) or any(len(k) != 16 for k in carry.previous):
        raise StorageError("a dedup key is not 16 bytes (an import bug, please report it)")
    ordinals = sorted(carry.pack_digest)
    doc = {
        "entries": carry.entries, "packs": carry.packs, "reuse_recorded": carry.reuse_recorded,
        "reused_deep": carry.reused_deep,
    }
    blobs = [
        *_window(carry.current), *_window(carry.previous),
        b"".join(carry.reused), b"".join(carry.dictionary_used),
        np.array(ordinals, dtype=np.uint64).tobytes(), b"".join(carry.pack_digest[o] for o in ordinals),
    ]
    return _pack(doc, blobs)


def decode_carry(data: bytes) -> ImportCarry:
    doc, blobs = _unpack(data)
    current_keys, current_at, previous_keys, previous_at, reused, dictionaries, ordinals, digests = blobs
    return ImportCarry(
        entries=doc["entries"], packs=doc["packs"],
        current=_unwindow(current_keys, current_at), previous=_unwindow(previous_keys, previous_at),
        reused=_split32(reused), reuse_recorded=doc["reuse_recorded"],
        pack_digest=dict(zip(np.frombuffer(ordinals, dtype=np.uint64).tolist(), _split32(digests))),
        dictionary_used=dict.fromkeys(_split32(dictionaries)), reused_deep=doc["reused_deep"],
    )


def _split32(joined: bytes) -> list[bytes]:
    return [joined[i : i + 32] for i in range(0, len(joined), 32)]


def encode_summary(summary: ShardSummary) -> bytes:
    """A shard summary without its carry (that is a note of its own, see the module docstring)."""
    doc = {
        "files": [
            {"source": asdict(f.source), "order": f.order.to_hex(), "order_size": f.order_size,
             "logical": f.logical_bytes}
            for f in summary.files
        ],
        "entries": [chunk_row(e) for e in summary.entries],
        "counters": [summary.new_chunks, summary.new_packs, summary.new_bytes],
    }
    arrays = (summary.fingerprints, summary.places, summary.sequences)
    return _pack(doc, [np.ascontiguousarray(a, dtype=np.uint64).tobytes() for a in arrays])


def decode_summary(data: bytes) -> ShardSummary:
    doc, blobs = _unpack(data)
    fingerprints, places, sequences = (np.frombuffer(b, dtype=np.uint64) for b in blobs)
    files = [
        FileResult(SourceFile(**f["source"]), SHA256Hash.from_hex(f["order"]), f["order_size"], f["logical"])
        for f in doc["files"]
    ]
    new_chunks, new_packs, new_bytes = doc["counters"]
    return ShardSummary(
        files, [chunk_from_row(row) for row in doc["entries"]], fingerprints, places, sequences,
        new_chunks, new_packs, new_bytes, None,
    )


__all__ = [
    "ShardSummary",
    "ShardTask",
    "check_executor",
    "import_shard",
    "import_sharded",
    "plan_shards",
]
