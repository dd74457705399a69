"""The one error hierarchy of talaria-storage.

Every error the engine raises on purpose is a :class:`StorageError`. Leaves
also inherit the matching builtin (``ChunkNotFound`` is a ``KeyError``,
``ConfigError`` a ``ValueError``) so callers that only know Python's own
exceptions still catch them. Backends translate vendor exceptions (botocore,
google.api_core, azure.core, rocksdict) into these at their edge and say
whether a retry can help (:attr:`BackendError.retryable`), so one retry
policy decides for every backend.

Every message is a single line that names the object, key or file at fault
and, where there is one, the fix. The CLI prints ``str(error)`` as-is.
"""

from __future__ import annotations

from typing import Protocol


class HexNamed(Protocol):
    """What an error needs of a hash: its hex form. :class:`~talaria_storage.core.hashing.SHA256Hash`
    is one; naming the protocol instead of the class keeps this module free of imports, since
    :mod:`~talaria_storage.core.hashing` raises :class:`InvalidHash` from here."""

    def to_hex(self) -> str: ...


class StorageError(Exception):
    """Base class of every error raised by talaria-storage."""


class ChunkNotFound(StorageError, KeyError):
    """A chunk (or any content-addressed object) is not in the store."""

    def __init__(self, hash: HexNamed | str, where: str = "") -> None:
        self.hash = hash
        self.where = where
        super().__init__(self._hex())

    def _hex(self) -> str:
        return self.hash if isinstance(self.hash, str) else self.hash.to_hex()

    def __str__(self) -> str:
        text = self._hex()
        suffix = f" in {self.where}" if self.where else ""
        return f"chunk {text} not found{suffix}"


class ObjectNotFound(StorageError, KeyError):
    """A backend key does not exist."""

    def __init__(self, key: str, where: str = "") -> None:
        self.key = key
        self.where = where
        super().__init__(key)

    def __str__(self) -> str:
        suffix = f" in {self.where}" if self.where else ""
        return f"object '{self.key}' not found{suffix}"


class HashMismatch(StorageError):
    """Bytes read back do not hash to the name they were stored under."""

    def __init__(self, expected: HexNamed, actual: HexNamed, key: str = "") -> None:
        self.expected = expected
        self.actual = actual
        self.key = key
        where = f" for '{key}'" if key else ""
        super().__init__(
            f"hash mismatch{where}: expected {expected.to_hex()}, got {actual.to_hex()} "
            "(the object is corrupt; restore it from a remote or re-import, then run gc)"
        )


class BackendError(StorageError):
    """A backend operation failed.

    ``retryable`` is True for errors a later attempt may cure (throttling,
    timeouts, 5xx, connection resets) and False for permanent ones (missing
    bucket, bad credentials, access denied), which must stop at once.
    """

    def __init__(self, message: str, *, retryable: bool = False, key: str | None = None) -> None:
        self.retryable = retryable
        self.key = key
        super().__init__(message)


class PreconditionFailed(BackendError):
    """A conditional write lost: the key exists, or its version changed."""

    def __init__(self, key: str, detail: str = "") -> None:
        text = f"conditional write to '{key}' failed: {detail or 'it was changed by another writer'}"
        super().__init__(text, retryable=False, key=key)


class CompressionError(StorageError):
    """A frame could not be encoded or decoded (corrupt, truncated, unknown codec)."""


class ChunkIndexError(StorageError):
    """The lookup index is missing, stale or corrupt (rebuild it from the manifests)."""


class ConfigError(StorageError, ValueError):
    """A configuration file, key, value or environment variable is wrong."""


class InputFormatError(StorageError, ValueError):
    """An input file is malformed. Carries the file and line at fault."""

    def __init__(self, path: str, line: int | None, problem: str) -> None:
        self.path = path
        self.line = line
        self.problem = problem
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {problem}")

    def __reduce__(self) -> tuple[type[InputFormatError], tuple[str, int | None, str]]:
        # Rebuilt from its fields, so it crosses processes (a Dask worker's error reaches the client).
        return (type(self), (self.path, self.line, self.problem))


class InvalidHash(StorageError, ValueError):
    """A hash string is not exactly 64 hexadecimal characters."""


class InvalidKey(StorageError, ValueError):
    """An object key is not in the store's namespace (e.g. contains '..')."""


class MissingExtra(StorageError, ImportError):
    """An optional dependency (a cloud SDK) is not installed."""


class RefConflict(StorageError):
    """A ref moved while an operation was running; nothing was changed."""

    def __init__(
        self,
        ref: str,
        expected: str | None,
        actual: str | None,
        hint: str = "re-run it, or pass --force to overwrite",
        problem: str | None = None,
    ) -> None:
        self.ref = ref
        self.expected = expected
        self.actual = actual
        what = problem or f"ref '{ref}' moved meanwhile (expected {expected or 'nothing'}, found {actual or 'nothing'})"
        super().__init__(f"{what}; nothing was changed: {hint}")


class RecordNotFound(StorageError, KeyError):
    """No record of a database version answers to an identifier (``db[...]``, ``db.get``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "record not found"


class AmbiguousIdentifier(StorageError, KeyError):
    """An identifier names several records where one was asked for (``db.get``); ``get_all``
    gives them all."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "identifier names several records"


class VersionNotFound(StorageError, KeyError):
    """A database or one of its versions does not exist."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "version not found"


class ProfileNotFound(StorageError, KeyError):
    """A database has no reduction profile of that name."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "reduction profile not found"


class InvalidSequenceId(StorageError, ValueError):
    """A lookup identifier is not a SHA-256, refget ``SQ.`` or MD5 digest."""


class UnknownTaxon(StorageError, KeyError):
    """A taxid is not a current node: deleted (``deleted=True``) or never existed."""

    def __init__(self, taxid: int, deleted: bool = False) -> None:
        self.taxid = taxid
        self.deleted = deleted
        super().__init__(taxid)

    def __str__(self) -> str:
        if self.deleted:
            return f"taxon {self.taxid} was deleted from the NCBI taxonomy (delnodes.dmp)"
        return f"taxon {self.taxid} is not in the taxonomy"
