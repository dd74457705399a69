"""The RocksDB backend (``rocksdb:///path``), on rocksdict: one embedded database per store.

Layout: one column family (CF) per kind of key, so each gets settings that
fit it and a scan of one kind never reads another::

    chunks      chunks/<sha256>        large immutable values (BlobDB blob files)
    manifests   manifests/<sha256>     immutable values (BlobDB blob files)
    refs        refs/<db>/<version>    tiny, compare-and-swap
    state       state/<operation-id>   small, rewritten
    default     everything else (store.json, reductions/...)
    meta        every key -> size, modification time, version token

``meta`` is what :meth:`list` and :meth:`stat` read, so listing a million
chunks never reads their bytes. A value and its meta entry are always
written in one atomic ``WriteBatch``. Keys are stored whole (``chunks/ab..``)
in their CF.

Concurrency and durability:

* RocksDB lets one process open a database for writing (its ``LOCK`` file);
  a second writer gets a one-line :class:`BackendError` telling it to open
  the store read-only or stop the other process. ``read_only = true`` opens
  a point-in-time view that any number of processes may hold.
* Inside the process, writers of one key are serialised by a striped lock,
  which makes compare-and-swap exact: the version check and the batch that
  replaces the value happen under the same lock. Version tokens are a random
  64-bit id per write, so A -> B -> A is still seen as a change.
* Writes go to the write-ahead log. Writes to ``refs/``, ``state/`` and
  ``reductions/`` and every conditional write are synced; because the log is
  sequential, that sync also makes every earlier chunk write durable, which
  is exactly the "objects before the refs that point at them" order the
  store relies on. ``sync_all = true`` syncs every write.
* Bloom filters (``bloom_bits`` per key) make lookups of absent keys (the
  common case when deduplicating) skip disk reads; blocks are compressed
  with ``compression`` (lz4 by default) and the bottommost level with zstd.
"""

from __future__ import annotations

import os
import struct
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from rocksdict import (
    AccessType,
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from talaria_storage.core.errors import (
    BackendError,
    ConfigError,
    ObjectNotFound,
    PreconditionFailed,
)
from talaria_storage.core.keys import validate_key, validate_prefix
from talaria_storage.storage.backend import Backend, ObjectInfo, Versioned

from ._common import check_options

if TYPE_CHECKING:
    from talaria_storage.storage.registry import Location

_DATA_CFS = ("chunks", "manifests", "refs", "state")
_DEFAULT_CF = "default"
_META_CF = "meta"
_BLOB_CFS = ("chunks", "manifests")
_SYNCED_PREFIXES = ("refs/", "state/", "reductions/", "store.json")
_META = struct.Struct(">QQ8s")  # size, mtime in ns, write id (the version token)
_STRIPES = 64
_LIST_PAGE = 1000
_COMPRESSION = ("none", "lz4", "zstd", "snappy", "zlib", "lz4hc")
_DELETE_BATCH = 1000


def _cf_of(key: str) -> str:
    head = key.split("/", 1)[0]
    return head if head in _DATA_CFS and "/" in key else _DEFAULT_CF


def _upper_bound(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return None


def _compression(name: str) -> DBCompressionType:
    return getattr(DBCompressionType, name)()


class RocksDBBackend(Backend):
    """A store in one RocksDB database; see the module docstring for the layout and guarantees."""

    #: Every ``storage.toml`` option this backend accepts, with its type (checked by the config layer).
    OPTIONS: ClassVar[dict[str, type]] = {
        "read_only": bool,  # open a read-only view (another process may hold the writer lock)
        "create": bool,  # create the database when missing (default true)
        "bloom_bits": int,  # bloom filter bits per key (0 disables)
        "block_cache_mb": int,  # shared LRU block cache
        "compression": str,  # none | lz4 | zstd | snappy | zlib | lz4hc
        "blob_files": bool,  # keep chunk and manifest values in BlobDB blob files
        "min_blob_size_kb": int,  # values at least this big go to blob files
        "write_buffer_mb": int,  # memtable size per column family
        "sync_all": bool,  # fsync the log on every write, not only on refs and state
    }

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        create: bool = True,
        bloom_bits: int = 10,
        block_cache_mb: int = 256,
        compression: str = "lz4",
        blob_files: bool = True,
        min_blob_size_kb: int = 16,
        write_buffer_mb: int = 64,
        sync_all: bool = False,
    ) -> None:
        """Open (or create) the database at ``path``; see :attr:`OPTIONS` for the settings."""
        if compression not in _COMPRESSION:
            raise ConfigError(
                f"option compression = '{compression}' for rocksdb:// stores: use one of {', '.join(_COMPRESSION)}"
            )
        self.root = Path(path).expanduser().resolve()
        self.location = f"rocksdb://{self.root}"
        self.read_only = read_only
        self._sync_all = sync_all
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        self._db: Rdict | None = None
        self._handles: dict[str, Any] = {}
        self._views: dict[str, Rdict] = {}

        cache = Cache(max(1, block_cache_mb) * 1024 * 1024)

        def cf_options(name: str) -> Options:
            opts = Options(raw_mode=True)
            opts.create_if_missing(create)
            opts.create_missing_column_families(True)
            table = BlockBasedOptions()
            if bloom_bits > 0:
                table.set_bloom_filter(bloom_bits, False)
            table.set_block_cache(cache)
            table.set_cache_index_and_filter_blocks(True)
            opts.set_block_based_table_factory(table)
            opts.set_compression_type(_compression(compression))
            if compression != "none":
                opts.set_bottommost_compression_type(DBCompressionType.zstd())
            opts.set_write_buffer_size(max(1, write_buffer_mb) * 1024 * 1024)
            # One info log file: by default every open kept the last one (LOG.old.*, ~30 KB each).
            # No max_log_file_size: its rolling logger trims old logs inside DB::Open and fails
            # the open when a racing process deleted the same LOG.old first.
            opts.set_keep_log_file_num(1)
            opts.set_stats_dump_period_sec(0)
            if blob_files and name in _BLOB_CFS:
                # Large values in blob files keep the LSM tree small, so compaction
                # rewrites keys, not megabytes of chunk data. Chunks are already
                # compressed by their codec: the blob files are not compressed again.
                opts.set_enable_blob_files(True)
                opts.set_min_blob_size(max(1, min_blob_size_kb) * 1024)
                opts.set_enable_blob_gc(True)
            return opts

        names = [*_DATA_CFS, _META_CF]
        if not read_only and not create and not (self.root / "CURRENT").exists():
            raise BackendError(
                f"store {self.root} does not exist: create it (create = true) or fix the path"
            )
        if read_only and not (self.root / "CURRENT").exists():
            raise BackendError(
                f"store {self.root} does not exist: it cannot be opened read-only before a writer creates it"
            )
        if (self.root / "CURRENT").exists():
            try:
                existing = set(Rdict.list_cf(str(self.root))) - {_DEFAULT_CF}
            except Exception as exc:  # noqa: BLE001 - rocksdict raises bare Exception
                raise self._open_error(exc) from None
            missing = set(names) - existing
            if read_only and missing:
                raise BackendError(
                    f"store {self.root} is not a talaria RocksDB store (no column family "
                    f"'{min(missing)}'): open it once for writing to upgrade it, or fix the path"
                )
            # Open every CF the database has, including any a newer version added.
            names = sorted(set(names) | existing)
        families = {name: cf_options(name) for name in names}
        access = AccessType.read_only() if read_only else AccessType.read_write()
        if not read_only:
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._db = Rdict(
                str(self.root),
                options=cf_options(_DEFAULT_CF),
                column_families=families,
                access_type=access,
            )
        except Exception as exc:  # noqa: BLE001 - rocksdict raises bare Exception
            raise self._open_error(exc) from None
        for name in (*_DATA_CFS, _META_CF, _DEFAULT_CF):
            self._views[name] = self._db.get_column_family(name)
            self._handles[name] = self._db.get_column_family_handle(name)
        self._sync = WriteOptions()
        self._sync.sync = True

    def _open_error(self, exc: Exception) -> BackendError:
        text = str(exc)
        if "LOCK" in text and "current process" in text:
            return BackendError(
                f"store {self.root} is already open in this process: close the other handle first "
                "(or open it read-only with read_only=true)"
            )
        if "LOCK" in text or "Resource temporarily unavailable" in text:
            return BackendError(
                f"store {self.root} is open by another process "
                "(open it read-only with read_only=true, or stop the other process)"
            )
        if "No such file" in text or "does not exist" in text:
            return BackendError(f"store {self.root} does not exist: create it or fix the path")
        if "Permission denied" in text:
            return BackendError(
                f"permission denied for store {self.root}: check the folder's owner and mode"
            )
        return BackendError(
            f"cannot open RocksDB store {self.root}: {text.splitlines()[0] if text else exc!r}"
        )

    @classmethod
    def from_location(cls, location: Location, options: Mapping[str, Any]) -> RocksDBBackend:
        """Open ``rocksdb:///path`` with ``storage.toml`` options (see :attr:`OPTIONS`)."""
        return cls(location.path, **check_options("rocksdb", cls.OPTIONS, options))

    @property
    def is_local(self) -> bool:
        return True

    # -- plumbing -------------------------------------------------------------------------------

    def _live(self) -> Rdict:
        if self._db is None:
            raise BackendError(f"store {self.root} is closed: open it again", retryable=False)
        return self._db

    def _writable(self, key: str) -> Rdict:
        db = self._live()
        if self.read_only:
            raise BackendError(
                f"cannot write '{key}': store {self.root} is open read-only (open it without read_only=true)"
            )
        return db

    def _stripe(self, key: str) -> threading.Lock:
        return self._stripes[hash(key) % _STRIPES]

    def _error(self, exc: Exception, key: str | None) -> BackendError:
        text = (str(exc).splitlines() or [repr(exc)])[0]
        if "No space left" in text:
            return BackendError(
                f"no space left on device while writing '{key}' to {self.root}: free space and re-run"
            )
        retryable = "Busy" in text or "TryAgain" in text or "Timed out" in text
        where = f"'{key}' in " if key else ""
        return BackendError(
            f"RocksDB error on {where}store {self.root}: {text}", retryable=retryable, key=key
        )

    def _meta(self, key: str) -> tuple[int, int, bytes] | None:
        raw = self._views[_META_CF].get(key.encode())
        return None if raw is None else _META.unpack(raw)

    def _write(self, batch: WriteBatch, synced: bool, key: str | None) -> None:
        db = self._live()
        try:
            if synced or self._sync_all:
                db.write(batch, write_opt=self._sync)
            else:
                db.write(batch)
        except Exception as exc:  # noqa: BLE001 - rocksdict raises bare Exception
            raise self._error(exc, key) from None

    def _put_locked(self, key: str, data: bytes, synced: bool) -> str:
        """Write ``data`` and its meta entry atomically; the caller holds the key's stripe."""
        write_id = os.urandom(8)
        raw = key.encode()
        batch = WriteBatch(raw_mode=True)
        batch.put(raw, bytes(data), self._handles[_cf_of(key)])
        batch.put(raw, _META.pack(len(data), time.time_ns(), write_id), self._handles[_META_CF])
        self._write(batch, synced, key)
        return write_id.hex()

    # -- primitives -----------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        validate_key(key)
        self._writable(key)
        with self._stripe(key):
            self._put_locked(key, data, key.startswith(_SYNCED_PREFIXES))

    def get(self, key: str) -> bytes:
        validate_key(key)
        self._live()
        try:
            value = self._views[_cf_of(key)].get(key.encode())
        except Exception as exc:  # noqa: BLE001 - rocksdict raises bare Exception
            raise self._error(exc, key) from None
        if value is None:
            raise ObjectNotFound(key, self.location)
        return bytes(value)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"invalid range [{start}, {end}) for '{key}'")
        return self.get(key)[start:end]

    def exists(self, key: str) -> bool:
        validate_key(key)
        self._live()
        return self._views[_META_CF].get(key.encode()) is not None

    def stat(self, key: str) -> ObjectInfo:
        validate_key(key)
        self._live()
        meta = self._meta(key)
        if meta is None:
            raise ObjectNotFound(key, self.location)
        return ObjectInfo(key, meta[0], meta[1] / 1e9)

    def touch(self, key: str) -> None:
        validate_key(key)
        self._writable(key)
        with self._stripe(key):  # the meta entry only: same size and write id, a new mtime
            meta = self._meta(key)
            if meta is None:
                raise ObjectNotFound(key, self.location)
            batch = WriteBatch(raw_mode=True)
            batch.put(key.encode(), _META.pack(meta[0], time.time_ns(), meta[2]), self._handles[_META_CF])
            self._write(batch, key.startswith(_SYNCED_PREFIXES), key)

    def delete(self, key: str) -> None:
        validate_key(key)
        self._writable(key)
        raw = key.encode()
        with self._stripe(key):
            batch = WriteBatch(raw_mode=True)
            batch.delete(raw, self._handles[_cf_of(key)])
            batch.delete(raw, self._handles[_META_CF])
            self._write(batch, key.startswith(_SYNCED_PREFIXES), key)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        self._live()
        # Read in pages and drop each iterator before yielding: a live iterator pins
        # the database, and a caller that abandons this generator must not stop
        # close() from releasing the lock.
        start = prefix.encode()
        upper = _upper_bound(start)
        while True:
            page: list[ObjectInfo] = []
            read = ReadOptions()
            if upper is not None:
                read.set_iterate_upper_bound(upper)
            it = self._views[_META_CF].iter(read)
            try:
                it.seek(start)
                while it.valid() and len(page) < _LIST_PAGE:
                    size, mtime_ns, _ = _META.unpack(it.value())
                    page.append(ObjectInfo(bytes(it.key()).decode(), size, mtime_ns / 1e9))
                    it.next()
                more = it.valid()
            finally:
                del it
            yield from page
            if not more:
                return
            start = page[-1].key.encode() + b"\x00"

    def read_versioned(self, key: str) -> Versioned | None:
        validate_key(key)
        self._live()
        with self._stripe(key):  # value and meta from the same write
            meta = self._meta(key)
            if meta is None:
                return None
            value = self._views[_cf_of(key)].get(key.encode())
        if value is None:  # pragma: no cover - a batch always writes both
            return None
        return Versioned(bytes(value), meta[2].hex())

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        validate_key(key)
        self._writable(key)
        with self._stripe(key):
            meta = self._meta(key)
            current = None if meta is None else meta[2].hex()
            if current != expected:
                raise PreconditionFailed(
                    key, "it exists" if expected is None else "its version changed"
                )
            return self._put_locked(key, data, True)

    # -- batches --------------------------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        by_cf: dict[str, list[str]] = {}
        for key in keys:
            by_cf.setdefault(_cf_of(validate_key(key)), []).append(key)
        self._live()
        found: dict[str, bytes] = {}
        for cf, names in by_cf.items():
            values: list[Any] = self._views[cf].get([k.encode() for k in names]) or []
            found.update({k: bytes(v) for k, v in zip(names, values) if v is not None})
        return found

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        names = [validate_key(k) for k in keys]
        self._live()
        values: list[Any] = (
            (self._views[_META_CF].get([k.encode() for k in names]) or []) if names else []
        )
        return {k for k, v in zip(names, values) if v is not None}

    def delete_many(self, keys: Iterable[str]) -> None:
        names = [validate_key(k) for k in keys]
        if not names:
            return
        self._writable(names[0])
        for start in range(0, len(names), _DELETE_BATCH):
            chunk = names[start : start + _DELETE_BATCH]
            stripes = sorted({hash(k) % _STRIPES for k in chunk})
            with ExitStack() as held:
                for index in stripes:  # always in the same order: no deadlock
                    held.enter_context(self._stripes[index])
                batch = WriteBatch(raw_mode=True)
                for key in chunk:
                    batch.delete(key.encode(), self._handles[_cf_of(key)])
                    batch.delete(key.encode(), self._handles[_META_CF])
                self._write(batch, any(k.startswith(_SYNCED_PREFIXES) for k in chunk), None)

    def close(self) -> None:
        """Flush nothing extra (the log is durable as configured), drop handles, release the lock."""
        db, self._db = self._db, None
        if db is None:
            return
        # Column-family handles and views keep the database alive: drop them first.
        self._handles.clear()
        self._views.clear()
        try:
            db.close()
        except Exception as exc:  # noqa: BLE001 - rocksdict raises bare Exception
            raise self._error(exc, None) from None
