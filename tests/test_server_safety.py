"""Bad input and slow clients: fuzzed paths, parameters and headers never get a 500, and no client holds on forever.

Requests go over raw sockets, so bytes no HTTP client would send (NUL,
raw UTF-8, ``../``, thousands of Range parts) reach the server. Every
answer must be one of the statuses the server means to give, with a JSON
one-line message for errors and no traceback anywhere.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server_data import (
    CIRCULAR,
    I_MD5,
    NC_MD5,
    NC_SQ,
    compliance_fasta,
    compliance_store,
    import_fasta,
    residues_of,
    running_server,
)
from talaria_storage.config.open_store import open_store
from talaria_storage.server.settings import ServerSettings

EXPECTED = {200, 206, 304, 400, 404, 405, 406, 413, 416}
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def raw_request(base: str, target: bytes, headers: dict[bytes, bytes] | None = None, method: bytes = b"GET") -> tuple[int, bytes]:
    """Send one request as raw bytes; the status and the whole response."""
    host, port = base.removeprefix("http://").strip("/").split(":")
    lines = [method + b" " + target + b" HTTP/1.1", b"Host: " + host.encode(), b"Connection: close"]
    lines += [k + b": " + v for k, v in (headers or {}).items()]
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = compliance_store(tmp_path_factory.mktemp("safety") / "store")
    with running_server(store, ServerSettings(circular=(CIRCULAR,), max_bases=100_000)) as url:
        yield url
    store.close()


def _assert_clean(status: int, response: bytes) -> None:
    assert status in EXPECTED, response[:500]
    assert b"Traceback" not in response and b"Internal Server Error" not in response


ids = st.one_of(
    st.text(max_size=300),
    st.text(min_size=200, max_size=4000),
    st.sampled_from(["../", "..%2f..%2fetc%2fpasswd", "%00", "SQ.", "ga4gh:SQ." + "A" * 31, "md5:" + "g" * 32, I_MD5 + "\x00"]),
    st.from_regex(r"[0-9a-fA-F]{30,66}", fullmatch=True),
)


@FUZZ
@given(sequence_id=ids, raw=st.booleans(), suffix=st.sampled_from(["", "/metadata", "/metadata/x", "/../service-info"]))
def test_fuzzed_sequence_ids_get_a_4xx_never_a_500(base: str, sequence_id: str, raw: bool, suffix: str) -> None:
    encoded = sequence_id.encode("utf-8", "surrogatepass") if raw else quote(sequence_id, safe="").encode()
    status, response = raw_request(base, b"/sequence/" + encoded.replace(b" ", b"%20") + suffix.encode())
    _assert_clean(status, response)


numbers = st.one_of(st.integers(-(2**70), 2**70).map(str), st.text(max_size=40), st.just(""))


@FUZZ
@given(start=numbers, end=numbers, extra=st.text(max_size=30), repeat=st.booleans())
def test_fuzzed_start_end_get_a_4xx_never_a_500(base: str, start: str, end: str, extra: str, repeat: bool) -> None:
    query = f"start={quote(start)}&end={quote(end)}&{quote(extra)}=1" + (f"&start={quote(start)}" if repeat else "")
    status, response = raw_request(base, f"/sequence/{NC_MD5}?{query}".encode())
    _assert_clean(status, response)


range_specs = st.one_of(
    st.text(max_size=80),
    st.lists(st.tuples(st.integers(-5, 10**22), st.integers(-5, 10**22)), min_size=1, max_size=2000).map(
        lambda parts: "bytes=" + ",".join(f"{a}-{b}" for a, b in parts)
    ),
    st.tuples(st.integers(0, 6000), st.integers(0, 6000)).map(lambda p: f"bytes={p[0]}-{p[1]}"),
)


@FUZZ
@given(spec=range_specs, accept=st.one_of(st.none(), st.text(max_size=200)))
def test_fuzzed_range_and_accept_headers_get_a_4xx_never_a_500(base: str, spec: str, accept: str | None) -> None:
    headers = {b"Range": spec.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")[:12000]}
    if accept is not None:
        headers[b"Accept"] = accept.encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")
    status, response = raw_request(base, f"/sequence/{NC_MD5}".encode(), headers)
    _assert_clean(status, response)


@FUZZ
@given(path=st.text(max_size=200), query=st.text(max_size=200))
def test_fuzzed_seqcol_paths_get_a_4xx_never_a_500(base: str, path: str, query: str) -> None:
    for prefix in ("/collection/", "/comparison/", "/list/", "/attribute/collection/"):
        status, response = raw_request(base, (prefix + quote(path) + "?" + quote(query, safe="=&")).encode())
        _assert_clean(status, response)


@pytest.fixture(scope="module")
def nc() -> str:
    return residues_of(compliance_fasta()[2])


@FUZZ
@given(start=st.integers(0, 5386), end=st.integers(0, 5386))
def test_every_in_bounds_start_end_returns_exactly_that_slice(base: str, nc: str, start: int, end: int) -> None:
    status, response = raw_request(base, f"/sequence/{NC_SQ}?start={start}&end={end}".encode())
    body = response.split(b"\r\n\r\n", 1)[1]
    if start == 5386:
        assert status == 416
    elif start <= end:
        assert (status, body.decode()) == (200, nc[start:end])
    else:
        assert (status, body.decode()) == (200, nc[start:] + nc[:end])


def test_a_request_body_is_never_read_and_writes_are_refused(base: str) -> None:
    status, response = raw_request(base, b"/sequence/" + I_MD5.encode(), {b"Content-Length": b"5"}, method=b"PUT")
    assert status == 405


def test_an_overlong_request_line_is_400_from_the_server_itself(base: str) -> None:
    status, response = raw_request(base, b"/sequence/" + b"A" * 40000)
    _assert_clean(status, response)
    assert status in (400, 404)


# -- slow clients


def _closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes (or resets) the connection before ``within`` seconds pass."""
    sock.settimeout(within)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, int]]:
    """A server with 0.5 s deadlines over one 16 Mb sequence: (base URL, its SQ id, its length)."""
    root = tmp_path_factory.mktemp("slow")
    rng = random.Random(16)
    length = 16 << 20
    source = root / "big.fa"
    source.write_bytes(b">big\n" + bytes(rng.choice(b"ACGT") for _ in range(length)) + b"\n")
    from talaria_storage.sequences.canonical import refget_id

    sq = refget_id(source.read_bytes()[5:-1])
    with open_store(root / "store") as store:
        import_fasta(store, "big", [source])
        fast = ServerSettings(header_timeout=0.5, send_timeout=0.5)
        with running_server(store, fast) as url:
            yield url, sq, length


def test_a_connection_that_never_finishes_its_headers_is_closed(big: tuple[str, str, int]) -> None:
    host, port = big[0].removeprefix("http://").strip("/").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"GET /sequence/service-info HTTP/1.1\r\nHo")
        assert _closed_by_server(sock, within=20)


def test_a_client_that_stops_reading_is_dropped_and_others_are_still_served(big: tuple[str, str, int]) -> None:
    base, sq, length = big
    host, port = base.removeprefix("http://").strip("/").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    try:
        sock.sendall(f"GET /sequence/{sq} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        time.sleep(3)  # read nothing for longer than the 0.5 s send deadline
        received = 0
        sock.settimeout(20)
        try:
            while chunk := sock.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert received < length  # the server gave up on this client
    finally:
        sock.close()
    status, _ = raw_request(base, f"/sequence/{sq}?start=0&end=10".encode())
    assert status == 200
