"""ReducibleDatabase: a sequence database that can also be reduced, and read through its profiles.

What the API's :func:`talaria_storage.open_database` returns: everything a
:class:`~talaria_storage.sequences.database.SequenceDatabase` does, plus
``db.reduce(...)`` and ``db.reduction(name)``. It lives here, not in the
sequences layer, because that layer sits below the reduction engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from talaria_storage.core.lazy_module import LazyModule
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.sequences.database import open_database as open_sequence_database
from talaria_storage.storage.store import Store

if TYPE_CHECKING:
    from talaria_storage.reduction import building
    from talaria_storage.reduction import profile as reduction_profile
    from talaria_storage.reduction.building import Progress, ReductionResult
    from talaria_storage.reduction.profile import ReductionProfile
else:
    # The reduction engine (numpy, edlib, the selection's pool) loads when a database is first
    # reduced or read through a profile, not when it is opened for a look-up (core.lazy_module).
    building = LazyModule("talaria_storage.reduction.building")
    reduction_profile = LazyModule("talaria_storage.reduction.profile")


class ReducibleDatabase(SequenceDatabase):
    """A :class:`SequenceDatabase` with reduction profiles."""

    def reduce(
        self,
        profile: str,
        *,
        identity: float | None = None,
        ratio: float | None = None,
        coverage: float = 0.8,
        taxonomy_aware: bool = False,
        rank: str | None = None,
        version: str | None = None,
        update: bool = False,
        processes: int | None = None,
        progress: Progress | None = None,
    ) -> ReductionResult:
        """Reduce ``version`` (HEAD) to ``profile``: ``identity`` (default 0.9) or ``ratio``, not both."""
        parameters = building.selection_parameters(identity, ratio, coverage, taxonomy_aware)
        return building.reduce_database(
            self, profile, parameters, version=version, rank=rank, update=update, processes=processes, progress=progress
        )

    def reduction(self, profile: str) -> ReductionProfile:
        """The published profile ``profile``; :class:`ProfileNotFound` naming the known ones otherwise."""
        return reduction_profile.ReductionProfile(self, profile)

    def reductions(self) -> list[str]:
        """Names of this database's profiles."""
        return self.store.reductions.profiles(self.name)


def open_database(store_or_location: Store | str | Path, name: str) -> ReducibleDatabase:
    """:func:`talaria_storage.sequences.database.open_database`, opening a :class:`ReducibleDatabase`."""
    db = open_sequence_database(store_or_location, name, kind=ReducibleDatabase)
    assert isinstance(db, ReducibleDatabase)
    return db
