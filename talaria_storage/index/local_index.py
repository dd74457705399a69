"""ChunkIndex: the local, rebuildable lookup index (memory, SQLite or RocksDB).

The index is a cache of facts that are all derivable from the manifests and
chunks in the store: accession -> sequence, digest -> sequence, sequence ->
(chunk, position). It is never the source of truth, so it can be deleted and
rebuilt at any time (``talaria-storage index rebuild``), and readers that
find it stale rebuild it rather than trust it.

This module provides only an ordered bytes -> bytes map with prefix scans
and atomic batch writes; what the keys mean is decided by the sequence
database layer. Three implementations, chosen by ``[index] type``:

* ``memory`` - a dict, for tests and one-shot scripts;
* ``sqlite`` - one ``WITHOUT ROWID`` table in the standard library's sqlite3;
* ``rocksdb`` - ``rocksdict`` in raw mode with a bloom filter (the default:
  point look-ups in microseconds, batch loads of millions of keys a second).
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from talaria_storage.core.errors import ChunkIndexError, ConfigError

INDEX_TYPES = ("memory", "sqlite", "rocksdb")


class IndexBusy(ChunkIndexError):
    """The index folder is locked by another process (RocksDB admits one opener at a time)."""


def _prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key that starts with ``prefix`` (None: unbounded)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


class ChunkIndex(ABC):
    """An ordered bytes -> bytes map with prefix scans and atomic batches."""

    @abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` or None."""

    @abstractmethod
    def write_batch(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = ()) -> None:
        """Apply all puts and deletes atomically."""

    @abstractmethod
    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value) whose key starts with ``prefix``, in key order."""

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """Values of several keys, None where absent."""
        return [self.get(k) for k in keys]

    def delete_prefix(self, prefix: bytes) -> int:
        """Delete every key under ``prefix``; returns how many."""
        keys = [k for k, _ in self.scan(prefix)]
        self.write_batch((), keys)
        return len(keys)

    def close(self) -> None:
        """Flush and release the index."""


class MemoryIndex(ChunkIndex):
    """A dict plus a sorted key list for prefix scans (re-sorted lazily after writes).

    Index builds write in large batches and look-ups then scan many times, so
    one sort per batch and a binary search per scan beat scanning every key.
    """

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] | None = []
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def write_batch(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = ()) -> None:
        puts, deletes = list(puts), list(deletes)
        with self._lock:
            for k in deletes:
                self._data.pop(k, None)
            self._data.update(puts)
            self._sorted = None

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        with self._lock:
            if self._sorted is None:
                self._sorted = sorted(self._data)
            keys = self._sorted
            items = []
            for i in range(bisect.bisect_left(keys, prefix), len(keys)):
                if not keys[i].startswith(prefix):
                    break
                items.append((keys[i], self._data[keys[i]]))
        return iter(items)


class SqliteIndex(ChunkIndex):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
        except sqlite3.DatabaseError as exc:
            raise ChunkIndexError(f"index {path} is unreadable ({exc}): delete it and run 'talaria-storage index rebuild'") from exc
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def write_batch(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = ()) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany("DELETE FROM kv WHERE k = ?", ((k,) for k in deletes))
                self._db.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", puts)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        end = _prefix_end(prefix)
        with self._lock:
            if end is None:
                rows = self._db.execute("SELECT k, v FROM kv WHERE k >= ? ORDER BY k", (prefix,)).fetchall()
            else:
                rows = self._db.execute(
                    "SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k", (prefix, end)
                ).fetchall()
        return iter([(bytes(k), bytes(v)) for k, v in rows])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RocksIndex(ChunkIndex):
    def __init__(self, path: Path) -> None:
        from rocksdict import BlockBasedOptions, DBCompressionType, Options, Rdict

        path.parent.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        table = BlockBasedOptions()
        table.set_bloom_filter(10, False)
        options.set_block_based_table_factory(table)
        # zstd, not the default snappy: the pack hashes its values repeat compress (ResFinder's
        # table: 98.6 to 85.3 KB). RocksDB's info log is kept to one file: by default every
        # open kept the last one as LOG.old.* (~30 KB each, one more per command run). No
        # max_log_file_size: its rolling logger trims old logs inside the open, and an open
        # failed ("while unlink() file: LOG.old.*") when a racing process had deleted one first.
        # Without it, the holder of the lock trims them after opening, best effort.
        options.set_compression_type(DBCompressionType.zstd())
        options.set_keep_log_file_num(1)
        options.set_stats_dump_period_sec(0)
        try:
            self._db = Rdict(str(path), options=options)
        except Exception as exc:  # rocksdict raises plain Exception
            text = str(exc)
            if "lock" in text.lower():
                raise IndexBusy(
                    f"index {path} is open by another process (wait for it, or set [index] type = \"sqlite\")"
                ) from None
            raise ChunkIndexError(
                f"index {path} is unreadable ({text.splitlines()[0]}): delete it and run 'talaria-storage index rebuild'"
            ) from None
        self._closed = False

    def get(self, key: bytes) -> bytes | None:
        return self._db.get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return list(self._db.get(keys)) if keys else []

    def write_batch(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = ()) -> None:
        from rocksdict import WriteBatch

        batch = WriteBatch(raw_mode=True)
        for k in deletes:
            batch.delete(k)
        for k, v in puts:
            batch.put(k, v)
        self._db.write(batch)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        it = self._db.iter()
        it.seek(prefix)
        while it.valid():
            key = it.key()
            if not key.startswith(prefix):
                break
            yield key, it.value()
            it.next()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()


def open_index(kind: str, path: Path | None) -> ChunkIndex:
    """Open an index of ``kind`` (memory | sqlite | rocksdb) at ``path``."""
    if kind == "memory":
        return MemoryIndex()
    if path is None:
        raise ConfigError(f"[index] type = \"{kind}\" needs a folder for the index")
    if kind == "sqlite":
        return SqliteIndex(path / "index.sqlite")
    if kind == "rocksdb":
        return RocksIndex(path / "index.rocksdb")
    raise ConfigError(f"[index] type = \"{kind}\" is not known: use one of {', '.join(INDEX_TYPES)}")


class LazyIndex(ChunkIndex):
    """An index opened by ``opener`` on first use, then shared by every caller.

    A store hands one of these to each of its databases: commands that never
    look anything up (import, export, gc) then never open, lock or create the
    index on disk, and every database of the store shares the one handle
    (RocksDB admits one opener per process).
    """

    def __init__(self, opener: Callable[[], ChunkIndex]) -> None:
        self._opener = opener
        self._index: ChunkIndex | None = None
        self._lock = threading.Lock()

    @property
    def opened(self) -> bool:
        """True once the underlying index has been opened (and not closed)."""
        return self._index is not None

    @property
    def index(self) -> ChunkIndex:
        """The underlying index, opened now if it was not yet."""
        return self._open()

    def _open(self) -> ChunkIndex:
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    self._index = self._opener()
                index = self._index
        return index

    def get(self, key: bytes) -> bytes | None:
        return self._open().get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        return self._open().get_many(keys)

    def write_batch(self, puts: Iterable[tuple[bytes, bytes]], deletes: Iterable[bytes] = ()) -> None:
        self._open().write_batch(puts, deletes)

    def scan(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._open().scan(prefix)

    def delete_prefix(self, prefix: bytes) -> int:
        return self._open().delete_prefix(prefix)

    def close(self) -> None:
        """Close the underlying index if it was opened; a later use opens it again."""
        with self._lock:
            index, self._index = self._index, None
        if index is not None:
            index.close()
