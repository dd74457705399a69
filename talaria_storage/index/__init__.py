"""Look-up structures of a store.

local index
    :class:`~talaria_storage.index.local_index.ChunkIndex` (memory, SQLite or
    RocksDB): an ordered byte-key table kept beside a store as a rebuildable
    cache of what its manifests say, never trusted on its own.
lookup index
    The one local index a store's databases share
    (:func:`~talaria_storage.index.lookup_index.lookup_index`), opened on
    first use where ``[index]`` and ``[cache]`` say, and closed with the store.
"""
