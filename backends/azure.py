"""The Azure Blob Storage backend (``az://container[/prefix]``), on azure-storage-blob.

Blobs are named ``<prefix>/<key>`` in the container. How the contract is met:

* ``put`` is one Put Blob up to ``max_single_put_size_mb`` and staged blocks
  plus one Put Block List above it; a block blob becomes visible only when
  its block list is committed, so readers never see a torn object.
* Conditional writes use ETags: create-only is ``upload_blob(overwrite=False)``
  (Azure answers 409 BlobAlreadyExists, translated to
  :class:`PreconditionFailed`); compare-and-swap passes the expected ETag with
  ``MatchConditions.IfNotModified`` (412 ConditionNotMet). The version token
  is the ETag. (``etag="*"`` is never combined with ``IfMissing``: the SDK
  rejects that pair with a TypeError.)
* Retries are the SDK's ``ExponentialRetry`` policy (throttling, 5xx,
  timeouts, connection errors; backoff ``initial + base**n`` with jitter),
  bounded by ``retry_total`` and the connect/read timeouts.
* Credentials, first match wins: the ``connection_string`` option; an
  ``account_url`` (or ``account_name``) with ``account_key`` or
  ``sas_token``; an ``account_url`` with azure-identity's
  DefaultAzureCredential when that package is installed, or ``anonymous``
  for public containers; else the ``AZURE_STORAGE_CONNECTION_STRING``
  environment variable. Secrets stay inside the SDK client: no repr, log
  line or error message of this backend shows them.

Errors are translated at this edge (Azure's ``x-ms-error-code`` tells a
missing blob from a missing container, even on HEAD requests).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from talaria_storage.core.errors import (
    BackendError,
    ConfigError,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
)
from talaria_storage.core.keys import validate_prefix
from talaria_storage.storage.backend import Backend, ObjectInfo, Versioned

from ._common import (
    MIB,
    KeyPrefix,
    check_options,
    delete_unchanged_in_parallel,
    first_line,
    parallel_map,
    public_url,
    reconcile_lost_race,
    redact,
    resolve_container,
    stat_in_parallel,
)

if TYPE_CHECKING:
    from talaria_storage.storage.registry import Location

CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
_RETRYABLE_CODES = {"ServerBusy", "OperationTimedOut", "InternalError", "ServiceUnavailable"}
_ACCESS_CODES = {
    "AuthenticationFailed", "AuthorizationFailure", "AuthorizationPermissionMismatch",
    "InsufficientAccountPermissions", "AccountIsDisabled", "NoAuthenticationInformation",
    "InvalidAuthenticationInfo", "AuthorizationSourceIPMismatch", "AuthorizationProtocolMismatch",
}  # fmt: skip
_BATCH = 256  # Blob Batch takes at most 256 sub-requests


def _error_code(exc: BaseException) -> str:
    return str(getattr(exc, "error_code", "") or "")


def _status(exc: BaseException) -> int:
    return int(getattr(exc, "status_code", 0) or 0)


class _RetryCounter:
    """Counts the retries the SDK made during one call (the per-call ``retry_hook``)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, **_: Any) -> None:
        with self._lock:
            self.count += 1


def _transport(pool_size: int, connect_timeout: float, read_timeout: float) -> RequestsTransport:
    """The SDK's requests transport with a connection pool sized for our threads.

    The default pool keeps 10 connections; more concurrent requests than that
    work but log "Connection pool is full" warnings and reconnect. Retries
    stay with the SDK's retry policy, so the adapter itself never retries.
    """
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=4,
        pool_maxsize=pool_size,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    for scheme in ("http://", "https://"):
        session.mount(scheme, adapter)
    return RequestsTransport(
        session=session,
        session_owner=True,
        connection_timeout=connect_timeout,
        read_timeout=read_timeout,
    )


class _BatchItemError(HttpResponseError):
    """One failed sub-request of a Blob Batch, shaped like the SDK's own errors for translation."""

    def __init__(self, status: int, code: str) -> None:
        super().__init__(message=f"{status} {code}")
        self.status_code = status
        self.error_code = code


class AzureBackend(Backend):
    """Blobs in an Azure container under a prefix; see the module docstring for the guarantees."""

    #: Every ``storage.toml`` option this backend accepts, with its type (checked by the config layer).
    OPTIONS: ClassVar[dict[str, type]] = {
        "container": str,  # when the location URL does not name it
        "prefix": str,  # likewise
        "account_url": str,  # https://<account>.blob.core.windows.net (or an emulator)
        "account_name": str,  # gives the public account_url when account_url is absent
        "account_key": str,  # secret: prefer the environment or a connection string
        "sas_token": str,  # secret
        "connection_string": str,  # secret; default: AZURE_STORAGE_CONNECTION_STRING
        "anonymous": bool,  # public-read containers, no credential
        "api_version": str,  # e.g. 2025-11-05 for emulators that lag the SDK
        "max_single_put_size_mb": int,  # larger blobs are uploaded in blocks
        "max_block_size_mb": int,  # block size of those uploads
        "max_concurrency": int,  # threads per block transfer and per batch call
        "max_pool_connections": int,  # HTTP connections kept open (threads beyond it reconnect)
        "retry_total": int,  # retries per request (not counting the first attempt)
        "retry_initial_backoff": float,  # seconds
        "retry_increment_base": float,  # backoff = initial + base ** retry
        "connect_timeout": float,  # seconds
        "read_timeout": float,  # seconds
        "list_page_size": int,  # blobs per list page (1-5000)
    }

    def __init__(
        self,
        container: str,
        prefix: str = "",
        *,
        account_url: str | None = None,
        account_name: str | None = None,
        account_key: str | None = None,
        sas_token: str | None = None,
        connection_string: str | None = None,
        anonymous: bool = False,
        api_version: str | None = None,
        max_single_put_size_mb: int = 64,
        max_block_size_mb: int = 8,
        max_concurrency: int = 8,
        max_pool_connections: int = 32,
        retry_total: int = 4,
        retry_initial_backoff: float = 1.0,
        retry_increment_base: float = 2.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        list_page_size: int = 5000,
    ) -> None:
        """Open ``az://container/prefix``. No request is sent until the first operation."""
        if not container:
            raise ConfigError("az:// stores need a container: az://<container>/<prefix>")
        if max_single_put_size_mb < 1 or max_block_size_mb < 1:
            raise ConfigError(
                "options max_single_put_size_mb and max_block_size_mb for az:// stores must be at least 1"
            )
        if not 1 <= list_page_size <= 5000:
            raise ConfigError("option list_page_size for az:// stores must be between 1 and 5000")
        self.container_name = container
        self._keys = KeyPrefix(prefix)
        self.prefix = self._keys.prefix
        self.location = f"az://{container}/{self.prefix}" if self.prefix else f"az://{container}"
        self._concurrency = max(1, max_concurrency)
        self._page_size = list_page_size
        self._container_checked = False
        self._closed = False

        kwargs: dict[str, Any] = {
            # The SDK annotates these as int but computes with any number.
            "retry_policy": ExponentialRetry(
                initial_backoff=retry_initial_backoff,  # type: ignore[arg-type]
                increment_base=retry_increment_base,  # type: ignore[arg-type]
                retry_total=retry_total,
                random_jitter_range=min(3.0, retry_initial_backoff),  # type: ignore[arg-type]
            ),
            "max_single_put_size": max_single_put_size_mb * MIB,
            "max_block_size": max_block_size_mb * MIB,
            "connection_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "transport": _transport(
                max(max_pool_connections, self._concurrency), connect_timeout, read_timeout
            ),
        }
        if api_version:
            kwargs["api_version"] = api_version
        self._service = self._make_service(
            kwargs, account_url, account_name, account_key, sas_token, connection_string, anonymous
        )
        self._endpoint = public_url(self._service.url).rstrip("/")
        self._container: ContainerClient = self._service.get_container_client(container)

    def _make_service(
        self,
        kwargs: dict[str, Any],
        account_url: str | None,
        account_name: str | None,
        account_key: str | None,
        sas_token: str | None,
        connection_string: str | None,
        anonymous: bool,
    ) -> BlobServiceClient:
        """Build the service client from the first credential source that is configured."""
        source = "option connection_string"
        if not connection_string and not account_url and not account_name:
            connection_string = os.environ.get(CONNECTION_STRING_ENV) or None
            source = CONNECTION_STRING_ENV
        try:
            if connection_string:
                try:
                    return BlobServiceClient.from_connection_string(connection_string, **kwargs)
                except ValueError:
                    # Never echo the string: it holds the account key.
                    raise ConfigError(
                        f"the Azure connection string from {source} is malformed for {self.location}: "
                        "copy it again from the portal (Access keys)"
                    ) from None
            if not account_url and account_name:
                account_url = f"https://{account_name}.blob.core.windows.net"
            if not account_url:
                raise ConfigError(
                    f"no Azure account for {self.location}: set {CONNECTION_STRING_ENV}, "
                    "or [storage] account_url (or account_name) with credentials"
                )
            if urlsplit(account_url).scheme not in ("http", "https"):
                raise ConfigError(
                    f"option account_url for az:// stores must be an http(s) URL, got '{public_url(account_url)}'"
                )
            credential: Any
            if account_key:
                name = account_name or (urlsplit(account_url).hostname or "").split(".")[0]
                credential = {"account_name": name, "account_key": account_key}
            elif sas_token:
                credential = sas_token
            elif anonymous:
                credential = None
            else:
                credential = self._default_credential()
            return BlobServiceClient(account_url, credential=credential, **kwargs)
        except (ValueError, AzureError) as exc:
            raise ConfigError(
                f"cannot create an Azure client for {self.location}: "
                f"{redact(first_line(str(exc)), connection_string, account_key, sas_token)}"
            ) from None

    def _default_credential(self) -> Any:
        try:
            from azure.identity import DefaultAzureCredential
        except ImportError:
            raise ConfigError(
                f"no Azure credential for {self.location}: set account_key or sas_token, "
                f"or {CONNECTION_STRING_ENV}, or install azure-identity for Entra ID sign-in "
                "(or anonymous = true for a public container)"
            ) from None
        return DefaultAzureCredential()

    @classmethod
    def from_location(cls, location: Location, options: Mapping[str, Any]) -> AzureBackend:
        """Open ``az://container/prefix`` with ``storage.toml`` options (see :attr:`OPTIONS`)."""
        opts = check_options("az", cls.OPTIONS, options)
        container, prefix = resolve_container(location, opts, "container", "container")
        return cls(container, prefix, **opts)

    @property
    def supports_native_ranges(self) -> bool:
        return True

    # -- error translation ----------------------------------------------------------------------

    def _url(self, key: str | None) -> str:
        return f"{self.location}/{key}" if key else self.location

    def _missing_container(self) -> BackendError:
        return BackendError(
            f"container '{self.container_name}' does not exist at {self._endpoint}: "
            "create it or fix [storage] container",
            retryable=False,
        )

    def _translate(self, exc: BaseException, key: str | None) -> StorageError:
        code, status = _error_code(exc), _status(exc)
        if code == "ContainerNotFound":
            return self._missing_container()
        if (
            isinstance(exc, ResourceModifiedError)
            or status == 412
            or code in ("ConditionNotMet", "BlobAlreadyExists")
        ):
            return PreconditionFailed(key or self.location)
        if isinstance(exc, ResourceNotFoundError) or status == 404:
            if key is not None:
                return ObjectNotFound(key, self.location)
            return self._missing_container()
        if (
            isinstance(exc, ClientAuthenticationError)
            or status in (401, 403)
            or code in _ACCESS_CODES
        ):
            return BackendError(
                f"access denied for {self._url(key)} ({code or status}): check the Azure account key, "
                "SAS token or connection string, and the container's role assignments",
                retryable=False,
                key=key,
            )
        if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
            return BackendError(
                f"cannot reach {self._endpoint} for {self._url(key)} ({type(exc).__name__}): "
                "check account_url and the network, or retry later",
                retryable=True,
                key=key,
            )
        if isinstance(exc, HttpResponseError):
            retryable = code in _RETRYABLE_CODES or status >= 500 or status in (408, 429)
            hint = "retry later" if retryable else "check the request and the container's settings"
            return BackendError(
                f"Azure request for {self._url(key)} failed ({code or status}): {hint}",
                retryable=retryable,
                key=key,
            )
        return BackendError(
            f"Azure client error for {self._url(key)}: {redact(first_line(str(exc)))}",
            retryable=False,
            key=key,
        )

    @contextmanager
    def _errors(self, key: str | None) -> Iterator[None]:
        """Translate every SDK exception raised in the block; ``key`` names the object at fault."""
        if self._closed:
            raise BackendError(f"{self.location} is closed: open the store again", retryable=False)
        try:
            yield
        except AzureError as exc:
            raise self._translate(exc, key) from exc

    def _blob(self, key: str) -> Any:
        return self._container.get_blob_client(self._keys.name(key))

    # -- primitives -----------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        blob = self._blob(key)
        with self._errors(key):
            blob.upload_blob(
                bytes(data), length=len(data), overwrite=True, max_concurrency=self._concurrency
            )

    def get(self, key: str) -> bytes:
        blob = self._blob(key)
        with self._errors(key):
            return bytes(blob.download_blob(max_concurrency=self._concurrency).readall())

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"invalid range [{start}, {end}) for '{key}'")
        blob = self._blob(key)
        if start == end:
            if not self.exists(key):
                raise ObjectNotFound(key, self.location)
            return b""
        with self._errors(key):
            try:
                stream = blob.download_blob(
                    offset=start, length=end - start, max_concurrency=self._concurrency
                )
                return bytes(stream.readall())
            except HttpResponseError as exc:
                if _error_code(exc) == "InvalidRange" or _status(exc) == 416:
                    return b""  # the blob exists but ends before ``start``
                raise

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def stat(self, key: str) -> ObjectInfo:
        blob = self._blob(key)
        with self._errors(key):
            props = blob.get_blob_properties()
        return ObjectInfo(key, int(props.size), props.last_modified.timestamp())

    def touch(self, key: str) -> None:
        # Setting metadata renews Last-Modified (what list and stat report) without a rewrite of
        # the bytes; a missing blob answers BlobNotFound and is not re-created.
        blob = self._blob(key)
        with self._errors(key):
            blob.set_blob_metadata({"talariafreshened": f"{time.time():.0f}"})

    def delete(self, key: str) -> None:
        blob = self._blob(key)
        try:
            with self._errors(key):
                blob.delete_blob()
        except ObjectNotFound:
            return

    CONDITIONAL_DELETE: ClassVar[bool] = True

    def delete_unchanged(self, infos: Iterable[ObjectInfo]) -> list[ObjectInfo]:
        # On the ETag: a touch sets metadata, which makes a new one.
        return delete_unchanged_in_parallel(infos, self._etag, self._delete_at, self._concurrency)

    def _etag(self, key: str) -> tuple[float, str]:
        with self._errors(key):
            props = self._blob(key).get_blob_properties()
        return props.last_modified.timestamp(), props.etag

    def _delete_at(self, key: str, etag: str) -> None:
        with self._errors(key):
            self._blob(key).delete_blob(etag=etag, match_condition=MatchConditions.IfNotModified)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        with self._errors(None):
            for props in self._container.list_blobs(
                name_starts_with=self._keys.list_prefix(prefix), results_per_page=self._page_size
            ):
                key = self._keys.key(props.name)
                if key is not None and key.startswith(prefix):
                    yield ObjectInfo(key, int(props.size), props.last_modified.timestamp())

    def read_versioned(self, key: str) -> Versioned | None:
        blob = self._blob(key)
        try:
            with self._errors(key):
                # Later chunks of a large download are read with If-Match on the first
                # chunk's ETag (the SDK does this), so data and version always agree.
                stream = blob.download_blob(max_concurrency=self._concurrency)
                data = bytes(stream.readall())
        except ObjectNotFound:
            return None
        return Versioned(data, str(stream.properties.etag))

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        blob = self._blob(key)
        retries = _RetryCounter()
        condition: dict[str, Any] = (
            {"overwrite": False}
            if expected is None
            else {
                "overwrite": True,
                "etag": expected,
                "match_condition": MatchConditions.IfNotModified,
            }
        )
        try:
            with self._errors(key):
                try:
                    result = blob.upload_blob(
                        bytes(data),
                        length=len(data),
                        max_concurrency=self._concurrency,
                        retry_hook=retries,
                        **condition,
                    )
                except (ResourceExistsError, ResourceNotFoundError) as exc:
                    # 409 BlobAlreadyExists on create-only; 404 when a swapped blob was deleted.
                    if _error_code(exc) == "ContainerNotFound":
                        raise
                    raise PreconditionFailed(key) from exc
        except PreconditionFailed:
            if retries.count:
                mine = reconcile_lost_race(self, key, data)
                if mine is not None:
                    return mine.version
            raise PreconditionFailed(
                key, "it exists" if expected is None else "its version changed"
            ) from None
        return str(result["etag"])

    # -- batches --------------------------------------------------------------------------------

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        def fetch(key: str) -> tuple[str, bytes | None]:
            try:
                return key, self.get(key)
            except ObjectNotFound:
                return key, None

        return {
            k: v for k, v in parallel_map(fetch, list(keys), self._concurrency) if v is not None
        }

    def exists_many(self, keys: Iterable[str]) -> set[str]:
        todo = list(keys)
        flags = parallel_map(self.exists, todo, self._concurrency)
        return {k for k, present in zip(todo, flags) if present}

    def stat_many(self, keys: Iterable[str]) -> dict[str, ObjectInfo]:
        return stat_in_parallel(self, keys, self._concurrency)

    def delete_many(self, keys: Iterable[str]) -> None:
        names = [self._keys.name(k) for k in keys]
        for start in range(0, len(names), _BATCH):
            batch = names[start : start + _BATCH]
            with self._errors(None):
                responses = list(self._container.delete_blobs(*batch, raise_on_any_failure=False))
            for name, response in zip(batch, responses):
                status = int(response.status_code)
                if status in (200, 202, 204):
                    continue
                code = response.headers.get("x-ms-error-code", "")
                if status == 404 and code != "ContainerNotFound":
                    continue  # already gone
                raise self._translate(_BatchItemError(status, code), self._keys.key(name) or name)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing idle connections cannot fail meaningfully
            self._container.close()
            self._service.close()
