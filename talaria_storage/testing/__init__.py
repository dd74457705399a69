"""Conformance suites that ship with the package, so any backend can prove itself.

Subclass :class:`BackendConformance` (or :class:`ChunkStorageConformance`,
:class:`ReductionStorageConformance`) in a test module and provide a
``backend`` (or ``chunk_storage``, ``reduction_storage``) pytest fixture
that yields a fresh, empty instance; every test in the class then runs
against it. talaria-storage runs the same classes against memory,
filesystem, rocksdb, S3, GCS and Azure.
"""

from talaria_storage.testing.backend_suite import BackendConformance
from talaria_storage.testing.chunk_storage_suite import ChunkStorageConformance
from talaria_storage.testing.reduction_storage_suite import ReductionStorageConformance

__all__ = ["BackendConformance", "ChunkStorageConformance", "ReductionStorageConformance"]
