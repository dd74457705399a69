"""One import run by a Dask cluster: workers parse, pack and store; the client merges and publishes once.

:meth:`SequenceDatabase.import_files` with an ``executor`` (a ``distributed.Client``,
see :mod:`talaria_storage.sequences.dask_cluster`) splits its input into
shards, the input files in order: runs of whole files, and each segment of
a plain FASTA file larger than a segment
(:data:`~talaria_storage.sequences.importing.SEGMENT_BYTES`, 256 MB), a byte
range cut at a record boundary. Shard ``j`` is one task,
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

**A large file in byte ranges.** A single-process import chunks a large
plain FASTA file in segments too (a new chunker at each), so a segment's
chunks depend only on its bytes and on the carry: a worker seeks to the
segment, imports it, and returns the runs of its records' order, its
record count and the line the next segment starts at (a :class:`FilePart`).
The client joins the parts' runs into the file's order object once its last
segment is in, and takes the file's SHA-256 from a thread of its own that
reads the file while the shards run (no worker reads the whole file).

**Resumable.** After each shard the client keeps its summary, and the carry
that follows it, as notes of the import's processing state
(:meth:`~talaria_storage.storage.processing.ProcessingStates.put_note`),
the carry first, so a summary on record always has its carry. A re-run of
the same import with an executor merges the recorded summaries and
continues at the first shard without one. The notes are plain data (JSON
and arrays, never pickles: a shared bucket is no place for code).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from talaria_storage.core.errors import StorageError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.lazy_module import LazyModule
from talaria_storage.formats.fasta import segment_starts
from talaria_storage.sequences.chunking import ChunkingPolicy
from talaria_storage.sequences.dask_cluster import cluster_pool
from talaria_storage.sequences.importing import (
    DEDUP_WINDOW,
    SEGMENT_BYTES,
    DictionaryBases,
    FilePart,
    FileRead,
    FileResult,
    FileSpan,
    ImportCarry,
    ImportRun,
    Labeller,
)
from talaria_storage.sequences.manifest import ChunkEntry, SourceFile, chunk_from_row, chunk_row
from talaria_storage.sequences.streams import ChunkCodec
from talaria_storage.sequences.worker_store import StoreAddress, worker_sequences, worker_store

if TYPE_CHECKING:
    import numpy as np

    from talaria_storage.storage.store import Store
else:
    np = LazyModule("numpy")  # imported on first use: a look-up never needs it (core.lazy_module)

EXECUTOR_NOTE = "executor"  # names what ran the import's first attempt (see check_executor)
SHARDED = b"dask"
CARRY_NOTE = "carry-{}"  # the carry after the shard of this name
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
    segment_bytes: int = SEGMENT_BYTES  # the client's: its plan and the workers' chunking agree


@dataclass(frozen=True)
class Shard:
    """One task of the plan: files ``first`` to ``first + count - 1`` whole, or (``span``) one
    segment of file ``first``; ``last``: that segment ends the file."""

    first: int
    count: int = 1
    segment: int | None = None
    span: FileSpan | None = None  # its line is filled in when the shard is sent
    last: bool = False

    @property
    def name(self) -> str:
        """Its notes' name: ``shard-<first file>-<files>`` or ``shard-<file>.<segment>``."""
        if self.segment is None:
            return f"shard-{self.first:06d}-{self.count:06d}"
        return f"shard-{self.first:06d}.{self.segment:06d}"

    @property
    def size(self) -> int:
        """Its input bytes, for the progress bar (whole files are counted by their results)."""
        return self.span.end - self.span.start if self.span is not None else 0


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
    part: FilePart | None = None  # a segment shard's part of its file


# --------------------------------------------------------------------------- worker tasks


def import_shard(
    task: ShardTask, paths: list[str], first: int, carry: ImportCarry, span: FileSpan | None = None
) -> ShardSummary:
    """Worker task: import one shard, files ``first``... of the import (or ``span`` of that one
    file), continuing from ``carry``; its parse and encode tasks go to the whole cluster."""
    store = worker_store(task.store)
    stored = worker_sequences(task.store, task.live)
    if task.dictionary_bases is not None and task.dictionary_texts is not None:
        task.dictionary_bases.rebind(task.dictionary_texts.bind(store))
    with cluster_pool() as pool, ImportRun(
        store, task.codec, task.chunking, processes=pool.workers(), threads=task.threads, window=task.window,
        operation_id=task.operation_id, completed=task.completed, stored=stored,
        dictionary_bases=task.dictionary_bases, alphabet=task.alphabet, declared=task.declared,
        pool=pool,  # type: ignore[arg-type] - it has the one method ImportRun calls, submit
        segment_bytes=task.segment_bytes,
    ) as run:
        run.take(carry)
        results = run.import_files(paths, task.label, task.header_taxa, task.fallback, first_index=first, span=span)
        entries = run.finish()
        fingerprints, places, sequences = run.lookup.columns()
        return ShardSummary(
            results, entries, fingerprints, places, sequences, run.new_chunks, run.new_packs, run.new_bytes,
            run.carry(), run.part,
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
    plan = plan_shards(paths, task.segment_bytes)
    done = 0  # shards a killed run finished: each has its summary, and the carry after it
    while done < len(plan) and plan[done].name in notes:
        done += 1
    while done and CARRY_NOTE.format(plan[done - 1].name) not in notes:
        done -= 1  # killed between a summary and the next carry: that shard runs again
    files = _SplitFiles(run, paths, plan)
    try:
        results: list[FileResult] = []
        carry = ImportCarry()
        for shard in plan[:done]:
            results += files.merge(shard, decode_summary(notes[shard.name]))
        if done:
            carry = decode_carry(notes[CARRY_NOTE.format(plan[done - 1].name)])
            run.take(carry, holds_entries=True)
        for index, shard in enumerate(plan[done:], done):
            shard_paths = [os.path.abspath(p) for p in paths[shard.first : shard.first + shard.count]]  # workers have another cwd
            span = files.span(shard)
            summary = _result(
                executor.submit(import_shard, task, shard_paths, shard.first, carry, span, pure=False), shard_paths
            )
            assert summary.carry is not None  # a worker's summary has its carry
            states.put_note(op, CARRY_NOTE.format(shard.name), encode_carry(summary.carry))
            states.put_note(op, shard.name, encode_summary(summary))
            if index:
                states.delete_note(op, CARRY_NOTE.format(plan[index - 1].name))
            results += files.merge(shard, summary)
            carry = summary.carry
            run.take(carry, holds_entries=True)
            if progress is not None:
                progress(shard.size or sum(f.source.size for f in summary.files))
        return results
    finally:
        files.close()


class _SplitFiles:
    """The client's side of the files cut into segment shards: the parts merged so far, and
    each file's SHA-256, read by a thread of the client while the shards run."""

    def __init__(self, run: ImportRun, paths: Sequence[str], plan: Sequence[Shard]) -> None:
        self.run = run
        self.paths = paths
        self.parts: dict[int, list[FilePart]] = {}
        split = sorted({shard.first for shard in plan if shard.segment is not None})
        self._hasher = ThreadPoolExecutor(1, thread_name_prefix="talaria-sha256") if split else None
        self._sha256 = {i: self._hasher.submit(_sha256_of, paths[i]) for i in split} if self._hasher else {}

    def span(self, shard: Shard) -> FileSpan | None:
        """The shard's byte range, starting at the line after its file's earlier parts."""
        if shard.span is None:
            return None
        earlier = self.parts.get(shard.first, [])
        return FileSpan(shard.span.start, shard.span.end, earlier[-1].next_line if earlier else 1)

    def merge(self, shard: Shard, summary: ShardSummary) -> list[FileResult]:
        """Take one shard's summary into the client's import, in file order (its carry apart):
        the files it completed."""
        _merge(self.run, summary)
        if summary.part is None:
            return summary.files
        parts = self.parts.setdefault(shard.first, [])
        parts.append(summary.part)
        if not shard.last:
            return []
        path = self.paths[shard.first]
        size = os.path.getsize(path)
        read = FileRead(path, shard.first, "fasta", size, self._sha256[shard.first].result(), size)
        runs = [r for part in parts for r in part.runs]
        return [self.run.end_file(read, runs, sum(part.records for part in parts))]

    def close(self) -> None:
        if self._hasher is not None:
            self._hasher.shutdown(wait=False, cancel_futures=True)


def _sha256_of(path: str) -> str:
    """A file's SHA-256 (hashlib releases the GIL while it hashes a block)."""
    sha = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(4 << 20):
            sha.update(block)
    return sha.hexdigest()


def plan_shards(paths: Sequence[str], segment_bytes: int = SEGMENT_BYTES) -> list[Shard]:
    """The shards of ``paths``: runs of whole files of at least :data:`SHARD_BYTES`, and each
    segment of a file of several (:func:`~talaria_storage.formats.fasta.segment_starts`)."""
    shards: list[Shard] = []
    first, size = 0, 0
    for index, path in enumerate(paths):
        starts = segment_starts(path, segment_bytes)
        if len(starts) > 1:
            if first < index:
                shards.append(Shard(first, index - first))
            ends = [*starts[1:], os.path.getsize(path)]
            shards += [
                Shard(index, 1, k, FileSpan(a, b, 0), last=k == len(starts) - 1)
                for k, (a, b) in enumerate(zip(starts, ends))
            ]
            first, size = index + 1, 0
            continue
        size += os.path.getsize(path)
        if size >= SHARD_BYTES:
            shards.append(Shard(first, index + 1 - first))
            first, size = index + 1, 0
    if first < len(paths):
        shards.append(Shard(first, len(paths) - first))
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
    part = summary.part
    runs = np.zeros(0, dtype=np.uint64)
    if part is not None:
        doc["part"] = {"index": part.index, "records": part.records, "next_line": part.next_line}
        runs = np.array(part.runs, dtype=np.uint64).reshape(-1)
    arrays = (summary.fingerprints, summary.places, summary.sequences, runs)
    return _pack(doc, [np.ascontiguousarray(a, dtype=np.uint64).tobytes() for a in arrays])


def decode_summary(data: bytes) -> ShardSummary:
    doc, blobs = _unpack(data)
    fingerprints, places, sequences, runs = (np.frombuffer(b, dtype=np.uint64) for b in blobs)
    files = [
        FileResult(SourceFile(**f["source"]), SHA256Hash.from_hex(f["order"]), f["order_size"], f["logical"])
        for f in doc["files"]
    ]
    new_chunks, new_packs, new_bytes = doc["counters"]
    part = None
    if "part" in doc:
        flat = runs.tolist()
        part = FilePart(
            doc["part"]["index"], [tuple(flat[i : i + 3]) for i in range(0, len(flat), 3)],  # type: ignore[misc]
            doc["part"]["records"], doc["part"]["next_line"],
        )
    return ShardSummary(
        files, [chunk_from_row(row) for row in doc["entries"]], fingerprints, places, sequences,
        new_chunks, new_packs, new_bytes, None, part,
    )


__all__ = [
    "Shard",
    "ShardSummary",
    "ShardTask",
    "check_executor",
    "import_shard",
    "import_sharded",
    "plan_shards",
]
