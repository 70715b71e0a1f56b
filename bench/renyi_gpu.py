"""Spectral kernels of genzoo.renyi on an accelerator: eigh in float64 and float32 against a matmul-only
(Newton-Schulz) square root, and the estimators' precision policy end to end.

    python bench/renyi_gpu.py [--device cuda --sizes 256,512,1024,2048,4096 --iters 20 --repeats 5]

For each n: the normalised Gaussian Gram matrix A (trace 1, median bandwidth) of n points in d = 64;
  * eigh64, eigh32: torch.linalg.eigh of A in float64 / float32 (values and vectors);
  * ns32, ns64: the coupled Newton-Schulz iteration for A^(1/2) (Y <- Y T, Z <- T Z, T = (3I - Z Y)/2, on
    A / ||A||_F), `--iters` iterations, matmuls only; its error is the relative Frobenius distance to the
    float64 eigh square root (slow convergence on the small eigenvalues is what limits it);
  * pooled forward + backward at alpha = 0.5 with precision float64 / float32 (n points each side).
Times are medians of --repeats runs after a warm-up, synchronised.  Writes bench/results/renyi_gpu.md.
No GPU run is recorded yet; on a CPU the script runs as a check of itself (`--device cpu --sizes 64,128`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from genzoo import renyi as R

ROOT = Path(__file__).resolve().parents[1]


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device, repeats):
    fn()
    sync(device)
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        sync(device)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), out


def newton_schulz_sqrt(a, iters):
    """A^(1/2) of a symmetric PSD matrix by the coupled Newton-Schulz iteration (matmuls only)."""
    norm = torch.linalg.matrix_norm(a)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    y, z = a / norm, eye.clone()
    for _ in range(iters):
        t = 0.5 * (3.0 * eye - z @ y)
        y, z = y @ t, t @ z
    return y * norm.sqrt()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--sizes", default="256,512,1024,2048,4096")
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "renyi_gpu.md"))
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "CPU"
    lines = [
        "# Spectral kernels on an accelerator (bench/renyi_gpu.py)",
        "",
        f"Device: {name}, torch {torch.__version__}, TF32 matmul allowed: {torch.backends.cuda.matmul.allow_tf32}.",
        "",
        "| n | eigh64 ms | eigh32 ms | ns64 ms | ns32 ms | ns32 error | ns64 error | pooled f64 ms | pooled f32 ms "
        "| pooled f32 - f64 |",
        "|" + "---|" * 10,
    ]
    for n in [int(v) for v in args.sizes.split(",")]:
        g = torch.Generator().manual_seed(n)
        x = torch.randn(n, 64, generator=g).to(dev)
        y = (torch.randn(n, 64, generator=g) + 0.5).to(dev)
        a64 = R.normalized_gram(x.double(), sigma="median")
        a32 = a64.float()
        t64, (lam, v) = timed(lambda: torch.linalg.eigh(a64), dev, args.repeats)
        t32, _ = timed(lambda: torch.linalg.eigh(a32), dev, args.repeats)
        root = (v * lam.clamp_min(0).sqrt()) @ v.mT
        tn64, r64 = timed(lambda: newton_schulz_sqrt(a64, args.iters), dev, args.repeats)
        tn32, r32 = timed(lambda: newton_schulz_sqrt(a32, args.iters), dev, args.repeats)
        e32 = float(torch.linalg.matrix_norm(r32.double() - root) / torch.linalg.matrix_norm(root))
        e64 = float(torch.linalg.matrix_norm(r64 - root) / torch.linalg.matrix_norm(root))
        vals = {}

        def pooled(p):
            def run():
                xx = x.clone().requires_grad_()
                v = R.pooled_divergence(xx, y, 0.5, "gaussian", "median", precision=p)
                v.backward()
                return float(v.detach())

            return run

        tp64, vals["64"] = timed(pooled("float64"), dev, args.repeats)
        tp32, vals["32"] = timed(pooled("float32"), dev, args.repeats)
        row = [n, t64 * 1e3, t32 * 1e3, tn64 * 1e3, tn32 * 1e3]
        lines.append(
            "| "
            + " | ".join([str(row[0])] + [f"{v:.1f}" for v in row[1:]])
            + f" | {e32:.1e} | {e64:.1e} | {tp64 * 1e3:.1f} | {tp32 * 1e3:.1f} | {vals['32'] - vals['64']:.1e} |"
        )
        print(lines[-1], flush=True)
    Path(args.out).write_text("\n".join(lines + [""]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
