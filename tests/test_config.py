"""storage.toml, environment and argument handling (talaria_storage.config.settings)."""

from __future__ import annotations

import dataclasses
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from talaria_storage.config import settings as config_module
from talaria_storage.config.settings import (
    ENVIRONMENT,
    SCHEMA,
    StorageConfig,
    config_for_location,
    load_config,
)
from talaria_storage.core.errors import ConfigError
from talaria_storage.storage.registry import BackendSpec, parse_location

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "storage.toml"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`~` points into the test's folder, so defaults never name the real home."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


def write(tmp_path: Path, text: str, name: str = "storage.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def load_error(*args: object, **kwargs: object) -> str:
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message
    return message


# -- defaults and precedence --------------------------------------------------------------------


def test_defaults_are_a_filesystem_store_in_the_home_folder_with_zstd_3(
    _isolated_home: Path,
) -> None:
    config = load_config(env={})
    assert config.storage.backend == "filesystem"
    assert config.location == str(_isolated_home / ".talaria" / "storage")
    assert config.codec_spec == ("zstd", 3)
    assert config.cache.dir == str(_isolated_home / ".talaria" / "cache")
    assert config.backend_options == {}


def test_file_value_beats_default(tmp_path: Path) -> None:
    path = write(tmp_path, "[storage]\ncompression_level = 5\n")
    assert load_config(path, env={}).codec_spec == ("zstd", 5)


def test_environment_beats_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[storage]\ncompression_level = 5\n")
    assert load_config(path, env={"TALARIA_COMPRESSION_LEVEL": "7"}).codec_spec == ("zstd", 7)


def test_argument_beats_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[storage]\ncompression_level = 5\n")
    config = load_config(path, env={"TALARIA_COMPRESSION_LEVEL": "7"}, compression_level=9)
    assert config.codec_spec == ("zstd", 9)


def test_none_argument_is_ignored(tmp_path: Path) -> None:
    assert load_config(env={"TALARIA_STORAGE_THREADS": "3"}, threads=None).threads == 3


def test_storage_dir_variable_sets_the_store_path(tmp_path: Path) -> None:
    config = load_config(env={"TALARIA_STORAGE_DIR": str(tmp_path / "s")})
    assert config.location == str(tmp_path / "s")


def test_explicit_location_beats_storage_dir_variable(tmp_path: Path) -> None:
    config = config_for_location(
        str(tmp_path / "explicit"), env={"TALARIA_STORAGE_DIR": str(tmp_path / "env")}
    )
    assert config.location == str(tmp_path / "explicit")


def test_explicit_location_beats_bucket_variable() -> None:
    config = config_for_location("s3://mine/db", env={"TALARIA_S3_BUCKET": "other"})
    assert config.location == "s3://mine/db"


def test_config_for_location_keeps_other_settings_from_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\ncompression = "lz4"\n[cache]\nsize_mb = 5\n')
    config = config_for_location("memory://t", config_path=path, env={})
    assert (config.location, config.codec_spec, config.cache.size_mb) == (
        "memory://t",
        ("lz4", None),
        5,
    )


@pytest.mark.parametrize(
    ("variable", "text", "read"),
    [
        ("TALARIA_STORAGE_DIR", "/data/store", lambda c: c.storage.path),
        ("TALARIA_CACHE_DIR", "/data/cache", lambda c: c.cache.dir),
        ("TALARIA_STORAGE_THREADS", "7", lambda c: c.threads),
        ("TALARIA_FRESHEN_AFTER_SECONDS", "30", lambda c: c.storage.freshen_after_seconds),
        ("TALARIA_CACHE_SIZE_MB", "64", lambda c: c.cache.size_mb),
        ("TALARIA_COMPRESSION_LEVEL", "19", lambda c: c.storage.compression_level),
        ("TALARIA_S3_BUCKET", "bkt", lambda c: c.storage.backends["s3"]["bucket"]),
        ("TALARIA_GCS_PROJECT", "proj", lambda c: c.storage.backends["gcs"]["project"]),
        ("TALARIA_AZURE_CONTAINER", "cont", lambda c: c.storage.backends["azure"]["container"]),
    ],
)
def test_each_environment_variable_sets_its_key(variable: str, text: str, read: object) -> None:
    expected = int(text) if text.isdigit() else text
    assert read(load_config(env={variable: text})) == expected  # type: ignore[operator]


def test_every_documented_environment_variable_is_handled() -> None:
    assert set(ENVIRONMENT) == {
        "TALARIA_STORAGE_DIR",
        "TALARIA_CACHE_DIR",
        "TALARIA_STORAGE_THREADS",
        "TALARIA_FRESHEN_AFTER_SECONDS",
        "TALARIA_CACHE_SIZE_MB",
        "TALARIA_COMPRESSION_LEVEL",
        "TALARIA_S3_BUCKET",
        "TALARIA_GCS_PROJECT",
        "TALARIA_AZURE_CONTAINER",
    }


def test_empty_environment_variable_counts_as_unset() -> None:
    assert load_config(env={"TALARIA_STORAGE_THREADS": ""}).threads == config_module.DEFAULT_THREADS


def test_bucket_variable_with_s3_backend_gives_an_s3_location(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\nbackend = "s3"\n[storage.s3]\nprefix = "db/v1"\n')
    assert load_config(path, env={"TALARIA_S3_BUCKET": "bkt"}).location == "s3://bkt/db/v1"


# -- paths --------------------------------------------------------------------------------------


def test_relative_path_in_file_is_relative_to_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    path = write(conf_dir, '[storage]\npath = "data/store"\n')
    monkeypatch.chdir(tmp_path)
    assert load_config(path, env={}).location == str(conf_dir / "data" / "store")


def test_relative_path_from_environment_is_relative_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_config(env={"TALARIA_STORAGE_DIR": "rel"}).location == str(tmp_path / "rel")


def test_tilde_in_path_is_expanded(_isolated_home: Path, tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\npath = "~/stores/a"\n')
    assert load_config(path, env={}).location == str(_isolated_home / "stores" / "a")


# -- locations and options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "memory://t",
        "s3://bkt/a/b",
        "s3://bkt",
        "gs://bkt/p",
        "az://cont/p",
        "rocksdb:///x/db",
        "/x/store",
    ],
)
def test_location_round_trips_through_config(location: str) -> None:
    config = config_for_location(location, env={})
    assert config.location == location
    assert parse_location(config.location) == parse_location(location)


def test_cloud_location_fields_are_not_backend_options() -> None:
    config = config_for_location("gs://bkt/p", env={"TALARIA_GCS_PROJECT": "proj"})
    assert config.backend_options == {"project": "proj"}


def test_size_strings_are_parsed_to_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, '[optimization]\nmin_chunk_size = "64KiB"\nmax_chunk_size = 2097152\n')
    config = load_config(path, env={})
    assert (config.optimization.min_chunk_size, config.optimization.max_chunk_size) == (
        65536,
        2097152,
    )


def test_config_is_frozen() -> None:
    config = load_config(env={})
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.storage = config.storage  # type: ignore[misc]


def test_section_overrides_take_toml_shaped_mappings() -> None:
    config = load_config(env={}, cache={"enabled": False}, optimization={"deduplication": False})
    assert (config.cache.enabled, config.optimization.deduplication) == (False, False)


# -- compression levels -------------------------------------------------------------------------


def test_level_next_to_a_levelless_codec_in_the_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\ncompression = "lz4"\ncompression_level = 5\n')
    message = load_error(path)
    assert message.startswith(f"{path}: [storage] compression_level = 5 is not allowed")
    assert "only zstd has levels" in message


def test_level_argument_over_a_levelless_codec_in_the_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\ncompression = "snappy"\n')
    assert "only zstd has levels" in load_error(path, compression_level=5)


def test_file_level_is_ignored_when_an_argument_picks_a_levelless_codec(tmp_path: Path) -> None:
    path = write(tmp_path, "[storage]\ncompression_level = 19\n")
    assert load_config(path, env={}, compression="lz4").codec_spec == ("lz4", None)


def test_level_variable_is_ignored_for_a_levelless_codec(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\ncompression = "none"\n')
    assert load_config(path, env={"TALARIA_COMPRESSION_LEVEL": "9"}).codec_spec == ("none", None)


# -- errors: one line, naming the source, the key and what is allowed ---------------------------


def test_out_of_range_zstd_level_names_file_key_and_range(tmp_path: Path) -> None:
    path = write(tmp_path, "[storage]\ncompression_level = 23\n")
    assert (
        load_error(path)
        == f"{path}: [storage] compression_level = 23 is out of range: zstd levels are 1-22"
    )


def test_out_of_range_level_message_uses_the_name_the_file_was_given_by(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "[storage]\ncompression_level = 23\n")
    monkeypatch.chdir(tmp_path)
    assert load_error("storage.toml") == (
        "storage.toml: [storage] compression_level = 23 is out of range: zstd levels are 1-22"
    )


def test_unknown_key_suggests_the_close_one(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\ncompresion = "zstd"\n')
    message = load_error(path)
    assert message.startswith(f"{path}: [storage] unknown key 'compresion'")
    assert 'did you mean "compression"?' in message


def test_a_removed_key_says_why_it_is_gone(tmp_path: Path) -> None:
    path = write(tmp_path, "[index]\nrebuild_interval_hours = 24\n")
    message = load_error(path)
    assert message.startswith(f"{path}: [index] rebuild_interval_hours was removed: look-ups read the look-up table")
    assert message.endswith("delete the line")


def test_unknown_section_suggests_the_close_one(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "[cahce]\nenabled = true\n"))
    assert "unknown section [cahce]" in message and 'did you mean "cache"?' in message


def test_wrong_type_names_key_and_expected_type(tmp_path: Path) -> None:
    path = write(tmp_path, '[storage]\nthreads = "four"\n')
    assert load_error(path) == (
        f'{path}: [storage] threads = "four" is not an integer: expected an integer from 1 to 256'
    )


def test_boolean_key_rejects_an_integer(tmp_path: Path) -> None:
    assert "[cache] enabled = 1 is not a boolean" in load_error(
        write(tmp_path, "[cache]\nenabled = 1\n")
    )


def test_unknown_choice_lists_the_allowed_values(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, '[storage]\ncompression = "gzip"\n'))
    assert '[storage] compression = "gzip" is not allowed' in message
    assert '"none", "zstd", "lz4", "snappy"' in message


def test_unknown_backend_suggests_the_close_one(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, '[storage]\nbackend = "filesytem"\n'))
    assert 'did you mean "filesystem"?' in message


def test_min_chunk_size_above_max_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[optimization]\nmin_chunk_size = "32MiB"\nmax_chunk_size = "16MiB"\n')
    message = load_error(path)
    assert message.startswith(
        f"{path}: [optimization] min_chunk_size = 33554432 is larger than max_chunk_size"
    )


def test_section_that_is_not_a_table_is_an_error(tmp_path: Path) -> None:
    assert "cache = 5 must be a table" in load_error(write(tmp_path, "cache = 5\n"))


def test_invalid_toml_is_a_one_line_error_naming_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[storage\n")
    assert load_error(path).startswith(f"{path}: invalid TOML:")


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    assert load_error(tmp_path / "nope.toml") == f"config file '{tmp_path / 'nope.toml'}' not found"


def test_cloud_backend_without_bucket_names_the_fix(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, '[storage]\nbackend = "azure"\n'))
    assert "needs a container" in message and "TALARIA_AZURE_CONTAINER" in message


def test_bucket_with_a_slash_is_an_error(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, '[storage.s3]\nbucket = "a/b"\n'))
    assert '[storage.s3] bucket = "a/b" is not allowed' in message


def test_settings_table_for_a_backend_without_options_is_an_error(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, "[storage.filesystem]\nfsync = false\n"))
    assert "[storage.filesystem] is not a settings table" in message


def test_bad_threads_variable_names_the_variable_and_key() -> None:
    assert load_error(env={"TALARIA_STORAGE_THREADS": "abc"}) == (
        'environment variable TALARIA_STORAGE_THREADS: [storage] threads = "abc" is not an integer: '
        "expected an integer from 1 to 256"
    )


def test_out_of_range_level_variable_names_the_variable() -> None:
    message = load_error(env={"TALARIA_COMPRESSION_LEVEL": "23"})
    assert message.startswith("environment variable TALARIA_COMPRESSION_LEVEL:")
    assert message.endswith("is out of range: zstd levels are 1-22")


def test_zero_cache_size_variable_is_out_of_range() -> None:
    assert "TALARIA_CACHE_SIZE_MB" in load_error(env={"TALARIA_CACHE_SIZE_MB": "0"})


def test_bad_argument_value_names_the_argument() -> None:
    assert load_error(threads=0).startswith("argument: [storage] threads = 0 is out of range")


def test_unknown_argument_suggests_the_close_one() -> None:
    assert 'argument compresion= is not a setting: did you mean "compression"?' in load_error(
        compresion="lz4"
    )


def test_bad_location_argument_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown store scheme 'ftp://'"):
        config_for_location("ftp://host/x", env={})


# -- backend sub-tables: checked against the backend class's OPTIONS, lazily --------------------


@pytest.fixture
def fake_s3_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An importable S3 backend class declaring OPTIONS, as backends/s3.py will."""
    module = types.ModuleType("fake_s3_backend")

    class FakeS3Backend:
        OPTIONS: ClassVar[dict[str, type]] = {
            "endpoint_url": str,
            "max_attempts": int,
            "timeout": float,
        }

    module.FakeS3Backend = FakeS3Backend  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_s3_backend", module)
    monkeypatch.setitem(
        config_module.BACKENDS, "s3", BackendSpec("fake_s3_backend:FakeS3Backend", "s3", ())
    )
    config_module._declared_options.cache_clear()
    yield
    config_module._declared_options.cache_clear()


def test_declared_backend_options_reach_the_backend(tmp_path: Path, fake_s3_backend: None) -> None:
    path = write(
        tmp_path,
        '[storage]\nbackend = "s3"\n[storage.s3]\nbucket = "b"\nendpoint_url = "http://x"\ntimeout = 5\n',
    )
    assert load_config(path, env={}).backend_options == {"endpoint_url": "http://x", "timeout": 5.0}


def test_undeclared_backend_option_suggests_the_close_one(
    tmp_path: Path, fake_s3_backend: None
) -> None:
    path = write(tmp_path, '[storage.s3]\nendpoint = "http://x"\n')
    message = load_error(path)
    assert f"{path}: [storage.s3] unknown key 'endpoint'" in message
    assert 'did you mean "endpoint_url"?' in message


def test_backend_option_of_the_wrong_type_is_an_error(
    tmp_path: Path, fake_s3_backend: None
) -> None:
    path = write(tmp_path, '[storage.s3]\nmax_attempts = "three"\n')
    assert (
        load_error(path)
        == f'{path}: [storage.s3] max_attempts = "three" has the wrong type: expected int'
    )


def test_backend_options_are_accepted_when_the_backend_cannot_be_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        config_module.BACKENDS, "s3", BackendSpec("no_such_module_xyz:S3", "s3", ())
    )
    config_module._declared_options.cache_clear()
    try:
        path = write(tmp_path, '[storage.s3]\nbucket = "b"\nanything = 1\n')
        assert load_config(path, env={}, backend="s3").backend_options == {"anything": 1}
    finally:
        config_module._declared_options.cache_clear()


def test_location_keys_do_not_import_the_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(backend: str) -> None:
        raise AssertionError(f"imported the {backend} backend for a key the config owns")

    monkeypatch.setattr(config_module, "_declared_options", fail)
    path = write(tmp_path, '[storage.gcs]\nbucket = "b"\nprefix = "p"\nproject = "x"\n')
    assert load_config(path, env={}, backend="gcs").location == "gs://b/p"


# -- remotes ------------------------------------------------------------------------------------


REMOTES = """
[remote]
default = "backup"
[remote.backup]
location = "mirror"
[remote.cloud]
location = "s3://bkt/db"
"""


def test_remote_name_resolves_to_its_location(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, REMOTES), env={}).remote("cloud") == "s3://bkt/db"


def test_default_remote_is_used_when_none_is_named(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, REMOTES), env={}).remote() == str(tmp_path / "mirror")


def test_location_given_instead_of_a_remote_name_passes_through(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, REMOTES), env={}).remote("gs://other/x") == "gs://other/x"


def test_unknown_remote_name_suggests_the_close_one(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, REMOTES), env={})
    with pytest.raises(
        ConfigError,
        match=r"unknown remote 'clod': did you mean \"cloud\"\? known remotes: backup, cloud",
    ):
        config.remote("clod")


def test_no_default_remote_is_an_error_when_none_is_named() -> None:
    with pytest.raises(ConfigError, match="no remote named"):
        load_config(env={}).remote()


def test_default_naming_no_remote_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, '[remote]\ndefault = "bakup"\n[remote.backup]\nlocation = "/b"\n')
    assert 'names no remote: did you mean "backup"?' in load_error(path)


def test_remote_without_location_is_an_error(tmp_path: Path) -> None:
    assert "[remote.x] has no location" in load_error(write(tmp_path, "[remote.x]\n"))


def test_remote_written_as_a_plain_key_is_an_error(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, '[remote]\nbackup = "s3://b/p"\n'))
    assert "must be a table: write [remote.backup] location" in message


def test_remote_with_unknown_scheme_is_an_error(tmp_path: Path) -> None:
    message = load_error(write(tmp_path, '[remote.x]\nlocation = "ftp://h/p"\n'))
    assert '[remote.x] location = "ftp://h/p" is not a store location' in message


# -- the example storage.toml -------------------------------------------------------------------


def test_example_storage_toml_loads_as_a_filesystem_store_with_zstd_3() -> None:
    config = load_config(EXAMPLE, env={})
    assert isinstance(config, StorageConfig)
    assert config.storage.backend == "filesystem"
    assert config.codec_spec == ("zstd", 3)
    assert config.remote() == "/mnt/backup/talaria"


def test_example_storage_toml_documents_every_key() -> None:
    text = EXAMPLE.read_text()
    for section, keys in SCHEMA.items():
        for name in keys:
            assert re.search(rf"^#?\s*{name}\s*=", text, re.MULTILINE), (
                f"[{section}] {name} is not documented"
            )
    for variable in ENVIRONMENT:
        assert variable in text, f"{variable} is not documented"
