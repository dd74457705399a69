"""The sequence-database commands of ``talaria-storage``: import, export, get, list, diff.

Each is a thin shell over the database layer
(:class:`~talaria_storage.sequences.database.SequenceDatabase` and the
modules beside it): the store comes from ``state(ctx).store()``, failures
are :class:`StorageError`, reports take ``--json``; no command reads a
backend directly.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, BinaryIO

import typer

from talaria_storage.cli.common import (
    EXIT_FAILURE,
    DatabaseOption,
    ExecutorOption,
    JsonOption,
    byte_progress_bar,
    database_spec,
    emit_json,
    executor_client,
    human_bytes,
    state,
)
from talaria_storage.core.errors import StorageError
from talaria_storage.core.keys import validate_name
from talaria_storage.core.lazy_module import LazyModule
from talaria_storage.formats.fasta import FastqRecord, write_records
from talaria_storage.formats.genbank import MARK
from talaria_storage.sequences.canonical import digests
from talaria_storage.sequences.dask_cluster import check_executor_spec
from talaria_storage.sequences.database import open_database, record_formatter
from talaria_storage.sequences.identifiers import accession_from_header
from talaria_storage.sequences.versions import VersionCatalog

if TYPE_CHECKING:
    from talaria_storage.formats.fasta import SequenceRecord
    from talaria_storage.io import talaria_metadata
    from talaria_storage.optimization import optimizer
    from talaria_storage.reduction import profile as reduction_profile
    from talaria_storage.sequences import diff as version_diff
    from talaria_storage.sequences import seqcol, taxonomy_store
else:
    # Imported on first use (core.lazy_module): ``get``, ``list`` and ``export`` without a profile
    # need none of them, and through the first three a fresh ``get`` imported the whole reduction engine.
    talaria_metadata = LazyModule("talaria_storage.io.talaria_metadata")
    optimizer = LazyModule("talaria_storage.optimization.optimizer")
    reduction_profile = LazyModule("talaria_storage.reduction.profile")
    version_diff = LazyModule("talaria_storage.sequences.diff")
    seqcol = LazyModule("talaria_storage.sequences.seqcol")
    taxonomy_store = LazyModule("talaria_storage.sequences.taxonomy_store")

_RANGE = re.compile(r"(\d+)-(\d+)")

class Alphabet(str, enum.Enum):
    """The residue alphabets of ``import --alphabet`` (``formats.fasta.ALPHABETS``)."""

    iupac = "iupac"
    any = "any"


class RecordFormat(str, enum.Enum):
    """The formats of ``--format`` (``sequences.database.EXPORT_FORMATS``)."""

    fasta = "fasta"
    genbank = "genbank"
    embl = "embl"


FormatOption = Annotated[
    RecordFormat | None,
    typer.Option(
        "--format",
        help="fasta (GenBank/EMBL records as >id definition, 60 columns), genbank or embl (the "
        "records' original text). Default: byte-exact as imported.",
    ),
]

commands = typer.Typer()


def _text(raw: bytes) -> str:
    """Header bytes as JSON-safe text (undecodable bytes shown as ``\\xNN``)."""
    return raw.decode("utf-8", "backslashreplace")


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


# -- import ---------------------------------------------------------------------------------------


class ImportProgress:
    """Reports bytes of input read: a rich bar on a terminal, one plain line per finished file otherwise.

    Called with the number of input bytes read since the last call (the
    ``progress`` callback of :meth:`SequenceDatabase.import_files`).
    """
    def __init__(self, files: list[Path]) -> None:
        from rich.console import Console

        self._console = Console(stderr=True, highlight=False)
        self._files = [(f, f.stat().st_size if f.is_file() else 0) for f in files]
        self._total = sum(size for _, size in self._files)
        self._done = 0
        self._next_file = 0
        self._boundary = self._files[0][1] if self._files else 0  # bytes read once file _next_file is done
        self._bar: Any = None
        self._task: Any = None

    def __enter__(self) -> ImportProgress:
        if self._console.is_terminal:
            self._bar = byte_progress_bar(self._console)
            self._bar.__enter__()
            self._task = self._bar.add_task("import", total=self._total)
        return self

    def __call__(self, read: int) -> None:
        self._done += read
        if self._bar is not None:
            self._bar.update(self._task, completed=self._done)
            return
        while self._next_file < len(self._files) and self._done >= self._boundary:
            path, size = self._files[self._next_file]
            typer.echo(f"read {path} ({human_bytes(size)})", err=True)
            self._next_file += 1
            if self._next_file < len(self._files):
                self._boundary += self._files[self._next_file][1]

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


@commands.command("import")
def import_files(
    ctx: typer.Context,
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE", help="FASTA/FASTQ/GenBank/EMBL files (plain, .gz or .zst)."),
    ],
    database: DatabaseOption,
    version: Annotated[
        str | None,
        typer.Option("--version", "-v", metavar="V", help="Version name (default: UTC timestamp)."),
    ] = None,
    taxonomy: Annotated[
        str,
        typer.Option(
            "--taxonomy",
            metavar="header|MAPPING_FILE|none",
            help="Where taxon ids come from: OX= in headers, an accession->taxid file, or none.",
        ),
    ] = "header",
    taxon: Annotated[
        int | None,
        typer.Option("--taxon", metavar="ID", help="Taxon id for records that carry none."),
    ] = None,
    alphabet: Annotated[
        Alphabet,
        typer.Option(
            "--alphabet",
            help="iupac: residues are IUPAC letters, '*', '-' or '.' (anything else is an error "
            "naming line and column); any: keep every printable byte.",
        ),
    ] = Alphabet.iupac,
    id_regex: Annotated[
        str | None,
        typer.Option(
            "--id-regex",
            metavar="REGEX",
            help="Also look records up by each match of REGEX in their headers (its first group, "
            "if it has one), e.g. 'GN=(\\S+)' for gene names.",
        ),
    ] = None,
    executor: ExecutorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Import files as a new version of a database and make it HEAD."""
    validate_name(database, "database name")
    if version is not None:
        validate_name(version, "version")
    if executor is not None:
        check_executor_spec(executor)  # a typo fails before the store is opened
    db = open_database(state(ctx).store(create=True), database)
    with ImportProgress(files) as progress, executor_client(executor) as client:
        result = db.import_files(
            files, version=version, taxonomy=taxonomy, taxon=taxon, progress=progress,
            alphabet=alphabet.value, id_regex=id_regex, executor=client,
        )
    optimized = optimizer.auto_optimize(db.store)  # [optimization] auto_optimize: the default strategies, else None
    if json_output:
        emit_json(
            {
                "auto_optimize": optimized.to_dict() if optimized is not None else None,
                "database": result.database,
                "version": result.version,
                "manifest": result.manifest.to_hex(),
                "records": result.records,
                "chunks": result.chunks,
                "new_chunks": result.new_chunks,
                "new_bytes": result.new_bytes,
                "new_packs": result.new_packs,
                "reused_packs": result.reused_packs,
                "input_bytes": result.input_bytes,
                "logical_bytes": result.logical_bytes,
                "seconds": result.seconds,
            }
        )
        return
    typer.echo(
        f"imported {result.records} records into {result.database}@{result.version}: "
        f"{result.chunks} chunks ({result.new_chunks} new, {human_bytes(result.new_bytes)}), "
        f"{result.reused_packs} sequence packs reused from earlier versions, "
        f"{human_bytes(result.logical_bytes)} of sequence data in {result.seconds:.1f}s"
    )
    if optimized is not None:
        typer.echo(
            f"auto_optimize: {len(optimized.rows)} strategies saved {human_bytes(optimized.saved_bytes)} "
            f"({'; '.join(note for row in optimized.rows for note in row.notes)})"
        )


# -- export ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _atomic_output(path: Path) -> Iterator[BinaryIO]:
    """A temporary file beside ``path``, renamed onto it only if the block succeeds.

    A failed or interrupted export therefore leaves no half-written file and
    never clobbers an existing one.
    """
    folder = path.parent
    if path.is_dir():
        raise StorageError(f"{path}: is a folder; give -o the name of the file to write")
    if not folder.is_dir():
        raise StorageError(f"{path}: folder '{folder}' does not exist; create it first")
    fd, temp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the mode open() would
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def _umask() -> int:
    """The process umask (reading it means setting it: done once, from the one CLI thread)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@commands.command()
def export(
    ctx: typer.Context,
    database: Annotated[
        str,
        typer.Option("--database", "-d", metavar="NAME[@VERSION]", help="Database (and version)."),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write to FILE (atomically) instead of stdout."
        ),
    ] = None,
    normalized: Annotated[
        bool,
        typer.Option("--normalized", help="Upper-case residues, '\\n' line ends, --width columns."),
    ] = False,
    width: Annotated[
        int,
        typer.Option(
            "--width", min=0, metavar="N", help="Line width of --normalized (0: one line)."
        ),
    ] = 60,
    file_index: Annotated[
        int | None,
        typer.Option(
            "--file-index", min=0, metavar="I", help="Only the I-th imported file (from 0)."
        ),
    ] = None,
    taxon: Annotated[
        int | None, typer.Option("--taxon", metavar="ID", help="Only the records of this taxon.")
    ] = None,
    descendants: Annotated[
        bool,
        typer.Option(
            "--descendants", help="With --taxon: its whole subtree (needs 'taxonomy import')."
        ),
    ] = False,
    format: FormatOption = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", "-p", metavar="NAME", help="A reduction profile: with --references or --metadata."),
    ] = None,
    references: Annotated[
        bool, typer.Option("--references", help="With --profile: only the profile's references (the FASTA to search).")
    ] = False,
    metadata: Annotated[
        Path | None,
        typer.Option("--metadata", metavar="DIR", help="With --profile: write deltas.dat and ref2children.tsv into DIR."),
    ] = None,
) -> None:
    """Write a version's records: byte-exact by default, or normalised, one file, one taxon, or a profile's references."""
    if profile is not None or references or metadata is not None:
        _export_profile(ctx, database, profile, references, metadata, output)
        return
    if normalized and format is not None:
        raise typer.BadParameter("choose --normalized or --format, not both", param_hint="--format")
    if descendants and taxon is None:
        raise typer.BadParameter("--descendants needs --taxon", param_hint="--descendants")
    if taxon is not None and file_index is not None:
        raise typer.BadParameter(
            "choose --taxon or --file-index, not both", param_hint="--file-index"
        )
    name, version = database_spec(database)
    store = state(ctx).store()
    db = open_database(store, name)
    _, manifest = db.manifest(version)  # an unknown database or version fails before any output
    files = manifest.extra.get("files", [])
    if file_index is not None and file_index >= len(files):
        raise StorageError(
            f"{name}@{manifest.version} has {len(files)} file(s): --file-index must be below {len(files)}"
        )
    tree = None
    if descendants:

        tree = taxonomy_store.TaxonomyCatalog(store).load()
    options: dict[str, Any] = {
        "version": manifest.version,
        "file_index": file_index,
        "normalized": normalized,
        "width": width,
        "taxon": taxon,
        "descendants": descendants,
        "taxonomy": tree,
        "format": format.value if format is not None else None,
    }
    if output is None or str(output) == "-":
        db.export(sys.stdout.buffer, **options)
        sys.stdout.buffer.flush()
        return
    with _atomic_output(output) as out:
        written = db.export(out, **options)
    typer.echo(f"exported {name}@{manifest.version}: {human_bytes(written)} to {output}")


def _export_profile(
    ctx: typer.Context, database: str, profile: str | None, references: bool, metadata: Path | None, output: Path | None
) -> None:
    """``export --profile P``: the references as FASTA (``--references``) and/or Talaria's metadata files."""
    if profile is None:
        raise typer.BadParameter("--references and --metadata need --profile", param_hint="--profile")
    if not references and metadata is None:
        raise typer.BadParameter("--profile needs --references and/or --metadata DIR", param_hint="--profile")
    name, version = database_spec(database)
    reduction = reduction_profile.ReductionProfile(open_database(state(ctx).store(), name), profile)
    if version is not None and version != reduction.version:
        raise StorageError(
            f"profile '{profile}' of '{name}' reduced version {reduction.version}, not {version}: "
            f"name the database without @VERSION, or re-run reduce on {version}"
        )
    if metadata is not None:
        files = talaria_metadata.write_metadata(reduction, metadata)
        typer.echo(
            f"wrote {files.children:,} children of {files.references:,} references to {files.deltas} and {files.ref2children}",
            err=references and output is None,
        )
    if not references:
        return
    if output is None or str(output) == "-":
        write_records(reduction.references(), sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    with _atomic_output(output) as out:
        written = write_records(reduction.references(), out)
    typer.echo(f"exported the references of profile '{profile}' ({name}@{reduction.version}): {human_bytes(written)} to {output}")


# -- get ------------------------------------------------------------------------------------------


def _parse_range(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    found = _RANGE.fullmatch(text.strip())
    if found is None or int(found[1]) > int(found[2]):
        raise typer.BadParameter(
            f"'{text}' is not START-END with START <= END (0-based, end-exclusive, as in refget)",
            param_hint="--range",
        )
    return int(found[1]), int(found[2])


def _format_hit(
    record: SequenceRecord, accession: str, span: tuple[int, int] | None, format: str | None = None
) -> bytes:
    """A found record: its exact bytes (a GenBank/EMBL record as FASTA, unless ``format`` asks for
    its text), or with ``span`` the sub-sequence (case kept, 60 columns)."""
    if span is None:
        if format is None:
            format = None if isinstance(record, FastqRecord) else "fasta"
        data = record_formatter(format)(record)
        return data if data.endswith(b"\n") else data + b"\n"
    start, end = span
    residues = record.residues.translate(None, b" \t\r\n\x0b\x0c")[start:end]
    name = f"{accession}:{start}-{end}".encode("utf-8", "surrogateescape")
    if isinstance(record, FastqRecord):
        return b"@" + name + b"\n" + residues + b"\n+\n" + record.qualities[start:end] + b"\n"
    lines = [b">" + name] + [residues[i : i + 60] for i in range(0, len(residues), 60)]
    return b"\n".join(lines) + b"\n"


@commands.command()
def get(
    ctx: typer.Context,
    ids: Annotated[
        list[str],
        typer.Argument(
            metavar="ID",
            help="Accession, SHA-256 hex, refget SQ./ga4gh:SQ. id or md5: digest.",
        ),
    ],
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            "-d",
            metavar="NAME",
            help="Search this database only (default: every HEAD).",
        ),
    ] = None,
    span: Annotated[
        str | None,
        typer.Option("--range", metavar="START-END", help="Sub-sequence, 0-based, end-exclusive."),
    ] = None,
    version: Annotated[
        str | None, typer.Option("--version", "-v", metavar="V", help="Version (with --database).")
    ] = None,
    format: FormatOption = None,
    json_output: JsonOption = False,
) -> None:
    """Print the records an identifier names, as FASTA (or JSON); exit 1 naming each id not found."""
    bounds = _parse_range(span)
    if format is not None and (bounds is not None or json_output):
        raise typer.BadParameter("--format gives whole records: not with --range or --json", param_hint="--format")
    if version is not None and database is None:
        raise typer.BadParameter("--version needs --database", param_hint="--version")
    store = state(ctx).store()

    if database is not None:
        names = [validate_name(database, "database name")]
        if version is not None:
            validate_name(version, "version")
    else:
        names = VersionCatalog(store).databases()
        if not names:
            raise StorageError(
                f"no databases in {store.location}: import one with 'talaria-storage import'"
            )
    # Each database's version is resolved once, for all the IDs (one ref read, one index
    # check), so every ID is looked up in the same version even if an import publishes
    # a new one meanwhile.
    snapshots = [open_database(store, name).snapshot(version) for name in names]
    hits: list[dict[str, Any]] = []
    missing: list[str] = []
    out = sys.stdout.buffer
    for identifier in ids:
        found = 0
        for snapshot in snapshots:
            db_name = snapshot.database.name
            for record in snapshot.get_all(identifier):
                accession = accession_from_header(record.header)
                length = len(record.residues.translate(None, b" \t\r\n\x0b\x0c"))
                if bounds is not None and bounds[1] > length:
                    raise StorageError(
                        f"--range {bounds[0]}-{bounds[1]} is outside '{accession}' in {db_name} "
                        f"(length {length}; ranges are 0-based, end-exclusive)"
                    )
                found += 1
                if json_output:
                    d = digests(record.residues)
                    residues = record.residues.translate(None, b" \t\r\n\x0b\x0c")
                    if bounds is not None:
                        residues = residues[bounds[0] : bounds[1]]
                    hits.append(
                        {
                            "id": identifier,
                            "database": db_name,
                            "version": snapshot.version,
                            "accession": accession,
                            "header": _text(record.header.partition(MARK)[0]),
                            "length": length,
                            "sha256": d.sha256.to_hex(),
                            "refget": d.refget,
                            "md5": d.md5,
                            "range": list(bounds) if bounds is not None else None,
                            "sequence": _text(residues),
                        }
                    )
                else:
                    out.write(_format_hit(record, accession, bounds, format.value if format else None))
        if not found:
            missing.append(identifier)
    if json_output:
        emit_json(hits)
    else:
        out.flush()
    where = (
        f"database '{database}'" if database is not None else f"any database of {store.location}"
    )
    for identifier in missing:
        typer.echo(f"error: '{identifier}' not found in {where}", err=True)
    if missing:
        raise typer.Exit(EXIT_FAILURE)


# -- list -----------------------------------------------------------------------------------------


@commands.command("list")
def list_databases(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Databases and their versions (HEAD marked), with records, chunks and creation time."""
    store = state(ctx).store()
    catalog = VersionCatalog(store)
    report: list[dict[str, Any]] = []
    for name in catalog.databases():
        versions = []
        db = open_database(store, name) if json_output else None
        for info in catalog.versions(name):
            manifest = catalog.load(info.manifest)
            versions.append(
                {
                    "version": info.version,
                    "manifest": info.manifest.to_hex(),
                    "head": info.is_head,
                    "records": manifest.records,
                    "chunks": len(manifest.chunks),
                    "created": _iso(manifest.created),
                }
            )
            if db is not None:  # the GA4GH sequence-collection digest (computed once, then kept in the index)
                versions[-1]["seqcol"] = seqcol.version_digests(db, info.version).digest
        report.append({"database": name, "versions": versions})
    if json_output:
        emit_json(report)
        return
    if not report:
        typer.echo(f"no databases in {store.location}")
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=Text(f"databases in {store.location}"))
    for column in ("database", "version", "", "records", "chunks", "created"):
        table.add_column(column, justify="right" if column in ("records", "chunks") else "left")
    for entry in report:
        for v in entry["versions"]:
            table.add_row(
                Text(entry["database"]),
                Text(v["version"]),
                "HEAD" if v["head"] else "",
                str(v["records"]),
                str(v["chunks"]),
                v["created"],
            )
    Console(highlight=False).print(table)


# -- diff -----------------------------------------------------------------------------------------


@commands.command()
def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(metavar="NAME@A", help="The older version.")],
    b: Annotated[str, typer.Argument(metavar="NAME@B", help="The newer version.")],
    details: Annotated[
        bool, typer.Option("--details", help="List every changed sequence.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Sequences added, removed, with a changed header, or reclassified between two versions."""
    name_a, version_a = database_spec(a)
    name_b, version_b = database_spec(b)
    if name_a != name_b:
        raise typer.BadParameter(
            f"both versions must be of one database (got '{name_a}' and '{name_b}')",
            param_hint="NAME@B",
        )

    db = open_database(state(ctx).store(), name_a)
    result = version_diff.diff_versions(db, version_a, version_b)
    if json_output:
        data = result.to_dict()
        if not details:
            for what in _DIFF_KINDS:
                del data[what]
        emit_json(data)
        return
    counts = result.counts()
    typer.echo(
        f"{name_a}@{result.a} -> {name_a}@{result.b}: "
        + ", ".join(
            f"{counts[what]} {what.replace('_', '-')}" for what in (*_DIFF_KINDS, "unchanged")
        )
    )
    if not details:
        return
    for o in result.added:
        typer.echo(f"added\t{o.accession}\ttaxon {o.taxid}\t{o.header}")
    for o in result.removed:
        typer.echo(f"removed\t{o.accession}\ttaxon {o.taxid}\t{o.header}")
    for c in result.header_changed:
        typer.echo(f"header-changed\t{c.accession}\t{c.old_header!r} -> {c.new_header!r}")
    for r in result.reclassified:
        typer.echo(f"reclassified\t{r.accession}\ttaxon {r.old_taxid} -> {r.new_taxid}")


_DIFF_KINDS = ("added", "removed", "header_changed", "reclassified")
