"""Sequence-collections v1.0.0 routes over a real server: each database version is a collection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from refget.utils import fasta_to_seqcol_dict, seqcol_digest

from server_data import compliance_fasta, import_fasta, running_server
from talaria_storage.config.open_store import open_store
from talaria_storage.server.settings import ServerSettings


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """Database ``genomes``: v1 = I and VI, v2 = I, VI and NC; the oracle's digest of each."""
    root = tmp_path_factory.mktemp("seqcol")
    files = compliance_fasta()
    oracle = {}
    for version, chosen in (("v1", files[:2]), ("v2", files)):
        joined = root / f"{version}.fa"
        joined.write_bytes(b"".join(p.read_bytes() for p in chosen))
        oracle[version] = seqcol_digest(fasta_to_seqcol_dict(str(joined)))
    with open_store(root / "store") as store:
        import_fasta(store, "genomes", files[:2], "v1")
        import_fasta(store, "genomes", files, "v2")
        with running_server(store, ServerSettings(max_collection_sequences=2)) as base:
            with httpx.Client(base_url=base, timeout=30) as http:
                yield http, oracle


def test_list_gives_every_version_digest_as_the_oracle_computes_it(served: tuple[httpx.Client, dict]) -> None:
    http, oracle = served
    body = http.get("list/collection").json()
    assert sorted(body["results"]) == sorted(oracle.values())
    assert body["pagination"] == {"page": 0, "page_size": 100, "total": 2}


def test_list_pages_from_page_zero(served: tuple[httpx.Client, dict]) -> None:
    http, _ = served
    first = http.get("list/collection?page=0&page_size=1").json()["results"]
    second = http.get("list/collection?page=1&page_size=1").json()["results"]
    assert len(first) == len(second) == 1 and first != second


def test_list_filters_by_level1_attribute_digests(served: tuple[httpx.Client, dict]) -> None:
    http, oracle = served
    level1 = http.get(f"collection/{oracle['v1']}?level=1").json()
    found = http.get("list/collection", params={"names": level1["names"], "lengths": level1["lengths"]}).json()
    assert found["results"] == [oracle["v1"]]
    assert http.get("list/collection", params={"colour": "x"}).status_code == 400


def test_collection_level1_and_level2(served: tuple[httpx.Client, dict]) -> None:
    http, oracle = served
    level1 = http.get(f"collection/{oracle['v1']}?level=1").json()
    assert set(level1) >= {"names", "lengths", "sequences", "sorted_name_length_pairs"}
    level2 = http.get(f"collection/{oracle['v1']}").json()
    assert level2["names"] == ["I", "VI"] and level2["lengths"] == [230218, 270161]
    assert "sorted_name_length_pairs" not in level2  # transient: no level 2 value


def test_a_collection_over_the_limit_is_413_at_level_2_but_not_level_1(served: tuple[httpx.Client, dict]) -> None:
    http, oracle = served
    r = http.get(f"collection/{oracle['v2']}")
    assert r.status_code == 413 and "limit of 2" in r.json()["message"]
    assert http.get(f"collection/{oracle['v2']}?level=1").status_code == 200


def test_comparison_of_a_version_with_itself(served: tuple[httpx.Client, dict]) -> None:
    http, oracle = served
    body = http.get(f"comparison/{oracle['v1']}/{oracle['v1']}").json()
    assert body["digests"] == {"a": oracle["v1"], "b": oracle["v1"]}
    assert body["array_elements"]["a_and_b_same_order"]["sequences"] is True


def test_attribute_by_level1_digest(served: tuple[httpx.Client, dict]) -> None:
    http, oracle = served
    level1 = http.get(f"collection/{oracle['v1']}?level=1").json()
    assert http.get(f"attribute/collection/names/{level1['names']}").json() == ["I", "VI"]
    snlp = level1["sorted_name_length_pairs"]
    assert http.get(f"attribute/collection/sorted_name_length_pairs/{snlp}").status_code == 404


def test_service_info_serves_the_schema(served: tuple[httpx.Client, dict]) -> None:
    http, _ = served
    info = http.get("service-info").json()
    assert info["type"]["artifact"] == "refget-seqcol"
    assert info["seqcol"]["schema"]["ga4gh"]["inherent"] == ["names", "sequences"]


@pytest.mark.parametrize(
    ("path", "status"),
    [("collection/" + "A" * 32, 404), ("collection/short", 404), ("collection/{v1}?level=3", 400),
     ("collection/{v1}?level=1&level=2", 400), ("comparison/{v1}/" + "B" * 32, 404), ("list/sequence", 404),
     ("list/collection?page=-1", 400), ("list/collection?page_size=100000", 400), ("attribute/collection/colour/x", 404)],
)
def test_bad_seqcol_requests(served: tuple[httpx.Client, dict], path: str, status: int) -> None:
    http, oracle = served
    assert http.get(path.format(v1=oracle["v1"])).status_code == status


def test_collection_urls_are_immutable_with_304(served: tuple[httpx.Client, dict]) -> None:
    http, oracle = served
    r = http.get(f"collection/{oracle['v1']}")
    assert "immutable" in r.headers["cache-control"]
    assert http.get(f"collection/{oracle['v1']}", headers={"If-None-Match": r.headers["etag"]}).status_code == 304


def test_list_json_shows_each_versions_seqcol_digest(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from talaria_storage.cli.main import app

    with open_store(tmp_path / "store") as store:
        import_fasta(store, "genomes", compliance_fasta())
    result = CliRunner().invoke(app, ["--store", str(tmp_path / "store"), "list", "--json"])
    assert result.exit_code == 0, result.output
    joined = tmp_path / "all.fa"
    joined.write_bytes(b"".join(p.read_bytes() for p in compliance_fasta()))
    (entry,) = json.loads(result.stdout)
    assert entry["versions"][0]["seqcol"] == seqcol_digest(fasta_to_seqcol_dict(str(joined)))
