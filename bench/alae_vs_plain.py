"""genzoo's Trainer against a plain hand-written PyTorch loop: MLP ALAE on MNIST, same networks, batch and steps.

    OMP_NUM_THREADS=1 python bench/alae_vs_plain.py --mnist path/to/mnist [--steps 100 --warmup 20 --rounds 3 \\
        --schedule separate --fused]

The networks are ALAE's mnist_fc ones (F: pixel-norm + 6 equalised-lr layers of 50, G 50-1024-1024-784,
E 784-1024-1024-50, D 3 linear layers on w), batch 128, Adam beta1 0 / beta2 0.99, lr 0.002, EMA half-life 10k
images. The plain loop is what a researcher writes by hand for the same algorithm as genzoo with the same
`reciprocity_step`: ALAE's two optimisers (E+D and F+G), R1 on reals, EMA of all weights, losses read every step;
`--schedule separate` (genzoo's default) is ALAE's own three steps (reciprocity as a third backward stepping both
optimisers), `--schedule folded` carries each optimiser's share of the reciprocity term in steps 1 and 2.

All loops run in this one process, alternating, each for --steps timed steps after --warmup steps; genzoo's
images/s is its own, from metrics.jsonl (everything its loop does). --fused adds genzoo with torch's fused Adam
(`train.fused_optimizer=true`) to each round; the plain loop keeps torch's default Adam, as ALAE's code does.
Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
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


class Lin(nn.Module):
    """Equalised-lr linear layer, written out (ALAE's lreq.Linear)."""

    def __init__(self, a, b, lrmul=1.0):
        super().__init__()
        self.w = nn.Parameter(torch.randn(b, a) / lrmul)
        self.b = nn.Parameter(torch.zeros(b))
        self.c, self.lrmul = math.sqrt(2) * lrmul / math.sqrt(a), lrmul

    def forward(self, x):
        return F.linear(x, self.w * self.c, self.b * self.lrmul if self.lrmul != 1 else self.b)


def stack(sizes, lrmul=1.0, act_last=False, act=True):
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Lin(a, b, lrmul))
        if act and (i < len(sizes) - 2 or act_last):
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def plain_loop(images: torch.Tensor, steps: int, warmup: int, batch: int, seed: int, reference: bool = True) -> float:
    torch.manual_seed(seed)
    d, h = 50, 1024

    class PixelNorm(nn.Module):
        def forward(self, z):
            return z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)

    mapping = nn.Sequential(PixelNorm(), stack([d] * 7, 0.1, act_last=True))
    gen, enc = stack([d, h, h, 784]), stack([784, h, h, d], act_last=True)
    disc = stack([d, d, d, 1], 0.1, act=False)
    opt_e = torch.optim.Adam([*enc.parameters(), *disc.parameters()], lr=0.002, betas=(0.0, 0.99))
    opt_g = torch.optim.Adam([*mapping.parameters(), *gen.parameters()], lr=0.002, betas=(0.0, 0.99))
    params = [p for m in (mapping, gen, enc, disc) for p in m.parameters()]
    ema = [p.detach().clone() for p in params]
    ema_weight = 1 - 0.5 ** (batch / 10_000)

    def train(mods, on):
        for m in mods:
            m.requires_grad_(on)

    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    start = None
    for step in range(warmup + steps):
        if step == warmup:
            start = time.perf_counter()
        idx = order[(step * batch) % (len(images) - batch) :][:batch]
        x = images[idx].float().div_(255).flatten(1).mul_(2).sub_(1).requires_grad_(True)
        # step 1: E and D (+ E's reciprocity share unless three-step)
        train((mapping, gen), False), train((enc, disc), True)
        opt_e.zero_grad(set_to_none=True)
        with torch.no_grad():
            w = mapping(torch.randn(batch, d))
            fake = gen(w)
        real_logits = disc(enc(x))
        fake_codes = enc(fake)
        (grad,) = torch.autograd.grad(real_logits.sum(), x, create_graph=True)
        r1 = 5.0 * grad.pow(2).sum(1).mean()
        d_loss = (F.softplus(disc(fake_codes)) + F.softplus(-real_logits)).mean() + r1
        rec_e = (fake_codes - w).pow(2).mean() if not reference else torch.zeros(())
        (d_loss + rec_e).backward()
        opt_e.step()
        # step 2: F and G (+ G's and F's reciprocity share unless three-step)
        train((mapping, gen), True), train((enc, disc), False)
        opt_g.zero_grad(set_to_none=True)
        w = mapping(torch.randn(batch, d))
        codes = enc(gen(w))
        g_loss = F.softplus(-disc(codes)).mean()
        rec_g = (codes - w.detach()).pow(2).mean() if not reference else torch.zeros(())
        (g_loss + rec_g).backward()
        opt_g.step()
        if reference:  # step 3: reciprocity, both optimisers step
            train((enc,), True)
            opt_e.zero_grad(set_to_none=True), opt_g.zero_grad(set_to_none=True)
            w = mapping(torch.randn(batch, d))
            rec = (enc(gen(w)) - w.detach()).pow(2).mean()
            rec.backward()
            opt_e.step(), opt_g.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in params], ema_weight)
        _ = (d_loss.item(), r1.item(), rec_e.item(), g_loss.item(), rec_g.item())  # a plain loop reads its losses
    train((mapping, gen, enc, disc), True)
    return steps * batch / (time.perf_counter() - start)


def genzoo_loop(
    mnist: Path, steps: int, warmup: int, batch: int, seed: int, out: Path, schedule: str, fused: bool = False
) -> float:
    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    if steps % warmup:
        raise SystemExit("--steps must be a multiple of --warmup (genzoo logs every --warmup steps)")
    recipe = load_recipe(
        ROOT / "recipes" / "alae_mnist.yaml",
        [
            f"data.root={mnist}",
            "data.download=false",
            f"output_dir={out}",
            f"name=bench-{seed}-{time.time_ns()}",
            f"train.batch_size={batch}",
            "train.epochs=null",
            f"train.steps={warmup + steps}",
            f"train.log_every={warmup}",
            f"seed={seed}",
            "train.sample_every=1000000",
            "train.checkpoint_every=1000000",
            f"model.reciprocity_step={schedule}",
            f"train.fused_optimizer={str(fused).lower()}",
        ],
    )
    run = Trainer(recipe).fit()
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    timed = [r for r in log if r["step"] > warmup]  # intervals after the warm-up one
    return sum(r["images_per_s"] for r in timed) / len(timed)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", type=Path, default=ROOT.parent / "shared" / "data" / "mnist")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--schedule",
        choices=["separate", "folded"],
        default="separate",
        help="ALAE's three steps (separate) or the reciprocity folded into steps 1 and 2",
    )
    parser.add_argument("--fused", action="store_true", help="also genzoo with train.fused_optimizer=true")
    args = parser.parse_args()

    from genzoo.core.registry import DATASETS

    images = DATASETS.get("mnist")("train", root=str(args.mnist), download=False).images
    rates = {"plain": [], "genzoo": [], **({"genzoo fused": []} if args.fused else {})}
    three_step = args.schedule == "separate"
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            rates["plain"].append(
                plain_loop(images, args.steps, args.warmup, args.batch, seed=r, reference=three_step)
            )
            for name in list(rates)[1:]:
                rate = genzoo_loop(
                    args.mnist,
                    args.steps,
                    args.warmup,
                    args.batch,
                    r,
                    Path(tmp),
                    args.schedule,
                    name == "genzoo fused",
                )
                rates[name].append(rate)
            print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.0f} img/s" for k, v in rates.items()), file=sys.stderr)
    medians = {name: statistics.median(v) for name, v in rates.items()}
    for name in list(rates)[1:]:
        print(
            f"| MLP ALAE ({args.schedule}), MNIST, batch {args.batch}, {args.steps} steps x {args.rounds} rounds "
            f"| {name} | {medians['plain']:.0f} | {medians[name]:.0f} | {medians[name] / medians['plain']:.3f} |"
        )
    print(
        "\nrounds " + "; ".join(f"{k}: {[round(x) for x in v]}" for k, v in rates.items()) + f"; torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}"
    )


if __name__ == "__main__":
    main()
