"""The optimizer's strategies: what each one changes, and how.

The seed named seven strategies. Each is real here, or left out with its reason:

``deduplication`` (real)
    The same residues stored in more than one live sequence pack -- imports
    run with ``[optimization] deduplication = false``, at the same time, or
    before the store-wide sequence map existed, in one database or across
    databases. The first copy (oldest version first) is kept; a pack whose
    every slot is held elsewhere is dropped, a pack with some is stored
    again without them, and the record chunks that referred to the copies
    are re-pointed (:mod:`.rewrite`). Identical *objects* need nothing:
    content addressing already stores them once.
``compression`` (real)
    Two kinds of object. Objects framed by the store (manifests, reduction
    and taxonomy objects) whose codec or level differs from ``[storage]
    compression``/``compression_level`` are recompressed *in place*: their
    name is the SHA-256 of the uncompressed bytes (:mod:`talaria_storage.storage.frame`),
    so the same key holds the same content, only smaller, and a reader sees
    the old frame or the new one, both valid. One already at the configured
    codec is recompressed at zstd 19 when that saves at least ``min_gain``
    (a higher zstd level than configured is never undone). Sequence
    objects compress themselves, stream by stream, and their bytes are
    their name: the packs of versions encoded with another sequence codec
    than the configured one are encoded again and stored as new objects,
    and the versions re-pointed.
``repacking`` (real)
    Sequence packs below ``repack_fraction`` of the target pack size (the
    chunker's target, in residue bytes) are merged, as ``restic prune
    --repack-small`` merges small pack files: each release of a database
    that changes a few sequences per chunk leaves a small pack per chunk,
    and one pack of them all compresses better (similar genes meet in one
    zstd window) and costs one object instead of many.
``gc`` (real)
    The existing garbage collection (:func:`talaria_storage.sequences.collect.collect_garbage`)
    with its grace period: the only strategy that deletes, and the only way
    old objects go.
``caching`` (real, saves no bytes)
    The hot objects -- every database's HEAD manifest and the objects it
    needs -- listed with their bytes; on a remote store read through the
    remote-object cache (``[cache]``), read once so the cache holds them
    (pre-warm). A local store has nothing to warm.
``archival`` (left out)
    Moving versions older than N, or not among the last K, to a colder
    codec. Releases imported one by one reuse the packs of the previous
    ones for the sequences they carry, so a pack is rarely needed by old
    versions alone: archiving "old versions" would mostly recompress what
    the current version reads. The sequence codec already compresses
    redundant nucleotide sets at a high zstd level, and zstd's decoding
    speed does not depend on the level, so a colder level has little left
    to win (not yet measured here: the benchmark reports the four real
    strategies). A second, colder *store* for old versions is what
    ``sync push`` already gives.
``delta-encoding`` (left out, measured)
    Storing members as explicit deltas against references inside packs was
    measured against zstd over packs whose similar sequences lie side by
    side (``benchmarks/README.md``, "Delta codec"): on 16S/23S rRNA and
    ResFinder the references plus deltas are 1.4-2.3x larger, on proteins
    break-even. So the store uses the latter: every pack this engine writes
    -- at import, and the merged packs of ``repacking`` -- is laid out by
    similarity when that makes it smaller
    (:mod:`talaria_storage.sequences.similarity_order`). Deltas live in
    reduction profiles (``talaria-storage reduce``).
"""

from __future__ import annotations

import enum
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from talaria_storage.config.settings import StorageConfig
from talaria_storage.core.errors import ConfigError
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.keys import CHUNKS, MANIFESTS
from talaria_storage.optimization.analysis import StoreAnalysis, key_hash
from talaria_storage.optimization.rewrite import (
    PackMoves,
    VersionRewriter,
    store_pack,
    version_codec,
)
from talaria_storage.sequences.chunking import ChunkingPolicy
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.sequence_pack import PackReader, encode_pack
from talaria_storage.sequences.streams import ChunkCodec, configured_codec
from talaria_storage.storage import frame
from talaria_storage.storage.codecs import Codec, NoneCodec, ZstdCodec
from talaria_storage.storage.store import Store


class OptimizationStrategy(str, enum.Enum):
    """The strategies that are real (see the module docstring for those left out, and why)."""

    DEDUPLICATION = "deduplication"
    COMPRESSION = "compression"
    REPACKING = "repacking"
    CACHING = "caching"
    GARBAGE_COLLECTION = "gc"


#: The order strategies run in: rewrites first (each on the previous one's result), gc last.
DEFAULT_STRATEGIES: tuple[OptimizationStrategy, ...] = (
    OptimizationStrategy.DEDUPLICATION,
    OptimizationStrategy.COMPRESSION,
    OptimizationStrategy.REPACKING,
    OptimizationStrategy.GARBAGE_COLLECTION,
)

#: Names that were strategies in the seed and are not here, with what to do instead.
NOT_STRATEGIES = {
    "archival": "archival was left out (see talaria_storage.optimization.strategies): packs are shared with the "
    "newest versions and a colder codec did not shrink them; push old versions to a second store with 'sync push'",
    "delta-encoding": "delta-encoding was left out: explicit deltas measured larger than packs laid out by "
    "similarity, which every import and 'repacking' already writes; deltas are in 'talaria-storage reduce' profiles",
}


def parse_strategy(name: str) -> OptimizationStrategy:
    """A strategy by name (``gc`` or ``garbage-collection``, any case); one-line error otherwise."""
    word = name.strip().lower().replace("_", "-")
    if word in ("garbage-collection", "garbagecollection"):
        word = "gc"
    if word in ("deltaencoding", "delta"):
        word = "delta-encoding"
    if word in NOT_STRATEGIES:
        raise ConfigError(NOT_STRATEGIES[word])
    try:
        return OptimizationStrategy(word)
    except ValueError:
        known = ", ".join(s.value for s in OptimizationStrategy)
        raise ConfigError(f"unknown optimization strategy '{name}': use one of {known}") from None


@dataclass(frozen=True)
class OptimizeOptions:
    """What :meth:`StorageOptimizer.optimize` does, and how far.

    ``min_gain``: the fraction a better zstd level must save before a framed
    object is recompressed with it. ``repack_fraction``: packs holding less
    than this fraction of ``target_pack_bytes`` residue bytes (default: the
    chunker's target chunk size) are merged. ``grace_seconds``: gc spares
    objects younger than this.
    """

    strategies: tuple[OptimizationStrategy, ...] = DEFAULT_STRATEGIES
    dry_run: bool = False
    grace_seconds: float = 3600.0
    min_gain: float = 0.10
    repack_fraction: float = 0.5
    target_pack_bytes: int | None = None
    verify: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.min_gain < 1:
            raise ConfigError(f"optimize min_gain must be between 0 and 1, got {self.min_gain}")
        if not 0 < self.repack_fraction <= 1:
            raise ConfigError(f"optimize repack_fraction must be in (0, 1], got {self.repack_fraction}")
        if self.grace_seconds < 0:
            raise ConfigError(f"optimize grace period must be >= 0 seconds, got {self.grace_seconds}")


@dataclass
class StrategyOutcome:
    """What one strategy did to the store it ran on."""

    replaced: set[str] = field(default_factory=set)  # keys of used objects it replaced (rewritten or in place)
    written: set[str] = field(default_factory=set)  # keys of objects it wrote (in place: same keys)
    deleted: set[str] = field(default_factory=set)  # keys it deleted (gc only)
    deleted_bytes: int = 0
    versions: list[str] = field(default_factory=list)  # "db@version" rewritten
    notes: list[str] = field(default_factory=list)


def _settings(store: Store) -> StorageConfig | None:
    return store.config if isinstance(store.config, StorageConfig) else None


def target_sequence_codec(store: Store) -> ChunkCodec:
    """The sequence codec the store's configuration asks for (see ``configured_codec``)."""
    settings = _settings(store)
    return configured_codec(*settings.codec_spec) if settings else ChunkCodec()


def target_pack_bytes(store: Store, options: OptimizeOptions) -> int:
    """Residue bytes a full pack holds: the option, or the chunker's target chunk size."""
    if options.target_pack_bytes is not None:
        return options.target_pack_bytes
    settings = _settings(store)
    if settings is None:
        return ChunkingPolicy().target_size
    bounds = settings.optimization
    return ChunkingPolicy.bounded(bounds.min_chunk_size, bounds.max_chunk_size).target_size


class Strategy(ABC):
    """One strategy: it looks at an analysis of the store and changes the store (or a dry-run layer over it)."""

    name: ClassVar[OptimizationStrategy]

    @abstractmethod
    def apply(self, store: Store, analysis: StoreAnalysis, options: OptimizeOptions) -> StrategyOutcome:
        """Change ``store``; writes objects before refs, deletes nothing unless it is gc."""


def _publish(store: Store, analysis: StoreAnalysis, moves: PackMoves, outcome: StrategyOutcome, options: OptimizeOptions) -> None:
    """Rewrite the versions ``moves`` touches and account for what was replaced."""
    rewriter = VersionRewriter(store, analysis, moves)
    result = rewriter.run(verify=options.verify)
    outcome.versions += [f"{db}@{version}" for db, version, _, _ in result.versions]
    outcome.written |= {CHUNKS + h.to_hex() for h in result.written}
    outcome.written |= {MANIFESTS + h.to_hex() for h in result.manifests}
    outcome.replaced |= {MANIFESTS + old.to_hex() for _, _, old, _ in result.versions}
    outcome.replaced |= {CHUNKS + h.to_hex() for h in result.replaced_chunks}
    outcome.replaced |= {CHUNKS + h.to_hex() for h in moves.slots}


def _slot_key(fastq: bool, residues: bytes, qualities: bytes | None) -> bytes:
    """What makes two slots interchangeable: the same bytes, in a pack of the same kind."""
    digest = hashlib.sha256(residues)
    if fastq:
        digest.update(b"\n" + (qualities or b""))
    return (b"q" if fastq else b"a") + digest.digest()


def _packs_in_order(analysis: StoreAnalysis) -> list[SHA256Hash]:
    """Live packs, in the order the versions (oldest first) need them."""
    out: dict[SHA256Hash, None] = {}
    for view in analysis.versions:
        for obj in view.manifest.objects():
            if obj.kind == "sequence pack" and obj.hash in analysis.packs:
                out.setdefault(obj.hash, None)
    return list(out)


def _owner_codec(analysis: StoreAnalysis, pack: SHA256Hash) -> ChunkCodec:
    owner = analysis.packs[pack].owner
    return version_codec(owner.manifest) if owner is not None else ChunkCodec()


class Deduplication(Strategy):
    # docstring: see the module docstring
    name = OptimizationStrategy.DEDUPLICATION

    def apply(self, store: Store, analysis: StoreAnalysis, options: OptimizeOptions) -> StrategyOutcome:
        outcome = StrategyOutcome()
        first: dict[bytes, tuple[SHA256Hash, int]] = {}
        copies: dict[SHA256Hash, tuple[PackReader, list[bytes], list[bytes] | None, list[tuple[SHA256Hash, int] | None]]] = {}
        for pack in _packs_in_order(analysis):
            reader = PackReader(store.get_chunk(pack))
            sequences = reader.sequences()
            qualities = reader.all_qualities() if reader.fastq else None
            held: list[tuple[SHA256Hash, int] | None] = []
            for slot, residues in enumerate(sequences):
                key = _slot_key(reader.fastq, residues, qualities[slot] if qualities is not None else None)
                found = first.setdefault(key, (pack, slot))
                held.append(found if found[0] != pack else None)
            if any(h is not None for h in held):
                copies[pack] = (reader, sequences, qualities, held)
        moves = PackMoves()
        kept_slots: dict[SHA256Hash, dict[int, tuple[SHA256Hash, int]]] = {}
        for pack, (reader, sequences, qualities, held) in copies.items():
            kept = [slot for slot, h in enumerate(held) if h is None]
            if not kept:
                kept_slots[pack] = {}
                continue
            new, size = store_pack(
                store,
                [sequences[s] for s in kept],
                [qualities[s] for s in kept] if qualities is not None else None,
                _owner_codec(analysis, pack),
            )
            moves.sizes[new] = size
            outcome.written.add(CHUNKS + new.to_hex())
            kept_slots[pack] = {slot: (new, i) for i, slot in enumerate(kept)}
        for pack, (_, _, _, held) in copies.items():
            slots = []
            for slot, h in enumerate(held):
                if h is None:
                    slots.append(kept_slots[pack][slot])
                else:
                    other, other_slot = h
                    slots.append(kept_slots[other][other_slot] if other in kept_slots else (other, other_slot))
            successor = next(iter(kept_slots[pack].values()))[0] if kept_slots[pack] else None
            moves.move(pack, slots, successor)
        duplicates = sum(sum(1 for h in held if h is not None) for *_, held in copies.values())
        if moves:
            outcome.notes.append(f"{duplicates} duplicate sequence(s) in {len(copies)} pack(s)")
            _publish(store, analysis, moves, outcome, options)
        else:
            outcome.notes.append("no sequence is stored twice")
        return outcome


class Compression(Strategy):
    # docstring: see the module docstring
    name = OptimizationStrategy.COMPRESSION

    def apply(self, store: Store, analysis: StoreAnalysis, options: OptimizeOptions) -> StrategyOutcome:
        outcome = StrategyOutcome()
        self._frames(store, analysis, options, outcome)
        self._sequences(store, analysis, options, outcome)
        return outcome

    def _frames(self, store: Store, analysis: StoreAnalysis, options: OptimizeOptions, outcome: StrategyOutcome) -> None:
        target = store.codec
        better = ZstdCodec(19)
        count = 0
        for key in sorted(analysis.live):
            info = analysis.objects.get(key)
            h = key_hash(key)
            if info is None or h is None:
                continue
            current = frame.decode_header(store.backend.get_range(key, 0, frame.HEADER_SIZE)).codec
            if isinstance(current, NoneCodec):
                continue  # self-compressing objects (record chunks, packs, order objects) and raw ones
            chunks = store.manifests if key.startswith(MANIFESTS) else store
            if _satisfies(current, target):
                if not isinstance(current, ZstdCodec) or current.level >= better.level:
                    continue
                data = chunks.get_chunk(h)
                framed = frame.encode(data, better)
                if len(framed) > (1 - options.min_gain) * info.size:
                    continue
            else:
                data = chunks.get_chunk(h)
                framed = frame.encode(data, target)
            if frame.decode(framed)[0] != data:  # never replace an object with one that reads differently
                continue
            store.backend.put(key, framed)
            outcome.replaced.add(key)
            outcome.written.add(key)
            count += 1
        outcome.notes.append(f"{count} framed object(s) recompressed in place")

    def _sequences(self, store: Store, analysis: StoreAnalysis, options: OptimizeOptions, outcome: StrategyOutcome) -> None:
        target = target_sequence_codec(store)
        moves = PackMoves(codec_for=lambda view: target)
        for pack, view in analysis.packs.items():
            if view.owner is None or version_codec(view.owner.manifest) == target:
                continue
            reader = PackReader(store.get_chunk(pack))
            new, size = store_pack(store, reader.sequences(), reader.all_qualities() if reader.fastq else None, target)
            if new == pack:
                continue
            moves.sizes[new] = size
            moves.move(pack, [(new, slot) for slot in range(len(reader))], new)
            outcome.written.add(CHUNKS + new.to_hex())
        stale = [v for v in analysis.versions if version_codec(v.manifest) != target]
        if moves or stale:
            _publish(store, analysis, moves, outcome, options)
        outcome.notes.append(
            f"{len(moves.slots)} sequence pack(s) and {len(stale)} version(s) re-encoded with the configured sequence codec"
        )


def _satisfies(current: Codec, target: Codec) -> bool:
    """True when ``current`` is what the configuration asks for, or a stronger zstd level."""
    if isinstance(current, ZstdCodec) and isinstance(target, ZstdCodec):
        return current.level >= target.level
    return type(current) is type(target)


#: What a merged pack must save over the packs it replaces (see Repacking._merge).
MERGE_GAIN = 0.02


@dataclass(frozen=True)
class _SmallPack:
    hash: SHA256Hash
    reader: PackReader
    raw: int  # residue (and quality) bytes
    size: int  # serialised bytes


class Repacking(Strategy):
    # docstring: see the module docstring
    name = OptimizationStrategy.REPACKING

    def apply(self, store: Store, analysis: StoreAnalysis, options: OptimizeOptions) -> StrategyOutcome:
        outcome = StrategyOutcome()
        target = target_pack_bytes(store, options)
        limit = options.repack_fraction * target
        codec = target_sequence_codec(store)
        groups: dict[tuple[bool, str], list[_SmallPack]] = {}
        for pack in _packs_in_order(analysis):
            data = store.get_chunk(pack)
            reader = PackReader(data)
            raw = sum(reader.lengths()) * (2 if reader.fastq else 1)
            if raw >= limit:
                continue
            owner = analysis.packs[pack].owner
            key = (reader.fastq, owner.database if owner else "")
            groups.setdefault(key, []).append(_SmallPack(pack, reader, raw, len(data)))
        moves = PackMoves()
        merged = skipped = 0
        for members in groups.values():
            batches: list[list[_SmallPack]] = [[]]
            for item in members:
                if batches[-1] and sum(p.raw for p in batches[-1]) + item.raw > target:
                    batches.append([])
                batches[-1].append(item)
            for batch in batches:
                if len(batch) < 2:
                    continue
                if self._merge(store, batch, codec, moves, outcome):
                    merged += len(batch)
                else:
                    skipped += len(batch)
        outcome.notes.append(
            f"{merged} small pack(s) below {int(limit)} residue bytes merged"
            + (f", {skipped} left as they are (merging them saved less than {MERGE_GAIN:.0%})" if skipped else "")
        )
        if moves:
            _publish(store, analysis, moves, outcome, options)
        return outcome

    def _merge(
        self, store: Store, batch: list[_SmallPack], codec: ChunkCodec, moves: PackMoves, outcome: StrategyOutcome
    ) -> bool:
        """Store one pack of ``batch``'s slots and move them there; False (nothing stored) if it would not pay."""
        sequences: list[bytes] = []
        qualities: list[bytes] | None = [] if batch[0].reader.fastq else None
        offsets = []
        for item in batch:
            offsets.append(len(sequences))
            sequences += item.reader.sequences()
            if qualities is not None:
                qualities += item.reader.all_qualities()
        data = encode_pack(sequences, qualities, codec)
        # Packs of unrelated sequences (proteomes of different species) can cost more merged
        # than apart; the merged pack must also pay for the references its record chunks
        # then spell out (a byte or two each before compression).
        if len(data) > (1 - MERGE_GAIN) * sum(item.size for item in batch):
            return False
        new = store.store_chunk(data, compress=False)
        moves.sizes[new] = len(data)
        outcome.written.add(CHUNKS + new.to_hex())
        for item, offset in zip(batch, offsets):
            moves.move(item.hash, [(new, offset + slot) for slot in range(len(item.reader))], new)
        return True


class GarbageCollection(Strategy):
    # docstring: see the module docstring
    name = OptimizationStrategy.GARBAGE_COLLECTION

    def apply(self, store: Store, analysis: StoreAnalysis, options: OptimizeOptions) -> StrategyOutcome:
        outcome = StrategyOutcome()
        result = collect_garbage(store, grace_seconds=options.grace_seconds)
        removed = set()
        for h in result.removed_hashes:
            for prefix in (CHUNKS, MANIFESTS):
                key = prefix + h.to_hex()
                if key in analysis.objects and key not in analysis.live:
                    removed.add(key)
        outcome.deleted = removed
        outcome.deleted_bytes = result.freed_bytes
        outcome.notes.append(
            f"{result.removed} object(s) deleted, {result.spared_young} spared by the {options.grace_seconds:g} s grace period"
        )
        return outcome


class Caching(Strategy):
    # docstring: see the module docstring
    name = OptimizationStrategy.CACHING

    def apply(self, store: Store, analysis: StoreAnalysis, options: OptimizeOptions) -> StrategyOutcome:
        outcome = StrategyOutcome()
        hot: dict[str, None] = {}
        for view in analysis.versions:
            if view.is_head:
                hot[MANIFESTS + view.manifest_hash.to_hex()] = None
                hot.update(dict.fromkeys(CHUNKS + h.to_hex() for h in view.manifest.object_hashes()))
        size = sum(analysis.size_of(k) for k in hot)
        cache = getattr(store.backend, "cache", None)
        if cache is None or store.backend.is_local:
            outcome.notes.append(f"{len(hot)} hot object(s), {size} bytes; the store is local or uncached: nothing to warm")
            return outcome
        for key in hot:
            store.backend.get(key)  # a read through the cache keeps a copy
        outcome.notes.append(f"{len(hot)} hot object(s), {size} bytes, read into the remote-object cache")
        return outcome


STRATEGIES: dict[OptimizationStrategy, type[Strategy]] = {
    cls.name: cls for cls in (Deduplication, Compression, Repacking, GarbageCollection, Caching)
}
