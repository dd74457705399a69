"""The optimizer's report: the prune-style table as rows of text, and a self-contained HTML page of plots.

The page (``optimize --analyze --report report.html``) holds everything
inline -- the plots are SVG drawn by matplotlib, the table is HTML -- so it
can be mailed or archived alone: stored bytes per version and per database,
what compression, deduplication and the reduction profiles' deltas save,
what each strategy saved (estimated, and achieved after a real run), and the
sizes of the sequence packs before and after. matplotlib is an optional
extra (``talaria-storage[report]``), imported only when a page is written.
"""

from __future__ import annotations

import html
import io
from pathlib import Path
from typing import Any

from talaria_storage.core.errors import MissingExtra
from talaria_storage.optimization.analysis import StoreAnalysis
from talaria_storage.optimization.optimizer import OptimizationReport

COLUMNS = ("strategy", "used", "unused", "to repack", "to delete", "to keep", "written", "saved", "seconds")


def human_bytes(n: int) -> str:
    """``1.2 MB`` style (powers of 1000, as restic prints), signed."""
    sign = "-" if n < 0 else ""
    value = float(abs(n))
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.2f} {unit}"
        value /= 1000
    return f"{sign}{value:.2f} TB"


def _cell(objects: int, size: int) -> str:
    return f"{objects} / {human_bytes(size)}"


def table_rows(report: OptimizationReport) -> list[tuple[str, ...]]:
    """One tuple of cell texts per strategy (``COLUMNS``), then the total line."""
    rows = [
        (
            row.strategy,
            _cell(row.used_objects, row.used_bytes),
            _cell(row.unused_objects, row.unused_bytes),
            _cell(row.repack_objects, row.repack_bytes),
            _cell(row.delete_objects, row.delete_bytes),
            _cell(row.keep_objects, row.keep_bytes),
            _cell(row.written_objects, row.written_bytes),
            human_bytes(row.saved_bytes),
            f"{row.seconds:.2f}",
        )
        for row in report.rows
    ]
    before, after = report.before["total_bytes"], report.after["total_bytes"]
    rows.append(
        (
            "total",
            _cell(report.before["used_objects"], report.before["used_bytes"]),
            _cell(report.before["unused_objects"], report.before["unused_bytes"]),
            "",
            "",
            "",
            "",
            human_bytes(report.saved_bytes),
            f"{sum(r.seconds for r in report.rows):.2f}",
        )
    )
    rows.append(("stored", human_bytes(before), "", "", "", "", "", f"-> {human_bytes(after)}", ""))
    return rows


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("svg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise MissingExtra(
            "the HTML report draws its plots with matplotlib: install talaria-storage[report]"
        ) from None
    return plt


def _svg(plt: Any, fig: Any) -> str:
    out = io.StringIO()
    fig.savefig(out, format="svg", bbox_inches="tight")
    plt.close(fig)
    text = out.getvalue()
    return text[text.index("<svg"):]


def _version_plot(plt: Any, rows: list[dict[str, Any]]) -> str:
    fig, ax = plt.subplots(figsize=(9, 3.2))
    labels = [f"{r['database']}@{r['version']}" for r in rows]
    ax.bar(range(len(rows)), [r["bytes"] / 1e6 for r in rows], label="needed by the version", color="#9ab")
    ax.bar(range(len(rows)), [r["new_bytes"] / 1e6 for r in rows], label="added by it", color="#246")
    ax.set_xticks(range(len(rows)), labels, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("MB")
    ax.set_title("Stored bytes per version")
    ax.legend(fontsize=8)
    return _svg(plt, fig)


def _database_plot(plt: Any, before: dict[str, int], after: dict[str, int]) -> str:
    fig, ax = plt.subplots(figsize=(6, 2.8))
    names = sorted(set(before) | set(after))
    x = range(len(names))
    ax.bar([i - 0.2 for i in x], [before.get(n, 0) / 1e6 for n in names], 0.4, label="before", color="#9ab")
    ax.bar([i + 0.2 for i in x], [after.get(n, 0) / 1e6 for n in names], 0.4, label="after", color="#246")
    ax.set_xticks(list(x), names, fontsize=8)
    ax.set_ylabel("MB")
    ax.set_title("Stored bytes per database")
    ax.legend(fontsize=8)
    return _svg(plt, fig)


def _savings_plot(plt: Any, estimate: OptimizationReport | None, achieved: OptimizationReport | None) -> str:
    fig, ax = plt.subplots(figsize=(6, 2.8))
    source = estimate or achieved
    assert source is not None
    names = [r.strategy for r in source.rows]
    x = range(len(names))
    if estimate is not None:
        ax.bar([i - 0.2 for i in x], [r.saved_bytes / 1e6 for r in estimate.rows], 0.4, label="estimated", color="#9ab")
    if achieved is not None:
        ax.bar([i + 0.2 for i in x], [r.saved_bytes / 1e6 for r in achieved.rows], 0.4, label="achieved", color="#246")
    ax.set_xticks(list(x), names, fontsize=8)
    ax.set_ylabel("MB saved")
    ax.set_title("What each strategy saves (delta encoding: not run, see the notes)")
    ax.legend(fontsize=8)
    return _svg(plt, fig)


def _stages_plot(plt: Any, savings: dict[str, dict[str, int]], deltas: list[dict[str, Any]]) -> str:
    """What compression, deduplication and (per reduction profile) deltas save."""
    widths = [max(len(savings), 1), max(len(deltas), 1)]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3), gridspec_kw={"width_ratios": widths})
    names = list(savings)
    x = range(len(names))
    for offset, stage, label, color in (
        (-0.27, "fasta", "as FASTA, every version", "#ccd"),
        (0.0, "alone", "compressed, each version alone", "#9ab"),
        (0.27, "stored", "stored (versions share objects)", "#246"),
    ):
        left.bar([i + offset for i in x], [savings[n][stage] / 1e6 for n in names], 0.27, label=label, color=color)
    left.set_xticks(list(x), names, fontsize=8)
    left.set_ylabel("MB")
    left.set_title("What compression and deduplication save")
    left.legend(fontsize=7)
    labels = [f"{d['database']}/{d['profile']}" for d in deltas]
    right.bar([i - 0.2 for i in range(len(deltas))], [d["member_residues"] / 1e6 for d in deltas], 0.4,
              label="members' residues", color="#9ab")
    right.bar([i + 0.2 for i in range(len(deltas))], [d["delta_bytes"] / 1e6 for d in deltas], 0.4,
              label="their deltas", color="#246")
    right.set_xticks(list(range(len(deltas))), labels, fontsize=8)
    right.set_title("What deltas save (reduction profiles)" if deltas else "What deltas save: no reduction profile")
    right.legend(fontsize=7)
    return _svg(plt, fig)


def _pack_plot(plt: Any, before: list[int], after: list[int] | None) -> str:
    fig, ax = plt.subplots(figsize=(6, 2.8))
    data = [[s / 1e3 for s in before]] + ([[s / 1e3 for s in after]] if after is not None else [])
    labels = ["before"] + (["after"] if after is not None else [])
    ax.hist(data, bins=30, label=labels, color=["#9ab", "#246"][: len(data)])
    ax.set_xlabel("pack size (kB)")
    ax.set_ylabel("packs")
    ax.set_title("Sequence pack sizes")
    ax.legend(fontsize=8)
    return _svg(plt, fig)


def _table_html(report: OptimizationReport) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in table_rows(report)
    )
    notes = "".join(
        f"<li><b>{html.escape(r.strategy)}</b>: {html.escape('; '.join(r.notes))}</li>" for r in report.rows
    )
    return f"<table><tr>{head}</tr>{body}</table><ul>{notes}</ul>"


def write_html(
    path: str | Path,
    analysis: StoreAnalysis,
    estimate: OptimizationReport | None = None,
    achieved: OptimizationReport | None = None,
    after: StoreAnalysis | None = None,
) -> Path:
    """Write the self-contained page to ``path`` (see the module docstring); its path."""
    plt = _pyplot()
    sections = [f"<h2>Stored bytes</h2>{_version_plot(plt, analysis.version_bytes())}"]
    sections.append(_database_plot(plt, analysis.database_bytes(), (after or analysis).database_bytes()))
    sections.append(_stages_plot(plt, analysis.savings(), analysis.delta_savings()))
    for title, report in (("Estimate (dry run)", estimate), ("Achieved", achieved)):
        if report is not None:
            sections.append(f"<h2>{title}</h2>{_table_html(report)}")
    if estimate is not None or achieved is not None:
        sections.append(_savings_plot(plt, estimate, achieved))
    sections.append(_pack_plot(plt, analysis.pack_sizes(), after.pack_sizes() if after is not None else None))
    kinds = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(human_bytes(v))}</td></tr>"
        for k, v in analysis.bytes_by_kind().items()
    )
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>talaria-storage optimize: {html.escape(analysis.location)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}svg{{max-width:100%;height:auto}}</style></head>
<body><h1>Store {html.escape(analysis.location)}</h1>
<p>{len(analysis.objects)} objects, {html.escape(human_bytes(analysis.total_bytes))}; used
{html.escape(human_bytes(analysis.used_bytes))}, unused {html.escape(human_bytes(analysis.unused_bytes))};
{len(analysis.versions)} versions, {len(analysis.packs)} sequence packs.</p>
<table><tr><th>used, by kind</th><th>bytes</th></tr>{kinds}</table>
{''.join(sections)}
</body></html>
"""
    out = Path(path)
    out.write_text(page, encoding="utf-8")
    return out
