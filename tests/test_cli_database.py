"""The sequence-database commands (import, export, get, list, diff, taxonomy, index, gc, verify,
stats) and the store's persistent lookup index."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from talaria_storage import open_database, open_store
from talaria_storage.cli.common import EXIT_FAILURE, EXIT_USAGE
from talaria_storage.cli.main import app
from talaria_storage.config.settings import ENVIRONMENT
from talaria_storage.index.local_index import MemoryIndex, RocksIndex, SqliteIndex
from talaria_storage.index.lookup_index import lookup_index
from talaria_storage.sequences.canonical import digests

HUMAN = b"MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHFDLSHGSAQVKGHGKKVADAL"
MOUSE = b"mvlsgedksnikaawgkigghgaeygaealermfasfpttktyfphfdvshgsaqvkghgkkvadal"
YEAST = b"MSEQKRALTPLKEELSAKYEEAIKLADKNQKLEEENAQ"

# Soft-masked residues, a trailing space in a header, odd wrapping, a duplicate, no final newline.
SAMPLE = (
    b">sp|P69905|HBA_HUMAN Hemoglobin alpha OS=Homo sapiens OX=9606 \n"
    + HUMAN[:40]
    + b"\n"
    + HUMAN[40:]
    + b"\n"
    b">sp|P01942|HBA_MOUSE Hemoglobin alpha OS=Mus musculus OX=10090\n" + MOUSE + b"\n"
    b">sp|P12345|YST_YEAST Yeast protein OX=4932\n" + YEAST[:10] + b"\n" + YEAST[10:] + b"\n"
    b">sp|P69905|HBA_HUMAN Hemoglobin alpha OS=Homo sapiens OX=9606 \n" + HUMAN
)

# A tiny taxdump: 1 root > 2 Mammalia > {9606 human, 10090 mouse}; 1 > 4751 Fungi > 4932 yeast.
NODES = (
    "1\t|\t1\t|\tno rank\t|\n"
    "2\t|\t1\t|\tclass\t|\n"
    "9606\t|\t2\t|\tspecies\t|\n"
    "10090\t|\t2\t|\tspecies\t|\n"
    "4751\t|\t1\t|\tkingdom\t|\n"
    "4932\t|\t4751\t|\tspecies\t|\n"
)
NAMES = (
    "1\t|\troot\t|\t\t|\tscientific name\t|\n"
    "2\t|\tMammalia\t|\t\t|\tscientific name\t|\n"
    "9606\t|\tHomo sapiens\t|\t\t|\tscientific name\t|\n"
    "10090\t|\tMus musculus\t|\t\t|\tscientific name\t|\n"
    "4751\t|\tFungi\t|\t\t|\tscientific name\t|\n"
    "4932\t|\tSaccharomyces cerevisiae\t|\t\t|\tscientific name\t|\n"
)


@pytest.fixture(autouse=True)
def _clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TALARIA_* variable from the host; home and cache folders inside the test's folder."""
    for variable in ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TALARIA_CACHE_DIR", str(tmp_path / "cache"))


def cli(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def ok(*args: str, input: bytes | None = None) -> Result:
    result = cli(*args, input=input)
    assert result.exit_code == 0, result.output
    return result


def assert_one_line_error(result: Result, code: int) -> str:
    """One ``error:`` line on stderr (after any ``read FILE`` progress lines of an import)."""
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if not line.startswith("read ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def store(tmp_path: Path) -> str:
    """An initialised filesystem store's path."""
    path = tmp_path / "store"
    ok("--store", str(path), "init")
    return str(path)


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    path = tmp_path / "sample.fasta"
    path.write_bytes(SAMPLE)
    return path


@pytest.fixture
def imported(store: str, sample: Path) -> str:
    """The store with SAMPLE imported as prot@v1."""
    ok("--store", store, "import", str(sample), "--database", "prot", "--version", "v1")
    return store


def refs_of(store: str) -> list[str]:
    root = Path(store) / "refs"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


# -- import and export ----------------------------------------------------------------------------


def test_import_then_export_gives_back_the_file_byte_for_byte(imported: str) -> None:
    assert ok("--store", imported, "export", "--database", "prot").stdout_bytes == SAMPLE


def test_import_json_reports_the_new_version(store: str, sample: Path) -> None:
    result = ok("--store", store, "import", str(sample), "-d", "prot", "-v", "v1", "--json")
    report = json.loads(result.stdout)
    assert (report["database"], report["version"], report["records"]) == ("prot", "v1", 4)
    assert report["logical_bytes"] == len(SAMPLE)


def test_import_reports_each_file_read_on_stderr_when_not_a_terminal(
    store: str, sample: Path
) -> None:
    result = ok("--store", store, "import", str(sample), "-d", "prot")
    assert f"read {sample}" in result.stderr
    assert "imported 4 records into prot@" in result.stdout


def test_import_of_a_gzip_file_exports_its_uncompressed_bytes(store: str, tmp_path: Path) -> None:
    packed = tmp_path / "sample.fasta.gz"
    packed.write_bytes(gzip.compress(SAMPLE))
    ok("--store", store, "import", str(packed), "-d", "prot")
    assert ok("--store", store, "export", "-d", "prot").stdout_bytes == SAMPLE


def test_import_with_a_mapping_file_labels_records_by_accession(store: str, tmp_path: Path) -> None:
    fasta = tmp_path / "plain.fa"
    fasta.write_bytes(b">A1 one\nACGT\n>A2 two\nGGCC\n")
    mapping = tmp_path / "map.tsv"
    mapping.write_text("A1\t9606\nA2\t10090\n")
    ok("--store", store, "import", str(fasta), "-d", "nuc", "--taxonomy", str(mapping))
    assert (
        ok("--store", store, "export", "-d", "nuc", "--taxon", "10090").stdout_bytes
        == b">A2 two\nGGCC\n"
    )


def test_export_of_an_older_version_by_name(imported: str, tmp_path: Path) -> None:
    newer = tmp_path / "v2.fasta"
    newer.write_bytes(b">sp|Q1|NEW OX=9606\nMKV\n")
    ok("--store", imported, "import", str(newer), "-d", "prot", "-v", "v2")
    assert ok("--store", imported, "export", "-d", "prot@v1").stdout_bytes == SAMPLE
    assert ok("--store", imported, "export", "-d", "prot").stdout_bytes == newer.read_bytes()


def test_export_to_a_file_writes_it_and_leaves_no_temporary_file(
    imported: str, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "copy.fasta"
    out.parent.mkdir()
    ok("--store", imported, "export", "-d", "prot", "-o", str(out))
    assert out.read_bytes() == SAMPLE
    assert [p.name for p in out.parent.iterdir()] == ["copy.fasta"]


def test_a_failed_export_leaves_the_existing_output_file_untouched(
    imported: str, tmp_path: Path
) -> None:
    for chunk in (Path(imported) / "chunks").rglob("*"):
        if chunk.is_file():
            chunk.unlink()  # every chunk lost: the export fails part-way
    out = tmp_path / "out"
    out.mkdir()
    (out / "copy.fasta").write_bytes(b"previous content\n")
    result = cli("--store", imported, "export", "-d", "prot", "-o", str(out / "copy.fasta"))
    assert_one_line_error(result, EXIT_FAILURE)
    assert (out / "copy.fasta").read_bytes() == b"previous content\n"
    assert [p.name for p in out.iterdir()] == ["copy.fasta"]


def test_normalized_export_upper_cases_and_rewraps(imported: str) -> None:
    text = ok(
        "--store", imported, "export", "-d", "prot", "--normalized", "--width", "30"
    ).stdout_bytes
    lines = text.splitlines()
    assert lines[0] == b">sp|P69905|HBA_HUMAN Hemoglobin alpha OS=Homo sapiens OX=9606 "
    assert lines[1] == HUMAN[:30]
    assert b"MVLSGEDKSNIKAAWGKIGGHGAEYGAEAL" in lines
    assert all(len(line) <= 30 for line in lines if not line.startswith(b">"))
    assert text.endswith(b"\n")


def test_export_of_one_file_by_index(store: str, tmp_path: Path) -> None:
    first, second = tmp_path / "a.fa", tmp_path / "b.fa"
    first.write_bytes(b">a OX=1\nACGT\n")
    second.write_bytes(b">b OX=2\nTTTT\n")
    ok("--store", store, "import", str(first), str(second), "-d", "two")
    assert (
        ok("--store", store, "export", "-d", "two", "--file-index", "1").stdout_bytes
        == b">b OX=2\nTTTT\n"
    )
    assert_one_line_error(
        cli("--store", store, "export", "-d", "two", "--file-index", "2"), EXIT_FAILURE
    )


def test_export_of_one_taxon_without_descendants(imported: str) -> None:
    text = ok("--store", imported, "export", "-d", "prot", "--taxon", "4932").stdout_bytes
    assert (
        text
        == b">sp|P12345|YST_YEAST Yeast protein OX=4932\n" + YEAST[:10] + b"\n" + YEAST[10:] + b"\n"
    )


def test_descendants_without_taxon_is_a_usage_error(imported: str) -> None:
    assert cli("--store", imported, "export", "-d", "prot", "--descendants").exit_code == EXIT_USAGE


# -- get ------------------------------------------------------------------------------------------


def test_get_by_accession_prints_the_record_as_imported(imported: str) -> None:
    text = ok("--store", imported, "get", "P12345", "-d", "prot").stdout_bytes
    assert (
        text
        == b">sp|P12345|YST_YEAST Yeast protein OX=4932\n" + YEAST[:10] + b"\n" + YEAST[10:] + b"\n"
    )


@pytest.mark.parametrize("identifier", ["sp|P12345|YST_YEAST", "YST_YEAST"])
def test_get_by_first_word_or_entry_name_prints_the_record(imported: str, identifier: str) -> None:
    text = ok("--store", imported, "get", identifier, "-d", "prot").stdout_bytes
    assert text.startswith(b">sp|P12345|YST_YEAST Yeast protein OX=4932\n")


def test_get_by_a_key_declared_at_import(store: str, sample: Path) -> None:
    ok("--store", store, "import", str(sample), "--database", "prot", "--id-regex", r"OX=(\d+)")
    text = ok("--store", store, "get", "4932", "-d", "prot").stdout_bytes
    assert text.startswith(b">sp|P12345|YST_YEAST")


def test_get_by_sha256_finds_every_occurrence_of_the_sequence(imported: str) -> None:
    sha = hashlib.sha256(HUMAN).hexdigest()
    text = ok("--store", imported, "get", sha).stdout_bytes
    assert text.count(b">sp|P69905|HBA_HUMAN") == 2
    assert text.endswith(b"\n")  # the last record of the file had no final newline


@pytest.mark.parametrize("form", ["refget", "ga4gh", "md5", "md5-bare"])
def test_get_by_refget_and_md5_digests_with_a_range(imported: str, form: str) -> None:
    d = digests(MOUSE)
    identifier = {
        "refget": d.refget,
        "ga4gh": "ga4gh:" + d.refget,
        "md5": "md5:" + d.md5,
        "md5-bare": d.md5,
    }[form]
    text = ok("--store", imported, "get", identifier, "--range", "0-10").stdout_bytes
    assert text == b">P01942:0-10\n" + MOUSE[:10] + b"\n"


def test_get_json_reports_digests_and_the_range(imported: str) -> None:
    hits = json.loads(ok("--store", imported, "get", "P01942", "--range", "5-9", "--json").stdout)
    d = digests(MOUSE)
    assert len(hits) == 1
    assert (hits[0]["sequence"], hits[0]["length"], hits[0]["range"]) == (
        MOUSE[5:9].decode(),
        len(MOUSE),
        [5, 9],
    )
    assert (hits[0]["sha256"], hits[0]["refget"], hits[0]["md5"]) == (
        d.sha256.to_hex(),
        d.refget,
        d.md5,
    )


def test_get_of_an_unknown_id_names_it_on_one_line_and_exits_1(imported: str) -> None:
    line = assert_one_line_error(cli("--store", imported, "get", "Q99999"), EXIT_FAILURE)
    assert "'Q99999'" in line


def test_get_of_an_unknown_digest_is_not_found(imported: str) -> None:
    assert_one_line_error(cli("--store", imported, "get", "0" * 64, "-d", "prot"), EXIT_FAILURE)


def test_get_prints_what_it_found_and_names_only_what_it_did_not(imported: str) -> None:
    result = cli("--store", imported, "get", "P12345", "NOPE")
    assert result.exit_code == EXIT_FAILURE
    assert result.stdout_bytes.startswith(b">sp|P12345|")
    assert result.stderr.strip() == f"error: 'NOPE' not found in any database of file://{imported}"


def test_get_searches_every_database_head_without_database(imported: str, tmp_path: Path) -> None:
    other = tmp_path / "other.fa"
    other.write_bytes(b">X1 other db\nACGTACGT\n")
    ok("--store", imported, "import", str(other), "-d", "nuc")
    hits = json.loads(ok("--store", imported, "get", "X1", "P12345", "--json").stdout)
    assert sorted((h["id"], h["database"]) for h in hits) == [("P12345", "prot"), ("X1", "nuc")]


def test_get_with_a_range_past_the_end_is_an_error(imported: str) -> None:
    line = assert_one_line_error(
        cli("--store", imported, "get", "P12345", "--range", "0-999"), EXIT_FAILURE
    )
    assert f"length {len(YEAST)}" in line


def test_get_with_a_malformed_range_is_a_usage_error(imported: str) -> None:
    assert cli("--store", imported, "get", "P12345", "--range", "9-3").exit_code == EXIT_USAGE


def test_get_of_another_version(imported: str, tmp_path: Path) -> None:
    newer = tmp_path / "v2.fasta"
    newer.write_bytes(b">sp|Q1|NEW OX=9606\nMKV\n")
    ok("--store", imported, "import", str(newer), "-d", "prot", "-v", "v2")
    assert cli("--store", imported, "get", "P12345", "-d", "prot").exit_code == EXIT_FAILURE
    assert ok(
        "--store", imported, "get", "P12345", "-d", "prot", "--version", "v1"
    ).stdout_bytes.startswith(b">sp|P12345")


# -- list and diff --------------------------------------------------------------------------------


def test_list_shows_databases_and_versions_with_head_marked(imported: str, tmp_path: Path) -> None:
    newer = tmp_path / "v2.fasta"
    newer.write_bytes(b">sp|Q1|NEW OX=9606\nMKV\n")
    ok("--store", imported, "import", str(newer), "-d", "prot", "-v", "v2")
    report = json.loads(ok("--store", imported, "list", "--json").stdout)
    assert [d["database"] for d in report] == ["prot"]
    versions = {v["version"]: v for v in report[0]["versions"]}
    assert (versions["v1"]["head"], versions["v2"]["head"]) == (False, True)
    assert (versions["v1"]["records"], versions["v2"]["records"]) == (4, 1)
    assert "HEAD" in ok("--store", imported, "list").stdout


def test_diff_counts_and_lists_the_changes(imported: str, tmp_path: Path) -> None:
    newer = tmp_path / "v2.fasta"
    newer.write_bytes(
        b">sp|P69905|HBA_HUMAN Hemoglobin alpha OS=Homo sapiens OX=9606 \n" + HUMAN + b"\n"
        b">sp|P01942|HBA_MOUSE Hemoglobin alpha, renamed OS=Mus musculus OX=10090\n" + MOUSE + b"\n"
        b">sp|P12345|YST_YEAST Yeast protein OX=4932\n" + YEAST + b"\n"
        b">sp|P99999|NEW_YEAST New protein OX=4932\nMKVLA\n"
    )
    ok("--store", imported, "import", str(newer), "-d", "prot", "-v", "v2")
    report = json.loads(ok("--store", imported, "diff", "prot@v1", "prot@v2", "--json").stdout)
    assert report["counts"] == {
        "added": 1,
        "removed": 1,
        "header_changed": 1,
        "reclassified": 0,
        "unchanged": 2,
    }
    assert "added" not in report  # the lists come with --details
    details = ok("--store", imported, "diff", "prot@v1", "prot@v2", "--details").stdout
    assert "1 added, 1 removed, 1 header-changed, 0 reclassified" in details
    assert "added\tP99999" in details
    assert "header-changed\tP01942" in details


def test_diff_of_two_databases_is_a_usage_error(imported: str) -> None:
    assert cli("--store", imported, "diff", "prot@v1", "other@v1").exit_code == EXIT_USAGE


# -- taxonomy -------------------------------------------------------------------------------------


@pytest.fixture
def taxdump(tmp_path: Path) -> Path:
    folder = tmp_path / "taxdump"
    folder.mkdir()
    (folder / "nodes.dmp").write_text(NODES)
    (folder / "names.dmp").write_text(NAMES)
    return folder


def test_taxonomy_import_then_export_of_a_taxon_with_its_descendants(
    imported: str, taxdump: Path
) -> None:
    report = json.loads(
        ok("--store", imported, "taxonomy", "import", str(taxdump), "-v", "t1", "--json").stdout
    )
    assert (report["version"], report["taxa"]) == ("t1", 6)
    text = ok(
        "--store", imported, "export", "-d", "prot", "--taxon", "2", "--descendants"
    ).stdout_bytes
    assert text.count(b">") == 3  # two human records and the mouse one; not the yeast
    assert b"YST_YEAST" not in text and b"HBA_MOUSE" in text


def test_taxonomy_list_marks_the_current_version(imported: str, taxdump: Path) -> None:
    ok("--store", imported, "taxonomy", "import", str(taxdump), "-v", "t1")
    rows = json.loads(ok("--store", imported, "taxonomy", "list", "--json").stdout)
    assert [(r["version"], r["head"]) for r in rows] == [("t1", True)]


def test_descendants_without_a_stored_taxonomy_names_the_fix(imported: str) -> None:
    line = assert_one_line_error(
        cli("--store", imported, "export", "-d", "prot", "--taxon", "2", "--descendants"),
        EXIT_FAILURE,
    )
    assert "taxonomy import" in line


def test_taxonomy_import_of_a_missing_folder_is_one_line(store: str, tmp_path: Path) -> None:
    assert_one_line_error(
        cli("--store", store, "taxonomy", "import", str(tmp_path / "nope")), EXIT_FAILURE
    )


# -- index ----------------------------------------------------------------------------------------


def test_index_rebuild_rebuilds_every_version_and_lookups_still_work(imported: str) -> None:
    report = json.loads(ok("--store", imported, "index", "rebuild", "--json").stdout)
    assert report == [{"database": "prot", "version": "v1", "records": 4, "unique_sequences": 3}]
    assert (Path(imported) / ".index").is_dir()
    assert ok("--store", imported, "get", "P12345").stdout_bytes.startswith(b">sp|P12345")


def test_index_rebuild_of_an_unknown_database_is_one_line(imported: str) -> None:
    assert_one_line_error(cli("--store", imported, "index", "rebuild", "-d", "nope"), EXIT_FAILURE)


def test_a_filesystem_store_keeps_its_index_across_opens(tmp_path: Path, sample: Path) -> None:
    location = tmp_path / "store"
    with open_store(location) as store:
        db = open_database(store, "prot")
        db.lookup_table = False  # a version without a stored look-up table is looked up through the local index
        result = db.import_files([sample], version="v1")
        assert db["P12345"].residues == YEAST[:10] + YEAST[10:]
        assert isinstance(lookup_index(store).index, RocksIndex)
    with open_store(location) as store:
        marker = lookup_index(store).get(b"m/" + result.manifest.to_hex().encode() + b"/built")
        assert marker is not None and json.loads(marker)["unique_sequences"] == 3
    assert (location / ".index").is_dir()
    assert not any(".index" in key for key in _keys(location))


def _keys(location: Path) -> list[str]:
    with open_store(location) as store:
        return [info.key for info in store.backend.list("")]


def test_databases_of_one_store_share_one_index(tmp_path: Path) -> None:
    with open_store(tmp_path / "store") as store:
        assert open_database(store, "a").index is open_database(store, "b").index


def test_a_memory_store_uses_a_memory_index(tmp_path: Path) -> None:
    with open_store("memory://index-test") as store:
        assert isinstance(lookup_index(store).index, MemoryIndex)
    assert not (tmp_path / "cache").exists()


def test_index_type_sqlite_is_honoured(tmp_path: Path, sample: Path) -> None:
    conf = tmp_path / "storage.toml"
    conf.write_text(f'[storage]\npath = "{tmp_path / "store"}"\n[index]\ntype = "sqlite"\n')
    with open_store(conf) as store:
        open_database(store, "prot").import_files([sample], version="v1")
        assert open_database(store, "prot")["P01942"].residues == MOUSE
        assert isinstance(lookup_index(store).index, SqliteIndex)
    assert (tmp_path / "store" / ".index" / "index.sqlite").is_file()


def test_a_non_filesystem_store_keeps_its_index_in_the_cache_folder(
    tmp_path: Path, sample: Path
) -> None:
    location = f"rocksdb://{tmp_path / 'rocks'}"
    with open_store(location) as store:
        open_database(store, "prot").import_files([sample], version="v1")
        assert open_database(store, "prot")["P01942"].residues == MOUSE
    digest = hashlib.sha256(location.encode()).hexdigest()
    assert (tmp_path / "cache" / "index" / digest / "index.rocksdb").is_dir()


def test_a_second_opener_in_one_process_falls_back_to_a_memory_index(
    tmp_path: Path, sample: Path, caplog: pytest.LogCaptureFixture
) -> None:
    location = tmp_path / "store"
    with open_store(location) as first, open_store(location) as second:
        open_database(first, "prot").import_files([sample], version="v1")
        assert open_database(first, "prot")["P12345"]
        with caplog.at_level(logging.WARNING):
            assert open_database(second, "prot")["P01942"].residues == MOUSE
        assert isinstance(lookup_index(second).index, MemoryIndex)
        assert "in-memory index" in caplog.text


# -- gc, verify, stats ----------------------------------------------------------------------------


def test_gc_dry_run_reports_orphans_and_removes_nothing(imported: str) -> None:
    orphan = ok("--store", imported, "chunk", "put", "-", input=b"orphan bytes").stdout.strip()
    report = json.loads(ok("--store", imported, "gc", "--dry-run", "--grace", "0", "--json").stdout)
    assert report["dry_run"] is True
    assert orphan in report["removed_hashes"]
    assert ok("--store", imported, "chunk", "get", orphan).stdout_bytes == b"orphan bytes"
    assert ok("--store", imported, "export", "-d", "prot").stdout_bytes == SAMPLE


def test_gc_removes_orphans_and_keeps_what_refs_reach(imported: str) -> None:
    orphan = ok("--store", imported, "chunk", "put", "-", input=b"orphan bytes").stdout.strip()
    report = json.loads(ok("--store", imported, "gc", "--grace", "0", "--json").stdout)
    assert orphan in report["removed_hashes"]
    assert cli("--store", imported, "chunk", "get", orphan).exit_code == EXIT_FAILURE
    assert ok("--store", imported, "export", "-d", "prot").stdout_bytes == SAMPLE


def test_verify_with_a_subset_passes_on_a_sound_store(imported: str) -> None:
    report = json.loads(
        ok("--store", imported, "verify", "--subset", "50", "--seed", "1", "--json").stdout
    )
    assert report["ok"] is True and report["problems"] == []


def test_verify_reports_a_manifest_whose_chunk_is_missing(imported: str) -> None:
    for chunk in (Path(imported) / "chunks").rglob("*"):
        if chunk.is_file():
            chunk.unlink()
    result = cli("--store", imported, "verify", "--json")
    assert result.exit_code == EXIT_FAILURE
    assert json.loads(result.stdout)["ok"] is False


def test_verify_subset_out_of_range_is_a_usage_error(imported: str) -> None:
    assert cli("--store", imported, "verify", "--subset", "150").exit_code == EXIT_USAGE


def test_stats_of_one_database(imported: str) -> None:
    report = json.loads(ok("--store", imported, "stats", "--database", "prot@v1", "--json").stdout)
    assert report["total_chunks"] >= 1  # the store figures are still there
    (db,) = report["databases"]
    assert (db["database"], db["version"], db["records"], db["unique_sequences"]) == (
        "prot",
        "v1",
        4,
        3,
    )
    assert db["residues"] == 2 * len(HUMAN) + len(MOUSE) + len(YEAST)
    assert db["logical_bytes"] == len(SAMPLE) and db["stored_bytes"] > 0
    assert db["dedup_bytes_saved"] == 0  # one version: nothing shared yet


def test_stats_counts_bytes_versions_share_as_saved(imported: str, sample: Path) -> None:
    ok("--store", imported, "import", str(sample), "-d", "prot", "-v", "v2")
    (db,) = json.loads(ok("--store", imported, "stats", "--json").stdout)["databases"]
    assert db["versions"] == 2
    assert db["dedup_bytes_saved"] == db["stored_bytes"]  # v2 is v1 again: stored once


def test_stats_table_lists_each_database(imported: str) -> None:
    assert "prot@v1" in ok("--store", imported, "stats").stdout


# -- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"ACGT\n>late header\nACGT\n", b"\x00\x01\x02binary\xff\xfe", b">ok\nAC\x07GT\n"],
    ids=["no-header", "binary", "control-character"],
)
def test_malformed_fasta_is_one_line_naming_the_file_and_creates_no_ref(
    store: str, tmp_path: Path, content: bytes
) -> None:
    bad = tmp_path / "bad.fa"
    bad.write_bytes(content)
    line = assert_one_line_error(
        cli("--store", store, "import", str(bad), "-d", "prot"), EXIT_FAILURE
    )
    assert str(bad) in line
    assert refs_of(store) == []


def test_a_truncated_gzip_file_creates_no_ref(store: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.fa.gz"
    bad.write_bytes(gzip.compress(SAMPLE * 50)[:-40])
    assert_one_line_error(cli("--store", store, "import", str(bad), "-d", "prot"), EXIT_FAILURE)
    assert refs_of(store) == []


def test_a_failed_import_can_be_rerun_once_the_file_is_fixed(store: str, tmp_path: Path) -> None:
    path = tmp_path / "in.fa"
    path.write_bytes(b"junk\n")
    assert (
        cli("--store", store, "import", str(path), "-d", "prot", "-v", "v1").exit_code
        == EXIT_FAILURE
    )
    path.write_bytes(SAMPLE)
    ok("--store", store, "import", str(path), "-d", "prot", "-v", "v1")
    assert ok("--store", store, "export", "-d", "prot").stdout_bytes == SAMPLE


def test_a_missing_input_file_is_one_line(store: str, tmp_path: Path) -> None:
    line = assert_one_line_error(
        cli("--store", store, "import", str(tmp_path / "nope.fa"), "-d", "p"), EXIT_FAILURE
    )
    assert "nope.fa" in line


def test_an_unknown_database_is_one_line_naming_it(imported: str) -> None:
    line = assert_one_line_error(cli("--store", imported, "export", "-d", "nope"), EXIT_FAILURE)
    assert "'nope'" in line


def test_an_invalid_database_name_is_a_usage_error(store: str, sample: Path) -> None:
    assert_one_line_error(
        cli("--store", store, "import", str(sample), "-d", "../escape"), EXIT_USAGE
    )
    assert_one_line_error(cli("--store", store, "export", "-d", "bad/name"), EXIT_USAGE)
    assert refs_of(store) == []


def test_importing_a_taken_version_name_with_other_content_changes_nothing(
    imported: str, tmp_path: Path
) -> None:
    other = tmp_path / "other.fa"
    other.write_bytes(b">Z1\nACGT\n")
    line = assert_one_line_error(
        cli("--store", imported, "import", str(other), "-d", "prot", "-v", "v1"), EXIT_FAILURE
    )
    assert "v1" in line
    assert ok("--store", imported, "export", "-d", "prot").stdout_bytes == SAMPLE


# -- real data ------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_a_uniprot_proteome_round_trips_through_the_cli(shared_data: Path, store: str) -> None:
    source = shared_data / "protein" / "uniprot_proteomes" / "UP000002717-S.elongatus.fasta.gz"
    ok("--store", store, "import", str(source), "-d", "elongatus")
    exported = ok("--store", store, "export", "-d", "elongatus").stdout_bytes
    assert (
        hashlib.sha256(exported).digest()
        == hashlib.sha256(gzip.decompress(source.read_bytes())).digest()
    )
    hits = json.loads(ok("--store", store, "get", "Q8GMS3", "--json").stdout)
    assert [h["accession"] for h in hits] == ["Q8GMS3"]
