"""The ChunkStorage conformance suite: dedup, integrity, verification, stats and GC as tests.

Provide a ``chunk_storage`` fixture yielding a fresh, empty
:class:`~talaria_storage.storage.chunk_store.ChunkStore`. Corruption is injected
through ``chunk_storage.backend``, the layer below, so it bypasses the store
under test as a damaged disk or a bad upload would.
"""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from talaria_storage.core.errors import ChunkNotFound, CompressionError, HashMismatch
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.types import VerificationProblem
from talaria_storage.storage import frame
from talaria_storage.storage.chunk_store import ChunkStore
from talaria_storage.storage.codecs import Lz4Codec, NoneCodec, SnappyCodec, ZstdCodec

CODECS = [NoneCodec(), ZstdCodec(1), ZstdCodec(3), ZstdCodec(19), ZstdCodec(22), Lz4Codec(), SnappyCodec()]
FASTA_LIKE = b">sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OX=9606\n" + b"MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF\n" * 200


def _rewrite(store: ChunkStore, h: SHA256Hash, mutate) -> None:  # noqa: ANN001
    key = store.key_for(h)
    store.backend.put(key, mutate(store.backend.get(key)))


class ChunkStorageConformance:
    """Every ChunkStorage implementation must pass these."""

    # -- store / get ----------------------------------------------------------------------------

    def test_get_chunk_returns_the_bytes_stored(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(FASTA_LIKE)
        assert chunk_storage.get_chunk(h) == FASTA_LIKE

    def test_the_hash_is_sha256_of_the_uncompressed_bytes(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(FASTA_LIKE)
        assert h.to_hex() == hashlib.sha256(FASTA_LIKE).hexdigest()

    def test_empty_chunk_round_trips(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(b"")
        assert chunk_storage.get_chunk(h) == b""

    @pytest.mark.parametrize("codec", CODECS, ids=lambda c: f"{c.name}{getattr(c, 'level', '')}")
    def test_every_codec_round_trips(self, chunk_storage: ChunkStore, codec) -> None:  # noqa: ANN001
        store = ChunkStore(chunk_storage.backend, codec, prefix=chunk_storage.prefix)
        data = FASTA_LIKE + os.urandom(1000)
        h = store.store_chunk(data)
        assert store.get_chunk(h) == data
        assert store.chunk_metadata(h).codec == codec.name

    def test_compress_false_stores_with_the_none_codec(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(FASTA_LIKE, compress=False)
        meta = chunk_storage.chunk_metadata(h)
        assert meta.codec == "none" and meta.stored_size == len(FASTA_LIKE) + frame.HEADER_SIZE

    def test_compressible_data_is_stored_smaller(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(FASTA_LIKE)
        assert chunk_storage.chunk_metadata(h).stored_size < len(FASTA_LIKE) / 4

    def test_get_of_a_missing_chunk_raises_chunk_not_found(self, chunk_storage: ChunkStore) -> None:
        missing = SHA256Hash.compute(b"never stored")
        with pytest.raises(ChunkNotFound) as info:
            chunk_storage.get_chunk(missing)
        assert missing.to_hex() in str(info.value)

    def test_has_chunk_tells_present_from_absent(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(b"present")
        assert chunk_storage.has_chunk(h)
        assert not chunk_storage.has_chunk(SHA256Hash.compute(b"absent"))

    # -- dedup ----------------------------------------------------------------------------------

    def test_storing_the_same_bytes_twice_writes_one_object(self, chunk_storage: ChunkStore) -> None:
        first = chunk_storage.store_chunk(FASTA_LIKE)
        second = chunk_storage.store_chunk(FASTA_LIKE)
        assert first == second
        assert len(chunk_storage.enumerate_chunks()) == 1

    def test_a_repeated_store_counts_a_dedup_hit(self, chunk_storage: ChunkStore) -> None:
        chunk_storage.store_chunk(FASTA_LIKE)
        chunk_storage.store_chunk(FASTA_LIKE)
        stats = chunk_storage.get_stats()
        assert stats.dedup_hits == 1 and stats.dedup_bytes_saved == len(FASTA_LIKE)

    def test_eight_threads_storing_the_same_bytes_write_one_object(self, chunk_storage: ChunkStore) -> None:
        barrier = threading.Barrier(8)

        def store(_: int) -> SHA256Hash:
            barrier.wait()
            return chunk_storage.store_chunk(FASTA_LIKE)

        with ThreadPoolExecutor(8) as pool:
            hashes = set(pool.map(store, range(8)))
        assert len(hashes) == 1
        assert len(chunk_storage.enumerate_chunks()) == 1
        assert chunk_storage.get_chunk(hashes.pop()) == FASTA_LIKE
        assert chunk_storage.get_stats().dedup_hits == 7

    # -- listing and stats ----------------------------------------------------------------------

    def test_enumerate_chunks_lists_every_stored_chunk(self, chunk_storage: ChunkStore) -> None:
        hashes = {chunk_storage.store_chunk(f"chunk {i}".encode()) for i in range(5)}
        assert {info.hash for info in chunk_storage.enumerate_chunks()} == hashes

    def test_stats_count_objects_and_logical_bytes(self, chunk_storage: ChunkStore) -> None:
        chunk_storage.store_chunk(FASTA_LIKE)
        chunk_storage.store_chunk(b"small", compress=False)
        stats = chunk_storage.get_stats()
        assert stats.total_chunks == 2
        assert stats.logical_bytes == len(FASTA_LIKE) + 5
        assert stats.per_codec["none"].objects == 1
        assert stats.compression_ratio > 1

    def test_stats_of_an_empty_store_are_zero(self, chunk_storage: ChunkStore) -> None:
        stats = chunk_storage.get_stats()
        assert (stats.total_chunks, stats.stored_bytes, stats.compression_ratio) == (0, 0, 1.0)

    # -- integrity ------------------------------------------------------------------------------

    def test_a_flipped_payload_byte_raises_instead_of_returning_data(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(FASTA_LIKE, compress=False)

        def flip(framed: bytes) -> bytes:
            pos = frame.HEADER_SIZE + 100
            return framed[:pos] + bytes([framed[pos] ^ 0x01]) + framed[pos + 1 :]

        _rewrite(chunk_storage, h, flip)
        with pytest.raises(HashMismatch):
            chunk_storage.get_chunk(h)

    def test_a_flipped_compressed_byte_raises(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(FASTA_LIKE)

        def flip(framed: bytes) -> bytes:
            pos = len(framed) - 3
            return framed[:pos] + bytes([framed[pos] ^ 0x40]) + framed[pos + 1 :]

        _rewrite(chunk_storage, h, flip)
        with pytest.raises((HashMismatch, CompressionError)):
            chunk_storage.get_chunk(h)

    def test_a_truncated_frame_raises_compression_error(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(FASTA_LIKE)
        _rewrite(chunk_storage, h, lambda framed: framed[: len(framed) // 2])
        with pytest.raises(CompressionError):
            chunk_storage.get_chunk(h)

    def test_a_frame_cut_inside_its_header_raises_compression_error(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(FASTA_LIKE)
        _rewrite(chunk_storage, h, lambda framed: framed[:7])
        with pytest.raises(CompressionError):
            chunk_storage.get_chunk(h)

    def test_an_unknown_codec_id_raises_compression_error(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(FASTA_LIKE)
        _rewrite(chunk_storage, h, lambda framed: framed[:5] + bytes([99]) + framed[6:])
        with pytest.raises(CompressionError, match="unknown codec"):
            chunk_storage.get_chunk(h)

    def test_a_swapped_object_raises_hash_mismatch(self, chunk_storage: ChunkStore) -> None:
        h = chunk_storage.store_chunk(b"the original")
        _rewrite(chunk_storage, h, lambda _: frame.encode(b"an impostor", NoneCodec()))
        with pytest.raises(HashMismatch) as info:
            chunk_storage.get_chunk(h)
        assert info.value.expected == h

    # -- verify_all -----------------------------------------------------------------------------

    def test_verify_all_finds_nothing_in_a_good_store(self, chunk_storage: ChunkStore) -> None:
        for i in range(3):
            chunk_storage.store_chunk(FASTA_LIKE + bytes([i]))
        assert chunk_storage.verify_all() == []

    def test_verify_all_reports_every_bad_object(self, chunk_storage: ChunkStore) -> None:
        good = chunk_storage.store_chunk(b"good")
        swapped = chunk_storage.store_chunk(b"swapped")
        truncated = chunk_storage.store_chunk(FASTA_LIKE)
        unknown = chunk_storage.store_chunk(b"unknown codec")
        _rewrite(chunk_storage, swapped, lambda _: frame.encode(b"other", NoneCodec()))
        _rewrite(chunk_storage, truncated, lambda framed: framed[:20])
        _rewrite(chunk_storage, unknown, lambda framed: framed[:5] + bytes([77]) + framed[6:])
        found = {p.hash: p.problem for p in chunk_storage.verify_all()}
        assert found == {
            swapped: VerificationProblem.MISMATCH,
            truncated: VerificationProblem.CORRUPT_FRAME,
            unknown: VerificationProblem.UNKNOWN_CODEC,
        }
        assert good not in found

    def test_verify_all_reports_an_object_with_a_non_hash_name(self, chunk_storage: ChunkStore) -> None:
        chunk_storage.backend.put(chunk_storage.prefix + "not-a-hash", b"junk")
        (problem,) = chunk_storage.verify_all()
        assert problem.problem is VerificationProblem.BAD_KEY

    # -- gc -------------------------------------------------------------------------------------

    def test_gc_removes_unreferenced_chunks_and_reports_them(self, chunk_storage: ChunkStore) -> None:
        keep = chunk_storage.store_chunk(b"keep me")
        drop = chunk_storage.store_chunk(b"drop me")
        drop_size = chunk_storage.chunk_metadata(drop).stored_size
        result = chunk_storage.gc([keep])
        assert (result.removed, result.kept, result.freed_bytes) == (1, 1, drop_size)
        assert result.removed_hashes == (drop,)
        assert chunk_storage.has_chunk(keep) and not chunk_storage.has_chunk(drop)

    def test_gc_dry_run_deletes_nothing(self, chunk_storage: ChunkStore) -> None:
        drop = chunk_storage.store_chunk(b"drop me")
        result = chunk_storage.gc([], dry_run=True)
        assert result.removed == 1 and result.dry_run
        assert chunk_storage.has_chunk(drop)

    def test_gc_spares_chunks_younger_than_the_grace_period(self, chunk_storage: ChunkStore) -> None:
        young = chunk_storage.store_chunk(b"just written")
        result = chunk_storage.gc([], grace_seconds=3600)
        assert result.removed == 0 and result.spared_young == 1
        assert chunk_storage.has_chunk(young)

