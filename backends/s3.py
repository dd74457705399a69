"""The S3 backend (``s3://bucket[/prefix]``), on boto3; also S3-compatible servers via ``endpoint_url``.

Objects are named ``<prefix>/<key>`` in the bucket. How the contract is met:

* ``put`` is one ``PutObject`` below ``multipart_threshold_mb`` and a managed
  multipart upload (boto3's transfer manager) above it. S3 publishes an
  object only when its upload completes, so readers never see a torn object.
* Conditional writes use S3's own preconditions: create-only is
  ``If-None-Match: *``, compare-and-swap is ``If-Match: <ETag>``, and the
  version token is the ETag. Small objects (refs, state) go in one
  ``PutObject``. A large create-only write is a multipart upload whose
  ``CompleteMultipartUpload`` carries ``If-None-Match``; a large
  compare-and-swap stays one ``PutObject`` up to S3's 5 GiB limit, because
  ``If-Match`` on ``CompleteMultipartUpload`` is not honoured by every
  S3-compatible server (moto ignores it).
* Retries are botocore's (``retry_mode`` standard or adaptive: exponential
  backoff with jitter on throttling, 5xx and connection errors), bounded by
  ``max_attempts`` and the connect/read timeouts so a dead endpoint fails in
  seconds, not minutes.
* Credentials come from boto3's standard chain only (environment, shared
  config/credentials files and ``profile``, SSO, container and instance
  roles); no option carries a secret, and no message or repr ever shows one.

Errors are translated at this edge: a missing key is :class:`ObjectNotFound`,
a lost precondition :class:`PreconditionFailed`, throttling/5xx/timeouts/
connection failures a retryable :class:`BackendError`, and a missing bucket,
denied access or missing credentials a permanent one that names the fix.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

import boto3
import boto3.session
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

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

_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_NO_BUCKET = {"NoSuchBucket"}
_PRECONDITION = {"PreconditionFailed", "412"}
_ACCESS = {
    "AccessDenied", "AllAccessDisabled", "InvalidAccessKeyId", "SignatureDoesNotMatch",
    "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "AccountProblem", "InvalidSecurity",
    "InvalidClientTokenId", "UnrecognizedClientException", "403", "Forbidden",
}  # fmt: skip
_RETRYABLE = {
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestLimitExceeded", "TooManyRequestsException", "RequestTimeout", "RequestTimeoutException",
    "InternalError", "ServiceUnavailable", "ConditionalRequestConflict", "OperationAborted",
    "PriorRequestNotComplete", "BandwidthLimitExceeded", "EC2ThrottledException",
}  # fmt: skip
#: ConditionalRequestConflict (409): S3 saw a concurrent conditional write in flight. The
#: outcome is unknown, so the write is retried a few times; the retry then wins or gets 412.
_CONFLICT_RETRIES = 4
_DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
#: S3's largest single PutObject. Compare-and-swap writes up to this size are one
#: conditional PutObject: If-Match on CompleteMultipartUpload is newer than If-None-Match
#: and not honoured everywhere (moto 5.2.5 ignores it), so it is used only above this size.
_MAX_SINGLE_PUT = 5 * 1024**3


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def _retried(exc: ClientError) -> bool:
    """True when botocore sent the failed request more than once."""
    return int(exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0) > 0


class S3Backend(Backend):
    """Objects in an S3 bucket under a prefix; see the module docstring for the guarantees."""

    #: Every ``storage.toml`` option this backend accepts, with its type (checked by the config layer).
    OPTIONS: ClassVar[dict[str, type]] = {
        "bucket": str,  # when the location URL does not name it
        "prefix": str,  # likewise
        "region": str,
        "endpoint_url": str,  # S3-compatible servers and emulators
        "profile": str,  # a named profile of the shared AWS config (still the standard chain)
        "max_attempts": int,  # total attempts per request, including the first
        "retry_mode": str,  # standard | adaptive | legacy
        "connect_timeout": float,  # seconds
        "read_timeout": float,  # seconds
        "multipart_threshold_mb": int,  # objects above this go multipart
        "multipart_chunksize_mb": int,  # part size (S3's minimum is 5)
        "max_concurrency": int,  # threads per multipart transfer and per batch call
        "max_pool_connections": int,  # HTTP connection pool size
        "addressing_style": str,  # auto | path | virtual
        "list_page_size": int,  # keys per ListObjectsV2 page (1-1000)
        "request_checksum_calculation": str,  # when_supported | when_required (older S3-compatibles)
    }

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        profile: str | None = None,
        max_attempts: int = 5,
        retry_mode: str = "standard",
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
        multipart_threshold_mb: int = 64,
        multipart_chunksize_mb: int = 16,
        max_concurrency: int = 8,
        max_pool_connections: int = 32,
        addressing_style: str = "auto",
        list_page_size: int = 1000,
        request_checksum_calculation: str | None = None,
        session: boto3.session.Session | None = None,
    ) -> None:
        """Open ``s3://bucket/prefix``. No request is sent until the first operation.

        ``session`` lets a caller supply a ready boto3 Session (an assumed
        role, test credentials); by default a new Session follows the
        standard credential chain, with ``profile`` if given.
        """
        if not bucket:
            raise ConfigError("s3:// stores need a bucket: s3://<bucket>/<prefix>")
        if retry_mode not in ("standard", "adaptive", "legacy"):
            raise ConfigError(
                f"option retry_mode = '{retry_mode}' for s3:// stores: use standard, adaptive or legacy"
            )
        if addressing_style not in ("auto", "path", "virtual"):
            raise ConfigError(
                f"option addressing_style = '{addressing_style}' for s3:// stores: use auto, path or virtual"
            )
        if max_attempts < 1:
            raise ConfigError("option max_attempts for s3:// stores must be at least 1")
        if multipart_chunksize_mb < 5:
            raise ConfigError(
                "option multipart_chunksize_mb for s3:// stores must be at least 5 (S3's minimum part size)"
            )
        if multipart_threshold_mb < 1:
            raise ConfigError("option multipart_threshold_mb for s3:// stores must be at least 1")
        if not 1 <= list_page_size <= 1000:
            raise ConfigError("option list_page_size for s3:// stores must be between 1 and 1000")
        if request_checksum_calculation not in (None, "when_supported", "when_required"):
            raise ConfigError(
                "option request_checksum_calculation for s3:// stores: use when_supported or when_required"
            )
        if endpoint_url is not None and urlsplit(endpoint_url).scheme not in ("http", "https"):
            raise ConfigError(
                f"option endpoint_url for s3:// stores must be an http(s) URL, got '{public_url(endpoint_url)}'"
            )

        self.bucket = bucket
        self._keys = KeyPrefix(prefix)
        self.prefix = self._keys.prefix
        self.location = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._endpoint = public_url(endpoint_url) if endpoint_url else "the AWS S3 endpoint"
        self._threshold = multipart_threshold_mb * MIB
        self._chunksize = multipart_chunksize_mb * MIB
        self._concurrency = max(1, max_concurrency)
        self._page_size = list_page_size
        self._bucket_checked = False
        self._closed = False

        config_kwargs: dict[str, Any] = {
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "retries": {"total_max_attempts": max_attempts, "mode": retry_mode},
            "s3": {"addressing_style": addressing_style},
            "max_pool_connections": max(max_pool_connections, self._concurrency),
        }
        if request_checksum_calculation:
            config_kwargs["request_checksum_calculation"] = request_checksum_calculation
            config_kwargs["response_checksum_validation"] = request_checksum_calculation
        try:
            if session is None:
                session = (
                    boto3.session.Session(profile_name=profile)
                    if profile
                    else boto3.session.Session()
                )
            self._client = session.client(
                "s3", region_name=region, endpoint_url=endpoint_url, config=Config(**config_kwargs)
            )
        except ProfileNotFound:
            raise ConfigError(
                f"AWS profile '{profile}' for {self.location} is not in the shared AWS config: "
                "fix [storage] profile or run 'aws configure --profile'"
            ) from None
        except NoRegionError:
            raise ConfigError(
                f"no AWS region for {self.location}: set [storage] region or AWS_REGION"
            ) from None
        except (BotoCoreError, ValueError) as exc:
            raise ConfigError(
                f"cannot create an S3 client for {self.location}: {redact(first_line(str(exc)))}"
            ) from None
        self._transfer = TransferConfig(
            multipart_threshold=self._threshold,
            multipart_chunksize=self._chunksize,
            max_concurrency=self._concurrency,
        )

    @classmethod
    def from_location(cls, location: Location, options: Mapping[str, Any]) -> S3Backend:
        """Open ``s3://bucket/prefix`` with ``storage.toml`` options (see :attr:`OPTIONS`)."""
        opts = check_options("s3", cls.OPTIONS, options)
        bucket, prefix = resolve_container(location, opts, "bucket", "bucket")
        return cls(bucket, prefix, **opts)

    @property
    def supports_native_ranges(self) -> bool:
        return True

    # -- error translation ----------------------------------------------------------------------

    def _url(self, key: str | None) -> str:
        return f"{self.location}/{key}" if key else self.location

    def _missing_bucket(self) -> BackendError:
        where = "" if self._endpoint.startswith("the AWS") else f" at {self._endpoint}"
        return BackendError(
            f"bucket '{self.bucket}' does not exist{where}: create it or fix [storage] bucket",
            retryable=False,
        )

    def _client_error(self, exc: ClientError, key: str | None) -> StorageError:
        code, status = _code(exc), _status(exc)
        if code in _NO_BUCKET:
            return self._missing_bucket()
        if code in _PRECONDITION or status == 412:
            return PreconditionFailed(key or self.location)
        if code in _ACCESS or status in (401, 403):
            return BackendError(
                f"access denied for {self._url(key)} ({code or status}): check AWS credentials "
                "and the bucket policy",
                retryable=False,
                key=key,
            )
        if code in _NOT_FOUND and key is not None:
            return ObjectNotFound(key, self.location)
        retryable = code in _RETRYABLE or status >= 500 or status == 429
        detail = redact(first_line(str(exc.response.get("Error", {}).get("Message", "") or code)))
        hint = "retry later" if retryable else "check the request and the bucket's settings"
        return BackendError(
            f"S3 request for {self._url(key)} failed ({code or status}: {detail}): {hint}",
            retryable=retryable,
            key=key,
        )

    def _transport_error(self, exc: Exception, key: str | None) -> BackendError:
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError)):
            return BackendError(
                f"no usable AWS credentials for {self.location}: set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where an IAM role is available",
                retryable=False,
                key=key,
            )
        if isinstance(exc, (BotoConnectionError, ReadTimeoutError, ResponseStreamingError)):
            kind = type(exc).__name__
            return BackendError(
                f"cannot reach {self._endpoint} for {self._url(key)} ({kind}): check endpoint_url "
                "and the network, or retry later",
                retryable=True,
                key=key,
            )
        return BackendError(
            f"S3 client error for {self._url(key)}: {redact(first_line(str(exc)))}",
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
        except ClientError as exc:
            error = self._client_error(exc, key)
            if isinstance(error, ObjectNotFound) and _code(exc) != "NoSuchKey":
                # A bare 404 (HEAD) does not say whether the key or the bucket is missing.
                self._check_bucket()
            raise error from exc
        except (BotoCoreError, Boto3Error) as exc:
            cause = exc.__cause__ or exc.__context__
            if isinstance(exc, Boto3Error) and isinstance(cause, ClientError):
                raise self._client_error(cause, key) from exc
            raise self._transport_error(exc, key) from exc

    def _check_bucket(self) -> None:
        """Raise the missing-bucket (or access) error if the bucket is absent; checked once."""
        if self._bucket_checked:
            return
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
                raise self._missing_bucket() from exc
            if _status(exc) == 403:
                # Object-only permissions (no s3:ListBucket) cannot see the bucket itself:
                # it exists as far as we can tell, and the object's 404 stands.
                self._bucket_checked = True
                return
            raise self._client_error(exc, None) from exc
        except BotoCoreError as exc:
            raise self._transport_error(exc, None) from exc
        self._bucket_checked = True

    # -- primitives -----------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        name = self._keys.name(key)
        with self._errors(key):
            if len(data) <= self._threshold:
                self._client.put_object(Bucket=self.bucket, Key=name, Body=bytes(data))
            else:
                self._client.upload_fileobj(
                    io.BytesIO(data), self.bucket, name, Config=self._transfer
                )

    def get(self, key: str) -> bytes:
        name = self._keys.name(key)
        with self._errors(key):
            response = self._client.get_object(Bucket=self.bucket, Key=name)
            return bytes(response["Body"].read())

    def get_range(self, key: str, start: int, end: int) -> bytes:
        if start < 0 or end < start:
            raise ValueError(f"invalid range [{start}, {end}) for '{key}'")
        name = self._keys.name(key)
        if start == end:
            if not self.exists(key):
                raise ObjectNotFound(key, self.location)
            return b""
        with self._errors(key):
            try:
                response = self._client.get_object(
                    Bucket=self.bucket, Key=name, Range=f"bytes={start}-{end - 1}"
                )
            except ClientError as exc:
                if _code(exc) == "InvalidRange":  # the object exists but ends before ``start``
                    return b""
                raise
            return bytes(response["Body"].read())

    def exists(self, key: str) -> bool:
        try:
            self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def stat(self, key: str) -> ObjectInfo:
        name = self._keys.name(key)
        with self._errors(key):
            head = self._client.head_object(Bucket=self.bucket, Key=name)
        return ObjectInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    def touch(self, key: str) -> None:
        # A copy onto itself is S3's one way to renew LastModified without sending the bytes;
        # it is legal only when it replaces the metadata. Server-side, so a missing key fails
        # (NoSuchKey) rather than being re-created. Objects here are far below copy_object's
        # 5 GB limit (packs are megabytes), so the managed multipart copy is not needed.
        name = self._keys.name(key)
        with self._errors(key):
            self._client.copy_object(
                Bucket=self.bucket,
                Key=name,
                CopySource={"Bucket": self.bucket, "Key": name},
                MetadataDirective="REPLACE",
            )

    def delete(self, key: str) -> None:
        name = self._keys.name(key)
        with self._errors(key):
            try:
                self._client.delete_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if _code(exc) != "NoSuchKey":  # S3 answers 204 anyway; some compatibles say 404
                    raise

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        with self._errors(None):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket,
                Prefix=self._keys.list_prefix(prefix),
                PaginationConfig={"PageSize": self._page_size},
            )
            for page in pages:
                for item in page.get("Contents", []):
                    key = self._keys.key(item["Key"])
                    if key is not None and key.startswith(prefix):
                        yield ObjectInfo(key, int(item["Size"]), item["LastModified"].timestamp())

    def sweep_incomplete(self, older_than_seconds: float) -> int:
        """Abort multipart uploads under this store's prefix started that long ago.

        A killed large write leaves its uploaded parts billed but invisible; S3
        keeps them until aborted (or until a bucket lifecycle rule does it).
        """
        cutoff = time.time() - older_than_seconds
        aborted = 0
        with self._errors(None):
            pages = self._client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=self._keys.list_prefix("")
            )
            for page in pages:
                for upload in page.get("Uploads", []):
                    if upload["Initiated"].timestamp() < cutoff:
                        self._client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )
                        aborted += 1
        return aborted

    def read_versioned(self, key: str) -> Versioned | None:
        name = self._keys.name(key)
        try:
            with self._errors(key):
                response = self._client.get_object(Bucket=self.bucket, Key=name)
                data = bytes(response["Body"].read())
        except ObjectNotFound:
            return None
        return Versioned(data, str(response["ETag"]))

    def put_if_version(self, key: str, data: bytes, expected: str | None) -> str:
        name = self._keys.name(key)
        condition = {"IfNoneMatch": "*"} if expected is None else {"IfMatch": expected}
        for attempt in range(_CONFLICT_RETRIES + 1):
            with self._errors(key):
                try:
                    single = len(data) <= self._threshold or (
                        expected is not None and len(data) <= _MAX_SINGLE_PUT
                    )
                    if single:
                        response = self._client.put_object(
                            Bucket=self.bucket, Key=name, Body=bytes(data), **condition
                        )
                    else:
                        response = self._conditional_multipart(name, data, condition)
                    return str(response["ETag"])
                except ClientError as exc:
                    code = _code(exc)
                    # If-Match on a key deleted meanwhile gets 404: a lost race as well.
                    lost = (
                        code in _PRECONDITION
                        or _status(exc) == 412
                        or (expected is not None and code in ("NoSuchKey", "404"))
                    )
                    if lost:
                        if _retried(exc):
                            mine = reconcile_lost_race(self, key, data)
                            if mine is not None:
                                return mine.version
                        raise PreconditionFailed(
                            key, "it exists" if expected is None else "its version changed"
                        ) from exc
                    if code == "ConditionalRequestConflict" and attempt < _CONFLICT_RETRIES:
                        time.sleep(0.05 * 2**attempt)
                        continue
                    raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _conditional_multipart(
        self, name: str, data: bytes, condition: dict[str, str]
    ) -> dict[str, Any]:
        """Upload ``data`` in parts and publish it with a conditional CompleteMultipartUpload."""
        upload_id = self._client.create_multipart_upload(Bucket=self.bucket, Key=name)["UploadId"]
        try:
            offsets = range(0, len(data), self._chunksize)

            def upload(index_offset: tuple[int, int]) -> dict[str, Any]:
                number, offset = index_offset
                part = self._client.upload_part(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=bytes(data[offset : offset + self._chunksize]),
                )
                return {"PartNumber": number, "ETag": part["ETag"]}

            parts = parallel_map(upload, list(enumerate(offsets, start=1)), self._concurrency)
            return dict(
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                    **condition,
                )
            )
        except BaseException:
            try:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id
                )
            except (ClientError, BotoCoreError):
                pass  # a leftover upload is reaped by the bucket's lifecycle rule, and costs no correctness
            raise

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
        for start in range(0, len(names), _DELETE_BATCH):
            batch = names[start : start + _DELETE_BATCH]
            with self._errors(None):
                response = self._client.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": n} for n in batch], "Quiet": True},
                )
            failures = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failures:
                first = failures[0]
                fake = ClientError(
                    {"Error": {"Code": first.get("Code", ""), "Message": first.get("Message", "")}},
                    "DeleteObjects",
                )
                key = self._keys.key(str(first.get("Key", ""))) or str(first.get("Key", ""))
                raise self._client_error(fake, key)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing idle connections cannot fail meaningfully
            self._client.close()
