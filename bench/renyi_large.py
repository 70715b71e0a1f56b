"""Large samples: genzoo.renyi.nystrom_divergence against the exact pooled divergence, and its cost.

    OMP_NUM_THREADS=1 python bench/renyi_large.py [--exact-sizes 1000,2000 --landmarks 250,500,1000,2000
                                                   --big 10000,50000 --big-landmarks 1000,2000]

Part 1, error: x and y of n points each (x from a distribution, y from the same one shifted by 0.3 in every
coordinate), d = 64, alpha = 0.5, Gaussian kernel, sigma = the exact median of the pooled sample given to
both (so the columns measure the Nystrom error alone); two distributions: "mixture" (10 Gaussian modes at
scale 2, spread 0.7: clustered, like feature vectors of a few classes) and "gaussian" (isotropic N(0, I):
the hardest case, a flat kernel spectrum).  Also the mean of the exact divergence over disjoint blocks of
n/2 points (the block alternative).  Part 2, cost: n_x = 10,000 against n_y = 50,000 mixture vectors,
d = 64 and 512, sigma="median" (subsampled, 2,000 points), one run per landmark count.  Part 1 also runs
lanczos_divergence (x's side exact, y's by stochastic Lanczos quadrature: the 64 largest terms exact, 32 probes,
100 steps; three probe seeds, their range).  --lanczos-big NX,NY adds its cost and value at those sizes (mixture,
d = 64) beside Nystrom's with 2,000 landmarks; K_YY is stored in float64 (8 NY² bytes).
Writes bench/results/renyi_large.md.

    OMP_NUM_THREADS=2 python bench/renyi_large.py --eval-sizes 2500,5000,10000

Only the cost of the renyi_features metric's exact path (genzoo.metrics.fid.renyi_from_features: the median of
all pooled pairs, then the exact pooled divergence) on n generated against n reference mixture vectors of
Inception's width, d = 2048, each size in a fresh process so that its peak resident memory is its own.
Writes bench/results/renyi_exact_eval.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from genzoo import renyi as R

ROOT = Path(__file__).resolve().parents[1]
F64 = torch.float64


def sample(kind, n, d, seed, shift=0.0):
    g = torch.Generator().manual_seed(seed)
    if kind == "gaussian":
        return torch.randn(n, d, generator=g, dtype=F64) + shift
    centres = torch.randn(10, d, generator=torch.Generator().manual_seed(5), dtype=F64) * 2
    which = torch.randint(10, (n,), generator=g)
    return centres[which] + torch.randn(n, d, generator=g, dtype=F64) * 0.7 + shift


def timed(fn):
    t = time.perf_counter()
    v = float(fn())
    return v, time.perf_counter() - t


EVAL_CHILD = """
import json, sys, time, torch
sys.path.insert(0, {bench!r})
from renyi_large import sample
from genzoo.metrics.fid import renyi_from_features
n = int(sys.argv[1])
ref, gen = sample("mixture", n, 2048, 5).numpy(), sample("mixture", n, 2048, 6, 0.3).numpy()
t = time.perf_counter()
value, sigma, how = renyi_from_features(ref, gen)
print(json.dumps({{"seconds": time.perf_counter() - t, "value": value, "estimator": how}}))
"""


def eval_costs(sizes, out):
    """Seconds and peak memory of the metric's exact path, one fresh process per size (ascending, so the
    children's running peak is the current one's)."""
    import json
    import resource
    import subprocess

    child = EVAL_CHILD.format(bench=str(ROOT / "bench"))
    rows = []
    for n in sorted(sizes):
        load = os.getloadavg()[0]
        res = subprocess.run([sys.executable, "-c", child, str(n)], capture_output=True, text=True, check=True)
        got = json.loads(res.stdout.strip().splitlines()[-1])
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
        cells = [f"{n:,} vs {n:,}", got["estimator"], f"{got['value']:.4f}", f"{got['seconds']:.1f}", f"{peak:.1f}"]
        rows.append("| " + " | ".join(cells) + f" | {load:.1f} |")
        print(rows[-1], flush=True)
    text = [
        "# The renyi_features metric's exact path: cost at evaluation sizes",
        "",
        f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')} python bench/renyi_large.py --eval-sizes "
        f"{','.join(str(v) for v in sizes)}`  ",
        f"Machine: {os.cpu_count()}-core CPU, torch {torch.__version__}, Python {platform.python_version()}.  "
        "Mixture vectors (bench/renyi_large.py), d = 2048, α = 0.5; seconds of `renyi_from_features` (the median "
        "of all pooled pairs, then the exact pooled divergence); peak resident memory of the whole process "
        "(features included); one run per size.",
        "",
        "| samples | estimator | value | seconds | peak memory (GiB) | load at start |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    Path(out).write_text("\n".join(text))
    print(f"wrote {out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--exact-sizes", default="1000,2000")
    ap.add_argument("--landmarks", default="250,500,1000,2000")
    ap.add_argument("--big", default="10000,50000")
    ap.add_argument("--big-dims", default="64,512")
    ap.add_argument("--big-landmarks", default="1000,2000")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "renyi_large.md"))
    ap.add_argument("--lanczos-big", default="", help="NX,NY: also time lanczos_divergence at these sizes")
    ap.add_argument("--eval-sizes", default="", help="only time the renyi_features metric's exact path at these n")
    args = ap.parse_args(argv)
    if args.eval_sizes:
        return eval_costs([int(v) for v in args.eval_sizes.split(",")], ROOT / "bench/results/renyi_exact_eval.md")
    torch.set_num_threads(args.threads)
    loads = [os.getloadavg()[0]]
    lines_err, lines_big = [], []
    for kind in ("mixture", "gaussian"):
        for n in [int(v) for v in args.exact_sizes.split(",")]:
            x, y = sample(kind, n, 64, 1), sample(kind, n, 64, 2, 0.3)
            s = float(R.median_bandwidth(x, y))
            exact, t_exact = timed(lambda: R.pooled_divergence(x, y, 0.5, "gaussian", s))
            b = n // 2
            blocks = float(R.pooled_divergence(x.reshape(2, b, 64), y.reshape(2, b, 64), 0.5, "gaussian", s).mean())
            runs = []
            for seed in range(3):
                gen = torch.Generator().manual_seed(seed)
                runs.append(timed(lambda: R.lanczos_divergence(x, y, 0.5, "gaussian", s, generator=gen)))
            rel = sorted((v - exact) / exact for v, _ in runs)
            lanczos = f"{rel[0]:+.1%} to {rel[-1]:+.1%} ({statistics.median(t for _, t in runs) * 1e3:.0f} ms)"
            cells = []
            for m in [int(v) for v in args.landmarks.split(",")]:
                gen = torch.Generator().manual_seed(m)
                v, t = timed(lambda: R.nystrom_divergence(x, y, 0.5, "gaussian", s, landmarks=m, generator=gen))
                cells.append(f"{(v - exact) / exact:+.1%} ({t * 1e3:.0f} ms)")
            loads.append(os.getloadavg()[0])
            row = [
                kind,
                str(n),
                f"{exact:.4f} ({t_exact * 1e3:.0f} ms)",
                *cells,
                lanczos,
                f"{(blocks - exact) / exact:+.1%}",
            ]
            lines_err.append("| " + " | ".join(row) + " |")
            print(lines_err[-1], flush=True)
    nx, ny = [int(v) for v in args.big.split(",")]
    for d in [int(v) for v in args.big_dims.split(",")]:
        x, y = sample("mixture", nx, d, 3), sample("mixture", ny, d, 4, 0.3)
        for m in [int(v) for v in args.big_landmarks.split(",")]:
            gen = torch.Generator().manual_seed(m)
            v, t = timed(lambda: R.nystrom_divergence(x, y, 0.5, landmarks=m, generator=gen))
            loads.append(os.getloadavg()[0])
            lines_big.append(f"| {nx:,} vs {ny:,} | {d} | {m} | {v:.4f} | {t:.1f} |")
            print(lines_big[-1], flush=True)
    lines_lz = []
    if args.lanczos_big:
        nx, ny = [int(v) for v in args.lanczos_big.split(",")]
        x, y = sample("mixture", nx, 64, 3), sample("mixture", ny, 64, 4, 0.3)
        gen = torch.Generator().manual_seed(0)
        s = R.median_bandwidth(x, y, max_points=2000, generator=gen)
        v_lz, t_lz = timed(lambda: R.lanczos_divergence(x, y, 0.5, "gaussian", s, generator=gen))
        v_ny, t_ny = timed(lambda: R.nystrom_divergence(x, y, 0.5, "gaussian", s, landmarks=2000, generator=gen))
        loads.append(os.getloadavg()[0])
        lines_lz.append(f"| {nx:,} vs {ny:,} | 64 | {v_lz:.4f} | {t_lz:.0f} | {v_ny:.4f} | {t_ny:.0f} |")
        print(lines_lz[-1], flush=True)
    lm = [int(v) for v in args.landmarks.split(",")]
    cmd = "OMP_NUM_THREADS=1 python bench/renyi_large.py" + (
        "" if not argv and len(sys.argv) < 2 else " " + shlex.join(argv or sys.argv[1:])
    )
    text = [
        "# Matrix-based Rényi divergence of large samples: Nyström and Lanczos approximations (genzoo.renyi)",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {os.cpu_count()}-core CPU, torch {torch.__version__} with {args.threads} thread(s), "
        f"Python {platform.python_version()}.  One-minute load average at the start and after each row: "
        f"{', '.join(f'{v:.1f}' for v in loads)} (shared machine).",
        "",
        "## Error against the exact pooled divergence (α = 0.5, d = 64, n points each, σ = exact median)",
        "",
        "Cells: (Nyström - exact) / exact, with the Nyström time; Lanczos: the range of (lanczos_divergence - exact) "
        "/ exact over three probe seeds (64 largest terms exact, 32 probes, 100 steps), with its median time; last "
        "column: the mean exact divergence over two disjoint blocks of n/2 points each.  With m = 2n landmarks (every "
        "point) Nyström is exact.",
        "",
        "| data | n | exact (time) | " + " | ".join(f"m = {m}" for m in lm) + " | Lanczos, 3 seeds | blocks of n/2 |",
        "|" + "---|" * (5 + len(lm)),
        *lines_err,
        "",
        "## Cost at evaluation size (mixture data, σ = median of 2,000 subsampled points, one run)",
        "",
        "| samples | d | landmarks | value | seconds |",
        "|---|---|---|---|---|",
        *lines_big,
        "",
    ]
    if lines_lz:
        text += [
            "## lanczos_divergence at larger sizes "
            f"(mixture, σ = median of 2,000 drawn points, {args.threads} thread(s))",
            "",
            "| samples | d | Lanczos value | seconds | Nyström (2,000 landmarks) value | seconds |",
            "|---|---|---|---|---|---|",
            *lines_lz,
            "",
        ]
    Path(args.out).write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
