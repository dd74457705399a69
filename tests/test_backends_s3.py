"""The S3 backend against a real moto server on 127.0.0.1: the conformance suite plus S3 specifics.

To run another suite on S3, reuse the ``s3_backend`` fixture (talaria_storage.testing.emulators)::

    class TestS3ChunkStorage(ChunkStorageConformance):
        @pytest.fixture
        def chunk_storage(self, s3_backend): ...
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from talaria_storage.testing.emulators import require_sdk

require_sdk("boto3", "s3")

from botocore.exceptions import ClientError
from talaria_storage.backends import s3 as s3_module
from talaria_storage.backends.s3 import S3Backend

from talaria_storage.core.errors import BackendError, ObjectNotFound, PreconditionFailed
from talaria_storage.storage.registry import open_backend
from talaria_storage.testing.backend_suite import BackendConformance
from talaria_storage.testing.emulators import (
    S3_TEST_ACCESS_KEY,
    S3_TEST_OPTIONS,
    S3_TEST_SECRET_KEY,
    EmulatorUnavailable,
    free_port,
    moto_server,
    unavailable,
    unique_bucket_name,
)

pytestmark = pytest.mark.emulator

MIB = 1024 * 1024
BIG = 11 * MIB + 5  # three 5 MiB parts with the test options


class TestS3Backend(BackendConformance):
    """The shared Backend contract on moto (pages of 100 keys, multipart above 5 MiB)."""

    listing_count = 250  # 3 pages of 100 with the test options

    @pytest.fixture
    def backend(self, s3_backend: S3Backend) -> Iterator[S3Backend]:
        yield s3_backend


def _secrets_absent(text: str) -> None:
    assert S3_TEST_SECRET_KEY not in text
    assert S3_TEST_ACCESS_KEY not in text


# -- large objects ------------------------------------------------------------------------------


def test_a_large_put_is_a_multipart_upload_and_ranges_cross_parts(
    s3_backend: S3Backend, s3_admin_client: Any
) -> None:
    data = os.urandom(BIG)
    s3_backend.put("chunks/" + "aa" * 32, data)
    head = s3_admin_client.head_object(Bucket=s3_backend.bucket, Key="store/chunks/" + "aa" * 32)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart ETag: md5-of-md5s "-<parts>"
    assert (
        s3_backend.get_range("chunks/" + "aa" * 32, 5 * MIB - 3, 5 * MIB + 3)
        == data[5 * MIB - 3 : 5 * MIB + 3]
    )
    assert s3_backend.get_range("chunks/" + "aa" * 32, BIG - 2, BIG + 10) == data[-2:]
    assert s3_backend.get_range("chunks/" + "aa" * 32, BIG + 5, BIG + 10) == b""
    assert s3_backend.stat("chunks/" + "aa" * 32).size == BIG


def test_a_large_conditional_create_is_a_conditional_multipart_upload(
    s3_backend: S3Backend,
) -> None:
    key = "manifests/" + "bb" * 32
    first, second = os.urandom(BIG), os.urandom(BIG)
    version = s3_backend.put_if_version(key, first, None)
    assert version.strip('"').endswith("-3")
    with pytest.raises(PreconditionFailed):
        s3_backend.put_if_version(key, second, None)
    assert s3_backend.get(key) == first
    new_version = s3_backend.put_if_version(key, second, version)  # If-Match on the multipart ETag
    with pytest.raises(PreconditionFailed):
        s3_backend.put_if_version(key, first, version)
    current = s3_backend.read_versioned(key)
    assert current is not None and current.data == second and current.version == new_version


def test_versions_are_etags(s3_backend: S3Backend, s3_admin_client: Any) -> None:
    version = s3_backend.put_if_version("refs/db/HEAD", b"v1", None)
    head = s3_admin_client.head_object(Bucket=s3_backend.bucket, Key="store/refs/db/HEAD")
    assert version == head["ETag"]


def test_delete_many_sends_batches(s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "_DELETE_BATCH", 7)
    keys = [f"state/op-{i}" for i in range(20)]
    for key in keys:
        s3_backend.put(key, b"x")
    s3_backend.delete_many([*keys, "state/never"])
    assert list(s3_backend.list("state/")) == []


def test_prefixes_isolate_stores_in_one_bucket(
    s3_endpoint: str, s3_bucket: str, s3_session: Any, s3_admin_client: Any
) -> None:
    one = S3Backend(
        s3_bucket, "one", endpoint_url=s3_endpoint, session=s3_session, **S3_TEST_OPTIONS
    )
    two = S3Backend(
        s3_bucket, "one/two", endpoint_url=s3_endpoint, session=s3_session, **S3_TEST_OPTIONS
    )
    one.put("refs/db/HEAD", b"1")
    two.put("refs/db/HEAD", b"2")
    s3_admin_client.put_object(Bucket=s3_bucket, Key="one/not a key", Body=b"foreign")
    assert two.get("refs/db/HEAD") == b"2"
    assert {i.key for i in one.list("refs/")} == {"refs/db/HEAD"}
    assert "not a key" not in {i.key for i in one.list("")}


def test_open_backend_uses_the_standard_credential_chain(
    s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", S3_TEST_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", S3_TEST_SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    backend = open_backend(
        f"s3://{s3_bucket}/via-url", {"endpoint_url": s3_endpoint, **S3_TEST_OPTIONS}
    )
    try:
        assert isinstance(backend, S3Backend)
        backend.put("store.json", b"{}")
        assert backend.get("store.json") == b"{}"
        assert repr(backend) == f"S3Backend('s3://{s3_bucket}/via-url')"
        _secrets_absent(repr(backend))
    finally:
        backend.close()


# -- errors -------------------------------------------------------------------------------------


def test_a_missing_bucket_is_a_permanent_error_naming_the_fix(
    s3_endpoint: str, s3_session: Any
) -> None:
    name = unique_bucket_name()
    backend = S3Backend(name, "p", endpoint_url=s3_endpoint, session=s3_session, **S3_TEST_OPTIONS)
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


def test_a_dead_endpoint_fails_quickly_with_a_retryable_error(s3_session: Any) -> None:
    port = free_port()  # nothing listens there
    backend = S3Backend(
        "bucket",
        "p",
        endpoint_url=f"http://127.0.0.1:{port}",
        session=s3_session,
        **{**S3_TEST_OPTIONS, "max_attempts": 2, "connect_timeout": 1.0},
    )
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        backend.get("refs/db/HEAD")
    assert time.monotonic() - started < 10
    assert caught.value.retryable is True
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "\n" not in str(caught.value)
    _secrets_absent(str(caught.value))
    backend.close()


@pytest.fixture(scope="module")
def s3_auth_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second moto server that checks credentials (moto's INITIAL_NO_AUTH_ACTION_COUNT=0)."""
    server = moto_server(
        tmp_path_factory.mktemp("moto-auth"), env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}
    )
    try:
        endpoint = server.__enter__()
    except EmulatorUnavailable as exc:
        unavailable(str(exc))
    try:
        yield endpoint
    finally:
        server.__exit__(None, None, None)


def test_unknown_credentials_are_a_permanent_access_error(
    s3_auth_endpoint: str, s3_session: Any
) -> None:
    backend = S3Backend(
        "bucket", "p", endpoint_url=s3_auth_endpoint, session=s3_session, **S3_TEST_OPTIONS
    )
    for action in (lambda: backend.put("state/x", b"x"), lambda: backend.exists("state/x")):
        with pytest.raises(BackendError) as caught:
            action()
        assert caught.value.retryable is False
        assert str(caught.value).startswith("access denied for s3://bucket/p")
        assert "check AWS credentials" in str(caught.value)
        _secrets_absent(str(caught.value))
    backend.close()


def _client_error(code: str, status: int, retries: int = 0) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": retries},
        },
        "PutObject",
    )


@pytest.mark.parametrize(
    ("code", "status", "kind", "retryable"),
    [
        ("NoSuchKey", 404, ObjectNotFound, False),
        ("PreconditionFailed", 412, PreconditionFailed, False),
        ("SlowDown", 503, BackendError, True),
        ("InternalError", 500, BackendError, True),
        ("RequestTimeout", 400, BackendError, True),
        ("AccessDenied", 403, BackendError, False),
        ("SignatureDoesNotMatch", 403, BackendError, False),
        ("NoSuchBucket", 404, BackendError, False),
        ("InvalidArgument", 400, BackendError, False),
    ],
)
def test_client_errors_are_translated(
    code: str, status: int, kind: type, retryable: bool, s3_session: Any
) -> None:
    backend = S3Backend("bucket", session=s3_session, region="us-east-1")
    error = backend._client_error(_client_error(code, status), "state/x")
    assert type(error) is kind
    assert getattr(error, "retryable", False) is retryable
    assert "\n" not in str(error)
    backend.close()


def test_a_retried_create_that_finds_its_own_bytes_reports_success(
    s3_backend: S3Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost response: the first attempt wrote, the SDK's retry then met If-None-Match."""
    real_put = s3_backend._client.put_object

    def put_then_lose_the_response(**kwargs: Any) -> Any:
        real_put(**kwargs)
        raise _client_error("PreconditionFailed", 412, retries=1)

    monkeypatch.setattr(s3_backend._client, "put_object", put_then_lose_the_response)
    assert s3_backend.put_if_absent("refs/db/HEAD", b"mine") is True
    # Without a retry, the same failure is a plain loss, even for identical bytes.
    monkeypatch.setattr(
        s3_backend._client,
        "put_object",
        lambda **kw: (_ for _ in ()).throw(_client_error("PreconditionFailed", 412)),
    )
    assert s3_backend.put_if_absent("refs/db/HEAD", b"mine") is False


def test_a_closed_backend_refuses_work(s3_backend: S3Backend) -> None:
    s3_backend.close()
    s3_backend.close()
    with pytest.raises(BackendError, match="is closed"):
        s3_backend.get("store.json")


def test_sweep_incomplete_aborts_abandoned_multipart_uploads_of_this_store_only(
    s3_backend: S3Backend, s3_admin_client: Any
) -> None:
    ours = s3_admin_client.create_multipart_upload(Bucket=s3_backend.bucket, Key="store/chunks/killed")
    foreign = s3_admin_client.create_multipart_upload(Bucket=s3_backend.bucket, Key="other-store/chunks/x")

    # moto reports every upload as initiated in 2010, so the age cut-off itself is
    # exercised by the filesystem test; here: only this store's uploads are aborted.
    assert s3_backend.sweep_incomplete(older_than_seconds=3600) == 1
    assert s3_backend.sweep_incomplete(older_than_seconds=3600) == 0

    left = s3_admin_client.list_multipart_uploads(Bucket=s3_backend.bucket).get("Uploads", [])
    assert [u["UploadId"] for u in left] == [foreign["UploadId"]]
    assert ours["UploadId"] not in {u["UploadId"] for u in left}
    s3_admin_client.abort_multipart_upload(Bucket=s3_backend.bucket, Key="other-store/chunks/x", UploadId=foreign["UploadId"])
