"""FID evaluation throughput: genzoo's in-memory path vs clean-fid's folder path, same Inception weights.

Both compute Inception features of the same N MNIST test images (28x28 grey, clean mode): genzoo from the uint8
tensor, clean-fid from a folder of the same images as PNGs (`get_folder_features`, num_workers=0, batch 64: what
`compute_fid(fdir1, fdir2, custom_feat_extractor=...)` does per folder). Then the Frechet distance of the two
halves: genzoo's exact SVD/eigen route vs clean-fid's `fid_from_feats` (scipy sqrtm). Alternating rounds, medians.

    python bench/eval_fid.py --mnist path/to/mnist --count 1000 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mnist", required=True, help="a local MNIST folder, as genzoo's mnist dataset reads it")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    from genzoo.core.grids import save_images
    from genzoo.core.registry import DATASETS, build
    from genzoo.metrics.fid import extractor, fid_from_features
    from tests.helpers.cleanfid_ref import cleanfid_fid  # clean-fid's own code (torchvision stand-in where it fails)

    cf = cleanfid_fid()
    data, _ = build(DATASETS, {"name": "mnist", "root": args.mnist, "download": False}, "data", split="test")
    images = data.images[: args.count]
    fx = extractor("clean", None, "cpu", args.batch_size)
    theirs_fx = lambda x: fx.layers((x - 128) / 128).reshape(x.shape[0], 2048)  # noqa: E731  (InceptionV3W, clean)
    print(
        f"{args.count} MNIST test images, Inception {fx.source} (layers sha256 {fx.layers_sha256[:12]}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "png"
        save_images(images.float() / 255, folder)
        ours_t, theirs_t = [], []
        for r in range(args.rounds):
            t = time.perf_counter()
            ours = fx(images)
            ours_t.append(time.perf_counter() - t)
            t = time.perf_counter()
            theirs = cf.get_folder_features(
                str(folder),
                theirs_fx,
                num_workers=0,
                batch_size=args.batch_size,
                device=torch.device("cpu"),
                mode="clean",
                verbose=False,
            )
            theirs_t.append(time.perf_counter() - t)
            print(
                f"round {r}: genzoo {args.count / ours_t[-1]:.2f} img/s, "
                f"clean-fid folder {args.count / theirs_t[-1]:.2f} img/s"
            )
        rel = np.abs(ours - theirs).max() / np.abs(theirs).max()
        print(f"max |feature difference| {np.abs(ours - theirs).max():.2e} ({rel:.1e} of the largest feature)")
        half = args.count // 2
        t = time.perf_counter()
        a = fid_from_features(ours[:half], ours[half:])
        exact_t = time.perf_counter() - t
        t = time.perf_counter()
        b = cf.fid_from_feats(ours[half:], ours[:half])
        sqrtm_t = time.perf_counter() - t
    o, c = statistics.median(ours_t), statistics.median(theirs_t)
    print(f"features: genzoo {args.count / o:.2f} img/s, clean-fid {args.count / c:.2f} img/s, ratio {c / o:.3f}")
    # Inception v3 at 299x299 is about 5.7 G multiply-adds (11.5 GFLOP) per image
    print(
        f"achieved: genzoo {11.5 * args.count / o:.0f} GFLOP/s, clean-fid {11.5 * args.count / c:.0f} GFLOP/s; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"Frechet distance of {half} vs {args.count - half}: genzoo {a:.6f} in {exact_t:.3f} s, "
        f"clean-fid {b:.6f} in {sqrtm_t:.1f} s, difference {abs(a - b):.2e}"
    )


if __name__ == "__main__":
    main()
