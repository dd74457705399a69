"""What every real backend shares: lazy SDK imports, option checking, secret redaction, key prefixes."""

from __future__ import annotations

import importlib.util
import inspect
import subprocess
import sys
from typing import Any

import pytest
from talaria_storage.backends._common import KeyPrefix, check_options, redact, resolve_container

from talaria_storage.core.errors import ConfigError, MissingExtra
from talaria_storage.storage import registry
from talaria_storage.testing.emulators import unavailable
from talaria_storage.storage.registry import open_backend, parse_location

SDK_OF_SCHEME = {
    "s3": ("boto3", "s3"),
    "gs": ("google.cloud.storage", "gcs"),
    "az": ("azure.storage.blob", "azure"),
    "rocksdb": ("rocksdict", "rocksdb"),
}
LOCATION_OF_SCHEME = {
    "s3": "s3://bucket/prefix",
    "gs": "gs://bucket/prefix",
    "az": "az://container/prefix",
    "rocksdb": "rocksdb:///tmp/never-created-store",
}
BACKEND_CLASSES = {
    "s3": ("talaria_storage.backends.s3", "S3Backend"),
    "gs": ("talaria_storage.backends.gcs", "GCSBackend"),
    "az": ("talaria_storage.backends.azure", "AzureBackend"),
    "rocksdb": ("talaria_storage.backends.rocksdb", "RocksDBBackend"),
}


# -- lazy imports -------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", sorted(SDK_OF_SCHEME))
def test_a_missing_sdk_is_a_one_line_missing_extra(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    module, extra = SDK_OF_SCHEME[scheme]
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == module or name.startswith(module + "."):
            return None
        return real_find_spec(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(MissingExtra) as caught:
        open_backend(LOCATION_OF_SCHEME[scheme])
    message = str(caught.value)
    assert f"install talaria-storage[{extra}]" in message
    assert "\n" not in message
    assert isinstance(caught.value, ImportError)


def test_a_blocked_sdk_import_is_a_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """``sys.modules[name] = None`` is how Python blocks an import; the registry must see it."""
    monkeypatch.setitem(sys.modules, "boto3", None)
    with pytest.raises(MissingExtra, match=r"install talaria-storage\[s3\]"):
        open_backend("s3://bucket")


def test_no_sdk_is_imported_until_a_backend_of_its_scheme_is_opened() -> None:
    code = (
        "import sys\n"
        "import talaria_storage, talaria_storage.storage.registry, talaria_storage.storage.backend\n"
        "import talaria_storage.testing, talaria_storage.testing.emulators\n"
        "import talaria_storage.backends, talaria_storage.backends._common\n"
        "import talaria_storage.backends.memory, talaria_storage.backends.filesystem\n"
        "talaria_storage.storage.registry.open_backend('memory://')\n"
        "sdks = ('boto3', 'botocore', 'google.cloud', 'google.cloud.storage', 'azure', 'azure.storage', 'rocksdict')\n"
        "print(','.join(sorted(m for m in sdks if m in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


# -- OPTIONS tables -----------------------------------------------------------------------------


def _backend_class(scheme: str) -> Any:
    module_name, class_name = BACKEND_CLASSES[scheme]
    if importlib.util.find_spec(SDK_OF_SCHEME[scheme][0]) is None:
        unavailable(f"{SDK_OF_SCHEME[scheme][0]} is not installed")  # a failure under CI=true
    module = __import__(module_name, fromlist=[class_name])
    return getattr(module, class_name)


@pytest.mark.parametrize("scheme", sorted(BACKEND_CLASSES))
def test_options_table_matches_the_constructor(scheme: str) -> None:
    """Every OPTIONS key is a constructor keyword with a matching annotation, and vice versa."""
    cls = _backend_class(scheme)
    params = inspect.signature(cls.__init__).parameters
    keywords = {n for n, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    keywords.discard("session")  # programmatic only: a ready boto3 Session
    options = set(cls.OPTIONS) - {"bucket", "container", "prefix"}
    assert options == keywords
    for name in options:
        annotation = str(params[name].annotation)
        assert cls.OPTIONS[name].__name__ in annotation, (name, annotation)


@pytest.mark.parametrize("scheme", sorted(BACKEND_CLASSES))
def test_an_unknown_option_is_a_config_error_naming_it(scheme: str) -> None:
    _backend_class(scheme)
    with pytest.raises(ConfigError, match="unknown option 'bukket'"):
        open_backend(LOCATION_OF_SCHEME[scheme], {"bukket": "x"})


@pytest.mark.parametrize(
    ("scheme", "option", "value"),
    [
        ("s3", "max_attempts", "5"),
        ("gs", "anonymous", "yes"),
        ("az", "retry_total", 2.5),
        ("rocksdb", "read_only", 1),
    ],
)
def test_a_wrongly_typed_option_is_a_config_error(scheme: str, option: str, value: object) -> None:
    _backend_class(scheme)
    with pytest.raises(ConfigError, match=f"option '{option}' for {scheme}:// stores must be"):
        open_backend(LOCATION_OF_SCHEME[scheme], {option: value})


def test_check_options_converts_integers_to_numbers_and_drops_none() -> None:
    allowed = {"timeout": float, "name": str, "flag": bool}
    assert check_options("s3", allowed, {"timeout": 3, "name": None}) == {"timeout": 3.0}
    with pytest.raises(ConfigError):
        check_options("s3", allowed, {"timeout": True})
    with pytest.raises(ConfigError, match="must not be negative"):
        check_options("s3", allowed, {"timeout": -1})


def test_a_bucket_named_twice_differently_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="remove one of them"):
        resolve_container(parse_location("s3://one/p"), {"bucket": "two"}, "bucket", "bucket")
    assert resolve_container(
        parse_location("s3://one"), {"prefix": "/p/q/"}, "bucket", "bucket"
    ) == ("one", "p/q")


# -- key prefixes and redaction -----------------------------------------------------------------


def test_key_prefix_maps_keys_both_ways_and_ignores_foreign_names() -> None:
    keys = KeyPrefix("stores/uniprot/")
    assert keys.name("refs/db/HEAD") == "stores/uniprot/refs/db/HEAD"
    assert keys.key("stores/uniprot/refs/db/HEAD") == "refs/db/HEAD"
    assert keys.key("stores/other/refs/db/HEAD") is None
    assert keys.key("stores/uniprot/has space") is None
    assert KeyPrefix("").name("store.json") == "store.json"
    with pytest.raises(ConfigError):
        KeyPrefix("a/../b")


@pytest.mark.parametrize(
    "text",
    [
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5;EndpointSuffix=x",
        "GET https://acct.blob.core.windows.net/c/b?sv=2024&sig=c2VjcmV0a2V5 failed",
        "https://bucket.s3.amazonaws.com/k?X-Amz-Credential=AKIA&X-Amz-Signature=c2VjcmV0a2V5",
        "{'Authorization': 'SharedKey acct:c2VjcmV0a2V5'}",
        "aws_secret_access_key = c2VjcmV0a2V5",
    ],
)
def test_redact_removes_secret_shapes(text: str) -> None:
    cleaned = redact(text)
    assert "c2VjcmV0a2V5" not in cleaned
    assert "\n" not in cleaned


def test_redact_removes_given_secrets() -> None:
    assert "hunter22" not in redact("password hunter22 in text", "hunter22")


def test_registry_knows_every_real_backend() -> None:
    for scheme, (module_name, class_name) in BACKEND_CLASSES.items():
        assert registry.BACKENDS[scheme].target == f"{module_name}:{class_name}"
