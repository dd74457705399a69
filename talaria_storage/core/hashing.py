"""SHA-256 content addresses.

A :class:`SHA256Hash` is the identity of every immutable object in a store:
the SHA-256 of its *uncompressed* bytes, so the same content has the same
name whatever codec stored it. Hash text coming from users or from the
network is accepted only as exactly 64 hexadecimal characters, before it can
ever become a key or a path.
"""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass

from talaria_storage.core.errors import InvalidHash

_HEX = frozenset(string.hexdigits)


@dataclass(frozen=True, order=True, slots=True)
class SHA256Hash:
    """A 32-byte SHA-256 digest."""

    digest: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.digest, bytes) or len(self.digest) != 32:
            raise InvalidHash(f"a SHA-256 digest is 32 bytes, got {self.digest!r:.80}")

    @classmethod
    def compute(cls, data: bytes | bytearray | memoryview) -> "SHA256Hash":
        """Hash ``data``."""
        return cls(hashlib.sha256(data).digest())

    @classmethod
    def from_hex(cls, text: str) -> "SHA256Hash":
        """Parse exactly 64 hex characters (either case); anything else is :class:`InvalidHash`."""
        if not isinstance(text, str) or len(text) != 64 or not _HEX.issuperset(text):
            shown = text if isinstance(text, str) else repr(text)
            raise InvalidHash(
                f"invalid SHA-256 hash '{shown[:80]}': expected exactly 64 hexadecimal characters"
            )
        return cls(bytes.fromhex(text))

    def to_hex(self) -> str:
        """Lower-case hex form, as used in keys."""
        return self.digest.hex()

    def __str__(self) -> str:
        return self.to_hex()

    def __repr__(self) -> str:
        return f"SHA256Hash({self.to_hex()})"


def is_hash_hex(text: str) -> bool:
    """True when ``text`` is a well-formed 64-character hex hash."""
    return isinstance(text, str) and len(text) == 64 and _HEX.issuperset(text)
