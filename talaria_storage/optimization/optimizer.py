"""StorageOptimizer: analyze a store, estimate what each strategy would save, then do it.

Plan, show, act (restic's ``prune``, rustic's ``prune_plan``): an estimate is
the strategies themselves run one after another on a
:class:`~talaria_storage.optimization.dry_run.DryRunBackend` over the store,
so strategy 2 is estimated on what strategy 1 would have left (chained, not
summed) and nothing is written; :meth:`StorageOptimizer.optimize` runs the
same code on the store. Each strategy's row counts, as ``restic prune``
does, the objects and bytes **used** and **unused** before it, those it
**repacks** (rewrites into new objects, or recompresses in place), those it
**deletes** (gc only) and those it **keeps**, the bytes it **writes**, and
what it **saves**: for a rewriting strategy the drop in used bytes (what gc
will free once the replaced objects are older than its grace period), for
gc the unused bytes it deleted that were already unused when the run began
(what the strategies before it made unused is counted in their rows). So
the rows add up to what the run frees.

After a real run, the verification phase re-reads every object the run
wrote (its hash is checked on read) and checks that every object a live
version needs is present. A run cut off anywhere leaves the store readable
(see :mod:`.rewrite`); the next run first finishes a version whose refs
were moved half-way (:func:`~talaria_storage.optimization.rewrite.finish_interrupted`),
then plans again from what the store holds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from talaria_storage.config.settings import StorageConfig
from talaria_storage.core.errors import ChunkNotFound, CompressionError, HashMismatch
from talaria_storage.core.keys import MANIFESTS
from talaria_storage.optimization.analysis import StoreAnalysis, analyze_store, key_hash
from talaria_storage.optimization.dry_run import DryRunBackend
from talaria_storage.optimization.rewrite import finish_interrupted
from talaria_storage.optimization.strategies import (
    DEFAULT_STRATEGIES,
    STRATEGIES,
    OptimizationStrategy,
    OptimizeOptions,
    StrategyOutcome,
)
from talaria_storage.storage.store import Store


@dataclass
class StrategyRow:
    """One strategy's line of the table (see the module docstring for the columns)."""

    strategy: str
    used_objects: int
    used_bytes: int
    unused_objects: int
    unused_bytes: int
    repack_objects: int
    repack_bytes: int
    delete_objects: int
    delete_bytes: int
    keep_objects: int
    keep_bytes: int
    written_objects: int
    written_bytes: int
    saved_bytes: int
    seconds: float
    versions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class OptimizationReport:
    """What a run did (or, with ``dry_run``, would do): one row per strategy, totals, verification."""

    location: str
    dry_run: bool
    rows: list[StrategyRow]
    before: dict[str, Any]
    after: dict[str, Any]
    verification: dict[str, Any] = field(default_factory=dict)
    finished_interrupted: list[str] = field(default_factory=list)

    @property
    def saved_bytes(self) -> int:
        return sum(row.saved_bytes for row in self.rows)

    def row(self, strategy: OptimizationStrategy | str) -> StrategyRow:
        name = strategy.value if isinstance(strategy, OptimizationStrategy) else strategy
        for found in self.rows:
            if found.strategy == name:
                return found
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "dry_run": self.dry_run,
            "strategies": [asdict(row) for row in self.rows],
            "saved_bytes": self.saved_bytes,
            "before": self.before,
            "after": self.after,
            "verification": self.verification,
            "finished_interrupted": self.finished_interrupted,
        }


class StorageOptimizer:
    """The optimizer of one store (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def analyze(self) -> StoreAnalysis:
        """What the store holds: used and unused objects, versions, packs, bytes per kind."""
        return analyze_store(self.store)

    def estimate_savings(
        self,
        strategies: tuple[OptimizationStrategy, ...] | list[OptimizationStrategy] = DEFAULT_STRATEGIES,
        options: OptimizeOptions | None = None,
    ) -> OptimizationReport:
        """The report ``optimize`` would give, computed on a dry-run layer: nothing is written."""
        options = options or OptimizeOptions()
        layer = Store(DryRunBackend(self.store.backend), self.store.codec, threads=self.store.threads,
                      config=self.store.config)
        return _run(layer, tuple(strategies), options, dry_run=True)

    def optimize(self, options: OptimizeOptions | None = None) -> OptimizationReport:
        """Run ``options.strategies`` in order (a dry run with ``options.dry_run``), then verify what changed."""
        options = options or OptimizeOptions()
        if options.dry_run:
            return self.estimate_savings(options.strategies, options)
        finished = finish_interrupted(self.store)
        report = _run(self.store, options.strategies, options, dry_run=False)
        report.finished_interrupted = finished
        report.verification = _verify(self.store, report, options)
        return report


def auto_optimize(store: Store) -> OptimizationReport | None:
    """The default strategies, when ``[optimization] auto_optimize`` is true; None otherwise.

    Called after each import by the CLI and by job import steps.
    """
    settings = store.config if isinstance(store.config, StorageConfig) else None
    if settings is None or not settings.optimization.auto_optimize:
        return None
    return StorageOptimizer(store).optimize(OptimizeOptions())


def _run(store: Store, strategies: tuple[OptimizationStrategy, ...], options: OptimizeOptions, *, dry_run: bool) -> OptimizationReport:
    first = analyze_store(store)
    initially_unused = set(first.unused_keys)
    before = first
    rows: list[StrategyRow] = []
    written: set[str] = set()
    for strategy in strategies:
        started = time.perf_counter()
        outcome = STRATEGIES[strategy]().apply(store, before, options)
        after = analyze_store(store)
        rows.append(_row(strategy, before, after, outcome, initially_unused, time.perf_counter() - started))
        written = (written | outcome.written) - outcome.deleted
        before = after
    report = OptimizationReport(store.location, dry_run, rows, first.to_dict(), before.to_dict())
    report.verification = {"written": sorted(written)}  # replaced by the real check after a real run
    return report


def _row(
    strategy: OptimizationStrategy,
    before: StoreAnalysis,
    after: StoreAnalysis,
    outcome: StrategyOutcome,
    initially_unused: set[str],
    seconds: float,
) -> StrategyRow:
    repacked = outcome.replaced & before.live
    repack_bytes = sum(before.size_of(k) for k in repacked)
    deleted_bytes = sum(before.size_of(k) for k in outcome.deleted)
    if strategy is OptimizationStrategy.GARBAGE_COLLECTION:
        saved = sum(before.size_of(k) for k in outcome.deleted if k in initially_unused)
    else:
        saved = before.used_bytes - after.used_bytes
    return StrategyRow(
        strategy=strategy.value,
        used_objects=before.used_objects,
        used_bytes=before.used_bytes,
        unused_objects=len(before.unused_keys),
        unused_bytes=before.unused_bytes,
        repack_objects=len(repacked),
        repack_bytes=repack_bytes,
        delete_objects=len(outcome.deleted),
        delete_bytes=deleted_bytes,
        keep_objects=before.used_objects - len(repacked),
        keep_bytes=before.used_bytes - repack_bytes,
        written_objects=len(outcome.written),
        written_bytes=sum(after.size_of(k) for k in outcome.written),
        saved_bytes=saved,
        seconds=round(seconds, 3),
        versions=list(outcome.versions),
        notes=list(outcome.notes),
    )


def _verify(store: Store, report: OptimizationReport, options: OptimizeOptions) -> dict[str, Any]:
    """Re-read every object the run wrote and check every live version's objects are present."""
    written = report.verification.get("written", [])
    problems: list[str] = []
    checked = 0
    for key in written:
        h = key_hash(key)
        if h is None:
            continue
        chunks = store.manifests if key.startswith(MANIFESTS) else store
        try:
            chunks.get_chunk(h)
            checked += 1
        except ChunkNotFound:
            if any(row.strategy == "gc" for row in report.rows):
                continue  # written, then replaced again by a later strategy and collected
            problems.append(f"'{key}' was written by this run and is missing")
        except (HashMismatch, CompressionError) as exc:
            problems.append(f"'{key}': {exc}")
    analysis = analyze_store(store)
    needed = {h for view in analysis.versions for h in view.manifest.object_hashes()}
    missing = needed - store.present(needed)
    problems += [f"'chunks/{h.to_hex()}' is needed by a live version and is missing" for h in sorted(missing, key=str)]
    return {"objects_checked": checked, "versions_checked": len(analysis.versions), "problems": problems}
