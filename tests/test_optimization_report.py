"""The optimizer's analysis says what compression, deduplication and deltas save, and the HTML
report draws it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from talaria_storage import open_database, open_store
from talaria_storage.optimization.analysis import analyze_store
from talaria_storage.optimization.report import write_html

AMINO = b"ACDEFGHIKLMNPQRSTVWY"


def _families(rnd: random.Random, families: int = 6, members: int = 4) -> bytes:
    """Protein families: a random sequence and members a few substitutions away from it."""
    out = []
    for f in range(families):
        base = bytearray(rnd.choice(AMINO) for _ in range(300))
        for m in range(members):
            seq = bytearray(base)
            for _ in range(m * 3):
                seq[rnd.randrange(len(seq))] = rnd.choice(AMINO)
            out.append(b">sp|P%d%02d|F%d_M%d family %d OX=1\n%s\n" % (f, m, f, m, f, bytes(seq)))
    return b"".join(out)


@pytest.fixture
def reduced(tmp_path: Path) -> Path:
    rnd = random.Random(3)
    first, second = tmp_path / "r1.fa", tmp_path / "r2.fa"
    first.write_bytes(_families(rnd))
    second.write_bytes(first.read_bytes() + b">sp|Q1|NEW_X new OX=1\nMKVLAAGG\n")
    db = open_database(tmp_path / "store", "prot")
    db.import_files([first], version="r1")
    db.import_files([second], version="r2")
    db.reduce("90", identity=0.9)
    db.close()
    return tmp_path / "store"


def test_the_analysis_says_what_compression_and_deduplication_save(reduced: Path) -> None:
    with open_store(reduced) as store:
        stages = analyze_store(store).savings()["prot"]
    assert stages["fasta"] > stages["alone"] > stages["stored"] > 0


def test_the_analysis_says_what_each_profiles_deltas_save(reduced: Path) -> None:
    with open_store(reduced) as store:
        [profile] = analyze_store(store).delta_savings()
    assert (profile["database"], profile["profile"]) == ("prot", "90")
    assert profile["member_residues"] > profile["delta_bytes"] > 0


def test_the_report_draws_what_deltas_save(reduced: Path, tmp_path: Path) -> None:
    with open_store(reduced) as store:
        page = write_html(tmp_path / "report.html", analyze_store(store)).read_text()
    assert "What deltas save (reduction profiles)" in page and "What compression and deduplication save" in page
