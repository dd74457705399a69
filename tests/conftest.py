"""Shared fixtures: fresh stores on every backend, shared data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Session emulators (moto, fake-gcs-server, Azurite), fresh buckets and fresh backends:
# s3_endpoint, gcs_endpoint, azurite_connection_string, s3_bucket, gcs_bucket,
# azure_container, s3_backend, gcs_backend, azure_backend, rocksdb_backend.
pytest_plugins = ["talaria_storage.testing.emulators"]

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the project; tests that need it skip with a reason where it is absent."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared data folder {SHARED_DATA} is missing under CI")
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (a user's clone has no ../shared)")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _own_remote_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test reads remote stores through a cache folder of its own, never the user's ``~/.talaria``."""
    if "TALARIA_CACHE_DIR" not in os.environ:
        monkeypatch.setenv("TALARIA_CACHE_DIR", str(tmp_path_factory.mktemp("remote-cache")))
