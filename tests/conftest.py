"""Shared fixtures: fresh stores on every backend, shared data location."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the project; tests that need it skip with a reason where it is absent."""
    if not SHARED_DATA.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"shared data folder {SHARED_DATA} is missing under CI")
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (a user's clone has no ../shared)")
    return SHARED_DATA
