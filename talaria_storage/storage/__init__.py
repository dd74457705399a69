"""The content-addressed store and the backends' contract (DESIGN.md §1, the two lowest layers).

backend
    :class:`~talaria_storage.storage.backend.Backend`: put / get / get_range /
    exists / delete / list / conditional put over opaque keys; it knows
    nothing of hashes or sequences. Implementations live in
    ``talaria_storage.backends`` and are chosen by URL
    (:mod:`~talaria_storage.storage.registry`).
codec, frame
    A chunk is stored inside a self-describing frame (codec id, parameter,
    payload; :mod:`~talaria_storage.storage.frame`), so a store written with
    several codecs reads back without settings.
chunk store
    :class:`~talaria_storage.storage.chunk_store.ChunkStore`: objects named
    by the SHA-256 of their uncompressed bytes, written once, re-hashed on
    every read.
ref
    A mutable pointer to a manifest hash, moved only by compare-and-swap
    (:mod:`~talaria_storage.storage.refs`).
delta chunk, reduction profile
    A :class:`DeltaChunk` is a chunk of edit scripts against one reference;
    a profile (``reductions/<database>/<profile>``) names a stored reduction
    that lists them, with a partitioned delta index for look-ups by child or
    reference (:mod:`~talaria_storage.storage.reductions`,
    :mod:`~talaria_storage.storage.delta_chunks`,
    :mod:`~talaria_storage.storage.delta_index`).
processing state
    The progress of a resumable operation under ``state/<id>``
    (:mod:`~talaria_storage.storage.processing`).
store
    :class:`~talaria_storage.storage.store.Store`: the chunk store of
    ``chunks/`` with its manifests, refs, reduction profiles and states on one backend. It knows
    objects and refs, never databases or sync.
"""
