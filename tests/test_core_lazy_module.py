"""LazyModule: a heavy dependency named at module level, imported only when first used."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from talaria_storage import open_database
from talaria_storage.core.lazy_module import LazyModule


def test_a_lazy_module_is_imported_on_its_first_attribute_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    colours = LazyModule("colorsys")
    assert "colorsys" not in sys.modules
    assert colours.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules and "imported" in repr(colours)


def test_a_lazy_module_that_does_not_exist_fails_when_used() -> None:
    missing = LazyModule("talaria_storage_no_such_module")
    with pytest.raises(ModuleNotFoundError):
        missing.anything  # noqa: B018 - the read is the test


def test_a_look_up_in_a_fresh_process_imports_neither_numpy_nor_the_reduction_engine(tmp_path: Path) -> None:
    fasta = tmp_path / "in.fa"
    fasta.write_text(">sp|P69905|HBA_HUMAN Hemoglobin OX=9606\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMF\n")
    open_database(tmp_path / "store", "db").import_files([fasta], version="v1")
    script = (
        "import sys; from talaria_storage import open_database; "
        f"print(open_database({str(tmp_path / 'store')!r}, 'db')['P69905'].id); "
        "print(sorted(m for m in ('numpy', 'edlib', 'parasail', 'talaria_storage.reduction.building') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout
    assert out.splitlines() == ["sp|P69905|HBA_HUMAN", "[]"]
