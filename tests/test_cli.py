"""The talaria-storage command line: commands, output formats, errors and exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from talaria_storage.cli.common import EXIT_FAILURE, EXIT_USAGE
from talaria_storage.cli.main import app
from talaria_storage.config.settings import ENVIRONMENT

BINARY = bytes(range(256)) * 64


@pytest.fixture(autouse=True)
def _clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No TALARIA_* variable from the host, and `~` inside the test's folder."""
    for variable in ENVIRONMENT:
        monkeypatch.delenv(variable, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """An initialised filesystem store."""
    path = tmp_path / "store"
    result = cli("--store", str(path), "init")
    assert result.exit_code == 0, result.output
    return path


def cli(*args: str, input: bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def put(store: Path, data: bytes) -> str:
    result = cli("--store", str(store), "chunk", "put", "-", input=data)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def assert_one_line_error(result: Result, code: int) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output


# -- init ---------------------------------------------------------------------------------------


def test_init_prints_the_location_and_codec(tmp_path: Path) -> None:
    result = cli("--store", str(tmp_path / "s"), "init")
    assert result.exit_code == 0, result.output
    assert f"initialised store at file://{tmp_path / 's'}" in result.stdout
    assert "zstd (level 3)" in result.stdout
    assert (tmp_path / "s" / "store.json").is_file()


def test_init_json_reports_codec_and_config(tmp_path: Path) -> None:
    result = cli("--store", str(tmp_path / "s"), "init", "--json")
    report = json.loads(result.stdout)
    assert report["codec"] == {"name": "zstd", "level": 3}
    assert report["config"]["storage"]["backend"] == "filesystem"


def test_init_uses_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "storage.toml"
    conf.write_text(f'[storage]\npath = "{tmp_path / "s"}"\ncompression = "lz4"\n')
    report = json.loads(cli("--config", str(conf), "init", "--json").stdout)
    assert (report["location"], report["codec"]) == (f"file://{tmp_path / 's'}", {"name": "lz4"})


def test_store_option_beats_the_config_file_path(tmp_path: Path) -> None:
    conf = tmp_path / "storage.toml"
    conf.write_text(f'[storage]\npath = "{tmp_path / "from-file"}"\n')
    report = json.loads(
        cli("--config", str(conf), "--store", str(tmp_path / "explicit"), "init", "--json").stdout
    )
    assert report["location"] == f"file://{tmp_path / 'explicit'}"


# -- chunks -------------------------------------------------------------------------------------


def test_chunk_put_prints_the_sha256_of_the_file(store_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "data.bin"
    source.write_bytes(BINARY)
    result = cli("--store", str(store_dir), "chunk", "put", str(source))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == hashlib.sha256(BINARY).hexdigest()


def test_chunk_put_reads_stdin_for_dash(store_dir: Path) -> None:
    assert put(store_dir, b"ACGT" * 100) == hashlib.sha256(b"ACGT" * 100).hexdigest()


def test_chunk_get_writes_binary_bytes_to_stdout(store_dir: Path) -> None:
    h = put(store_dir, BINARY)
    result = cli("--store", str(store_dir), "chunk", "get", h)
    assert result.exit_code == 0
    assert result.stdout_bytes == BINARY


def test_chunk_get_output_option_writes_a_file(store_dir: Path, tmp_path: Path) -> None:
    h = put(store_dir, BINARY)
    result = cli("--store", str(store_dir), "chunk", "get", h, "-o", str(tmp_path / "out.bin"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out.bin").read_bytes() == BINARY


def test_chunk_put_of_a_missing_file_is_a_one_line_error(store_dir: Path, tmp_path: Path) -> None:
    result = cli("--store", str(store_dir), "chunk", "put", str(tmp_path / "absent"))
    assert_one_line_error(result, EXIT_FAILURE)
    assert "absent" in result.stderr


def test_chunk_get_of_an_absent_chunk_exits_1_with_one_line(store_dir: Path) -> None:
    result = cli("--store", str(store_dir), "chunk", "get", "ab" * 32)
    assert_one_line_error(result, EXIT_FAILURE)
    assert "not found" in result.stderr


def test_chunk_ls_json_lists_hashes_and_sizes(store_dir: Path) -> None:
    hashes = sorted([put(store_dir, b"one"), put(store_dir, BINARY)])
    listed = json.loads(cli("--store", str(store_dir), "chunk", "ls", "--json").stdout)
    assert [entry["hash"] for entry in listed] == hashes
    assert all(isinstance(entry["size"], int) and entry["size"] > 0 for entry in listed)


def test_chunk_ls_prints_hash_and_size_per_line(store_dir: Path) -> None:
    h = put(store_dir, b"one")
    line = cli("--store", str(store_dir), "chunk", "ls").stdout.strip()
    assert line.split()[0] == h and line.split()[1].isdigit()


# -- stats and verify ---------------------------------------------------------------------------


def test_stats_json_parses_and_counts_chunks(store_dir: Path) -> None:
    put(store_dir, b"one")
    put(store_dir, BINARY)
    stats = json.loads(cli("--store", str(store_dir), "stats", "--json").stdout)
    assert stats["total_chunks"] == 2
    assert stats["logical_bytes"] == 3 + len(BINARY)
    assert stats["per_codec"]["zstd"]["objects"] == 2


def test_stats_prints_a_table(store_dir: Path) -> None:
    put(store_dir, b"one")
    result = cli("--store", str(store_dir), "stats")
    assert result.exit_code == 0, result.output
    assert "chunks" in result.stdout and "compression ratio" in result.stdout


def test_verify_exits_0_on_a_good_store(store_dir: Path) -> None:
    put(store_dir, BINARY)
    result = cli("--store", str(store_dir), "verify")
    assert result.exit_code == 0, result.output
    assert "ok" in result.stdout


def corrupt(store: Path, h: str) -> Path:
    """Overwrite a chunk's file, bypassing the store."""
    path = store / "chunks" / h[:2] / h
    assert path.is_file()
    path.write_bytes(b"garbage, not a frame")
    return path


def test_verify_exits_1_and_lists_a_corrupted_chunk(store_dir: Path) -> None:
    good = put(store_dir, b"good")
    bad = put(store_dir, BINARY)
    corrupt(store_dir, bad)
    result = cli("--store", str(store_dir), "verify")
    assert result.exit_code == EXIT_FAILURE
    assert bad in result.stdout and good not in result.stdout


def test_verify_json_reports_each_problem(store_dir: Path) -> None:
    bad = put(store_dir, BINARY)
    corrupt(store_dir, bad)
    result = cli("--store", str(store_dir), "verify", "--json")
    report = json.loads(result.stdout)
    assert result.exit_code == EXIT_FAILURE
    assert report["ok"] is False
    assert [p["key"] for p in report["problems"]] == [f"chunks/{bad}"]


def test_chunk_get_of_a_corrupted_chunk_is_a_one_line_error(store_dir: Path) -> None:
    bad = put(store_dir, BINARY)
    corrupt(store_dir, bad)
    result = cli("--store", str(store_dir), "chunk", "get", bad)
    assert_one_line_error(result, EXIT_FAILURE)
    assert result.stdout_bytes == b""


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_hash",
    ["../../etc/passwd", "a" * 63, "a" * 65, "g" * 64, "/" + "a" * 63],
    ids=["path", "63", "65", "non-hex", "slash"],
)
def test_malformed_hash_is_a_one_line_usage_error(store_dir: Path, bad_hash: str) -> None:
    result = cli("--store", str(store_dir), "chunk", "get", bad_hash)
    assert_one_line_error(result, EXIT_USAGE)
    assert "64 hexadecimal characters" in result.stderr


def test_debug_shows_a_traceback(store_dir: Path) -> None:
    result = cli("--debug", "--store", str(store_dir), "chunk", "get", "xyz")
    assert result.exit_code == EXIT_USAGE
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: invalid SHA-256 hash")


def test_location_without_a_store_names_init(tmp_path: Path) -> None:
    result = cli("--store", str(tmp_path / "empty"), "chunk", "ls")
    assert_one_line_error(result, EXIT_FAILURE)
    assert "init" in result.stderr


def test_invalid_config_file_is_a_usage_error_naming_the_key(tmp_path: Path) -> None:
    conf = tmp_path / "storage.toml"
    conf.write_text("[storage]\ncompression_level = 23\n")
    result = cli("--config", str(conf), "--store", str(tmp_path / "s"), "init")
    assert_one_line_error(result, EXIT_USAGE)
    assert "[storage] compression_level = 23 is out of range: zstd levels are 1-22" in result.stderr


def test_bad_environment_variable_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TALARIA_STORAGE_THREADS", "abc")
    result = cli("--store", str(tmp_path / "s"), "init")
    assert_one_line_error(result, EXIT_USAGE)
    assert "TALARIA_STORAGE_THREADS" in result.stderr


def test_unknown_store_scheme_is_a_usage_error(tmp_path: Path) -> None:
    assert_one_line_error(cli("--store", "ftp://host/x", "chunk", "ls"), EXIT_USAGE)


def test_unknown_command_is_a_usage_error() -> None:
    assert cli("no-such-command").exit_code == EXIT_USAGE


# -- the installed entry point ------------------------------------------------------------------


def test_module_entry_point_round_trips_binary_through_real_pipes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT} | {"HOME": str(tmp_path)}
    base = [sys.executable, "-m", "talaria_storage.cli.main", "--store", str(tmp_path / "s")]
    assert (
        subprocess.run([*base, "init"], env=env, capture_output=True, check=False).returncode == 0
    )
    h = subprocess.run(
        [*base, "chunk", "put", "-"], input=BINARY, env=env, capture_output=True, check=True
    )
    got = subprocess.run(
        [*base, "chunk", "get", h.stdout.decode().strip()], env=env, capture_output=True, check=True
    )
    assert got.stdout == BINARY
    bad = subprocess.run(
        [*base, "chunk", "get", "../../etc/passwd"], env=env, capture_output=True, check=False
    )
    assert (bad.returncode, bad.stderr.decode().count("\n"), bad.stdout) == (EXIT_USAGE, 1, b"")


@pytest.mark.parametrize(
    ("args", "command"),
    [
        (["export", "--no-such-option"], "talaria-storage export"),
        (["get"], "talaria-storage get"),
        (["no-such-command"], "talaria-storage"),
        (["chunk", "get", "a", "b"], "talaria-storage chunk get"),
    ],
)
def test_a_usage_error_is_one_line_naming_the_commands_help(
    tmp_path: Path, args: list[str], command: str
) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ENVIRONMENT} | {"HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "talaria_storage", *args], env=env, capture_output=True, check=False
    )
    lines = done.stderr.decode().splitlines()
    assert done.returncode == EXIT_USAGE and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and lines[0].endswith(f"(see '{command} --help')")


def test_help_itself_keeps_its_rich_layout() -> None:
    result = CliRunner().invoke(app, ["export", "--help"])
    assert result.exit_code == 0 and "Usage: " in result.stdout and "--format" in result.stdout
