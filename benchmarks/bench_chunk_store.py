"""store_chunk / get_chunk throughput per codec, as a ratio to calling the codec directly.

What it measures: the cost the store adds on top of compression, namely SHA-256
of the input, the frame, the existence check, the create-only write, and on
read the decode plus the re-hash that makes a wrong byte impossible to
return. Input: 1 MiB pieces of real FASTA from ``../shared/data`` (protein
from the UniProt proteomes, DNA from the E. coli genome and the WoL 16S set).

Run:  .venv/bin/python benchmarks/bench_chunk_store.py [--pieces 16]

Each cell is the best of 3 passes over all pieces in one process. "direct" is
``codec.compress`` / ``codec.decompress`` alone; "memory" and "filesystem"
are the whole ChunkStore on those backends (filesystem with fsync per
object, as the store always runs). Ratio = store MB/s / direct MB/s. For the
``none`` codec "direct" is SHA-256 alone, the work no put or get can skip.
"""

from __future__ import annotations

import argparse
import hashlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _data import read_decompressed, require_shared_data
from talaria_storage.backends.filesystem import FilesystemBackend
from talaria_storage.backends.memory import MemoryBackend

from talaria_storage.storage.chunk_store import ChunkStore
from talaria_storage.storage.codecs import Codec, Lz4Codec, NoneCodec, SnappyCodec, ZstdCodec

PIECE = 1 << 20


def pieces(data_dir: Path, count: int) -> list[bytes]:
    sources = [
        data_dir / "protein/uniprot_proteomes/UP000001197-P.anserina.fasta.gz",
        data_dir / "nucleotide/ecoli536_NC_008253.fna.gz",
        data_dir / "nucleotide/wol_16s_rRNA.fa.zst",
    ]
    per_source = max(1, count // len(sources))
    out: list[bytes] = []
    for src in sources:
        blob = read_decompressed(src, per_source * PIECE)
        out.extend(blob[i : i + PIECE] for i in range(0, len(blob) - PIECE + 1, PIECE))
    return out


def best_of(runs: int, fn: Callable[[], None]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def measure(codec: Codec, data: list[bytes], tmp: Path) -> dict[str, float]:
    mb = sum(map(len, data)) / 1e6
    compressed = [codec.compress(d) for d in data]
    if isinstance(codec, NoneCodec):
        # Nothing to compress: the floor is the SHA-256 every put and get must compute.
        direct_put = direct_get = best_of(3, lambda: [hashlib.sha256(d).digest() for d in data])
    else:
        direct_put = best_of(3, lambda: [codec.compress(d) for d in data])
        direct_get = best_of(3, lambda: [codec.decompress(c, len(d)) for c, d in zip(compressed, data)])
    row = {"direct_put": mb / direct_put, "direct_get": mb / direct_get, "ratio": sum(map(len, data)) / sum(map(len, compressed))}
    for name, make in (("memory", MemoryBackend), ("filesystem", None)):
        def fresh() -> ChunkStore:
            if make is not None:
                return ChunkStore(make(), codec)
            folder = Path(tempfile.mkdtemp(dir=tmp))
            return ChunkStore(FilesystemBackend(folder), codec)

        stores: list[ChunkStore] = []

        def put_all() -> None:
            store = fresh()
            stores.append(store)
            for d in data:
                store.store_chunk(d)

        put_s = best_of(3, put_all)
        store = stores[-1]
        hashes = [store.store_chunk(d) for d in data]  # all dedup hits now
        get_s = best_of(3, lambda: [store.get_chunk(h) for h in hashes])
        row[f"{name}_put"] = mb / put_s
        row[f"{name}_get"] = mb / get_s
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pieces", type=int, default=15, help="1 MiB pieces in all (default 15)")
    args = parser.parse_args()
    data = pieces(require_shared_data(), args.pieces)
    codecs: list[Codec] = [NoneCodec(), ZstdCodec(1), ZstdCodec(3), ZstdCodec(9), ZstdCodec(19), Lz4Codec(), SnappyCodec()]
    print(f"{len(data)} pieces of 1 MiB of real FASTA; MB/s, best of 3; ratio = store / direct codec call\n")
    print("| codec | size ratio | direct put | memory put (ratio) | filesystem put (ratio) | direct get | memory get (ratio) | filesystem get (ratio) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for codec in codecs:
            r = measure(codec, data, Path(tmp))
            label = codec.name + (f" {codec.level}" if isinstance(codec, ZstdCodec) else "")
            print(
                f"| {label} | {r['ratio']:.2f} | {r['direct_put']:.0f} | {r['memory_put']:.0f} ({r['memory_put'] / r['direct_put']:.2f}) "
                f"| {r['filesystem_put']:.0f} ({r['filesystem_put'] / r['direct_put']:.2f}) | {r['direct_get']:.0f} "
                f"| {r['memory_get']:.0f} ({r['memory_get'] / r['direct_get']:.2f}) | {r['filesystem_get']:.0f} ({r['filesystem_get'] / r['direct_get']:.2f}) |",
                flush=True,
            )


if __name__ == "__main__":
    main()
