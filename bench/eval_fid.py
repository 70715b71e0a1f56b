"""FID evaluation throughput: genzoo's in-memory path vs clean-fid's folder path, same Inception weights.

Both compute Inception features of the same N MNIST test images (28x28 grey, clean mode): genzoo from the uint8
tensor, clean-fid from a folder of the same images as PNGs (`get_folder_features`, num_workers=0, batch 64: what
`compute_fid(fdir1, fdir2, custom_feat_extractor=...)` does per folder). Then the Frechet distance of the two
halves: genzoo's exact SVD/eigen route vs clean-fid's `fid_from_feats` (scipy sqrtm). Alternating rounds, medians.

    python bench/eval_fid.py --mnist path/to/mnist --count 1000 --rounds 1 [--compiled]

--compiled adds genzoo's compiled CPU layers (genzoo/metrics/inception_compiled.py, which genzoo uses for calls of
2,000 images or more) to each round, beside its frozen layers; the compile itself is timed apart.
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
    parser.add_argument("--compiled", action="store_true", help="also genzoo's compiled CPU layers")
    args = parser.parse_args()

    from genzoo.core.grids import save_images
    from genzoo.core.registry import DATASETS, build
    from genzoo.metrics.fid import extractor, fid_from_features
    from tests.helpers.cleanfid_ref import cleanfid_fid  # clean-fid's own code (torchvision stand-in where it fails)

    cf = cleanfid_fid()
    data, _ = build(DATASETS, {"name": "mnist", "root": args.mnist, "download": False}, "data", split="test")
    images = data.images[: args.count]
    import genzoo.metrics.inception as inception

    fx = extractor("clean", None, "cpu", args.batch_size)
    inception.COMPILE_MIN_IMAGES = 10**12  # each variant's layers are set below, whatever --count
    variants = {"genzoo": fx.cpu_layers}
    if args.compiled:
        from genzoo.metrics.inception_compiled import CompiledLayers

        t = time.perf_counter()
        variants["genzoo compiled"] = compiled = CompiledLayers(fx.cpu_layers, inception.CPU_CHUNK)
        with torch.inference_mode():  # as InceptionFeatures.forward calls it (a grad mode change recompiles)
            compiled(inception._channels_last(torch.zeros(inception.CPU_CHUNK, 3, 299, 299)))
        print(f"compile: {time.perf_counter() - t:.1f} s")
    theirs_fx = lambda x: fx.layers((x - 128) / 128).reshape(x.shape[0], 2048)  # noqa: E731  (InceptionV3W, clean)
    print(
        f"{args.count} MNIST test images, Inception {fx.source} (layers sha256 {fx.layers_sha256[:12]}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "png"
        save_images(images.float() / 255, folder)
        theirs_t, times, features = [], {name: [] for name in variants}, {}
        for r in range(args.rounds):
            for name, layers in variants.items():
                fx.cpu_layers = layers
                t = time.perf_counter()
                features[name] = fx(images)
                times[name].append(time.perf_counter() - t)
            ours = features["genzoo"]
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
                f"round {r}: "
                + ", ".join(f"{name} {args.count / v[-1]:.2f} img/s" for name, v in times.items())
                + f", clean-fid folder {args.count / theirs_t[-1]:.2f} img/s"
            )
        for name, feats in features.items():
            diff = np.abs(feats - theirs).max()
            print(f"{name}: max |feature difference| {diff:.2e} ({diff / np.abs(theirs).max():.1e} of the largest)")
        half = args.count // 2
        t = time.perf_counter()
        a = fid_from_features(ours[:half], ours[half:])
        exact_t = time.perf_counter() - t
        t = time.perf_counter()
        b = cf.fid_from_feats(ours[half:], ours[:half])
        sqrtm_t = time.perf_counter() - t
    c = statistics.median(theirs_t)
    for name, v in times.items():
        o = statistics.median(v)
        # Inception v3 at 299x299 is about 5.7 G multiply-adds (11.5 GFLOP) per image
        print(
            f"features: {name} {args.count / o:.2f} img/s ({11.5 * args.count / o:.0f} GFLOP/s), clean-fid "
            f"{args.count / c:.2f} img/s ({11.5 * args.count / c:.0f} GFLOP/s), ratio {c / o:.3f}"
        )
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(
        f"Frechet distance of {half} vs {args.count - half}: genzoo {a:.6f} in {exact_t:.3f} s, "
        f"clean-fid {b:.6f} in {sqrtm_t:.1f} s, difference {abs(a - b):.2e}"
    )


if __name__ == "__main__":
    main()
