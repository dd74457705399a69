"""Backend registry: a store location (URL or path) -> a :class:`Backend`.

Locations::

    /path/to/store, ./store, file:///path     filesystem (the embedded default)
    memory://[name]                           in-process, for tests
    rocksdb:///path                           RocksDB (extra: rocksdb)
    s3://bucket[/prefix]                      Amazon S3 or compatible (extra: s3)
    gs://bucket[/prefix]                      Google Cloud Storage (extra: gcs)
    az://container[/prefix]                   Azure Blob Storage (extra: azure)

As in fsspec's registry, a scheme maps to a dotted class path plus the extra
that provides its SDK; nothing is imported until a location of that scheme is
opened, and a missing SDK is a one-line :class:`MissingExtra` naming the
``pip install`` that fixes it.

Each backend class provides ``from_location(location: Location, options)``,
where ``options`` are the backend's settings from ``storage.toml`` (endpoint,
region, retries...) already merged with the environment.

Fault drills: ``faults+<location>?<option>=<value>&...`` opens the backend of
``<location>`` wrapped in a
:class:`~talaria_storage.backends.faults.FaultInjectingBackend`, e.g.
``faults+file:///srv/store?transient=0.1&seed=1`` or
``faults+s3://bucket/db?latency=0.05&cut_after=500``. Options: ``transient``,
``permanent`` and ``lost_response`` (fractions of calls, 0-1), ``latency``
(seconds per call), ``cut_after`` (calls before the link dies), ``seed``,
``operations`` (comma-separated method names). Every option is validated
(an unknown or out-of-range one is a :class:`ConfigError`), because a drill
that silently injects nothing proves nothing. It works wherever a location
is opened as such (:func:`open_backend`, ``open_store("faults+...")``, a sync
remote), not as the configured store of ``storage.toml`` or ``--store``.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from talaria_storage.backends.faults import FaultInjectingBackend, fault_options_from_query
from talaria_storage.core.errors import ConfigError, MissingExtra
from talaria_storage.storage.backend import Backend


@dataclass(frozen=True, slots=True)
class Location:
    """A parsed store location: scheme, bucket/container/host, and path or prefix."""

    scheme: str
    netloc: str
    path: str
    raw: str
    #: ``faults+`` options as sorted (argument, value) pairs; empty for a plain location.
    faults: tuple[tuple[str, Any], ...] = ()

    @property
    def prefix(self) -> str:
        """The key prefix inside a bucket, without leading or trailing '/'."""
        return self.path.strip("/")


@dataclass(frozen=True, slots=True)
class BackendSpec:
    target: str  # "module:Class"
    extra: str | None  # pip extra that provides the SDK
    requires: tuple[str, ...]  # importable modules the backend needs


BACKENDS: dict[str, BackendSpec] = {
    "file": BackendSpec("talaria_storage.backends.filesystem:FilesystemBackend", None, ()),
    "memory": BackendSpec("talaria_storage.backends.memory:MemoryBackend", None, ()),
    "rocksdb": BackendSpec("talaria_storage.backends.rocksdb:RocksDBBackend", "rocksdb", ("rocksdict",)),
    "s3": BackendSpec("talaria_storage.backends.s3:S3Backend", "s3", ("boto3",)),
    "gs": BackendSpec("talaria_storage.backends.gcs:GCSBackend", "gcs", ("google.cloud.storage",)),
    "az": BackendSpec("talaria_storage.backends.azure:AzureBackend", "azure", ("azure.storage.blob",)),
}
ALIASES = {"gcs": "gs", "azure": "az", "filesystem": "file", "local": "file"}


FAULTS_PREFIX = "faults+"


def split_faults(location: str) -> tuple[str, dict[str, Any] | None]:
    """``faults+<inner>?<options>`` -> (``<inner>``, validated fault options); other locations -> (location, None)."""
    if not location.startswith(FAULTS_PREFIX):
        return location, None
    inner, _, query = location[len(FAULTS_PREFIX):].partition("?")
    if inner.startswith(FAULTS_PREFIX):
        raise ConfigError(f"'{location}' repeats the '{FAULTS_PREFIX}' prefix: give it once")
    if "://" not in inner and not inner.startswith("/"):
        # Relative paths are resolved against a config file's folder by prefixing it, which
        # would bury the prefix inside a path: ask for a form that needs no resolving.
        raise ConfigError(
            f"'{location}': after '{FAULTS_PREFIX}' give a URL or an absolute path, e.g. faults+file:///srv/store"
        )
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigError(
            f"fault options in '{location}' are malformed: write them as ?transient=0.1&seed=1"
        ) from None
    return inner, fault_options_from_query(pairs, location)


def parse_location(location: str) -> Location:
    """Split a location into its parts; a string with no scheme is a filesystem path."""
    if not isinstance(location, str) or not location.strip():
        raise ConfigError("empty store location: give a path or a URL such as s3://bucket/prefix")
    inner, faults = split_faults(location)
    if faults is not None:
        parsed = parse_location(inner)
        return Location(parsed.scheme, parsed.netloc, parsed.path, location, tuple(sorted(faults.items())))
    if "://" not in location:
        return Location("file", "", location, location)
    parts = urlsplit(location)
    scheme = ALIASES.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in BACKENDS:
        known = ", ".join(f"{s}://" for s in BACKENDS)
        raise ConfigError(f"unknown store scheme '{parts.scheme}://' in '{location}': use one of {known}")
    path = unquote(parts.path)
    if scheme in ("file", "rocksdb"):
        # file:///abs/path -> '/abs/path'; file://relative/path -> 'relative/path'
        path = (parts.netloc + path) if parts.netloc else path
        if not path:
            raise ConfigError(f"store location '{location}' names no folder")
        return Location(scheme, "", path, location)
    if scheme in ("s3", "gs", "az") and not parts.netloc:
        raise ConfigError(f"store location '{location}' names no bucket or container")
    return Location(scheme, parts.netloc, path, location)


def _check_extra(spec: BackendSpec, location: Location) -> None:
    for module in spec.requires:
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            raise MissingExtra(
                f"{location.scheme}:// stores need the '{module}' package: "
                f"install talaria-storage[{spec.extra}]"
            )


def open_backend(location: str | Location, options: Mapping[str, Any] | None = None) -> Backend:
    """Open the backend a location names, importing its SDK only now."""
    loc = location if isinstance(location, Location) else parse_location(location)
    spec = BACKENDS[loc.scheme]
    _check_extra(spec, loc)
    module_name, class_name = spec.target.split(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name)
    backend: Backend = cls.from_location(loc, dict(options or {}))
    if loc.faults:
        return with_faults(backend, dict(loc.faults))
    return backend


def with_faults(backend: Backend, faults: Mapping[str, Any]) -> Backend:
    """``backend`` wrapped in a FaultInjectingBackend with options from :func:`split_faults`."""
    return FaultInjectingBackend(backend, **faults)
