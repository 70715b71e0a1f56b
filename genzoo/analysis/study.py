"""`genzoo study STUDY.yaml`: train several recipes over several seeds with one budget, evaluate, report.

A study file:

    name: mbrce_vs_baselines_mnist
    output_dir: runs/studies            # runs go to <output_dir>/<name>/<model>-s<seed>, the report to .../report
    seeds: [0, 1, 2]
    budget: {images: 120000}            # the same for every arm: epochs, steps (batches), images (seen) or
                                        # optimizer_steps (phases x batches); turned into train.steps / epochs
    overrides: [train.log_every=100]    # applied to every recipe, before the budget and the command line's
    models:                             # label: recipe, or {recipe: ..., overrides: [...]} for one model only
      mbrce_aae: recipes/mbrce_mnist.yaml
      aae: recipes/aae_mnist.yaml
    factors:                            # optional: what each arm is, for the report ({arm: {factor: level}})
      mbrce_aae: {matching: mbrce, prior: mixture}
    metrics: [reconstruction, fid, precision_recall, parzen]
    metric_options: {fid: {count: 10000}}
    samplers: [prior, gmm]              # optional: evaluate every trained run under each sampler (fitted after
                                        # training on its codes, seeded with the run's seed): no retraining
    sampler_options: {gmm: {components: 10}}
    per_seed_draws: true                # each run's metrics draw with the run's seed (samples; and with
                                        # fresh_reference, the reference images), unless metric_options fix a seed
    fresh_reference: false
    split: test
    committed_results: results/studies/mbrce_vs_baselines_mnist   # optional: each finished result (and the run's
                                        # metrics.jsonl) is copied here, to be committed; a fresh checkout without
                                        # the trained runs resumes from these, training nothing already done

The runner trains one run, evaluates it at once and writes its result to <output_dir>/<name>/results/<run>.json
(atomically) before the next (with samplers: one result per (run, sampler), results/<run>+<sampler>.json for the
fitted ones, each an arm <model>+<sampler> of the report with the factor `sampler`); a stopped study started again
skips every run whose results are there for the same weights, the same evaluation and the same budget, and resumes
an interrupted training from its checkpoint (a raised budget: every run trains on from its last checkpoint).
`jobs` runs that many runs at once in separate processes (the CPU threads split between them, each run's console
output in <output_dir>/<name>/logs/<run>.log); `shard=(i, k)` runs every k-th run from the i-th, and `merge` only
writes the report from the results present (all of them must be). The report is genzoo.analysis.report's, grouped
by arm.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genzoo.core.errors import GenzooError

if TYPE_CHECKING:  # the report's modules load torch: imported where a report is written
    from genzoo.analysis.report import WrittenReport

BUDGET_KINDS = ("epochs", "steps", "images", "optimizer_steps")


@dataclass
class StudySpec:
    name: str
    models: dict
    seeds: list[int] = field(default_factory=lambda: [0])
    overrides: list[str] = field(default_factory=list)
    budget: dict = field(default_factory=dict)
    factors: dict = field(default_factory=dict)
    metrics: list[str] = field(default_factory=lambda: ["reconstruction"])
    metric_options: dict = field(default_factory=dict)
    samplers: list[str] = field(default_factory=lambda: ["prior"])
    sampler_options: dict = field(default_factory=dict)
    per_seed_draws: bool = True
    fresh_reference: bool = False
    split: str = "test"
    limit: int | None = None
    output_dir: str = "runs/studies"
    samples: int = 64
    committed_results: str | None = None
    curve: dict = field(default_factory=dict)


def load_study(path) -> StudySpec:
    from genzoo.core.options import build_dataclass
    from genzoo.core.recipe import read_yaml

    raw = read_yaml(path)
    spec = build_dataclass(StudySpec, raw, "study") if not isinstance(raw, StudySpec) else raw
    if not spec.models:
        raise GenzooError(f"study '{path}' names no models", "add models: {label: recipes/x.yaml}")
    if spec.budget:
        unknown = [k for k in spec.budget if k not in BUDGET_KINDS]
        if unknown or len(spec.budget) != 1:
            raise GenzooError(
                f"study key 'budget' must name exactly one of {', '.join(BUDGET_KINDS)}, got {dict(spec.budget)}",
                "write e.g. budget: {images: 120000}",
            )
        ((kind, value),) = spec.budget.items()
        if not isinstance(value, (int, float)) or value <= 0:
            raise GenzooError(f"study key 'budget.{kind}' must be a positive number, got {value!r}", "fix it")
    for label, levels in spec.factors.items():
        if label not in spec.models:
            raise GenzooError(
                f"study key 'factors.{label}' names no model of the study",
                f"use one of the models' labels: {', '.join(spec.models)}",
            )
        if not isinstance(levels, dict) or not all(isinstance(v, (str, int, float, bool)) for v in levels.values()):
            raise GenzooError(
                f"study key 'factors.{label}' must map factor names to levels, got {levels!r}",
                f"write e.g. factors.{label}: {{matching: mbrce, prior: mixture}}",
            )
    check_samplers(spec)
    check_curve(spec)
    base = Path(path).resolve().parent
    for label, entry in list(spec.models.items()):
        entry = {"recipe": entry} if isinstance(entry, str) else dict(entry)
        if "recipe" not in entry:
            raise GenzooError(f"study key 'models.{label}' names no recipe", f"write models.{label}: recipes/x.yaml")
        recipe = Path(entry["recipe"])
        if not recipe.is_file() and (base / recipe).is_file():
            recipe = base / recipe
        if not recipe.is_file():
            raise GenzooError(f"study key 'models.{label}': recipe '{entry['recipe']}' does not exist", "fix the path")
        spec.models[label] = {"recipe": recipe, "overrides": list(entry.get("overrides") or [])}
    return spec


def check_samplers(spec: StudySpec) -> None:
    """Every sampler named once, known, and its options valid for it (before any training)."""
    from genzoo.core.registry import SAMPLERS, resolve_section

    if not spec.samplers or len(set(spec.samplers)) != len(spec.samplers):
        raise GenzooError(
            f"study key 'samplers' must name samplers once each, got {spec.samplers}", "e.g. [prior, gmm]"
        )
    for name in spec.sampler_options:
        if name not in spec.samplers:
            raise GenzooError(
                f"study key 'sampler_options.{name}' names no sampler of the study", "add it to samplers"
            )
    for name in spec.samplers:
        resolve_section(
            SAMPLERS,
            {"name": name, **spec.sampler_options.get(name, {})},
            f"sampler_options.{name}",
            injected=("dim",),
        )


def check_curve(spec: StudySpec) -> None:
    """`curve: {metrics: [fid], options: {fid: {count: 1000}}}`: known keys, known metrics and options."""
    if not spec.curve:
        return
    unknown = set(spec.curve) - {"metrics", "options"}
    metrics = spec.curve.get("metrics")
    if unknown or not isinstance(metrics, list) or not metrics:
        raise GenzooError(
            f"study key 'curve' must be {{metrics: [...], options: {{...}}}}, got {dict(spec.curve)}",
            "write e.g. curve: {metrics: [fid], options: {fid: {count: 1000}}}",
        )
    from genzoo.metrics.evaluate import resolve_metrics

    resolve_metrics(metrics, spec.curve.get("options"))  # a misspelt option fails now, not after the first training


def cells(spec: StudySpec, run: str, label: str) -> list[tuple[str, str, str]]:
    """(cell, arm, sampler) of a run: the run itself under the prior, <run>+<sampler> under a fitted sampler."""
    return [
        (run if s == "prior" else f"{run}+{s}", label if s == "prior" else f"{label}+{s}", s) for s in spec.samplers
    ]


def cell_factors(spec: StudySpec) -> dict:
    """The factors of every arm, with `sampler` added when the study has more than one."""
    if spec.samplers == ["prior"]:
        return spec.factors
    out = {}
    for label in spec.models:
        for _, arm, sampler in cells(spec, "", label):
            out[arm] = {**spec.factors.get(label, {}), "sampler": sampler}
    return out


def _phase_count(recipe) -> int:
    from genzoo.core.registry import DATASETS, build
    from genzoo.modelfile.folder import create_model

    dataset, _ = build(DATASETS, dict(recipe.data), "data", split="train")
    return len(create_model(recipe.model, recipe.prior, dataset.image_shape).phases())


def budget_overrides(spec: StudySpec, entry: dict, overrides: list[str]) -> list[str]:
    """The train.steps / train.epochs overrides that give this arm the study's budget."""
    from genzoo.core.recipe import load_recipe

    if not spec.budget:
        return []
    ((kind, value),) = spec.budget.items()
    if kind == "epochs":
        return [f"train.epochs={value}", "train.steps=null"]
    if kind == "steps":
        return [f"train.steps={int(value)}", "train.epochs=null"]
    recipe = load_recipe(entry["recipe"], [*spec.overrides, *entry["overrides"], *overrides])
    per_step = recipe.train.batch_size if kind == "images" else _phase_count(recipe)
    return [f"train.steps={max(1, math.ceil(value / per_step))}", "train.epochs=null"]


def study_runs(spec: StudySpec, overrides: list[str] | None = None) -> dict:
    """{run: {label, seed, recipe}} in grid order, seed-major (every arm's first seed, then every arm's second, ...:
    a study stopped early has whole seeds of every arm), every recipe resolved (a bad key fails here)."""
    from genzoo.core.recipe import load_recipe

    root = Path(spec.output_dir) / spec.name
    runs = {}
    budgets = {label: budget_overrides(spec, entry, overrides or []) for label, entry in spec.models.items()}
    for seed in spec.seeds:
        for label, entry in spec.models.items():
            budget = budgets[label]
            run = f"{label}-s{seed}"
            recipe = load_recipe(
                entry["recipe"],
                [
                    *spec.overrides,
                    *entry["overrides"],
                    *budget,
                    *(overrides or []),
                    f"seed={seed}",
                    f"name={run}",
                    f"output_dir={root}",
                ],
            )
            runs[run] = {"label": label, "seed": seed, "recipe": recipe}
    return runs


def run_metric_options(spec: StudySpec, seed: int) -> dict:
    """The metric options of one run: with per_seed_draws, each metric that draws (has a `seed` option) draws
    with the run's seed unless the study fixes it; with fresh_reference also the reference images."""
    import inspect

    from genzoo.core.registry import METRICS

    options = {name: dict((spec.metric_options or {}).get(name, {})) for name in spec.metrics}
    if not spec.per_seed_draws:
        return options
    for name in spec.metrics:
        params = inspect.signature(METRICS.get(name)).parameters
        if "seed" in params:
            options[name].setdefault("seed", seed)
        if spec.fresh_reference and "reference_seed" in params:
            options[name].setdefault("reference_seed", seed)
    return options


# Bumped when a metric's computation changes, so that saved evaluations are redone (the runs are not retrained).
EVALUATION_REVISION = 2


def _eval_key(spec: StudySpec, options: dict, sampler: str = "prior") -> str:
    text = json.dumps(
        {
            "revision": EVALUATION_REVISION,
            **(
                {}
                if sampler == "prior"
                else {"sampler": sampler, "sampler_options": spec.sampler_options.get(sampler)}
            ),
            "metrics": spec.metrics,
            "options": options,
            "split": spec.split,
            "limit": spec.limit,
            "samples": spec.samples,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _weights_sha(run_dir: Path) -> str | None:
    from genzoo.core.io import file_sha256

    path = Path(run_dir) / "model" / "model.safetensors"
    return file_sha256(path) if path.is_file() else None


def finished_result(spec: StudySpec, root: Path, run: str, seed: int, cell: str | None = None, sampler="prior"):
    """The saved result of a run (or of one of its sampler cells) if it is for the current weights, the current
    evaluation and the study's budget, else None. A committed copy (committed_results) also stands where the run's
    weights are absent (a fresh checkout: they were never committed), not where other weights replaced them. A
    raised budget makes every result stale: its run resumes from its last checkpoint and trains on."""
    weights = _weights_sha(root / run)
    places = [(root / "results", False)]
    if spec.committed_results:
        places.append((Path(spec.committed_results), True))
    for folder, committed in places:
        try:
            saved = json.loads((folder / f"{cell or run}.json").read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if saved.get("eval_key") != _eval_key(spec, run_metric_options(spec, seed), sampler):
            continue
        if saved.get("budget") != spec.budget:
            continue
        if saved.get("weights_sha256") == weights or (committed and weights is None):
            return saved
    return None


def grid_file(spec: StudySpec, cell: str, kind: str, path: str) -> Path:
    """A result's grid where the run wrote it (inside the report folder), restored from its committed copy when a
    fresh checkout lacks it."""
    import shutil

    copy = Path(spec.committed_results or "") / f"{cell}-{kind}.png"
    if not Path(path).is_file() and spec.committed_results and copy.is_file():
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(copy, path)
    return Path(path)


def commit_copy(spec: StudySpec, run_dir: Path, name: str, result: dict) -> None:
    """Copy a finished result and its run's metrics.jsonl into committed_results (small files, to be committed)."""
    import shutil

    from genzoo.core.io import write_json

    if not spec.committed_results:
        return
    folder = Path(spec.committed_results)
    folder.mkdir(parents=True, exist_ok=True)
    for kind, grid in result["grids"].items():  # the grids too (a few tens of kB each): the report shows them
        if Path(grid).is_file():
            shutil.copyfile(grid, folder / f"{name}-{kind}.png")
    write_json(folder / f"{name}.json", result)
    log = Path(run_dir) / "metrics.jsonl"
    if log.is_file():
        shutil.copyfile(log, folder / f"{Path(run_dir).name}.metrics.jsonl")


def learning_curve(
    spec: StudySpec, root: Path, run: str, run_dir: Path, progress=None, compute: bool = True, data_root=None
) -> dict | None:
    """The run's learning curve (study key `curve`) over its kept checkpoints, computed once after its evaluation
    (also for a run evaluated before `curve` was set): results/<run>.curve.json and its committed copy, which stands
    on a fresh checkout (no weights) and is recomputed where other weights replaced the run's. `data_root` is the
    study's (its command line's data.root), not the one the run recorded, which may be relative to another folder."""
    from genzoo.core.io import write_json

    if not spec.curve:
        return None
    name, weights = f"{run}.curve.json", _weights_sha(run_dir)
    places = [(root / "results", False)] + ([(Path(spec.committed_results), True)] if spec.committed_results else [])
    for folder, committed in places:
        if (folder / name).is_file():
            saved = json.loads((folder / name).read_text())
            if saved.get("weights_sha256") == weights or (committed and weights is None):
                return saved
    if not compute or weights is None or not (run_dir / "checkpoints").is_dir():
        return None
    from genzoo.analysis.curves import checkpoint_curve

    if progress is not None:
        progress(f"{run}: learning curve")
    options = spec.curve.get("options") or {}
    rows = checkpoint_curve(run_dir, list(spec.curve["metrics"]), options, split=spec.split, data_root=data_root)
    saved = {"run": run, "weights_sha256": weights, "metrics": spec.curve["metrics"], "options": options}
    saved["curve"] = rows
    for folder, _ in places:
        write_json(folder / name, saved)
    return saved


def training_record(model, recipe, run_dir: Path) -> dict:
    """What the run was given: steps, images seen, optimiser steps (one per phase per batch) and every phase's
    optimiser settings as trained (recipe overrides applied)."""
    from genzoo.train.optim import phase_settings

    phases = {}
    for phase in model.phases():
        used = phase_settings(phase, (recipe.train.phases or {}).get(phase.name))
        phases[phase.name] = {"lr": used["lr"], "betas": list(used["betas"]), "weight_decay": used["weight_decay"]}
    step = (model.extra_config or {}).get("step")
    return {
        "steps": step,
        "batch_size": recipe.train.batch_size,
        "images_seen": None if step is None else step * recipe.train.batch_size,
        "optimizer_steps": None if step is None else step * len(phases),
        "phases": phases,
    }


def run_facts(model, recipe, run_dir: Path) -> dict:
    """What the zoo's table (analysis/zoo.py) reads beside the budget: the components' names, the epochs asked for,
    the CPU threads and processes the training ran with (its environment.json) and the trainable parameters."""
    try:
        env = json.loads((Path(run_dir) / "environment.json").read_text())
    except (OSError, json.JSONDecodeError):
        env = {}
    return {
        "model": recipe.model["name"],
        "data": recipe.data["name"],
        "prior": (recipe.prior or {}).get("name"),
        "epochs": recipe.train.epochs,
        "threads": env.get("threads"),
        "processes": env.get("processes"),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def genzoo_commit() -> str | None:
    """The git commit genzoo's code was at (HEAD of its checkout), recorded with each result; None outside git."""
    import subprocess

    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def run_one(spec_path, overrides: list[str], run: str, device: str = "cpu", console=None, progress=None) -> dict:
    """Train (or resume, or reuse) one run of the study, evaluate it under each of the study's samplers and write
    results/<cell>.json for each; returns the first cell's result (the others in its "cells")."""
    spec = load_study(spec_path)
    root = Path(spec.output_dir) / spec.name
    info = study_runs(spec, overrides)[run]
    todo = [
        c
        for c in cells(spec, run, info["label"])
        if finished_result(spec, root, run, info["seed"], c[0], c[2]) is None
    ]
    if not todo:
        saved = [finished_result(spec, root, run, info["seed"], c, s) for c, _, s in cells(spec, run, info["label"])]
        for result in saved:  # results from before committed_results was set get their copy too
            if spec.committed_results and not (Path(spec.committed_results) / f"{result['run']}.json").is_file():
                commit_copy(spec, root / run, result["run"], result)
        learning_curve(spec, root, run, root / run, progress, data_root=info["recipe"].data.get("root"))
        return {**saved[0], "cells": saved, "reused": True}
    from genzoo.train.trainer import Trainer

    started = time.time()
    if progress is not None:
        progress(f"{run}: training")
    run_dir = Trainer(info["recipe"], console=console).fit()
    trained = time.time()
    out = [_evaluate_cell(spec, root, run, info, run_dir, c, device, progress, trained - started) for c in todo]
    learning_curve(spec, root, run, run_dir, progress, data_root=info["recipe"].data.get("root"))
    return {**out[0], "cells": out, "reused": False}


def _evaluate_cell(spec, root, run, info, run_dir, cell, device, progress, training_seconds) -> dict:
    """Evaluate one (run, sampler) cell: fit the sampler on the run's training codes first (not for `prior`)."""
    from genzoo.analysis.compare import evaluate_source
    from genzoo.core.io import write_json
    from genzoo.modelfile.fitted import fit_sampler
    from genzoo.modelfile.hub import load

    name, arm, sampler = cell
    start = time.time()
    fit = None
    if sampler != "prior":
        if progress is not None:
            progress(f"{name}: fitting {sampler}")
        section = {"name": sampler, **spec.sampler_options.get(sampler, {})}
        data_root = info["recipe"].data.get("root")  # the study's, not the run's recorded one (maybe relative)
        _, fit = fit_sampler(run_dir, section, seed=info["seed"], overwrite=True, device=device, data_root=data_root)
    options = run_metric_options(spec, info["seed"])
    entry = evaluate_source(
        run_dir,
        name,
        spec.metrics,
        options,
        root / "report",
        split=spec.split,
        limit=spec.limit,
        data_root=info["recipe"].data.get("root"),
        device=device,
        samples=spec.samples,
        load=lambda source, device: load(source, device=device, sampler=sampler),
        progress=progress,
        grid_seed=info["seed"],
    )
    model = load(run_dir, device="cpu")
    result = {
        "run": name,
        "arm": arm,
        "seed": info["seed"],
        "sampler": sampler,
        "sampler_fit": fit,
        "source": str(run_dir),
        "results": entry.results,
        "grids": {k: str(v) for k, v in entry.grids.items()},
        "training": {**training_record(model, info["recipe"], run_dir), **run_facts(model, info["recipe"], run_dir)},
        "eval_key": _eval_key(spec, options, sampler),
        "budget": spec.budget,
        "weights_sha256": _weights_sha(run_dir),
        "genzoo_commit": genzoo_commit(),
        "seconds": {"training": round(training_seconds, 1), "evaluation": round(time.time() - start, 1)},
    }
    write_json(root / "results" / f"{name}.json", result)
    commit_copy(spec, run_dir, name, result)
    return result


def _worker(args) -> dict:
    spec_path, overrides, run, device, threads, log = args
    import os

    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch
    from rich.console import Console

    torch.set_num_threads(threads)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        return run_one(spec_path, overrides, run, device, console=Console(file=f, width=120))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        i, k = (int(x) for x in text.split("/"))
    except ValueError:
        i = k = 0
    if not (k >= 1 and 1 <= i <= k):
        raise GenzooError(f"--shard '{text}' is not i/k with 1 <= i <= k", "write e.g. --shard 1/2")
    return i, k


def _summary_line(result: dict) -> str:
    bits = []
    for key, name in (("fid", "fid"), ("precision_recall", "recall"), ("reconstruction", "mse")):
        value = (result["results"].get(key) or {}).get(name)
        if isinstance(value, (int, float)):
            bits.append(f"{name} {value:.4g}")
    return ", ".join(bits)


def run_study(
    path,
    overrides: list[str] | None = None,
    device: str = "cpu",
    console=None,
    progress=None,
    jobs: int = 1,
    shard: str | None = None,
    merge: bool = False,
) -> WrittenReport | PendingStudy:
    """Run (a shard of) the study's grid, each run evaluated as soon as it is trained, then write the report
    when every run has its result; returns the report (or what is pending, for a shard that leaves runs)."""
    spec = load_study(path)
    root = Path(spec.output_dir) / spec.name
    runs = study_runs(spec, overrides)
    names = list(runs)
    part = parse_shard(shard)
    todo = [] if merge else [r for i, r in enumerate(names) if part is None or i % part[1] == part[0] - 1]
    say = progress or (lambda text: None)
    done = 0

    def finished(result):
        nonlocal done
        done += 1
        how = (
            "reused"
            if result.get("reused")
            else f"trained {result['seconds']['training']:.0f} s, "
            + (f"evaluated {result['seconds']['evaluation']:.0f} s")
        )
        say(f"[{done}/{len(todo)}] {result['run']}: {how}; {_summary_line(result)}")

    if jobs <= 1 or len(todo) <= 1:
        for run in todo:
            finished(
                run_one(
                    path,
                    overrides or [],
                    run,
                    device,
                    console=console,
                    progress=None if progress is None else (lambda what: say(f"[{done + 1}/{len(todo)}] {what}")),
                )
            )
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        import torch

        threads = max(1, torch.get_num_threads() // jobs)
        say(f"{len(todo)} runs, {jobs} at a time ({threads} thread(s) each); logs in {root / 'logs'}")
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = [
                pool.submit(
                    _worker,
                    (str(path), list(overrides or []), run, device, threads, str(root / "logs" / f"{run}.log")),
                )
                for run in todo
            ]
            for future in as_completed(futures):
                finished(future.result())
    return write_study_report(spec, root, runs, strict=merge or part is None)


@dataclass
class PendingStudy:
    """A shard's end while some cells have no result yet: the report waits for them (`--merge`)."""

    pending: list[str]
    done: list[str]


def write_study_report(spec: StudySpec, root: Path, runs: dict, strict: bool = True) -> WrittenReport | PendingStudy:
    from genzoo.analysis.compare import training_log
    from genzoo.analysis.report import write_report
    from genzoo.analysis.report_tables import Entry

    results, missing = {}, []
    ordered = sorted(runs.items(), key=lambda item: (list(spec.models).index(item[1]["label"]), item[1]["seed"]))
    grid = [
        (cell, sampler, run, info) for run, info in ordered for cell, _, sampler in cells(spec, run, info["label"])
    ]
    for cell, sampler, run, info in sorted(grid, key=lambda g: spec.samplers.index(g[1])):  # arm-major in the report
        saved = finished_result(spec, root, run, info["seed"], cell, sampler)
        if saved is None:
            missing.append(cell)
        else:
            results[cell] = saved
    if missing:
        if strict:
            raise GenzooError(
                f"study '{spec.name}' has no current result for {', '.join(missing)}",
                "run the missing shards (or the study without --merge) first",
            )
        return PendingStudy(pending=missing, done=list(results))

    def log_of(r):  # the run's own, else the committed copy (a fresh checkout has no runs)
        copy = Path(spec.committed_results or "") / f"{Path(r['source']).name}.metrics.jsonl"
        return training_log(r["source"]) or (training_log(copy) if spec.committed_results else [])

    entries = [
        Entry(
            label=run,
            results=r["results"],
            source=r["source"],
            log=log_of(r),
            grids={k: grid_file(spec, run, k, v) for k, v in r["grids"].items()},
        )
        for run, r in results.items()
    ]
    groups = {run: r["arm"] for run, r in results.items()}
    budget = budget_text(spec, results)
    curves = {run: learning_curve(spec, root, run, root / run, compute=False) for run in runs}
    curves = {run: c["curve"] for run, c in curves.items() if c}
    more = ([], [])
    if curves:
        from genzoo.analysis.curves import curve_section

        section, plots = curve_section(curves, groups, root / "report", list(spec.curve["metrics"]))
        more = ([section], plots)
    return write_report(
        entries,
        root / "report",
        title=f"study {spec.name}",
        groups=groups,
        notes=budget,
        extra={
            "budget": spec.budget,
            "budget_text": budget,
            "budget_short": ", ".join(f"{k} {v}" for k, v in spec.budget.items()) or None,
            "factors": cell_factors(spec),
            "training": {run: r["training"] for run, r in results.items()},
            "seeds": spec.seeds,
            **({"learning_curves": curves} if curves else {}),
        },
        more=more,
    )


def budget_text(spec: StudySpec, results: dict) -> str:
    """One line on what each arm was given (steps, images seen, optimiser steps) and with which optimisers."""
    arms = {}
    for r in results.values():
        arms.setdefault(r["arm"], r["training"])
    named = ", ".join(f"{k} {v}" for k, v in spec.budget.items()) if spec.budget else "the recipes' own schedule"
    parts = []
    for arm, t in arms.items():
        factor = cell_factors(spec).get(arm) or {}
        what = f" ({', '.join(f'{k} {v}' for k, v in factor.items())})" if factor else ""
        opt = "; ".join(
            f"{p} lr {o['lr']:g} betas ({o['betas'][0]:g}, {o['betas'][1]:g})" for p, o in t["phases"].items()
        )
        parts.append(
            f"{arm}{what}: {t['steps']} steps of {t['batch_size']}, {t['images_seen']} images, "
            f"{t['optimizer_steps']} optimiser steps [{opt}]"
        )
    return f"Budget: {named}. " + "; ".join(parts) + "."
