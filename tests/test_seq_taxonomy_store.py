"""Stored taxdump versions (TaxonomyCatalog) and chunks found by taxon (TaxonomyIndexedStore)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from talaria_storage import open_database, open_store
from talaria_storage.core.errors import InputFormatError, InvalidKey, RefConflict, VersionNotFound
from talaria_storage.sequences.taxonomy import Taxonomy
from talaria_storage.sequences.taxonomy_store import (
    TaxonNotCurrent,
    TaxonomyCatalog,
    TaxonomyIndexedStore,
)
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store
from talaria_storage.testing import ChunkStorageConformance

NODES = [  # taxid, parent, rank
    (1, 1, "no rank"),
    (131567, 1, "no rank"),
    (2, 131567, "superkingdom"),
    (1224, 2, "phylum"),
    (561, 1224, "genus"),
    (562, 561, "species"),
    (83333, 562, "no rank"),
    (9606, 1, "species"),
]
MERGED = b"12\t|\t562\t|\n77\t|\t12\t|\n"  # 77 -> 12 -> 562
DELETED = b"999\t|\n"


def write_taxdump(folder: Path, nodes: list[tuple[int, int, str]] = NODES) -> Path:
    """A tiny NCBI taxdump: E. coli under Bacteria, and humans."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "nodes.dmp").write_text("".join(f"{t}\t|\t{p}\t|\t{r}\t|\t\t|\n" for t, p, r in nodes))
    (folder / "names.dmp").write_text("".join(f"{t}\t|\tname {t}\t|\t\t|\tscientific name\t|\n" for t, _, _ in nodes))
    (folder / "merged.dmp").write_bytes(MERGED)
    (folder / "delnodes.dmp").write_bytes(DELETED)
    return folder


@pytest.fixture
def store() -> Iterator[Store]:
    with open_store("memory://") as opened:
        yield opened


@pytest.fixture
def dump(tmp_path: Path) -> Path:
    return write_taxdump(tmp_path / "taxdump")


@pytest.fixture
def catalog(store: Store, dump: Path) -> TaxonomyCatalog:
    taxonomies = TaxonomyCatalog(store)
    taxonomies.import_taxdump(dump, "2013")
    return taxonomies


# ----------------------------------------------------------------------- stored taxdumps


def test_an_imported_taxdump_loads_back_equal_to_the_files(catalog: TaxonomyCatalog, dump: Path) -> None:
    assert catalog.load("2013") == Taxonomy.from_taxdump(dump)


def test_a_new_catalog_loads_the_stored_taxdump(store: Store, catalog: TaxonomyCatalog, dump: Path) -> None:
    assert TaxonomyCatalog(store).load() == Taxonomy.from_taxdump(dump)


def test_loading_twice_returns_the_cached_taxonomy(catalog: TaxonomyCatalog) -> None:
    assert catalog.load() is catalog.load("2013")


def test_importing_the_same_taxdump_twice_stores_one_object(store: Store, catalog: TaxonomyCatalog, dump: Path) -> None:
    again = catalog.import_taxdump(dump, "2013-copy")
    assert [v.object for v in catalog.versions()] == [again.object, again.object]
    assert len(store.enumerate_chunks()) == 1


def test_re_importing_a_version_with_the_same_content_is_a_no_op(catalog: TaxonomyCatalog, dump: Path) -> None:
    first = catalog.head()
    catalog.import_taxdump(dump, "2013")
    assert catalog.head() == first and len(catalog.versions()) == 1


def test_a_taken_version_name_with_other_content_is_refused(catalog: TaxonomyCatalog, tmp_path: Path) -> None:
    other = write_taxdump(tmp_path / "other", NODES + [(511145, 562, "strain")])
    with pytest.raises(RefConflict, match="taxonomy version name is taken"):
        catalog.import_taxdump(other, "2013")
    assert catalog.load("2013").status(511145) == "unknown"


def test_versions_are_kept_side_by_side_and_the_last_import_is_head(catalog: TaxonomyCatalog, tmp_path: Path) -> None:
    newer = write_taxdump(tmp_path / "2014", NODES + [(511145, 562, "strain")])
    catalog.import_taxdump(newer, "2014")
    assert [(v.version, v.is_head) for v in catalog.versions()] == [("2013", False), ("2014", True)]
    assert 511145 in catalog.load() and 511145 not in catalog.load("2013")
    assert catalog.head() is not None and catalog.head().version == "2014"  # type: ignore[union-attr]


def test_head_is_not_a_valid_version_name(store: Store, dump: Path) -> None:
    with pytest.raises(InvalidKey, match="HEAD"):
        TaxonomyCatalog(store).import_taxdump(dump, "HEAD")


def test_importing_a_path_that_is_not_a_folder_names_it(store: Store, tmp_path: Path) -> None:
    with pytest.raises(InputFormatError, match="missing.*not a folder"):
        TaxonomyCatalog(store).import_taxdump(tmp_path / "missing")


def test_loading_from_a_store_without_taxonomy_names_the_import_command(store: Store) -> None:
    with pytest.raises(VersionNotFound, match="taxonomy import"):
        TaxonomyCatalog(store).load()


def test_an_unknown_version_lists_the_stored_ones(catalog: TaxonomyCatalog) -> None:
    with pytest.raises(VersionNotFound, match=r"'2099'.*versions: 2013"):
        catalog.load("2099")


def test_taxonomy_refs_are_not_database_names(store: Store, catalog: TaxonomyCatalog) -> None:
    assert VersionCatalog(store).databases() == []


def test_a_merged_id_resolves_to_its_current_id(catalog: TaxonomyCatalog) -> None:
    assert catalog.resolve(12) == 562
    assert catalog.resolve(77) == 562


def test_a_deleted_id_is_reported_with_the_taxdump_version(catalog: TaxonomyCatalog) -> None:
    with pytest.raises(TaxonNotCurrent, match="taxon 999 was deleted in taxdump version 2013") as info:
        catalog.resolve(999)
    assert info.value.deleted and isinstance(info.value, KeyError)


def test_an_unknown_id_is_reported_with_the_taxdump_version(catalog: TaxonomyCatalog) -> None:
    with pytest.raises(TaxonNotCurrent, match="taxon 4242 is not in taxdump version 2013"):
        catalog.resolve(4242)


def test_descendants_cover_the_subtree_of_a_merged_id(catalog: TaxonomyCatalog) -> None:
    assert sorted(catalog.descendants(12)) == [562, 83333]
    assert sorted(catalog.descendants(1224)) == [561, 562, 1224, 83333]


@pytest.mark.shared_data
def test_the_wol_subset_taxdump_round_trips_through_the_store(store: Store, shared_data: Path) -> None:
    folder = shared_data / "taxonomy/wol_subset"
    catalog = TaxonomyCatalog(store)
    stored = catalog.import_taxdump(folder, "wol")
    assert TaxonomyCatalog(store).load_object(stored.object) == Taxonomy.from_taxdump(folder)


# ----------------------------------------------------------------------- TaxonomyStorage


class TestTaxonomyIndexedStoreIsAChunkStorage(ChunkStorageConformance):
    @pytest.fixture
    def chunk_storage(self, store: Store) -> TaxonomyIndexedStore:
        return TaxonomyIndexedStore(store)


@pytest.fixture
def indexed(store: Store) -> TaxonomyIndexedStore:
    return TaxonomyIndexedStore(store)


def test_a_labelled_chunk_is_found_by_each_of_its_taxa(indexed: TaxonomyIndexedStore) -> None:
    h = indexed.store_taxonomy_chunk(b"records of two taxa", [562, 9606], 2)
    assert indexed.find_chunks_by_taxon(562) == [h]
    assert indexed.find_chunks_by_taxon(9606) == [h]
    assert indexed.find_chunks_by_taxon(561) == []


def test_a_labelled_chunk_comes_back_with_its_taxa_and_record_count(indexed: TaxonomyIndexedStore) -> None:
    h = indexed.store_taxonomy_chunk(b"three records", [9606, 562], 3)
    chunk = indexed.get_taxonomy_chunk(h)
    assert (chunk.taxon_ids, chunk.record_count, chunk.data) == ((562, 9606), 3, b"three records")


def test_labels_survive_reopening_the_store(tmp_path: Path) -> None:
    with open_store(tmp_path / "store") as first:
        h = TaxonomyIndexedStore(first).store_taxonomy_chunk(b"persisted", [9606], 1)
    with open_store(tmp_path / "store", create=False) as again:
        assert TaxonomyIndexedStore(again).find_chunks_by_taxon(9606) == [h]


def test_labelling_a_chunk_again_adds_taxa(indexed: TaxonomyIndexedStore) -> None:
    h = indexed.store_taxonomy_chunk(b"shared", [562], 1)
    indexed.store_taxonomy_chunk(b"shared", [9606], 1)
    assert indexed.get_taxonomy_chunk(h).taxon_ids == (562, 9606)


def test_descendant_queries_use_the_stored_taxdump(store: Store, catalog: TaxonomyCatalog) -> None:
    indexed = TaxonomyIndexedStore(store)
    k12 = indexed.store_taxonomy_chunk(b"E. coli K-12 records", [83333], 1)
    human = indexed.store_taxonomy_chunk(b"human records", [9606], 1)
    assert indexed.find_chunks_by_taxon(561, descendants=True) == [k12]
    assert indexed.find_chunks_by_taxon(561) == []
    assert human not in indexed.find_chunks_by_taxon(2, descendants=True)


def test_a_chunk_labelled_with_a_merged_id_is_found_by_the_current_id(store: Store, catalog: TaxonomyCatalog) -> None:
    indexed = TaxonomyIndexedStore(store)
    h = indexed.store_taxonomy_chunk(b"labelled before the merge", [12], 1)
    assert indexed.find_chunks_by_taxon(562) == [h]


def test_a_descendant_query_for_a_deleted_taxon_is_reported(store: Store, catalog: TaxonomyCatalog) -> None:
    with pytest.raises(TaxonNotCurrent, match="taxon 999 was deleted in taxdump version 2013"):
        TaxonomyIndexedStore(store).find_chunks_by_taxon(999, descendants=True)


def test_a_descendant_query_needs_a_stored_taxdump(indexed: TaxonomyIndexedStore) -> None:
    with pytest.raises(VersionNotFound, match="taxonomy import"):
        indexed.find_chunks_by_taxon(561, descendants=True)


def test_a_pinned_taxdump_version_answers_descendant_queries(store: Store, catalog: TaxonomyCatalog, tmp_path: Path) -> None:
    catalog.import_taxdump(write_taxdump(tmp_path / "2014", NODES + [(511145, 562, "strain")]), "2014")
    old = TaxonomyIndexedStore(store, taxonomy_version="2013")
    h = old.store_taxonomy_chunk(b"strain records", [511145], 1)
    assert old.find_chunks_by_taxon(562, descendants=True) == []
    assert TaxonomyIndexedStore(store).find_chunks_by_taxon(562, descendants=True) == [h]


def test_chunks_of_imported_databases_are_found_by_taxon(store: Store, tmp_path: Path) -> None:
    fasta = tmp_path / "up.fa"
    fasta.write_bytes(b">sp|P1|A_ECOLI a OX=562\nMKVL\n>sp|P2|B_HUMAN b OX=9606\nMSTN\n")
    open_database(store, "up").import_files([fasta], version="v1")
    _, manifest = VersionCatalog(store).resolve("up")
    indexed = TaxonomyIndexedStore(store)
    assert indexed.find_chunks_by_taxon(562) == sorted(c.hash for c in manifest.chunks if 562 in c.taxa)
    for entry in manifest.chunks:
        chunk = indexed.get_taxonomy_chunk(entry.hash)
        assert (chunk.taxon_ids, chunk.record_count) == (entry.taxa, entry.records)


def test_stats_count_taxa_chunks_and_unclassified_chunks(indexed: TaxonomyIndexedStore) -> None:
    indexed.store_taxonomy_chunk(b"a", [562, 9606], 2)
    indexed.store_taxonomy_chunk(b"b", [562], 1)
    indexed.store_taxonomy_chunk(b"c", [], 1)
    stats = indexed.get_taxonomy_stats()
    assert (stats.total_taxa, stats.total_chunks, stats.unclassified_chunks) == (2, 3, 1)
    assert stats.chunks_per_taxon == {562: 2, 9606: 1}
