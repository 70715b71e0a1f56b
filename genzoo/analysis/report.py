"""`genzoo compare`: one report for several trained models.

The report folder holds report.md (the table, protocol lines, plots and grids as files), report.html (the same,
one static self-contained page: images embedded, no script), results.json (every result with its protocol),
plots/*.png (each logged quantity of metrics.jsonl against the training step, one line per run; matplotlib, Agg)
and grids/*.png (samples and reconstructions of each model, side by side in the page).

Runs can be grouped (the study command does: one group per model, one run per seed); the table then gives
mean ± standard deviation over the runs of each group, and n.
"""

from __future__ import annotations

import base64
import html
import json
import math
from pathlib import Path

from genzoo.metrics.evaluate import format_value, protocol_lines, scalar_items

BOOKKEEPING = {"images", "reference_images", "codes", "samples", "alpha", "bandwidth", "kid_std"}


def run_label(source, taken: set) -> str:
    path = Path(str(source))
    label = (path.parent.name if path.name == "model" else path.name) or str(source)
    base, i = label, 2
    while label in taken:
        label, i = f"{base}-{i}", i + 1
    taken.add(label)
    return label


def training_log(source) -> list[dict]:
    """The run's metrics.jsonl (a model folder inside a run folder finds its run's), or []."""
    path = Path(str(source))
    for folder in (path, path.parent):
        log = folder / "metrics.jsonl"
        if log.is_file():
            rows = []
            for line in log.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue  # a line cut by a kill while training
            return rows
    return []


def model_grids(
    model, dataset, folder: Path, label: str, samples: int = 64, reconstructions: int = 16, seed: int = 0
) -> dict:
    """samples grid and originals-above-reconstructions grid, as PNGs."""
    import torch

    from genzoo.core.grids import save_grid

    g = torch.Generator().manual_seed(seed)
    out = {"samples": save_grid(model.sample(samples, generator=g).cpu(), folder / f"{label}-samples.png", nrow=8)}
    out["reconstructions"] = reconstruction_grid(
        model, dataset, folder / f"{label}-reconstructions.png", count=reconstructions, row=8
    )
    return out


def reconstruction_grid(model, dataset, path: Path, count: int = 16, row: int = 16) -> Path:
    """The first `count` images of `dataset`, each row of originals above its row of reconstructions, as a PNG."""
    import torch

    from genzoo.core.grids import save_grid
    from genzoo.datasets.base import to_unit_float

    n = min(count, len(dataset))
    x = to_unit_float(dataset.__getitems__(list(range(n))).to(next(model.parameters()).device))
    with torch.no_grad():
        r = model.reconstruct(x)
    row = min(n, row)
    pairs = torch.cat([torch.cat([x[i : i + row], r[i : i + row]]) for i in range(0, n, row)])
    return save_grid(pairs.cpu(), path, nrow=row)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def training_plots(entries: list[dict], folder: Path) -> list[Path]:
    """One PNG per logged quantity (losses, images/s, ...) against the step, a line per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = []
    for e in entries:
        for row in e["log"]:
            for k, v in row.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)) and k not in keys:
                    keys.append(k)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for key in keys:
        fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
        for e in entries:
            pts = [
                (row["step"], row[key]) for row in e["log"] if "step" in row and isinstance(row.get(key), (int, float))
            ]
            if pts:
                ax.plot(*zip(*pts), label=e["label"], linewidth=1.2)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"{_safe(key)}.png"
        fig.savefig(path)
        plt.close(fig)
        paths.append(path)
    return paths


def table_rows(entries: list[dict], groups: dict[str, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per run, or per group with mean ± std (over its runs) and n."""
    columns = []
    for e in entries:
        for key, value in scalar_items(e["results"]):
            if key.split(".", 1)[1] not in BOOKKEEPING and isinstance(value, (int, float)) and key not in columns:
                columns.append(key)
    values = [dict(scalar_items(e["results"])) for e in entries]
    if not groups:
        return ["run", *columns], [
            [e["label"], *[format_value(v.get(c, "")) for c in columns]] for e, v in zip(entries, values)
        ]
    rows, order = [], []
    for e in entries:
        g = groups.get(e["label"], e["label"])
        if g not in order:
            order.append(g)
    for g in order:
        members = [v for e, v in zip(entries, values) if groups.get(e["label"], e["label"]) == g]
        cells = []
        for c in columns:
            xs = [float(m[c]) for m in members if isinstance(m.get(c), (int, float)) and math.isfinite(float(m[c]))]
            if not xs:
                cells.append("")
                continue
            mean = sum(xs) / len(xs)
            std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0
            cells.append(f"{mean:.4g} ± {std:.2g}" if len(xs) > 1 else f"{mean:.4g}")
        rows.append([g, str(len(members)), *cells])
    return ["model", "n", *columns], rows


def _markdown(title, header, rows, entries, plots, folder) -> str:
    lines = [f"# {title}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += ["", "## Protocol", ""]
    for e in entries:
        lines += [f"- **{e['label']}** (`{e['source']}`)"] + [f"  - {p}" for p in protocol_lines(e["results"])]
    if plots:
        lines += ["", "## Training", ""] + [f"![{p.stem}]({p.relative_to(folder).as_posix()})" for p in plots]
    lines += [
        "",
        "## Samples and reconstructions",
        "",
        "| run | samples | reconstructions (originals above) |",
        "|---|---|---|",
    ]
    for e in entries:
        s, r = (e["grids"][k].relative_to(folder).as_posix() for k in ("samples", "reconstructions"))
        lines.append(f"| {e['label']} | ![samples]({s}) | ![reconstructions]({r}) |")
    return "\n".join(lines) + "\n"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html(title, header, rows, entries, plots) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    protocol = "".join(
        f"<li><b>{esc(e['label'])}</b> <code>{esc(str(e['source']))}</code><ul>"
        + "".join(f"<li>{esc(p)}</li>" for p in protocol_lines(e["results"]))
        + "</ul></li>"
        for e in entries
    )
    plot_html = (
        "".join(f"<figure>{_img(p, p.stem)}</figure>" for p in plots)
        or "<p>No training logs (model folders only).</p>"
    )
    grids = "".join(
        f"<tr><th>{esc(e['label'])}</th><td>{_img(e['grids']['samples'], e['label'] + ' samples')}</td>"
        f"<td>{_img(e['grids']['reconstructions'], e['label'] + ' reconstructions')}</td></tr>"
        for e in entries
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: right; vertical-align: top; }}
th:first-child, td:first-child {{ text-align: left; }}
thead th {{ background: #f2f2f2; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }}
img {{ image-rendering: pixelated; max-width: 520px; }}
.grids td {{ text-align: center; }}
li {{ font-size: 0.9em; }}
</style></head>
<body>
<h1>{esc(title)}</h1>
<table class="metrics"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Protocol</h2><ul>{protocol}</ul>
<h2>Training</h2>{plot_html}
<h2>Samples and reconstructions</h2>
<table class="grids"><thead><tr><th>run</th><th>samples</th><th>reconstructions (originals above)</th></tr></thead>
<tbody>{grids}</tbody></table>
</body></html>
"""


def write_report(
    entries: list[dict], folder: Path, title: str = "genzoo compare", groups: dict[str, str] | None = None
) -> dict:
    """Write report.md, report.html, results.json and plots/ under `folder` from evaluated entries
    ({label, source, results, log, grids})."""
    from genzoo.core.io import atomic_write_text, write_json

    folder = Path(folder)
    plots = training_plots(entries, folder / "plots")
    header, rows = table_rows(entries, groups)
    write_json(
        folder / "results.json",
        {
            e["label"]: {"source": str(e["source"]), "group": (groups or {}).get(e["label"]), "results": e["results"]}
            for e in entries
        },
    )
    atomic_write_text(folder / "report.md", _markdown(title, header, rows, entries, plots, folder))
    atomic_write_text(folder / "report.html", _html(title, header, rows, entries, plots))
    return {
        "markdown": folder / "report.md",
        "html": folder / "report.html",
        "json": folder / "results.json",
        "plots": plots,
        "header": header,
        "rows": rows,
    }


def compare(
    sources: list,
    metrics: list[str],
    options: dict | None,
    folder: Path,
    split: str = "test",
    limit: int | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    samples: int = 64,
    title: str = "genzoo compare",
    groups: dict[str, str] | None = None,
    labels: list[str] | None = None,
    load=None,
    progress=None,
) -> dict:
    """Evaluate every source the same way, draw its grids, and write the report."""
    from genzoo.metrics.evaluate import dataset_for, evaluate, resolve_metrics
    from genzoo.modelfile.folder import model_revision
    from genzoo.modelfile.hub import load as load_any

    resolve_metrics(metrics, options)  # fail before any work
    load = load or load_any
    taken: set = set()
    entries = []
    for i, source in enumerate(sources):
        label = labels[i] if labels else run_label(source, taken)
        if progress is not None:
            progress(f"{label}: loading")
        model = load(source, device=device)
        results = evaluate(
            model,
            metrics,
            options,
            split=split,
            limit=limit,
            data_root=data_root,
            revision=model_revision(model, source),
            progress=None if progress is None else (lambda name, lb=label: progress(f"{lb}: {name}")),
        )
        grids = model_grids(model, dataset_for(model, split, data_root), Path(folder) / "grids", _safe(label), samples)
        entries.append(
            {"label": label, "source": source, "results": results, "log": training_log(source), "grids": grids}
        )
    return write_report(entries, folder, title, groups)
