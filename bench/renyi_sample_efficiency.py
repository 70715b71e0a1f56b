"""How well FID, KID and the matrix-based Renyi divergence of Inception features rank models from few samples.

    OMP_NUM_THREADS=1 python bench/renyi_sample_efficiency.py --data path/to/mnist --features-only
    OMP_NUM_THREADS=2 python bench/renyi_sample_efficiency.py --data path/to/mnist --repeats 20
        [--study runs/studies/mbrce_vs_baselines_mnist_cpu --pool 2000 --counts 250,500,1000]

(the features, about 9 minutes per 2,000 images on one core, once; a second process with --reverse takes the
models from the other end; then the analysis, 14 minutes on two cores)

Models: five trained MNIST models of the factorial study (`genzoo study
recipes/studies/mbrce_vs_baselines_mnist_cpu.yaml`), one checkpoint taken half-way, chosen to span its FID range
(see MODELS). Each gives `--pool` prior samples (seed 0); the reference is `--pool` test images drawn at random
(seed 0). Inception features (clean-fid's protocol) are computed once and cached under `--cache`, one file per
model, so a stopped run resumes where it was.

The "truth" is the model ranking by FID on the whole pools. For each count m and each of `--repeats` rounds, every
model gets its own random m of its pool, and all models share one random m of the reference pool (a study scores
its models against one reference draw); each metric ranks the models, scored by Kendall's tau against the truth and
by whether the whole ranking matches. Because the subsets come from the pools the truth is computed on, agreement
with FID's own truth is flattered (most at m = pool/2). The split-half check has no such favour: two disjoint
subsets of m (model and reference sides alike) are ranked separately and compared with each other.

Metrics: FID (genzoo.metrics.fid.fid_from_features), KID (the cubic-kernel unbiased MMD^2 averaged over 100
subsets of m/2, as genzoo's `kid` metric does by default; the kernel is computed once per pool, subsets index
into it), and the pooled Renyi alpha-divergence at alpha 0.5 with the median bandwidth
(genzoo.metrics.fid.renyi_from_features, the `renyi_features` metric). Writes a Markdown table and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

# (label, run folder inside the study, checkpoint step or None for the finished model)
MODELS = [
    ("aae_gauss5-s3", "aae_gauss5-s3", None),
    ("aae_gauss5-s4", "aae_gauss5-s4", None),
    ("vae_gauss1-s0@300", "vae_gauss1-s0", 300),
    ("vae_gauss5-s4", "vae_gauss5-s4", None),
    ("mbrce_mixture-s1", "mbrce_mixture-s1", None),
]


def load_model(run: Path, step: int | None):
    from safetensors.torch import load_file

    import genzoo

    model = genzoo.load(run)
    if step is not None:
        state = load_file(run / "checkpoints" / f"step-{step:07d}" / "model.safetensors")
        model.load_state_dict(state)
    return model.eval()


def features(args, fx) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(reference features, {label: model features}), computed once and cached."""
    from genzoo.core.io import atomic_path
    from genzoo.metrics.evaluate import dataset_for
    from genzoo.metrics.fid import model_images, reference_features

    study = Path(args.study)
    cache = Path(args.cache)
    first = load_model(study / MODELS[0][1], None)
    ref, info = reference_features(dataset_for(first, "test", args.data), args.pool, fx, seed=0)
    print(f"reference: {len(ref)} test images ({'cached' if info['cached'] else 'computed'})", flush=True)
    pools = {}
    for label, run, step in reversed(MODELS) if args.reverse else MODELS:
        path = cache / f"{label}-n{args.pool}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as f:
                pools[label] = f["feats"]
            continue
        t = time.perf_counter()
        images = model_images(load_model(study / run, step), None, "samples", args.pool, seed=0)
        pools[label] = fx(images)
        with atomic_path(path, suffix=".npz") as tmp, open(tmp, "wb") as f:
            np.savez(f, feats=pools[label])
        print(f"{label}: {args.pool} samples in {time.perf_counter() - t:.0f} s", flush=True)
    return ref, pools


def cubic_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a.astype(np.float64) @ b.astype(np.float64).T / a.shape[1] + 1) ** 3


def kid_from_kernels(kxx, kyy, kxy, gx, gy, subsets: int, size: int, seed: int) -> float:
    """genzoo's kernel_distance for the samples gx (indices into the x pool) and gy (y pool): the same subset
    draws and formula, with the kernel values read from matrices computed once for the pools."""
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        x = gx[rng.choice(len(gx), size, replace=False)]
        y = gy[rng.choice(len(gy), size, replace=False)]
        a = kxx[np.ix_(x, x)] + kyy[np.ix_(y, y)]
        b = kxy[np.ix_(x, y)]
        values.append(((a.sum() - np.diag(a).sum()) / (size - 1) - b.sum() * 2 / size) / size)
    return float(np.mean(values))


def check_kid(ref, pools, kernels, rng, m) -> None:
    """kid_from_kernels must equal genzoo's kernel_distance on the same subsets (else the table is wrong)."""
    from genzoo.metrics.fid import kernel_distance

    label = next(iter(pools))
    g, ri = rng.choice(len(pools[label]), m, replace=False), rng.choice(len(ref), m, replace=False)
    ours = kid_from_kernels(*kernels[label], g, ri, 100, m // 2, 0)
    theirs = kernel_distance(ref[ri], pools[label][g], 100, m // 2, 0)[0]
    assert abs(ours - theirs) <= 1e-9 * max(1.0, abs(theirs)), (ours, theirs)


def scores(ref, pools, kernels, gi: dict, ri: np.ndarray) -> dict[str, dict[str, float]]:
    """{metric: {label: value}} for the model subsets gi[label] against the reference subset ri."""
    from genzoo.metrics.fid import fid_from_features, renyi_from_features

    out = {"fid": {}, "kid": {}, "renyi": {}}
    for label, g in gi.items():
        x, y = pools[label][g], ref[ri]
        out["fid"][label] = fid_from_features(y, x)
        kxx, kyy, kxy = kernels[label]
        out["kid"][label] = kid_from_kernels(kxx, kyy, kxy, g, ri, 100, len(g) // 2, 0)
        out["renyi"][label] = renyi_from_features(y, x, 0.5)[0]
    return out


def ranking(values: dict[str, float]) -> list[str]:
    return sorted(values, key=values.get)


def agreement(values: dict[str, float], truth: dict[str, float]) -> tuple[float, bool]:
    from scipy.stats import kendalltau

    labels = list(truth)
    tau = kendalltau([values[k] for k in labels], [truth[k] for k in labels]).statistic
    return float(tau), ranking(values) == ranking(truth)


def summarise(rows: list[dict]) -> dict:
    taus = np.array([r[0] for r in rows])
    return {
        "tau_mean": float(taus.mean()),
        "tau_std": float(taus.std(ddof=1)) if len(taus) > 1 else 0.0,
        "exact": float(np.mean([r[1] for r in rows])),
        "rounds": len(rows),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="MNIST folder (the four idx files)")
    ap.add_argument("--study", default="runs/studies/mbrce_vs_baselines_mnist_cpu")
    ap.add_argument("--pool", type=int, default=2000)
    ap.add_argument("--counts", default="250,500,1000")
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--cache", default="runs/bench/renyi_sample_efficiency")
    ap.add_argument("--features-only", action="store_true")
    ap.add_argument("--reverse", action="store_true", help="the models in reverse order (for a second process)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "renyi_sample_efficiency.md"))
    args = ap.parse_args(argv)
    from genzoo.metrics.fid import extractor, fid_from_features, renyi_from_features

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "0")) or torch.get_num_threads())
    started, loads = time.perf_counter(), [os.getloadavg()[0]]
    ref, pools = features(args, extractor("clean", None, "cpu", 64))
    if args.features_only:
        return
    loads.append(os.getloadavg()[0])
    counts = [int(c) for c in args.counts.split(",")]
    truth = {label: fid_from_features(ref, f) for label, f in pools.items()}
    full_renyi = {label: renyi_from_features(ref, f, 0.5)[0] for label, f in pools.items()}
    print("FID on the pools:", {k: round(v, 1) for k, v in truth.items()}, flush=True)
    kernels = {}
    kyy = cubic_kernel(ref, ref)
    for label, f in pools.items():
        kernels[label] = (cubic_kernel(f, f), kyy, cubic_kernel(f, ref))
    rng = np.random.default_rng(0)
    n = args.pool
    check_kid(ref, pools, kernels, rng, min(counts))
    record = {m: {"vs_truth": {k: [] for k in ("fid", "kid", "renyi")}, "split_half": {}} for m in counts}
    for m in counts:
        for _ in range(args.repeats):
            gi = {label: rng.choice(n, m, replace=False) for label in pools}
            ri = rng.choice(n, m, replace=False)
            for metric, values in scores(ref, pools, kernels, gi, ri).items():
                record[m]["vs_truth"][metric].append(agreement(values, truth))
        if 2 * m <= n:
            halves = {k: [] for k in ("fid", "kid", "renyi")}
            for _ in range(args.repeats):
                perm = {label: rng.permutation(n) for label in pools}
                rp = rng.permutation(n)
                a = scores(ref, pools, kernels, {k: p[:m] for k, p in perm.items()}, rp[:m])
                b = scores(ref, pools, kernels, {k: p[m : 2 * m] for k, p in perm.items()}, rp[m : 2 * m])
                for metric in halves:
                    halves[metric].append(agreement(a[metric], b[metric]))
            record[m]["split_half"] = halves
        print(f"m = {m} done ({time.perf_counter() - started:.0f} s)", flush=True)
    loads.append(os.getloadavg()[0])
    write(args, truth, full_renyi, record, counts, loads, time.perf_counter() - started)


def agreement_table(summary: dict, part: str, counts: list[int], names: dict[str, str]) -> list[str]:
    """Markdown rows: per metric, tau mean ± std and the exact-match share at each count."""
    head = " | ".join(f"m = {m}: tau" for m in counts) + " | " + " | ".join(f"m = {m}: exact" for m in counts)
    lines = [f"| metric | {head} |", "|---|" + "---|" * (2 * len(counts))]
    for metric, name in names.items():
        s = [summary[m][part][metric] for m in counts]
        taus = " | ".join(f"{x['tau_mean']:.2f} ± {x['tau_std']:.2f}" for x in s)
        lines.append(f"| {name} | {taus} | " + " | ".join(f"{x['exact']:.2f}" for x in s) + " |")
    return lines


def write(args, truth, full_renyi, record, counts, loads, seconds):
    names = {"fid": "FID", "kid": "KID", "renyi": "Renyi (alpha 0.5)"}
    threads = os.environ.get("OMP_NUM_THREADS")
    cmd = (f"OMP_NUM_THREADS={threads} " if threads else "") + "python "
    cmd += shlex.join(["bench/renyi_sample_efficiency.py", *sys.argv[1:]])
    lines = [
        "# Ranking models from few samples: FID, KID, Renyi divergence of Inception features",
        "",
        f"`{cmd}`",
        "",
        f"Pools: {args.pool} samples per model, {args.pool} MNIST test images; {args.repeats} rounds per count; "
        f"load average {', '.join(f'{x:.2f}' for x in loads)}; {seconds / 60:.1f} min.",
        "",
        "| model | FID (pool) | Renyi (pool) |",
        "|---|---|---|",
        *(f"| {k} | {truth[k]:.1f} | {full_renyi[k]:.4f} |" for k in sorted(truth, key=truth.get)),
        "",
        "Agreement with the FID ranking on the whole pools: Kendall's tau, mean ± std over rounds, and the share of",
        "rounds whose whole ranking matches.",
        "",
    ]
    summary = {m: {part: {k: summarise(v) for k, v in record[m][part].items()} for part in record[m]} for m in counts}
    lines += agreement_table(summary, "vs_truth", counts, names)
    halves = [m for m in counts if summary[m]["split_half"]]
    lines += [
        "",
        "Split-half stability: Kendall's tau between the rankings of two disjoint subsets of m (mean ± std), and the",
        "share of rounds whose two rankings match exactly.",
        "",
        *agreement_table(summary, "split_half", halves, names),
    ]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(
        json.dumps(
            {"truth_fid": truth, "renyi_pool": full_renyi, "summary": {str(m): summary[m] for m in counts}}, indent=2
        )
        + "\n"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
