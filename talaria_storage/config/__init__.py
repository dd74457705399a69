"""Configuration: ``storage.toml``, the ``TALARIA_*`` environment and explicit arguments, validated.

:mod:`.settings` turns them into one frozen
:class:`~talaria_storage.config.settings.StorageConfig` (every key, its kind,
default and precedence); :mod:`.open_store` opens the store a config names.

This layer sits *above* ``storage`` (DESIGN.md §2 lists it below): what it
validates is the storage layer's vocabulary -- codec names and zstd levels,
backend schemes and their options, location syntax -- so it imports them
rather than keeping a second copy that could drift.
"""

from talaria_storage.config.settings import (
    ENVIRONMENT,
    SCHEMA,
    StorageConfig,
    config_for_location,
    load_config,
)

__all__ = ["ENVIRONMENT", "SCHEMA", "StorageConfig", "config_for_location", "load_config"]
