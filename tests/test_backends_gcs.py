"""The GCS backend against a real fake-gcs-server on 127.0.0.1: the conformance suite plus GCS specifics.

fake-gcs-server honours generation preconditions on uploads only (not on
deletes, copies or downloads), which is all the backend relies on. To run
another suite on GCS, reuse the ``gcs_backend`` fixture.
"""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from talaria_storage.testing.emulators import require_sdk

require_sdk("google.cloud.storage", "gcs")

from google.api_core import exceptions as gexc
from google.cloud import storage
from talaria_storage.backends.gcs import GCSBackend

from talaria_storage.core.errors import BackendError, ObjectNotFound, PreconditionFailed
from talaria_storage.storage.registry import open_backend
from talaria_storage.testing.backend_suite import BackendConformance
from talaria_storage.testing.emulators import GCS_TEST_OPTIONS, free_port, unique_bucket_name

pytestmark = pytest.mark.emulator

MIB = 1024 * 1024
BIG = 9 * MIB + 5  # above the SDK's 8 MiB single-request limit: resumable, in 4 MiB chunks


class TestGCSBackend(BackendConformance):
    """The shared Backend contract on fake-gcs-server (pages of 100, resumable above 8 MiB)."""

    listing_count = 250

    @pytest.fixture
    def backend(self, gcs_backend: GCSBackend) -> Iterator[GCSBackend]:
        yield gcs_backend


@pytest.fixture
def resumable_uploads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    """Records (chunk size, if_generation_match) of every resumable upload the SDK starts."""
    seen: list[tuple[int, int | None]] = []
    real: Callable[..., Any] = storage.Blob._do_resumable_upload
    signature = inspect.signature(real)

    def spy(self: storage.Blob, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        seen.append((int(self.chunk_size or 0), bound.arguments.get("if_generation_match")))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(storage.Blob, "_do_resumable_upload", spy)
    return seen


def test_a_large_put_is_a_chunked_resumable_upload(
    gcs_backend: GCSBackend, resumable_uploads: list[tuple[int, int | None]]
) -> None:
    data = os.urandom(BIG)
    gcs_backend.put("chunks/" + "aa" * 32, data)
    assert resumable_uploads == [(4 * MIB, None)]
    assert gcs_backend.get("chunks/" + "aa" * 32) == data
    assert (
        gcs_backend.get_range("chunks/" + "aa" * 32, 4 * MIB - 2, 4 * MIB + 2)
        == data[4 * MIB - 2 : 4 * MIB + 2]
    )
    assert gcs_backend.get_range("chunks/" + "aa" * 32, BIG - 1, BIG + 9) == data[-1:]
    assert gcs_backend.get_range("chunks/" + "aa" * 32, BIG + 1, BIG + 9) == b""


def test_a_large_conditional_write_is_a_resumable_upload_carrying_the_precondition(
    gcs_backend: GCSBackend, resumable_uploads: list[tuple[int, int | None]]
) -> None:
    key = "manifests/" + "bb" * 32
    version = gcs_backend.put_if_version(key, os.urandom(BIG), None)
    gcs_backend.put_if_version(key, os.urandom(BIG), version)
    assert resumable_uploads == [(4 * MIB, 0), (4 * MIB, int(version))]


@pytest.mark.xfail(
    strict=True,
    reason="fake-gcs-server 1.54.0 ignores ifGenerationMatch on resumable uploads (real GCS honours it)",
)
def test_a_large_conditional_create_loses_to_an_existing_object(gcs_backend: GCSBackend) -> None:
    key = "manifests/" + "cc" * 32
    gcs_backend.put_if_version(key, os.urandom(BIG), None)
    with pytest.raises(PreconditionFailed):
        gcs_backend.put_if_version(key, os.urandom(BIG), None)


def test_versions_are_generations(gcs_backend: GCSBackend, gcs_endpoint: str) -> None:
    version = gcs_backend.put_if_version("refs/db/HEAD", b"v1", None)
    current = gcs_backend.read_versioned("refs/db/HEAD")
    assert current is not None and current.version == version and int(version) > 0
    with pytest.raises(PreconditionFailed, match="not a GCS generation"):
        gcs_backend.put_if_version("refs/db/HEAD", b"v2", '"an-etag"')


def test_open_backend_with_options(gcs_endpoint: str, gcs_bucket: str) -> None:
    backend = open_backend(
        f"gs://{gcs_bucket}/via-url", {"endpoint_url": gcs_endpoint, **GCS_TEST_OPTIONS}
    )
    try:
        assert isinstance(backend, GCSBackend)
        backend.put("store.json", b"{}")
        assert [i.key for i in backend.list("")] == ["store.json"]
        assert repr(backend) == f"GCSBackend('gs://{gcs_bucket}/via-url')"
    finally:
        backend.close()


def test_the_project_comes_from_talaria_gcs_project(
    gcs_endpoint: str, gcs_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALARIA_GCS_PROJECT", "from-env")
    options = {k: v for k, v in GCS_TEST_OPTIONS.items() if k != "project"}
    backend = GCSBackend(gcs_bucket, endpoint_url=gcs_endpoint, **options)
    assert backend._client.project == "from-env"
    backend.close()


# -- errors -------------------------------------------------------------------------------------


def test_a_missing_bucket_is_a_permanent_error_naming_the_fix(gcs_endpoint: str) -> None:
    name = unique_bucket_name()
    backend = GCSBackend(name, "p", endpoint_url=gcs_endpoint, **GCS_TEST_OPTIONS)
    for action in (
        lambda: backend.put("state/x", b"x"),
        lambda: backend.get("state/x"),
        lambda: backend.exists("state/x"),
        lambda: list(backend.list("")),
        lambda: backend.put_if_version("refs/db/HEAD", b"x", None),
    ):
        with pytest.raises(BackendError) as caught:
            action()
        assert not isinstance(caught.value, ObjectNotFound)
        assert caught.value.retryable is False
        assert str(caught.value).startswith(f"bucket '{name}' does not exist")
        assert "create it or fix [storage] bucket" in str(caught.value)
    backend.close()


def test_a_dead_endpoint_fails_quickly_with_a_retryable_error() -> None:
    port = free_port()
    backend = GCSBackend(
        "bucket",
        "p",
        endpoint_url=f"http://user:pw-s3cret@127.0.0.1:{port}",
        **{**GCS_TEST_OPTIONS, "retry_timeout": 1.0, "retry_initial": 0.1},
    )
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        backend.get("refs/db/HEAD")
    assert time.monotonic() - started < 10
    assert caught.value.retryable is True
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and "pw-s3cret" not in message and "\n" not in message
    assert "pw-s3cret" not in repr(backend)
    backend.close()


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (gexc.PreconditionFailed("412"), PreconditionFailed, False),
        (gexc.TooManyRequests("429"), BackendError, True),
        (gexc.ServiceUnavailable("503"), BackendError, True),
        (gexc.Forbidden("403"), BackendError, False),
        (gexc.Unauthorized("401"), BackendError, False),
        (gexc.BadRequest("400"), BackendError, False),
        (gexc.RetryError("deadline", cause=gexc.ServiceUnavailable("503")), BackendError, True),
    ],
)
def test_sdk_errors_are_translated(error: Exception, kind: type, retryable: bool) -> None:
    backend = GCSBackend("bucket", anonymous=True, project="p")
    translated = backend._translate(error, "state/x", object_call=True)
    assert type(translated) is kind
    assert getattr(translated, "retryable", False) is retryable
    if isinstance(error, gexc.Forbidden):
        assert str(translated).startswith("access denied for gs://bucket/state/x")
    backend.close()


def test_a_retried_create_that_finds_its_own_bytes_reports_success(
    gcs_backend: GCSBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost response: the first attempt wrote, the SDK's retry then met if_generation_match=0."""
    callbacks: list[Callable[[Exception], None] | None] = []
    real_make_retry = gcs_backend._make_retry
    real_upload = gcs_backend._upload

    def make_retry(on_error: Callable[[Exception], None] | None = None) -> Any:
        callbacks.append(on_error)
        return real_make_retry(on_error)

    def upload_then_lose_the_response(
        key: str, data: bytes, generation: int | None, retry: Any
    ) -> Any:
        real_upload(key, data, generation, retry)
        on_error = callbacks[-1]
        assert on_error is not None
        on_error(ConnectionResetError("response lost"))  # what the SDK calls before retrying
        raise gexc.PreconditionFailed("412 on the retry")

    monkeypatch.setattr(gcs_backend, "_make_retry", make_retry)
    monkeypatch.setattr(gcs_backend, "_upload", upload_then_lose_the_response)
    assert gcs_backend.put_if_absent("refs/db/HEAD", b"mine") is True
    monkeypatch.setattr(gcs_backend, "_upload", real_upload)
    assert gcs_backend.put_if_absent("refs/db/HEAD", b"mine") is False  # a plain loss


def test_a_closed_backend_refuses_work(gcs_backend: GCSBackend) -> None:
    gcs_backend.close()
    gcs_backend.close()
    with pytest.raises(BackendError, match="is closed"):
        gcs_backend.get("store.json")
