"""talaria-storage: content-addressed storage for biological sequence databases.

Glossary (the words every module uses):

chunk
    An immutable blob named by the SHA-256 of its uncompressed bytes, stored once
    however often it is written (``chunks/<sha256>``), inside a self-describing
    codec frame.
manifest
    A content-addressed description of one version of a database: its source
    files, chunks, taxa and a Merkle root (``manifests/<sha256>``).
ref
    A mutable name for a manifest hash (``refs/<db>/<version>``, ``refs/<db>/HEAD``),
    moved only by compare-and-swap, always after the objects it points at.
delta
    A sequence stored as an edit script against a similar reference sequence.
reduction
    A named profile of references and deltas that expands back to every original
    sequence byte for byte (``reductions/<profile>``).
taxon
    An NCBI Taxonomy id; a taxdump stored in the store gives lineages, so a query
    for a taxon can include its descendants.

Layers (each talks only to the one below): CLI / batch jobs / Python API ->
sequence databases -> traits and index -> content-addressed chunk store ->
Backend (filesystem, rocksdb, memory, s3, gcs, azure).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from talaria_storage.errors import (
    BackendError,
    ChunkIndexError,
    ChunkNotFound,
    CompressionError,
    ConfigError,
    HashMismatch,
    InputFormatError,
    StorageError,
)
from talaria_storage.hashing import SHA256Hash
from talaria_storage.store import Store

if TYPE_CHECKING:
    from talaria_storage.config import StorageConfig

__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ChunkIndexError",
    "ChunkNotFound",
    "CompressionError",
    "ConfigError",
    "HashMismatch",
    "InputFormatError",
    "SHA256Hash",
    "Store",
    "StorageError",
    "open_store",
]


def open_store(
    location_or_config: "str | Path | StorageConfig | None" = None,
    *,
    config_path: str | Path | None = None,
    create: bool = True,
    **overrides: Any,
) -> Store:
    """Open (and by default create) the store a location, a config file or a config object names.

    ``location_or_config`` may be a path or URL (``./store``, ``s3://bucket/db``),
    a :class:`StorageConfig`, a path to a ``.toml`` file, or None for the
    configured default (``TALARIA_STORAGE_DIR`` or ``~/.talaria/storage``).
    ``overrides`` are config keys of ``[storage]`` (``compression``,
    ``compression_level``, ``threads``...) and win over the environment and
    the file. With ``create=False`` a location with no store is an error.
    """
    from talaria_storage.codecs import codec_from_config
    from talaria_storage.config import StorageConfig, config_for_location, load_config
    from talaria_storage.registry import open_backend, split_faults, with_faults

    faults = None  # a "faults+<location>?..." drill wraps the backend; the config sees <location>
    if isinstance(location_or_config, str):
        location_or_config, faults = split_faults(location_or_config)
    if isinstance(location_or_config, StorageConfig):
        config = location_or_config
    elif location_or_config is None:
        config = load_config(config_path, **overrides)
    elif str(location_or_config).endswith(".toml") and Path(location_or_config).is_file():
        config = load_config(location_or_config, **overrides)
    else:
        config = config_for_location(str(location_or_config), config_path=config_path, **overrides)
    options = dict(config.backend_options)
    if not create and config.location.startswith(("/", "file://")):
        options["create"] = False  # a read-only open of a wrong path must not leave a folder behind
    backend = open_backend(config.location, options)
    if faults is not None:
        backend = with_faults(backend, faults)
    # The writer's configured codec compresses new chunks; every frame names its own codec,
    # so a store written with several codecs reads back without any setting.
    name, level = config.codec_spec
    store = Store(backend, codec_from_config(name, level), threads=config.threads, config=config)
    try:
        if create:
            store.initialise()
        else:
            store.require_initialised()
    except BaseException:
        store.close()
        raise
    return store
