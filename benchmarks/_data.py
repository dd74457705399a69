"""Where benchmarks find real data: ``../shared/data`` beside the project, read in place."""

from __future__ import annotations

import gzip
import io
import sys
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def require_shared_data() -> Path:
    """The shared data folder, or exit with a reason (benchmarks never copy it into the repo)."""
    if not SHARED_DATA.is_dir():
        sys.exit(f"skipped: shared data folder {SHARED_DATA} is absent (clone the steering repo beside this one)")
    return SHARED_DATA


def read_decompressed(path: Path, limit: int | None = None) -> bytes:
    """Decompress a .gz or .zst file from the shared data (up to ``limit`` bytes)."""
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as handle:
            return handle.read(limit if limit is not None else -1)
    if path.suffix == ".zst":
        import zstandard

        with zstandard.ZstdDecompressor().stream_reader(path.open("rb")) as reader:
            out = io.BytesIO()
            while limit is None or out.tell() < limit:
                block = reader.read(1 << 20)
                if not block:
                    break
                out.write(block)
            data = out.getvalue()
            return data if limit is None else data[:limit]
    data = path.read_bytes()
    return data if limit is None else data[:limit]


BASELINE_RESULTS = SHARED_DATA / "baselines" / "results.json"


def baseline_results() -> dict:
    """The peer-tool figures behind ``BASELINES.md`` (raw numbers and the commands that made them).

    Keyed by dataset name (``uniprot15``, ``wol16s``...); empty when the file is absent.
    """
    import json

    if not BASELINE_RESULTS.is_file():
        return {}
    return json.loads(BASELINE_RESULTS.read_text())


def write_decompressed(paths: list[str] | list[Path], out: Path) -> int:
    """Concatenate the decompressed bytes of ``paths`` into ``out`` (streamed); return its size.

    This is what ``zcat FILES > out`` does in BASELINES.md, so peers and the store see the
    same bytes.
    """
    import shutil

    from talaria_storage.formats.fasta import open_input

    with out.open("wb") as sink:
        for path in paths:
            with open_input(str(path)) as stream:
                shutil.copyfileobj(stream, sink, 1 << 22)
    return out.stat().st_size
