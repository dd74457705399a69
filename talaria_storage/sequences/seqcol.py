"""Sequence collections (GA4GH refget seqcol v1.0.0): each database version is one.

Terms (seqcol specification, "Encoding" and "Terminology")
-----------------------------------------------------------
collection
    A version's records in their original order (every file, in import
    order), as parallel arrays: ``names`` (the first word of each header),
    ``lengths`` (canonical residues) and ``sequences`` (refget ``SQ.`` ids).
level 2
    The arrays themselves, plus the ancillary attributes derived from them:
    ``name_length_pairs``, ``sorted_sequences`` (the spec's section 5).
level 1
    Each attribute's value canonicalised as RFC 8785 JSON, then digested
    with ``sha512t24u``; ``sorted_name_length_pairs`` (transient: it has a
    level 1 digest and no level 2 value) is the sorted digests of each
    ``{"length", "name"}`` object.
level 0
    ``sha512t24u`` of the canonical JSON of the level 1 object restricted to
    the *inherent* attributes, ``names`` and ``sequences``: the collection's
    digest. ``lengths`` is at level 1 but, per the base schema, does not
    change the digest (a collection's lengths follow from its sequences).

RFC 8785 here is ``json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)``: the spec itself gives that function and says it is
RFC 8785 when keys are ASCII, there are no floats and integers fit in 64
bits -- all true of these attributes (their keys are fixed, lengths are
integers). A name that is not UTF-8 is decoded with U+FFFD replacement
characters, so every name is JSON text.

Computing a collection walks the version's records once (each distinct
sequence is hashed once). The level 0 and level 1 digests are kept in the
store's lookup index under ``q/<manifest SHA-256>``; like every index entry
they are a cache of what the manifest says, recomputed when absent.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from talaria_storage.core.hashing import SHA256Hash
from talaria_storage.formats.genbank import MARK
from talaria_storage.sequences.canonical import sha512t24u
from talaria_storage.sequences.order import decode_order

if TYPE_CHECKING:
    from talaria_storage.sequences.database import SequenceDatabase

INHERENT = ("names", "sequences")
TRANSIENT = ("sorted_name_length_pairs",)
#: Every attribute a collection here has, in the order level 1 lists them.
ATTRIBUTES = ("lengths", "name_length_pairs", "names", "sequences", "sorted_name_length_pairs", "sorted_sequences")
#: Attributes with a level 2 value (every one but the transient).
ARRAYS = tuple(a for a in ATTRIBUTES if a not in TRANSIENT)
_CACHE_PREFIX = b"q/"
_CACHE_LAYOUT = 1

#: The JSON schema served by ``/service-info`` (the spec's base schema with the ancillary attributes).
SCHEMA: dict[str, Any] = {
    "description": "A collection of biological sequences: one version of a talaria-storage database.",
    "type": "object",
    "$id": "https://ga4gh.github.io/refget/schemas/seqcol_extended_v1.0.0.json",
    "properties": {
        "lengths": {"type": "array", "collated": True, "items": {"type": "integer"},
                    "description": "Number of residues in each sequence."},
        "names": {"type": "array", "collated": True, "items": {"type": "string"},
                  "description": "The first word of each record's header."},
        "sequences": {"type": "array", "collated": True, "items": {"type": "string"},
                      "description": "Refget sequences v2 identifiers (SQ.) of each sequence."},
        "name_length_pairs": {"type": "array", "collated": True,
                              "items": {"type": "object", "properties": {"name": {"type": "string"},
                                                                         "length": {"type": "integer"}}}},
        "sorted_name_length_pairs": {"type": "array", "collated": False, "items": {"type": "string"}},
        "sorted_sequences": {"type": "array", "collated": False, "items": {"type": "string"}},
    },
    "required": ["names", "lengths", "sequences"],
    "ga4gh": {"inherent": list(INHERENT), "transient": list(TRANSIENT), "passthru": []},
}


def canonical_json(value: Any) -> bytes:
    """RFC 8785 canonical JSON of a seqcol value (see the module docstring for why this suffices)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True).encode("utf-8")


def digest_json(value: Any) -> str:
    """``sha512t24u`` of :func:`canonical_json` of ``value``: a level 1 digest."""
    return sha512t24u(canonical_json(value))


def level0_digest(level1: Mapping[str, Any]) -> str:
    """The collection digest: the level 1 digests of the inherent attributes, canonicalised and digested."""
    return digest_json({k: level1[k] for k in INHERENT if k in level1})


@dataclass(frozen=True, slots=True)
class SequenceCollection:
    """A sequence collection's three collated arrays; everything else is derived from them."""

    names: tuple[str, ...]
    lengths: tuple[int, ...]
    sequences: tuple[str, ...]

    def __post_init__(self) -> None:
        if not len(self.names) == len(self.lengths) == len(self.sequences):
            raise ValueError(
                f"a collection's arrays are collated: {len(self.names)} names, "
                f"{len(self.lengths)} lengths, {len(self.sequences)} sequences"
            )

    def __len__(self) -> int:
        return len(self.names)

    def level2(self) -> dict[str, list[Any]]:
        """The canonical representation: every attribute with a value (the transient ones have none)."""
        return {
            "lengths": list(self.lengths),
            "name_length_pairs": [{"length": n, "name": s} for s, n in zip(self.names, self.lengths)],
            "names": list(self.names),
            "sequences": list(self.sequences),
            "sorted_sequences": sorted(self.sequences),
        }

    def sorted_name_length_pairs(self) -> list[str]:
        """The transient attribute's array: each name-length object digested, the digests sorted."""
        return sorted(digest_json({"length": n, "name": s}) for s, n in zip(self.names, self.lengths))

    def level1(self) -> dict[str, str]:
        """Each attribute's level 1 digest."""
        found = {name: digest_json(value) for name, value in self.level2().items()}
        found["sorted_name_length_pairs"] = digest_json(self.sorted_name_length_pairs())
        return dict(sorted(found.items()))

    @property
    def digest(self) -> str:
        """Level 0: the collection's identity."""
        return level0_digest(self.level1())


@dataclass(frozen=True, slots=True)
class CollectionDigests:
    """A version's collection digests (what ``list --json`` and ``/list/collection`` show)."""

    digest: str  # level 0
    level1: dict[str, str]
    count: int  # sequences in the collection (records of the version)


def record_name(header: bytes) -> str:
    """A record's seqcol name: the first word of its header (the FASTA part of a GenBank/EMBL one)."""
    words = header.partition(MARK)[0].split(maxsplit=1)
    return words[0].decode("utf-8", "replace") if words else ""


def version_collection(db: SequenceDatabase, version: str | None = None) -> SequenceCollection:
    """A version (HEAD when None) as a sequence collection: its records in their original order."""
    _, manifest = db.manifest(version)
    by_chunk: dict[int, list[tuple[str, int, str]]] = {}
    for entry in db.entries(manifest.version):
        by_chunk.setdefault(entry.chunk, []).append((record_name(entry.header), entry.length, entry.refget))
    names: list[str] = []
    lengths: list[int] = []
    sequences: list[str] = []
    for file in manifest.extra.get("files", []):
        for ci, first, count in decode_order(db.store.get_chunk(SHA256Hash.from_hex(file["order"]))):
            for name, length, refget in by_chunk[ci][first : first + count]:
                names.append(name)
                lengths.append(length)
                sequences.append(refget)
    return SequenceCollection(tuple(names), tuple(lengths), tuple(sequences))


def version_digests(db: SequenceDatabase, version: str | None = None) -> CollectionDigests:
    """A version's level 0 and level 1 digests, from the lookup index or computed (and kept there)."""
    h, manifest = db.manifest(version)
    key = _CACHE_PREFIX + h.digest
    cached = db.index.get(key)
    if cached is not None:
        info = json.loads(cached)
        if info.get("layout") == _CACHE_LAYOUT:
            return CollectionDigests(info["digest"], dict(info["level1"]), int(info["count"]))
    collection = version_collection(db, manifest.version)
    found = CollectionDigests(collection.digest, collection.level1(), len(collection))
    value = {"layout": _CACHE_LAYOUT, "digest": found.digest, "level1": found.level1, "count": found.count}
    db.index.write_batch([(key, json.dumps(value).encode())])
    return found


def compare(a: Mapping[str, Sequence[Any]], b: Mapping[str, Sequence[Any]]) -> dict[str, Any]:
    """The seqcol comparison of two level 2 collections (spec section 3.3), without ``digests``.

    ``a_and_b_count`` counts matching elements with their multiplicity
    (``min`` of the two filtered lengths). ``a_and_b_same_order`` is None
    when fewer than two elements match or when the duplicates among the
    matches are unbalanced, else whether the matches are in the same order
    (the "same-order specification").
    """
    keys_a, keys_b = set(a), set(b)
    both = sorted(keys_a & keys_b)
    result: dict[str, Any] = {
        "attributes": {"a_only": sorted(keys_a - keys_b), "b_only": sorted(keys_b - keys_a), "a_and_b": both},
        "array_elements": {
            "a_count": {k: len(a[k]) for k in sorted(keys_a)},
            "b_count": {k: len(b[k]) for k in sorted(keys_b)},
            "a_and_b_count": {},
            "a_and_b_same_order": {},
        },
    }
    for key in both:
        count, order = _compare_arrays(a[key], b[key])
        result["array_elements"]["a_and_b_count"][key] = count
        result["array_elements"]["a_and_b_same_order"][key] = order
    return result


def _compare_arrays(a: Sequence[Any], b: Sequence[Any]) -> tuple[int, bool | None]:
    """(matching elements, same order) of two attribute arrays; elements compared as canonical JSON."""
    ka, kb = _keys(a), _keys(b)
    in_b, in_a = set(kb), set(ka)
    fa = [x for x in ka if x in in_b]
    fb = [x for x in kb if x in in_a]
    overlap = min(len(fa), len(fb))
    if overlap < 2 or len(fa) != len(fb):
        return overlap, None  # too few matches, or unbalanced duplicates: order is undefined
    return overlap, fa == fb


def _keys(values: Iterable[Any]) -> list[Any]:
    """Hashable stand-ins for array elements (objects, such as name-length pairs, as canonical JSON)."""
    return [canonical_json(v) if isinstance(v, (dict, list)) else v for v in values]
