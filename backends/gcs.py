"""The Google Cloud Storage backend (``gs://bucket[/prefix]``), on google-cloud-storage.

Objects are named ``<prefix>/<key>`` in the bucket. How the contract is met:

* ``put`` is one multipart request up to 8 MiB (the SDK's fixed limit) and a
  resumable upload in ``chunk_size_mb`` pieces above it. GCS publishes an
  object only when its upload completes: readers never see a torn object.
* Conditional writes are generation preconditions on the upload:
  ``if_generation_match=0`` creates only, ``if_generation_match=<generation>``
  swaps; the version token is the object's generation. They are built on
  uploads only, the one place fake-gcs-server (the test emulator) honours
  preconditions too; deletes and copies are never conditional here.
* Retries are the SDK's own (``google.api_core.retry.Retry`` with the
  storage library's predicate: 429, 408, 5xx, connection and timeout errors),
  with exponential backoff and jitter, bounded by ``retry_timeout`` seconds.
  The SDK retries uploads only when a generation precondition makes them
  idempotent; an unconditional ``put`` is retried as well, because every
  write through a store is idempotent (content-addressed objects, or state
  that the same writer rewrites whole).
* Credentials: Application Default Credentials, or anonymous access
  (``anonymous = true``) for an emulator. ``TALARIA_GCS_PROJECT`` supplies
  the project when no ``project`` option is given.

Errors are translated at this edge: a missing object is
:class:`ObjectNotFound`, a lost precondition :class:`PreconditionFailed`,
throttling/5xx/timeouts/connection failures a retryable :class:`BackendError`,
and a missing bucket, denied access or missing credentials a permanent one
that names the fix.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import requests
import requests.adapters
from google.api_core import exceptions as gexc
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.retry import DEFAULT_RETRY

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

try:  # the storage library's own "is this transient?" predicate (429, 408, 5xx, connection errors)
    from google.cloud.storage.retry import _should_retry as _sdk_should_retry
except ImportError:  # pragma: no cover - older or newer library layouts
    _sdk_should_retry = DEFAULT_RETRY._predicate

_RETRYABLE_CODES = {408, 429, 500, 502, 503, 504}
_CONTENT_TYPE = "application/octet-stream"


class _RetryCounter:
    """Counts the retries the SDK made during one call (via ``Retry(on_error=...)``)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, exc: Exception) -> None:
        with self._lock:
            self.count += 1


class GCSBackend(Backend):
    """Objects in a GCS bucket under a prefix; see the module docstring for the guarantees."""

    #: Every ``storage.toml`` option this backend accepts, with its type (checked by the config layer).
    OPTIONS: ClassVar[dict[str, type]] = {
        "bucket": str,  # when the location URL does not name it
        "prefix": str,  # likewise
        "project": str,  # default: TALARIA_GCS_PROJECT, then the credentials' project
        "endpoint_url": str,  # api_endpoint, for emulators and private endpoints
        "anonymous": bool,  # no credentials at all (emulators, public buckets)
        "retry_timeout": float,  # seconds the SDK keeps retrying one call
        "retry_initial": float,  # first backoff delay, seconds
        "retry_maximum": float,  # largest backoff delay, seconds
        "retry_multiplier": float,  # backoff growth factor
        "connect_timeout": float,  # seconds
        "read_timeout": float,  # seconds
        "chunk_size_mb": int,  # resumable upload chunk size (objects above 8 MiB)
        "max_concurrency": int,  # threads for batch calls
        "max_pool_connections": int,  # HTTP connections kept open (threads beyond it reconnect)
        "list_page_size": int,  # objects per list page (1-1000)
    }

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        project: str | None = None,
        endpoint_url: str | None = None,
        anonymous: bool = False,
        retry_timeout: float = 30.0,
        retry_initial: float = 1.0,
        retry_maximum: float = 16.0,
        retry_multiplier: float = 2.0,
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        chunk_size_mb: int = 16,
        max_concurrency: int = 8,
        max_pool_connections: int = 32,
        list_page_size: int = 1000,
    ) -> None:
        """Open ``gs://bucket/prefix``. No request is sent until the first operation."""
        if not bucket:
            raise ConfigError("gs:// stores need a bucket: gs://<bucket>/<prefix>")
        if chunk_size_mb < 1:
            raise ConfigError("option chunk_size_mb for gs:// stores must be at least 1")
        if not 1 <= list_page_size <= 1000:
            raise ConfigError("option list_page_size for gs:// stores must be between 1 and 1000")
        if retry_multiplier < 1:
            raise ConfigError("option retry_multiplier for gs:// stores must be at least 1")
        if endpoint_url is not None and urlsplit(endpoint_url).scheme not in ("http", "https"):
            raise ConfigError(
                f"option endpoint_url for gs:// stores must be an http(s) URL, got '{public_url(endpoint_url)}'"
            )
        self.bucket_name = bucket
        self._keys = KeyPrefix(prefix)
        self.prefix = self._keys.prefix
        self.location = f"gs://{bucket}/{self.prefix}" if self.prefix else f"gs://{bucket}"
        self._endpoint = public_url(endpoint_url) if endpoint_url else "the GCS endpoint"
        self._chunk_size = chunk_size_mb * MIB
        self._concurrency = max(1, max_concurrency)
        self._page_size = list_page_size
        self._timeout = (connect_timeout, read_timeout)
        self._retry_settings = {
            "initial": retry_initial,
            "maximum": max(retry_maximum, retry_initial),
            "multiplier": retry_multiplier,
            "timeout": retry_timeout,
        }
        self._retry = self._make_retry()
        self._bucket_checked = False
        self._closed = False

        project = project or os.environ.get("TALARIA_GCS_PROJECT") or None
        kwargs: dict[str, Any] = {}
        if endpoint_url:
            kwargs["client_options"] = {"api_endpoint": endpoint_url}
        if anonymous:
            kwargs["credentials"] = AnonymousCredentials()
            kwargs["project"] = (
                project  # None: the SDK's "<none>" placeholder, fine for object calls
            )
        elif project:
            kwargs["project"] = project
        try:
            self._client = storage.Client(**kwargs)
        except auth_exc.DefaultCredentialsError:
            raise BackendError(
                f"no Google credentials found for {self.location}: run 'gcloud auth "
                "application-default login' or set GOOGLE_APPLICATION_CREDENTIALS "
                "(or anonymous = true for an emulator)",
                retryable=False,
            ) from None
        except (auth_exc.GoogleAuthError, ValueError, OSError) as exc:
            raise BackendError(
                f"cannot create a GCS client for {self.location}: {redact(first_line(str(exc)))}",
                retryable=False,
            ) from None
        self._size_connection_pool(max(max_pool_connections, self._concurrency))
        self._bucket = self._client.bucket(bucket)

    def _size_connection_pool(self, size: int) -> None:
        """Give the client's HTTP session a pool as large as our thread count.

        requests keeps 10 connections per host by default; more concurrent
        requests work but log "Connection pool is full" warnings and
        reconnect. The session is the client's own (``Client._http``, an
        AuthorizedSession); the SDK's retry policy still does all retrying.
        """
        session = getattr(self._client, "_http", None)
        if isinstance(session, requests.Session):
            adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=size)
            session.mount("https://", adapter)
            session.mount("http://", adapter)

    @classmethod
    def from_location(cls, location: Location, options: Mapping[str, Any]) -> GCSBackend:
        """Open ``gs://bucket/prefix`` with ``storage.toml`` options (see :attr:`OPTIONS`)."""
        opts = check_options("gs", cls.OPTIONS, options)
        bucket, prefix = resolve_container(location, opts, "bucket", "bucket")
        return cls(bucket, prefix, **opts)

    @property
    def supports_native_ranges(self) -> bool:
        return True

    def _make_retry(self, on_error: Callable[[Exception], None] | None = None) -> Retry:
        return Retry(predicate=_sdk_should_retry, on_error=on_error, **self._retry_settings)

    # -- error translation ----------------------------------------------------------------------

    def _url(self, key: str | None) -> str:
        return f"{self.location}/{key}" if key else self.location

    def _missing_bucket(self) -> BackendError:
        where = "" if self._endpoint.startswith("the GCS") else f" at {self._endpoint}"
        return BackendError(
            f"bucket '{self.bucket_name}' does not exist{where}: create it or fix [storage] bucket",
            retryable=False,
        )

    def _translate(self, exc: BaseException, key: str | None, *, object_call: bool) -> StorageError:
        """One SDK exception as a talaria error. ``object_call``: a 404 may mean a missing object."""
        if isinstance(exc, gexc.RetryError):
            cause = exc.cause
            inner = (
                self._translate(cause, key, object_call=object_call) if cause is not None else None
            )
            detail = f" ({inner})" if inner is not None else ""
            return BackendError(
                f"gave up on {self._url(key)} after retrying for "
                f"{self._retry_settings['timeout']:.0f} s{detail}",
                retryable=True,
                key=key,
            )
        if isinstance(exc, InvalidResponse):
            status = int(getattr(exc.response, "status_code", 0) or 0)
            exc = gexc.from_http_status(status, "invalid response")
        if isinstance(exc, gexc.PreconditionFailed):
            return PreconditionFailed(key or self.location)
        if isinstance(exc, gexc.NotFound):
            if object_call and key is not None:
                self._check_bucket()
                return ObjectNotFound(key, self.location)
            return self._missing_bucket()
        if isinstance(exc, (gexc.Forbidden, gexc.Unauthorized, auth_exc.RefreshError)):
            return BackendError(
                f"access denied for {self._url(key)}: check Google credentials "
                "(GOOGLE_APPLICATION_CREDENTIALS or gcloud auth) and the bucket's IAM roles",
                retryable=False,
                key=key,
            )
        if isinstance(exc, auth_exc.DefaultCredentialsError):
            return BackendError(
                f"no Google credentials found for {self.location}: run 'gcloud auth "
                "application-default login' or set GOOGLE_APPLICATION_CREDENTIALS",
                retryable=False,
                key=key,
            )
        if isinstance(exc, gexc.GoogleAPICallError):
            code = int(exc.code or 0)
            retryable = code in _RETRYABLE_CODES or code >= 500
            hint = "retry later" if retryable else "check the request and the bucket's settings"
            detail = redact(first_line(getattr(exc, "message", "") or type(exc).__name__))
            return BackendError(
                f"GCS request for {self._url(key)} failed ({code}: {detail}): {hint}",
                retryable=retryable,
                key=key,
            )
        if isinstance(exc, DataCorruption):
            return BackendError(
                f"checksum mismatch while transferring {self._url(key)}: retry later",
                retryable=True,
                key=key,
            )
        if isinstance(
            exc,
            (
                requests.ConnectionError,
                requests.Timeout,
                ConnectionError,
                TimeoutError,
                auth_exc.TransportError,
            ),
        ) or _sdk_should_retry(exc):
            return BackendError(
                f"cannot reach {self._endpoint} for {self._url(key)} ({type(exc).__name__}): "
                "check endpoint_url and the network, or retry later",
                retryable=True,
                key=key,
            )
        return BackendError(
            f"GCS client error for {self._url(key)}: {redact(first_line(str(exc)))}",
            retryable=False,
            key=key,
        )

    _SDK_ERRORS = (
        gexc.GoogleAPIError,
        auth_exc.GoogleAuthError,
        InvalidResponse,
        DataCorruption,
        requests.RequestException,
        ConnectionError,
        TimeoutError,
    )

    @contextmanager
    def _errors(self, key: str | None, *, object_call: bool = True) -> Iterator[None]:
        """Translate every SDK exception raised in the block; ``key`` names the object at fault."""
        if self._closed:
            raise BackendError(f"{self.location} is closed: open the store again", retryable=False)
        try:
            yield
        except self._SDK_ERRORS as exc:
            raise self._translate(exc, key, object_call=object_call) from exc

    def _check_bucket(self) -> None:
        """Raise the missing-bucket error if the bucket is absent (checked once, after a 404)."""
        if self._bucket_checked:
            return
        try:
            self._bucket.reload(timeout=self._timeout, retry=self._retry)
        except gexc.NotFound:
            raise self._missing_bucket() from None
        except (gexc.Forbidden, gexc.Unauthorized):
            # Object-only roles (no storage.buckets.get) cannot see the bucket itself:
            # it exists as far as we can tell, and the object's 404 stands.
            self._bucket_checked = True
            return
        except self._SDK_ERRORS as exc:
            raise self._translate(exc, None, object_call=False) from exc
        self._bucket_checked = True

    def _blob(self, key: str, *, large: bool = False) -> storage.Blob:
        return self._bucket.blob(
            self._keys.name(key), chunk_size=self._chunk_size if large else None
        )

    # -- primitives -----------------------------------------------------------------------------

    def _upload(self, key: str, data: bytes, generation: int | None, retry: Retry) -> storage.Blob:
        blob = self._blob(key, large=len(data) > 8 * MIB)
        blob.upload_from_file(
            io.BytesIO(data),
            size=len(data),
            content_type=_CONTENT_TYPE,
            if_generation_match=generation,
            timeout=self._timeout,
            retry=retry,
        )
        return blob

    def put(self, key: str, data: bytes) -> None:
        self._keys.name(key)
        with self._errors(key, object_call=False):
            self._upload(key, data, None, self._retry)

    def get(self, key: str) -> bytes:
        blob = self._blob(key)
        with self._errors(key):
            return bytes(blob.download_as_bytes(timeout=self._timeout, retry=self._retry))

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
                return bytes(
                    blob.download_as_bytes(
                        start=start, end=end - 1, timeout=self._timeout, retry=self._retry
                    )
                )
            except gexc.RequestRangeNotSatisfiable:
                return b""  # the object exists but ends before ``start``

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def stat(self, key: str) -> ObjectInfo:
        blob = self._blob(key)
        with self._errors(key):
            blob.reload(timeout=self._timeout, retry=self._retry)
        modified = blob.updated.timestamp() if blob.updated is not None else 0.0
        return ObjectInfo(key, int(blob.size or 0), modified)

    def touch(self, key: str) -> None:
        # A rewrite of the object onto itself, server-side: the bytes never leave the service
        # and ``updated`` (what list and stat report) is renewed. A metadata patch would be
        # lighter, but fake-gcs-server, which the suite runs against, does not renew ``updated``
        # on one, and a test that cannot see the effect proves nothing. The SDK's rewrite loop
        # follows the service's continuation tokens for objects it copies in several calls. A
        # missing object answers 404 and is not re-created.
        blob = self._blob(key)
        with self._errors(key):
            token, _, _ = blob.rewrite(blob, timeout=self._timeout, retry=self._retry)
            while token is not None:
                token, _, _ = blob.rewrite(blob, token=token, timeout=self._timeout, retry=self._retry)

    def delete(self, key: str) -> None:
        blob = self._blob(key)
        try:
            with self._errors(key):
                blob.delete(timeout=self._timeout, retry=self._retry)
        except ObjectNotFound:
            return

    CONDITIONAL_DELETE: ClassVar[bool] = True

    def delete_unchanged(self, infos: Iterable[ObjectInfo]) -> list[ObjectInfo]:
        # On the generation: a touch is a rewrite, so it makes a new one.
        return delete_unchanged_in_parallel(infos, self._generation, self._delete_at, self._concurrency)

    def _generation(self, key: str) -> tuple[float, int]:
        blob = self._blob(key)
        with self._errors(key):
            blob.reload(timeout=self._timeout, retry=self._retry)
        return (blob.updated.timestamp() if blob.updated is not None else 0.0), blob.generation

    def _delete_at(self, key: str, generation: int) -> None:
        with self._errors(key):
            self._blob(key).delete(if_generation_match=generation, timeout=self._timeout, retry=self._retry)

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        with self._errors(None, object_call=False):
            blobs = self._client.list_blobs(
                self._bucket,
                prefix=self._keys.list_prefix(prefix),
                page_size=self._page_size,
                fields="items(name,size,updated),nextPageToken",
                timeout=self._timeout,
                retry=self._retry,
            )
            for blob in blobs:
                key = self._keys.key(blob.name)
                if key is not None and key.startswith(prefix):
                    modified = blob.updated.timestamp() if blob.updated is not None else 0.0
                    yield ObjectInfo(key, int(blob.size or 0), modified)

    def read_versioned(self, key: str) -> Versioned | None:
        blob = self._blob(key)
        try:
            with self._errors(key):
                # The download response carries x-goog-generation, so data and
                # version come from one request and always belong together.
                data = bytes(blob.download_as_bytes(timeout=self._timeout, retry=self._retry))
        except ObjectNotFound:
            return None
        if blob.generation is None:
            raise BackendError(
                f"GCS returned no generation for {self._url(key)}: the endpoint is not "
                "GCS-compatible enough for conditional writes",
                retryable=False,
                key=key,
            )
        return Versioned(data, str(blob.generation))

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        self._keys.name(key)
        if expected is None:
            generation = 0  # "only if no live object exists"
        else:
            try:
                generation = int(expected)
            except ValueError:
                raise PreconditionFailed(key, f"'{expected}' is not a GCS generation") from None
        retries = _RetryCounter()
        try:
            with self._errors(key, object_call=False):
                blob = self._upload(key, data, generation, self._make_retry(retries))
        except PreconditionFailed:
            if retries.count:
                mine = reconcile_lost_race(self, key, data)
                if mine is not None:
                    return mine.version
            raise PreconditionFailed(
                key, "it exists" if expected is None else "its version changed"
            ) from None
        return str(blob.generation)

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
        todo = list(keys)
        for key in todo:
            self._keys.name(key)  # validate them all before deleting any
        parallel_map(self.delete, todo, self._concurrency)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing idle connections cannot fail meaningfully
            self._client.close()
