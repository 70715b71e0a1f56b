"""A report as text: `Report` (what the page shows) as Markdown, report.md, whose pictures are files linked relative
to its folder, and as one static self-contained HTML page, report.html: pictures embedded, no script."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path

from genzoo.analysis.report_tables import Entry, Section, Table
from genzoo.metrics.evaluate import protocol_lines


@dataclass
class Report:
    title: str
    sections: list[Section]
    conclusions: str | None  # the generated paragraph; None without arms
    entries: list[Entry]
    plots: list[Path]  # the training plots, under `folder`
    folder: Path  # where report.md lies: its links are relative to it


def markdown(report: Report) -> str:
    lines = [f"# {report.title}", ""]
    if report.conclusions:
        lines += ["## Conclusions", "", report.conclusions, ""]
    for s in report.sections:
        lines += [f"## {s.title}", ""] + ([s.note, ""] if s.note else []) + _markdown_table(s.table) + [""]
    lines += ["## Protocol", ""]
    for e in report.entries:
        lines += [f"- **{e.label}** (`{e.source}`)"] + [f"  - {p}" for p in protocol_lines(e.results)]
    if report.plots:
        lines += ["", "## Training", ""]
        lines += [f"![{p.stem}]({p.relative_to(report.folder).as_posix()})" for p in report.plots]
    lines += [
        "",
        "## Samples and reconstructions",
        "",
        "| run | samples | reconstructions (originals above) |",
        "|---|---|---|",
    ]
    for e in report.entries:
        s, r = (Path(e.grids[k]).relative_to(report.folder).as_posix() for k in ("samples", "reconstructions"))
        lines.append(f"| {e.label} | ![samples]({s}) | ![reconstructions]({r}) |")
    return "\n".join(lines) + "\n"


def _markdown_table(table: Table) -> list[str]:
    header, *rows = ["| " + " | ".join(r) + " |" for r in [table.header, *table.rows]]
    return [header, "|" + "---|" * len(table.header), *rows]


STYLE = """body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
p { max-width: 60em; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: right; vertical-align: top; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f2f2f2; }
figure { display: inline-block; margin: 0 1em 1em 0; }
img { image-rendering: pixelated; max-width: 520px; }
.grids td { text-align: center; }
li { font-size: 0.9em; }"""


def html_page(report: Report) -> str:
    esc = html.escape
    tables = "".join(
        f"<h2>{esc(s.title)}</h2>" + (f"<p>{esc(s.note)}</p>" if s.note else "") + _html_table(s.table)
        for s in report.sections
    )
    summary = f"<h2>Conclusions</h2><p>{esc(report.conclusions)}</p>" if report.conclusions else ""
    plots = (
        "".join(f"<figure>{_img(p, p.stem)}</figure>" for p in report.plots)
        or "<p>No training logs (model folders only).</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(report.title)}</title>
<style>
{STYLE}
</style></head>
<body>
<h1>{esc(report.title)}</h1>
{summary}
{tables}
<h2>Protocol</h2><ul>{_html_protocol(report.entries)}</ul>
<h2>Training</h2>{plots}
<h2>Samples and reconstructions</h2>
<table class="grids"><thead><tr><th>run</th><th>samples</th><th>reconstructions (originals above)</th></tr></thead>
<tbody>{_html_grids(report.entries)}</tbody></table>
</body></html>
"""


def _html_table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in table.rows)
    return f'<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _html_protocol(entries: list[Entry]) -> str:
    return "".join(
        f"<li><b>{html.escape(e.label)}</b> <code>{html.escape(str(e.source))}</code><ul>"
        + "".join(f"<li>{html.escape(p)}</li>" for p in protocol_lines(e.results))
        + "</ul></li>"
        for e in entries
    )


def _html_grids(entries: list[Entry]) -> str:
    return "".join(
        f"<tr><th>{html.escape(e.label)}</th><td>{_img(e.grids['samples'], e.label + ' samples')}</td>"
        f"<td>{_img(e.grids['reconstructions'], e.label + ' reconstructions')}</td></tr>"
        for e in entries
    )


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'
