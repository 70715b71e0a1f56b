"""StyleALAE training images/s per resolution level, through genzoo's trainer with progressive growing.

    python bench/style_alae_speed.py --recipe recipes/style_alae_celeba64.yaml \
        --data-root path/to/celeba-10k --steps-per-level 30 --batch 16 [--override model.max_filters=128 ...]

Runs the recipe's networks and growth levels with one batch size for every level and a fixed number of steps per level
(`--steps-per-level`, the first `--warmup` of them untimed; half of each level blends its new block in, as in
training), and reads images/s per level from metrics.jsonl (everything the trainer does: data, three phases,
EMA). Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", type=Path, default=ROOT / "recipes" / "style_alae_celeba64.yaml")
    parser.add_argument("--data-root", default=str(ROOT.parent / "shared" / "data" / "celeba-10k"))
    parser.add_argument("--steps-per-level", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16, help="global batch at every level")
    parser.add_argument("--override", action="append", default=[], help="extra recipe overrides (key=value)")
    args = parser.parse_args()

    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        probe = load_recipe(args.recipe, [f"data.root={args.data_root}", *args.override])
        top = probe.data.get("resolution") or probe.data.get("size")
        levels = [
            probe.train.growth.start_resolution << i
            for i in range((top // probe.train.growth.start_resolution).bit_length())
        ]
        # one batch size for every level (--batch), so each level runs exactly --steps-per-level steps
        recipe = load_recipe(
            args.recipe,
            [
                f"data.root={args.data_root}",
                f"output_dir={tmp}",
                f"name=speed-{time.time_ns()}",
                "train.epochs=null",
                f"train.steps={args.steps_per_level * len(levels)}",
                "train.log_every=1",
                "train.eval=null",
                "train.sample_every=1000000",
                "train.checkpoint_every=1000000",
                f"train.batch_size={args.batch}",
                "train.growth.batch_size={}",
                "train.growth.batch_size_by_processes={}",
                "train.growth.epochs_per_level=null",
                f"train.growth.images_per_level={args.steps_per_level * args.batch}",
                *args.override,
            ],
        )
        start = time.perf_counter()
        run = Trainer(recipe).fit()
        total = time.perf_counter() - start
        log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    median = lambda values: f"{statistics.median(values):.1f}" if values else "-"  # noqa: E731
    print("| resolution | batch | img/s (median of steps) | while blending | blended in |")
    print("|---|---|---|---|---|")
    for i, res in enumerate(levels):
        timed = [r for r in log if r.get("resolution") == res and r["step"] > i * args.steps_per_level + args.warmup]
        print(
            f"| {res}x{res} | {args.batch} | {median([r['images_per_s'] for r in timed])} "
            f"| {median([r['images_per_s'] for r in timed if r['blend'] < 1.0])} "
            f"| {median([r['images_per_s'] for r in timed if r['blend'] == 1.0])} |"
        )
    print(
        f"\n{args.steps_per_level} steps per level ({args.warmup} untimed), {total:.0f} s in all; "
        f"overrides {args.override}; torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )


if __name__ == "__main__":
    main()
