"""What each step kind does, through the Python API (never by running the CLI).

Every kind answers four questions for the runner (:class:`StepKind`):

``inputs``
    the digests its fingerprint is made of beyond its arguments: input files
    (SHA-256), input folders, the manifest hash of an input version, the
    store's refs;
``pending``
    whether a run of it was cut off and left processing state to resume from
    (an import's or a sync's ``state/`` object: :class:`StatefulStorage`);
``run``
    do it, returning bytes moved, a one-line summary and its *outputs*: what
    must still exist for a later run to skip it (a version ref and the
    manifest it names, a stored taxdump, an exported file and its SHA-256,
    the refs a sync moved);
``missing_output``
    which recorded output is gone or changed, if any.

Which kinds resume from processing state: ``import`` (the import pipeline
records every stored object; a re-run of the same import -- same database,
version and files -- skips them, see :mod:`talaria_storage.sequences.importing`)
and ``sync`` (the sync protocol's own state). ``export`` writes to a temporary
file renamed at the end, so a cut-off export left nothing and starts over;
``taxonomy``, ``verify`` and ``gc`` are short or idempotent and start over.

``reduce`` records its cluster table and delta chunks in processing state
and moves its profile last, so a re-run of a cut-off reduce skips the
selection and completes it (see :mod:`talaria_storage.reduction.building`);
``optimize`` records its progress in processing state (see
:mod:`talaria_storage.optimization`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from talaria_storage.config.open_store import open_store
from talaria_storage.core.errors import StorageError
from talaria_storage.core.keys import (
    REDUCTIONS,
    REFS,
    TAXONOMY,
    reduction_key,
    ref_key,
    taxonomy_key,
)
from talaria_storage.core.types import OperationType
from talaria_storage.jobs.fingerprint import FileDigests, canonical_json
from talaria_storage.jobs.schema import StepSpec
from talaria_storage.optimization.optimizer import StorageOptimizer
from talaria_storage.optimization.strategies import (
    DEFAULT_STRATEGIES,
    OptimizeOptions,
    parse_strategy,
)
from talaria_storage.reduction.building import reduce_database, selection_parameters
from talaria_storage.reduction.delta_check import DeltaDecodeCheck
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.database import open_database
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.sequences.taxonomy_store import TaxonomyCatalog
from talaria_storage.sequences.versions import HEAD, VersionCatalog, parse_spec
from talaria_storage.sync.protocol import pull, push

if TYPE_CHECKING:
    from talaria_storage.config.settings import StorageConfig
    from talaria_storage.core.types import SyncResult
    from talaria_storage.storage.store import Store

__all__ = ["KIND_RUNNERS", "StepContext", "StepKind", "StepResult"]

#: Files of a taxdump folder that ``taxonomy import`` reads (the rest of a dump is not its input).
TAXDUMP_FILES = ("nodes.dmp", "names.dmp", "merged.dmp", "delnodes.dmp")


Progress = Callable[[int, int | None], None]  # (bytes advanced, total bytes or None)


@dataclass(frozen=True, slots=True)
class StepResult:
    """What a finished step reports: bytes it read or wrote, a summary line, outputs to check later."""

    bytes: int
    summary: str
    outputs: dict[str, str] = field(default_factory=dict)


@dataclass
class StepContext:
    """What every step works with: the job's store, its config, the digest cache, open remotes."""

    store: Store | None  # None only in a dry run against a store that does not exist yet
    config: StorageConfig
    config_path: str | None
    digests: FileDigests
    folder: Path  # the job file's folder (paths in fingerprints are relative to it)
    _remotes: dict[tuple[str, bool], Store] = field(default_factory=dict)

    def require_store(self) -> Store:
        if self.store is None:
            raise StorageError(f"the store {self.config.location} does not exist yet")
        return self.store

    def remote(self, name_or_location: str, *, create: bool) -> Store:
        """The store a sync step's ``remote`` names, opened once per job."""
        location = self.config.remote(name_or_location)
        key = (location, create)
        if key not in self._remotes:
            if not create and (location, True) in self._remotes:
                return self._remotes[(location, True)]
            self._remotes[key] = open_store(location, config_path=self.config_path, create=create)
        return self._remotes[key]

    def relative(self, path: str) -> str:
        """``path`` relative to the job's folder when inside it (fingerprints survive moving the folder)."""
        try:
            return Path(path).relative_to(self.folder).as_posix()
        except ValueError:
            return path

    def close(self) -> None:
        remotes, self._remotes = self._remotes, {}
        for store in remotes.values():
            store.close()


class StepKind(Protocol):
    """One kind of step (see the module docstring for the four questions)."""

    def inputs(self, step: StepSpec, ctx: StepContext) -> dict[str, str]: ...

    def pending(self, step: StepSpec, ctx: StepContext) -> str | None: ...

    def run(self, step: StepSpec, ctx: StepContext, progress: Progress) -> StepResult: ...

    def missing_output(self, step: StepSpec, ctx: StepContext, outputs: Mapping[str, str]) -> str | None: ...


#: Every ref a store-wide step (verify, gc, optimize) sees: versions, profiles, taxdumps.
EVERY_REF = (REFS, REDUCTIONS, TAXONOMY)


def _refs_digest(store: Store | None, prefixes: tuple[str, ...], keep: Callable[[str], bool] = lambda k: True) -> str:
    """SHA-256 over the refs under ``prefixes`` (key -> hash): "the versions this step sees"."""
    refs: dict[str, str] = {}
    if store is not None:
        for prefix in prefixes:
            refs.update({k: h.to_hex() for k, h in store.refs.list(prefix).items() if keep(k)})
    return hashlib.sha256(canonical_json(refs)).hexdigest()


def _ref_outputs_missing(store: Store | None, outputs: Mapping[str, str]) -> str | None:
    for name, expected in outputs.items():
        kind, _, key = name.partition(":")
        if kind != "ref":
            continue
        found = None if store is None else store.refs.get(key)
        if found is None:
            return f"output {key} is gone"
        if found.to_hex() != expected:
            return f"output {key} now names another object"
        if key.startswith(REFS) and not store.manifests.has_chunk(found):  # type: ignore[union-attr]
            return f"output {key}: its manifest is gone"
    return None


class _Simple:
    """Defaults: no resumable state, outputs are refs."""

    def pending(self, step: StepSpec, ctx: StepContext) -> str | None:
        return None

    def missing_output(self, step: StepSpec, ctx: StepContext, outputs: Mapping[str, str]) -> str | None:
        return _ref_outputs_missing(ctx.store, outputs)


class ImportStep(_Simple):
    """``talaria-storage import``: files -> a new version of a database (resumable)."""

    def inputs(self, step: StepSpec, ctx: StepContext) -> dict[str, str]:
        return {f"file:{ctx.relative(p)}": ctx.digests.file(p) for p in step.input_files()}

    def pending(self, step: StepSpec, ctx: StepContext) -> str | None:
        if ctx.store is None:
            return None
        state = ctx.store.states.find(step.args["database"], OperationType.IMPORT, None, step.args["version"])
        if state is None:
            return None
        return f"import state {state.operation_id} holds {len(state.completed_chunks)} stored object(s)"

    def run(self, step: StepSpec, ctx: StepContext, progress: Progress) -> StepResult:
        store = ctx.require_store()
        a = step.args
        adopted = self._already_imported(step, ctx, store)
        if adopted is not None:
            return adopted
        total = sum(os.path.getsize(p) for p in a["files"])
        db = open_database(store, a["database"])
        result = db.import_files(
            list(a["files"]), version=a["version"], taxonomy=a["taxonomy"], taxon=a["taxon"],
            id_regex=a["id_regex"], progress=lambda n: progress(n, total),
        )
        key = ref_key(result.database, result.version)
        return StepResult(
            result.new_bytes,
            f"imported {result.records} records into {result.database}@{result.version}: {result.chunks} chunks "
            f"({result.new_chunks} new)",
            {f"ref:{key}": result.manifest.to_hex()},
        )

    @staticmethod
    def _already_imported(step: StepSpec, ctx: StepContext, store: Store) -> StepResult | None:
        """The version, when it exists and was imported from exactly these files (a run cut off after publishing)."""
        a = step.args
        key = ref_key(a["database"], a["version"])
        h = store.refs.get(key)
        if h is None:
            return None
        manifest = VersionCatalog(store).load(h)
        wanted = [ctx.digests.file(p) for p in a["files"]]
        if [s.sha256 for s in manifest.sources] != wanted:
            raise StorageError(
                f"{a['database']}@{a['version']} already exists and was imported from other files: "
                "give this step another version (e.g. version = \"${release}\" with a new release)"
            )
        return StepResult(0, f"{a['database']}@{a['version']} was already imported from these files",
                          {f"ref:{key}": h.to_hex()})


class TaxonomyStep(_Simple):
    """``talaria-storage taxonomy import``: a taxdump folder -> a stored taxonomy version."""

    def inputs(self, step: StepSpec, ctx: StepContext) -> dict[str, str]:
        return {f"dir:{ctx.relative(step.args['dir'])}": ctx.digests.folder(step.args["dir"], TAXDUMP_FILES)}

    def run(self, step: StepSpec, ctx: StepContext, progress: Progress) -> StepResult:
        catalog = TaxonomyCatalog(ctx.require_store())
        imported = catalog.import_taxdump(step.args["dir"], version=step.args["version"])
        tree = catalog.load(imported.version)
        return StepResult(
            0, f"stored taxonomy {imported.version}: {len(tree)} taxa",
            {f"ref:{taxonomy_key(imported.version)}": imported.object.to_hex()},
        )


class ExportStep:
    """``talaria-storage export -o FILE``: a version -> a file, written atomically."""

    def inputs(self, step: StepSpec, ctx: StepContext) -> dict[str, str]:
        name, version = parse_spec(step.args["database"])
        found = None if ctx.store is None else ctx.store.refs.get(ref_key(name, version or HEAD))
        inputs = {f"version:{name}@{version or HEAD}": found.to_hex() if found is not None else "missing"}
        if step.args["descendants"]:
            head = None if ctx.store is None else ctx.store.refs.get(taxonomy_key(HEAD))
            inputs["taxonomy:HEAD"] = head.to_hex() if head is not None else "missing"
        return inputs

    def pending(self, step: StepSpec, ctx: StepContext) -> str | None:
        return None

    def run(self, step: StepSpec, ctx: StepContext, progress: Progress) -> StepResult:
        store = ctx.require_store()
        a = step.args
        name, version = parse_spec(a["database"])
        db = open_database(store, name)
        _, manifest = db.manifest(version)
        tree = TaxonomyCatalog(store).load() if a["descendants"] else None
        output = Path(a["output"])
        with _atomic_output(output) as out:
            written = db.export(
                cast(BinaryIO, _Counting(out, progress)), version=manifest.version, file_index=a["file_index"],
                normalized=a["normalized"], width=a["width"], taxon=a["taxon"], descendants=a["descendants"],
                taxonomy=tree, format=a["format"],
            )
        return StepResult(written, f"exported {name}@{manifest.version}: {written} bytes to {output}",
                          {f"file:{output}": ctx.digests.file(output)})

    def missing_output(self, step: StepSpec, ctx: StepContext, outputs: Mapping[str, str]) -> str | None:
        for name, expected in outputs.items():
            kind, _, path = name.partition(":")
            if kind != "file":
                continue
            if not os.path.isfile(path):
                return f"output {ctx.relative(path)} is gone"
            if ctx.digests.file(path) != expected:
                return f"output {ctx.relative(path)} was changed"
        return None


class VerifyStep(_Simple):
    """``talaria-storage verify``: re-hash objects, check refs; problems fail the step."""

    def inputs(self, step: StepSpec, ctx: StepContext) -> dict[str, str]:
        return {"refs": _refs_digest(ctx.store, EVERY_REF)}

    def run(self, step: StepSpec, ctx: StepContext, progress: Progress) -> StepResult:
        store = ctx.require_store()
        problems = verify_store(
            store, subset=step.args["subset"], seed=step.args["seed"], delta_check=DeltaDecodeCheck(store)
        )
        if problems:
            first = problems[0]
            raise StorageError(
                f"verify found {len(problems)} bad object(s) in {store.location}, first {first.key}: {first.message}"
            )
        return StepResult(0, f"ok: no problems in {store.location}")


class GcStep(_Simple):
    """``talaria-storage gc``: remove what no ref (or unfinished state) reaches, sparing young objects."""

    def inputs(self, step: StepSpec, ctx: StepContext) -> dict[str, str]:
        states = sorted(s.operation_id for s in ctx.store.states.list()) if ctx.store is not None else []
        return {"refs": _refs_digest(ctx.store, EVERY_REF),
                "states": hashlib.sha256(canonical_json(states)).hexdigest()}

    def run(self, step: StepSpec, ctx: StepContext, progress: Progress) -> StepResult:
        store = ctx.require_store()
        result = collect_garbage(store, dry_run=step.args["dry_run"], grace_seconds=step.args["grace"])
        verb = "would remove" if step.args["dry_run"] else "removed"
        return StepResult(result.freed_bytes, f"{verb} {result.removed} object(s), {result.freed_bytes} bytes; "
                          f"kept {result.kept}, spared {result.spared_young} young")


class _SyncProgress:
    """:class:`talaria_storage.sync.protocol.SyncProgress` -> the runner's byte progress."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._total = 0

    def begin(self, database: str, objects: int, estimated_bytes: int) -> None:
        self._total += estimated_bytes
        self._progress(0, self._total or None)

    def advance(self, database: str, objects: int, nbytes: int) -> None:
        self._progress(nbytes, self._total or None)

    def end(self, database: str, result: SyncResult) -> None:
        pass


class SyncStep:
    """``talaria-storage sync push|pull REMOTE``: copy objects, then move refs (resumable)."""

    @staticmethod
    def _sides(step: StepSpec, ctx: StepContext, *, create: bool = True) -> tuple[Store, Store]:
        """(source, destination); a push creates the remote store only when ``create`` (when it runs)."""
        local = ctx.require_store()
        push_it = step.args["direction"] == "push"
        other = ctx.remote(step.args["remote"], create=push_it and create)
        if other.location == local.location:
            raise StorageError(f"remote '{step.args['remote']}' is this store ({other.location}): name another store")
        return (local, other) if push_it else (other, local)

    @staticmethod
    def _keep(step: StepSpec) -> Callable[[str], bool]:
        names = {parse_spec(d)[0] for d in step.args["database"] or ()}
        return lambda key: not names or key.split("/")[1] in names

    def inputs(self, step: StepSpec, ctx: StepContext) -> dict[str, str]:
        if step.args["direction"] == "push":
            source = ctx.store  # the remote is not opened (nor created) to judge a push
        else:
            source = ctx.remote(step.args["remote"], create=False)
        return {"source-refs": _refs_digest(source, (REFS, REDUCTIONS), self._keep(step))}

    def pending(self, step: StepSpec, ctx: StepContext) -> str | None:
        if ctx.store is None:
            return None
        operation = OperationType.SYNC_PUSH if step.args["direction"] == "push" else OperationType.SYNC_PULL
        found: list[str] = []
        with contextlib.suppress(StorageError):  # a remote that does not exist yet holds no state
            for store in dict.fromkeys(self._sides(step, ctx, create=False)):
                found += [s.operation_id for s in store.states.list() if s.operation is operation]
        return f"sync state {', '.join(found)}" if found else None

    def run(self, step: StepSpec, ctx: StepContext, progress: Progress) -> StepResult:
        source, dest = self._sides(step, ctx)
        move = push if step.args["direction"] == "push" else pull
        local, other = (source, dest) if move is push else (dest, source)
        result = move(local, other, list(step.args["database"] or ()) or None, force=step.args["force"],
                      progress=_SyncProgress(progress))
        keep = self._keep(step)
        outputs = {f"remote-ref:{k}": h.to_hex() for prefix in (REFS, REDUCTIONS)
                   for k, h in dest.refs.list(prefix).items() if keep(k)}
        return StepResult(result.bytes_copied, f"{step.args['direction']}: {result.objects_copied} object(s) copied, "
                          f"{result.objects_skipped} already there, {len(result.refs_updated)} ref(s) moved", outputs)

    def missing_output(self, step: StepSpec, ctx: StepContext, outputs: Mapping[str, str]) -> str | None:
        if ctx.store is None:
            return "the store does not exist yet"
        try:
            _, dest = self._sides(step, ctx, create=False)
        except StorageError as exc:
            return f"the destination cannot be opened ({exc})"
        for name, expected in outputs.items():
            key = name.partition(":")[2]
            found = dest.refs.get(key)
            if found is None or found.to_hex() != expected:
                return f"output {key} at {dest.location} moved"
        return None


class OptimizeStep(_Simple):
    """``talaria-storage optimize``: deduplicate, recompress, repack, then collect what they replaced."""

    def inputs(self, step: StepSpec, ctx: StepContext) -> dict[str, str]:
        return {"refs": _refs_digest(ctx.store, EVERY_REF)}

    def run(self, step: StepSpec, ctx: StepContext, progress: Progress) -> StepResult:
        store = ctx.require_store()
        names = step.args.get("strategy")
        options = OptimizeOptions(
            strategies=tuple(parse_strategy(n) for n in names) if names else DEFAULT_STRATEGIES,
            dry_run=step.args["dry_run"],
            grace_seconds=float(step.args["grace"]),
        )
        report = StorageOptimizer(store).optimize(options)
        problems = report.verification.get("problems", [])
        if problems:
            raise StorageError(f"optimize: verification found {len(problems)} problem(s) in {store.location}: "
                               f"{problems[0]}; nothing was collected")
        verb = "would save" if options.dry_run else "saved"
        rows = ", ".join(f"{row.strategy} {row.saved_bytes}" for row in report.rows)
        return StepResult(report.saved_bytes, f"{verb} {report.saved_bytes} bytes ({rows})")


class ReduceStep(_Simple):
    """``talaria-storage reduce``: a version -> a reduction profile (re-running it is the resume)."""

    def inputs(self, step: StepSpec, ctx: StepContext) -> dict[str, str]:
        name, version = parse_spec(step.args["database"])
        found = None if ctx.store is None else ctx.store.refs.get(ref_key(name, version or HEAD))
        return {f"version:{name}@{version or HEAD}": found.to_hex() if found is not None else "missing"}

    def run(self, step: StepSpec, ctx: StepContext, progress: Progress) -> StepResult:
        args = step.args
        name, version = parse_spec(args["database"])
        parameters = selection_parameters(
            args["identity"], args["ratio"], 0.8 if args["coverage"] is None else args["coverage"], args["taxonomy_aware"]
        )
        db = open_database(ctx.require_store(), name)
        result = reduce_database(
            db, args["profile"], parameters, version=version, rank=args["rank"], update=args["update"]
        )
        return StepResult(
            result.delta_bytes,
            f"profile '{result.profile}' of {name}@{result.version}: {result.references} references, "
            f"{result.members} members (kept {result.kept_fraction:.1%})",
            outputs={"ref:" + reduction_key(name, result.profile): result.manifest.to_hex()},
        )


KIND_RUNNERS: dict[str, StepKind] = {
    "import": ImportStep(),
    "taxonomy": TaxonomyStep(),
    "reduce": ReduceStep(),
    "optimize": OptimizeStep(),
    "verify": VerifyStep(),
    "gc": GcStep(),
    "sync": SyncStep(),
    "export": ExportStep(),
}


# -- export helpers ------------------------------------------------------------------------------


class _Counting:
    """A binary writer that reports bytes written as progress."""

    def __init__(self, out: Any, progress: Progress) -> None:
        self._out = out
        self._progress = progress

    def write(self, data: bytes) -> int:
        n = self._out.write(data)
        self._progress(len(data), None)
        return n

    def flush(self) -> None:
        self._out.flush()


@contextlib.contextmanager
def _atomic_output(path: Path) -> Iterator[Any]:
    """A temporary file beside ``path``, renamed onto it only if the block succeeds (as the CLI's export)."""
    if path.is_dir():
        raise StorageError(f"{path}: is a folder; give output the name of the file to write")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(temp, 0o666 & ~mask)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise

