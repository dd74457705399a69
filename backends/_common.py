"""Helpers shared by the cloud and RocksDB backends.

* :func:`check_options` validates a backend's ``storage.toml`` options
  against its ``OPTIONS`` table (unknown key or wrong type: a one-line
  :class:`ConfigError`), so every backend reports bad settings the same way.
* :func:`resolve_container` reconciles the bucket/prefix in a location URL
  with the same settings given as options.
* :class:`KeyPrefix` maps store keys to object names under a prefix and back.
* :func:`public_url` and :func:`redact` strip secrets (signatures, account keys, tokens, query
  strings) from text taken from an SDK before it goes into an error message.
* :func:`parallel_map` runs network requests on a small thread pool, for the
  batch variants (``get_many``, ``exists_many``...) of network backends.
* :func:`reconcile_lost_race` tells a lost conditional write from our own
  write whose response was lost and which the SDK then retried.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from talaria_storage.core.errors import ConfigError, ObjectNotFound, PreconditionFailed
from talaria_storage.core.keys import validate_key
from talaria_storage.storage.backend import ObjectInfo, touched_since

if TYPE_CHECKING:
    from talaria_storage.storage.backend import Backend, Versioned
    from talaria_storage.storage.registry import Location

T = TypeVar("T")
R = TypeVar("R")

MIB = 1024 * 1024


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(
        kind, kind.__name__
    )


def check_options(
    scheme: str, allowed: Mapping[str, type], options: Mapping[str, Any]
) -> dict[str, Any]:
    """Return ``options`` as a dict after checking every key and value type against ``allowed``.

    An integer is accepted where a number (float) is expected and converted;
    a bool is never accepted as a number. ``None`` values are dropped (an
    unset option).
    """
    checked: dict[str, Any] = {}
    for key, value in options.items():
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ConfigError(
                f"unknown option '{key}' for {scheme}:// stores: known options are {known}"
            )
        if value is None:
            continue
        kind = allowed[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
        if not ok:
            raise ConfigError(
                f"option '{key}' for {scheme}:// stores must be {_type_name(kind)}, "
                f"got {type(value).__name__}"
            )
        if kind in (int, float) and value < 0:
            raise ConfigError(f"option '{key}' for {scheme}:// stores must not be negative")
        checked[key] = value
    return checked


def resolve_container(
    location: Location, options: dict[str, Any], name_option: str, what: str
) -> tuple[str, str]:
    """The bucket (or container) and prefix from the URL, else from the options.

    ``options`` loses the ``name_option`` and ``prefix`` keys. A URL and an
    option naming different buckets is a :class:`ConfigError`, not a silent pick.
    """
    option_name = options.pop(name_option, None)
    option_prefix = options.pop("prefix", None)
    name = location.netloc or option_name
    if not name:
        raise ConfigError(
            f"store location '{location.raw}' names no {what}: give {location.scheme}://<{what}>"
        )
    if option_name and location.netloc and option_name != location.netloc:
        raise ConfigError(
            f"store location '{location.raw}' names {what} '{location.netloc}' but option "
            f"{name_option} = '{option_name}': remove one of them"
        )
    prefix = location.prefix or (option_prefix or "").strip("/")
    if option_prefix and location.prefix and option_prefix.strip("/") != location.prefix:
        raise ConfigError(
            f"store location '{location.raw}' has prefix '{location.prefix}' but option "
            f"prefix = '{option_prefix}': remove one of them"
        )
    return name, prefix


class KeyPrefix:
    """Maps store keys to object names under an optional prefix (``<prefix>/<key>``) and back."""

    def __init__(self, prefix: str) -> None:
        prefix = prefix.strip("/")
        if prefix:
            for segment in prefix.split("/"):
                if not segment or segment in (".", ".."):
                    raise ConfigError(
                        f"invalid store prefix '{prefix}': empty, '.' or '..' segment"
                    )
        self.prefix = prefix
        self._head = f"{prefix}/" if prefix else ""

    def name(self, key: str) -> str:
        """The object name of a (validated) store key."""
        return self._head + validate_key(key)

    def list_prefix(self, prefix: str) -> str:
        """The object-name prefix to list for a store-key prefix."""
        return self._head + prefix

    def key(self, name: str) -> str | None:
        """The store key of an object name, or None for names that are not store keys
        (outside the prefix, or foreign objects that do not pass key validation)."""
        if not name.startswith(self._head):
            return None
        key = name[len(self._head) :]
        try:
            return validate_key(key)
        except ValueError:
            return None


_SECRET_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # query strings carry SAS signatures and presigned-URL credentials
    (re.compile(r"(https?://[^\s?'\"]*)\?[^\s'\")]*"), r"\1?<redacted>"),
    (re.compile(r"(?i)(AccountKey|SharedAccessSignature|sig|signature|X-Amz-Signature|X-Amz-Credential|"
                r"X-Amz-Security-Token|access_token|refresh_token|client_secret|password|secret)"
                r"=[^;&\s'\"]*"), r"\1=<redacted>"),
    (re.compile(r"(?i)(Authorization['\"]?\s*[:=]\s*['\"]?)[^'\",}]*"), r"\1<redacted>"),
    (re.compile(r"(?i)(aws_secret_access_key|aws_session_token)(['\"]?\s*[:=]\s*['\"]?)[^'\",}\s]*"),
     r"\1\2<redacted>"),
]  # fmt: skip


def redact(text: str, *secrets: str | None) -> str:
    """``text`` with known secret shapes replaced by ``<redacted>``, and each given secret too."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "<redacted>")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return " ".join(text.split())  # one line


def public_url(url: str) -> str:
    """``url`` without user info, query (a SAS token) or fragment: safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def first_line(text: str, limit: int = 200) -> str:
    """The first line of an SDK message, shortened, for the tail of an error message."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def parallel_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """``[fn(x) for x in items]`` on up to ``workers`` threads (in order; the first error propagates)."""
    todo = list(items)
    if len(todo) <= 1 or workers <= 1:
        return [fn(item) for item in todo]
    with ThreadPoolExecutor(max_workers=min(workers, len(todo))) as pool:
        return list(pool.map(fn, todo))


def stat_in_parallel(backend: Backend, keys: Iterable[str], workers: int) -> dict[str, ObjectInfo]:
    """:meth:`Backend.stat_many` for a service answering one object per request: the
    requests on up to ``workers`` threads, missing keys left out."""

    def one(key: str) -> ObjectInfo | None:
        try:
            return backend.stat(key)
        except ObjectNotFound:
            return None

    todo = list(keys)
    return {key: info for key, info in zip(todo, parallel_map(one, todo, workers)) if info is not None}


def delete_unchanged_in_parallel(
    infos: Iterable[ObjectInfo],
    read: Callable[[str], tuple[float, Any]],
    delete_at: Callable[[str, Any], None],
    workers: int,
) -> list[ObjectInfo]:
    """:meth:`Backend.delete_unchanged` for a service whose delete takes a version precondition.

    ``read(key)`` gives the object's modification time and version token now; an object
    newer than its ``info`` (freshened since the caller's stat) is spared; ``delete_at(key,
    token)`` deletes it only at that version, so a touch between the read and the delete
    (which makes a new version) wins. The ones deleted, in order.
    """

    def one(info: ObjectInfo) -> ObjectInfo | None:
        try:
            modified, token = read(info.key)
            if touched_since(info, ObjectInfo(info.key, info.size, modified)):
                return None
            delete_at(info.key, token)
        except (ObjectNotFound, PreconditionFailed):
            return None
        return info

    return [info for info in parallel_map(one, list(infos), workers) if info is not None]


def reconcile_lost_race(backend: Backend, key: str, data: bytes) -> Versioned | None:
    """After a *retried* conditional write failed, the current object if it holds exactly ``data``.

    SDKs retry a request whose response was lost (a timeout, a reset
    connection). If the first attempt of our conditional write had in fact
    succeeded, the retry fails its own precondition and we would report a
    loss although the object holds our bytes. Backends call this only when
    the SDK really sent the publishing request more than once: then a key
    holding byte-identical content is our own write (or an identical one),
    and the write is reported as a success. A conditional write that was
    sent once and failed is a plain loss, so ``put_if_absent`` of bytes that
    are already stored still returns False, as on every other backend.
    """
    current = backend.read_versioned(key)
    if current is not None and current.data == data:
        return current
    return None
