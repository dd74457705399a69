"""Look-ups by accession and digest: snapshots, the point-get index, single-record reads, caches.

Behaviour only: every look-up is checked against a full scan of the version's
chunks (``decode_records``, which reads whole chunks and packs, not the
single-record path under test). Speed is measured in ``benchmarks/``.
"""

from __future__ import annotations

import gc
import json
import random
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest
from talaria_storage.backends.faults import RequestCountingBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.core.errors import AmbiguousIdentifier, CompressionError, VersionNotFound
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.formats.fasta import FastaRecord, SequenceRecord
from talaria_storage.sequences import database as database_module
from talaria_storage.sequences.canonical import digests
from talaria_storage.sequences.chunking import ChunkingPolicy
from talaria_storage.sequences.database import INDEX_LAYOUT, SequenceDatabase
from talaria_storage.sequences.identifiers import accession_from_header
from talaria_storage.sequences.nucleotide_blocks import NucleotideBlock, nucleotide_payload
from talaria_storage.sequences.record_chunk import (
    ChunkReader,
    _ref_exceptions,
    decode_records,
    encode_chunk,
)
from talaria_storage.sequences.sequence_pack import PackReader, encode_pack
from talaria_storage.sequences.streams import NUC2, NUC4, RESIDUES, ChunkCodec, LRUCache
from talaria_storage.storage.store import Store

SMALL_BLOCKS = ChunkCodec(block_size=4096)
SMALL_CHUNKS = ChunkingPolicy(min_size=2 << 10, target_size=6 << 10, max_size=12 << 10, memory_budget=12 << 10)
AMINO = b"ACDEFGHIKLMNPQRSTVWY"


def _proteins(rnd: random.Random, count: int) -> bytes:
    """UniProt-like records over 9 taxa: repeated accessions, repeated and re-cased sequences."""
    shared = [bytes(rnd.choice(AMINO) for _ in range(rnd.randrange(20, 400))) for _ in range(40)]
    out = []
    for i in range(count):
        acc = f"P{rnd.randrange(count // 2):05d}"  # about half the accessions occur more than once
        if rnd.random() < 0.3:
            seq = rnd.choice(shared)  # the same sequence in many records and chunks
            seq = seq.lower() if rnd.random() < 0.2 else seq
        else:
            seq = bytes(rnd.choice(AMINO) for _ in range(rnd.randrange(1, 900)))
        lines = b"\n".join(seq[k : k + 60] for k in range(0, len(seq), 60))
        out.append(b">sp|%s|N%d_X Protein %d OS=x OX=%d\n%s\n" % (acc.encode(), i, i, 100 + i % 9, lines))
    return b"".join(out)


def _nucleotides(rnd: random.Random, count: int) -> bytes:
    """rRNA-like records: soft-masked stretches, runs of N, other IUPAC codes, repeats."""
    out: list[bytes] = []
    for i in range(count):
        if out and rnd.random() < 0.3:  # an identical copy of an earlier record's sequence
            out.append(b">G%06d copy\n%s" % (i // 2, rnd.choice(out).split(b"\n", 1)[1]))
            continue
        seq = bytearray(rnd.choice(b"ACGT") for _ in range(rnd.randrange(50, 3000)))
        for _ in range(rnd.randrange(0, 3)):
            at = rnd.randrange(len(seq))
            seq[at : at + rnd.randrange(1, 40)] = b"N" * 40
        for _ in range(rnd.randrange(0, 3)):
            at = rnd.randrange(len(seq))
            seq[at : at + 30] = seq[at : at + 30].lower()
        if rnd.random() < 0.2:
            seq[rnd.randrange(len(seq))] = rnd.choice(b"RYSWKMBDHV")
        out.append(b">G%06d\n%s\n" % (i // 2, bytes(seq)))  # two records per accession, as in WoL
    return b"".join(out)


def _import(
    tmp_path: Path, data: bytes, name: str = "db", *, store: Store | None = None, lookup_table: bool = True
) -> SequenceDatabase:
    """A database of ``data``; ``lookup_table=False``: looked up through the local index."""
    path = tmp_path / f"{name}.fa"
    path.write_bytes(data)
    db = SequenceDatabase(
        store or Store(MemoryBackend()), name, codec=SMALL_BLOCKS, chunking=SMALL_CHUNKS, lookup_table=lookup_table
    )
    db.import_files([path], version="v1", taxonomy="header" if data.startswith(b">sp|") else "none")
    return db


def _full_scan(db: SequenceDatabase, version: str | None = None) -> Iterator[tuple[SequenceRecord, str]]:
    """Every record of a version with its accession, in manifest chunk order, from whole chunks."""
    _, manifest = db.manifest(version)
    for entry in manifest.chunks:
        chunk = db.store.get_chunk(entry.hash)
        packs = [db.store.get_chunk(h) for h in ChunkReader(chunk).pack_hashes()]
        records, _ = decode_records(chunk, *packs)
        for record in records:
            yield record, accession_from_header(record.header)


@pytest.fixture(scope="module")
def proteins(tmp_path_factory: pytest.TempPathFactory) -> SequenceDatabase:
    return _import(tmp_path_factory.mktemp("proteins"), _proteins(random.Random(7), 1500))


@pytest.fixture(scope="module")
def nucleotides(tmp_path_factory: pytest.TempPathFactory) -> SequenceDatabase:
    return _import(tmp_path_factory.mktemp("nucleotides"), _nucleotides(random.Random(8), 400))


@pytest.fixture(scope="module")
def proteins_local(tmp_path_factory: pytest.TempPathFactory) -> SequenceDatabase:
    """:func:`proteins` without a stored look-up table (as versions of earlier releases)."""
    return _import(tmp_path_factory.mktemp("proteins"), _proteins(random.Random(7), 1500), lookup_table=False)


@pytest.fixture(scope="module")
def nucleotides_local(tmp_path_factory: pytest.TempPathFactory) -> SequenceDatabase:
    return _import(tmp_path_factory.mktemp("nucleotides"), _nucleotides(random.Random(8), 400), lookup_table=False)


# ------------------------------------------------------------------------------ same as a full scan


@pytest.mark.parametrize("which", ["proteins", "nucleotides", "proteins_local", "nucleotides_local"])
def test_lookups_by_accession_equal_a_full_scan(which: str, request: pytest.FixtureRequest) -> None:
    db: SequenceDatabase = request.getfixturevalue(which)
    by_accession: dict[str, list[SequenceRecord]] = {}
    for record, accession in _full_scan(db):
        by_accession.setdefault(accession, []).append(record)
    assert len(db.manifest()[1].chunks) > 5  # several chunks, so packs refer across chunks
    assert any(len(found) > 1 for found in by_accession.values())
    snapshot = db.snapshot()
    for accession in random.Random(1).sample(sorted(by_accession), 150):
        assert snapshot.get_all(accession) == by_accession[accession]
        assert db.get_all(accession) == by_accession[accession]
        if len(by_accession[accession]) == 1:
            assert snapshot[accession] == by_accession[accession][0]
        else:
            with pytest.raises(AmbiguousIdentifier, match=r"names \d+ records of db@v1"):
                snapshot[accession]


def _next_release(rnd: random.Random, data: bytes) -> bytes:
    """``data`` with a few records changed, removed and added, as a new release changes them."""
    records = [b">" + r for r in data.split(b"\n>")]
    records[0] = records[0][1:]
    for i in rnd.sample(range(len(records)), 6):
        head, _, body = records[i].partition(b"\n")
        records[i] = head + b"\nWWW" + body
    for i in sorted(rnd.sample(range(len(records)), 3), reverse=True):
        del records[i]
    records += [b">sp|Q%05d|NEW%d_X added OX=101\nMKV%s" % (rnd.randrange(99999), i, b"A" * i) for i in range(4)]
    return b"\n".join(r.rstrip(b"\n") for r in records) + b"\n"


def test_each_release_indexes_only_its_changed_records_and_finds_every_record(tmp_path: Path) -> None:
    rnd = random.Random(11)
    data = _proteins(rnd, 1200)
    db = _import(tmp_path, data)
    layers = []
    for n in range(2, 8):
        data = _next_release(rnd, data)
        path = tmp_path / f"v{n}.fa"
        path.write_bytes(data)
        db.import_files([path], version=f"v{n}", taxonomy="header")
        lookup = db.manifest()[1].lookup
        assert lookup is not None
        layers.append(len(lookup.layers))
        if len(lookup.layers) > 1:  # its own layer holds the changed records only
            assert lookup.layers[0].table.rows < 0.05 * lookup.rows
        by_accession: dict[str, list[SequenceRecord]] = {}
        manifest = db.manifest()[1]
        for entry in db.entries():  # every record, through the database (its chunks use dictionaries)
            by_accession.setdefault(entry.accession, []).append(db._record_at(manifest, entry.chunk, entry.index))
        snapshot = db.snapshot()
        for accession in rnd.sample(sorted(by_accession), 60):
            assert snapshot.get_all(accession) == by_accession[accession]
        for record in rnd.sample([r for found in by_accession.values() for r in found], 20):
            assert record in snapshot.get_all(digests(record.residues).refget)
    assert layers[:2] == [2, 3] and max(layers) == 3  # then the small layers are folded into the new one


def test_a_look_up_of_a_record_no_newer_layer_holds_reads_no_partition_of_theirs(tmp_path: Path) -> None:
    rnd = random.Random(12)
    data = _proteins(rnd, 1200)
    store = Store(MemoryBackend())
    db = _import(tmp_path, data, store=store)

    def alone(release: bytes) -> set[bytes]:  # (accession, record) of the accessions of one record
        by_accession: dict[bytes, list[bytes]] = {}
        for record in release.lstrip(b">").split(b"\n>"):
            by_accession.setdefault(record.split(b"|")[1], []).append(record.rstrip(b"\n"))
        return {accession + b"\0" + found[0] for accession, found in by_accession.items() if len(found) == 1}

    unchanged = alone(data)
    for n in (2, 3):
        data = _next_release(rnd, data)
        unchanged &= alone(data)
        (tmp_path / f"v{n}.fa").write_bytes(data)
        db.import_files([tmp_path / f"v{n}.fa"], version=f"v{n}", taxonomy="header")
    lookup = db.manifest()[1].lookup
    assert lookup is not None and len(lookup.layers) == 3
    assert all(layer.filter is not None for layer in lookup.layers[:2]) and lookup.layers[2].filter is None
    newer = {part.hash for layer in lookup.layers[:2] for part in layer.table.partitions}
    get_chunk = store.get_chunk
    reading_newer = 0
    for accession in rnd.sample(sorted(a.split(b"\0")[0] for a in unchanged), 60):
        read: list[SHA256Hash] = []
        fresh = SequenceDatabase(store, "db")  # a fresh process: no partition decoded yet
        fresh.store.get_chunk = lambda h, read=read: read.append(h) or get_chunk(h)  # type: ignore[method-assign, misc]
        assert fresh.get_all(accession.decode())
        reading_newer += bool(newer & set(read))
        del fresh.store.get_chunk
    # Each layer's filter says "maybe" for about 1 key in 100 it does not hold (without the
    # filters, all 60 would read both newer partitions).
    assert reading_newer <= 3


def test_a_release_that_rewrote_a_fifth_of_the_records_carries_no_filter(tmp_path: Path) -> None:
    rnd = random.Random(13)
    data = _proteins(rnd, 1200)
    db = _import(tmp_path, data)
    records = data.split(b"\n>")
    for i in rnd.sample(range(len(records)), 240):  # a fifth: more than FILTERED_SHARE of the rows
        head, _, body = records[i].partition(b"\n")
        records[i] = head + b"\nWWW" + body
    (tmp_path / "v2.fa").write_bytes(b"\n>".join(records))
    db.import_files([tmp_path / "v2.fa"], version="v2", taxonomy="header")
    lookup = db.manifest()[1].lookup
    assert lookup is not None and len(lookup.layers) == 2  # layered, as a release of a fifth is
    assert lookup.layers[0].filter is None  # its filter would be copied into every later manifest


def test_lookups_by_digest_equal_a_full_scan(proteins: SequenceDatabase) -> None:
    records = [record for record, _ in _full_scan(proteins)]
    snapshot = proteins.snapshot()
    for record in random.Random(2).sample(records, 60):
        d = digests(record.residues)
        expected = [r for r in records if digests(r.residues).sha256 == d.sha256]
        for identifier in (d.sha256.to_hex(), d.refget, "ga4gh:" + d.refget, "md5:" + d.md5, d.md5):
            assert snapshot.get_all(identifier) == expected


def test_an_unknown_identifier_finds_nothing(proteins: SequenceDatabase) -> None:
    snapshot = proteins.snapshot()
    assert snapshot.get_all("NO_SUCH_ACCESSION") == []
    assert snapshot.get_all(digests(b"NOT STORED").sha256.to_hex()) == []
    with pytest.raises(KeyError):
        snapshot["NO_SUCH_ACCESSION"]


def test_lookups_are_right_with_caches_too_small_to_hold_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database_module, "READER_CACHE_BYTES", 1)
    monkeypatch.setattr(database_module, "BLOCK_CACHE_BYTES", 1)
    db = _import(tmp_path, _nucleotides(random.Random(9), 120))
    expected: dict[str, list[SequenceRecord]] = {}
    for record, accession in _full_scan(db):
        expected.setdefault(accession, []).append(record)
    snapshot = db.snapshot()
    for accession in sorted(expected):
        assert snapshot.get_all(accession) == expected[accession]
    assert len(db._blocks) == 0 and len(db._readers) == 0


def test_a_dropped_database_frees_its_caches_without_the_cyclic_gc(tmp_path: Path) -> None:
    db = _import(tmp_path, _nucleotides(random.Random(10), 100))
    snapshot = db.snapshot()
    for _, accession in list(_full_scan(db))[:50]:
        snapshot.get_all(accession)
    assert len(db._readers) and len(db._blocks)
    dropped, blocks = weakref.ref(db), weakref.ref(db._blocks)
    gc.disable()
    try:
        del db, snapshot
        assert dropped() is None and blocks() is None  # no reference cycle kept them
    finally:
        gc.enable()


# ------------------------------------------------------------------------------ versions


def test_a_snapshot_keeps_its_version_after_a_new_import_and_get_sees_the_new_head(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = _import(tmp_path, b">sp|P1|A OX=1\nMKVL\n>sp|P2|B OX=1\nMAAA\n", "up", store=store)
    pinned = db.snapshot()
    assert pinned.version == "v1"
    v2 = tmp_path / "v2.fa"
    v2.write_bytes(b">sp|P1|A OX=1\nMKVLQQ\n>sp|P3|C OX=2\nMCCC\n")
    db.import_files([v2], version="v2")
    assert [r.residues for r in pinned.get_all("P1")] == [b"MKVL"]
    assert pinned.get_all("P3") == [] and pinned["P2"].residues == b"MAAA"
    assert [r.residues for r in db.get_all("P1")] == [b"MKVLQQ"]
    assert db["P3"].residues == b"MCCC"
    assert db.get_all("P2") == []
    assert db.snapshot().version == "v2" and db.snapshot()["P3"].residues == b"MCCC"
    assert db.snapshot("v1")["P2"].residues == b"MAAA"
    assert [r.residues for r in db.get_all("P1", version="v1")] == [b"MKVL"]


def test_get_sees_a_head_another_writer_published(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    reader = _import(tmp_path, b">sp|P1|A OX=1\nMKVL\n", "up", store=store)
    assert reader["P1"].residues == b"MKVL"
    pinned = reader.snapshot()
    writer = SequenceDatabase(store, "up", codec=SMALL_BLOCKS)  # another handle: its own caches and index
    v2 = tmp_path / "v2.fa"
    v2.write_bytes(b">sp|P1|A OX=1\nMKKK\n")
    writer.import_files([v2], version="v2")
    assert reader["P1"].residues == b"MKKK"
    assert pinned["P1"].residues == b"MKVL"


def test_a_snapshot_of_an_unknown_version_is_version_not_found(proteins: SequenceDatabase) -> None:
    with pytest.raises(VersionNotFound):
        proteins.snapshot("no-such-version")


def test_snapshot_lookups_read_no_ref_and_get_reads_head_each_time(tmp_path: Path) -> None:
    counting = RequestCountingBackend(MemoryBackend())
    db = _import(tmp_path, _proteins(random.Random(3), 200), store=Store(counting))
    accessions = sorted({a for _, a in _full_scan(db)})[:20]
    snapshot = db.snapshot()
    for accession in accessions:
        snapshot.get_all(accession)
    before = counting.counts
    for accession in accessions:
        snapshot.get_all(accession)
    assert counting.counts == before  # warm: no ref, no object read at all
    for accession in accessions:
        db.get_all(accession)
    assert counting.counts.get("read_versioned", 0) - before.get("read_versioned", 0) == len(accessions)


def test_a_lookup_reads_only_the_pack_its_record_refers_to(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = _import(tmp_path, _proteins(random.Random(4), 1500), store=store)
    _, manifest = db.manifest()
    ci, reader = next(
        (ci, r) for ci, r in ((ci, ChunkReader(store.get_chunk(e.hash))) for ci, e in enumerate(manifest.chunks))
        if len(r.pack_hashes()) > 1
    )
    ri = next(i for i, (p, _) in enumerate(reader.refs()) if p == 0)
    fetched: list[SHA256Hash] = []
    get_chunk = store.get_chunk

    def counting_get_chunk(h: SHA256Hash) -> bytes:
        fetched.append(h)
        return get_chunk(h)

    open_ranges = store.open_ranges

    def counting_open_ranges(h: SHA256Hash) -> object:
        fetched.append(h)
        return open_ranges(h)

    store.get_chunk = counting_get_chunk  # type: ignore[method-assign, assignment]
    store.open_ranges = counting_open_ranges  # type: ignore[method-assign, assignment]
    fresh = SequenceDatabase(store, "db")
    record = fresh._record_at(manifest, ci, ri)
    assert record == decode_records(store.get_chunk(manifest.chunks[ci].hash),
                                    *[store.get_chunk(h) for h in reader.pack_hashes()])[0][ri]
    assert fetched[:2] == [manifest.chunks[ci].hash, reader.pack_hashes()[0]]
    assert len(fetched) == 2 + 1 + len(reader.pack_hashes())  # the two it needed, then the check's own


# ------------------------------------------------------------------------------ the index


def _prefix(db: SequenceDatabase) -> bytes:
    return b"m/" + db.manifest()[0].to_hex().encode() + b"/"


def test_the_index_is_one_point_get_per_identifier_under_a_marker_of_its_layout(proteins_local: SequenceDatabase) -> None:
    proteins_local.snapshot()
    prefix = _prefix(proteins_local)
    marker = json.loads(proteins_local.index.get(prefix + b"built") or b"null")
    assert marker["layout"] == INDEX_LAYOUT
    acc = next(a for _, a in _full_scan(proteins_local))
    value = proteins_local.index.get(prefix + b"acc/" + acc.encode())
    assert value is not None and len(value) % 8 == 0
    assert proteins_local.snapshot().positions(acc) == [
        (int.from_bytes(value[k : k + 4], "big"), int.from_bytes(value[k + 4 : k + 8], "big"))
        for k in range(0, len(value), 8)
    ]


def test_an_index_of_the_previous_layout_is_dropped_and_rebuilt(tmp_path: Path) -> None:
    db = _import(tmp_path, b">sp|P1|A OX=1\nMKVL\n>sp|P2|B OX=1\nMAAA\n", "up", lookup_table=False)
    prefix = _prefix(db)
    db.index.delete_prefix(prefix)
    # Layout 1: one key per position, read by prefix scans, and a marker without a layout. Here
    # it (wrongly) says P1 is record 1: a reader that trusted it would return P2's record.
    db.index.write_batch([
        (prefix + b"acc/P1\x00" + b"\x00\x00\x00\x00\x00\x00\x00\x01", b""),
        (prefix + b"built", json.dumps({"unique_sequences": 2}).encode()),
    ])
    assert [r.residues for r in db.get_all("P1")] == [b"MKVL"]
    assert [k for k, _ in db.index.scan(prefix + b"acc/P1\x00")] == []
    assert json.loads(db.index.get(prefix + b"built") or b"null") == {"unique_sequences": 2, "layout": INDEX_LAYOUT}


def test_entries_without_a_marker_are_rebuilt_not_trusted(tmp_path: Path) -> None:
    db = _import(tmp_path, b">sp|P1|A OX=1\nMKVL\n>sp|P2|B OX=1\nMAAA\n", "up", lookup_table=False)
    prefix = _prefix(db)
    db.index.delete_prefix(prefix)
    db.index.write_batch([(prefix + b"acc/P1", b"\x00\x00\x00\x00\x00\x00\x00\x01")])  # half a build, wrong
    assert [r.residues for r in db.get_all("P1")] == [b"MKVL"]


def test_a_whole_index_is_trusted_not_rebuilt(proteins_local: SequenceDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    proteins_local.snapshot()

    def no_walk(*args: object) -> None:
        raise AssertionError("the index was rebuilt")

    monkeypatch.setattr(proteins_local, "_walk", no_walk)
    accession = next(a for _, a in _full_scan(proteins_local))
    assert proteins_local.get_all(accession)
    assert proteins_local.stats().records == proteins_local.manifest()[1].records


def test_an_index_built_in_many_small_batches_is_the_same(
    proteins_local: SequenceDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    proteins_local.snapshot()
    prefix = _prefix(proteins_local)
    whole = dict(proteins_local.index.scan(prefix))
    monkeypatch.setattr(database_module, "INDEX_BUILD_KEYS", 7)  # merges with earlier batches all along
    proteins_local.index.delete_prefix(prefix)
    proteins_local.snapshot()
    assert dict(proteins_local.index.scan(prefix)) == whole


# ------------------------------------------------------------------------------ reading one record


def test_one_reference_equals_the_decoded_reference_table(proteins: SequenceDatabase) -> None:
    explicit = 0
    for entry in proteins.manifest()[1].chunks:
        reader = ChunkReader(proteins.store.get_chunk(entry.hash))
        refs = ChunkReader(proteins.store.get_chunk(entry.hash)).refs()
        assert [reader.ref(i) for i in range(len(reader))] == refs
        explicit += sum(1 for i, (p, slot) in enumerate(refs) if p)
    assert explicit  # some records refer to the packs of earlier chunks


def test_explicit_references_with_multi_byte_varints() -> None:
    pack = encode_pack([b"M" * (k + 1) for k in range(300)])
    refs = [(0, 0), (1, 299), (0, 1), (0, 200), (1, 0), (0, 2)]
    chunk = encode_chunk([b"r%d" % i for i in range(len(refs))], [FastaRecord(b"r", b"M").layout] * len(refs),
                         [0] * len(refs), refs, [SHA256Hash.compute(pack), SHA256Hash.compute(pack)])
    reader = ChunkReader(chunk)
    assert [reader.ref(i) for i in range(len(refs))] == refs == ChunkReader(chunk).refs()


@pytest.mark.parametrize("stream,count,packs", [
    (b"\x00\x02", 2, 1),  # pack index past the table
    (b"\x00\x01", 2, 1),  # a pack index without its slot
    (b"\x00\x01\x80", 2, 1),  # a slot varint cut short
    (b"\x00\x00", 3, 1),  # fewer references than records
    (b"\x00", 1, 0),  # records but no pack table
])
def test_a_corrupt_reference_stream_is_a_compression_error(stream: bytes, count: int, packs: int) -> None:
    with pytest.raises(CompressionError):
        _ref_exceptions(stream, count, packs)


def _nucleotide_text(rnd: random.Random, size: int) -> bytes:
    text = bytearray(rnd.choice(b"ACGT") for _ in range(size))
    for _ in range(12):
        at = rnd.randrange(size)
        run = len(text[at : at + rnd.randrange(1, 30)])
        text[at : at + run] = b"N" * run
    for _ in range(12):
        at = rnd.randrange(size)
        text[at : at + 25] = text[at : at + 25].lower()
    for _ in range(5):
        text[rnd.randrange(size)] = rnd.choice(b"RYSWKMBDHV-")
    return bytes(text)


@pytest.mark.parametrize("bits", [4, 2])
def test_a_packed_nucleotide_block_gives_any_range_of_its_letters(bits: int) -> None:
    rnd = random.Random(bits)
    text = _nucleotide_text(rnd, 5001)
    payload = nucleotide_payload(text, text.upper(), bits)
    assert payload is not None
    block = NucleotideBlock(payload, bits, len(text))
    assert block.slice(0, len(text)) == text
    for _ in range(500):
        start = rnd.randrange(len(text) + 1)
        end = rnd.randrange(start, min(len(text), start + 400) + 1)
        assert block.slice(start, end) == text[start:end]


def test_a_packed_nucleotide_block_that_does_not_add_up_is_a_compression_error() -> None:
    text = b"ACGTACGTACGTACGTACGTNacgt" * 50
    payload = nucleotide_payload(text, text.upper(), 2)
    assert payload is not None
    with pytest.raises(CompressionError):
        NucleotideBlock(payload[:-3], 2, len(text))  # codes cut short
    with pytest.raises(CompressionError):
        NucleotideBlock(payload, 2, 10)  # stretches past the block


def test_residues_of_packed_nucleotide_blocks_through_a_shared_cache() -> None:
    rnd = random.Random(11)
    sequences = [_nucleotide_text(rnd, rnd.randrange(10, 3000)) for _ in range(40)]
    pack = encode_pack(sequences, codec=SMALL_BLOCKS)
    encodings = {b[0] for b in PackReader(pack)._streams[RESIDUES].blocks}
    assert encodings & {NUC2, NUC4}
    cache = LRUCache(1 << 20)
    shared = PackReader(pack, blocks=cache, owner=b"pack")
    again = PackReader(pack, blocks=cache, owner=b"pack")  # a second reader of the same pack
    for slot in rnd.sample(range(len(sequences)), len(sequences)):
        assert shared.residues(slot) == sequences[slot]
        assert shared.residues(slot, 5, 60) == sequences[slot][5:60]
    held = len(cache)
    assert held == len(PackReader(pack)._streams[RESIDUES].blocks)
    assert [again.residues(slot) for slot in range(len(sequences))] == sequences
    assert len(cache) == held  # decoded once, for both readers
    assert PackReader(pack).sequences() == sequences


def test_a_shared_block_cache_needs_an_owner() -> None:
    with pytest.raises(ValueError):
        PackReader(encode_pack([b"ACGT"]), blocks=LRUCache(100))


def test_the_lru_cache_keeps_at_most_its_budget_dropping_the_least_recently_used() -> None:
    cache = LRUCache(10)
    cache.put("a", b"aaaa", 4)
    cache.put("b", b"bbbb", 4)
    assert cache.get("a") == b"aaaa"  # a is now the most recently used
    cache.put("c", b"cccc", 4)
    assert cache.get("b") is None and cache.get("a") == b"aaaa" and cache.get("c") == b"cccc"
    assert cache.nbytes == 8
    cache.put("big", b"x" * 11, 11)  # larger than the whole budget: not kept
    assert cache.get("big") is None and cache.nbytes == 8
    cache.put("a", b"aa", 2)  # replacing an entry counts its new size
    assert cache.nbytes == 6 and len(cache) == 2
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0
