"""refget sequences v2.0.0 over a real server on 127.0.0.1: the issue's vectors, sub-sequences, errors, caching.

Every test talks HTTP to uvicorn on a loopback socket (``running_server``),
against a filesystem store holding the compliance suite's I, VI and NC.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from talaria_storage.config.open_store import open_store
from talaria_storage.server.sequence_reader import trunc512_to_refget
from talaria_storage.server.settings import ServerSettings
from talaria_storage.storage.store import Store
from server_data import (
    CIRCULAR,
    I_MD5,
    I_SQ,
    NC_MD5,
    NC_SQ,
    VI_MD5,
    VI_SQ,
    compliance_fasta,
    compliance_store,
    import_fasta,
    residues_of,
    running_server,
)

PLAIN_V2 = "text/vnd.ga4gh.refget.v2.0.0+plain"
JSON_V2 = "application/vnd.ga4gh.refget.v2.0.0+json"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    found = compliance_store(tmp_path_factory.mktemp("refget") / "store")
    yield found
    found.close()


@pytest.fixture(scope="module")
def client(store: Store) -> Iterator[httpx.Client]:
    with running_server(store, ServerSettings(circular=(CIRCULAR,), max_bases=250_000)) as base:
        with httpx.Client(base_url=base, timeout=30) as http:
            yield http


@pytest.fixture(scope="module")
def sequences() -> dict[str, str]:
    i, vi, nc = (residues_of(p) for p in compliance_fasta())
    return {"I": i, "VI": vi, "NC": nc}


# -- the vectors of the issue


@pytest.mark.parametrize(
    ("name", "md5", "sq", "length"),
    [("I", I_MD5, I_SQ, 230_218), ("VI", VI_MD5, VI_SQ, 270_161), ("NC", NC_MD5, NC_SQ, 5_386)],
)
def test_metadata_by_any_digest_gives_md5_ga4gh_and_length(
    client: httpx.Client, name: str, md5: str, sq: str, length: int
) -> None:
    for ident in (md5, "md5:" + md5, sq, "ga4gh:" + sq):
        body = client.get(f"sequence/{ident}/metadata").json()["metadata"]
        assert (body["md5"], body["ga4gh"], body["length"]) == (md5, sq, length)


def test_the_circular_sequence_wraps_round_its_origin(client: httpx.Client) -> None:
    r = client.get(f"sequence/{NC_SQ}", params={"start": 5374, "end": 5})
    assert (r.status_code, r.text) == (200, "ATCCAACCTGCAGAGTT")


def test_a_whole_sequence_is_its_residues_with_the_v2_content_type(
    client: httpx.Client, sequences: dict[str, str]
) -> None:
    r = client.get(f"sequence/{I_SQ}")
    assert r.status_code == 200 and r.text == sequences["I"]
    assert r.headers["content-type"].startswith(PLAIN_V2)
    assert int(r.headers["content-length"]) == 230_218


def test_start_end_are_zero_based_and_half_open(client: httpx.Client, sequences: dict[str, str]) -> None:
    r = client.get(f"sequence/{I_MD5}?start=10&end=20")
    assert (r.status_code, r.text) == (200, sequences["I"][10:20])
    assert r.headers["accept-ranges"] == "none"


@pytest.mark.parametrize("query", ["?start=230208", "?end=5", "?start=0", "?end=0", "?start=10&end=10"])
def test_start_or_end_alone_default_to_the_ends(client: httpx.Client, sequences: dict[str, str], query: str) -> None:
    bounds = dict(p.split("=") for p in query[1:].split("&"))
    expected = sequences["I"][int(bounds.get("start", 0)) : int(bounds.get("end", len(sequences["I"])))]
    assert client.get(f"sequence/{I_MD5}{query}").text == expected


def test_a_range_header_gives_206_with_content_range(client: httpx.Client, sequences: dict[str, str]) -> None:
    r = client.get(f"sequence/{I_MD5}", headers={"Range": "bytes=10-19"})
    assert (r.status_code, r.text) == (206, sequences["I"][10:20])
    assert r.headers["content-range"] == "bytes 10-19/230218"


def test_a_range_past_the_end_is_clipped_and_a_suffix_range_takes_the_tail(
    client: httpx.Client, sequences: dict[str, str]
) -> None:
    assert client.get(f"sequence/{NC_MD5}", headers={"Range": "bytes=5380-999999"}).text == sequences["NC"][5380:]
    assert client.get(f"sequence/{NC_MD5}", headers={"Range": "bytes=-7"}).text == sequences["NC"][-7:]


def test_trunc512_and_sha256_find_the_sequence_too(client: httpx.Client, sequences: dict[str, str]) -> None:
    trunc = "959cb1883fc1ca9ae1394ceb475a356ead1ecceff5824ae7"
    assert trunc512_to_refget(trunc) == I_SQ
    assert client.get(f"sequence/{trunc}?end=5").text == sequences["I"][:5]
    import hashlib

    sha = hashlib.sha256(sequences["NC"].encode()).hexdigest()
    assert client.get(f"sequence/{sha}?end=5").text == sequences["NC"][:5]


def test_v1_clients_get_v1_media_types_and_trunc512(client: httpx.Client) -> None:
    r = client.get(f"sequence/{I_MD5}?end=3", headers={"Accept": "text/vnd.ga4gh.refget.v1.0.0+plain"})
    assert r.headers["content-type"].startswith("text/vnd.ga4gh.refget.v1.0.0+plain")
    meta = client.get(f"sequence/{I_MD5}/metadata", headers={"Accept": "application/vnd.ga4gh.refget.v1.0.0+json"})
    assert meta.json()["metadata"]["trunc512"] == "959cb1883fc1ca9ae1394ceb475a356ead1ecceff5824ae7"


def test_a_generic_accept_degrades_to_the_refget_type(client: httpx.Client) -> None:
    for accept in ("text/plain", "text/*", "*/*", "text/plain; charset=us-ascii"):
        r = client.get(f"sequence/{I_MD5}?end=3", headers={"Accept": accept})
        assert r.status_code == 200 and r.headers["content-type"].startswith(PLAIN_V2)


def test_metadata_aliases_name_the_accessions_carrying_the_sequence(client: httpx.Client) -> None:
    aliases = client.get(f"sequence/{NC_SQ}/metadata").json()["metadata"]["aliases"]
    assert aliases == [{"alias": "NC_001422.1", "naming_authority": "refseq"}]


def test_service_info_has_refget_and_v1_service_objects(client: httpx.Client) -> None:
    info = client.get("sequence/service-info").json()
    assert info["type"] == {"group": "org.ga4gh", "artifact": "refget", "version": "2.0.0"}
    assert info["refget"]["circular_supported"] is True
    assert {"md5", "ga4gh"} <= set(info["refget"]["algorithms"])
    assert info["refget"]["subsequence_limit"] == 250_000
    assert info["service"]["supported_api_versions"] == ["1.0.0", "2.0.0"]


# -- errors


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("?start=abc&end=20", 400),
        ("?start=-10&end=-29", 400),
        ("?start=1&start=2", 400),
        ("?start=99999999999", 400),
        ("?start=67&end=5387", 416),
        ("?start=5386&end=5386", 416),
        ("?start=5386&end=5", 416),
    ],
)
def test_bad_or_out_of_bounds_start_end(client: httpx.Client, query: str, status: int) -> None:
    r = client.get(f"sequence/{NC_MD5}{query}")
    assert r.status_code == status and r.json()["status_code"] == status


def test_start_after_end_on_a_linear_sequence_is_416(client: httpx.Client) -> None:
    r = client.get(f"sequence/{I_MD5}?start=220218&end=671")
    assert r.status_code == 416 and "not circular" in r.json()["message"]


@pytest.mark.parametrize(
    ("header", "status"),
    [("units=20-30", 400), ("bytes=ab-19", 400), ("bytes==10-19", 400), ("bytes=-10-", 400),
     ("bytes=1-2,5-6", 400), ("bytes=59-50", 416), ("bytes=5386-5387", 416), ("bytes=-0", 416)],
)
def test_bad_or_unsatisfiable_range_headers(client: httpx.Client, header: str, status: int) -> None:
    assert client.get(f"sequence/{NC_MD5}", headers={"Range": header}).status_code == status


def test_a_range_header_with_start_end_is_400(client: httpx.Client) -> None:
    assert client.get(f"sequence/{NC_MD5}?start=1", headers={"Range": "bytes=1-2"}).status_code == 400


def test_an_unknown_digest_is_404_and_a_garbage_id_too(client: httpx.Client) -> None:
    assert client.get("sequence/" + "0" * 32).status_code == 404
    assert client.get("sequence/Garbagechecksum").status_code == 404
    assert client.get("sequence/some1111garbage1111ID/metadata").status_code == 404


def test_an_unsupported_accept_is_406(client: httpx.Client) -> None:
    assert client.get(f"sequence/{I_MD5}", headers={"Accept": "embl/some_json"}).status_code == 406
    assert client.get(f"sequence/{I_MD5}", headers={"Accept": "text/plain;q=0"}).status_code == 406
    assert client.get(f"sequence/{I_MD5}/metadata", headers={"Accept": "text/plain"}).status_code == 406


def test_over_the_limit_a_range_is_416_and_a_whole_sequence_413_naming_it(client: httpx.Client) -> None:
    whole = client.get(f"sequence/{VI_MD5}")  # 270,161 > 250,000
    assert whole.status_code == 413 and "250000" in whole.json()["message"]
    part = client.get(f"sequence/{VI_MD5}?start=0&end=260000")
    assert part.status_code == 416 and "250000" in part.json()["message"]


def test_writing_methods_are_405(client: httpx.Client) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        assert client.request(method, f"sequence/{I_MD5}", content=b"x" * 1000).status_code == 405


# -- caching


def test_digest_urls_carry_etag_and_immutable_and_answer_304(client: httpx.Client) -> None:
    r = client.get(f"sequence/{NC_SQ}")
    assert r.headers["etag"] == f'"{NC_SQ}"' and "immutable" in r.headers["cache-control"]
    again = client.get(f"sequence/{NC_SQ}", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_a_sub_sequence_has_its_own_etag(client: httpx.Client) -> None:
    a = client.get(f"sequence/{NC_SQ}?start=1&end=5").headers["etag"]
    b = client.get(f"sequence/{NC_SQ}?start=2&end=5").headers["etag"]
    assert a != b and client.get(f"sequence/{NC_SQ}?start=1&end=5", headers={"If-None-Match": a}).status_code == 304


def test_an_if_range_that_does_not_match_sends_the_whole_sequence(client: httpx.Client) -> None:
    r = client.get(f"sequence/{NC_SQ}", headers={"Range": "bytes=0-9", "If-Range": '"other"'})
    assert r.status_code == 200 and len(r.content) == 5386


def test_head_gives_the_headers_without_the_body(client: httpx.Client) -> None:
    r = client.head(f"sequence/{I_SQ}")
    assert r.status_code == 200 and r.headers["content-length"] == "230218" and r.content == b""


def test_cors_lets_a_browser_on_another_origin_read_ranges(client: httpx.Client) -> None:
    r = client.get(f"sequence/{NC_SQ}", headers={"Origin": "https://igv.example", "Range": "bytes=0-3"})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "content-range" in r.headers["access-control-expose-headers"].lower()


# -- read-only, beside writers


def test_a_version_published_while_serving_is_served(tmp_path: Path) -> None:
    with open_store(tmp_path / "store") as store:
        import_fasta(store, "genomes", compliance_fasta()[:1])
        with running_server(store, ServerSettings(refresh_seconds=0)) as base, httpx.Client(base_url=base) as http:
            assert http.get(f"sequence/{NC_SQ}/metadata").status_code == 404
            import_fasta(store, "genomes", compliance_fasta(), version="v2")  # a writer beside the server
            assert http.get(f"sequence/{NC_SQ}/metadata").json()["metadata"]["length"] == 5386


def test_only_the_databases_named_are_served(tmp_path: Path) -> None:
    with open_store(tmp_path / "store") as store:
        import_fasta(store, "yeast", compliance_fasta()[:2])
        import_fasta(store, "phage", compliance_fasta()[2:])
        with running_server(store, ServerSettings(databases=("yeast",))) as base:
            assert httpx.get(base + f"sequence/{I_SQ}?end=1").status_code == 200
            assert httpx.get(base + f"sequence/{NC_SQ}?end=1").status_code == 404


def test_a_soft_masked_record_is_served_upper_case(tmp_path: Path) -> None:
    source = tmp_path / "masked.fa"
    source.write_text(">chrM circular=true\nacgtACGTnn\nAC\n")
    with open_store(tmp_path / "store") as store:
        import_fasta(store, "masked", [source])
        from talaria_storage.sequences.canonical import refget_id

        sq = refget_id(b"ACGTACGTNNAC")
        with running_server(store) as base:
            assert httpx.get(base + f"sequence/{sq}").text == "ACGTACGTNNAC"
            assert httpx.get(base + f"sequence/{sq}?start=10&end=2").text == "ACAC"  # header says circular
