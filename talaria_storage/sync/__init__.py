"""Sync: move database versions between two stores, resumably (DESIGN.md §5).

:mod:`.protocol` is the protocol (compare refs, diff manifests, copy verified
objects, move refs last) behind :func:`push`, :func:`pull` and
:func:`status`; :mod:`.remote_link` gives a store and its remote the
:class:`~talaria_storage.core.traits.RemoteStorage` trait.
"""

from talaria_storage.sync.protocol import (
    DatabaseStatus,
    Relation,
    SyncPlan,
    copy_objects,
    plan,
    pull,
    push,
    status,
    summarize,
    transfer,
)
from talaria_storage.sync.remote_link import RemoteLink

__all__ = [
    "DatabaseStatus",
    "Relation",
    "RemoteLink",
    "SyncPlan",
    "copy_objects",
    "plan",
    "pull",
    "push",
    "status",
    "summarize",
    "transfer",
]
