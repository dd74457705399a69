"""Sequence-collection digests of database versions, against the PyPI ``refget`` package as the oracle.

The oracle is used here only (never at run time): its shipped compliance
data (level 0/1/2 of six collections and the comparisons between them) and
its own FASTA digester on every shared FASTA dataset.

One documented difference: for an array with exactly one element in common
the package's comparison says ``a_and_b_same_order: true``; the seqcol
specification (section 3.3, "Same-order specification") says it is
undefined (null) "if there are fewer than 2 overlapping elements", which is
what :func:`compare` returns.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import refget
import zstandard
from refget.utils import fasta_to_seqcol_dict, seqcol_dict_to_level1_dict, seqcol_digest

from talaria_storage.backends.memory import MemoryBackend
from talaria_storage.config.open_store import open_store
from talaria_storage.sequences.database import SequenceDatabase, open_database
from talaria_storage.sequences.seqcol import (
    SequenceCollection,
    canonical_json,
    compare,
    level0_digest,
    version_collection,
    version_digests,
)
from talaria_storage.storage.store import Store

ORACLE_DATA = Path(refget.__file__).resolve().parent / "compliance_data"
ORACLE_LEVEL1 = ("names", "lengths", "sequences", "sorted_name_length_pairs")  # sorted_sequences: see below


def _oracle_collections() -> dict[str, dict]:
    return json.loads((ORACLE_DATA / "test_fasta_digests.json").read_text())


def _collection(level2: dict) -> SequenceCollection:
    return SequenceCollection(tuple(level2["names"]), tuple(level2["lengths"]), tuple(level2["sequences"]))


def test_canonical_json_is_compact_sorted_and_utf8() -> None:
    assert canonical_json({"name": "chrß", "length": 3}) == '{"length":3,"name":"chrß"}'.encode()
    assert canonical_json([248956422, 242193529]) == b"[248956422,242193529]"


def test_the_spec_example_attribute_digests() -> None:
    # seqcol spec, "Encoding", step 3: names ["chr1","chr2","chr3"] etc. give these digests.
    c = SequenceCollection(
        ("chr1", "chr2", "chr3"),
        (248956422, 242193529, 198295559),
        ("SQ.2YnepKM7OkBoOrKmvHbGqguVfF9amCST", "SQ.lwDyBi432Py-7xnAISyQlnlhWDEaBPv2",
         "SQ.Eqk6_SvMMDCc6C-uEfickOUWTatLMDQZ"),
    )
    level1 = c.level1()
    assert level1["lengths"] == "5K4odB173rjao1Cnbk5BnvLt9V7aPAa2"
    assert level1["names"] == "g04lKdxiYtG3dOGeUC5AdKEifw65G0Wp"
    assert level1["sequences"] == "rD29ZKmEqwwHRXjiQ36p6UMZQ5hemmsb"


@pytest.mark.parametrize("name", sorted(_oracle_collections()))
def test_levels_0_1_and_2_equal_the_oracles_compliance_data(name: str) -> None:
    expected = _oracle_collections()[name]
    c = _collection(expected["level2"])
    assert c.digest == expected["top_level_digest"]
    assert c.level1() == expected["level1"]
    assert c.level2() == expected["level2"]
    assert level0_digest(expected["level1"]) == expected["top_level_digest"]


def test_comparisons_equal_the_oracles_except_its_single_overlap_same_order() -> None:
    by_digest = {v["top_level_digest"]: _collection(v["level2"]) for v in _oracle_collections().values()}
    checked = 0
    for path in sorted((ORACLE_DATA / "comparison").glob("*.json")):
        expected = json.loads(path.read_text())
        a, b = by_digest.get(expected["digests"]["a"]), by_digest.get(expected["digests"]["b"])
        if a is None or b is None:
            continue  # compares collections the data file does not give
        got = {"digests": expected["digests"], **compare(a.level2(), b.level2())}
        counts = expected["array_elements"]["a_and_b_count"]
        order = expected["array_elements"]["a_and_b_same_order"]
        for key, count in counts.items():
            if count < 2:
                order[key] = None  # the spec's rule (see the module docstring)
        assert got == expected, path.name
        checked += 1
    assert checked >= 10


def test_same_order_is_undefined_with_unbalanced_duplicates() -> None:
    result = compare({"x": ["a", "b", "a"]}, {"x": ["a", "b"]})
    assert result["array_elements"]["a_and_b_same_order"]["x"] is None


def test_a_version_is_its_records_in_file_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.fa", tmp_path / "b.fa"
    first.write_bytes(b">chr2 second\nACGT\n>chr1\nGG\n")
    second.write_bytes(b">chrM\nacgtN\n")
    db = SequenceDatabase(Store(MemoryBackend()), "genome")
    db.import_files([first, second], version="v1", taxonomy="none")
    c = version_collection(db, "v1")
    assert c.names == ("chr2", "chr1", "chrM") and c.lengths == (4, 2, 5)
    assert version_digests(db, "v1").digest == c.digest


def test_the_digests_are_kept_in_the_lookup_index(tmp_path: Path) -> None:
    source = tmp_path / "a.fa"
    source.write_bytes(b">x\nACGT\n")
    db = SequenceDatabase(Store(MemoryBackend()), "genome")
    db.import_files([source], version="v1", taxonomy="none")
    first = version_digests(db, "v1")
    assert any(key.startswith(b"q/") for key, _ in db.index.scan(b"q/"))
    assert version_digests(db, "v1") == first


# -- the oracle on the shared data


def _plain(path: Path, out: Path) -> Path:
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    elif path.suffix == ".zst":
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    out.write_bytes(data)
    return out


SHARED_FASTA = {
    "uniprot15": "protein/uniprot_proteomes/*.fasta.gz",
    "mmseqs_db": "protein/mmseqs2_example_DB.fasta.gz",
    "mmseqs_query": "protein/mmseqs2_example_QUERY.fasta.gz",
    "ecoli536": "nucleotide/ecoli536_NC_008253.fna.gz",
    "pfalciparum": "nucleotide/pfalciparum_smalt_genome_1.fa.gz",
    "wol16s": "nucleotide/wol_16s_rRNA.fa.zst",
    "wol23s": "nucleotide/wol_23s_rRNA.fa.zst",
}


def _check_against_oracle(db: SequenceDatabase, version: str, fasta: Path) -> None:
    oracle = fasta_to_seqcol_dict(str(fasta))
    ours = version_digests(db, version)
    level1 = seqcol_dict_to_level1_dict(oracle)
    assert ours.digest == seqcol_digest(oracle)
    assert {k: ours.level1[k] for k in ORACLE_LEVEL1} == {k: level1[k] for k in ORACLE_LEVEL1}
    # refget 0.12 fills sorted_sequences unsorted; the spec (section 5.3) sorts it, as we do.
    assert ours.level1["sorted_sequences"] == SequenceCollection(
        tuple(oracle["names"]), tuple(oracle["lengths"]), tuple(oracle["sequences"])
    ).level1()["sorted_sequences"]


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHARED_FASTA))
def test_every_shared_fasta_dataset_has_the_oracles_digests(shared_data: Path, tmp_path: Path, name: str) -> None:
    files = sorted(shared_data.glob(SHARED_FASTA[name]))
    assert files
    joined = tmp_path / "all.fa"
    with joined.open("wb") as out:
        for f in files:
            out.write(_plain(f, tmp_path / "one").read_bytes())
    with open_store(tmp_path / "store") as store:
        db = open_database(store, name)
        db.import_files(files, version="v1", taxonomy="none")
        _check_against_oracle(db, "v1", joined)


@pytest.mark.shared_data
@pytest.mark.slow
def test_every_resfinder_release_has_the_oracles_digest(shared_data: Path, tmp_path: Path) -> None:
    releases = sorted((shared_data / "versions" / "resfinder").glob("*.fasta.zst"))
    assert len(releases) == 14
    with open_store(tmp_path / "store") as store:
        db = open_database(store, "resfinder")
        for i, release in enumerate(releases):
            db.import_files([release], version=f"r{i:02d}", taxonomy="none")
        for i, release in enumerate(releases):
            _check_against_oracle(db, f"r{i:02d}", _plain(release, tmp_path / f"r{i:02d}.fa"))


SHARED_OTHER = {
    "genbank": ("genbank/leptospira_kirschneri_H1_any2fasta_test.gbk.gz", "genbank"),
    "illumina": ("fastq/seqkit_Illumina1.8_10k.fq.gz", "fastq"),
    "nanopore": ("fastq/seqkit_pcs109_5k_nanopore.fq.gz", "fastq"),
}


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SHARED_OTHER))
def test_shared_genbank_and_fastq_datasets_have_the_oracles_digests(
    shared_data: Path, tmp_path: Path, name: str
) -> None:
    """The oracle reads FASTA only: Biopython writes each file as FASTA for it (same ids, same residues)."""
    from Bio import SeqIO

    relative, fmt = SHARED_OTHER[name]
    source = shared_data / relative
    fasta = tmp_path / "as.fa"
    with gzip.open(source, "rt") as handle, fasta.open("w") as out:
        SeqIO.write(SeqIO.parse(handle, fmt), out, "fasta")
    db = SequenceDatabase(Store(MemoryBackend()), name)
    db.import_files([source], version="v1", taxonomy="none")
    _check_against_oracle(db, "v1", fasta)
