"""genzoo's Trainer against a plain hand-written PyTorch loop: MLP AAE on MNIST, same network, batch and phases.

    OMP_NUM_THREADS=1 python bench/trainer_vs_plain.py --mnist path/to/mnist [--steps 300 --rounds 3] \
        [--schedule paper|folded] [--fused]

--schedule paper: the AAE paper's three phases per batch (reconstruction, discriminator, generator), as the plain
loop a researcher writes by hand. --schedule folded: the original PyTorch code's algorithm (PyTorch-GAN's aae.py,
which the AAE reproductions build on, and pythae's Adversarial_AE fold the same way): one encoder+decoder step on
0.999 x reconstruction + 0.001 x adversarial, then the discriminator's step on the detached codes of that step;
genzoo's `regularization_step: folded, prior_weight: 0.001/0.999` (its lr 2e-4 for both, as the original).
--fused adds genzoo with `train.fused_optimizer=true` (torch's fused Adam) to each round; the plain loop keeps
torch's default Adam, as the original code does.

The loops run in this one process, alternating (plain, genzoo[, genzoo fused], plain, ...), each for --steps
optimisation steps after --warmup steps; images/s is counted over the timed steps only (genzoo's from its own
metrics.jsonl interval, which includes everything its loop does: phase switching, logging, loss accumulation, EMA
off, no checkpoint in the window). With one thread on an otherwise idle core, images/s is images per CPU-second.
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
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def net(sizes):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers += [nn.ReLU(inplace=True), nn.Dropout(0.2)]
    return nn.Sequential(*layers)


def plain_loop(images: torch.Tensor, steps: int, warmup: int, batch: int, seed: int) -> float:
    """The loop a researcher would write by hand (the AAE paper's AAE, 1200 units, dropout 0.2, Gaussian posterior)."""
    torch.manual_seed(seed)
    enc, dec, disc = net([784, 1200, 1200, 16]), net([8, 1200, 1200, 784]), net([8, 1200, 1200, 1])
    opt_r = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=1e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(enc.parameters(), lr=1e-4, betas=(0.5, 0.999))

    def encode(x):
        mean, log_var = enc(x.flatten(1)).chunk(2, dim=1)
        return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)

    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        idx = order[(step * batch) % (len(images) - batch) :][:batch]
        x = images[idx].float().div_(255)
        opt_r.zero_grad()
        loss = F.binary_cross_entropy_with_logits(dec(encode(x)).view_as(x), x)
        loss.backward()
        opt_r.step()
        opt_d.zero_grad()
        real, fake = disc(torch.randn(batch, 8) * 5), disc(encode(x).detach())
        d_loss = F.binary_cross_entropy_with_logits(real, torch.ones_like(real)) + F.binary_cross_entropy_with_logits(
            fake, torch.zeros_like(fake)
        )
        d_loss.backward()
        opt_d.step()
        opt_g.zero_grad()
        fake = disc(encode(x))
        g_loss = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        g_loss.backward()
        opt_g.step()
        _ = (loss.item(), d_loss.item(), g_loss.item())  # a plain loop reads its losses every step
    return steps * batch / (time.perf_counter() - start)


def original_loop(images: torch.Tensor, steps: int, warmup: int, batch: int, seed: int) -> float:
    """PyTorch-GAN's aae.py on the paper's networks: the folded encoder+decoder step, then D on its detached codes."""
    torch.manual_seed(seed)
    enc, dec, disc = net([784, 1200, 1200, 16]), net([8, 1200, 1200, 784]), net([8, 1200, 1200, 1])
    opt_g = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def encode(x):
        mean, log_var = enc(x.flatten(1)).chunk(2, dim=1)
        return mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)

    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        idx = order[(step * batch) % (len(images) - batch) :][:batch]
        x = images[idx].float().div_(255)
        opt_g.zero_grad()
        codes = encode(x)
        fake = disc(codes)
        adversarial = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
        recon = F.binary_cross_entropy_with_logits(dec(codes).view_as(x), x)
        g_loss = 0.001 * adversarial + 0.999 * recon
        g_loss.backward()
        opt_g.step()
        opt_d.zero_grad()
        real, fake = disc(torch.randn(batch, 8) * 5), disc(codes.detach())
        d_loss = 0.5 * (
            F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
            + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        )
        d_loss.backward()
        opt_d.step()
        _ = (g_loss.item(), d_loss.item())
    return steps * batch / (time.perf_counter() - start)


FOLDED = [  # genzoo's recipe keys for the original code's algorithm (Adam ignores a loss's constant scale: 0.999 goes)
    "model.regularization_step=folded",
    f"model.prior_weight={0.001 / 0.999}",
    "train.phases.autoencoder.lr=2e-4",
    "train.phases.discriminator.lr=2e-4",
]


def genzoo_loop(mnist: Path, steps: int, warmup: int, batch: int, seed: int, out: Path, extra=()) -> float:
    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    recipe = load_recipe(
        ROOT / "recipes" / "aae_mnist.yaml",
        [
            f"data.root={mnist}",
            "data.download=false",
            f"output_dir={out}",
            f"name=bench-{seed}-{time.time_ns()}",
            f"train.batch_size={batch}",
            f"train.steps={warmup + steps}",
            f"train.log_every={warmup}",
            f"seed={seed}",
            "train.sample_every=1000000",
            "train.checkpoint_every=1000000",
            *extra,
        ],
    )
    if steps % warmup:
        raise SystemExit("--steps must be a multiple of --warmup (genzoo logs every --warmup steps)")
    run = Trainer(recipe).fit()
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in log if r["step"] > warmup]  # intervals after the warm-up one
    return sum(r["images_per_s"] for r in timed) / len(timed)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--schedule", choices=["paper", "folded"], default="paper")
    parser.add_argument("--fused", action="store_true", help="also genzoo with train.fused_optimizer=true")
    args = parser.parse_args()

    from genzoo.core.registry import DATASETS

    images = DATASETS.get("mnist")("train", root=str(args.mnist), download=False).images
    plain_of, extra = (original_loop, FOLDED) if args.schedule == "folded" else (plain_loop, [])
    rates = {"plain": [], "genzoo": [], **({"genzoo fused": []} if args.fused else {})}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            rates["plain"].append(plain_of(images, args.steps, args.warmup, args.batch, seed=r))
            for name in list(rates)[1:]:
                fused = ["train.fused_optimizer=true"] if name == "genzoo fused" else []
                rate = genzoo_loop(args.mnist, args.steps, args.warmup, args.batch, r, Path(tmp), [*extra, *fused])
                rates[name].append(rate)
            print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.0f} img/s" for k, v in rates.items()), file=sys.stderr)
    medians = {name: statistics.median(v) for name, v in rates.items()}
    for name in list(rates)[1:]:
        print(
            f"| MLP AAE ({args.schedule}), MNIST, batch {args.batch}, {args.steps} steps x {args.rounds} rounds | "
            f"{name} | {medians['plain']:.0f} | {medians[name]:.0f} | {medians[name] / medians['plain']:.3f} |"
        )
    print(
        "\nrounds " + "; ".join(f"{k}: {[round(x) for x in v]}" for k, v in rates.items()) + f"; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )


if __name__ == "__main__":
    main()
