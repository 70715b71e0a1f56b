"""Peak memory of the conv VAE (recipes/vae_celeba64.yaml) under genzoo's Trainer against torch-vae's plain loop.

    OMP_NUM_THREADS=1 python bench/vae_memory.py [--celeba path/to/celeba-10k --steps 20 --repeat 3]
        [--source folder|archive]

Real data: the shared CelebA subset (10k JPEGs, 89x109) extracted to a temporary folder outside the project (deleted
at the end). Each contender trains --steps steps at 64x64, batch 128, in a FRESH subprocess with OMP_NUM_THREADS=1:

- plain: torch-vae's training loop written out with PIL + torch (torchvision does not import here): a map-style
  Dataset that opens, converts, centre-crops and resizes one JPEG per item from disk (torchvision's ImageFolder +
  transforms), a DataLoader with shuffle and num_workers 0 (one process, so the child's peak RSS is all of it),
  the same network (genzoo's ConvVAE class, the one the registry builds for `model.name: vae`, checked by parameter
  count), AdamW (lr 3e-4, weight decay 0.01), summed MSE + KL over the batch, and nothing else.
- genzoo: `Trainer(load_recipe("recipes/vae_celeba64.yaml", [data.root=..., train.steps=N])).fit()`, i.e. what
  `genzoo train` does, with the decoded-image cache in a temporary folder: "cold" (the first run: the images are
  decoded and the cache written) and "warm" (the second run: the cache is read);
- genzoo, store: the same recipe reading a store made beforehand by `genzoo prepare` at 64x64 (the `prepared`
  dataset, `data={name: prepared, root: <store>}`): batches are read from the level file, nothing is held in
  memory. The store's images are resized with Lanczos where the `celeba` dataset uses bilinear: the same shapes and
  counts, other pixel values.

Peak RSS is the child's ru_maxrss, read in the parent after the child with os.wait4 (the child's own rusage, which
is getrusage(RUSAGE_CHILDREN) of a parent that has only that child; the decoding pool's forked workers are
included). Inside the child, VmRSS / VmHWM (/proc/self/status) are read after the imports, once the dataset is
ready, after the first step, and at the end; genzoo's child also reads them around its dataset build and its
end-of-run checkpoint / sample grid. Prints Markdown tables (MB = 10^6 bytes).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "vae_celeba64.yaml"


def status() -> dict:
    """VmRSS, VmHWM, RssAnon and RssFile (mapped files) of this process in MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "RssFile:")):
                key, kb = line.split()[:2]
                out[key[:-1]] = int(kb) * 1024 / 1e6
    return out


class Marks:
    def __init__(self):
        self.items = []

    def __call__(self, what: str):
        self.items.append([what, status()])

    def dump(self, path: str):
        Path(path).write_text(json.dumps(self.items))


# -- the plain loop (torch-vae) -----------------------------------------------------------------------------------
def plain_child(folder: str, steps: int, batch: int, test_count: int, marks: Marks) -> dict:
    import torch
    import torch.nn.functional as F
    from PIL import Image

    from genzoo.models.vae import ConvVAE
    from genzoo.priors.gaussian import GaussianPrior

    marks("imports")

    class CelebAFolder(torch.utils.data.Dataset):
        """torchvision-style: file paths in memory, each image read and transformed from disk per item."""

        def __init__(self, root: str, size: int = 64):
            files = sorted(p for p in Path(root).rglob("*.jpg"))
            self.files, self.size = files[: len(files) - test_count], size

        def __len__(self):
            return len(self.files)

        def __getitem__(self, i):
            with Image.open(self.files[i]) as img:
                img = img.convert("RGB")
            w, h = img.size
            side = min(w, h)
            left, top = int(round((w - side) / 2.0)), int(round((h - side) / 2.0))
            img = img.crop((left, top, left + side, top + side)).resize((self.size, self.size), Image.BILINEAR)
            x = torch.from_numpy(__import__("numpy").asarray(img, dtype="uint8").copy())
            return x.permute(2, 0, 1).float().div_(255)  # ToTensor

    data = CelebAFolder(folder)
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=0, drop_last=True)
    marks("dataset")
    torch.manual_seed(0)
    model = ConvVAE((3, 64, 64), GaussianPrior(64, std=1.0), latent_dim=64, max_filters=128, layers=3)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    model.train()
    step = 0
    while step < steps:
        for x in loader:
            mean, log_var = model.posterior(x)
            z = mean + torch.randn_like(mean) * torch.exp(0.5 * log_var)
            recon = torch.sigmoid(model.decode_logits(z))
            kl = 0.5 * (log_var.exp() + mean.pow(2) - 1 - log_var).sum()
            loss = F.mse_loss(recon, x, reduction="sum") + kl
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step == 1:
                marks("first step")
            if step >= steps:
                break
    _ = loss.item()
    marks("end")
    return {"parameters": sum(p.numel() for p in model.parameters()), "train_images": len(data)}


# -- genzoo -------------------------------------------------------------------------------------------------------
def genzoo_child(root: str, steps: int, out_dir: str, marks: Marks, store: bool = False) -> dict:
    import torch  # noqa: F401

    from genzoo.core.recipe import load_recipe
    from genzoo.datasets import images as images_module
    from genzoo.train import trainer as trainer_module

    marks("imports")
    T = trainer_module.Trainer
    originals = {
        "_dataset": T._dataset,
        "_train_step": T._train_step,
        "save_checkpoint": T.save_checkpoint,
        "_sample_grid": T._sample_grid,
    }
    cached, decode = images_module.cached_arrays, images_module.decode_images
    calls = {"step": 0}

    def _dataset(self, section):
        marks("dataset build starts")
        out = originals["_dataset"](self, section)
        marks("dataset")
        return out

    def _train_step(self, x):
        out = originals["_train_step"](self, x)
        calls["step"] += 1
        if calls["step"] == 1:
            marks("first step")
        if calls["step"] == steps:
            marks("last step (before checkpoint, export, grid)")
        return out

    def save_checkpoint(self):
        originals["save_checkpoint"](self)
        marks("after checkpoint + export")

    def _sample_grid(self):
        originals["_sample_grid"](self)
        marks("after sample grid")

    def cached_arrays(*args, **kwargs):
        out = cached(*args, **kwargs)
        marks("decoded arrays ready (cache read or build)")
        return out

    def decode_images(*args, **kwargs):
        out = decode(*args, **kwargs)
        marks("decode done (before cache write)")
        return out

    T._dataset, T._train_step, T.save_checkpoint, T._sample_grid = (
        _dataset,
        _train_step,
        save_checkpoint,
        _sample_grid,
    )
    images_module.cached_arrays, images_module.decode_images = cached_arrays, decode_images
    data = f"data={{name: prepared, root: '{root}'}}" if store else f"data.root={root}"
    recipe = load_recipe(RECIPE, [data, f"train.steps={steps}", f"output_dir={out_dir}"])
    trainer = T(recipe)
    trainer.fit()
    marks("end")
    return {
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "train_images": len(trainer.data),
        "threads": trainer.threads,
    }


def child_main(args) -> None:
    marks = Marks()
    marks("start")
    if args.child == "plain":
        info = plain_child(args.folder, args.steps, args.batch, args.test_count, marks)
    else:
        info = genzoo_child(args.root, args.steps, args.out_dir, marks, store=args.child == "store")
    info["marks"] = marks.items
    Path(args.report).write_text(json.dumps(info))


# -- the parent ---------------------------------------------------------------------------------------------------
def run_child(argv: list[str], env: dict) -> tuple[dict, float, float]:
    """(the child's report, its peak RSS in MB from wait4, wall seconds)."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        report = f.name
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *argv, "--report", report], env=env, cwd=ROOT)
    _, code, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(code)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"child {argv} failed with {proc.returncode}")
    info = json.loads(Path(report).read_text())
    os.unlink(report)
    return info, usage.ru_maxrss * 1024 / 1e6, wall


def median_run(runs: list):
    """The run whose peak RSS is the median (the lower middle one for an even count)."""
    return sorted(runs, key=lambda r: r[1])[(len(runs) - 1) // 2]


def reading(info: dict, what: str, key: str = "VmRSS"):
    for name, st in info["marks"]:
        if name == what:
            return st[key]
    return None


def table(plain, genzoo, title: str) -> str:
    (p_info, p_peak, p_wall), (g_info, g_peak, g_wall) = plain, genzoo
    rows = [("peak RSS (ru_maxrss, parent after the child)", p_peak, g_peak)]
    for what in ("imports", "dataset", "first step"):
        rows.append((f"VmRSS after {what}", reading(p_info, what), reading(g_info, what)))
        rows.append((f"VmHWM after {what}", reading(p_info, what, "VmHWM"), reading(g_info, what, "VmHWM")))
    rows.append(("VmHWM at the end", reading(p_info, "end", "VmHWM"), reading(g_info, "end", "VmHWM")))
    rows.append(("wall s (child, incl. start-up)", p_wall, g_wall))
    lines = [f"**{title}**", "", "| what | plain | genzoo | ratio |", "|---|---:|---:|---:|"]
    for what, p, g in rows:
        unit = "" if what.startswith("wall") else " MB"
        lines.append(f"| {what} | {p:.0f}{unit} | {g:.0f}{unit} | {g / p:.2f}x |")
    return "\n".join(lines)


def steps_table(info: dict, title: str) -> str:
    lines = [
        f"**{title}**",
        "",
        "| mark | VmRSS MB | VmHWM MB | RssAnon MB | RssFile MB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, st in info["marks"]:
        lines.append(f"| {name} | {st['VmRSS']:.0f} | {st['VmHWM']:.0f} | {st['RssAnon']:.0f} | {st['RssFile']:.0f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--celeba", type=Path, default=ROOT.parent / "shared" / "data" / "celeba-10k")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each contender, alternating (median)")
    parser.add_argument("--source", choices=["folder", "archive"], default="folder", help="what genzoo reads")
    parser.add_argument("--child", choices=["plain", "genzoo", "store"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    parser.add_argument("--report", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--test-count", type=int, default=1000, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child_main(args)

    archive = args.celeba / "celeba-10k-89x109.tar.gz" if args.celeba.is_dir() else args.celeba
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with tempfile.TemporaryDirectory(prefix="vae-memory-") as tmp:
        with tarfile.open(archive) as tar:
            tar.extractall(tmp, filter="data")
        folder = next(p for p in Path(tmp).iterdir() if p.is_dir())
        root = str(folder if args.source == "folder" else archive)
        common = ["--steps", str(args.steps)]
        from genzoo.datasets.prepared import prepare_store

        store = Path(tmp) / "store"
        prepare_store(
            folder, store, max_resolution=64, min_resolution=64, test_count=args.test_count, say=lambda m: None
        )
        results = {"plain": [], "cold": [], "warm": [], "store": []}
        for r in range(args.repeat):  # alternating; each genzoo pair starts from an empty cache
            env["GENZOO_CACHE"] = str(Path(tmp) / f"cache-{r}")
            results["plain"].append(run_child(["--child", "plain", "--folder", str(folder), *common], env))
            for name in ("cold", "warm"):
                out_dir = str(Path(tmp) / f"runs-{name}-{r}")
                argv = ["--child", "genzoo", "--root", root, "--out-dir", out_dir, *common]
                results[name].append(run_child(argv, env))
            argv = ["--child", "store", "--root", str(store), "--out-dir", str(Path(tmp) / f"runs-store-{r}"), *common]
            results["store"].append(run_child(argv, env))
        peaks = {k: [round(peak) for _, peak, _ in v] for k, v in results.items()}
        plain, runs = median_run(results["plain"]), {k: median_run(results[k]) for k in ("cold", "warm", "store")}
        if plain[0]["parameters"] != runs["cold"][0]["parameters"]:
            raise SystemExit(f"networks differ: {plain[0]['parameters']} vs {runs['cold'][0]['parameters']}")
    load = os.getloadavg()
    cmd = "OMP_NUM_THREADS=1 python bench/vae_memory.py"
    cmd += f" --steps {args.steps} --repeat {args.repeat} --source {args.source}"
    print(
        f"`{cmd}`: conv VAE 64x64, batch 128, {plain[0]['train_images']} training images (CelebA subset), "
        f"{args.steps} steps, {plain[0]['parameters']:,} parameters; genzoo reads the {args.source}; "
        f"{platform.processor() or platform.machine()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n"
    )
    print(f"peak RSS of each run, MB: {json.dumps(peaks)}; the tables show the run with the median peak\n")
    titles = {
        "cold": "genzoo, cold decode cache",
        "warm": "genzoo, warm decode cache",
        "store": "genzoo, prepared store",
    }
    for name, title in titles.items():
        print(table(plain, runs[name], title) + "\n")
    print(steps_table(plain[0], "plain: marks") + "\n")
    for name, title in titles.items():
        print(steps_table(runs[name][0], f"{title}: marks") + "\n")


if __name__ == "__main__":
    main()
