"""NCBI taxdump reading, the Taxonomy object, its serialised form, and taxon sources."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import zstandard

from talaria_storage.core.errors import InputFormatError
from talaria_storage.sequences.identifiers import accession_from_header
from talaria_storage.sequences.taxonomy import (
    AccessionTaxonMap,
    Taxonomy,
    UnknownTaxon,
    iter_accession_taxids,
    taxon_from_header,
)

NODES = [  # taxid, parent, rank
    (1, 1, "no rank"),
    (2, 131567, "superkingdom"),
    (131567, 1, "no rank"),
    (1224, 2, "phylum"),
    (562, 561, "species"),
    (561, 1224, "genus"),
    (83333, 562, "no rank"),
    (9606, 1, "species"),
]
NAMES = {
    1: "root",
    2: "Bacteria",
    131567: "cellular organisms",
    1224: "Proteobacteria",
    562: "Escherichia coli",
    561: "Escherichia",
    83333: "Escherichia coli K-12",
    9606: "Homo sapiens",
}


def write_dump(folder: Path, compress=lambda b: b, suffix: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nodes = "".join(f"{t}\t|\t{p}\t|\t{r}\t|\t\t|\t0\t|\n" for t, p, r in NODES)
    names = "".join(
        f"{t}\t|\t{n}\t|\t\t|\tscientific name\t|\n{t}\t|\tsyn {t}\t|\t\t|\tsynonym\t|\n"
        for t, n in NAMES.items()
    )
    (folder / f"nodes.dmp{suffix}").write_bytes(compress(nodes.encode()))
    (folder / f"names.dmp{suffix}").write_bytes(compress(names.encode()))
    (folder / f"merged.dmp{suffix}").write_bytes(compress(b"12\t|\t562\t|\n77\t|\t12\t|\n"))
    (folder / f"delnodes.dmp{suffix}").write_bytes(compress(b"999\t|\n5\t|\n"))
    return folder


@pytest.fixture
def taxonomy(tmp_path: Path) -> Taxonomy:
    return Taxonomy.from_taxdump(write_dump(tmp_path / "dump"))


def test_parent_rank_and_name_come_from_nodes_and_names(taxonomy: Taxonomy) -> None:
    assert taxonomy.parent(562) == 561
    assert taxonomy.rank(562) == "species"
    assert taxonomy.name(83333) == "Escherichia coli K-12"


def test_lineage_runs_from_the_root_down(taxonomy: Taxonomy) -> None:
    assert taxonomy.lineage(83333) == [1, 131567, 2, 1224, 561, 562, 83333]


def test_descendants_include_the_whole_subtree(taxonomy: Taxonomy) -> None:
    assert sorted(taxonomy.descendants(2)) == [2, 561, 562, 1224, 83333]
    assert taxonomy.descendants(562, include_self=False) == [83333]
    assert sorted(taxonomy.children(1)) == [9606, 131567]


def test_merged_ids_resolve_through_chains(taxonomy: Taxonomy) -> None:
    assert taxonomy.resolve(12) == 562
    assert taxonomy.resolve(77) == 562
    assert taxonomy.name(12) == "Escherichia coli"
    assert taxonomy.status(12) == "merged"


def test_deleted_id_raises_and_says_deleted(taxonomy: Taxonomy) -> None:
    with pytest.raises(UnknownTaxon) as info:
        taxonomy.resolve(999)
    assert info.value.deleted and "deleted" in str(info.value)
    assert taxonomy.status(999) == "deleted"


def test_unknown_id_raises_key_error(taxonomy: Taxonomy) -> None:
    with pytest.raises(KeyError):
        taxonomy.lineage(424242)
    assert taxonomy.status(424242) == "unknown" and 424242 not in taxonomy


def test_is_ancestor_follows_the_lineage(taxonomy: Taxonomy) -> None:
    assert taxonomy.is_ancestor(2, 83333)
    assert not taxonomy.is_ancestor(9606, 83333)


def test_serialised_form_round_trips(taxonomy: Taxonomy) -> None:
    again = Taxonomy.from_bytes(taxonomy.to_bytes())
    assert again == taxonomy
    assert again.lineage(83333) == taxonomy.lineage(83333)
    assert again.resolve(77) == 562 and again.deleted == (5, 999)


def test_serialisation_is_deterministic_whatever_the_line_order(tmp_path: Path) -> None:
    first = Taxonomy.from_taxdump(write_dump(tmp_path / "a"))
    NODES.reverse()
    try:
        second = Taxonomy.from_taxdump(write_dump(tmp_path / "b"))
    finally:
        NODES.reverse()
    assert first.to_bytes() == second.to_bytes()


def test_compressed_dumps_are_read(tmp_path: Path) -> None:
    gz = Taxonomy.from_taxdump(write_dump(tmp_path / "gz", gzip.compress, ".gz"))
    zst = Taxonomy.from_taxdump(
        write_dump(tmp_path / "zst", zstandard.ZstdCompressor().compress, ".zst")
    )
    assert gz == zst and gz.name(2) == "Bacteria"


def test_malformed_nodes_line_is_reported_with_its_number(tmp_path: Path) -> None:
    folder = write_dump(tmp_path / "bad")
    text = (folder / "nodes.dmp").read_bytes().splitlines(keepends=True)
    text.insert(2, b"this is not a node\n")
    (folder / "nodes.dmp").write_bytes(b"".join(text))
    with pytest.raises(InputFormatError) as info:
        Taxonomy.from_taxdump(folder)
    assert info.value.line == 3


def test_corrupt_serialised_taxonomy_is_refused(taxonomy: Taxonomy) -> None:
    data = taxonomy.to_bytes()
    with pytest.raises(InputFormatError):
        Taxonomy.from_bytes(data[:5] + b"garbage")


@pytest.mark.shared_data
def test_wol_subset_taxonomy_covers_every_mapped_genome(shared_data: Path) -> None:
    folder = shared_data / "taxonomy/wol_subset"
    taxonomy = Taxonomy.from_taxdump(folder)
    mapping = AccessionTaxonMap.from_file(folder / "taxid.map", prefix_separator="_")
    assert len(taxonomy) == 16388
    taxid = mapping.get("G000005825_1")
    assert taxid == 398511 and taxid in taxonomy
    assert taxonomy.lineage(taxid)[0] == 1


@pytest.mark.shared_data
def test_full_2013_taxdump_loads_and_serialises_compactly(shared_data: Path) -> None:
    taxonomy = Taxonomy.from_taxdump(shared_data / "taxonomy/ncbi_taxdump_2013_emboss")
    assert len(taxonomy) == 1038022
    assert taxonomy.name(83333) == "Escherichia coli K-12"
    assert len(taxonomy.merged) == 28609
    data = taxonomy.to_bytes(level=3)
    assert len(data) < 10_000_000  # the .zst dumps it came from take 14.7 MB
    assert Taxonomy.from_bytes(data) == taxonomy
    assert 562 in taxonomy.descendants(561)


# ----------------------------------------------------------------------- taxon sources


def test_uniprot_ox_field_gives_the_taxon() -> None:
    header = b"tr|A0A385XJN2|A0A385XJN2_ECOLI Uncharacterized OS=Escherichia coli OX=83333 GN=ygiA"
    assert taxon_from_header(header) == 83333
    assert taxon_from_header(b"sp|P1|X_Y no taxon here BOX=5") is None


@pytest.mark.parametrize(
    ("header", "accession"),
    [
        (b"sp|P12345|NAME_HUMAN Protein OS=Homo sapiens OX=9606", "P12345"),
        (b"tr|A0A385XJN2|A0A385XJN2_ECOLI desc", "A0A385XJN2"),
        (b"gi|110640213|ref|NC_008253.1| Escherichia coli 536", "NC_008253.1"),
        (
            b"resfinder~~~blaTEM-1B_1~~~AY458016~~~Beta-lactamase",
            "resfinder~~~blaTEM-1B_1~~~AY458016~~~Beta-lactamase",
        ),
        (b"MAL1 ", "MAL1"),
        (b"G000005825_1", "G000005825_1"),
    ],
)
def test_accession_is_extracted_from_headers(header: bytes, accession: str) -> None:
    assert accession_from_header(header) == accession


def test_ncbi_accession2taxid_layout_is_read(tmp_path: Path) -> None:
    path = tmp_path / "a2t"
    path.write_bytes(
        b"accession\taccession.version\ttaxid\tgi\nAB1\tAB1.2\t562\t0\nCD3\tCD3.1\t9606\t7\n"
    )
    assert list(iter_accession_taxids(path)) == [("AB1", 562), ("CD3", 9606)]


def test_versioned_lookup_falls_back_to_the_bare_accession(tmp_path: Path) -> None:
    path = tmp_path / "a2t.gz"
    path.write_bytes(
        gzip.compress(b"accession\taccession.version\ttaxid\tgi\nAB1\tAB1.2\t562\t0\n")
    )
    mapping = AccessionTaxonMap.from_file(path)
    assert mapping.get("AB1.2") == 562 and mapping.get("AB1.9") == 562
    assert mapping.get("ZZ9") is None


def test_prefix_before_underscore_lookup_is_optional(tmp_path: Path) -> None:
    path = tmp_path / "taxid.map"
    path.write_bytes(b"G000005825\t398511\nG000006175\t456320\n")
    assert AccessionTaxonMap.from_file(path).get("G000005825_1") is None
    assert AccessionTaxonMap.from_file(path, prefix_separator="_").get("G000005825_1") == 398511


def test_wanted_accessions_limit_what_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "taxid.map"
    path.write_bytes(b"A 1\nB 2\nC 3\n")
    assert len(AccessionTaxonMap.from_file(path, wanted={"B"})) == 1


def test_malformed_map_row_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "taxid.map"
    path.write_bytes(b"A 1\nB two\n")
    with pytest.raises(InputFormatError) as info:
        list(iter_accession_taxids(path))
    assert info.value.line == 2


@pytest.mark.shared_data
def test_derived_accession2taxid_agrees_with_the_genome_map(shared_data: Path) -> None:
    folder = shared_data / "taxonomy/wol_subset"
    mapping = AccessionTaxonMap.from_file(
        folder / "nucl.accession2taxid.derived.zst", wanted={"AASF01000001"}
    )
    assert mapping.get("AASF01000001.1") == 394104
