"""``talaria-storage state list|clean``: the state of resumable operations from the command line."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from talaria_storage.backends.filesystem import FilesystemBackend
from typer.testing import CliRunner, Result

from talaria_storage.cli.common import EXIT_FAILURE, EXIT_USAGE
from talaria_storage.cli.main import app
from talaria_storage.config.settings import ENVIRONMENT
from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.core.types import OperationType, SourceInfo
from talaria_storage.storage.processing import ProcessingStates

MANIFEST = SHA256Hash.compute(b"manifest")


@pytest.fixture(autouse=True)
def _clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    result = cli("--store", str(path), "init")
    assert result.exit_code == 0, result.output
    return path


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def start(store: Path, version: str, completed: int = 0) -> str:
    """An interrupted sync of ``uniprot@version`` with ``completed`` objects done; returns its id."""
    states = ProcessingStates(FilesystemBackend(store))
    state = states.start(
        OperationType.SYNC_PUSH,
        SourceInfo(database="uniprot", source="s3://bucket/db"),
        manifest_hash=MANIFEST,
        manifest_version=version,
        total_chunks=10,
    )
    states.record_completed(state.operation_id, [SHA256Hash.compute(bytes([i])) for i in range(completed)])
    return state.operation_id


def make_stale(store: Path, op_id: str, hours: float) -> None:
    when = time.time() - hours * 3600
    for path in (store / "state").glob(f"{op_id}*"):
        os.utime(path, (when, when))


def listed_ids(store: Path) -> list[str]:
    result = cli("--store", str(store), "state", "list", "--json")
    assert result.exit_code == 0, result.output
    return [entry["operation_id"] for entry in json.loads(result.stdout)]


def test_list_says_so_when_nothing_is_unfinished(store_dir: Path) -> None:
    result = cli("--store", str(store_dir), "state", "list")
    assert result.exit_code == 0 and "no unfinished operations" in result.stdout


def test_list_json_reports_each_unfinished_operation(store_dir: Path) -> None:
    op_id = start(store_dir, "v1", completed=3)
    result = cli("--store", str(store_dir), "state", "list", "--json")
    assert result.exit_code == 0, result.output
    (entry,) = json.loads(result.stdout)
    assert entry["operation_id"] == op_id
    assert (entry["operation"], entry["database"], entry["manifest_version"]) == ("sync-push", "uniprot", "v1")
    assert (entry["completed"], entry["total"], entry["manifest_hash"]) == (3, 10, MANIFEST.to_hex())


def test_list_shows_the_whole_operation_id_in_its_table(store_dir: Path) -> None:
    op_id = start(store_dir, "v1", completed=3)
    result = cli("--store", str(store_dir), "state", "list")
    assert result.exit_code == 0, result.output
    assert any(op_id in line for line in result.stdout.splitlines())
    assert "3/10" in result.stdout


def test_clean_keeps_recent_states_by_default(store_dir: Path) -> None:
    op_id = start(store_dir, "v1")
    result = cli("--store", str(store_dir), "state", "clean")
    assert result.exit_code == 0, result.output
    assert "0 state(s) removed" in result.stdout
    assert listed_ids(store_dir) == [op_id]


def test_clean_removes_states_older_than_a_week_by_default(store_dir: Path) -> None:
    stale, fresh = start(store_dir, "v1"), start(store_dir, "v2")
    make_stale(store_dir, stale, hours=200)
    result = cli("--store", str(store_dir), "state", "clean")
    assert result.exit_code == 0 and f"removed {stale}" in result.stdout
    assert listed_ids(store_dir) == [fresh]


def test_clean_older_than_removes_only_states_idle_that_long(store_dir: Path) -> None:
    stale, fresh = start(store_dir, "v1", completed=2), start(store_dir, "v2")
    make_stale(store_dir, stale, hours=3)
    result = cli("--store", str(store_dir), "state", "clean", "--older-than", "2", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["removed"] == [stale]
    assert listed_ids(store_dir) == [fresh]
    assert sorted(p.name for p in (store_dir / "state").iterdir()) == [fresh]


def test_clean_all_removes_every_state(store_dir: Path) -> None:
    start(store_dir, "v1", completed=1)
    start(store_dir, "v2")
    result = cli("--store", str(store_dir), "state", "clean", "--all")
    assert result.exit_code == 0 and "2 state(s) removed" in result.stdout
    assert listed_ids(store_dir) == []


def test_clean_refuses_all_together_with_older_than(store_dir: Path) -> None:
    result = cli("--store", str(store_dir), "state", "clean", "--all", "--older-than", "5")
    assert result.exit_code == EXIT_USAGE
    assert "not both" in result.output


def test_clean_refuses_a_negative_age(store_dir: Path) -> None:
    result = cli("--store", str(store_dir), "state", "clean", "--older-than", "-1")
    assert result.exit_code == EXIT_USAGE


def test_list_on_a_location_without_a_store_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = cli("--store", str(tmp_path / "empty"), "state", "list")
    assert result.exit_code == EXIT_FAILURE
    assert result.stderr.startswith("error: no store at") and len(result.stderr.splitlines()) == 1


def test_clean_operation_removes_that_one_state_with_its_notes(store_dir: Path) -> None:
    kept, dropped = start(store_dir, "v1", completed=2), start(store_dir, "v2", completed=3)
    ProcessingStates(FilesystemBackend(store_dir)).put_note(dropped, "executor", b"dask")
    result = cli("--store", str(store_dir), "state", "clean", "--operation", dropped)
    assert result.exit_code == 0, result.output
    assert f"removed {dropped}" in result.output
    remaining = list((store_dir / "state").iterdir())
    assert remaining and all(path.name.startswith(kept) for path in remaining)


def test_clean_operation_with_all_is_a_usage_error(store_dir: Path) -> None:
    op_id = start(store_dir, "v1")
    result = cli("--store", str(store_dir), "state", "clean", "--operation", op_id, "--all")
    assert result.exit_code == EXIT_USAGE
    assert "give --operation alone" in result.output
