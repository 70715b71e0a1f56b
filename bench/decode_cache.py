"""Image datasets: decoding JPEGs (one process vs genzoo's pool) against loading the decoded-image cache.

    python bench/decode_cache.py [--cifar path/to/cifar10-jpeg --celeba path/to/celeba-10k]

Each figure is the wall time of building the train split as genzoo does (archive read + decode + split), medians of
--repeat runs; the cache lives in a temporary folder so nothing outside is touched. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=ROOT.parent / "shared" / "data" / "cifar10-jpeg")
    parser.add_argument("--celeba", type=Path, default=ROOT.parent / "shared" / "data" / "celeba-10k")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()

    from genzoo.core.registry import DATASETS
    from genzoo.datasets import images as module

    cases = [
        ("CIFAR-10 JPEG tarball, 60k images 32x32", "cifar10", dict(root=str(args.cifar), download=False)),
        ("CelebA 10k tarball, 89x109 -> 64x64", "celeba", dict(root=str(args.celeba), size=64)),
    ]
    print(f"| data set | decode, 1 process | decode, pool of {min(8, os.cpu_count())} | cached | cached vs pool |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["GENZOO_CACHE"] = tmp
        original = module.decode_images
        for label, name, options in cases:
            build = DATASETS.get(name)
            module.decode_images = lambda *a, **k: original(*a, **{**k, "workers": 1})
            one = timed(lambda: build("train", cache=False, **options), args.repeat)
            module.decode_images = original
            pool = timed(lambda: build("train", cache=False, **options), args.repeat)
            build("train", **options)  # writes the cache
            cached = timed(lambda: build("train", **options), max(3, args.repeat))
            print(f"| {label} | {one:.2f} s | {pool:.2f} s | {cached:.3f} s | {pool / cached:.0f}x |")


if __name__ == "__main__":
    main()
