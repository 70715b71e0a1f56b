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
    context_settings={"max_content_width": 119},
    rich_markup_mode=None,  # click's plain help: this typer's rich panels print flags as taking a <bool> value
)
_state = {"debug": False}


def _print_version(value: bool):
    if value:
        from genzoo.core.version import __version__

        typer.echo(f"genzoo {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks."),
    version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
):
    _state["debug"] = debug


def _console(stderr=False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def friendly(fn):
    """Every failure is one red line and exit 1; the traceback only with --debug. A GenzooError names its problem and
    fix; anything else (a bug, a full disk, an allocation failure) is named with the command and the exception."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from genzoo.core.errors import GenzooError

        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            _console(stderr=True).print("stopped; run the same command again to resume from the last checkpoint")
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:
            if _state["debug"]:
                raise
            if isinstance(exc, GenzooError):
                line = str(exc)
            else:
                import click

                context = click.get_current_context(silent=True)
                command = context.info_name if context is not None else fn.__name__
                line = f"genzoo {command} failed: {_describe_exception(exc)}; rerun with --debug for the traceback"
            _error_line(line)
            raise typer.Exit(1) from None

    return wrapper


def _describe_exception(exc: Exception) -> str:
    """One line for an unexpected exception; disk and permission problems say what to do."""
    import errno

    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device while writing '{exc.filename or '?'}': free disk space and run it again"
    if isinstance(exc, PermissionError):
        return f"permission denied for '{exc.filename or '?'}': choose a folder you can write to"
    if isinstance(exc, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower():
        return f"out of memory ({text or type(exc).__name__}): lower the batch size or the model's size"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _error_line(line: str) -> None:
    from rich.text import Text

    message = Text("error: ", style="bold red")
    message.append(line)  # plain text: brackets in paths or values are not markup
    _console(stderr=True).print(message, soft_wrap=True)


def _device(device: Optional[str]) -> str:
    import torch

    from genzoo.core.errors import GenzooError

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        kind = torch.device(device).type
    except RuntimeError:
        raise GenzooError(f"--device '{device}' is not a device", "write cpu, cuda or cuda:N") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise GenzooError(f"--device {device}: this machine has no CUDA GPU torch can use", "use --device cpu")
    if (
        kind == "cuda"
        and torch.device(device).index is not None
        and torch.device(device).index >= torch.cuda.device_count()
    ):
        raise GenzooError(
            f"--device {device}: there are {torch.cuda.device_count()} GPUs", "choose an index below that"
        )
    return device


@app.command()
@friendly
def train(
    recipe: Path = typer.Argument(..., help="A recipe YAML, e.g. recipes/quickstart.yaml."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Dotted overrides: train.batch_size=64 prior.std=5"),
):
    """Train the model a recipe describes; starting the same run again resumes it from its last checkpoint."""
    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    console = _console()
    resolved = load_recipe(recipe, overrides or [])
    run_dir = Trainer(resolved, console=console).fit()
    if _is_main():  # fit() returns only once model/ holds the final step's export
        console.print(f"done: {run_dir} (model in {run_dir / 'model'}, log in {run_dir / 'metrics.jsonl'})")


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


@app.command()
@friendly
def sample(
    source: str = typer.Argument(
        ..., help="A run folder, a model folder, or a Hub model: hf://org/name[@rev] (or org/name)."
    ),
    count: int = typer.Option(64, "--count", "-n", help="How many images."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Grid PNG (default: <source>/samples.png; ./samples.png for a Hub model)."
    ),
    images_dir: Optional[Path] = typer.Option(None, "--images-dir", help="Also write each image as a PNG here."),
    seed: int = typer.Option(0, help="Seed for the codes."),
    nrow: Optional[int] = typer.Option(None, help="Images per grid row."),
    batch_size: int = typer.Option(256, help="Images decoded at once."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (default: cuda when present)."),
    sampler: str = typer.Option("prior", help="Draw codes from this fitted sampler instead (genzoo fit-sampler)."),
):
    """Draw codes from the prior (or a fitted sampler) and decode them: a grid PNG and/or a folder of images."""
    import torch

    import genzoo
    from genzoo.core.errors import GenzooError
    from genzoo.core.grids import save_grid, save_images

    if count < 1 or batch_size < 1:
        raise GenzooError(
            f"--count and --batch-size must be at least 1, got {count}, {batch_size}", "pass positive values"
        )
    model = genzoo.load(source, device=_device(device), sampler=sampler)
    g = torch.Generator().manual_seed(seed)
    shown = min(count, 256)  # the grid holds the first 256; the rest only go to --images-dir
    total = count if images_dir else shown
    grid = []
    for start in range(0, total, batch_size):  # streamed: one batch in memory at a time
        images = model.sample(min(batch_size, total - start), generator=g).cpu()
        if start < shown:
            grid.append(images[: shown - start])
        if images_dir:
            save_images(images, images_dir, start=start)
    out = out or _default_out(source, "samples.png")
    save_grid(torch.cat(grid), out, nrow=nrow)
    written = [str(out)]
    if images_dir:
        written.append(f"{count} images in {images_dir}")
    _console().print("wrote " + ", ".join(written))


def _reporter(console, status, verb: str):
    """A progress callback: the spinner's text on a terminal; off one (a log file, a cluster job) a line per step,
    with the time, so that a long evaluation is seen to move."""
    import time

    start = time.monotonic()

    def report(what: str):
        status.update(f"{verb} {what}")
        if not console.is_terminal:
            console.print(f"[{time.monotonic() - start:7.1f} s] {verb} {what}", markup=False)

    return report


def _default_out(source: str, name: str) -> Path:
    """Next to a local source; in the current folder for a Hub source (the Hugging Face cache is never written)."""
    from genzoo.modelfile.hub import parse_hub_source

    return Path(name) if parse_hub_source(source) else Path(source) / name


def _dataset_for(model, split: str, data_root: Optional[str]):
    from genzoo.metrics.evaluate import dataset_for

    return dataset_for(model, split, data_root)


def _print_report(console, report: dict, wrote: str) -> None:
    from rich.table import Table

    if not console.is_terminal:  # a log file: Markdown rows, not a box squeezed to 80 columns
        for row in [report["header"], ["---"] * len(report["header"]), *report["rows"]]:
            console.print("| " + " | ".join(row) + " |", markup=False, crop=False, overflow="ignore")
        console.print(wrote, markup=False)
        return
    table = Table(*report["header"])
    for row in report["rows"]:
        table.add_row(*row)
    console.print(table)
    console.print(wrote)


@app.command()
@friendly
def reconstruct(
    source: str = typer.Argument(
        ..., help="A run folder, a model folder, or a Hub model: hf://org/name[@rev] (or org/name)."
    ),
    split: str = typer.Option("test", help="Dataset split to reconstruct."),
    count: int = typer.Option(16, "--count", "-n", help="How many images."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="PNG (default: <source>/reconstructions.png; ./ for a Hub model)."
    ),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda."),
):
    """Originals (top row of each pair) above their reconstructions."""
    import genzoo
    from genzoo.analysis.report import reconstruction_grid

    model = genzoo.load(source, device=_device(device))
    out = out or _default_out(source, "reconstructions.png")
    reconstruction_grid(model, _dataset_for(model, split, data_root), out, count=count, row=16)
    _console().print(f"wrote {out}")


@app.command()
@friendly
def interpolate(
    source: str = typer.Argument(
        ..., help="A run folder, a model folder, or a Hub model: hf://org/name[@rev] (or org/name)."
    ),
    inputs: Optional[List[str]] = typer.Argument(
        None,
        help="End points: image files, or dataset indices with --split; 2 for a line, 4 for --corners (top-left, "
        "top-right, bottom-left, bottom-right). None: random codes from the prior.",
    ),
    corners: bool = typer.Option(
        False,
        "--corners",
        help="N x N grid, bilinear in code space between four corners (the MBRCE-AAE README's figure).",
    ),
    steps: int = typer.Option(8, "--steps", help="Images along the line, or the side N of the --corners grid."),
    split: Optional[str] = typer.Option(
        None, "--split", help="Read the inputs as indices into this dataset split (train or test)."
    ),
    seed: int = typer.Option(0, help="Seed for random end points."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="PNG (default: <source>/interpolation.png; ./ for a Hub model)."
    ),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda."),
):
    """Decode codes interpolated between images (or random codes): a line of --steps images, or a --corners grid."""
    import torch

    import genzoo
    from genzoo.analysis.interpolate import interpolate as run_interpolation
    from genzoo.analysis.interpolate import load_images
    from genzoo.core.errors import GenzooError
    from genzoo.core.grids import save_grid
    from genzoo.datasets.base import to_unit_float
    from genzoo.models.base import prior_codes

    model = genzoo.load(source, device=_device(device))
    dev = next(model.parameters()).device
    inputs, need = inputs or [], 4 if corners else 2
    if inputs and len(inputs) != need:
        raise GenzooError(
            f"{'--corners needs' if corners else 'a line needs'} {need} inputs, got {len(inputs)}",
            f"give {need} images or indices, or none for random codes",
        )
    if not inputs:
        codes = prior_codes(model, need, seed).to(dev)
    else:
        if split is not None:
            data = _dataset_for(model, split, data_root)
            if not all(i.isdigit() and int(i) < len(data) for i in inputs):
                raise GenzooError(
                    f"with --split the inputs are indices from 0 to {len(data) - 1}, got {' '.join(inputs)}",
                    "give image indices, or drop --split to give image files",
                )
            x = to_unit_float(data.__getitems__([int(i) for i in inputs]))
        else:
            x = load_images(inputs, model.image_shape)
        with torch.no_grad():
            codes = model.encode(x.to(dev))
    images = run_interpolation(model, codes, steps, corners=corners)
    out = out or _default_out(source, "interpolation.png")
    save_grid(images, out, nrow=steps)
    _console().print(f"wrote {out} ({f'{steps} x {steps} grid' if corners else f'{steps} images'})")


@app.command()
@friendly
def stylemix(
    source: str = typer.Argument(
        ..., help="A run or model folder, or a Hub model, of a style-based model (style_alae)."
    ),
    split: str = typer.Option("test", help="Dataset split of the source and target images."),
    sources: int = typer.Option(5, "--sources", help="Source images (top row): the split's first ones."),
    targets: int = typer.Option(5, "--targets", help="Target images (left column): the ones after the sources."),
    kinds: str = typer.Option("coarse,middle,fine", help="Comma-separated: coarse (4-8), middle (16-32), fine (64+)."),
    seed: int = typer.Option(0, help="Seed for the generator's noise inputs."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="Folder for stylemix-<kind>.png (default: <source>/stylemix; ./stylemix for a Hub model)."
    ),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda."),
):
    """Style mixing grids (the MBRCE-AAE README's figure): each target image with a source image's coarse, middle
    or fine styles, one PNG per kind."""
    import genzoo
    from genzoo.analysis.stylemix import check_style_model, write_style_mixes

    model = genzoo.load(source, device=_device(device))
    check_style_model(model)
    data = _dataset_for(model, split, data_root)
    out = out or _default_out(source, "stylemix")
    written, skipped = write_style_mixes(
        model, data, out, sources, targets, [k.strip() for k in kinds.split(",") if k.strip()], seed
    )
    note = (
        f" (skipped {', '.join(skipped)}: no such levels at {model.image_shape[-1]}x{model.image_shape[-1]})"
        if skipped
        else ""
    )
    _console().print(f"wrote {', '.join(map(str, written))}{note}")


@app.command()
@friendly
def attribute(
    source: str = typer.Argument(..., help="A run or model folder of a model with attribute change (lbae)."),
    name: str = typer.Argument(
        ..., help="Attribute: a column name or index of the labels (CelebA: Eyeglasses, 15), or a class."
    ),
    remove: bool = typer.Option(False, "--remove", help="Remove the attribute instead of adding it."),
    threshold: float = typer.Option(0.25, help="Change the code bits whose mean-code difference exceeds this."),
    steps: int = typer.Option(6, help="Images between each original and its changed version (0: none)."),
    count: int = typer.Option(8, "--count", "-n", help="How many images to change (from --split)."),
    split: str = typer.Option("test", help="Split of the images to change."),
    fit_split: str = typer.Option("train", help="Split whose labels define the attribute's direction."),
    limit: Optional[int] = typer.Option(None, help="Use at most this many --fit-split images for the direction."),
    out: Optional[Path] = typer.Option(None, "--out", help="PNG (default: <source>/attribute-<name>.png)."),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda."),
):
    """Add or remove a labelled attribute (the LBAE paper's attribute change): one row per image, from its
    reconstruction to the changed image, the code bits most tied to the attribute flipped first."""
    import genzoo
    from genzoo.core.errors import GenzooError, did_you_mean
    from genzoo.core.grids import save_grid
    from genzoo.datasets.base import to_unit_float

    model = genzoo.load(source, device=_device(device))
    if not hasattr(model, "attribute_direction"):
        raise GenzooError(f"model '{model.config['model']['name']}' has no attribute change", "use an lbae model")
    fit = _dataset_for(model, fit_split, data_root)
    names = getattr(fit, "label_names", None) or []
    if name.isdigit():
        index = int(name)
    elif name in names:
        index = names.index(name)
    else:
        raise GenzooError(
            f"no attribute '{name}' in the labels of {fit.name}{did_you_mean(name, names)}",
            f"give an index or one of: {', '.join(names) or '(the labels have no names)'}",
        )
    direction = model.attribute_direction(fit, attribute=index, limit=limit)
    data = _dataset_for(model, split, data_root)
    x = to_unit_float(data.__getitems__(list(range(min(count, len(data))))).to(next(model.parameters()).device))
    images = model.change_attribute(x, direction, threshold=threshold, remove=remove, steps=steps)
    if steps <= 0:
        images = torch_stack_pairs(model.reconstruct(x), images)
    out = out or _default_out(source, f"attribute-{name}.png")
    save_grid(images.flatten(0, 1).cpu(), out, nrow=images.shape[1])
    bits = int((direction.abs() > threshold).sum())
    _console().print(
        f"wrote {out} ({'removed' if remove else 'added'} '{name}': {bits} of {len(direction)} code bits set)"
    )


def torch_stack_pairs(a, b):
    """(N, ...) and (N, ...) -> (N, 2, ...): each reconstruction beside its changed version."""
    import torch

    return torch.stack([a, b], dim=1)


@app.command("fit-sampler")
@friendly
def fit_sampler(
    source: str = typer.Argument(..., help="A run folder or a model folder."),
    sampler: str = typer.Option(
        "gmm", "--sampler", help="gaussian, gmm, flow, or a plugin's (`genzoo list samplers`)."
    ),
    options: Optional[List[str]] = typer.Argument(None, help="Sampler options: gmm.components=20 (or components=20)."),
    name: Optional[str] = typer.Option(None, help="Save as samplers/<name> (default: the sampler's name)."),
    limit: Optional[int] = typer.Option(None, help="Fit on the first this many training images (default: all)."),
    seed: int = typer.Option(0, help="Seed of the held-out split and of the fit."),
    codes: str = typer.Option("mean", help="mean: encoder outputs (a VAE's posterior means); draw: VAE draws."),
    held_out: float = typer.Option(0.1, help="Share of the codes kept out of the fit, scored for the record."),
    overwrite: bool = typer.Option(False, help="Replace a sampler already fitted under this name."),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
):
    """Fit a density to a trained model's training codes (ex-post); `sample`/`eval --sampler NAME` then use it."""
    import yaml

    import genzoo
    from genzoo.core.errors import GenzooError

    opts = {}
    for item in options or []:
        key, sep, value = item.partition("=")
        key = key.removeprefix(f"{sampler}.")
        if not sep or not key or "." in key:
            raise GenzooError(f"sampler option '{item}' is not KEY=VALUE", f"e.g. {sampler}.components=20")
        opts[key] = yaml.safe_load(value)  # typed as on the recipe command line, then checked by its annotation
    folder, record = genzoo.fit_sampler(
        source,
        sampler,
        opts,
        name=name,
        limit=limit,
        seed=seed,
        codes=codes,
        held_out=held_out,
        overwrite=overwrite,
        data_root=data_root,
    )
    _console().print(
        f"fitted '{sampler}' on {record['fit_codes']} codes in {record['fit_seconds']:.1f} s: log-likelihood "
        f"{record['log_likelihood_fit']:.3f} (fit), {record['log_likelihood_held_out']:.3f} "
        f"({record['held_out_codes']} held-out codes); wrote {folder}",
        markup=False,
    )


@app.command()
@friendly
def curve(
    run: str = typer.Argument(..., help="A run folder (its kept checkpoints and its exported model)."),
    metrics: str = typer.Option("fid", help="Comma-separated metric names."),
    split: str = typer.Option("test", help="Dataset split to evaluate on."),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
    options: Optional[List[str]] = typer.Argument(None, help="Metric options: fid.count=2000 fid.bootstrap=20"),
):
    """Learning curve: metrics at every kept checkpoint of a run and at its export; writes RUN/curve.json."""
    from genzoo.analysis.curves import checkpoint_curve
    from genzoo.metrics.evaluate import format_value, parse_metric_options, resolve_metrics, scalar_items

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    opts = parse_metric_options(options, names)
    resolve_metrics(names, opts)
    console = _console()
    with console.status("evaluating") as status:
        rows = checkpoint_curve(
            run, names, opts, split=split, data_root=data_root, progress=_reporter(console, status, "evaluating")
        )
    for row in rows:
        values = ", ".join(f"{k} {format_value(v)}" for k, v in scalar_items(row["results"]))
        console.print(f"step {row['step']}: {values}", markup=False)
    console.print(f"wrote {Path(run) / 'curve.json'}")


@app.command("eval")
@friendly
def evaluate(
    source: str = typer.Argument(
        ..., help="A run folder, a model folder, or a Hub model: hf://org/name[@rev] (or org/name)."
    ),
    metrics: str = typer.Option("reconstruction", help="Comma-separated metric names (`genzoo list metrics`)."),
    split: str = typer.Option("test", help="Dataset split to evaluate on."),
    limit: Optional[int] = typer.Option(None, help="Evaluate on at most this many images."),
    out: Optional[Path] = typer.Option(
        None, "--out", help="JSON file (default: <source>/eval.json; ./eval.json for a Hub model)."
    ),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda."),
    sampler: str = typer.Option("prior", help="Draw the samples' codes from this fitted sampler (fit-sampler)."),
    options: Optional[List[str]] = typer.Argument(
        None, help="Metric options: fid.mode=legacy_tensorflow fid.source=reconstructions parzen.samples=1000"
    ),
):
    """Compute metrics of a trained model; writes JSON (each result with its protocol) and prints a table.

    Metrics: reconstruction, prior_match, fid, kid, precision_recall, prd, parzen, ppl (`genzoo list metrics`).
    """
    import genzoo
    from genzoo.core.io import write_json
    from genzoo.metrics.evaluate import evaluate as run_metrics
    from genzoo.metrics.evaluate import parse_metric_options, protocol_lines, resolve_metrics, results_table
    from genzoo.modelfile.folder import model_revision

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    opts = parse_metric_options(options, names)
    resolve_metrics(names, opts)  # unknown metrics and options fail before any work
    model = genzoo.load(source, device=_device(device), sampler=sampler)
    console = _console()
    with console.status("evaluating") as status:
        results = run_metrics(
            model,
            names,
            opts,
            split=split,
            limit=limit,
            data_root=data_root,
            revision=model_revision(model, source),
            progress=_reporter(console, status, "evaluating"),
        )
    out = out or _default_out(source, "eval.json")
    write_json(out, results)
    console.print(results_table(results))
    for line in protocol_lines(results):
        console.print(line, markup=False)
    console.print(f"wrote {out}")


@app.command()
@friendly
def compare(
    sources: List[str] = typer.Argument(
        ...,
        help="Run or model folders (or Hub models) to compare, then any metric options: runs/a runs/b fid.count=1000",
    ),
    metrics: str = typer.Option("reconstruction", help="Comma-separated metric names, the same for every model."),
    split: str = typer.Option("test", help="Dataset split to evaluate on."),
    limit: Optional[int] = typer.Option(None, help="Evaluate on at most this many images."),
    out: Path = typer.Option(
        Path("compare"), "--out", help="Report folder: report.md, report.html, results.json, plots/, grids/."
    ),
    samples: int = typer.Option(64, help="Samples in each model's grid."),
    title: str = typer.Option("genzoo compare", help="Report title."),
    data_root: Optional[str] = typer.Option(None, help="Where the dataset lives, if not where it was trained."),
    device: Optional[str] = typer.Option(None, help="cpu or cuda."),
    arms: str = typer.Option(
        "auto", help="auto: group <arm>-s<seed> runs into arms (CIs, pairwise tests); none: one row per run."
    ),
):
    """Evaluate several models the same way; write a Markdown + static HTML report with the metrics table (per
    arm: mean, std, 95 % CI; pairwise Welch tests; per-run rows; a generated conclusions paragraph),
    metric-over-training plots from metrics.jsonl, and sample / reconstruction grids side by side."""
    import genzoo
    from genzoo.analysis.report import compare as write_comparison
    from genzoo.metrics.evaluate import parse_metric_options

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    option_items = [s for s in sources if "=" in s and not Path(s).exists()]
    models = [s for s in sources if s not in option_items]
    if not models:
        from genzoo.core.errors import GenzooError

        raise GenzooError("no models to compare", "name run or model folders: genzoo compare runs/a runs/b")
    opts = parse_metric_options(option_items, names)
    console = _console()
    with console.status("comparing") as status:
        report = write_comparison(
            models,
            names,
            opts,
            out,
            split=split,
            limit=limit,
            data_root=data_root,
            device=_device(device),
            samples=samples,
            title=title,
            load=genzoo.load,
            progress=_reporter(console, status, "evaluating"),
            arms=arms,
        )
    if report.get("conclusions"):
        console.print(report["conclusions"], markup=False)
    if report.get("warning"):
        console.print(report["warning"], markup=False)
    _print_report(
        console,
        report,
        f"wrote {report['markdown']}, {report['html']}, {report['json']}, {len(report['plots'])} plots",
    )


@app.command()
@friendly
def study(
    spec: Path = typer.Argument(..., help="A study YAML, e.g. recipes/studies/mbrce_vs_baselines_mnist.yaml."),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="Dotted overrides for every recipe: data.root=/path/to/mnist"
    ),
    device: Optional[str] = typer.Option(None, help="cpu or cuda (evaluation)."),
    jobs: int = typer.Option(1, help="Runs at once, each in its own process (the CPU threads split between them)."),
    shard: Optional[str] = typer.Option(None, help="i/k: run only every k-th run of the grid, from the i-th."),
    merge: bool = typer.Option(False, "--merge", help="Train nothing: write the report from the shards' results."),
):
    """Train every model of a study over its seeds with one budget, evaluating each run as soon as it is trained
    (its result written at once), and write the report: per arm mean, std and 95 % CI, pairwise Welch tests,
    per-run rows, conclusions. A stopped study started again redoes no finished run or evaluation."""
    from genzoo.analysis.study import run_study

    console = _console()
    report = run_study(
        spec,
        overrides or [],
        device=_device(device),
        console=console if jobs <= 1 else None,
        progress=lambda what: console.print(what, markup=False),
        jobs=jobs,
        shard=shard,
        merge=merge,
    )
    if "pending" in report:
        console.print(
            f"shard done; {len(report['pending'])} runs still have no result: run their shards, then "
            f"genzoo study {spec} --merge",
            markup=False,
        )
        return
    console.print(report["conclusions"], markup=False)
    _print_report(console, report, f"wrote {report['markdown']}, {report['html']}, {report['json']}")


@app.command()
@friendly
def prepare(
    source: Path = typer.Argument(
        ...,
        help="A folder or archive of images, or a recipe YAML whose data block is "
        "{name: prepared, root, source, ...}.",
    ),
    rest: Optional[List[str]] = typer.Argument(
        None, help="OUT, the store folder (after images); dotted overrides (after a recipe)."
    ),
    max_resolution: Optional[int] = typer.Option(None, help="Top level, e.g. 256 (a recipe: data.resolution)."),
    min_resolution: Optional[int] = typer.Option(
        None, help="Lowest level (default 4; a recipe: its train.growth.start_resolution)."
    ),
    test_count: Optional[int] = typer.Option(
        None, help="The LAST this many images (natural name order) are the test split (default 1000)."
    ),
    train_count: Optional[int] = typer.Option(
        None, help="The first this many are the training split (default: all the others)."
    ),
    skip_bad: bool = typer.Option(
        False, "--skip-bad", help="Leave undecodable files out (listed in the manifest) instead of stopping."
    ),
    verify: bool = typer.Option(
        False, "--verify", help="Then check every level file against its sha256 in the manifest."
    ),
    workers: Optional[int] = typer.Option(None, help="Decoding processes (default: up to 8 for 2048 images or more)."),
):
    """Turn a folder of images into a multi-resolution store (one uint8 array per level) for progressive growing.
    Resumable (run it again after a stop), reused when already made, checked with --verify."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from genzoo.core.errors import GenzooError
    from genzoo.datasets.prepared import prepare_store, verify_store

    rest = rest or []
    if source.suffix in (".yaml", ".yml"):
        given = [
            f"--{k.replace('_', '-')}"
            for k, v in (("max_resolution", max_resolution), ("test_count", test_count), ("train_count", train_count))
            if v is not None
        ]
        if given:
            raise GenzooError(
                f"{', '.join(given)} with a recipe: the recipe's data block sets these",
                "set data.resolution / data.test_count / data.train_count in it, or override: data.test_count=500",
            )
        from genzoo.datasets.prepared import store_options_from_recipe

        args = store_options_from_recipe(source, rest, min_resolution)
    else:
        if len(rest) != 1 or max_resolution is None:
            raise GenzooError(
                "genzoo prepare needs the images, the store folder and --max-resolution",
                "genzoo prepare IMAGES OUT --max-resolution 256 (or genzoo prepare RECIPE.yaml)",
            )
        args = dict(
            source=source,
            out=Path(rest[0]),
            max_resolution=max_resolution,
            min_resolution=min_resolution or 4,
            test_count=1000 if test_count is None else test_count,
            train_count=train_count,
        )
    import time

    console = _console()
    columns = (TextColumn("preparing"), BarColumn(), MofNCompleteColumn(), TextColumn("images"), TimeRemainingColumn())
    last = [time.monotonic()]

    def report(done, total):  # a bar on a terminal; in a log, a line every 30 s
        bar.update(task, completed=done, total=total)
        if not console.is_terminal and time.monotonic() - last[0] > 30:
            last[0] = time.monotonic()
            console.print(f"preparing: {done} of {total} images")

    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("prepare", total=None)
        result = prepare_store(
            **args,
            skip_bad=skip_bad,
            workers=workers,
            progress=report,
            say=lambda message: console.print(message, markup=False),
        )
    split, out = result["split"], args["out"]
    if not result["reused"]:
        rate = f", {result['decoded'] / result['seconds']:.0f} images/s" if result["decoded"] else ""
        console.print(
            f"prepared {out}: {split['train']['count']} train + {split['test']['count']} test images at "
            f"{', '.join(map(str, result['resolutions']))} in {result['seconds']:.1f} s{rate}"
        )
    if result["skipped"]:
        console.print(
            f"skipped {len(result['skipped'])} undecodable files (listed in {out / 'manifest.json'}): "
            + ", ".join(result["skipped"][:5])
            + (" ..." if len(result["skipped"]) > 5 else "")
        )
    if verify:
        verify_store(out)
        console.print(f"verified: every level of {out} matches its sha256")


@app.command()
@friendly
def push(
    source: Path = typer.Argument(..., help="A run folder (runs/<name>) or a model folder."),
    repo: str = typer.Option(..., "--repo", help="Hub repo id org/name; created when missing."),
    private: bool = typer.Option(
        False, "--private", help="Create the repo private (an existing repo keeps its visibility)."
    ),
    revision: Optional[str] = typer.Option(
        None, "--revision", help="Branch to push to (created from main when missing)."
    ),
    message: Optional[str] = typer.Option(None, "--message", "-m", help="Commit message."),
    dry_run: Optional[Path] = typer.Option(
        None, "--dry-run", help="Write the upload (model card included) into this folder; send nothing."
    ),
    license: Optional[str] = typer.Option(
        None, "--license", help="The weights' licence (a Hub licence id); default: the training data's, else other."
    ),
):
    """Upload a trained model to the Hugging Face Hub: weights, config, recipe, samples, metrics and a model card."""
    from genzoo.modelfile.hub import push as push_to_hub

    console = _console()
    with console.status(f"pushing {source} to {repo}"):
        result = push_to_hub(
            source, repo, private=private, revision=revision, commit_message=message, dry_run=dry_run, license=license
        )
    for note in result["notes"]:
        console.print(f"note: {note}")
    files = ", ".join(result["files"])
    if dry_run is not None:
        console.print(f"dry run: wrote {files} to {dry_run} (nothing uploaded)")
        return
    console.print(
        f"pushed {source} to {result['url']} (branch {revision or 'main'}, commit {result['commit'][:10]}): {files}"
    )
    at = f"@{revision}" if revision else ""
    console.print(f'use it: genzoo sample hf://{repo}{at}   or in Python: genzoo.load("{repo}{at}")')


@app.command()
@friendly
def pull(
    source: str = typer.Argument(..., help="org/name, org/name@revision or hf://org/name@revision."),
    local_files_only: bool = typer.Option(
        False, "--local-files-only", help="Use only the local Hugging Face cache (as HF_HUB_OFFLINE=1)."
    ),
    to: Optional[Path] = typer.Option(
        None, "--to", help="Also copy the model into this folder (a plain model folder)."
    ),
):
    """Download a model from the Hugging Face Hub into its cache and check it (safetensors only, never pickle)."""
    from genzoo.modelfile.hub import pull as pull_from_hub

    console = _console()
    with console.status(f"pulling {source}"):
        folder, commit = pull_from_hub(source, local_files_only=local_files_only, to=to)
    files = ", ".join(sorted(p.name for p in folder.iterdir()))
    console.print(f"pulled {source} (commit {commit[:10]}) into {folder}: {files}")
    if to is not None:
        console.print(f"copied to {to}")
    name = source if source.startswith("hf://") else f"hf://{source}"
    console.print(f"use it: genzoo sample {name}")


def _list_pretrained():
    from rich.table import Table

    from genzoo.modelfile.published import PRETRAINED_FILE, pretrained

    rows = pretrained()
    console = _console()
    if not rows:
        console.print(
            f"No weights are published yet ({PRETRAINED_FILE.name} is empty). Maintainers: push a run with "
            '`genzoo push runs/<recipe> --repo org/name`, then add a row under "weights" in '
            f'{PRETRAINED_FILE}: "<recipe>": {{"repo": "org/name", "revision": "<commit>", '
            '"notes": "..."}.',
            markup=False,
        )
        return
    table = Table("recipe", "hub id", "revision", "use", "notes")
    for recipe, row in sorted(rows.items()):
        at = f"@{row['revision']}" if row.get("revision") else ""
        table.add_row(
            recipe,
            row["repo"],
            row.get("revision") or "main",
            f"genzoo sample hf://{row['repo']}{at}",
            row.get("notes", ""),
        )
    console.print(table)


@app.command("list")
@friendly
def list_components(
    kind: Optional[str] = typer.Argument(None, help="priors, models, datasets or metrics."),
    pretrained: bool = typer.Option(
        False, "--pretrained", help="Show the published weights instead (recipe -> Hub id)."
    ),
    zoo: Optional[Path] = typer.Option(
        None, help="With --pretrained: the zoo's results table (default: results/zoo.csv of this checkout)."
    ),
    pretrained_file: Optional[Path] = typer.Option(
        None, help="With --pretrained: the published-weights table (default: the package's pretrained.json)."
    ),
):
    """Everything registered: built-ins and plugins, with where each came from (--pretrained: published weights)."""
    from rich.table import Table

    if pretrained:  # the published weights and the zoo's rows that are only reproducible (analysis/zoo_publish.py)
        from genzoo.analysis.zoo import ZOO_FILE
        from genzoo.analysis.zoo_publish import print_pretrained

        return print_pretrained(_console(), zoo or ZOO_FILE, pretrained_file)

    from genzoo.core.errors import GenzooError, did_you_mean
    from genzoo.core.registry import REGISTRIES

    if kind is not None and kind not in REGISTRIES:
        raise GenzooError(
            f"unknown kind '{kind}'{did_you_mean(kind, REGISTRIES)}", f"use one of: {', '.join(REGISTRIES)}"
        )
    table = Table("kind", "name", "source", "description")
    for k, registry in REGISTRIES.items():
        if kind in (None, k):
            for entry in registry.entries():
                table.add_row(registry.kind, entry.name, entry.source, registry.description(entry.name))
    _console().print(table)


@app.command()
@friendly
def zoo(
    folders: List[Path] = typer.Argument(..., help="Committed study results, e.g. results/studies/converged_mnist."),
    out: Path = typer.Option(Path("results/zoo.csv"), help="The table to write."),
    spec: Optional[List[Path]] = typer.Option(None, help="A study YAML to read besides recipes/studies/*.yaml."),
    push: bool = typer.Option(False, "--push", help="Maintainers: publish rows' weights, fill pretrained.json."),
    org: Optional[str] = typer.Option(None, help="With --push: the Hub organisation (or user) to publish under."),
    rows: Optional[List[str]] = typer.Option(None, help="With --push: only these rows (study/arm, repeatable)."),
    pretrained_file: Optional[Path] = typer.Option(
        None, help="With --push: the published-weights table to fill (default: the package's pretrained.json)."
    ),
):
    """The zoo's results table: one CSV row per (model, data, prior, sampler) from committed study results, each
    metric's mean and 95 % t-interval over seeds; --push publishes rows' weights (analysis/zoo_publish.py)."""
    from genzoo.analysis.zoo_publish import zoo_command

    zoo_command(folders, out, spec or [], org, push, rows, pretrained_file, _console())


def main():
    import warnings

    # Warnings (a broken plugin, say) as one readable line, not a source excerpt.
    warnings.formatwarning = lambda message, category, *args, **kwargs: f"warning: {message}\n"
    app(prog_name="genzoo")


if __name__ == "__main__":
    sys.exit(main())
