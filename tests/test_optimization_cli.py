"""``talaria-storage optimize``: the prune-style table, JSON, the HTML report, auto_optimize after import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from optimization_data import import_releases, small_store, write_releases
from typer.testing import CliRunner

from talaria_storage.cli.common import EXIT_USAGE
from talaria_storage.cli.main import app
from talaria_storage.config.open_store import open_store
from talaria_storage.optimization.optimizer import StorageOptimizer
from talaria_storage.optimization.strategies import OptimizationStrategy as S

runner = CliRunner()


def _config(tmp_path: Path, store: Path, **optimization: str) -> Path:
    lines = [f'[storage]\npath = "{store}"\n[optimization]\nmin_chunk_size = "2KiB"\nmax_chunk_size = "16KiB"']
    lines += [f"{key} = {value}" for key, value in optimization.items()]
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "storage.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config naming a store that holds four releases imported with deduplication off."""
    store = small_store(tmp_path / "store", deduplication=False)
    import_releases(store, write_releases(tmp_path / "in", 4, records=150))
    store.close()
    return _config(tmp_path, tmp_path / "store")


def test_dry_run_prints_the_table_and_writes_nothing(config: Path, tmp_path: Path) -> None:
    before = sorted(p.name for p in (tmp_path / "store").rglob("*") if p.is_file() and ".index" not in p.parts)
    result = runner.invoke(app, ["--config", str(config), "optimize", "--dry-run", "--grace", "0"])
    assert result.exit_code == 0, result.output
    for column in ("used", "unused", "to repack", "to delete", "to keep", "saved"):
        assert column in result.output
    assert "deduplication" in result.output and "dry run" in result.output
    after = sorted(p.name for p in (tmp_path / "store").rglob("*") if p.is_file() and ".index" not in p.parts)
    assert after == before


def test_optimize_reports_a_clean_verify(config: Path) -> None:
    result = runner.invoke(app, ["--config", str(config), "optimize", "--grace", "0"])
    assert result.exit_code == 0, result.output
    assert "clean" in result.output


def test_json_gives_each_strategy_its_row(config: Path) -> None:
    result = runner.invoke(app, ["--config", str(config), "optimize", "--dry-run", "--json", "--strategy", "deduplication"])
    data = json.loads(result.output)
    assert [row["strategy"] for row in data["strategies"]] == ["deduplication"]
    assert data["dry_run"] and data["strategies"][0]["saved_bytes"] > 0


def test_analyze_writes_a_self_contained_html_report(config: Path, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = runner.invoke(app, ["--config", str(config), "optimize", "--analyze", "--report", str(page)])
    assert result.exit_code == 0, result.output
    text = page.read_text()
    assert text.count("<svg") >= 4 and "<script" not in text and "http" not in text.split("<svg", 1)[0]


def test_a_strategy_left_out_is_a_usage_error(config: Path) -> None:
    result = runner.invoke(app, ["--config", str(config), "optimize", "--strategy", "archival"])
    assert result.exit_code == EXIT_USAGE and "archival was left out" in result.output


def _import_with(tmp_path: Path, name: str, auto_optimize: str) -> tuple[str, int]:
    """Import two releases (deduplication off) through the CLI; the last output and what dedup could still save."""
    releases = write_releases(tmp_path / "in", 2, records=150)
    config = _config(tmp_path / name, tmp_path / name / "store", auto_optimize=auto_optimize, deduplication="false")
    for i, path in enumerate(releases):
        result = runner.invoke(app, ["--config", str(config), "import", str(path), "-d", "genes", "--version", f"v{i}"])
        assert result.exit_code == 0, result.output
    with open_store(config) as store:
        left = StorageOptimizer(store).estimate_savings([S.DEDUPLICATION]).saved_bytes
    return result.output, left


def test_auto_optimize_runs_the_default_strategies_after_import(tmp_path: Path) -> None:
    output, left = _import_with(tmp_path, "on", "true")
    assert "auto_optimize:" in output and "duplicate sequence(s)" in output and left == 0


def test_without_auto_optimize_an_import_leaves_the_store_as_imported(tmp_path: Path) -> None:
    output, left = _import_with(tmp_path, "off", "false")
    assert "auto_optimize:" not in output and left > 0
