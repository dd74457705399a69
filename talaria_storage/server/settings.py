"""What a ``serve`` process is told: which databases, its limits, its timeouts, which sequences are circular."""

from __future__ import annotations

from dataclasses import dataclass, field

from talaria_storage.core.errors import ConfigError, InvalidSequenceId
from talaria_storage.sequences.canonical import SequenceId, parse_sequence_id

DEFAULT_HOST = "127.0.0.1"  # loopback only unless the operator says otherwise
DEFAULT_PORT = 8080


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """The knobs of the refget + seqcol service; every default is safe on an open port.

    ``databases``: the databases served (empty: every database of the store).
    ``max_bases``: the most residues one sequence response may carry (0: no
    limit); a sub-sequence over it is 416, a whole sequence 413, each naming
    the limit; it is the ``subsequence_limit`` service-info reports.
    ``max_collection_sequences``: the most sequences a level 2 collection, a
    comparison or an attribute response may list (413 beyond).
    ``refresh_seconds``: how stale the served list of versions may get; a
    request re-reads the store's refs when the list is older (0: on every
    request), so versions published meanwhile are served without a restart.
    ``circular``: accessions or digests of sequences to treat as circular,
    besides GenBank/EMBL records whose LOCUS/ID line says so and FASTA
    headers carrying ``circular=true`` or ``topology=circular``.
    ``header_timeout``: seconds a connection may take to send a request's
    headers (and an idle keep-alive connection to send the next ones).
    ``send_timeout``: seconds a response may wait for a client that stopped
    reading before the connection is dropped. ``keep_alive_timeout``: idle
    seconds between requests. ``max_connections``: concurrent connections
    (503 beyond).
    """

    databases: tuple[str, ...] = ()
    max_bases: int = 0
    max_collection_sequences: int = 1_000_000
    refresh_seconds: float = 1.0
    circular: tuple[str, ...] = ()
    header_timeout: float = 10.0
    send_timeout: float = 30.0
    keep_alive_timeout: float = 5.0
    max_connections: int = 256
    circular_ids: frozenset[SequenceId] = field(init=False, repr=False)
    circular_names: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("max_bases", "max_collection_sequences", "max_connections"):
            if getattr(self, name) < 0:
                raise ConfigError(f"server setting {name} = {getattr(self, name)}: use 0 or more")
        for name in ("refresh_seconds", "header_timeout", "send_timeout", "keep_alive_timeout"):
            if getattr(self, name) < 0:
                raise ConfigError(f"server setting {name} = {getattr(self, name)}: use 0 or more seconds")
        ids: set[SequenceId] = set()
        names: set[str] = set()
        for item in self.circular:
            try:
                ids.add(parse_sequence_id(item))
            except InvalidSequenceId:
                names.add(item.strip())
        object.__setattr__(self, "circular_ids", frozenset(ids))
        object.__setattr__(self, "circular_names", frozenset(names))
