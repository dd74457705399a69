"""``talaria-storage sync push|pull|status``: output, exit codes, remotes named in storage.toml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sync_data import export, fasta, import_version
from talaria_storage.backends.filesystem import FilesystemBackend
from typer.testing import CliRunner, Result

from talaria_storage.cli.common import EXIT_FAILURE, EXIT_USAGE
from talaria_storage.cli.main import app
from talaria_storage.config.settings import ENVIRONMENT
from talaria_storage.storage.store import Store

V1 = fasta(80, seed=51)
V2 = V1 + fasta(10, seed=52, first=4000)


@pytest.fixture(autouse=True)
def _clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TALARIA_* variable from the host, and `~` inside the test's folder."""
    for variable in ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def open_store(path: Path) -> Store:
    store = Store(FilesystemBackend(path))
    store.initialise()
    return store


@pytest.fixture
def local(tmp_path: Path) -> Path:
    """A filesystem store with database ``db``: v1, then v2 (HEAD)."""
    path = tmp_path / "local"
    with open_store(path) as store:
        import_version(store, "db", V1, "v1", tmp_path)
        import_version(store, "db", V2, "v2", tmp_path)
    return path


def test_push_json_reports_objects_bytes_and_refs(local: Path, tmp_path: Path) -> None:
    result = cli("--store", str(local), "sync", "push", str(tmp_path / "remote"), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["operation"] == "push"
    assert summary["objects_copied"] > 0 and summary["bytes_copied"] > 0
    assert summary["refs_updated"] == ["refs/db/v1", "refs/db/v2", "refs/db/HEAD"]
    assert {"objects_skipped", "retried", "duration_seconds"} <= set(summary)


def test_pull_into_a_new_store_exports_byte_for_byte(local: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    result = cli("--store", str(clone), "sync", "pull", str(local))
    assert result.exit_code == 0, result.output
    assert "refs/db/HEAD" in result.stdout
    with open_store(clone) as store:
        assert export(store, "db") == V2
        assert store.verify_all() == []


def test_an_up_to_date_push_says_so(local: Path, tmp_path: Path) -> None:
    remote = str(tmp_path / "remote")
    cli("--store", str(local), "sync", "push", remote)
    result = cli("--store", str(local), "sync", "push", remote)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("up to date with ")


def test_progress_is_plain_lines_on_stderr_when_not_a_terminal(local: Path, tmp_path: Path) -> None:
    result = cli("--store", str(local), "sync", "push", str(tmp_path / "remote"))
    assert "push db: " in result.stderr and "object(s) to copy" in result.stderr
    assert "push db: " not in result.stdout


def test_a_named_version_is_pushed_alone(local: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    result = cli("--store", str(local), "sync", "push", str(remote), "--database", "db@v1", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["refs_updated"] == ["refs/db/v1", "refs/db/HEAD"]
    with open_store(remote) as store:
        assert export(store, "db") == V1


def test_a_remote_named_in_storage_toml_is_found_by_name(local: Path, tmp_path: Path) -> None:
    config = tmp_path / "storage.toml"
    config.write_text('[remote.backup]\nlocation = "backup-store"\n')
    result = cli("--config", str(config), "--store", str(local), "sync", "push", "backup")
    assert result.exit_code == 0, result.output
    with open_store(tmp_path / "backup-store") as store:
        assert export(store, "db") == V2


def test_an_unknown_remote_name_is_a_usage_error_listing_the_known_ones(local: Path) -> None:
    result = cli("--store", str(local), "sync", "push", "nowhere")
    assert result.exit_code == EXIT_USAGE, result.output
    assert "unknown remote 'nowhere'" in result.stderr


def test_a_store_is_not_its_own_remote(local: Path) -> None:
    result = cli("--store", str(local), "sync", "push", str(local))
    assert result.exit_code == EXIT_FAILURE, result.output
    assert "is this store" in result.stderr


def test_a_diverged_remote_fails_naming_force_and_force_overwrites(local: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    other = tmp_path / "other"
    assert cli("--store", str(other), "sync", "pull", str(local), "-d", "db@v1").exit_code == 0
    with open_store(other) as store:
        import_version(store, "db", fasta(5, seed=53), "v2b", tmp_path)
    assert cli("--store", str(other), "sync", "push", str(remote)).exit_code == 0

    refused = cli("--store", str(local), "sync", "push", str(remote))
    assert refused.exit_code == EXIT_FAILURE
    assert refused.stderr.startswith("error: ref 'refs/db/HEAD'") and "--force" in refused.stderr
    forced = cli("--store", str(local), "sync", "push", str(remote), "--force")
    assert forced.exit_code == 0, forced.output
    with open_store(remote) as store:
        assert export(store, "db") == V2


def test_status_json_says_what_each_side_lacks_per_database(local: Path, tmp_path: Path) -> None:
    remote = str(tmp_path / "remote")
    cli("--store", str(local), "sync", "push", remote, "-d", "db@v1")
    result = cli("--store", str(local), "sync", "status", remote, "--json")
    assert result.exit_code == 0, result.output
    [db] = json.loads(result.stdout)["databases"]
    assert db["database"] == "db" and db["relation"] == "local-ahead"
    assert db["missing_remote_versions"] == ["v2"] and db["missing_local_versions"] == []
    assert db["missing_remote_objects"] > 0 and db["missing_local_objects"] == 0


def test_status_prints_a_table_of_databases(local: Path, tmp_path: Path) -> None:
    remote = str(tmp_path / "remote")
    cli("--store", str(local), "sync", "push", remote)
    result = cli("--store", str(local), "sync", "status", remote)
    assert result.exit_code == 0, result.output
    assert "db" in result.stdout and "in-sync" in result.stdout


def test_pulling_from_a_location_with_no_store_names_init(local: Path, tmp_path: Path) -> None:
    result = cli("--store", str(local), "sync", "pull", str(tmp_path / "empty"))
    assert result.exit_code == EXIT_FAILURE, result.output
    assert str(tmp_path / "empty") in result.stderr and "init" in result.stderr


def test_a_failed_pull_into_a_new_location_leaves_no_store_behind(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    result = cli("--store", str(clone), "sync", "pull", str(tmp_path / "empty"))
    assert result.exit_code == EXIT_FAILURE, result.output
    assert not clone.exists()
