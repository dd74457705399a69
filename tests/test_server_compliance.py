"""The GA4GH refget compliance suite (PyPI ``refget-compliance``) against ``serve`` on a free loopback port.

The suite exits 0 whatever it finds, so its JSON report is read:
``total_tests_failed`` must be 0. It skips one test by design:
``test_sequence_circular_support_false_errors`` is for servers that do not
support circular sequences (this one does, and runs the circular tests).
The sequences it checks (I, VI, NC) come from the package itself.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from server_data import CIRCULAR, compliance_store, running_server
from talaria_storage.server.settings import ServerSettings

SUITE = Path(sys.executable).parent / "refget-compliance"
SKIPPED_BY_DESIGN = {"test_sequence_circular_support_false_errors"}


def test_the_refget_compliance_suite_passes(tmp_path: Path) -> None:
    if not SUITE.exists():
        pytest.fail(f"{SUITE} is missing: install the dev extra (pip install -e '.[all,dev]')")
    report = tmp_path / "report.json"
    store = compliance_store(tmp_path / "store")
    try:
        with running_server(store, ServerSettings(circular=(CIRCULAR,))) as base:
            run = subprocess.run(
                [str(SUITE), "report", "-s", base, "--json", str(report), "--no-web"],
                capture_output=True, text=True, timeout=300, cwd=tmp_path,
            )
    finally:
        store.close()
    assert report.exists(), run.stderr[-2000:]
    (result,) = json.loads(report.read_text())
    failed = [t["name"] for t in result["test_results"] if t["result"] == -1]
    skipped = {t["name"] for t in result["test_results"] if t["result"] == 0}
    assert result["total_tests_failed"] == 0, failed
    assert skipped == SKIPPED_BY_DESIGN
    assert result["total_tests_passed"] == result["total_tests"] - len(SKIPPED_BY_DESIGN)
