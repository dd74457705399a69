"""The vocabulary every layer speaks; it imports nothing else of the package.

hash
    :class:`~talaria_storage.core.hashing.SHA256Hash`, the name of every
    content-addressed object: SHA-256 of its uncompressed bytes, validated
    as 64 hex characters whenever it comes from a user or the network.
key
    An object's name in a backend (``chunks/<sha256>``, ``refs/<db>/HEAD``,
    ...; :mod:`~talaria_storage.core.keys`), checked in one place.
trait
    One of the six ABCs of :mod:`~talaria_storage.core.traits`
    (``ChunkStorage`` -> ``DeltaStorage`` -> ``ReductionStorage``,
    ``TaxonomyStorage``, ``RemoteStorage``, ``StatefulStorage``): what an
    implementation promises, independent of where it stores things.
error
    :class:`~talaria_storage.core.errors.StorageError` and its leaves, each
    carrying the data a caller needs and, where it fits, the matching builtin.
"""
