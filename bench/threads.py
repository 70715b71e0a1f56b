"""Training speed by CPU thread count, on the machine as it is and next to a competing CPU-bound process.

    python bench/threads.py [--steps 150 --rounds 3]

Trains the quickstart network (MLP AAE on the bundled digits) for --steps steps with 1 thread, with one thread
per core and with the automatic choice (train.threads unset), in interleaved rounds, each alone and then next to a
busy process that keeps one core working (a single-threaded matrix-multiply loop, like another user's job). From
the second round on, the runs "alone" start seconds after the busy process ended, while the 1-minute load average
still counts it. Prints img/s medians, the automatic choice per run and the load average. This is what genzoo's
automatic `train.threads` choice rests on (genzoo/train/environment.py, choose_threads).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BUSY = "import torch\ntorch.set_num_threads(1)\na = torch.randn(256, 256)\nwhile True:\n    a = (a @ a).tanh()\n"


def run(threads: int | None, steps: int, folder: Path) -> tuple[float, int]:
    """(img/s, threads used) of one training run (a fresh process, so thread pools start clean); threads None:
    the automatic choice."""
    recipe = folder / f"r{threads}.yaml"
    recipe.write_text((ROOT / "recipes" / "quickstart.yaml").read_text())
    out = folder / f"runs-{threads}-{time.monotonic_ns()}"
    args = [
        "name=quickstart",
        f"output_dir={out}",
        f"train.steps={steps}",
        f"train.log_every={steps}",
    ]
    args += [] if threads is None else [f"train.threads={threads}"]
    args += [f"train.sample_every={steps}", f"train.checkpoint_every={steps}"]
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    subprocess.run(
        [sys.executable, "-m", "genzoo", "train", str(recipe), *args], check=True, env=env, capture_output=True
    )
    log = [json.loads(line) for line in (out / "quickstart" / "metrics.jsonl").read_text().splitlines()]
    used = json.loads((out / "quickstart" / "environment.json").read_text())["threads"]
    return log[-1]["images_per_s"], used


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    counts = [*sorted({1, cores}), None]
    results = {(c, busy): [] for c in counts for busy in (False, True)}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for busy in (False, True):
                burner = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
                try:
                    time.sleep(1.0 if busy else 0.0)
                    for c in counts if r % 2 == 0 else reversed(counts):  # interleaved, order alternating
                        results[(c, busy)].append(run(c, args.steps, Path(tmp)))
                finally:
                    if burner is not None:
                        burner.kill()
                        burner.wait()
    print(
        f"quickstart training, {args.steps} steps, {args.rounds} rounds, {cores} cores, "
        f"load average {os.getloadavg()[0]:.2f} at the end"
    )
    print("| threads | alone (img/s, median) | next to a busy process (img/s, median) | rounds: alone/busy (used) |")
    print("|---|---|---|---|")
    for c in counts:
        alone, busy = results[(c, False)], results[(c, True)]
        rounds = ", ".join(f"{a:,.0f}/{b:,.0f} ({ta}/{tb})" for (a, ta), (b, tb) in zip(alone, busy))
        print(
            f"| {'auto' if c is None else c} | {statistics.median(a for a, _ in alone):,.0f} | "
            f"{statistics.median(b for b, _ in busy):,.0f} | {rounds} |"
        )


if __name__ == "__main__":
    main()
