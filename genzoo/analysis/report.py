"""The report folder for evaluated models (`genzoo compare`, `genzoo study`): report.md (the tables, protocol lines,
plots and grids as files), report.html (the same, one static self-contained page: images embedded, no script),
results.json (every result with its protocol), plots/*.png (each logged quantity of metrics.jsonl against the
training step, one line per run) and the grids each entry brought (samples and reconstructions, side by side).

The numbers and tables come from report_tables.py, the text from report_render.py, the plots from figures.py.
results.json holds `runs` (every result with its protocol), `metrics` ({metric: {arm: {mean, std, ci_low,
ci_high, n}}}), `comparisons` ([{metric, a, b, difference, ci_low, ci_high, p_value, ...}]), `factorial`,
`conclusions`, `method`, and what the caller adds (a study's budget and factors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from genzoo.analysis.report_render import Report, html_page, markdown
from genzoo.analysis.report_tables import Entry, Section, Statistics, Table, sections, statistics


@dataclass
class WrittenReport:
    """The files written, and what the console shows of them."""

    markdown: Path
    html: Path
    json: Path
    plots: list[Path]
    table: Table  # the report's first table: per arm, or per run without arms
    conclusions: str | None  # None without arms
    comparisons: list[dict]
    warning: str | None = None  # `compare`'s budget warning


def write_report(
    entries: list[Entry],
    folder: Path,
    *,
    title: str = "genzoo compare",
    groups: dict[str, str] | None = None,
    notes: str | None = None,
    extra: dict | None = None,
    more: tuple[list[Section], list[Path]] = ([], []),
) -> WrittenReport:
    """Write report.md, report.html, results.json and plots/ under `folder`; `groups` ({label: arm}) gives the arm
    tables and statistics, `notes` is a paragraph above the first table (the study's budget), `extra` goes into
    results.json as is (its `budget_short` and `factors` also into the statistics); `more` holds sections and
    figures drawn by the caller (a study's learning curves), set after the tables and before the training plots."""
    from genzoo.analysis.figures import training_plots
    from genzoo.core.io import atomic_write_text, write_json

    folder, extra = Path(folder), extra or {}
    plots = list(more[1]) + training_plots(entries, folder / "plots", groups)
    stats = statistics(entries, groups, budget=extra.get("budget_short"), factors=extra.get("factors"))
    report = Report(
        title=title,
        sections=sections(entries, groups, stats, notes) + list(more[0]),
        conclusions=stats.conclusions if groups else None,
        entries=entries,
        plots=plots,
        folder=folder,
    )
    write_json(folder / "results.json", _results(entries, groups, stats, report.conclusions, extra))
    atomic_write_text(folder / "report.md", markdown(report))
    atomic_write_text(folder / "report.html", html_page(report))
    return WrittenReport(
        markdown=folder / "report.md",
        html=folder / "report.html",
        json=folder / "results.json",
        plots=plots,
        table=report.sections[0].table,
        conclusions=report.conclusions,
        comparisons=stats.comparisons,
    )


def _results(entries: list[Entry], groups, stats: Statistics, conclusions: str | None, extra: dict) -> dict:
    """results.json: every run's results with its protocol, then the statistics, then `extra`."""
    runs = {
        e.label: {"source": str(e.source), "group": (groups or {}).get(e.label), "results": e.results} for e in entries
    }
    return {
        "runs": runs,
        "metrics": stats.metrics,
        "comparisons": stats.comparisons,
        "factorial": stats.factorial,
        "conclusions": conclusions,
        "method": stats.method,
        **extra,
    }
