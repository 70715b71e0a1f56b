"""`genzoo ...` as a real subprocess, and the environment that keeps one on one CPU thread."""

from __future__ import annotations

import os
import subprocess
import sys

# One thread per CLI subprocess, as tests/conftest.py gives every in-process test (it says why).
ONE_THREAD = {"OMP_NUM_THREADS": "1"}


def run_cli(*args, cwd=None, env=None, timeout=None, check=True):
    """Run `genzoo ...` as a real subprocess; returns CompletedProcess. No wall-clock limit of its own (a loaded
    machine is slow, not wrong): pytest-timeout's per-test limit catches a hang."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.run(
        [sys.executable, "-m", "genzoo", *map(str, args)],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"genzoo {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def launch_command(recipe, processes, *overrides) -> list[str]:
    """`genzoo train RECIPE OVERRIDES` under `accelerate launch` with `processes` processes on this machine."""
    # accelerate 1.x: `--cpu` always starts one process; `--multi_gpu` starts N, and genzoo picks gloo on a
    # machine without GPUs.
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "genzoo",
        "train",
        str(recipe),
        *overrides,
    ]


def launch(recipe, processes, env, *overrides):
    """launch_command run to its end (gloo on CPUs); asserts it succeeds and returns the CompletedProcess."""
    proc = subprocess.run(
        launch_command(recipe, processes, *overrides), capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc
