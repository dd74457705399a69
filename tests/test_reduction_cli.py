"""``talaria-storage reduce`` and ``export --profile``: the commands, their output, their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from reduction_data import families, write_fasta
from typer.testing import CliRunner, Result

from talaria_storage import open_store
from talaria_storage.cli.common import EXIT_FAILURE, EXIT_USAGE
from talaria_storage.cli.main import app
from talaria_storage.core.keys import REDUCTIONS
from talaria_storage.io.talaria_metadata import read_deltas, read_ref2children

RECORDS = families()


@pytest.fixture
def store(tmp_path: Path) -> str:
    location = str(tmp_path / "store")
    source = write_fasta(tmp_path / "families.fa", RECORDS)
    assert cli(location, "init").exit_code == 0
    assert cli(location, "import", "--database", "prot", "--version", "v1", str(source)).exit_code == 0
    return location


def cli(location: str, *args: str) -> Result:
    return CliRunner().invoke(app, ["--store", location, *args])


def reduce90(location: str, *extra: str) -> Result:
    return cli(location, "reduce", "--database", "prot", "--profile", "90", "--processes", "0", *extra)


def test_reduce_prints_the_summary(store: str) -> None:
    result = reduce90(store)
    assert result.exit_code == 0, result.output
    assert "published profile '90' of prot@v1: 10 references, 24 members of 34 sequences (34 records)" in result.output


def test_reduce_json_gives_the_counts(store: str) -> None:
    found = json.loads(reduce90(store, "--json").stdout)
    assert (found["references"], found["members"], found["kept_fraction"]) == (10, 24, round(10 / 34, 6))


def test_reduce_list_and_show_describe_the_profile(store: str) -> None:
    reduce90(store)
    listed = json.loads(cli(store, "reduce", "list", "--database", "prot", "--json").stdout)
    assert [row["profile"] for row in listed] == ["90"]
    shown = cli(store, "reduce", "show", "90", "--database", "prot")
    assert "version: v1" in shown.output and "identity: 0.9" in shown.output


def test_reduce_expand_lists_the_members_of_a_reference(store: str) -> None:
    reduce90(store)
    result = cli(store, "reduce", "expand", "--database", "prot", "--profile", "90", "F0_0")
    assert result.stdout.split("\t")[0:2] == ["F0_0", "F0_0"]
    assert sorted(result.stdout.split()[1:]) == [f"F0_{m}" for m in range(5)]


def test_reduce_expand_fasta_writes_the_member_records(store: str) -> None:
    reduce90(store)
    result = cli(store, "reduce", "expand", "--database", "prot", "--profile", "90", "--fasta", "F1_0")
    assert result.stdout.count(">") == 5 and ">F1_3 protein OX=10090" in result.stdout


def test_export_references_writes_one_record_per_reference(store: str, tmp_path: Path) -> None:
    reduce90(store)
    out = tmp_path / "refs.fa"
    result = cli(store, "export", "--database", "prot", "--profile", "90", "--references", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text().count(">") == 10


def test_export_metadata_writes_deltas_and_ref2children(store: str, tmp_path: Path) -> None:
    reduce90(store)
    result = cli(store, "export", "--database", "prot", "--profile", "90", "--metadata", str(tmp_path / "meta"))
    assert result.exit_code == 0, result.output
    children = read_ref2children(tmp_path / "meta" / "ref2children.tsv")
    assert children["F0_0"] == [f"F0_{m}" for m in range(1, 5)]
    lines = list(read_deltas(tmp_path / "meta" / "deltas.dat"))
    assert len(lines) == 24 and {line.reference for line in lines if line.child.startswith("F2")} == {"F2_0"}


def test_reduce_delete_removes_the_profile(store: str) -> None:
    reduce90(store)
    assert cli(store, "reduce", "delete", "90", "--database", "prot").exit_code == 0
    assert "no reduction profiles" in cli(store, "reduce", "list", "--database", "prot").output


def test_identity_with_ratio_is_a_usage_error(store: str) -> None:
    result = reduce90(store, "--identity", "0.9", "--ratio", "0.5")
    assert result.exit_code == EXIT_USAGE
    assert result.stderr.strip() == "error: choose an identity or a ratio (--identity or --ratio), not both"


def test_an_identity_above_one_is_a_usage_error_and_publishes_nothing(store: str) -> None:
    result = reduce90(store, "--identity", "1.2")
    assert result.exit_code == EXIT_USAGE and "identity must be in (0, 1], got 1.2" in result.stderr
    opened = open_store(store)
    assert opened.refs.list(REDUCTIONS) == {}
    opened.close()


def test_showing_an_unknown_profile_fails_in_one_line(store: str) -> None:
    result = cli(store, "reduce", "show", "80", "--database", "prot")
    assert result.exit_code == EXIT_FAILURE
    assert result.stderr.count("\n") == 1 and "no reduction profile '80'" in result.stderr


def test_reducing_a_missing_version_fails_in_one_line(store: str) -> None:
    result = cli(store, "reduce", "--database", "prot@v7", "--profile", "90")
    assert result.exit_code == EXIT_FAILURE and "v7" in result.stderr and result.stderr.count("\n") == 1
