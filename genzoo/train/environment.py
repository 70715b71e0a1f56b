"""What a run takes from its surroundings: CPU threads (and why that many), the trackers Accelerate knows, and
what the run folder says it was started with, so that a resume computes exactly as before."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from genzoo.core.errors import GenzooError

RUN_QUEUE = Path("/proc/loadavg")  # its 4th field: runnable tasks now / all tasks


def saved_train_key(run_dir: Path, key: str):
    """A train key of the recipe a run folder holds (None when there is none): what the run was started with."""
    import yaml

    try:
        return ((yaml.safe_load((run_dir / "recipe.yaml").read_text()) or {}).get("train") or {}).get(key)
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def started_with(run_dir: Path) -> int | None:
    """The thread count a run started with (environment.json), so that a resume computes exactly as before."""
    try:
        return int(json.loads((run_dir / "environment.json").read_text())["threads"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def choose_threads(requested: int | None, device, processes: int, previous: int | None = None) -> tuple[int, str]:
    """(CPU threads for this process, where the number came from). On a shared machine torch's default (one thread
    per core) collapses: OpenMP threads spin waiting for cores that other work holds (bench/threads.py measures it).
    So, unless train.threads or OMP_NUM_THREADS says otherwise, each process takes its share of the cores that other
    work leaves free now (busy_cores), and at least one. A resumed run keeps the count it started with: the thread
    count changes the order of float sums, and with it the bits of the weights."""
    if requested is not None:
        return requested, "train.threads"
    if os.environ.get("OMP_NUM_THREADS"):
        return torch.get_num_threads(), "OMP_NUM_THREADS"
    if previous is not None:
        return previous, "as when this run started; set train.threads to change it"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    local = int(os.environ.get("LOCAL_WORLD_SIZE", processes if device.type == "cpu" else 1))
    share = max(1, cores // max(local, 1))
    if device.type != "cpu":  # the GPU does the work; the threads feed it
        return share, f"{cores} cores / {local} local processes"
    busy, what = busy_cores(local)
    free = max(1, min(share, int((cores - busy) / max(local, 1) + 0.5)))
    return free, f"{cores} cores, {what} {busy:.1f}; set train.threads to choose"


def busy_cores(local: int = 1, reads: int = 5) -> tuple[float, str]:
    """(cores other work is using now, what measured it). Linux: the runnable tasks /proc/loadavg counts, less this
    launch's own `local` processes, median of `reads` reads 20 ms apart. The 1-minute load average elsewhere: it
    lags a minute, so right after a job ends it still counts it (0.7 after an install) and an idle 2-core machine
    trained on one thread (BENCHMARKS.md, threads)."""
    import statistics
    import time

    try:
        running = []
        for i in range(reads):
            running.append(int(RUN_QUEUE.read_text().split()[3].split("/")[0]))
            if i < reads - 1:
                time.sleep(0.02)
        return float(max(0.0, statistics.median(running) - local)), "other runnable tasks"
    except (OSError, ValueError, IndexError):
        return (os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0), "load"


def check_trackers(names: list[str]) -> None:
    from accelerate.utils import LoggerType

    known = sorted(t.value for t in LoggerType if t.value != "all")
    for name in names:
        if name not in known:
            from genzoo.core.errors import did_you_mean

            raise GenzooError(
                f"recipe key 'train.log_with' names '{name}', not a tracker Accelerate knows"
                + did_you_mean(name, known),
                f"use any of: {', '.join(known)}",
            )


def accelerator(spec, run_dir: Path):
    """The run's Accelerator: the recipe's mixed precision, trackers and `cpu`. Several processes without a GPU
    (accelerate launch --multi_gpu / torchrun on CPUs) train on the CPU with gloo."""
    from accelerate import Accelerator

    cpu_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:  # a second Trainer in this process (studies, Python) starts
        from accelerate.state import AcceleratorState  # from its own settings, not the first one's

        AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(
        mixed_precision=spec.mixed_precision,  # None: Accelerate's own (config file, launch flag, environment)
        log_with=spec.log_with or None,
        project_dir=str(run_dir),
        cpu=spec.cpu or cpu_processes,
    )


def describe(acc, threads: int, threads_from: str) -> dict:
    """What a run resolved from its surroundings: saved as environment.json and printed at the start."""
    from genzoo.core.version import __version__

    return {
        "genzoo": __version__,
        "torch": torch.__version__,
        "device": str(acc.device),
        "processes": acc.num_processes,
        "threads": threads,
        "threads_from": threads_from,
        "mixed_precision": str(acc.mixed_precision),
    }


def start_trackers(acc, recipe) -> None:
    """The recipe's trackers (train.log_with), given every recipe key as a hyperparameter, typed: trackers plot
    numbers as numbers."""
    from genzoo.core.recipe import flat_items

    config = flat_items(recipe.to_dict())
    acc.init_trackers(
        recipe.name, config={k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in config.items()}
    )
