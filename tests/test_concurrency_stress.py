"""Four writers, gc, readers and a sync against one store at once, then again with kill -9 of
random writers: everything reported published exports byte-exact, verify is clean, no anomaly.

The short form of ``benchmarks/bench_concurrency.py`` (talaria_storage/testing/stress.py).
Freshening after 1 s and a grace period of 4 s: the shortest pair docs/concurrency.md calls safe
for imports that publish within 3 s of re-using an object, so gc deletes during the run."""

from __future__ import annotations

from pathlib import Path

from talaria_storage.testing.stress import StoreSpec, StressPlan, run_stress

SECONDS = 12.0
GRACE = 4.0


def _plan(tmp_path: Path, *, kills: bool, store: StoreSpec | None = None) -> StressPlan:
    return StressPlan(
        store=store or StoreSpec(f"file://{tmp_path / 'store'}"),
        mirror=StoreSpec(f"file://{tmp_path / 'mirror'}"),
        workdir=tmp_path / "work",
        seconds=SECONDS,
        grace_seconds=GRACE,
        kills=kills,
    )


def test_writers_gc_readers_and_a_sync_at_once_leave_every_published_version_intact(tmp_path: Path) -> None:
    report = run_stress(_plan(tmp_path, kills=False))
    assert report.anomalies == [], report.summary()
    assert report.published > 0 and report.taxonomies > 0 and report.reads > 0
    assert report.collections > 0 and report.objects_collected > 0 and report.syncs > 0


def test_writers_killed_at_random_complete_when_re_run(tmp_path: Path) -> None:
    report = run_stress(_plan(tmp_path, kills=True))
    assert report.anomalies == [], report.summary()
    assert report.kills > 0 and report.reruns_completed > 0
