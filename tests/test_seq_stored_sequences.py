"""A sequence is stored once across imports and databases (talaria_storage.sequences.stored_sequences)."""

from __future__ import annotations

import io
import random
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage import open_database
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.index.local_index import open_index
from talaria_storage.sequences.canonical import sequence_keys
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.database import SequenceDatabase
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.sequences.manifest import ChunkEntry, Manifest
from talaria_storage.sequences.sequence_pack import PackReader, encode_pack
from talaria_storage.sequences.stored_sequences import KEY_PREFIX, StoredSequences
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store
from talaria_storage.sync.protocol import push

_RNG = random.Random(7)
PROTEINS = ["".join(_RNG.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(_RNG.randint(50, 400))) for _ in range(60)]


def _fasta(path: Path, names: list[str], sequences: list[str], width: int = 60) -> Path:
    lines = []
    for name, seq in zip(names, sequences):
        lines.append(f">{name} some description")
        lines.extend(seq[i : i + width] for i in range(0, len(seq), width))
    path.write_text("\n".join(lines) + "\n")
    return path


def _release(tmp_path: Path, name: str, indexes: list[int], prefix: str = "P") -> Path:
    return _fasta(tmp_path / name, [f"{prefix}{i:05d}" for i in indexes], [PROTEINS[i] for i in indexes])


def _export(db: SequenceDatabase, version: str | None = None) -> bytes:
    out = io.BytesIO()
    db.export(out, version=version)
    return out.getvalue()


def _own_slots(store: Store, manifest: Manifest) -> int:
    """How many residue strings a version's own packs hold (what it stored anew)."""
    return sum(len(PackReader(store.get_chunk(e.pack)).lengths()) for e in manifest.chunks if e.pack is not None)


def test_next_release_stores_only_the_sequences_it_adds(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    db.import_files([_release(tmp_path, "v1.fa", list(range(40)))], version="v1")
    shuffled = list(range(5, 45))
    random.Random(1).shuffle(shuffled)
    result = db.import_files([_release(tmp_path, "v2.fa", shuffled)], version="v2")
    _, manifest = db.manifest("v2")
    assert _own_slots(store, manifest) == 5  # records 40-44 are new; 5-39 were stored by v1
    assert result.reused_packs == len(manifest.reused_packs) > 0
    assert _export(db, "v1") == (tmp_path / "v1.fa").read_bytes()
    assert _export(db, "v2") == (tmp_path / "v2.fa").read_bytes()


def test_a_sequence_carried_by_two_databases_is_stored_once(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    first = open_database(store, "first")
    first.import_files([_release(tmp_path, "a.fa", list(range(30)))], version="v1")
    second = open_database(store, "second")
    other_headers = _release(tmp_path, "b.fa", list(range(30)), prefix="Q")
    result = second.import_files([other_headers], version="v1")
    _, manifest = second.manifest()
    assert result.new_packs == 0 and all(e.pack is None for e in manifest.chunks)
    assert {h for h, _ in manifest.reused_packs} == {e.pack for e in first.manifest()[1].chunks if e.pack}
    assert _export(second) == other_headers.read_bytes()
    assert second.get_all("Q00007")[0].residues.decode() == PROTEINS[7]


def test_same_history_in_two_stores_gives_the_same_objects(tmp_path: Path) -> None:
    v1, v2 = _release(tmp_path, "v1.fa", list(range(30))), _release(tmp_path, "v2.fa", list(range(10, 50)))
    manifests = []
    for _ in range(2):
        db = open_database(Store(MemoryBackend()), "db")
        db.import_files([v1], version="v1")
        db.import_files([v2], version="v2")
        manifests.append(db.manifest("v2")[1])
    assert manifests[0].chunk_hashes() == manifests[1].chunk_hashes()
    assert manifests[0].object_hashes() == manifests[1].object_hashes()


def test_reused_packs_survive_gc_after_the_version_that_stored_them_is_deleted(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    db.import_files([_release(tmp_path, "v1.fa", list(range(30)))], version="v1")
    db.import_files([_release(tmp_path, "v2.fa", list(range(25, 35)))], version="v2")
    VersionCatalog(store).delete_version("db", "v1")
    collect_garbage(store, grace_seconds=0)
    assert _export(db, "v2") == (tmp_path / "v2.fa").read_bytes()
    assert verify_store(store) == []


def test_a_deleted_versions_sequences_are_stored_again_not_referred_to(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    db.import_files([_release(tmp_path, "v1.fa", list(range(20)))], version="v1")
    db.import_files([_release(tmp_path, "v2.fa", list(range(40, 50)))], version="v2")
    VersionCatalog(store).delete_version("db", "v1")
    db.import_files([_release(tmp_path, "v3.fa", list(range(20)))], version="v3")
    _, manifest = db.manifest("v3")
    assert manifest.reused_packs == () and _own_slots(store, manifest) == 20
    collect_garbage(store, grace_seconds=0)
    assert _export(db, "v3") == (tmp_path / "v3.fa").read_bytes()


def test_a_lost_index_is_refilled_from_the_manifests(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    open_database(store, "db").import_files([_release(tmp_path, "v1.fa", list(range(30)))], version="v1")
    fresh = SequenceDatabase(store, "db", index=open_index("memory", None))  # knows nothing of v1
    fresh.import_files([_release(tmp_path, "v2.fa", list(range(30)), prefix="Q")], version="v2")
    _, manifest = fresh.manifest("v2")
    assert _own_slots(store, manifest) == 0 and manifest.reused_packs


def test_a_map_entry_naming_a_pack_no_version_needs_is_ignored(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    db.import_files([_release(tmp_path, "v1.fa", [0, 1])], version="v1")
    source = _release(tmp_path, "v2.fa", list(range(2, 12)))
    bogus = SHA256Hash.from_hex("ab" * 32)
    # Every key of the index's sequence map now points at a pack that is not in the store.
    entries = [(k, v) for k, v in db.index.scan(KEY_PREFIX)]
    db.index.write_batch([(k, bogus.digest + v[32:]) for k, v in entries])
    db.import_files([source], version="v2")
    assert bogus not in db.manifest("v2")[1].object_hashes()
    assert _export(db, "v2") == source.read_bytes()


def test_sync_sends_the_packs_a_version_reuses_from_another_database(tmp_path: Path) -> None:
    local, remote = Store(MemoryBackend()), Store(MemoryBackend())
    open_database(local, "first").import_files([_release(tmp_path, "a.fa", list(range(30)))], version="v1")
    source = _release(tmp_path, "b.fa", list(range(20, 40)), prefix="Q")
    open_database(local, "second").import_files([source], version="v1")
    push(local, remote, ["second"])
    assert remote.refs.get("refs/first/HEAD") is None
    assert _export(open_database(remote, "second")) == source.read_bytes()
    assert verify_store(remote) == []


def test_a_manifest_lists_its_reused_packs_among_its_objects() -> None:
    pack = SHA256Hash.from_hex("cd" * 32)
    manifest = Manifest("db", "v", 0.0, (), (), reused_packs=((pack, 123),))
    again = Manifest.from_bytes(manifest.to_bytes())
    assert again.reused_packs == ((pack, 123),)
    assert [(o.kind, o.hash, o.size) for o in again.objects()] == [("sequence pack", pack, 123)]
    assert b'"format_version":2' in manifest.to_bytes()
    assert b'"format_version":1' in Manifest("db", "v", 0.0, (), ()).to_bytes()


def test_a_pack_missing_from_the_store_is_never_lent_to_a_new_version(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    open_database(store, "db").import_files([_release(tmp_path, "v1.fa", list(range(20)))], version="v1")
    for entry in open_database(store, "db").manifest()[1].chunks:
        store.backend.delete(store.key_for(entry.pack))  # a damaged store, and an index that knows nothing
    fresh = SequenceDatabase(store, "other", index=open_index("memory", None))
    source = _release(tmp_path, "b.fa", list(range(20)), prefix="Q")
    fresh.import_files([source], version="v1")
    assert fresh.manifest()[1].reused_packs == ()
    assert _export(fresh) == source.read_bytes()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    releases=st.lists(
        st.lists(st.tuples(st.integers(0, len(PROTEINS) - 1), st.booleans()), min_size=1, max_size=25),
        min_size=1,
        max_size=4,
    )
)
def test_every_distinct_canonical_sequence_is_stored_once_and_every_release_exports_exactly(
    tmp_path: Path, releases: list[list[tuple[int, bool]]]
) -> None:
    store = Store(MemoryBackend())
    db = open_database(store, "db")
    distinct: set[str] = set()
    for number, picks in enumerate(releases):
        sequences = [PROTEINS[i].lower() if masked else PROTEINS[i] for i, masked in picks]
        distinct.update(seq.upper() for seq in sequences)  # soft-masked copies are the same sequence
        path = _fasta(tmp_path / f"r{number}.fa", [f"R{number}_{k}" for k in range(len(picks))], sequences)
        db.import_files([path], version=f"r{number}")
    stored = sum(_own_slots(store, db.manifest(f"r{n}")[1]) for n in range(len(releases)))
    assert stored == len(distinct)
    for number in range(len(releases)):
        assert _export(db, f"r{number}") == (tmp_path / f"r{number}.fa").read_bytes()


def test_a_slot_that_kept_soft_masked_letters_is_never_lent() -> None:
    # Packs written before residue edits held residues as written; an edit applies to canonical ones.
    store = Store(MemoryBackend())
    pack = store.store_chunk(encode_pack([b"MKVL", b"mkvl", b"acgt"], None), compress=False)
    manifest = Manifest("db", "v", 0.0, (), (ChunkEntry(SHA256Hash(bytes(32)), (), 3, 12, 0, 0, pack, 1),))
    stored = StoredSequences(store, open_index("memory", None))
    stored.live = {pack.digest: 1}
    stored._map_version(SHA256Hash(bytes([1]) * 32), manifest)
    mkvl, acgt = sequence_keys(b"MKVL")[1], sequence_keys(b"ACGT")[1]
    assert stored.find([mkvl, acgt]) == {mkvl: (pack.digest, 0)}


def test_a_ref_to_a_missing_manifest_does_not_stop_an_import_into_another_database(tmp_path: Path) -> None:
    store = Store(MemoryBackend())
    open_database(store, "broken").import_files([_release(tmp_path, "a.fa", list(range(5)))], version="v1")
    for h in set(store.refs.list("refs/broken/").values()):
        store.backend.delete(store.manifests.key_for(h))
    db = SequenceDatabase(store, "fine", index=open_index("memory", None))
    source = _release(tmp_path, "b.fa", list(range(5, 10)))
    db.import_files([source], version="v1")
    assert _export(db) == source.read_bytes()
