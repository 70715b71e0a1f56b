"""`genzoo compare`: one report for several trained models.

The report folder holds report.md (the table, protocol lines, plots and grids as files), report.html (the same,
one static self-contained page: images embedded, no script), results.json (every result with its protocol),
plots/*.png (each logged quantity of metrics.jsonl against the training step, one line per run; matplotlib, Agg)
and grids/*.png (samples and reconstructions of each model, side by side in the page).

Runs can be grouped into arms (the study command does: one arm per model, one run per seed; `compare` groups
`<arm>-s<seed>` labels the same way). The report then gives, per metric and arm, n, mean ± std and the 95 % t
interval of the mean; every pair of arms with Welch's t-test (difference, its 95 % CI, p-value, Holm-adjusted p,
exact permutation p, and the minimum detectable difference at 80 % power: genzoo.analysis.stats); the per-run
rows; and a generated paragraph of what the numbers can and cannot conclude. results.json holds the same:
`runs` (every result with its protocol), `metrics` ({metric: {arm: {mean, std, ci_low, ci_high, n}}}),
`comparisons` ([{metric, a, b, difference, ci_low, ci_high, p_value, ...}]) and `conclusions`.

What each number is comes from its metric's declaration (genzoo.core.registry.MetricInfo): the numbers it names
as results are columns (the others, counts and options, stay in results.json), headline values and the
sample-based metrics come first, display names and directions word the comparisons and conclusions. A metric
declared circular (`prior_match` scores each model's codes against its own prior with MBRCE's own objective)
stays in the per-run rows and is left out of the arm table, the comparisons and the conclusions.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path

from genzoo.analysis.conclusions import conclusions, describe, factorial_sentence
from genzoo.analysis.stats import FACTORIAL_METHOD, compare_arms, complete_grid, factorial, summarize
from genzoo.core.errors import GenzooError
from genzoo.core.registry import METRICS
from genzoo.metrics.evaluate import format_value, protocol_lines, scalar_items

PAIRWISE_METHOD = (
    "per arm: mean, std (ddof 1), 95 % t interval of the mean; pairs: Welch's t-test (two-sided), 95 % CI of the "
    "difference a - b, Holm-adjusted p over each metric's pairs, exact permutation p, minimum detectable difference "
    "at alpha 0.05 and 80 % power"
)
SEED_SUFFIX = re.compile(r"^(.+)-s\d+(\+[A-Za-z0-9_]+)?$")  # <arm>-s<seed>, or <arm>-s<seed>+<sampler>


def seed_groups(labels: list[str]) -> dict[str, str] | None:
    """{label: arm} for labels `<arm>-s<seed>` (arm `<arm>`) and `<arm>-s<seed>+<sampler>` (arm `<arm>+<sampler>`,
    as the study names its cells) when some arm has two or more runs; else None."""
    arms = {}
    for label in labels:
        m = SEED_SUFFIX.match(label)
        arms[label] = m.group(1) + (m.group(2) or "") if m else label
    counts = {}
    for arm in arms.values():
        counts[arm] = counts.get(arm, 0) + 1
    return arms if any(c > 1 for c in counts.values()) else None


def run_label(source, taken: set) -> str:
    path = Path(str(source))
    label = (path.parent.name if path.name == "model" else path.name) or str(source)
    base, i = label, 2
    while label in taken:
        label, i = f"{base}-{i}", i + 1
    taken.add(label)
    return label


def training_log(source) -> list[dict]:
    """The run's metrics.jsonl (a model folder inside a run folder finds its run's; a .jsonl file is read itself),
    or []."""
    path = Path(str(source))
    for log in (path, path / "metrics.jsonl", path.parent / "metrics.jsonl"):
        if log.is_file() and log.suffix == ".jsonl":
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


def training_plots(entries: list[dict], folder: Path, groups: dict[str, str] | None = None) -> list[Path]:
    """One PNG per logged quantity (losses, images/s, ...) against the step, so no two loss scales share an axis:
    a thin line per run, and with arms, the arm's colour for its runs and a thick line for the arm mean (at the
    steps every run of the arm logged)."""
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
    arms = _arm_order(entries, groups) if groups else []
    colours = {g: f"C{i % 10}" for i, g in enumerate(arms)}
    paths = []
    for key in keys:
        fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
        curves = {}
        for e in entries:
            pts = [
                (row["step"], row[key]) for row in e["log"] if "step" in row and isinstance(row.get(key), (int, float))
            ]
            if not pts:
                continue
            curves[e["label"]] = dict(pts)
            if groups:
                ax.plot(*zip(*pts), color=colours[groups.get(e["label"], e["label"])], linewidth=0.6, alpha=0.45)
            else:
                ax.plot(*zip(*pts), label=e["label"], linewidth=1.2)
        for g in arms:
            members = [
                curves[e["label"]] for e in entries if groups.get(e["label"], e["label"]) == g and e["label"] in curves
            ]
            if not members:
                continue
            steps = sorted(set.intersection(*(set(m) for m in members)))
            if steps:
                mean = [sum(m[s] for m in members) / len(members) for s in steps]
                ax.plot(steps, mean, color=colours[g], linewidth=2, label=f"{g} (mean of {len(members)})")
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


def _circular(key: str) -> bool:
    return METRICS.info(key.split(".", 1)[0]).circular


def _column_rank(key: str) -> tuple[bool, bool]:
    """Headline values first (FID, recall), then the other values of sample-based metrics, then the rest."""
    return not describe(key).headline, not METRICS.info(key.split(".", 1)[0]).sample_based


def metric_columns(entries: list[dict], cross_model: bool = False) -> list[str]:
    """Numeric result keys (`metric.value`) in report order; `cross_model` leaves out the circular ones."""
    found = []
    for e in entries:
        for key, value in scalar_items(e["results"]):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or METRICS.value_info(key) is None:
                continue  # text, or a number its metric declares bookkeeping
            if cross_model and _circular(key):
                continue
            if key not in found:
                found.append(key)
    return sorted(found, key=_column_rank)


def _arm_order(entries: list[dict], groups: dict[str, str]) -> list[str]:
    order = []
    for e in entries:
        g = groups.get(e["label"], e["label"])
        if g not in order:
            order.append(g)
    return order


def arm_values(entries: list[dict], groups: dict[str, str] | None) -> dict[str, dict[str, list[float]]]:
    """{metric: {arm: [per-run values]}} over the cross-model metrics."""
    groups = groups or {e["label"]: e["label"] for e in entries}
    values = [dict(scalar_items(e["results"])) for e in entries]
    out = {}
    for c in metric_columns(entries, cross_model=True):
        out[c] = {}
        for g in _arm_order(entries, groups):
            xs = [
                float(v[c])
                for e, v in zip(entries, values)
                if groups.get(e["label"], e["label"]) == g
                and isinstance(v.get(c), (int, float))
                and math.isfinite(float(v[c]))
            ]
            out[c][g] = xs
    return out


def statistics(
    entries: list[dict], groups: dict[str, str] | None, budget: str | None = None, factors: dict | None = None
) -> dict:
    """{metrics: {metric: {arm: summary}}, comparisons: [...], factorial: [...], conclusions: text}
    (genzoo.analysis.stats); `factors` ({arm: {factor: level}}, a study's) adds the two-way analysis."""
    by_metric = arm_values(entries, groups)
    summaries = {c: {g: summarize(xs) for g, xs in arms.items()} for c, arms in by_metric.items()}
    comparisons = [row for c, arms in by_metric.items() for row in compare_arms(c, arms)]
    headline = [r for r in comparisons if describe(r["metric"]).headline] or comparisons
    grid = complete_grid(factors or {}, list(next(iter(by_metric.values()), {}))) if groups else None
    effects, said = [], []
    for c, arms in by_metric.items():
        result = factorial(arms, grid) if grid else None
        if result:
            effects.append({"metric": c, **result})
        if grid and describe(c).headline:
            label = describe(c).display
            said.append(
                factorial_sentence(result, label)
                if result
                else f"Factorial {label}: not possible here (a cell of the grid has no run with this metric, or "
                "there are not more runs than cells)."
            )
    text = conclusions(headline, budget=budget)
    return {
        "metrics": summaries,
        "comparisons": comparisons,
        "factorial": effects,
        "conclusions": " ".join([text, *said]),
        "method": PAIRWISE_METHOD + (f"; factorial: {FACTORIAL_METHOD}" if effects else ""),
    }


def _short(x) -> str:
    return "" if x is None else f"{x:.4g}"


def table_rows(entries: list[dict], groups: dict[str, str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per run (every metric), or per arm (cross-model metrics) with n and
    mean ± std [95 % CI]."""
    if not groups:
        columns = metric_columns(entries)
        values = [dict(scalar_items(e["results"])) for e in entries]

        def cell(v, c):
            if c == "fid.fid" and isinstance(v.get("fid.fid_ci_low"), (int, float)):  # with its bootstrap interval
                return f"{v[c]:.4g} [{v['fid.fid_ci_low']:.4g}, {v['fid.fid_ci_high']:.4g}]"
            return format_value(v.get(c, ""))

        header = [
            "run",
            *[
                f"{c} [bootstrap 95 %]" if c == "fid.fid" and any("fid.fid_ci_low" in v for v in values) else c
                for c in columns
            ],
        ]
        return header, [[e["label"], *[cell(v, c) for c in columns]] for e, v in zip(entries, values)]
    by_metric = arm_values(entries, groups)
    columns = list(by_metric)
    rows = []
    for g in _arm_order(entries, groups):
        n = sum(1 for e in entries if groups.get(e["label"], e["label"]) == g)
        cells = []
        for c in columns:
            s = summarize(by_metric[c][g])
            if s["n"] == 0:
                cells.append("")
            elif s["n"] == 1:
                cells.append(_short(s["mean"]))
            else:
                cells.append(f"{_short(s['mean'])} ± {s['std']:.2g} [{_short(s['ci_low'])}, {_short(s['ci_high'])}]")
        rows.append([g, str(n), *cells])
    return ["model", "n", *columns], rows


def comparison_rows(comparisons: list[dict]) -> tuple[list[str], list[list[str]]]:
    header = ["metric", "a", "b", "a - b", "95 % CI", "p (Welch)", "p (Holm)", "p (permutation)", "MDD (80 %)"]
    rows = [
        [
            describe(r["metric"]).display,
            r["a"],
            r["b"],
            _short(r["difference"]),
            "" if r["ci_low"] is None else f"[{_short(r['ci_low'])}, {_short(r['ci_high'])}]",
            _short(r["p_value"]),
            _short(r.get("p_holm")),
            _short(r.get("p_permutation")),
            _short(r.get("mdd")),
        ]
        for r in comparisons
    ]
    return header, rows


def factorial_rows(effects: list[dict]) -> tuple[list[str], list[list[str]]]:
    """One row per metric and term of the two-way analysis, with the marginal means of the term's levels."""
    header = ["metric", "term", "df", "F", "p", "marginal means"]
    rows = []
    for e in effects:
        for t in e["effects"]:
            means = e["marginal_means"].get(t["term"])
            rows.append(
                [
                    describe(e["metric"]).display,
                    t["term"],
                    f"{t['df']}, {e['residual_df']}",
                    _short(t["F"]),
                    _short(t["p_value"]),
                    ", ".join(f"{k} {_short(v)}" for k, v in means.items()) if means else "",
                ]
            )
    return header, rows


def _md_table(header, rows) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _sections(entries, groups, stats_block, notes) -> list[tuple[str, str | None, list[str], list[list[str]]]]:
    """(heading, paragraph, header, rows) for each table of the report."""
    run_header, run_rows = table_rows(entries, None)
    if not groups:
        return [("Results", notes, run_header, run_rows)]
    header, rows = table_rows(entries, groups)
    pair_header, pair_rows = comparison_rows(stats_block["comparisons"])
    circular = [c for c in run_header if _circular(c)]
    return [
        (
            "Per arm: mean ± std [95 % CI]",
            notes,
            header,
            rows,
        ),
        ("Pairwise comparisons (a - b)", PAIRWISE_METHOD + ".", pair_header, pair_rows),
        *(
            [
                (
                    "Factorial effects",
                    FACTORIAL_METHOD + ".",
                    *factorial_rows(stats_block["factorial"]),
                )
            ]
            if stats_block["factorial"]
            else []
        ),
        (
            "Per run",
            (
                f"{', '.join(circular)}: each model scored against its own prior with MBRCE's own objective; "
                "circular across models, so left out of the tables above."
            )
            if circular
            else None,
            run_header,
            run_rows,
        ),
    ]


def _markdown(title, sections, conclusions_text, entries, plots, folder) -> str:
    lines = [f"# {title}", ""]
    if conclusions_text:
        lines += ["## Conclusions", "", conclusions_text, ""]
    for heading, paragraph, header, rows in sections:
        lines += [f"## {heading}", ""] + ([paragraph, ""] if paragraph else []) + _md_table(header, rows) + [""]
    lines += ["## Protocol", ""]
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
        s, r = (Path(e["grids"][k]).relative_to(folder).as_posix() for k in ("samples", "reconstructions"))
        lines.append(f"| {e['label']} | ![samples]({s}) | ![reconstructions]({r}) |")
    return "\n".join(lines) + "\n"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _html(title, sections, conclusions_text, entries, plots) -> str:
    esc = html.escape

    def table(header, rows, cls="metrics"):
        head = "".join(f"<th>{esc(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
        return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    tables = "".join(
        f"<h2>{esc(heading)}</h2>" + (f"<p>{esc(paragraph)}</p>" if paragraph else "") + table(header, rows)
        for heading, paragraph, header, rows in sections
    )
    summary = f"<h2>Conclusions</h2><p>{esc(conclusions_text)}</p>" if conclusions_text else ""
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
p {{ max-width: 60em; }}
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
{summary}
{tables}
<h2>Protocol</h2><ul>{protocol}</ul>
<h2>Training</h2>{plot_html}
<h2>Samples and reconstructions</h2>
<table class="grids"><thead><tr><th>run</th><th>samples</th><th>reconstructions (originals above)</th></tr></thead>
<tbody>{grids}</tbody></table>
</body></html>
"""


def write_report(
    entries: list[dict],
    folder: Path,
    title: str = "genzoo compare",
    groups: dict[str, str] | None = None,
    notes: str | None = None,
    extra: dict | None = None,
) -> dict:
    """Write report.md, report.html, results.json and plots/ under `folder` from evaluated entries
    ({label, source, results, log, grids}); `notes` is a paragraph above the table (the study's budget),
    `extra` goes into results.json as is."""
    from genzoo.core.io import atomic_write_text, write_json

    folder = Path(folder)
    plots = training_plots(entries, folder / "plots", groups)
    stats_block = statistics(
        entries, groups, budget=(extra or {}).get("budget_short"), factors=(extra or {}).get("factors")
    )
    sections = _sections(entries, groups, stats_block, notes)
    header, rows = sections[0][2], sections[0][3]
    conclusions_text = stats_block["conclusions"] if groups else None
    write_json(
        folder / "results.json",
        {
            "runs": {
                e["label"]: {
                    "source": str(e["source"]),
                    "group": (groups or {}).get(e["label"]),
                    "results": e["results"],
                }
                for e in entries
            },
            "metrics": stats_block["metrics"],
            "comparisons": stats_block["comparisons"],
            "factorial": stats_block["factorial"],
            "conclusions": conclusions_text,
            "method": stats_block["method"],
            **(extra or {}),
        },
    )
    atomic_write_text(folder / "report.md", _markdown(title, sections, conclusions_text, entries, plots, folder))
    atomic_write_text(folder / "report.html", _html(title, sections, conclusions_text, entries, plots))
    return {
        "markdown": folder / "report.md",
        "html": folder / "report.html",
        "json": folder / "results.json",
        "plots": plots,
        "header": header,
        "rows": rows,
        "conclusions": conclusions_text,
        "comparisons": stats_block["comparisons"],
    }


def evaluate_source(
    source,
    label: str,
    metrics: list[str],
    options: dict | None,
    folder: Path,
    split: str = "test",
    limit: int | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    samples: int = 64,
    load=None,
    progress=None,
    grid_seed: int = 0,
) -> dict:
    """One report entry: the model's results on `metrics`, its training log and its grids (under folder/grids)."""
    from genzoo.metrics.evaluate import dataset_for, evaluate
    from genzoo.modelfile.folder import model_revision
    from genzoo.modelfile.hub import load as load_any

    load = load or load_any
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
    grids = model_grids(
        model, dataset_for(model, split, data_root), Path(folder) / "grids", _safe(label), samples, seed=grid_seed
    )
    return {"label": label, "source": source, "results": results, "log": training_log(source), "grids": grids}


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
    arms: str = "auto",
    samplers: list[str] | None = None,
) -> dict:
    """Evaluate every source the same way, draw its grids, and write the report. With `arms="auto"` and no
    `groups`, labels `<arm>-s<seed>` are grouped into arms (statistics over seeds); `arms="none"` keeps runs apart.
    `samplers` (["prior", "gmm"]): every source under each sampler fitted in its folder, labelled
    `<label>+<sampler>` (the prior's keep their label), so that the report compares samplers as arms."""
    from genzoo.metrics.evaluate import resolve_metrics

    resolve_metrics(metrics, options)  # fail before any work
    samplers = list(samplers or ["prior"])
    check_fitted(sources, samplers)
    taken: set = set()
    entries = []
    for i, source in enumerate(sources):
        base = labels[i] if labels else run_label(source, taken)
        for sampler in samplers:
            label = base if sampler == "prior" else f"{base}+{sampler}"
            entries.append(
                evaluate_source(
                    source,
                    label,
                    metrics,
                    options,
                    folder,
                    split,
                    limit,
                    data_root,
                    device,
                    samples,
                    _loader(load, sampler),
                    progress,
                )
            )
    if groups is None and arms == "auto":
        groups = seed_groups([e["label"] for e in entries])
    warning = budget_warning(sources, [e["label"] for e in entries])
    report = write_report(entries, folder, title, groups, notes=warning)
    return {**report, "warning": warning}


def _loader(load, sampler: str):
    """The model loader for one sampler: `load` as given for the prior, else the Hub-or-folder load with it."""
    if sampler == "prior":
        return load
    from genzoo.modelfile.hub import load as load_any

    return lambda source, device: load_any(source, device=device, sampler=sampler)


def check_fitted(sources: list, samplers: list[str]) -> None:
    """Every named sampler is fitted for every local source, before any evaluation (a missing one names the fit)."""
    from genzoo.modelfile.folder import resolve_model_folder
    from genzoo.samplers.fit import fitted_samplers

    for source in sources:
        if not Path(str(source)).exists():
            continue  # a Hub model: its load says what it lacks
        folder = resolve_model_folder(source)
        missing = [s for s in samplers if s not in fitted_samplers(folder)]
        if missing:
            raise GenzooError(
                f"no sampler '{missing[0]}' is fitted for '{source}' (fitted: {', '.join(fitted_samplers(folder))})",
                f"fit it first: genzoo fit-sampler {source} --sampler {missing[0]}",
            )


def training_budget(source) -> dict | None:
    """{steps, epochs, batch_size} of the run a source was trained in (its recipe.yaml), or None if unknown."""
    import yaml

    path = Path(str(source))
    for folder in (path, path.parent):
        recipe = folder / "recipe.yaml"
        if recipe.is_file():
            train = (yaml.safe_load(recipe.read_text()) or {}).get("train") or {}
            return {k: train.get(k) for k in ("steps", "epochs", "batch_size")}
    return None


def budget_warning(sources: list, labels: list[str]) -> str | None:
    """A sentence when the compared runs were trained with different budgets (steps, epochs, batch size): their
    differences then mix the models with how long each was trained."""
    budgets = {label: training_budget(source) for source, label in zip(sources, labels)}
    known = {label: b for label, b in budgets.items() if b is not None}
    if len({json.dumps(b, sort_keys=True) for b in known.values()}) <= 1:
        return None

    def said(b):
        length = f"{b['steps']} steps" if b["steps"] is not None else f"{b['epochs']} epochs"
        return f"{length} of batch {b['batch_size']}"

    runs = "; ".join(f"{label}: {said(b)}" for label, b in known.items())
    return (
        f"Warning: these runs were trained with different budgets ({runs}); differences between them mix the "
        "models with how long each was trained. Compare runs of one budget (`genzoo study` sets one)."
    )
