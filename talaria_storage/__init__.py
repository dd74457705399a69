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
    sequence byte for byte (``reductions/<database>/<profile>``).
taxon
    An NCBI Taxonomy id; a taxdump stored in the store gives lineages, so a query
    for a taxon can include its descendants.

Layers, one package each, lowest first; a module imports only from its own
layer or lower ones (``tests/test_layers.py`` checks it):

``core``        hashing, keys, types, the six traits, errors
``storage``     Backend ABC, URL registry, codecs, frames, ChunkStore, refs,
                processing state, retry, Store (``backends/`` sits beside it)
``config``      storage.toml + environment, validated; ``open_store``
``index``       look-up structures (the local index a store's databases share)
``formats``     FASTA, FASTQ, GenBank/EMBL readers and writers
``sequences``   databases: import, chunk formats, manifests, versions, taxonomy,
                diff, gc, verify; ``open_database``
``sync``        push, pull, status between two stores; ``RemoteLink``
``testing``     conformance suites any implementation can run
``cli``         the ``talaria-storage`` command

The documented API is what this module exports: :func:`open_store`,
:func:`open_database`, the six traits, :class:`SHA256Hash` and the errors;
:func:`version_digests` (a version's GA4GH sequence-collection digests) and
:func:`version_collection` (its arrays, a :class:`SequenceCollection`);
:func:`parse` (a version's records as Biopython ``SeqRecord`` objects).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from talaria_storage.config.open_store import open_store
    from talaria_storage.core.errors import (
        BackendError,
        ChunkIndexError,
        ChunkNotFound,
        CompressionError,
        ConfigError,
        HashMismatch,
        InputFormatError,
        StorageError,
    )
    from talaria_storage.core.hashing import SHA256Hash
    from talaria_storage.core.traits import (
        ChunkStorage,
        DeltaStorage,
        ReductionStorage,
        RemoteStorage,
        StatefulStorage,
        TaxonomyStorage,
    )
    from talaria_storage.reduction.reducible_database import open_database
    from talaria_storage.sequences.database import parse
    from talaria_storage.sequences.seqcol import (
        SequenceCollection,
        version_collection,
        version_digests,
    )
    from talaria_storage.storage.store import Store

#: Where each name of the API is defined. The names are imported when first asked for
#: (PEP 562): importing any submodule imports this package first, and an eager import
#: here pulled the reduction layer (numpy, parasail, edlib: ~0.4 s) into every command,
#: a one-record look-up included.
_EXPORTS = {
    "open_store": "talaria_storage.config.open_store",
    **dict.fromkeys(
        ("BackendError", "ChunkIndexError", "ChunkNotFound", "CompressionError", "ConfigError",
         "HashMismatch", "InputFormatError", "StorageError"),
        "talaria_storage.core.errors",
    ),
    "SHA256Hash": "talaria_storage.core.hashing",
    **dict.fromkeys(
        ("ChunkStorage", "DeltaStorage", "ReductionStorage", "RemoteStorage", "StatefulStorage", "TaxonomyStorage"),
        "talaria_storage.core.traits",
    ),
    "open_database": "talaria_storage.reduction.reducible_database",
    "parse": "talaria_storage.sequences.database",
    **dict.fromkeys(
        ("SequenceCollection", "version_collection", "version_digests"), "talaria_storage.sequences.seqcol"
    ),
    "Store": "talaria_storage.storage.store",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'talaria_storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__version__ = "0.1.0"

__all__ = [
    "BackendError",
    "ChunkIndexError",
    "ChunkNotFound",
    "ChunkStorage",
    "CompressionError",
    "ConfigError",
    "DeltaStorage",
    "HashMismatch",
    "InputFormatError",
    "ReductionStorage",
    "RemoteStorage",
    "SHA256Hash",
    "SequenceCollection",
    "StatefulStorage",
    "StorageError",
    "Store",
    "TaxonomyStorage",
    "open_database",
    "open_store",
    "parse",
    "version_collection",
    "version_digests",
]
