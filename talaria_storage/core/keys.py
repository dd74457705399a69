"""The object namespace, and the one place keys are validated.

Every backend holds the same keys (DESIGN.md §3)::

    chunks/<sha256>                 framed chunk, immutable
    manifests/<sha256>              version manifest, immutable
    refs/<database>/<version>       manifest hash, compare-and-swap
    refs/<database>/HEAD            manifest hash, compare-and-swap
    reductions/<database>/<profile> reduction manifest hash, compare-and-swap
    taxonomy/dumps/<version>        stored taxdump (a chunks/ object), create-only
    taxonomy/dumps/HEAD             stored taxdump, compare-and-swap
    taxonomy/labels                 manifest of taxon-labelled chunks, compare-and-swap
    state/<operation-id>            processing state, mutable
    store.json                      store format and defaults, written once

Reduction profiles live under ``reductions/`` rather than DESIGN.md's
``refs/<database>/reductions/<profile>``: a version ref is exactly
``refs/<database>/<version>``, so a version named ``reductions`` would be both
an object and a folder on a filesystem, and every listing of a database's
versions would have to filter profiles out. Outside ``refs/`` neither can happen.

A key is relative, '/'-separated, made of ``[A-Za-z0-9._@=+-]`` segments
that do not start with a dot (so ``.``, ``..`` and hidden names such as a
filesystem backend's ``.tmp`` folder can never be keys). Backends call
:func:`validate_key` before touching storage, so no key from a user or the
network can name a path outside the store.
"""

from __future__ import annotations

import re

from talaria_storage.core.errors import InvalidKey
from talaria_storage.core.hashing import SHA256Hash

_SEGMENT = re.compile(r"^[A-Za-z0-9._@=+\-]+$")
MAX_KEY_LENGTH = 1024

CHUNKS = "chunks/"
MANIFESTS = "manifests/"
REFS = "refs/"
REDUCTIONS = "reductions/"
# Taxonomy refs live outside refs/ so no database name can ever collide with them.
TAXONOMY = "taxonomy/"
TAXONOMY_DUMPS = TAXONOMY + "dumps/"
TAXONOMY_LABELS = TAXONOMY + "labels"
STATE = "state/"
STORE_META = "store.json"


def validate_key(key: str) -> str:
    """Return ``key`` unchanged when it is a well-formed store key, else raise :class:`InvalidKey`."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"invalid key {key!r}: keys are non-empty strings")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKey(f"invalid key '{key[:60]}...': longer than {MAX_KEY_LENGTH} characters")
    if key.startswith("/") or "\\" in key:
        raise InvalidKey(f"invalid key '{key}': keys are relative and use '/' only")
    for segment in key.split("/"):
        if segment == "" or segment.startswith("."):
            raise InvalidKey(f"invalid key '{key}': empty segment, or one starting with '.'")
        if not _SEGMENT.match(segment):
            raise InvalidKey(
                f"invalid key '{key}': segments may hold only letters, digits and . _ @ = + -"
            )
    return key


def validate_prefix(prefix: str) -> str:
    """Validate a listing prefix: empty, or a key optionally ending in '/'."""
    if prefix == "":
        return prefix
    validate_key(prefix.removesuffix("/"))
    return prefix


def validate_name(name: str, what: str = "name") -> str:
    """Validate one key segment supplied by a user (database, version, profile)."""
    if not isinstance(name, str) or not name or name.startswith(".") or not _SEGMENT.match(name):
        raise InvalidKey(
            f"invalid {what} {name!r}: use letters, digits and . _ @ = + - only (no '/', not starting with '.')"
        )
    return name


def chunk_key(h: SHA256Hash) -> str:
    return CHUNKS + h.to_hex()


def manifest_key(h: SHA256Hash) -> str:
    return MANIFESTS + h.to_hex()


def ref_key(database: str, version: str) -> str:
    return f"{REFS}{validate_name(database, 'database name')}/{validate_name(version, 'version')}"


def reduction_prefix(database: str) -> str:
    """The prefix under which ``database``'s reduction profiles are named (``reductions/<database>/``)."""
    return f"{REDUCTIONS}{validate_name(database, 'database name')}/"


def reduction_key(database: str, profile: str) -> str:
    """The ref naming a database's reduction profile (``reductions/<database>/<profile>``)."""
    return reduction_prefix(database) + validate_name(profile, "reduction profile")


def taxonomy_key(version: str) -> str:
    """The ref naming a stored taxdump version (``taxonomy/dumps/<version>``; ``HEAD`` is the current one)."""
    return TAXONOMY_DUMPS + validate_name(version, "taxonomy version")


def state_key(operation_id: str) -> str:
    return STATE + validate_name(operation_id, "operation id")


def hash_from_key(key: str, prefix: str) -> SHA256Hash:
    """Parse the hash out of ``<prefix><hex>`` (e.g. a listed chunk key)."""
    return SHA256Hash.from_hex(key[len(prefix):])
