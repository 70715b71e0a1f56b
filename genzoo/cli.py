"""The `genzoo` command. Only typer is imported at the top: torch loads inside the commands that need it."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    help="genzoo: train, sample, evaluate and share generative autoencoders from YAML recipes.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
_state = {"debug": False}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")):
    _state["debug"] = debug


def _console(stderr=False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def friendly(fn):
    """Turn a GenzooError into one red line and exit 1 (the traceback only with --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from genzoo.errors import GenzooError

        try:
            return fn(*args, **kwargs)
        except GenzooError as exc:
            if _state["debug"]:
                raise
            _console(stderr=True).print(f"[bold red]error:[/] {exc}", soft_wrap=True, markup=True)
            raise typer.Exit(1)
        except KeyboardInterrupt:
            _console(stderr=True).print("stopped; run the same command again to resume from the last checkpoint")
            raise typer.Exit(130)

    return wrapper


def _device(device: Optional[str]) -> str:
    import torch

    return device or ("cuda" if torch.cuda.is_available() else "cpu")


@app.command()
@friendly
def train(
    recipe: Path = typer.Argument(..., help="A recipe YAML, e.g. recipes/quickstart.yaml."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Dotted overrides: train.batch_size=64 prior.std=5"),
):
    """Train the model a recipe describes; starting the same run again resumes it from its last checkpoint."""
    from genzoo.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    console = _console()
    resolved = load_recipe(recipe, overrides or [])
    run_dir = Trainer(resolved, console=console).fit()
    if _is_main():
        console.print(f"done: {run_dir} (model in {run_dir / 'model'}, log in {run_dir / 'metrics.jsonl'})")


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


@app.command()
@friendly
def sample(
    source: Path = typer.Argument(..., help="A run folder (runs/<name>) or a model folder."),
    count: int = typer.Option(64, "--count", "-n", help="How many images."),
    out: Optional[Path] = typer.Option(None, "--out", help="Grid PNG (default: <source>/samples.png)."),
    images_dir: Optional[Path] = typer.Option(None, "--images-dir", help="Also write each image as a PNG here."),
    seed: int = typer.Option(0, help="Seed for the codes."),
    nrow: Optional[int] = typer.Option(None, help="Images per grid row."),
    batch_size: int = typer.Option(256, help="Images decoded at once."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when present)."),
):
    """Draw codes from the prior and decode them: a grid PNG and/or a folder of images."""
    import torch

    import genzoo
    from genzoo.errors import GenzooError
    from genzoo.images import save_grid, save_images

    if count < 1:
        raise GenzooError(f"--count must be at least 1, got {count}", "pass a positive count")
    model = genzoo.load(source, device=_device(device))
    g = torch.Generator().manual_seed(seed)
    images = torch.cat([model.sample(min(batch_size, count - i), generator=g).cpu() for i in range(0, count, batch_size)])
    out = out or Path(source) / "samples.png"
    save_grid(images[: min(count, 256)], out, nrow=nrow)
    written = [str(out)]
    if images_dir:
        save_images(images, images_dir)
        written.append(f"{count} images in {images_dir}")
    _console().print("wrote " + ", ".join(written))


def _dataset_for(model, split: str, data_root: Optional[str]):
    from genzoo.errors import GenzooError
    from genzoo.registry import DATASETS, build

    data = dict(model.config.get("data") or {})
    if not data:
        raise GenzooError("this model's config.json names no dataset", "it was not trained by genzoo train")
    if data_root:
        data["root"] = data_root
    dataset, _ = build(DATASETS, data, "data", split=split)
    return dataset


@app.command()
@friendly
def reconstruct(
    source: Path = typer.Argument(..., help="A run folder or a model folder."),
    split: str = typer.Option("test", help="Dataset split to reconstruct."),
    count: int = typer.Option(16, "--count", "-n", help="How many images."),
    out: Optional[Path] = typer.Option(None, "--out", help="PNG (default: <source>/reconstructions.png)."),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda."),
):
    """Originals (top row of each pair) above their reconstructions."""
    import torch

    import genzoo
    from genzoo.datasets.base import to_unit_float
    from genzoo.images import save_grid

    model = genzoo.load(source, device=_device(device))
    data = _dataset_for(model, split, data_root)
    x = to_unit_float(data.__getitems__(list(range(min(count, len(data))))).to(next(model.parameters()).device))
    r = model.reconstruct(x)
    nrow = min(len(x), 16)
    pairs = torch.cat([torch.cat([x[i:i + nrow], r[i:i + nrow]]) for i in range(0, len(x), nrow)])
    out = out or Path(source) / "reconstructions.png"
    save_grid(pairs.cpu(), out, nrow=nrow)
    _console().print(f"wrote {out}")


@app.command("eval")
@friendly
def evaluate(
    source: Path = typer.Argument(..., help="A run folder or a model folder."),
    metrics: str = typer.Option("reconstruction", help="Comma-separated metric names (`genzoo list metrics`)."),
    split: str = typer.Option("test", help="Dataset split to evaluate on."),
    limit: Optional[int] = typer.Option(None, help="Evaluate on at most this many images."),
    out: Optional[Path] = typer.Option(None, "--out", help="JSON file (default: <source>/eval.json)."),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda."),
):
    """Compute metrics of a trained model; writes JSON and prints a table."""
    import genzoo
    from genzoo.io import write_json
    from genzoo.registry import METRICS

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    fns = {name: METRICS.get(name) for name in names}  # unknown names fail before any work
    model = genzoo.load(source, device=_device(device))
    data = _dataset_for(model, split, data_root)
    results = {}
    for name, fn in fns.items():
        values = fn(model, data, limit=limit)
        results[name] = {**values, "protocol": {"split": split, "dataset": model.config["data"]["name"],
                                                "limit": limit, "model_step": model.extra_config.get("step")}}
    out = out or Path(source) / "eval.json"
    write_json(out, results)
    from rich.table import Table

    table = Table("metric", "value")
    for name, values in results.items():
        for k, v in values.items():
            if k != "protocol":
                table.add_row(f"{name}.{k}", f"{v:.6g}" if isinstance(v, float) else str(v))
    console = _console()
    console.print(table)
    console.print(f"wrote {out}")


@app.command("list")
@friendly
def list_components(kind: Optional[str] = typer.Argument(None, help="priors, models, datasets or metrics.")):
    """Everything registered: built-ins and plugins, with where each came from."""
    from rich.table import Table

    from genzoo.errors import GenzooError, did_you_mean
    from genzoo.registry import REGISTRIES

    if kind is not None and kind not in REGISTRIES:
        raise GenzooError(f"unknown kind '{kind}'{did_you_mean(kind, REGISTRIES)}", f"use one of: {', '.join(REGISTRIES)}")
    table = Table("kind", "name", "source", "description")
    for k, registry in REGISTRIES.items():
        if kind in (None, k):
            for entry in registry.entries():
                table.add_row(registry.kind, entry.name, entry.source, entry.summary)
    _console().print(table)


def main():
    import warnings

    # Warnings (a broken plugin, say) as one readable line, not a source excerpt.
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    app(prog_name="genzoo")


if __name__ == "__main__":
    sys.exit(main())
