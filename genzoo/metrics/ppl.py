"""Perceptual path length (StyleGAN's protocol, as ALAE reports it).

Pairs of codes z0, z1 are drawn from the model's prior and a point t on the path between them (t ~ U(0, 1) for
`sampling: full`, t = 0 for `end`); the images decoded at t and t + epsilon (epsilon = 1e-4) go through LPIPS
(VGG16), and the path length is LPIPS distance / epsilon^2. The mean is taken after dropping values below the 1st
and above the 99th percentile. Images are scaled to [0, 255], grey repeated to 3 channels, images larger than
256 pixels average-pooled down to 256, as StyleGAN2-ADA's `ppl.py` does. The path is a straight line in code space
(`lerp`, StyleGAN's w space) or StyleGAN's z-space `slerp` on the unit sphere.

LPIPS is NVlabs' TorchScript `vgg16.pt` (the file StyleGAN2-ADA's PPL downloads), called as
`vgg16(img, resize_images=False, return_lpips=True)`. Found at the `lpips` option, else $GENZOO_LPIPS, else
<cache>/lpips/vgg16.pt, else downloaded there; without it the metric stops with one line saying how to get it.
"""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import METRICS, MetricValue
from genzoo.metrics.inception import cache_root

VGG16_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/vgg16.pt"
ENV = "GENZOO_LPIPS"


def find_lpips(path: str | None = None, download: bool = True) -> tuple[Path, str]:
    for given, origin in ((path, "lpips option"), (os.environ.get(ENV), ENV)):
        if given:
            p = Path(given).expanduser()
            if not p.is_file():
                raise GenzooError(
                    f"LPIPS weights '{p}' (from the {origin}) do not exist", "point it at NVlabs' TorchScript vgg16.pt"
                )
            return p, origin
    cached = cache_root() / "lpips" / "vgg16.pt"
    if cached.is_file():
        return cached, "cache"
    problem = "not downloaded (download=false)"
    if download:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f".vgg16.pt.{os.getpid()}")
        try:
            with urllib.request.urlopen(VGG16_URL, timeout=30) as response, open(tmp, "wb") as f:
                f.write(response.read())
            torch.jit.load(str(tmp), map_location="cpu")
            os.replace(tmp, cached)
            return cached, "download"
        except Exception as exc:
            problem = f"its download failed ({type(exc).__name__}: {exc})"
        finally:
            tmp.unlink(missing_ok=True)
    raise GenzooError(
        f"PPL needs LPIPS weights (NVlabs' TorchScript vgg16.pt) and none are here: not given, not in $GENZOO_LPIPS, "
        f"not in '{cached}', and {problem}",
        f"on a machine online the file comes from {VGG16_URL}; copy it to '{cached}' or set "
        "GENZOO_LPIPS=/path/to/vgg16.pt",
    )


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """StyleGAN's spherical interpolation between the directions of a and b (result on the unit sphere)."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1, 1))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def lerp(a, b, t):
    return a + (b - a) * t


def to_lpips_input(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images -> [0, 255], 3 channels, at most 256 pixels (area average by an integer factor)."""
    factor = x.shape[-1] // 256
    if factor > 1:
        n, c, h, w = x.shape
        x = x.reshape(n, c, h // factor, factor, w // factor, factor).mean([3, 5])
    x = x * 255
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


@torch.no_grad()
def path_lengths(
    model, lpips, samples: int, epsilon: float, sampling: str, interpolation: str, seed: int, batch_size: int
) -> np.ndarray:
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    between = slerp if interpolation == "slerp" else lerp
    out = []
    for i in range(0, samples, batch_size):
        b = min(batch_size, samples - i)
        z = model.prior.sample(2 * b, generator=g).to(device)
        z0, z1 = z[:b], z[b:]
        t = (torch.rand(b, 1, generator=g) * (1.0 if sampling == "full" else 0.0)).to(z)
        codes = torch.cat([between(z0, z1, t), between(z0, z1, t + epsilon)])
        feats = lpips(to_lpips_input(model.decode(codes)), resize_images=False, return_lpips=True)
        f0, f1 = feats.chunk(2)
        out.append(((f0 - f1).square().sum(1) / epsilon**2).double().cpu())
    return torch.cat(out).numpy()


def filtered_mean(dist: np.ndarray) -> float:
    """Mean of the values between the 1st and the 99th percentile (StyleGAN's outlier rule)."""
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(dist[(dist >= lo) & (dist <= hi)].mean())


# lower is smoother: StyleGAN's reading of the path length (Karras et al. 2019)
@METRICS.register("ppl", values={"ppl": MetricValue("perceptual path length", better="lower")}, sample_based=True)
def ppl(
    model,
    dataset,
    limit: int | None = None,
    samples: int = 50000,
    epsilon: float = 1e-4,
    sampling: Literal["end", "full"] = "end",
    interpolation: Literal["lerp", "slerp"] = "lerp",
    lpips: str | None = None,
    download: bool = True,
    seed: int = 0,
    batch_size: int = 64,
) -> dict:
    """Perceptual path length (StyleGAN/ALAE protocol) with LPIPS VGG16; needs NVlabs' vgg16.pt."""
    path, origin = find_lpips(lpips, download)
    from genzoo.core.io import file_sha256

    model.eval()
    device = next(model.parameters()).device
    try:
        net = torch.jit.load(str(path), map_location=device).eval()
    except Exception as exc:  # a pickle, a truncated download, another network
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise GenzooError(
            f"LPIPS network '{path}' is not a TorchScript archive ({first})",
            "give NVlabs' vgg16.pt (ppl.lpips=PATH or GENZOO_LPIPS); genzoo never unpickles plain pickle files",
        ) from None
    n = min(samples, limit or samples)
    dist = path_lengths(model, net, n, epsilon, sampling, interpolation, seed, batch_size)
    return {
        "ppl": filtered_mean(dist),
        "samples": n,
        "protocol": {
            "samples": n,
            "epsilon": epsilon,
            "sampling": sampling,
            "interpolation": interpolation,
            "seed": seed,
            "percentiles": [1, 99],
            "lpips": {"source": origin, "file": str(path), "sha256": file_sha256(path)},
        },
    }
