"""Step fingerprints: "has this exact step, on these exact inputs, finished before?"

As in DVC (``dvc/stage/cache.py``) and Nextflow's task hashes, a step's
fingerprint is computed *before* it runs, from what decides its result:

* its kind and its resolved arguments (after ``${var}`` substitution; paths
  inside the job's folder written relative to it, so moving the folder does
  not change them);
* the digests of its inputs: the SHA-256 of each input file, of each input
  folder's files, the manifest hash of each input version, the store's refs;
* the fingerprints of the steps it runs ``after``, so a change reaches every
  step that depends on it;
* the engine's format versions (:data:`ENGINE_FORMAT`): a new store, manifest,
  chunk or frame format makes old results untrustworthy.

The fingerprint is the SHA-256 of the canonical JSON of those parts (sorted
keys, no spaces, UTF-8). The parts themselves are kept in the job's log, so a
verdict can say *what* changed (:func:`explain_change`).

Hashing a 90 GB input on every run would cost more than most steps, so file
digests are cached as DVC's state database does: by absolute path, keyed on
(size, mtime in ns, inode); a file whose stat matches is not read again
(:class:`FileDigests`). A file rewritten in place within one mtime tick with
the same size would be missed, as in DVC; ``--force`` is the remedy.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from talaria_storage.jobs.schema import JOB_FORMAT_VERSION
from talaria_storage.sequences.manifest import MANIFEST_VERSION
from talaria_storage.sequences.record_chunk import CHUNK_VERSION
from talaria_storage.sequences.taxonomy import FORMAT_VERSION as TAXONOMY_FORMAT_VERSION
from talaria_storage.storage.frame import FORMAT_VERSION as FRAME_FORMAT_VERSION
from talaria_storage.storage.store import STORE_FORMAT_VERSION

__all__ = ["ENGINE_FORMAT", "FileDigests", "Fingerprint", "canonical_json", "explain_change", "fingerprint"]

#: The format versions whose change invalidates every recorded result.
ENGINE_FORMAT: Mapping[str, int] = {
    "job": JOB_FORMAT_VERSION,
    "store": STORE_FORMAT_VERSION,
    "frame": FRAME_FORMAT_VERSION,
    "manifest": MANIFEST_VERSION,
    "record_chunk": CHUNK_VERSION,
    "taxonomy": TAXONOMY_FORMAT_VERSION,
}

_BLOCK = 1 << 20


def canonical_json(data: Any) -> bytes:
    """The one byte form of ``data`` that fingerprints hash (sorted keys, no whitespace, UTF-8)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A step's fingerprint and the parts it was computed from."""

    digest: str  # 64 hex characters
    parts: Mapping[str, Any]

    @property
    def short(self) -> str:
        return self.digest[:8] + "…"


def fingerprint(
    kind: str,
    args: Mapping[str, Any],
    inputs: Mapping[str, str],
    upstream: Mapping[str, str],
) -> Fingerprint:
    """The fingerprint of a step of ``kind`` with ``args``, input digests and upstream fingerprints."""
    parts = {
        "kind": kind,
        "args": {k: list(v) if isinstance(v, tuple) else v for k, v in args.items()},
        "inputs": dict(inputs),
        "after": dict(upstream),
        "engine": dict(ENGINE_FORMAT),
    }
    return Fingerprint(hashlib.sha256(canonical_json(parts)).hexdigest(), parts)


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def explain_change(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """Why ``new`` parts differ from ``old`` ones, as a verdict reason ("input r1.fasta changed")."""
    if old.get("engine") != new.get("engine"):
        return "engine format changed"
    if old.get("kind") != new.get("kind"):
        return f"kind changed ({old.get('kind')} -> {new.get('kind')})"
    reasons: list[str] = []
    old_args, new_args = old.get("args", {}), new.get("args", {})
    for name in sorted(set(old_args) | set(new_args)):
        if old_args.get(name) != new_args.get(name):
            reasons.append(f"argument {name} changed ({_show(old_args.get(name))} -> {_show(new_args.get(name))})")
    old_inputs, new_inputs = old.get("inputs", {}), new.get("inputs", {})
    for name in sorted(set(old_inputs) | set(new_inputs)):
        if old_inputs.get(name) != new_inputs.get(name):
            what = name.split(":", 1)[-1]
            if name not in old_inputs:
                reasons.append(f"new input {what}")
            elif name not in new_inputs:
                reasons.append(f"input {what} no longer used")
            else:
                reasons.append(f"input {what} changed")
    old_after, new_after = old.get("after", {}), new.get("after", {})
    for name in sorted(set(old_after) | set(new_after)):
        if old_after.get(name) != new_after.get(name):
            reasons.append(f"step {name} (after) changed")
    if not reasons:
        return "fingerprint changed"
    return "; ".join(reasons[:3]) + (f"; and {len(reasons) - 3} more" if len(reasons) > 3 else "")


class FileDigests:
    """SHA-256 of input files, cached by (size, mtime_ns, inode) in a JSON file (see the module docstring).

    ``save()`` writes the cache (atomically); a dry run never calls it, so it writes nothing.
    """

    def __init__(self, cache_file: Path | None) -> None:
        self._file = cache_file
        self._entries: dict[str, list[Any]] = {}
        self._dirty = False
        if cache_file is not None:
            try:
                loaded = json.loads(cache_file.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self._entries = {k: v for k, v in loaded.items() if isinstance(v, list) and len(v) == 4}
            except (OSError, ValueError):
                self._entries = {}  # no cache yet, or a torn one: it is only a cache

    def file(self, path: str | os.PathLike[str]) -> str:
        """The SHA-256 (hex) of the file at ``path``, read only when its stat changed."""
        name = os.path.abspath(os.fspath(path))
        st = os.stat(name)
        key = [st.st_size, st.st_mtime_ns, st.st_ino]
        cached = self._entries.get(name)
        if cached is not None and cached[:3] == key:
            return str(cached[3])
        digest = hashlib.sha256()
        with open(name, "rb") as handle:
            while block := handle.read(_BLOCK):
                digest.update(block)
        self._entries[name] = [*key, digest.hexdigest()]
        self._dirty = True
        return digest.hexdigest()

    def folder(self, path: str | os.PathLike[str], names: Iterable[str] | None = None) -> str:
        """A digest of a folder's files (``names`` only, when given): SHA-256 of their names and digests."""
        root = Path(path)
        wanted = sorted(names) if names is not None else sorted(p.name for p in root.iterdir() if p.is_file())
        listing = {name: self.file(root / name) for name in wanted if (root / name).is_file()}
        return hashlib.sha256(canonical_json(listing)).hexdigest()

    def save(self) -> None:
        """Write the cache beside the job's log (temp file + rename: never a torn cache)."""
        if self._file is None or not self._dirty:
            return
        self._file.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self._file.parent, prefix=".digests.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self._entries, out, sort_keys=True)
            os.replace(temp, self._file)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self._dirty = False
