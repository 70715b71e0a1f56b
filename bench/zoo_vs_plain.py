"""genzoo's Trainer against a plain hand-written PyTorch loop for the zoo's conv models: VAE (torch-vae), LBAE (the
LBAE paper).

    python bench/zoo_vs_plain.py --cifar path/to/cifar10-jpeg [--models vae,lbae --steps 40 --rounds 3 --fused]
    python bench/zoo_vs_plain.py --cifar path/to/cifar10-jpeg --models lbae,vae --threads 1 --paired 40

For each model, in one process, rounds alternate (plain, genzoo, plain, genzoo, ...). Both sides train the same
network (built by genzoo's registry, identical initial weights) on the same CIFAR-10 images and batch size with
Adam; the plain loop writes the forward pass and loss itself, indexes an in-memory uint8 tensor, and reads its loss
every step. images/s counts --steps optimisation steps after --warmup steps; for genzoo the window runs from its
log line at step --warmup to its log line at the last step, so it includes everything its loop does (batch
fetching, phase bookkeeping, logging, loss accumulation). Both wall-clock and CPU-time (process_time) rates are
reported: on a shared machine the CPU-time rate is the steadier measure of work per image. --fused adds genzoo
with torch's fused Adam (`train.fused_optimizer=true`); the plain loop keeps torch's default Adam, as the originals.
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]

SETUPS = {
    # torch-vae's network: 3 conv layers up to 128 filters, 64 latent dims, summed MSE + KL, lr 3e-4
    "vae": dict(recipe="vae_cifar10.yaml", overrides=["data.size=null"], label="conv VAE (torch-vae), CIFAR-10 32x32"),
    # the LBAE paper's CIFAR-10 network: 600-bit codes, residual nets with 2 levels, summed MSE, lr 1e-3
    "lbae": dict(
        recipe="lbae_cifar10.yaml",
        overrides=["model.fit_images=1000"],
        label="LBAE (the LBAE paper), CIFAR-10 32x32, z=600",
    ),
}


def build(name: str, image_shape, seed: int):
    from genzoo.core.recipe import load_recipe
    from genzoo.modelfile.folder import create_model

    recipe = load_recipe(ROOT / "recipes" / SETUPS[name]["recipe"], SETUPS[name]["overrides"])
    torch.manual_seed(seed)
    return create_model(recipe.model, recipe.prior, image_shape)


def plain_step(name: str, model):
    """One optimisation step as a researcher writes it by hand for the same network: forward, loss, backward, Adam."""
    params = [
        p
        for m in ("encoder", "to_mean", "to_log_var", "to_code", "decoder")
        if hasattr(model, m)
        for p in getattr(model, m).parameters()
    ]
    opt = torch.optim.Adam(params, lr=model.phases()[0].lr)  # the phase's default: neither recipe sets another

    def step(x):
        if name == "vae":
            h = model.encoder(x)
            mean, log_var = model.to_mean(h), model.to_log_var(h)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
            rec = F.mse_loss(torch.sigmoid(model.decoder(z)), x, reduction="sum") / x.shape[0]
            kl = (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(1)).mean()
            loss = rec + kl
        else:
            t = torch.tanh(model.to_code(model.encoder(x)))
            b = t + (torch.where(t >= 0, 1.0, -1.0) - t).detach()  # straight-through sign
            loss = F.mse_loss(torch.sigmoid(model.decoder(b)), x, reduction="sum") / x.shape[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _ = loss.item()  # a plain loop reads its loss every step

    return step


def plain_loop(name: str, images: torch.Tensor, steps: int, warmup: int, batch: int, seed: int) -> tuple[float, float]:
    """The loop a researcher writes by hand for the same network."""
    step = plain_step(name, build(name, tuple(images.shape[1:]), seed).train())
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    start = cpu = None
    for i in range(warmup + steps):
        if i == warmup:
            start, cpu = time.perf_counter(), time.process_time()
        idx = order[(i * batch) % (len(images) - batch) :][:batch]
        step(images[idx].float().div_(255))
    return steps * batch / (time.perf_counter() - start), steps * batch / (time.process_time() - cpu)


def paired_steps(name: str, cifar: Path, pairs: int, batch: int, out: Path) -> dict:
    """CPU seconds of genzoo's trainer step (`Trainer._train_step`: its phases, optimiser settings and logs) and of the
    plain step, on the same batch one after the other, alternating which goes first, `pairs` times after 2 warm-up
    pairs. Both models start from the same weights. Pairing cancels the drift that whole rounds minutes apart see
    on a shared machine; it leaves out the loop around the step (batch fetching, logging), which the rounds keep."""
    import copy

    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    recipe = load_recipe(
        ROOT / "recipes" / SETUPS[name]["recipe"],
        [*SETUPS[name]["overrides"], f"data.root={cifar}", "data.download=false", f"output_dir={out}",
         f"name=paired-{name}-{time.time_ns()}", f"train.batch_size={batch}", "train.steps=1000000"],
    )  # fmt: skip
    trainer = Trainer(recipe)
    trainer._setup()
    trainer._resume_or_start()
    trainer.model.train()
    plain = plain_step(name, copy.deepcopy(trainer.model).train())
    images, g = trainer.data.images, torch.Generator().manual_seed(0)
    seconds = {"plain": [], "genzoo": []}
    for i in range(pairs + 2):
        x = images[torch.randint(0, len(images), (batch,), generator=g)].float().div_(255)
        order = [("plain", plain), ("genzoo", trainer._train_step)]
        for who, step in order if i % 2 else order[::-1]:
            cpu = time.process_time()
            step(x)
            if i >= 2:
                seconds[who].append(time.process_time() - cpu)
    return seconds


def genzoo_loop(
    name: str, cifar: Path, steps: int, warmup: int, batch: int, seed: int, out: Path, fused: bool = False
) -> tuple[float, float]:
    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    stamps = []

    class Timed(Trainer):  # clocks read right after each log line: the window is exactly the logged interval
        def _log(self, *args, **kwargs):
            super()._log(*args, **kwargs)
            stamps.append((self.step, time.perf_counter(), time.process_time()))

    recipe = load_recipe(
        ROOT / "recipes" / SETUPS[name]["recipe"],
        [
            *SETUPS[name]["overrides"],
            f"data.root={cifar}",
            "data.download=false",
            f"output_dir={out}",
            f"name=bench-{name}-{seed}-{time.time_ns()}",
            f"train.batch_size={batch}",
            f"train.steps={warmup + steps}",
            f"train.log_every={warmup}",
            f"seed={seed}",
            "train.sample_every=1000000",
            "train.checkpoint_every=1000000",
            f"train.fused_optimizer={str(fused).lower()}",
        ],
    )
    Timed(recipe).fit()
    (s0, w0, c0), (s1, w1, c1) = stamps[0], stamps[-1]
    assert s0 == warmup and s1 == warmup + steps, stamps
    return steps * batch / (w1 - w0), steps * batch / (c1 - c0)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=ROOT.parent / "shared" / "data" / "cifar10-jpeg")
    parser.add_argument("--models", default="vae,lbae")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--fused", action="store_true", help="also genzoo with train.fused_optimizer=true")
    parser.add_argument("--paired", type=int, default=0, help="instead of rounds: this many step pairs (paired_steps)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.steps % args.warmup:
        raise SystemExit("--steps must be a multiple of --warmup (genzoo logs every --warmup steps)")

    if args.paired:
        return paired_main(args)
    from genzoo.core.registry import DATASETS

    images = DATASETS.get("cifar10")("train", root=str(args.cifar), download=False).images  # decoded once, cached
    series = ["genzoo", *(["genzoo fused"] if args.fused else [])]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            rates = {"plain": [], **{k: [] for k in series}}
            for r in range(args.rounds):
                rates["plain"].append(plain_loop(name, images, args.steps, args.warmup, args.batch, seed=r))
                for k in series:
                    fused = k == "genzoo fused"
                    rates[k].append(
                        genzoo_loop(name, args.cifar, args.steps, args.warmup, args.batch, r, Path(tmp), fused)
                    )
                print(
                    f"{name} round {r}: "
                    + ", ".join(f"{k} {v[-1][0]:.1f} img/s ({v[-1][1]:.1f} per CPU-s)" for k, v in rates.items()),
                    file=sys.stderr,
                )
            rows.append((name, rates))
    print(
        "| setup | genzoo | plain img/s | genzoo img/s | ratio | plain img per CPU-s | genzoo img per CPU-s | ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, rates in rows:
        pw, pc = (statistics.median(v[i] for v in rates["plain"]) for i in (0, 1))
        for k in series:
            ow, oc = (statistics.median(v[i] for v in rates[k]) for i in (0, 1))
            print(
                f"| {SETUPS[name]['label']}, batch {args.batch}, {args.steps} steps x {args.rounds} rounds | {k} | "
                f"{pw:.1f} | {ow:.1f} | {ow / pw:.3f} | {pc:.1f} | {oc:.1f} | {oc / pc:.3f} |"
            )
    print()
    for name, rates in rows:
        for i, unit in enumerate(("wall img/s", "img per CPU-s")):
            print(
                f"{name} rounds ({unit}) " + "; ".join(f"{k}: {[round(v[i], 1) for v in r]}" for k, r in rates.items())
            )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )


def paired_main(args) -> None:
    print("| setup | plain CPU-s per step | genzoo CPU-s per step | plain img per CPU-s | genzoo img per CPU-s "
          "| ratio (median of pairs) | quartiles of the pair ratios | pairs genzoo cheaper |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            sec = paired_steps(name, args.cifar, args.paired, args.batch, Path(tmp))
            ratios = [p / g for p, g in zip(sec["plain"], sec["genzoo"])]
            p, g = statistics.median(sec["plain"]), statistics.median(sec["genzoo"])
            quartiles = ", ".join(f"{q:.3f}" for q in statistics.quantiles(ratios, n=4)[::2])
            print(
                f"| {SETUPS[name]['label']}, batch {args.batch}, {args.paired} pairs | {p:.3f} | {g:.3f} | "
                f"{args.batch / p:.1f} | {args.batch / g:.1f} | {statistics.median(ratios):.3f} | {quartiles} | "
                f"{sum(r > 1 for r in ratios)}/{len(ratios)} |"
            )
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
