"""Training-style data loading: the prepared store (genzoo prepare) against decoding JPEGs every epoch.

    python bench/data_loading.py [--celeba path/to/celeba-10k --images 4000 --seconds 3 --rounds 3]

Real data: the first --images CelebA JPEGs (89x109) of the shared tarball, extracted to a temporary folder (deleted
at the end; nothing is copied into the project). Then, side by side in one process, alternating rounds, medians:

- `genzoo prepare` itself: images/s to build the 4..256 store, with one process and with the decoding pool;
- store: random batches of 32 by `PreparedDataset.__getitems__` (one fancy-index read of the memory map) + to float;
- JPEG folder: what a training loop without preparation does every epoch: PIL open, RGB, centre square, resize to
  the level (bilinear, Pillow's cheapest antialiased filter: a favour to the baseline), to tensor, batches of 32
  by a torch DataLoader with 2 worker processes, + to float;
- level JPEGs: the same loader over JPEGs already resized to the level (quality 95), the least work any encoded
  per-level format (JPEG/PNG shards, WebDataset, TFRecords of JPEGs) must do per image.

Each loading figure is images/s over --seconds of batches after one warm-up batch (DataLoader worker start-up is
not counted). The store's files were just written, so they are in the page cache, as a store of this size stays
during training. Writes a Markdown table to bench/results/data_loading.md and prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BATCH = 32


class JpegFolder(torch.utils.data.Dataset):
    """Decode + centre square + resize per item: the baseline a training loop without preparation runs."""

    def __init__(self, paths, size):
        self.paths, self.size = paths, size

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as img:
            img = img.convert("RGB")
            w, h = img.size
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            if (s, s) != img.size:
                img = img.crop((left, top, left + s, top + s))
            if s != self.size:
                img = img.resize((self.size, self.size), Image.BILINEAR)
            return torch.from_numpy(np.asarray(img).transpose(2, 0, 1).copy())


def rate_store(ds, seconds, rng, to_float=True):
    ds.__getitems__(rng.integers(0, len(ds), BATCH))  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        batch = ds.__getitems__(rng.integers(0, len(ds), BATCH))
        n += len(batch.float().div_(255) if to_float else batch)
    return n / (time.perf_counter() - t0)


def rate_loader(ds, seconds, seed):
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=BATCH,
        shuffle=True,
        num_workers=2,
        drop_last=True,
        generator=torch.Generator().manual_seed(seed),
    )
    it = iter(loader)
    next(it)  # warm-up: workers started
    n, t0 = 0, time.perf_counter()
    for batch in it:
        n += len(batch.float().div_(255))
        if time.perf_counter() - t0 >= seconds:
            break
    elapsed = time.perf_counter() - t0
    del it
    return n / elapsed


def extract(tarball: Path, count: int, folder: Path) -> list[Path]:
    out = []
    with tarfile.open(tarball, "r|gz") as tar:
        for m in tar:
            if m.isfile() and m.name.endswith(".jpg"):
                path = folder / Path(m.name).name
                path.write_bytes(tar.extractfile(m).read())
                out.append(path)
                if len(out) == count:
                    break
    return sorted(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--celeba", type=Path, default=ROOT.parent / "shared" / "data" / "celeba-10k")
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "data_loading.md")
    args = parser.parse_args()

    from genzoo.datasets.prepared import PreparedDataset, prepare_store

    torch.set_num_threads(1)
    tarball = next(args.celeba.glob("*.tar.gz")) if args.celeba.is_dir() else args.celeba
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "jpeg").mkdir()
        paths = extract(tarball, args.images, tmp / "jpeg")
        n = len(paths)
        jpeg_mb = sum(p.stat().st_size for p in paths) / 1e6

        prep = {"1 process": [], "pool of 2": []}
        for _ in range(args.rounds if args.rounds > 1 else 1):
            for label, workers in (("1 process", 1), ("pool of 2", 2)):
                out = tmp / f"store-{workers}"
                if out.exists():
                    import shutil

                    shutil.rmtree(out)
                result = prepare_store(tmp / "jpeg", out, 256, 4, test_count=0, workers=workers, say=lambda m: None)
                prep[label].append(n / result["seconds"])
        store = tmp / "store-2"
        store_mb = {int(k): (store / v["file"]).stat().st_size / 1e6 for k, v in result["levels"].items()}

        for size in (64, 256):  # the level JPEGs, written once from the store
            folder = tmp / f"level-{size}"
            folder.mkdir()
            level = PreparedDataset(store, "train", size).array
            for i in range(n):
                Image.fromarray(np.ascontiguousarray(level[i].transpose(1, 2, 0))).save(
                    folder / f"{i}.jpg", quality=95
                )

        rates = {}
        rng = np.random.default_rng(0)
        for r in range(args.rounds):
            for size in (64, 256):
                level_paths = sorted((tmp / f"level-{size}").iterdir())
                for label, fn in (
                    ("store", lambda: rate_store(PreparedDataset(store, "train", size), args.seconds, rng)),
                    (
                        "store uint8",
                        lambda: rate_store(PreparedDataset(store, "train", size), args.seconds, rng, to_float=False),
                    ),
                    ("JPEG folder", lambda: rate_loader(JpegFolder(paths, size), args.seconds, r)),
                    ("level JPEGs", lambda: rate_loader(JpegFolder(level_paths, size), args.seconds, r)),
                ):
                    rates.setdefault((size, label), []).append(fn())

    med = {k: statistics.median(v) for k, v in rates.items()}
    lines += [
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}), torch {torch.__version__}, "
        f"{n} CelebA JPEGs (89x109, {jpeg_mb:.0f} MB), medians of {args.rounds} rounds of {args.seconds:g} s.",
        "",
        "| level | store (memmap) img/s | store, uint8 batches only | JPEG folder, decode + resize, 2 workers img/s "
        "| level JPEGs, 2 workers img/s | store vs JPEG folder |",
        "|---|---|---|---|---|---|",
    ]
    for size in (64, 256):
        s, u, j, lv = (med[(size, k)] for k in ("store", "store uint8", "JPEG folder", "level JPEGs"))
        lines.append(f"| {size}x{size} | {s:,.0f} | {u:,.0f} | {j:,.0f} | {lv:,.0f} | {s / j:.0f}x |")
    lines += ["", "| `genzoo prepare`, 4..256 (7 levels) | img/s |", "|---|---|"]
    lines += [f"| {label} | {statistics.median(v):,.0f} |" for label, v in prep.items()]
    lines += [
        "",
        f"Store size: {sum(store_mb.values()):,.0f} MB for {n} images (256: {store_mb[256]:,.0f} MB, "
        f"64: {store_mb[64]:,.1f} MB); the JPEGs: {jpeg_mb:.0f} MB.",
        "",
        "Rounds: "
        + "; ".join(f"{k[1]} {k[0]}: {[round(x) for x in v]}" for k, v in rates.items())
        + "; prepare: "
        + "; ".join(f"{k}: {[round(x) for x in v]}" for k, v in prep.items()),
    ]
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Data loading: prepared store vs JPEG folder\n\n`python bench/data_loading.py`\n\n" + text)
    print(text)


if __name__ == "__main__":
    main()
