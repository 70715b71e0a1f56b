"""genzoo's Trainer against a plain hand-written PyTorch loop for the zoo's conv models: VAE (seed 003), LBAE (seed 001).

    python bench/zoo_vs_plain.py --cifar ../shared/data/cifar10-jpeg [--models vae,lbae --steps 40 --rounds 3]

For each model, in one process, rounds alternate (plain, genzoo, plain, genzoo, ...). Both sides train the same
network (built by genzoo's registry, identical initial weights) on the same CIFAR-10 images and batch size with
Adam; the plain loop writes the forward pass and loss itself, indexes an in-memory uint8 tensor, and reads its loss
every step. images/s counts --steps optimisation steps after --warmup steps; genzoo's figure is its own
metrics.jsonl interval, which includes everything its loop does (phase bookkeeping, logging, loss accumulation).
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
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
    # seed 003's network: 3 conv layers up to 128 filters, 64 latent dims, summed MSE + KL, lr 3e-4
    "vae": dict(recipe="vae_cifar10.yaml", overrides=["data.size=null"], label="conv VAE (seed 003), CIFAR-10 32x32"),
    # seed 001's CIFAR-10 network: 600-bit codes, residual nets with 2 levels, summed MSE, lr 1e-3
    "lbae": dict(recipe="lbae_cifar10.yaml", overrides=["model.fit_images=1000"], label="LBAE (seed 001), CIFAR-10 32x32, z=600"),
}


def build(name: str, image_shape, seed: int):
    from genzoo.hub import create_model
    from genzoo.recipe import load_recipe

    recipe = load_recipe(ROOT / "recipes" / SETUPS[name]["recipe"], SETUPS[name]["overrides"])
    torch.manual_seed(seed)
    return create_model(recipe.model, recipe.prior, image_shape)


def plain_loop(name: str, images: torch.Tensor, steps: int, warmup: int, batch: int, seed: int) -> float:
    """The loop a researcher writes by hand for the same network."""
    model = build(name, tuple(images.shape[1:]), seed).train()
    params = [p for m in ("encoder", "to_mean", "to_log_var", "to_code", "decoder") if hasattr(model, m)
              for p in getattr(model, m).parameters()]
    opt = torch.optim.Adam(params, lr=model.lr)
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        idx = order[(step * batch) % (len(images) - batch):][:batch]
        x = images[idx].float().div_(255)
        if name == "vae":
            h = model.encoder(x)
            mean, log_var = model.to_mean(h), model.to_log_var(h)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
            rec = F.mse_loss(torch.sigmoid(model.decoder(z)), x, reduction="sum") / batch
            kl = (-0.5 * (1 + log_var - mean.pow(2) - log_var.exp()).sum(1)).mean()
            loss = rec + kl
        else:
            t = torch.tanh(model.to_code(model.encoder(x)))
            b = t + (torch.where(t >= 0, 1.0, -1.0) - t).detach()  # straight-through sign
            loss = F.mse_loss(torch.sigmoid(model.decoder(b)), x, reduction="sum") / batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _ = loss.item()  # a plain loop reads its loss every step
    return steps * batch / (time.perf_counter() - start)


def genzoo_loop(name: str, cifar: Path, steps: int, warmup: int, batch: int, seed: int, out: Path) -> float:
    from genzoo.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    recipe = load_recipe(ROOT / "recipes" / SETUPS[name]["recipe"], [
        *SETUPS[name]["overrides"], f"data.root={cifar}", "data.download=false", f"output_dir={out}",
        f"name=bench-{name}-{seed}-{time.time_ns()}", f"train.batch_size={batch}", f"train.steps={warmup + steps}",
        f"train.log_every={warmup}", f"seed={seed}", "train.sample_every=1000000", "train.checkpoint_every=1000000",
    ])
    run = Trainer(recipe).fit()
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in log if r["step"] > warmup]
    return sum(r["images_per_s"] for r in timed) / len(timed)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cifar", type=Path, default=ROOT.parent / "shared" / "data" / "cifar10-jpeg")
    parser.add_argument("--models", default="vae,lbae")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.steps % args.warmup:
        raise SystemExit("--steps must be a multiple of --warmup (genzoo logs every --warmup steps)")

    from genzoo.registry import DATASETS

    images = DATASETS.get("cifar10")("train", root=str(args.cifar), download=False).images  # decoded once, cached
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            plain, ours = [], []
            for r in range(args.rounds):
                plain.append(plain_loop(name, images, args.steps, args.warmup, args.batch, seed=r))
                ours.append(genzoo_loop(name, args.cifar, args.steps, args.warmup, args.batch, seed=r, out=Path(tmp)))
                print(f"{name} round {r}: plain {plain[-1]:.1f} img/s, genzoo {ours[-1]:.1f} img/s", file=sys.stderr)
            p, o = statistics.median(plain), statistics.median(ours)
            rows.append((name, p, o, plain, ours))
    print("| setup | plain loop img/s | genzoo img/s | ratio |\n|---|---|---|---|")
    for name, p, o, _, _ in rows:
        print(f"| {SETUPS[name]['label']}, batch {args.batch}, {args.steps} steps x {args.rounds} rounds | "
              f"{p:.1f} | {o:.1f} | {o / p:.3f} |")
    print()
    for name, _, _, plain, ours in rows:
        print(f"{name} rounds plain: {[round(v, 1) for v in plain]}, genzoo: {[round(v, 1) for v in ours]}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")


if __name__ == "__main__":
    main()
