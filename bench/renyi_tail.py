"""Why a rank-m approximation of the matrix-based Renyi divergence cannot be faithful at alpha < 1.

    OMP_NUM_THREADS=1 python bench/renyi_tail.py [--n 2000 --landmarks 250,500,1000 --alphas 0.5,0.9]

For the samples of bench/renyi_large.py (n points, d = 64 and 512, "mixture" and "gaussian"; Gaussian kernel,
median bandwidth of the pooled sample), the share of the trace tr(A) and of tr(A^alpha) held by the top m
eigenvalues of A = K_XX / n. Nystrom, random features and coresets of m points keep at most a rank-m operator:
the rest of tr(A^alpha) is what they cannot see. Writes bench/results/renyi_tail.md.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from renyi_large import sample  # noqa: E402

from genzoo import renyi as R  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--landmarks", default="250,500,1000")
    ap.add_argument("--alphas", default="0.5,0.9")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "renyi_tail.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    ms = [int(v) for v in args.landmarks.split(",")]
    alphas = [float(v) for v in args.alphas.split(",")]
    rows = []
    for kind in ("mixture", "gaussian"):
        for d in (64, 512):
            x, y = sample(kind, args.n, d, 1), sample(kind, args.n, d, 2, shift=0.3)
            s = R.median_bandwidth(x, y)
            lam = torch.linalg.eigvalsh(R.gram_matrix(x, None, "gaussian", s) / args.n).flip(0).clamp_min(0)
            cells = [f"{float(lam[:m].sum()):.3f}" for m in ms]
            for a in alphas:
                p = lam.pow(a)
                cells += [f"{float(p[:m].sum() / p.sum()):.3f}" for m in ms]
            rows.append(f"| {kind} | {d} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    head = [f"tr(A), top {m}" for m in ms] + [f"tr(A^{a}), top {m}" for a in alphas for m in ms]
    text = [
        "# The spectrum's tail: share of tr(A) and tr(A^alpha) in the top m eigenvalues",
        "",
        f"Command: `OMP_NUM_THREADS=1 python bench/renyi_tail.py {shlex.join(argv or sys.argv[1:])}`".replace(
            " `", "`"
        ),
        f"n = {args.n} points of the bench/renyi_large.py samples, A = K_XX / n (Gaussian kernel, pooled median"
        f" bandwidth); load average {os.getloadavg()[0]:.1f}.",
        "",
        "| data | d | " + " | ".join(head) + " |",
        "|" + "---|" * (2 + len(head)),
        *rows,
        "",
    ]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
