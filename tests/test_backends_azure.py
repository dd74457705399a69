"""The Azure backend against a real Azurite on 127.0.0.1: the conformance suite plus Azure specifics.

Azurite checks Shared Key signatures, so a wrong account key really is
refused here. To run another suite on Azure, reuse the ``azure_backend`` fixture.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from talaria_storage.testing.emulators import require_sdk

require_sdk("azure.storage.blob", "azure")

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ServiceRequestError
from azure.storage.blob import BlobServiceClient
from talaria_storage.backends import azure as azure_module
from talaria_storage.backends.azure import AzureBackend

from talaria_storage.core.errors import (
    BackendError,
    ConfigError,
    ObjectNotFound,
    PreconditionFailed,
)
from talaria_storage.storage.registry import open_backend
from talaria_storage.testing.backend_suite import BackendConformance
from talaria_storage.testing.emulators import (
    AZURE_TEST_OPTIONS,
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    azurite_connection_string_for,
    free_port,
    unique_bucket_name,
)

pytestmark = pytest.mark.emulator

MIB = 1024 * 1024
BIG = 9 * MIB + 5  # three 4 MiB blocks with the test options
WRONG_KEY = base64.b64encode(b"definitely-not-the-account-key-0123456789").decode()


class TestAzureBackend(BackendConformance):
    """The shared Backend contract on Azurite (pages of 100, blocks above 4 MiB)."""

    listing_count = 250

    @pytest.fixture
    def backend(self, azure_backend: AzureBackend) -> Iterator[AzureBackend]:
        yield azure_backend


def _endpoint(connection_string: str) -> str:
    blob_endpoint = dict(part.split("=", 1) for part in connection_string.strip(";").split(";"))[
        "BlobEndpoint"
    ]
    return blob_endpoint.rsplit("/", 1)[0]


def _committed_blocks(connection_string: str, container: str, name: str) -> int:
    service = BlobServiceClient.from_connection_string(connection_string)
    try:
        committed, _ = service.get_blob_client(container, name).get_block_list("committed")
        return len(committed)
    finally:
        service.close()


# -- large objects ------------------------------------------------------------------------------


def test_a_large_put_is_staged_in_blocks_and_ranges_cross_them(
    azure_backend: AzureBackend, azurite_connection_string: str
) -> None:
    data = os.urandom(BIG)
    azure_backend.put("chunks/" + "aa" * 32, data)
    assert (
        _committed_blocks(
            azurite_connection_string, azure_backend.container_name, "store/chunks/" + "aa" * 32
        )
        == 3
    )
    assert azure_backend.get("chunks/" + "aa" * 32) == data
    assert (
        azure_backend.get_range("chunks/" + "aa" * 32, 4 * MIB - 2, 4 * MIB + 2)
        == data[4 * MIB - 2 : 4 * MIB + 2]
    )
    assert azure_backend.get_range("chunks/" + "aa" * 32, BIG - 1, BIG + 9) == data[-1:]
    assert azure_backend.get_range("chunks/" + "aa" * 32, BIG + 1, BIG + 9) == b""


def test_a_large_conditional_write_commits_its_block_list_conditionally(
    azure_backend: AzureBackend, azurite_connection_string: str
) -> None:
    key = "manifests/" + "bb" * 32
    first, second = os.urandom(BIG), os.urandom(BIG)
    version = azure_backend.put_if_version(key, first, None)
    assert (
        _committed_blocks(azurite_connection_string, azure_backend.container_name, "store/" + key)
        == 3
    )
    with pytest.raises(PreconditionFailed):
        azure_backend.put_if_version(key, second, None)
    new_version = azure_backend.put_if_version(key, second, version)
    with pytest.raises(PreconditionFailed):
        azure_backend.put_if_version(key, first, version)
    current = azure_backend.read_versioned(key)
    assert current is not None and current.data == second and current.version == new_version


def test_a_swap_of_a_deleted_blob_fails(azure_backend: AzureBackend) -> None:
    version = azure_backend.put_if_version("refs/db/HEAD", b"v1", None)
    azure_backend.delete("refs/db/HEAD")
    with pytest.raises(PreconditionFailed):
        azure_backend.put_if_version("refs/db/HEAD", b"v2", version)


def test_delete_many_sends_batches(
    azure_backend: AzureBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_module, "_BATCH", 7)
    keys = [f"state/op-{i}" for i in range(20)]
    for key in keys:
        azure_backend.put(key, b"x")
    azure_backend.delete_many([*keys, "state/never"])
    assert list(azure_backend.list("state/")) == []


def test_an_older_api_version_can_be_pinned(
    azurite_connection_string: str, azure_container: str
) -> None:
    backend = AzureBackend(
        azure_container,
        connection_string=azurite_connection_string,
        api_version="2025-11-05",
        **AZURE_TEST_OPTIONS,
    )
    backend.put("store.json", b"{}")
    assert backend.get("store.json") == b"{}"
    backend.close()


def test_the_connection_string_comes_from_the_environment(
    azurite_connection_string: str, azure_container: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite_connection_string)
    backend = open_backend(f"az://{azure_container}/via-env", dict(AZURE_TEST_OPTIONS))
    try:
        assert isinstance(backend, AzureBackend)
        backend.put("refs/db/HEAD", b"x")
        assert [i.key for i in backend.list("refs/")] == ["refs/db/HEAD"]
        assert AZURITE_KEY not in repr(backend)
        assert repr(backend) == f"AzureBackend('az://{azure_container}/via-env')"
    finally:
        backend.close()


def test_account_url_and_key_work_without_a_connection_string(
    azurite_connection_string: str, azure_container: str
) -> None:
    url = f"{_endpoint(azurite_connection_string)}/{AZURITE_ACCOUNT}"
    backend = AzureBackend(
        azure_container,
        account_url=url,
        account_name=AZURITE_ACCOUNT,
        account_key=AZURITE_KEY,
        **AZURE_TEST_OPTIONS,
    )
    backend.put("store.json", b"{}")
    assert backend.exists("store.json")
    assert AZURITE_KEY not in repr(backend)
    backend.close()


# -- errors -------------------------------------------------------------------------------------


def test_a_missing_container_is_a_permanent_error_naming_the_fix(
    azurite_connection_string: str,
) -> None:
    name = unique_bucket_name()
    backend = AzureBackend(
        name, "p", connection_string=azurite_connection_string, **AZURE_TEST_OPTIONS
    )
    for action in (
        lambda: backend.put("state/x", b"x"),
        lambda: backend.get("state/x"),
        lambda: backend.exists("state/x"),
        lambda: list(backend.list("")),
        lambda: backend.put_if_version("refs/db/HEAD", b"x", None),
        lambda: backend.delete("state/x"),
    ):
        with pytest.raises(BackendError) as caught:
            action()
        assert not isinstance(caught.value, ObjectNotFound)
        assert caught.value.retryable is False
        assert str(caught.value).startswith(f"container '{name}' does not exist")
        assert "create it or fix [storage] container" in str(caught.value)
        assert AZURITE_KEY not in str(caught.value)
    backend.close()


def test_a_wrong_account_key_is_a_permanent_access_error(
    azurite_connection_string: str, azure_container: str
) -> None:
    wrong = azurite_connection_string_for(_endpoint(azurite_connection_string), key=WRONG_KEY)
    backend = AzureBackend(azure_container, "p", connection_string=wrong, **AZURE_TEST_OPTIONS)
    with pytest.raises(BackendError) as caught:
        backend.put("state/x", b"x")
    assert caught.value.retryable is False
    assert str(caught.value).startswith(f"access denied for az://{azure_container}/p/state/x")
    assert WRONG_KEY not in str(caught.value) and WRONG_KEY not in repr(backend)
    backend.close()


def test_a_dead_endpoint_fails_quickly_with_a_retryable_error() -> None:
    port = free_port()
    dead = azurite_connection_string_for(f"http://127.0.0.1:{port}")
    backend = AzureBackend("container", "p", connection_string=dead, **AZURE_TEST_OPTIONS)
    started = time.monotonic()
    with pytest.raises(BackendError) as caught:
        backend.get("refs/db/HEAD")
    assert time.monotonic() - started < 10
    assert caught.value.retryable is True
    message = str(caught.value)
    assert f"127.0.0.1:{port}" in message and AZURITE_KEY not in message and "\n" not in message
    backend.close()


def test_a_malformed_connection_string_is_a_config_error_that_does_not_echo_it() -> None:
    secret = "AccountKey=c2VjcmV0c2VjcmV0;Nonsense"
    with pytest.raises(ConfigError) as caught:
        AzureBackend("container", connection_string=secret)
    assert "c2VjcmV0c2VjcmV0" not in str(caught.value)


def test_no_credentials_at_all_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(ConfigError, match="AZURE_STORAGE_CONNECTION_STRING"):
        AzureBackend("container")


def _http_error(status: int, code: str) -> HttpResponseError:
    error = HttpResponseError(message=f"{status} {code}")
    error.status_code = status
    error.error_code = code  # type: ignore[attr-defined]  # the storage SDK adds it the same way
    return error


@pytest.mark.parametrize(
    ("error", "kind", "retryable"),
    [
        (_http_error(404, "BlobNotFound"), ObjectNotFound, False),
        (_http_error(412, "ConditionNotMet"), PreconditionFailed, False),
        (_http_error(503, "ServerBusy"), BackendError, True),
        (_http_error(500, "OperationTimedOut"), BackendError, True),
        (_http_error(429, "TooManyRequests"), BackendError, True),
        (_http_error(403, "AuthorizationFailure"), BackendError, False),
        (_http_error(400, "InvalidHeaderValue"), BackendError, False),
        (ServiceRequestError("connection refused"), BackendError, True),
    ],
)
def test_sdk_errors_are_translated(
    error: Exception, kind: type, retryable: bool, azurite_connection_string: str
) -> None:
    backend = AzureBackend("container", connection_string=azurite_connection_string)
    translated = backend._translate(error, "state/x")
    assert type(translated) is kind
    assert getattr(translated, "retryable", False) is retryable
    backend.close()


def test_a_retried_create_that_finds_its_own_bytes_reports_success(
    azure_backend: AzureBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lost response: the first attempt wrote, the SDK's retry then met BlobAlreadyExists."""
    blob_class = type(azure_backend._blob("refs/db/HEAD"))
    real_upload = blob_class.upload_blob

    def upload_then_lose_the_response(self: Any, data: bytes, **kwargs: Any) -> Any:
        hook = kwargs.pop("retry_hook")
        real_upload(self, data, **kwargs)
        hook(retry_count=0, location_mode="primary")  # what the retry policy calls before retrying
        error = ResourceExistsError(message="409 BlobAlreadyExists")
        error.error_code = "BlobAlreadyExists"  # type: ignore[attr-defined]  # as the storage SDK does
        raise error

    monkeypatch.setattr(blob_class, "upload_blob", upload_then_lose_the_response)
    assert azure_backend.put_if_absent("refs/db/HEAD", b"mine") is True
    monkeypatch.setattr(blob_class, "upload_blob", real_upload)
    assert azure_backend.put_if_absent("refs/db/HEAD", b"mine") is False  # a plain loss


def test_a_closed_backend_refuses_work(azure_backend: AzureBackend) -> None:
    azure_backend.close()
    azure_backend.close()
    with pytest.raises(BackendError, match="is closed"):
        azure_backend.get("store.json")
