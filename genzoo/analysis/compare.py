"""`genzoo compare`: several trained models evaluated the same way, each into a report `Entry` (its results, its
training log, its sample and reconstruction grids), then one report of them all (report.py).

Labels `<arm>-s<seed>` are grouped into arms, so that the report gives statistics over seeds; `samplers` evaluates
every model under each sampler fitted in its folder, as arms `<arm>+<sampler>`. Runs trained with different
budgets get a warning above the table.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

from genzoo.analysis.report import WrittenReport, write_report
from genzoo.analysis.report_tables import Entry
from genzoo.core.errors import GenzooError

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
    """The run folder's name (a model folder's run's), made unique among `taken`, which it joins."""
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


def evaluate_source(
    source,
    label: str,
    metrics: list[str],
    options: dict | None,
    folder: Path,
    *,
    split: str = "test",
    limit: int | None = None,
    data_root: str | None = None,
    device: str = "cpu",
    samples: int = 64,
    load=None,
    progress=None,
    grid_seed: int = 0,
) -> Entry:
    """One report entry: the model's results on `metrics`, its training log and its grids (under folder/grids)."""
    from genzoo.analysis.figures import model_grids
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
    dataset = dataset_for(model, split, data_root)
    grids = model_grids(model, dataset, Path(folder) / "grids", label, samples, seed=grid_seed)
    return Entry(label=label, results=results, source=source, log=training_log(source), grids=grids)


def compare(
    sources: list,
    metrics: list[str],
    options: dict | None,
    folder: Path,
    *,
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
) -> WrittenReport:
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
            entry = evaluate_source(
                source,
                base if sampler == "prior" else f"{base}+{sampler}",
                metrics,
                options,
                folder,
                split=split,
                limit=limit,
                data_root=data_root,
                device=device,
                samples=samples,
                load=_loader(load, sampler),
                progress=progress,
            )
            entries.append(entry)
    if groups is None and arms == "auto":
        groups = seed_groups([e.label for e in entries])
    warning = budget_warning(entries)
    report = write_report(entries, folder, title=title, groups=groups, notes=warning)
    return replace(report, warning=warning)


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


def budget_warning(entries: list[Entry]) -> str | None:
    """A sentence when the compared runs were trained with different budgets (steps, epochs, batch size): their
    differences then mix the models with how long each was trained. Each entry's budget is its own source's (a
    source evaluated under several samplers gives several entries)."""
    budgets = {e.label: training_budget(e.source) for e in entries}
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
