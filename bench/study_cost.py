"""Where a study's time goes: core-seconds of training, sampling, Inception and the rest of the evaluation.

Runs one seed of each arm of a study spec (its budget, overrides, metrics and samplers as written) in a scratch
folder, with timers around the trainer (`Trainer.fit`), the image generation of sample-based metrics
(`metrics.fid.model_images`, `metrics.parzen.generate_flat`) and Inception (`InceptionFeatures.__call__`, the
clean-fid resize included). CPU seconds (`time.process_time`: every thread of the process) are core-seconds;
"rest" is the evaluation's CPU time outside sampling and Inception (the reconstruction metric, Frechet distances,
bootstraps, k-NN statistics, grids). One JSON line per run in --out, and a Markdown table beside it.

    OMP_NUM_THREADS=1 python bench/study_cost.py recipes/studies/mbrce_vs_baselines_mnist_cpu.yaml \\
        data.root=path/to/mnist --out bench/results/study_cost.jsonl
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import tempfile
import time
from pathlib import Path

import yaml

TIMERS = ("training", "sampling", "inception")


class Clock:
    """CPU and wall seconds per category, over the calls of the functions it wraps (outermost call only)."""

    def __init__(self):
        self.cpu = dict.fromkeys(TIMERS, 0.0)
        self.wall = dict.fromkeys(TIMERS, 0.0)
        self.images = 0
        self._depth = 0

    def wrap(self, owner, name: str, category: str, count_images: bool = False):
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if self._depth:
                return original(*args, **kwargs)
            self._depth += 1
            cpu, wall = time.process_time(), time.perf_counter()
            try:
                out = original(*args, **kwargs)
            finally:
                self._depth -= 1
                self.cpu[category] += time.process_time() - cpu
                self.wall[category] += time.perf_counter() - wall
            if count_images:
                self.images += len(args[-1])
            return out

        setattr(owner, name, timed)
        return original


@contextlib.contextmanager
def timed_study(clock: Clock):
    from genzoo.metrics import fid, inception, parzen
    from genzoo.train.trainer import Trainer

    patched = [
        (Trainer, "fit", clock.wrap(Trainer, "fit", "training")),
        (fid, "model_images", clock.wrap(fid, "model_images", "sampling")),
        (parzen, "generate_flat", clock.wrap(parzen, "generate_flat", "sampling")),
        (
            inception.InceptionFeatures,
            "__call__",
            clock.wrap(inception.InceptionFeatures, "__call__", "inception", count_images=True),
        ),
    ]
    try:
        yield
    finally:
        for owner, name, original in patched:
            setattr(owner, name, original)


def scratch_spec(path: Path, folder: Path) -> Path:
    """The spec with one seed, its recipes by absolute path, no committed results, output in `folder`."""
    raw = yaml.safe_load(path.read_text())
    base = path.resolve().parent
    models = {}
    for label, entry in raw["models"].items():
        entry = {"recipe": entry} if isinstance(entry, str) else dict(entry)
        entry["recipe"] = str((base / entry["recipe"]).resolve())
        models[label] = entry
    raw.update(models=models, seeds=raw["seeds"][:1], output_dir=str(folder), committed_results=None)
    out = folder / path.name
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("spec")
    parser.add_argument("overrides", nargs="*", help="dotted recipe overrides for every run, e.g. data.root=...")
    parser.add_argument("--arms", default=None, help="comma-separated arm labels (default: all)")
    parser.add_argument("--out", default="bench/results/study_cost.jsonl")
    parser.add_argument("--label", default="", help="a name for this code version in the output rows")
    args = parser.parse_args()

    import torch

    from genzoo.analysis.study import load_study, run_one, study_runs

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        spec_path = scratch_spec(Path(args.spec), Path(tmp))
        runs = study_runs(load_study(spec_path), args.overrides)
        arms = set(args.arms.split(",")) if args.arms else None
        for run, info in runs.items():
            if arms and info["label"] not in arms:
                continue
            clock = Clock()
            cpu, wall = time.process_time(), time.perf_counter()
            with timed_study(clock):
                result = run_one(spec_path, args.overrides, run)
            total_cpu, total_wall = time.process_time() - cpu, time.perf_counter() - wall
            evaluation = total_cpu - clock.cpu["training"]
            row = {
                "label": args.label,
                "spec": args.spec,
                "run": run,
                "threads": torch.get_num_threads(),
                "load_average": round(os.getloadavg()[0], 2),
                "core_s": {
                    "training": round(clock.cpu["training"], 1),
                    "sampling": round(clock.cpu["sampling"], 1),
                    "inception": round(clock.cpu["inception"], 1),
                    "rest": round(evaluation - clock.cpu["sampling"] - clock.cpu["inception"], 1),
                    "total": round(total_cpu, 1),
                },
                "wall_s": round(total_wall, 1),
                "inception_images": clock.images,
                "inception_images_per_core_s": round(clock.images / max(clock.cpu["inception"], 1e-9), 2),
                "train_images_per_core_s": round(
                    result["training"]["images_seen"] / max(clock.cpu["training"], 1e-9), 1
                ),
            }
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    table(out)


def table(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    lines = [
        f"Core-seconds per run (CPU time of the process). Rows from `{path.name}`.",
        "",
        "| version | run | training | sampling | Inception | rest | total | Inception img/core-s | train img/core-s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        c = r["core_s"]
        cells = [r["label"], r["run"], c["training"], c["sampling"], c["inception"], c["rest"], c["total"]]
        cells += [r["inception_images_per_core_s"], r["train_images_per_core_s"]]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
