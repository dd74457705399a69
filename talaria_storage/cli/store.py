"""The store-wide commands of ``talaria-storage``: init, stats, verify, gc."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from talaria_storage.cli.common import (
    EXIT_FAILURE,
    ExecutorOption,
    JsonOption,
    database_spec,
    emit_json,
    executor_client,
    human_bytes,
    state,
)
from talaria_storage.reduction.delta_check import DeltaDecodeCheck
from talaria_storage.sequences.collect import collect_garbage
from talaria_storage.sequences.dask_cluster import check_executor_spec
from talaria_storage.sequences.database import open_database
from talaria_storage.sequences.integrity import verify_store
from talaria_storage.sequences.versions import VersionCatalog
from talaria_storage.storage.store import Store

commands = typer.Typer()


@commands.command()
def init(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Create the store (idempotent) and print its location and settings."""
    st = state(ctx)
    config = st.config()
    store = st.store(create=True)
    codec = store.codec.to_dict()
    if json_output:
        emit_json(
            {
                "location": store.location,
                "backend": config.storage.backend,
                "codec": codec,
                "config": config.as_dict(),
            }
        )
        return
    level = f" (level {codec['level']})" if codec.get("level") is not None else ""
    typer.echo(f"initialised store at {store.location}")
    typer.echo(f"  backend  {config.storage.backend}")
    typer.echo(f"  codec    {codec['name']}{level}")
    typer.echo(f"  threads  {config.threads}")
    if config.source:
        typer.echo(f"  config   {config.source}")


@commands.command()
def stats(
    ctx: typer.Context,
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            "-d",
            metavar="NAME[@VERSION]",
            help="Per-database figures for this database only (default: every database's HEAD).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Object counts, sizes, compression ratio and dedup counters; then per-database figures."""
    store = state(ctx).store()
    databases = database_stats(store, database)
    s = store.get_stats()
    data = {
        "location": store.location,
        "total_chunks": s.total_chunks,
        "stored_bytes": s.stored_bytes,
        "logical_bytes": s.logical_bytes,
        "compression_ratio": s.compression_ratio,
        "dedup_hits": s.dedup_hits,
        "dedup_bytes_saved": s.dedup_bytes_saved,
        "unreadable": getattr(s, "unreadable", 0),
        "per_codec": {
            name: {
                "objects": c.objects,
                "stored_bytes": c.stored_bytes,
                "logical_bytes": c.logical_bytes,
            }
            for name, c in sorted(s.per_codec.items())
        },
        "databases": databases,
    }
    if json_output:
        emit_json(data)
        return
    table = Table(title=Text(f"store {store.location}"), show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("chunks", str(s.total_chunks))
    table.add_row("stored", human_bytes(s.stored_bytes))
    table.add_row("logical", human_bytes(s.logical_bytes))
    table.add_row("frame compression ratio", f"{s.compression_ratio:.2f}")
    if "none" in s.per_codec:
        # Sequence record chunks and packs are compressed by their own format (streams,
        # nucleotide packing) and stored in frames of codec "none": their ratio is per database.
        table.caption = "codec none: objects that compress themselves; see the ratio per database"
    table.add_row("dedup hits (this process)", str(s.dedup_hits))
    table.add_row("unreadable", str(data["unreadable"]))
    codecs = Table(title="per codec")
    for column in ("codec", "objects", "stored", "logical"):
        codecs.add_column(column, justify="left" if column == "codec" else "right")
    for name, c in sorted(s.per_codec.items()):
        codecs.add_row(
            Text(name), str(c.objects), human_bytes(c.stored_bytes), human_bytes(c.logical_bytes)
        )
    console = Console(highlight=False)
    console.print(table)
    if s.per_codec:
        console.print(codecs)
    if databases:
        # A light box and no wrapping: the table fits an 80-column terminal whole.
        per_db = Table(title="per database", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        columns = ("database", "records", "unique", "residues", "stored", "ratio", "dedup", "zstd levels")
        for column in columns:
            per_db.add_column(column, justify="left" if column == "database" else "right", no_wrap=True)
        for d in databases:
            per_db.add_row(
                Text(f"{d['database']}@{d['version']}"),
                str(d["records"]),
                str(d["unique_sequences"]),
                str(d["residues"]),
                human_bytes(d["stored_bytes"]),
                f"{d['ratio']:.2f}",
                human_bytes(d["dedup_bytes_saved"]),
                _codec_text(d["codec"]),
            )
        console.print(per_db)


def _codec_text(codec: dict[str, Any] | None) -> str:
    """``2/9/3/17``: the zstd levels of residues, headers, nucleotides and redundant sets."""
    if not codec:
        return "-"
    return "/".join(str(codec.get(k, "?")) for k in ("level", "meta_level", "nucleotide_level", "redundant_level"))


@commands.command()
def verify(
    ctx: typer.Context,
    subset: Annotated[
        float | None,
        typer.Option(
            "--subset",
            min=0.0,
            max=100.0,
            metavar="PERCENT",
            help="Re-hash only this percentage of the objects, drawn at random (refs are always checked).",
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option("--seed", metavar="N", help="Seed for --subset, to draw the same sample again."),
    ] = None,
    executor: ExecutorOption = None,
    json_output: JsonOption = False,
) -> None:
    """Re-hash chunks and manifests and check every ref's objects exist; exit 1 if any is bad."""
    if executor is not None:
        check_executor_spec(executor)
    store = state(ctx).store()
    with executor_client(executor) as client:
        problems = verify_store(
            store, subset=subset, seed=seed, delta_check=DeltaDecodeCheck(store), executor=client
        )
    if json_output:
        emit_json(
            {
                "location": store.location,
                "ok": not problems,
                "problems": [
                    {
                        "key": p.key,
                        "problem": str(getattr(p.problem, "value", p.problem)),
                        "message": p.message,
                        "hash": None if p.hash is None else p.hash.to_hex(),
                    }
                    for p in problems
                ],
            }
        )
    else:
        for p in problems:
            typer.echo(f"{getattr(p.problem, 'value', p.problem)}  {p.key}  {p.message}")
        if problems:
            typer.echo(f"{len(problems)} bad object(s) in {store.location}")
        else:
            typer.echo(f"ok: no problems in {store.location}")
    if problems:
        raise typer.Exit(EXIT_FAILURE)


@commands.command()
def gc(
    ctx: typer.Context,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be removed; remove nothing.")
    ] = False,
    grace: Annotated[
        float,
        typer.Option(
            "--grace", min=0.0, metavar="SECONDS", help="Spare objects younger than this."
        ),
    ] = 3600.0,
    json_output: JsonOption = False,
) -> None:
    """Remove objects no ref reaches (mark from every ref, sweep the rest, spare young objects)."""
    store = state(ctx).store()
    result = collect_garbage(store, dry_run=dry_run, grace_seconds=grace)
    if json_output:
        emit_json(
            {
                "location": store.location,
                "dry_run": dry_run,
                "removed": result.removed,
                "freed_bytes": result.freed_bytes,
                "kept": result.kept,
                "spared_young": result.spared_young,
                "removed_hashes": sorted(h.to_hex() for h in result.removed_hashes),
            }
        )
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"{verb} {result.removed} object(s), {human_bytes(result.freed_bytes)}; kept {result.kept}, "
        f"spared {result.spared_young} younger than {grace:g}s in {store.location}"
    )


# -- per-database statistics (for `stats`) ------------------------------------------------------


def database_stats(store: Store, spec: str | None) -> list[dict[str, Any]]:
    """Per-database statistics: of ``NAME[@VERSION]``, or of every database's HEAD.

    ``stored_bytes`` are the version's distinct objects (record chunks,
    sequence packs -- whole, also those it shares with other versions --,
    order objects) as serialised: what a copy of this version alone needs;
    ``ratio`` is its uncompressed FASTA bytes over them.
    ``dedup_bytes_saved`` is what content addressing saves across the
    database's versions: the bytes each version would store on its own,
    summed, minus the bytes of the distinct chunks they all reference.
    """
    if spec is not None:
        name, version = database_spec(spec)
        targets = [(name, version)]
    else:
        targets = [(name, None) for name in VersionCatalog(store).databases()]
    report = []
    for name, version in targets:
        db = open_database(store, name)
        s = db.stats(version)
        per_version = 0
        distinct: dict[Any, int] = {}
        versions = db.versions()
        for info in versions:
            _, manifest = db.manifest(info.version)
            sizes = {o.hash: o.size for o in manifest.objects()}
            per_version += sum(sizes.values())
            distinct.update(sizes)
        report.append(
            {
                "database": s.database,
                "version": s.version,
                "records": s.records,
                "unique_sequences": s.unique_sequences,
                "residues": s.residues,
                "chunks": s.chunks,
                "stored_bytes": s.stored_bytes,
                "input_bytes": s.input_bytes,
                "logical_bytes": s.logical_bytes,
                "ratio": s.ratio,
                "versions": len(versions),
                "dedup_bytes_saved": per_version - sum(distinct.values()),
                # The sequence codec the version was written with: [storage] compression_level
                # moves its stream levels; lz4/snappy/none leave them to the sequence codec.
                "codec": db.manifest(s.version)[1].extra.get("codec"),
            }
        )
    return report
