"""open_store: the one way from a location, a config file or a config object to an open :class:`Store`.

It sits in the config layer because it is where the validated settings
(:mod:`talaria_storage.config.settings`) meet the storage layer's parts: the
backend the location names, the codec and threads the settings choose.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from talaria_storage.config.settings import StorageConfig, config_for_location, load_config
from talaria_storage.storage.backend import Backend
from talaria_storage.storage.cache import CachedBackend, ObjectCache
from talaria_storage.storage.codecs import codec_from_config
from talaria_storage.storage.registry import open_backend, split_faults, with_faults
from talaria_storage.storage.store import Store


def open_store(
    location_or_config: str | Path | StorageConfig | None = None,
    *,
    config_path: str | Path | None = None,
    create: bool = True,
    **overrides: Any,
) -> Store:
    """Open (and by default create) the store a location, a config file or a config object names.

    ``location_or_config`` may be a path or URL (``./store``, ``s3://bucket/db``),
    a :class:`StorageConfig`, a path to a ``.toml`` file, or None for the
    configured default (``TALARIA_STORAGE_DIR`` or ``~/.talaria/storage``).
    ``overrides`` are config keys of ``[storage]`` (``compression``,
    ``compression_level``, ``threads``...) and win over the environment and
    the file. With ``create=False`` a location with no store is an error.
    """
    faults = None  # a "faults+<location>?..." drill wraps the backend; the config sees <location>
    if isinstance(location_or_config, str):
        location_or_config, faults = split_faults(location_or_config)
    if isinstance(location_or_config, StorageConfig):
        config = location_or_config
    elif location_or_config is None:
        config = load_config(config_path, **overrides)
    elif str(location_or_config).endswith(".toml") and Path(location_or_config).is_file():
        config = load_config(location_or_config, **overrides)
    else:
        config = config_for_location(str(location_or_config), config_path=config_path, **overrides)
    options = dict(config.backend_options)
    if not create and config.location.startswith(("/", "file://")):
        options["create"] = False  # a read-only open of a wrong path must not leave a folder behind
    backend = open_backend(config.location, options)
    if faults is not None:
        backend = with_faults(backend, faults)
    backend = _cached(backend, config)
    # The writer's configured codec compresses new chunks; every frame names its own codec,
    # so a store written with several codecs reads back without any setting.
    name, level = config.codec_spec
    store = Store(
        backend,
        codec_from_config(name, level),
        threads=config.threads,
        config=config,
        freshen_after=config.storage.freshen_after_seconds,
    )
    try:
        if create:
            store.initialise()
        else:
            store.require_initialised()
    except BaseException:
        store.close()
        raise
    return store


def _cached(backend: Backend, config: StorageConfig) -> Backend:
    """``backend`` read through the ``[cache]`` of its location when it is remote and caching is on.

    Each remote location has its own folder under ``[cache] dir`` (named by a hash of the
    location), so two buckets never share keys.
    """
    if backend.is_local or not config.cache.enabled:
        return backend
    folder = Path(config.cache.dir).expanduser() / hashlib.sha256(config.location.encode()).hexdigest()[:16]
    cache = ObjectCache(folder, config.cache.size_mb << 20, config.cache.ttl_seconds)
    return CachedBackend(backend, cache) if cache.enabled else backend
