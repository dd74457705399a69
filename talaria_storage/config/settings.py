"""Configuration: ``storage.toml``, the environment and explicit arguments -> one frozen :class:`StorageConfig`.

Where a setting comes from (highest precedence first)::

    explicit argument   load_config(..., compression_level=9), config_for_location("s3://b/p")
    environment         TALARIA_STORAGE_DIR, TALARIA_STORAGE_THREADS, ... (see ENVIRONMENT)
    file                storage.toml (only the file you name: nothing is read implicitly)
    default             the SCHEMA table below

Sections of ``storage.toml`` (the repository's ``storage.toml`` documents every key)::

    [storage]         backend, path, compression, compression_level, threads, freshen_after_seconds
    [storage.s3]      bucket, prefix + the S3 backend's own OPTIONS (endpoint, region, ...)
    [storage.gcs]     bucket, prefix, project + the GCS backend's OPTIONS
    [storage.azure]   container, prefix + the Azure backend's OPTIONS
    [storage.rocksdb] the RocksDB backend's OPTIONS
    [cache]           enabled, size_mb, ttl_seconds, dir
    [index]           type
    [optimization]    auto_optimize, deduplication, min_chunk_size, max_chunk_size
    [remote]          default = "<name>", and one [remote.<name>] location = "..." per remote

Validation happens in one place: :data:`SCHEMA` maps every key to its kind
(type plus allowed range or choices), default and description, and every
source (file, environment, argument) goes through it. A wrong value is a
one-line :class:`ConfigError` naming the source, the key and what is allowed,
for example ``storage.toml: [storage] compression_level = 23 is out of range:
zstd levels are 1-22``. Unknown keys get a "did you mean" suggestion.

Decisions worth knowing:

* ``compression_level`` is a zstd level (1-22). The other codecs have no
  level. A level given in the *same or a higher* source than a level-less
  codec (``compression = "lz4"`` and ``compression_level = 5`` in one file,
  or a level passed as an argument over a file's ``lz4``) is an error: the
  writer asked for something that cannot happen. A level from a *lower*
  source (a file's zstd level overridden by ``compression="lz4"``), or from
  ``TALARIA_COMPRESSION_LEVEL`` (an ambient default for whatever codec is in
  use), is ignored. Non-zstd configs report the level as ``None``.
* Relative paths in a file (``[storage] path``, ``[cache] dir``, filesystem
  remote locations) are relative to the file's folder, as DVC does, so a
  config works whatever the current directory; relative paths from the
  environment or from arguments are relative to the current directory. All
  are made absolute at load time; ``~`` is expanded.
* ``[storage] path`` is the folder of the filesystem and RocksDB backends (and
  the name of a ``memory://`` store); cloud backends take bucket/container and
  prefix from their sub-table and ignore it.
* Backend sub-tables hold settings for the backend classes: beyond the
  location keys owned here (bucket, container, prefix, project), keys are
  checked against the backend class's ``OPTIONS: dict[str, type]``. The
  backend module is imported only when such a key is used; if it (or its SDK)
  cannot be imported the keys are accepted as written, and opening the store
  later raises :class:`MissingExtra` with the install hint.
* An environment variable set to the empty string counts as unset.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import json
import math
import os
import re
import sys
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from talaria_storage.core.errors import ConfigError
from talaria_storage.storage.chunk_store import FRESHEN_AFTER_SECONDS
from talaria_storage.storage.codecs import (
    CODECS,
    DEFAULT_ZSTD_LEVEL,
    ZSTD_MAX_LEVEL,
    ZSTD_MIN_LEVEL,
)
from talaria_storage.storage.registry import ALIASES, BACKENDS, parse_location

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "ENVIRONMENT",
    "SCHEMA",
    "CacheSettings",
    "IndexSettings",
    "OptimizationSettings",
    "RemoteSettings",
    "StorageConfig",
    "StorageSettings",
    "config_for_location",
    "load_config",
]

DEFAULT_STORAGE_DIR = "~/.talaria/storage"
DEFAULT_CACHE_DIR = "~/.talaria/cache"
#: Default worker threads: one per core, at most 16 (I/O-bound work gains little beyond).
DEFAULT_THREADS = max(1, min(16, os.cpu_count() or 1))

BACKEND_NAMES = ("filesystem", "memory", "rocksdb", "s3", "gcs", "azure")
#: Backends whose settings live in a ``[storage.<name>]`` sub-table.
BACKEND_TABLES = ("rocksdb", "s3", "gcs", "azure")
CLOUD_BACKENDS = ("s3", "gcs", "azure")
#: The sub-table key that names a cloud backend's bucket (Azure calls it a container).
_BUCKET_KEY = {"s3": "bucket", "gcs": "bucket", "azure": "container"}
_URL_SCHEME = {"rocksdb": "rocksdb", "s3": "s3", "gcs": "gs", "azure": "az"}
_BACKEND_OF_SCHEME = {
    "file": "filesystem",
    "memory": "memory",
    "rocksdb": "rocksdb",
    "s3": "s3",
    "gs": "gcs",
    "az": "azure",
}

_KiB = 1024
_MiB = 1024 * _KiB
_GiB = 1024 * _MiB


# -- value kinds: the "type + allowed values" column of the schema ------------------------------


class _Invalid(Exception):
    """A value failed its kind's check. ``reason`` reads after the value: "is out of range: ..."."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Kind(Protocol):
    """How one key's values are checked (TOML/argument values) and parsed (environment text)."""

    @property
    def allowed(self) -> str:
        """What is allowed, as a clause: "expected an integer from 1 to 256"."""
        ...

    def check(self, value: Any) -> Any:
        """Return the value (normalised) or raise :class:`_Invalid`."""
        ...

    def parse(self, text: str) -> Any:
        """Parse environment-variable text, then check it."""
        ...


@dataclass(frozen=True, slots=True)
class Int:
    low: int
    high: int | None = None
    allowed_text: str = ""

    @property
    def allowed(self) -> str:
        if self.allowed_text:
            return self.allowed_text
        if self.high is None:
            return f"expected an integer >= {self.low}"
        return f"expected an integer from {self.low} to {self.high}"

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"is not an integer: {self.allowed}")
        if value < self.low or (self.high is not None and value > self.high):
            raise _Invalid(f"is out of range: {self.allowed}")
        return value

    def parse(self, text: str) -> int:
        try:
            value = int(text.strip(), 10)
        except ValueError:
            raise _Invalid(f"is not an integer: {self.allowed}") from None
        return self.check(value)


@dataclass(frozen=True, slots=True)
class Float:
    low: float
    high: float | None = None

    @property
    def allowed(self) -> str:
        if self.high is None:
            return f"expected a number >= {self.low:g}"
        return f"expected a number from {self.low:g} to {self.high:g}"

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _Invalid(f"is not a number: {self.allowed}")
        if math.isnan(value) or value < self.low or (self.high is not None and value > self.high):
            raise _Invalid(f"is out of range: {self.allowed}")
        return float(value)

    def parse(self, text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise _Invalid(f"is not a number: {self.allowed}") from None
        return self.check(value)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True, slots=True)
class Bool:
    @property
    def allowed(self) -> str:
        return "expected true or false"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _Invalid(f"is not a boolean: {self.allowed}")
        return value

    def parse(self, text: str) -> bool:
        word = text.strip().lower()
        if word in _TRUE or word in _FALSE:
            return word in _TRUE
        raise _Invalid("is not a boolean: expected true/false, yes/no, on/off or 1/0")


@dataclass(frozen=True, slots=True)
class Str:
    """A string; ``empty_ok`` for prefixes; ``pattern`` for names with a fixed alphabet."""

    empty_ok: bool = False
    pattern: str = ""
    pattern_text: str = ""

    @property
    def allowed(self) -> str:
        return self.pattern_text or (
            "expected a string" if self.empty_ok else "expected a non-empty string"
        )

    def check(self, value: Any) -> str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise _Invalid(f"is not a string: {self.allowed}")
        if not value and not self.empty_ok:
            raise _Invalid(f"is empty: {self.allowed}")
        if self.pattern and value and not re.fullmatch(self.pattern, value):
            raise _Invalid(f"is not allowed: {self.allowed}")
        return value

    def parse(self, text: str) -> str:
        return self.check(text)


@dataclass(frozen=True, slots=True)
class Choice:
    values: tuple[str, ...]

    @property
    def allowed(self) -> str:
        return "expected one of " + ", ".join(json.dumps(v) for v in self.values)

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _Invalid(f"is not a string: {self.allowed}")
        if value not in self.values:
            raise _Invalid(f"is not allowed: {_did_you_mean(value, self.values)}{self.allowed}")
        return value

    def parse(self, text: str) -> str:
        return self.check(text.strip())


_SIZE = re.compile(r"^\s*(\d+)\s*([KMG]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1,
    "kb": 1000,
    "kib": _KiB,
    "mb": 1000**2,
    "mib": _MiB,
    "gb": 1000**3,
    "gib": _GiB,
}


@dataclass(frozen=True, slots=True)
class Size:
    """A byte count: an integer, or a string with a unit ("64KiB", "16MiB", "1GB")."""

    low: int
    high: int

    @property
    def allowed(self) -> str:
        return f'expected a size from {_human(self.low)} to {_human(self.high)} (bytes, or a string such as "4MiB")'

    def check(self, value: Any) -> int:
        if isinstance(value, str):
            match = _SIZE.match(value)
            if not match:
                raise _Invalid(f"is not a size: {self.allowed}")
            value = int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]
        elif isinstance(value, bool) or not isinstance(value, int):
            raise _Invalid(f"is not a size: {self.allowed}")
        if not self.low <= value <= self.high:
            raise _Invalid(f"is out of range: {self.allowed}")
        return value

    def parse(self, text: str) -> int:
        return self.check(text)


@dataclass(frozen=True, slots=True)
class StoreLocation:
    """A store location (path or URL); the scheme is checked, no SDK is imported."""

    @property
    def allowed(self) -> str:
        return "expected a path or a URL such as s3://bucket/prefix"

    def check(self, value: Any) -> str:
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise _Invalid(f"is not a string: {self.allowed}")
        try:
            parse_location(value)
        except ConfigError as exc:
            raise _Invalid(f"is not a store location: {exc}") from None
        return value

    def parse(self, text: str) -> str:
        return self.check(text)


def _human(n: int) -> str:
    for unit, size in (("GiB", _GiB), ("MiB", _MiB), ("KiB", _KiB)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}B"


def _did_you_mean(word: str, candidates: Any) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean {json.dumps(match[0])}? " if match else ""


# -- the schema: every key, once ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key: its kind, default, description and environment variable (if any)."""

    kind: Kind
    default: Any
    doc: str
    env: str | None = None


_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"

#: Section -> key -> Key. ``remote.*`` stands for every ``[remote.<name>]`` table.
SCHEMA: dict[str, dict[str, Key]] = {
    "storage": {
        "backend": Key(Choice(BACKEND_NAMES), "filesystem", "where objects live"),
        "path": Key(
            Str(),
            DEFAULT_STORAGE_DIR,
            "store folder (filesystem, rocksdb) or memory:// name",
            env="TALARIA_STORAGE_DIR",
        ),
        "compression": Key(Choice(tuple(CODECS)), "zstd", "codec for new chunks"),
        "compression_level": Key(
            Int(
                ZSTD_MIN_LEVEL, ZSTD_MAX_LEVEL, f"zstd levels are {ZSTD_MIN_LEVEL}-{ZSTD_MAX_LEVEL}"
            ),
            DEFAULT_ZSTD_LEVEL,
            "zstd level; not allowed with the level-less codecs",
            env="TALARIA_COMPRESSION_LEVEL",
        ),
        "threads": Key(
            Int(1, 256),
            DEFAULT_THREADS,
            "worker threads for I/O and compression",
            env="TALARIA_STORAGE_THREADS",
        ),
        "freshen_after_seconds": Key(
            Int(0, 86_400),
            int(FRESHEN_AFTER_SECONDS),
            "age past which a re-used object is freshened for gc's grace period",
            env="TALARIA_FRESHEN_AFTER_SECONDS",
        ),
    },
    "storage.s3": {
        "bucket": Key(
            Str(pattern=r"[^/]+", pattern_text="expected a bucket name without '/'"),
            None,
            "S3 bucket",
            env="TALARIA_S3_BUCKET",
        ),
        "prefix": Key(Str(empty_ok=True), None, "key prefix inside the bucket (default: none)"),
    },
    "storage.gcs": {
        "bucket": Key(
            Str(pattern=r"[^/]+", pattern_text="expected a bucket name without '/'"),
            None,
            "GCS bucket",
        ),
        "prefix": Key(Str(empty_ok=True), None, "key prefix inside the bucket (default: none)"),
        "project": Key(
            Str(), None, "Google Cloud project (passed to the backend)", env="TALARIA_GCS_PROJECT"
        ),
    },
    "storage.azure": {
        "container": Key(
            Str(pattern=r"[^/]+", pattern_text="expected a container name without '/'"),
            None,
            "Azure Blob container",
            env="TALARIA_AZURE_CONTAINER",
        ),
        "prefix": Key(
            Str(empty_ok=True), None, "blob name prefix inside the container (default: none)"
        ),
    },
    "storage.rocksdb": {},
    "cache": {
        "enabled": Key(Bool(), True, "keep a local copy of objects read from a remote store"),
        "size_mb": Key(
            Int(1, 1 << 20), 1024, "cache size limit in MiB", env="TALARIA_CACHE_SIZE_MB"
        ),
        "ttl_seconds": Key(
            Int(0),
            0,
            "seconds a ref read from a remote may be reused (objects never expire: they are "
            "immutable); 0 = refs always read from the remote, so new versions are seen at once",
        ),
        "dir": Key(Str(), DEFAULT_CACHE_DIR, "cache folder", env="TALARIA_CACHE_DIR"),
    },
    "index": {
        "type": Key(
            Choice(("memory", "sqlite", "rocksdb")), "rocksdb", "lookup index implementation"
        ),
    },
    "optimization": {
        "auto_optimize": Key(Bool(), False, "run the optimizer's default strategies after each import"),
        "deduplication": Key(Bool(), True, "refer to sequences the store already holds instead of storing them again"),
        "min_chunk_size": Key(Size(_KiB, _GiB), 1 * _MiB, "smallest chunk the chunker cuts"),
        "max_chunk_size": Key(Size(_KiB, _GiB), 16 * _MiB, "largest chunk the chunker cuts"),
    },
    "remote": {
        "default": Key(
            Str(pattern=_NAME, pattern_text="expected the name of a [remote.<name>] table"),
            None,
            "remote used when none is named",
        ),
    },
    "remote.*": {
        "location": Key(StoreLocation(), None, "the remote store's path or URL"),
    },
}

#: Environment variable -> (section, key); derived from the schema so it cannot drift.
ENVIRONMENT: dict[str, tuple[str, str]] = {
    key.env: (section, name)
    for section, keys in SCHEMA.items()
    for name, key in keys.items()
    if key.env
}

#: Bare keyword overrides accepted by :func:`load_config` (all [storage] keys but ``path``; the
#: storage path is given as ``location=``, which also names the backend).
_BARE_OVERRIDES = ("backend", "compression", "compression_level", "threads")
_TOP_SECTIONS = ("storage", "cache", "index", "optimization", "remote")


# -- the frozen result --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """``[storage]``: the backend, its location and the codec for new chunks."""

    backend: str
    path: str
    compression: str
    compression_level: int | None
    threads: int
    #: Age (seconds) past which a writer freshens an object it re-uses (``Store.freshen_after``).
    freshen_after_seconds: int = int(FRESHEN_AFTER_SECONDS)
    #: Backend sub-tables as merged, e.g. ``backends["s3"] == {"bucket": ..., "endpoint_url": ...}``.
    backends: Mapping[str, Mapping[str, Any]] = field(
        default_factory=lambda: types.MappingProxyType({})
    )


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """``[cache]``: the local cache of remote chunks."""

    enabled: bool
    size_mb: int
    ttl_seconds: int
    dir: str


#: Keys earlier releases accepted, and why they are gone (a file that still sets one gets this).
REMOVED_KEYS = {
    ("index", "rebuild_interval_hours"): (
        "look-ups read the look-up table each version stores at import, and the local index "
        "(for versions imported before it) is rebuilt whenever it is stale, so there is nothing to "
        "rebuild on a schedule"
    ),
}


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """``[index]``: the rebuildable lookup index."""

    type: str


@dataclass(frozen=True, slots=True)
class OptimizationSettings:
    """``[optimization]``: chunking bounds and background optimisation."""

    auto_optimize: bool
    deduplication: bool
    min_chunk_size: int
    max_chunk_size: int


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    """``[remote]``: named remote stores and the default one."""

    default: str | None = None
    locations: Mapping[str, str] = field(default_factory=lambda: types.MappingProxyType({}))


@dataclass(frozen=True, slots=True)
class StorageConfig:
    """A validated configuration. Build it with :func:`load_config` or :func:`config_for_location`."""

    storage: StorageSettings
    cache: CacheSettings
    index: IndexSettings
    optimization: OptimizationSettings
    remotes: RemoteSettings = field(default_factory=RemoteSettings)
    #: The config file read, if any (for messages).
    source: str | None = None

    @property
    def location(self) -> str:
        """The store location for :func:`talaria_storage.storage.registry.open_backend`."""
        s = self.storage
        if s.backend == "filesystem":
            return s.path if "://" not in s.path else "file://" + quote(s.path)
        if s.backend == "memory":
            return f"memory://{s.path}"
        if s.backend == "rocksdb":
            return "rocksdb://" + quote(s.path)
        table = s.backends.get(s.backend, {})
        bucket = table[_BUCKET_KEY[s.backend]]
        prefix = str(table.get("prefix", "")).strip("/")
        scheme = _URL_SCHEME[s.backend]
        return f"{scheme}://{bucket}/{quote(prefix)}" if prefix else f"{scheme}://{bucket}"

    @property
    def threads(self) -> int:
        """Worker threads (``[storage] threads``)."""
        return self.storage.threads

    @property
    def backend_options(self) -> dict[str, Any]:
        """Settings for the backend class (its sub-table without the keys that form the location)."""
        table = self.storage.backends.get(self.storage.backend, {})
        return {k: v for k, v in table.items() if k not in ("bucket", "container", "prefix")}

    @property
    def codec_spec(self) -> tuple[str, int | None]:
        """(codec name, level) for :func:`talaria_storage.storage.codecs.codec_from_config`; level is None unless zstd."""
        return self.storage.compression, self.storage.compression_level

    def remote(self, name_or_location: str | None = None) -> str:
        """Resolve a remote name (or None for ``[remote] default``) to a location.

        A string that is not a configured name is taken as a location when it
        looks like one (has ``://``, a ``/``, or starts with ``.`` or ``~``);
        otherwise it is an unknown name, and the error lists the known ones.
        """
        remotes = self.remotes
        if not name_or_location:
            if remotes.default is None:
                raise ConfigError(
                    "no remote named and no [remote] default set: name a remote or a location, "
                    "or set [remote] default in storage.toml"
                )
            return remotes.locations[remotes.default]
        if name_or_location in remotes.locations:
            return remotes.locations[name_or_location]
        text = name_or_location
        if "://" in text or "/" in text or os.sep in text or text.startswith((".", "~")):
            try:
                return _absolute_location(StoreLocation().check(text), None)
            except _Invalid as exc:
                raise ConfigError(f"remote '{text}' {exc.reason}") from None
        known = ", ".join(sorted(remotes.locations)) or "none configured"
        raise ConfigError(
            f"unknown remote '{text}': {_did_you_mean(text, remotes.locations)}known remotes: {known} "
            "(a path must contain '/' or start with '.' or '~')"
        )

    def as_dict(self) -> dict[str, Any]:
        """The configuration as plain TOML-shaped data (for ``init --json`` and debugging)."""
        storage = {k: getattr(self.storage, k) for k in SCHEMA["storage"]}
        for name, table in self.storage.backends.items():
            storage[name] = dict(table)
        remote: dict[str, Any] = {
            name: {"location": loc} for name, loc in self.remotes.locations.items()
        }
        if self.remotes.default is not None:
            remote["default"] = self.remotes.default
        return {
            "storage": storage,
            "cache": {k: getattr(self.cache, k) for k in SCHEMA["cache"]},
            "index": {k: getattr(self.index, k) for k in SCHEMA["index"]},
            "optimization": {k: getattr(self.optimization, k) for k in SCHEMA["optimization"]},
            "remote": remote,
        }


# -- loading ------------------------------------------------------------------------------------

_DEFAULT, _FILE, _ENV, _ARGUMENT = range(4)


@dataclass(frozen=True, slots=True)
class _Setting:
    """A validated value and where it came from (for precedence and messages)."""

    value: Any
    where: str  # "storage.toml", "environment variable TALARIA_X", "argument", "default"
    layer: int


_Settings = dict[tuple[str, str], _Setting]


def _show(value: Any) -> str:
    """A value as it would be written in TOML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, os.PathLike)):
        return json.dumps(os.fspath(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return f"<{type(value).__name__}>"


def _table_name(section: str) -> str:
    return f"[{section}]"


def _schema_for(section: str) -> dict[str, Key]:
    return SCHEMA["remote.*"] if section.startswith("remote.") else SCHEMA[section]


class _Layer:
    """Collects the validated settings of one source (the file, the environment or the arguments)."""

    def __init__(self, where: str, layer: int) -> None:
        self.where = where
        self.layer = layer
        self.settings: _Settings = {}

    def error(self, message: str) -> ConfigError:
        return ConfigError(f"{self.where}: {message}")

    def set(self, section: str, name: str, value: Any) -> None:
        """Validate ``value`` for ``[section] name`` and record it."""
        keys = _schema_for(section)
        key = keys.get(name)
        if key is None:
            backend = section.split(".", 1)[1] if section.startswith("storage.") else None
            if backend is None:
                raise self.unknown(section, name, keys)
            value = self.backend_option(backend, section, name, value, keys)
        else:
            try:
                value = key.kind.check(value)
            except _Invalid as exc:
                raise self.error(
                    f"{_table_name(section)} {name} = {_show(value)} {exc.reason}"
                ) from None
        self.settings[(section, name)] = _Setting(value, self.where, self.layer)

    def unknown(self, section: str, name: str, known: Any) -> ConfigError:
        removed = REMOVED_KEYS.get((section, name))
        if removed is not None:
            return self.error(f"{_table_name(section)} {name} was removed: {removed}; delete the line")
        listed = ", ".join(sorted(set(known))) or "none"
        return self.error(
            f"{_table_name(section)} unknown key '{name}': {_did_you_mean(name, known)}known keys: {listed}"
        )

    def backend_option(
        self, backend: str, section: str, name: str, value: Any, core: Mapping[str, Key]
    ) -> Any:
        """Check a key the backend class declares in ``OPTIONS`` (accepted as is when it cannot be imported)."""
        declared = _declared_options(backend)
        if declared is None:
            return value
        if name not in declared:
            raise self.unknown(section, name, [*core, *declared])
        expected = declared[name]
        ok = isinstance(value, expected) and not (isinstance(value, bool) and expected is not bool)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise self.error(
                f"{_table_name(section)} {name} = {_show(value)} has the wrong type: "
                f"expected {getattr(expected, '__name__', str(expected))}"
            )
        return value

    def walk(self, tree: Mapping[str, Any]) -> None:
        """Validate a TOML-shaped tree: ``{"storage": {...}, "cache": {...}, ...}``."""
        for section, table in tree.items():
            if section not in _TOP_SECTIONS:
                listed = ", ".join(f"[{s}]" for s in _TOP_SECTIONS)
                raise self.error(
                    f"unknown section [{section}]: {_did_you_mean(section, _TOP_SECTIONS)}sections are {listed}"
                )
            if not isinstance(table, Mapping):
                raise self.error(
                    f"{section} = {_show(table)} must be a table: write [{section}] and its keys below it"
                )
            for name, value in table.items():
                if section == "storage" and name in BACKEND_TABLES:
                    self.walk_table(f"storage.{name}", value)
                elif section == "remote" and name != "default":
                    if not re.fullmatch(_NAME, name):
                        raise self.error(
                            f"[remote.{name}] is not a valid remote name: use letters, digits, '.', '_' and '-'"
                        )
                    if not isinstance(value, Mapping):
                        raise self.error(
                            f'[remote] {name} = {_show(value)} must be a table: write [remote.{name}] location = "..."'
                        )
                    self.walk_table(f"remote.{name}", value)
                    if (f"remote.{name}", "location") not in self.settings:
                        raise self.error(
                            f'[remote.{name}] has no location: add location = "s3://bucket/prefix" or a path'
                        )
                elif section == "storage" and name in BACKEND_NAMES:
                    raise self.error(
                        f"[storage.{name}] is not a settings table: the {name} backend has no options"
                    )
                else:
                    self.set(section, name, value)

    def walk_table(self, section: str, table: Any) -> None:
        if not isinstance(table, Mapping):
            raise self.error(f"{_table_name(section)} must be a table, got {_show(table)}")
        for name, value in table.items():
            self.set(section, name, value)

    def set_location(self, location: Any) -> None:
        """An explicit location names the backend and everything that places the store."""
        try:
            text = StoreLocation().check(location)
        except _Invalid as exc:
            raise self.error(f"location {_show(location)} {exc.reason}") from None
        loc = parse_location(text)
        if loc.faults:  # the config cannot carry them: refuse rather than drop them silently
            raise self.error(
                f"location {_show(location)}: 'faults+' drills are opened with open_store(location) "
                "or as a sync remote, not as the configured store"
            )
        backend = _BACKEND_OF_SCHEME[loc.scheme]
        self.set("storage", "backend", backend)
        if backend in ("filesystem", "rocksdb"):
            self.set("storage", "path", loc.path)
        elif backend == "memory":
            self.settings[("storage", "path")] = _Setting(
                loc.netloc or loc.prefix, self.where, self.layer
            )
        else:
            self.set(f"storage.{backend}", _BUCKET_KEY[backend], loc.netloc)
            self.set(f"storage.{backend}", "prefix", loc.prefix)


@functools.cache
def _declared_options(backend: str) -> Mapping[str, type] | None:
    """The backend class's ``OPTIONS``, or None when the class cannot be imported or declares none."""
    spec = BACKENDS[ALIASES.get(backend, backend)]
    module_name, class_name = spec.target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    options = getattr(getattr(module, class_name, None), "OPTIONS", None)
    return options if isinstance(options, Mapping) else None


def _read_file(path: Path, where: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"config file '{where}' not found") from None
    except IsADirectoryError:
        raise ConfigError(f"config file '{where}' is a folder, not a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file '{where}': {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: invalid TOML: not UTF-8 ({exc.reason})") from None


def _env_layer(env: Mapping[str, str]) -> _Layer:
    layer = _Layer("environment", _ENV)
    for var, (section, name) in ENVIRONMENT.items():
        text = env.get(var)
        if not text:
            continue
        key = SCHEMA[section][name]
        try:
            value = key.kind.parse(text)
        except _Invalid as exc:
            raise ConfigError(
                f"environment variable {var}: {_table_name(section)} {name} = {json.dumps(text)} {exc.reason}"
            ) from None
        layer.settings[(section, name)] = _Setting(value, f"environment variable {var}", _ENV)
    return layer


def _argument_layer(overrides: Mapping[str, Any]) -> _Layer:
    layer = _Layer("argument", _ARGUMENT)
    tree: dict[str, Any] = {}
    location = None
    for name, value in overrides.items():
        if value is None:
            continue
        if name == "location":
            location = value
        elif name in _BARE_OVERRIDES:
            tree.setdefault("storage", {})[name] = value
        elif name in _TOP_SECTIONS:
            if not isinstance(value, Mapping):
                raise ConfigError(
                    f"argument {name}= must be a mapping of [{name}] keys, got {_show(value)}"
                )
            # Merge with bare storage overrides rather than replace them.
            tree.setdefault(name, {}).update(value)
        else:
            known = ("location", *_BARE_OVERRIDES, *_TOP_SECTIONS)
            raise ConfigError(
                f"argument {name}= is not a setting: {_did_you_mean(name, known)}"
                f"use one of {', '.join(known)} (sections take a mapping of their keys)"
            )
    layer.walk(tree)
    if location is not None:
        layer.set_location(location)
    return layer


def _defaults() -> _Settings:
    return {
        (section, name): _Setting(key.default, "default", _DEFAULT)
        for section, keys in SCHEMA.items()
        if section != "remote.*"
        for name, key in keys.items()
        if key.default is not None
    }


def _absolute_location(text: str, base: Path | None) -> str:
    """Make a filesystem path absolute (relative to ``base`` when given); URLs are left alone."""
    if "://" in text:
        return text
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = (base / path) if base is not None else path.absolute()
    return str(path)


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> StorageConfig:
    """Load ``path`` (if given), then the environment, then ``overrides``, and validate the result.

    ``env`` defaults to ``os.environ``. ``overrides`` take the highest
    precedence; ``None`` values are ignored so callers can pass optional
    arguments straight through. Accepted overrides:

    * ``location="s3://bucket/prefix"`` (or a path, ``memory://``, ...): the
      backend and where the store is;
    * ``backend``, ``compression``, ``compression_level``, ``threads``: [storage] keys;
    * ``storage={...}``, ``cache={...}``, ``index={...}``, ``optimization={...}``,
      ``remote={...}``: mappings shaped like the TOML tables.

    Raises :class:`ConfigError` (one line, naming the source and key) for anything invalid.
    """
    env = os.environ if env is None else env
    settings = _defaults()
    file_dir: Path | None = None
    where = None
    if path is not None:
        where = os.fspath(path)
        file_path = Path(where).expanduser()
        file_dir = file_path.absolute().parent
        file_layer = _Layer(where, _FILE)
        file_layer.walk(_read_file(file_path, where))
        settings.update(file_layer.settings)
    settings.update(_env_layer(env).settings)
    settings.update(_argument_layer(overrides).settings)
    return _build(settings, file_dir, where)


def config_for_location(
    location: str | os.PathLike[str],
    *,
    config_path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> StorageConfig:
    """The configuration of the store at ``location`` (a path or URL), which beats any file or variable.

    Other settings (codec, cache, backend options...) still come from
    ``config_path``, the environment and defaults, in that order of precedence.
    """
    return load_config(config_path, env=env, location=location, **overrides)


def _build(settings: _Settings, file_dir: Path | None, source: str | None) -> StorageConfig:
    """Cross-check the merged settings and freeze them."""

    def value(section: str, name: str) -> Any:
        found = settings.get((section, name))
        return None if found is None else found.value

    def resolved(section: str, name: str) -> str:
        found = settings[(section, name)]
        return _absolute_location(found.value, file_dir if found.layer == _FILE else None)

    # compression_level only applies to zstd (see the module docstring for the rule).
    codec = settings[("storage", "compression")]
    level = settings[("storage", "compression_level")]
    compression_level: int | None = level.value
    if codec.value != "zstd":
        if level.layer >= codec.layer and level.layer != _ENV and level.layer != _DEFAULT:
            raise ConfigError(
                f"{level.where}: [storage] compression_level = {level.value} is not allowed with "
                f"compression = {_show(codec.value)}: only zstd has levels (remove compression_level)"
            )
        compression_level = None

    low = settings[("optimization", "min_chunk_size")]
    high = settings[("optimization", "max_chunk_size")]
    if low.value > high.value:
        other = "" if high.where == low.where else f" (from {high.where})"
        raise ConfigError(
            f"{low.where}: [optimization] min_chunk_size = {low.value} is larger than "
            f"max_chunk_size = {high.value}{other}: min_chunk_size must be <= max_chunk_size"
        )

    backend = settings[("storage", "backend")]
    if backend.value in CLOUD_BACKENDS:
        bucket_key = _BUCKET_KEY[backend.value]
        if value(f"storage.{backend.value}", bucket_key) is None:
            var = SCHEMA[f"storage.{backend.value}"][bucket_key].env
            hint = f" or {var}" if var else ""
            raise ConfigError(
                f"{backend.where}: [storage] backend = {_show(backend.value)} needs a {bucket_key}: "
                f"set [storage.{backend.value}] {bucket_key}{hint}, or give a location such as "
                f"{_URL_SCHEME[backend.value]}://{bucket_key}/prefix"
            )

    if backend.value in ("filesystem", "rocksdb"):
        storage_path = resolved("storage", "path")
    elif backend.value == "memory":
        path_setting = settings[("storage", "path")]
        storage_path = "" if path_setting.layer == _DEFAULT else path_setting.value
    else:
        storage_path = value("storage", "path")

    backends: dict[str, dict[str, Any]] = {}
    remotes: dict[str, str] = {}
    for (section, name), setting in settings.items():
        if section.startswith("storage."):
            backends.setdefault(section.split(".", 1)[1], {})[name] = setting.value
        elif section.startswith("remote."):
            remotes[section.split(".", 1)[1]] = resolved(section, name)

    default_remote = settings.get(("remote", "default"))
    if default_remote is not None and default_remote.value not in remotes:
        known = ", ".join(sorted(remotes)) or "none configured"
        raise ConfigError(
            f"{default_remote.where}: [remote] default = {_show(default_remote.value)} names no remote: "
            f"{_did_you_mean(default_remote.value, remotes)}known remotes: {known}"
        )

    return StorageConfig(
        storage=StorageSettings(
            backend=backend.value,
            path=storage_path,
            compression=codec.value,
            compression_level=compression_level,
            threads=value("storage", "threads"),
            freshen_after_seconds=value("storage", "freshen_after_seconds"),
            backends=types.MappingProxyType(
                {k: types.MappingProxyType(v) for k, v in backends.items()}
            ),
        ),
        cache=CacheSettings(
            enabled=value("cache", "enabled"),
            size_mb=value("cache", "size_mb"),
            ttl_seconds=value("cache", "ttl_seconds"),
            dir=resolved("cache", "dir"),
        ),
        index=IndexSettings(**{name: value("index", name) for name in SCHEMA["index"]}),
        optimization=OptimizationSettings(
            **{name: value("optimization", name) for name in SCHEMA["optimization"]}
        ),
        remotes=RemoteSettings(
            default=None if default_remote is None else default_remote.value,
            locations=types.MappingProxyType(remotes),
        ),
        source=source,
    )
