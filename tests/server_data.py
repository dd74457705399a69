"""What the server tests share: stores of the refget test sequences, and a real server on a loopback socket.

The sequences I, VI (yeast chromosomes) and NC (phiX174, circular) are the
ones the refget compliance suite checks against; the PyPI
``refget-compliance`` package ships them as FASTA beside its
``checksums.json``, so they are read from there (offline, no copy in this
repository).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import compliance_suite

from talaria_storage.config.open_store import open_store
from talaria_storage.server.app import create_app, uvicorn_server
from talaria_storage.server.settings import ServerSettings
from talaria_storage.sequences.database import open_database
from talaria_storage.storage.store import Store

COMPLIANCE_SEQUENCES = Path(compliance_suite.__file__).resolve().parent / "sequences"
CIRCULAR = "NC_001422.1"  # NC.faa's accession: phiX174 is circular

I_MD5 = "6681ac2f62509cfc220d78751b8dc524"
I_SQ = "SQ.lZyxiD_ByprhOUzrR1o1bq0ezO_1gkrn"
VI_MD5 = "b7ebc601f9a7df2e1ec5863deeae88a3"
VI_SQ = "SQ.z-qJgWoacRBV77zcMgZN9E_utrdzmQsH"
NC_MD5 = "3332ed720ac7eaa9b3655c06f6b9e196"
NC_SQ = "SQ.IIXILYBQCpHdC4qpI3sOQ_HAeAm9bmeF"


def compliance_fasta() -> list[Path]:
    return [COMPLIANCE_SEQUENCES / f"{name}.faa" for name in ("I", "VI", "NC")]


def residues_of(path: Path) -> str:
    """The one sequence of a FASTA file, upper case, no line breaks."""
    return "".join(path.read_text().splitlines()[1:]).upper()


def import_fasta(store: Store, name: str, paths: list[Path], version: str = "v1") -> None:
    open_database(store, name).import_files(paths, version=version, taxonomy="none")


def compliance_store(root: Path) -> Store:
    """A filesystem store with database ``refget`` holding I, VI and NC."""
    store = open_store(root)
    import_fasta(store, "refget", compliance_fasta())
    return store


@contextmanager
def running_server(store: Store, settings: ServerSettings | None = None) -> Iterator[str]:
    """The real server (uvicorn, the timed protocol) on a free 127.0.0.1 port in a thread; its base URL."""
    settings = settings or ServerSettings(circular=(CIRCULAR,))
    server = uvicorn_server(create_app(store, settings), settings, host="127.0.0.1", port=0, log_level="warning")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start (see its log above)")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
