"""Speed of genzoo.renyi against its eigendecomposition floor and the notebook's approach.

    OMP_NUM_THREADS=1 python bench/renyi.py [--sizes 64,128,256,512,1024 --dims 64,512 --rounds 5]

For each n (points per sample) and d (dimensions), with interleaved rounds (every method once per round,
in turn; the median over rounds is reported, so load from other jobs hits all columns alike):
  * ours: forward + backward on float32 codes x (n, d) (requires_grad) against a target y (n, d) shifted
    by 0.5 that needs no gradient (a prior sample), Gaussian kernel, sigma="median" (the median of the
    pooled sample, included in the time): pooled alpha=0.5 (also with y requiring a gradient, to show
    what the no-gradient path saves), bipartite alpha=0.5 and alpha=2 (also forward only);
  * floor: two float64 torch.linalg.eigh of n x n (K_XX/n and K_YY/n, detached): the eigendecompositions
    both measures need at non-integer alpha;
  * kernel: the five float64 n x d x n products the pooled measure's Gram blocks (x x', y y', x y') and x's
    gradient through them (two) need at least: the part of the work that grows with d, not in the floor;
  * products: the seven float64 n x n x n products of the spectral function (forward W = V1' B V2: two;
    backward V1'(B g(S2) B')V1, its rotation back, B's gradient V1 diag(a) W diag(b) V2': five).
    bound = floor + kernel + products: what the float64 formulation costs before any elementwise pass,
    so "x bound" is the overhead that is left to remove, and where the bound alone exceeds twice the floor
    no float64 implementation of this formulation can be within 2x of the floor;
  * reference (forward only, numpy float64): the notebook's approach, Gram matrix by scipy cdist and every
    matrix power by scipy.linalg.fractional_matrix_power (for the pooled measure also K^(1/2) of the
    2n x 2n pooled Gram matrix), sigma precomputed.  The pooled one costs the same for every d (its
    fractional powers dominate), so it is timed once per n (at the first d); the bipartite ones at every
    (n, d).  Repeats are capped (3, or 1 where a run is predicted to take over 10 s) and a size predicted
    (cubic extrapolation) to exceed --ref-budget seconds is skipped.  For integer alpha
    fractional_matrix_power uses matrix_power and an inverse.
Writes bench/results/renyi.md (tables, command, machine, load) and bench/results/renyi_scaling.png.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import platform
import shlex
import statistics
import sys
import time
import warnings
from pathlib import Path

# On a shared machine OpenMP's default active spin-waiting makes multi-thread runs of eigh 5x slower under
# contention (measured: eigh 1024 2.6 s active vs 0.55 s passive at load 6); must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.linalg as sla  # noqa: E402
import torch  # noqa: E402
from scipy.spatial.distance import cdist  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
try:
    from genzoo import renyi as R
except ImportError:  # standalone package: load it by path if genzoo cannot import (its imports are relative)
    _spec = importlib.util.spec_from_file_location(
        "renyi", ROOT / "genzoo" / "renyi" / "__init__.py", submodule_search_locations=[str(ROOT / "genzoo" / "renyi")]
    )
    R = importlib.util.module_from_spec(_spec)
    sys.modules["renyi"] = R
    _spec.loader.exec_module(R)


def once(fn):
    """Wall seconds of one call of fn(), and its return value."""
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


# ---------------------------------------------------------------------------------------------- ours
def ours_case(measure, alpha, x, y, backward=True, sigma="median"):
    def run():
        x.grad = None
        if y.requires_grad:
            y.grad = None
        if measure == "pooled":
            v = R.pooled_divergence(x, y, alpha, "gaussian", sigma)
        else:
            v = R.bipartite_divergence(x, y, alpha, "gaussian", sigma)
        if backward:
            v.backward()
        return float(v.detach())

    return run


# --------------------------------------------------------------------------------- reference (scipy)
def fmp(a, p):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.real(sla.fractional_matrix_power(a, p))


def ref_gram(a, b, s):
    return np.exp(-cdist(a, b, "sqeuclidean") / (2 * s * s))


def ref_bipartite(x, y, alpha, s):
    n = len(x)
    k1, k2 = ref_gram(x, x, s) / n, ref_gram(y, y, s) / n
    return math.log(np.trace(fmp(k1, alpha) @ fmp(k2, 1 - alpha))) / (alpha - 1)


def ref_pooled(x, y, alpha, s):
    z = np.vstack([x, y])
    nx, m = len(x), len(z)
    k = ref_gram(z, z, s)
    kh = fmp(k, 0.5)
    dx = np.r_[np.ones(nx) / nx, np.zeros(m - nx)]
    dy = np.r_[np.zeros(nx), np.ones(m - nx) / (m - nx)]
    cx, cy = (kh * dx) @ kh, (kh * dy) @ kh
    t = np.trace(fmp(cx, alpha) @ fmp(cy, 1 - alpha))
    return math.log(abs(t)) / (alpha - 1)


# key, measure, alpha, backward, y needs a gradient, sigma given (as the reference's) instead of "median"
CASES = [
    ("pooled_0.5", "pooled", 0.5, True, False, False),
    ("pooled_0.5_ygrad", "pooled", 0.5, True, True, False),
    ("bipartite_0.5", "bipartite", 0.5, True, False, False),
    ("bipartite_2", "bipartite", 2.0, True, False, False),
    ("bipartite_2_s", "bipartite", 2.0, True, False, True),
    ("bipartite_2_s_fwd", "bipartite", 2.0, False, False, True),
]
REFS = {"pooled_0.5": ("pooled", 0.5), "bipartite_0.5": ("bipartite", 0.5), "bipartite_2": ("bipartite", 2.0)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="64,128,256,512,1024")
    ap.add_argument("--dims", default="64,512")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (3x as many for n <= 256)")
    ap.add_argument(
        "--ref-budget", type=float, default=400.0, help="skip a reference call predicted to take longer (s)"
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args(argv)
    sizes = [int(v) for v in args.sizes.split(",")]
    dims = [int(v) for v in args.dims.split(",")]
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    loads = [os.getloadavg()]
    t_start = time.perf_counter()

    rows = []
    ref = {}  # (key, n) -> (seconds or None, value, note)
    ref_last = {}  # key -> (n, seconds) of the last reference actually run
    for d in dims:
        for n in sizes:
            g = torch.Generator().manual_seed(n * 1000 + d)
            x = torch.randn(n, d, generator=g).requires_grad_()
            y = torch.randn(n, d, generator=g) + 0.5
            yg = y.clone().requires_grad_()
            with torch.no_grad():
                s = R.median_bandwidth(x.detach().double(), y.double())
                a = R.gram_matrix(x.detach().double(), sigma=s) / n
                b = R.gram_matrix(y.double(), sigma=s) / n
                xd, yd = x.detach().double(), y.double()
                gm = a.clone()
            methods = {
                "floor": lambda: (torch.linalg.eigh(a), torch.linalg.eigh(b)),
                # the pooled measure's Gram blocks and x's gradient need at least these five n x d x n products
                "kernel": lambda: (xd @ xd.T, yd @ yd.T, xd @ yd.T, gm @ xd, gm @ yd),
                # the spectral function's seven n x n x n products (y without gradient)
                "products": lambda: [a @ b for _ in range(7)],
            }
            for key, measure, alpha, bwd, ygrad, given in CASES:
                methods[key] = ours_case(measure, alpha, x, yg if ygrad else y, bwd, float(s) if given else "median")
            times = {k: [] for k in methods}
            vals = {}
            for k, fn in methods.items():  # warm-up
                vals[k] = fn()
            rounds = args.rounds * (3 if n <= 256 else 1)
            for _ in range(rounds):
                for k, fn in methods.items():
                    times[k].append(once(fn)[0])
            row = {"n": n, "d": d, "rounds": rounds}
            for k in methods:
                row[k] = statistics.median(times[k])
                row["val_" + k] = vals[k]
            xs, ys = x.detach().double().numpy(), y.double().numpy()
            for rk, (measure, alpha) in REFS.items():
                # the pooled reference's cost is its 2n×2n fractional powers, the same for every d: timed once
                # per n; the bipartite ones are cheap and their cdist part grows with d: timed at every d
                key = (rk, n) if measure == "pooled" else (rk, n, d)
                if key not in ref:
                    fn = (
                        (lambda: ref_pooled(xs, ys, alpha, float(s)))
                        if measure == "pooled"
                        else (lambda: ref_bipartite(xs, ys, alpha, float(s)))
                    )
                    last = ref_last.get(rk)
                    predicted = last[1] * (n / last[0]) ** 3 if last and last[0] < n else 0.0
                    if predicted > args.ref_budget:
                        ref[key] = (None, None, f"skipped (predicted {predicted:.0f} s)")
                    else:
                        reps = 3 if predicted < 10 else 1
                        runs = [once(fn) for _ in range(reps)]
                        rw = statistics.median(t for t, _ in runs)
                        ref[key] = (rw, runs[-1][1], f"{reps} run(s)")
                        ref_last[rk] = (n, rw)
                row["ref_" + rk] = ref[key]
            rows.append(row)
            loads.append(os.getloadavg())
            print(
                f"d={d:4d} n={n:5d} load={loads[-1][0]:.1f}  "
                + "  ".join(f"{k}={row[k] * 1e3:8.1f}ms" for k in methods)
                + "  ref: "
                + " ".join(f"{k}={fmt_s(row['ref_' + k][0])}" for k in REFS),
                flush=True,
            )
    total = time.perf_counter() - t_start
    write_markdown(out / "renyi.md", rows, args, argv, total, loads)
    plot(out / "renyi_scaling.png", rows, dims)
    print(f"wrote {out / 'renyi.md'} and {out / 'renyi_scaling.png'} ({total:.0f} s)")


def fmt_s(sec):
    return "-" if sec is None else f"{sec:.2f}s"


def fmt_ratio(r):
    return f"{r:.0f}" if r >= 10 else f"{r:.2g}"


def fmt_ms(sec):
    return "–" if sec is None else (f"{sec * 1e3:.1f}" if sec < 10 else f"{sec * 1e3:.0f}")


def write_markdown(path, rows, args, argv, total, loads):
    cmd = "OMP_NUM_THREADS=1 python bench/renyi.py" + (
        "" if not argv and len(sys.argv) < 2 else " " + shlex.join(argv or sys.argv[1:])
    )
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    one = [f"{v[0]:.1f}" for v in loads]
    lines = [
        "# Matrix-based Rényi divergences: speed (genzoo.renyi)",
        "",
        f"Command: `{cmd}`  ",
        f"Machine: {os.cpu_count()}-core CPU ({cpu}), torch {torch.__version__} with {args.threads} thread(s), "
        f"numpy {np.__version__}, scipy {scipy.__version__}, Python {platform.python_version()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}.  ",
        f"Total run time {total:.0f} s.  One-minute load average at the start and after each row: "
        f"{', '.join(one)} (the machine is shared with other jobs: rounds are interleaved, so load hits every "
        "column of a row alike, and medians are reported).",
        "",
        f"All times in ms, median of {3 * args.rounds} (n ≤ 256) or {args.rounds} interleaved rounds after a "
        "warm-up.  **ours**: forward + backward, float32 codes x (n×d) vs y = N(0.5, I) without gradient (a "
        "prior sample), Gaussian kernel, σ = median of the pooled sample (included).  **floor**: two float64 "
        "`torch.linalg.eigh` of n×n (K_XX/n and K_YY/n): what both measures need at non-integer α (the "
        "pooled one never forms a 2n×2n matrix).  **kernel**: the five float64 n×d×n products the pooled Gram "
        "blocks and x's gradient through them need at least (the part that grows with d).  **products**: the "
        "seven float64 n×n×n products of the spectral function with y needing no gradient (W = V1ᵀ B V2 forward; "
        "V1ᵀ(B g(S2) Bᵀ)V1, its rotation back and B's gradient V1 diag(a) W diag(b) V2ᵀ backward).  **bound** = "
        "floor + kernel + products, the formulation's float64 cost before any elementwise pass: ×bound = pooled / "
        "bound is the overhead left to remove, and where bound / floor exceeds 2 no float64 implementation of this "
        "formulation is within 2x of the floor.  **ref**: forward only, the notebook's approach in numpy "
        "float64 (cdist + `scipy.linalg.fractional_matrix_power` for every matrix power, including K^½ of the "
        "2n×2n pooled Gram matrix for the pooled measure; for integer α that routine uses `matrix_power` and "
        "an inverse); the pooled one timed once per n at the first d (its fractional powers dominate and do not "
        "depend on d), the bipartite ones at every (n, d); 3 runs, or 1 where "
        f"a run is predicted to take over 10 s; sizes predicted to exceed {args.ref_budget:.0f} s are skipped.  "
        "×floor = ours / floor; ×ref = ref / ours (speed-up).",
        "",
        "| n | d | floor 2×eigh(n) | kernel | products | bound / floor | pooled α=0.5 | ×floor | ×bound | ref "
        "| ×ref | y with gradient | saved | bipartite α=0.5 | ×floor | ref | ×ref |",
        "|" + "---|" * 17,
    ]
    for r in rows:
        fl = r["floor"]
        bound = fl + r["kernel"] + r["products"]
        rp, _, notep = r["ref_pooled_0.5"]
        rb, _, noteb = r["ref_bipartite_0.5"]
        lines.append(
            "| "
            + " | ".join(
                [
                    str(r["n"]),
                    str(r["d"]),
                    fmt_ms(fl),
                    fmt_ms(r["kernel"]),
                    fmt_ms(r["products"]),
                    f"{bound / fl:.2f}",
                    fmt_ms(r["pooled_0.5"]),
                    f"{r['pooled_0.5'] / fl:.2f}",
                    f"{r['pooled_0.5'] / bound:.2f}",
                    fmt_ms(rp) if rp is not None else notep,
                    fmt_ratio(rp / r["pooled_0.5"]) if rp is not None else "–",
                    fmt_ms(r["pooled_0.5_ygrad"]),
                    f"{r['pooled_0.5_ygrad'] / r['pooled_0.5']:.2f}x",
                    fmt_ms(r["bipartite_0.5"]),
                    f"{r['bipartite_0.5'] / fl:.2f}",
                    fmt_ms(rb) if rb is not None else noteb,
                    fmt_ratio(rb / r["bipartite_0.5"]) if rb is not None else "–",
                ]
            )
            + " |"
        )
    lines += [
        "",
        "## Integer α: bipartite α=2 (two eigendecompositions, as at any α) against the reference's "
        "`matrix_power` + inverse",
        "",
        "The reference is timed with σ given; so are the two `σ given` columns of ours (σ = median: the "
        "training setting, which also computes the 2n×2n pooled distances for the median).",
        "",
        "| n | d | ours fwd+bwd, σ median | ours fwd+bwd, σ given | ours fwd, σ given | ref fwd, σ given "
        "| ref / ours fwd+bwd | ref / ours fwd |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        rw, _, note = r["ref_bipartite_2"]
        lines.append(
            f"| {r['n']} | {r['d']} | {fmt_ms(r['bipartite_2'])} | {fmt_ms(r['bipartite_2_s'])} | "
            f"{fmt_ms(r['bipartite_2_s_fwd'])} | "
            + (fmt_ms(rw) if rw is not None else note)
            + " | "
            + (f"{rw / r['bipartite_2_s']:.2f}" if rw is not None else "–")
            + " | "
            + (f"{rw / r['bipartite_2_s_fwd']:.2f}" if rw is not None else "–")
            + " |"
        )
    lines += [
        "",
        "## Values (first d): ours vs the fractional_matrix_power reference",
        "",
        "| n | " + " | ".join(f"{k.replace('_', ' α=')}: ours / ref" for k in REFS) + " |",
        "|---|" + "---|" * len(REFS),
    ]
    d0 = rows[0]["d"]
    for r in rows:
        if r["d"] != d0:
            continue
        cells = [str(r["n"])]
        for k in REFS:
            rv = r["ref_" + k][1]
            cells.append(f"{r['val_' + k]:.6g} / " + ("–" if rv is None else f"{rv:.6g}"))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "The pooled reference takes fractional powers of 2n×2n singular matrices (K^½ D_X K^½ has n zero "
        "eigenvalues), where `fractional_matrix_power` is slow; ours never forms those matrices.  The bipartite "
        "α=2 value of ours uses the shift (κ2 + εI)^-1 with ε = 1e-12, the reference the exact inverse.",
        "",
        "![scaling](renyi_scaling.png)",
        "",
    ]
    Path(path).write_text("\n".join(lines))


def plot(path, rows, dims):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(dims), figsize=(6 * len(dims), 4.5), sharey=True, squeeze=False)
    styles = {
        "pooled_0.5": ("ours pooled α=0.5", "C0", "-o"),
        "bipartite_0.5": ("ours bipartite α=0.5", "C1", "-o"),
        "bipartite_2": ("ours bipartite α=2", "C1", "--s"),
    }
    for ax, d in zip(axes[0], dims):
        rs = [r for r in rows if r["d"] == d]
        ns = [r["n"] for r in rs]
        for k, (lab, c, st) in styles.items():
            ax.plot(ns, [r[k] for r in rs], st, color=c, label=lab)
        ax.plot(ns, [r["floor"] for r in rs], ":", color="k", label="floor 2×eigh(n)")
        for k, c in (("pooled_0.5", "C2"), ("bipartite_0.5", "C3"), ("bipartite_2", "C4")):
            pts = [(r["n"], r["ref_" + k][0]) for r in rs if r["ref_" + k][0] is not None]
            if pts:
                ax.plot(*zip(*pts), "-.^", color=c, label=f"ref (fwd only) {k.replace('_', ' α=')}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n (points per sample)")
        ax.set_title(f"d = {d}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("seconds (median)")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.suptitle(
        "Matrix-based Rényi divergences: forward+backward vs two-eigh floor and scipy reference "
        f"({torch.get_num_threads()} thread)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
