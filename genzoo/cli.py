"""The `genzoo` command. Each command parses its arguments, calls one function of the layers below (reachable from
Python) and prints what it returns. Only typer is imported at the top: torch loads inside the commands that need it.

An argument KEY=VALUE whose KEY holds no '/' is an override or option with a dotted key (train.batch_size=64,
fid.count=1000); anything else is a path or a Hub id (core.recipe.is_override: decided by the text, not the disk)."""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import Annotated, List, Optional

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

# Arguments and options several commands share.
Source = Annotated[
    str, typer.Argument(help="A run folder, a model folder, or a Hub model: hf://org/name[@rev] (or org/name).")
]
Device = Annotated[Optional[str], typer.Option(help="cpu, cuda or cuda:N (default: cuda when present).")]
DataRoot = Annotated[Optional[str], typer.Option(help="Where the dataset lives, if not where it was trained.")]
Split = Annotated[str, typer.Option(help="Dataset split to evaluate on.")]
Limit = Annotated[Optional[int], typer.Option(help="Evaluate on at most this many images.")]


def _out(what: str, default: str):
    """--out, saying where it goes by default: next to the source (for a Hub source: the current folder)."""
    return typer.Option(None, "--out", help=f"{what} (default: <source>/{default}; ./{default} for a Hub model).")


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
            import click

            from genzoo.core.errors import failure_line

            context = click.get_current_context(silent=True)
            _error_line(failure_line(exc, context.info_name if context is not None else fn.__name__))
            raise typer.Exit(1) from None

    return wrapper


def _error_line(line: str) -> None:
    from rich.text import Text

    message = Text("error: ", style="bold red")
    message.append(line)  # plain text: brackets in paths or values are not markup
    _console(stderr=True).print(message, soft_wrap=True)


def _device(device: Optional[str]) -> str:
    from genzoo.core.devices import resolve_device

    return resolve_device(device)


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


def _print_table(console, table, wrote: str) -> None:
    """A report Table, then what was written: Markdown rows in a log file (not a box squeezed to 80 columns)."""
    from rich.table import Table

    if console.is_terminal:
        shown = Table(*table.header)
        for row in table.rows:
            shown.add_row(*row)
        console.print(shown)
    else:
        for row in [table.header, ["---"] * len(table.header), *table.rows]:
            console.print("| " + " | ".join(row) + " |", markup=False, crop=False, overflow="ignore")
    console.print(wrote, markup=False)


@app.command()
@friendly
def train(
    recipe: Path = typer.Argument(..., help="A recipe YAML, e.g. recipes/quickstart.yaml."),
    overrides: Optional[List[str]] = typer.Argument(None, help="Dotted overrides: train.batch_size=64 prior.std=5"),
):
    """Train the model a recipe describes; starting the same run again resumes it from its last checkpoint."""
    import os

    from genzoo.core.recipe import load_recipe

    resolved = load_recipe(recipe, overrides or [])  # before torch: a missing or unparsable recipe fails at once
    from genzoo.train.trainer import Trainer

    console = _console()
    run_dir = Trainer(resolved, console=console).fit()
    if os.environ.get("RANK", "0") == "0":  # the main process; fit() returns once model/ holds the final export
        console.print(f"done: {run_dir} (model in {run_dir / 'model'}, log in {run_dir / 'metrics.jsonl'})")


@app.command()
@friendly
def sample(
    source: Source,
    count: int = typer.Option(64, "--count", "-n", help="How many images."),
    out: Optional[Path] = _out("Grid PNG", "samples.png"),
    images_dir: Optional[Path] = typer.Option(None, "--images-dir", help="Also write each image as a PNG here."),
    seed: int = typer.Option(0, help="Seed for the codes."),
    nrow: Optional[int] = typer.Option(None, help="Images per grid row."),
    batch_size: int = typer.Option(256, help="Images decoded at once."),
    device: Device = None,
    sampler: str = typer.Option("prior", help="Draw codes from this fitted sampler instead (genzoo fit-sampler)."),
):
    """Draw codes from the prior (or a fitted sampler) and decode them: a grid PNG and/or a folder of images."""
    from genzoo.analysis.figures import write_samples

    grid = write_samples(
        source,
        count,
        out=out,
        images_dir=images_dir,
        seed=seed,
        nrow=nrow,
        batch_size=batch_size,
        device=_device(device),
        sampler=sampler,
    )
    _console().print(f"wrote {grid}" + (f", {count} images in {images_dir}" if images_dir else ""))


@app.command()
@friendly
def reconstruct(
    source: Source,
    split: str = typer.Option("test", help="Dataset split to reconstruct."),
    count: int = typer.Option(16, "--count", "-n", help="How many images."),
    out: Optional[Path] = _out("PNG", "reconstructions.png"),
    data_root: DataRoot = None,
    device: Device = None,
):
    """Originals (top row of each pair) above their reconstructions."""
    from genzoo.analysis.figures import write_reconstructions

    out = write_reconstructions(source, split, count, out=out, data_root=data_root, device=_device(device))
    _console().print(f"wrote {out}")


@app.command()
@friendly
def interpolate(
    source: Source,
    inputs: Optional[List[str]] = typer.Argument(
        None,
        help="End points: image files, or dataset indices with --split; 2 for a line, 4 for --corners (top-left, "
        "top-right, bottom-left, bottom-right). None: random codes from the prior.",
    ),
    corners: bool = typer.Option(
        False, "--corners", help="N x N grid, bilinear in code space between four corners (MBRCE-AAE README's figure)."
    ),
    steps: int = typer.Option(8, "--steps", help="Images along the line, or the side N of the --corners grid."),
    split: Optional[str] = typer.Option(None, help="Read the inputs as indices into this split (train or test)."),
    seed: int = typer.Option(0, help="Seed for random end points."),
    out: Optional[Path] = _out("PNG", "interpolation.png"),
    data_root: DataRoot = None,
    device: Device = None,
):
    """Decode codes interpolated between images (or random codes): a line of --steps images, or a --corners grid."""
    from genzoo.analysis.figures import write_interpolation

    out = write_interpolation(
        source,
        inputs or [],
        corners=corners,
        steps=steps,
        split=split,
        seed=seed,
        out=out,
        data_root=data_root,
        device=_device(device),
    )
    _console().print(f"wrote {out} ({f'{steps} x {steps} grid' if corners else f'{steps} images'})")


@app.command()
@friendly
def stylemix(
    source: str = typer.Argument(..., help="A run or model folder, or a Hub model, of a style_alae model."),
    split: str = typer.Option("test", help="Dataset split of the source and target images."),
    sources: int = typer.Option(5, "--sources", help="Source images (top row): the split's first ones."),
    targets: int = typer.Option(5, "--targets", help="Target images (left column): the ones after the sources."),
    kinds: str = typer.Option("coarse,middle,fine", help="Comma-separated: coarse (4-8), middle (16-32), fine (64+)."),
    seed: int = typer.Option(0, help="Seed for the generator's noise inputs."),
    out: Optional[Path] = _out("Folder for stylemix-<kind>.png", "stylemix"),
    data_root: DataRoot = None,
    device: Device = None,
):
    """Style mixing grids (the MBRCE-AAE README's figure): each target image with a source image's coarse, middle
    or fine styles, one PNG per kind."""
    from genzoo.analysis.figures import write_stylemix

    kinds_asked = [k.strip() for k in kinds.split(",") if k.strip()]
    written, skipped, size = write_stylemix(
        source, split, sources, targets, kinds_asked, seed=seed, out=out, data_root=data_root, device=_device(device)
    )
    note = f" (skipped {', '.join(skipped)}: no such levels at {size}x{size})" if skipped else ""
    _console().print(f"wrote {', '.join(map(str, written))}{note}")


@app.command()
@friendly
def attribute(
    source: str = typer.Argument(..., help="A run or model folder of a model with attribute change (lbae)."),
    name: str = typer.Argument(..., help="A label name (CelebA: Eyeglasses), else a label column (15) or class."),
    remove: bool = typer.Option(False, "--remove", help="Remove the attribute instead of adding it."),
    threshold: float = typer.Option(0.25, help="Change the code bits whose mean-code difference exceeds this."),
    steps: int = typer.Option(6, help="Images between each original and its changed version (0: none)."),
    count: int = typer.Option(8, "--count", "-n", help="How many images to change (from --split)."),
    split: str = typer.Option("test", help="Split of the images to change."),
    fit_split: str = typer.Option("train", help="Split whose labels define the attribute's direction."),
    limit: Optional[int] = typer.Option(None, help="Use at most this many --fit-split images for the direction."),
    out: Optional[Path] = typer.Option(None, "--out", help="PNG (default: <source>/attribute-<name>.png)."),
    data_root: DataRoot = None,
    device: Device = None,
):
    """Add or remove a labelled attribute (the LBAE paper's attribute change): one row per image, from its
    reconstruction to the changed image, the code bits most tied to the attribute flipped first."""
    from genzoo.analysis.figures import write_attribute_change

    out, bits, total = write_attribute_change(
        source,
        name,
        remove=remove,
        threshold=threshold,
        steps=steps,
        count=count,
        split=split,
        fit_split=fit_split,
        limit=limit,
        out=out,
        data_root=data_root,
        device=_device(device),
    )
    _console().print(f"wrote {out} ({'removed' if remove else 'added'} '{name}': {bits} of {total} code bits set)")


@app.command("fit-sampler")
@friendly
def fit_sampler(
    source: str = typer.Argument(..., help="A run folder or a model folder."),
    sampler: str = typer.Option(
        "gmm", help="gaussian, gmm, flow, two_stage, arcsine (binary codes), or a plugin's (`genzoo list samplers`)."
    ),
    options: Optional[List[str]] = typer.Argument(None, help="Sampler options: gmm.components=20 (or components=20)."),
    name: Optional[str] = typer.Option(None, help="Save as samplers/<name> (default: the sampler's name)."),
    limit: Optional[int] = typer.Option(None, help="Fit on the first this many training images (default: all)."),
    seed: int = typer.Option(0, help="Seed of the held-out split and of the fit."),
    codes: str = typer.Option("mean", help="mean: encoder outputs (a VAE's posterior means); draw: VAE draws."),
    held_out: float = typer.Option(0.1, help="Share of the codes kept out of the fit, scored for the record."),
    overwrite: bool = typer.Option(False, help="Replace a sampler already fitted under this name."),
    data_root: DataRoot = None,
):
    """Fit a density to a trained model's training codes (ex-post); `sample`/`eval --sampler NAME` then use it."""
    import genzoo
    from genzoo.samplers.fit import describe_fit, parse_sampler_options

    folder, record = genzoo.fit_sampler(
        source,
        sampler,
        parse_sampler_options(options, sampler),
        name=name,
        limit=limit,
        seed=seed,
        codes=codes,
        held_out=held_out,
        overwrite=overwrite,
        data_root=data_root,
    )
    _console().print(f"fitted '{sampler}' {describe_fit(record)}; wrote {folder}", markup=False)


@app.command()
@friendly
def curve(
    run: str = typer.Argument(..., help="A run folder, or a study's results folder of <run>.curve.json files."),
    metrics: str = typer.Option("fid", help="Comma-separated metric names."),
    split: Split = "test",
    data_root: DataRoot = None,
    out: Path = typer.Option(Path("curves"), help="For a results folder: where plots/learning_curve_*.png go."),
    options: Optional[List[str]] = typer.Argument(None, help="Metric options: fid.count=2000 fid.bootstrap=20"),
):
    """Learning curve: metrics at every kept checkpoint of a run and at its export (writes RUN/curve.json); for a
    study's results folder, per arm the change over the last half of training, its verdict and the figures."""
    from genzoo.analysis.curves import arm_of, checkpoint_curve, curve_section, saved_curves
    from genzoo.metrics.evaluate import format_value, metric_request, scalar_items

    console = _console()
    if not (Path(run) / "model").is_dir() and any(Path(run).glob("*.curve.json")):
        found = saved_curves(run)
        section, plots = curve_section(found, {r: arm_of(r) for r in found}, out, metrics.split(","))
        return _print_table(console, section.table, "wrote " + ", ".join(map(str, plots)))
    names, opts = metric_request(metrics, options)
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
    source: Source,
    metrics: str = typer.Option("reconstruction", help="Comma-separated metric names (`genzoo list metrics`)."),
    split: Split = "test",
    limit: Limit = None,
    out: Optional[Path] = _out("JSON file", "eval.json"),
    data_root: DataRoot = None,
    device: Device = None,
    sampler: str = typer.Option("prior", help="Draw the samples' codes from this fitted sampler (fit-sampler)."),
    options: Optional[List[str]] = typer.Argument(
        None, help="Metric options: fid.mode=legacy_tensorflow fid.source=reconstructions parzen.samples=1000"
    ),
):
    """Compute metrics of a trained model; writes JSON (each result with its protocol) and prints a table.

    Metrics: reconstruction, prior_match, fid, kid, precision_recall, prd, parzen, ppl (`genzoo list metrics`).
    """
    import genzoo
    from genzoo.metrics.evaluate import metric_request, protocol_lines, results_table
    from genzoo.modelfile.hub import output_path

    names, opts = metric_request(metrics, options)  # unknown metrics and options fail before the model loads
    out = out or output_path(source, "eval.json")
    console = _console()
    with console.status("evaluating") as status:
        results = genzoo.evaluate(
            source,
            names,
            options=opts,
            split=split,
            limit=limit,
            data_root=data_root,
            device=_device(device),
            sampler=sampler,
            progress=_reporter(console, status, "evaluating"),
            out=out,
        )
    console.print(results_table(results))
    for line in protocol_lines(results):
        console.print(line, markup=False)
    console.print(f"wrote {out}")


@app.command()
@friendly
def compare(
    sources: List[str] = typer.Argument(
        ...,
        help="Run or model folders (or Hub models) to compare, then any metric options: runs/a runs/b fid.count=1000. "
        "KEY=VALUE with no '/' before the '=' is an option; write ./NAME for a folder whose name holds '='.",
    ),
    metrics: str = typer.Option("reconstruction", help="Comma-separated metric names, the same for every model."),
    split: Split = "test",
    limit: Limit = None,
    out: Path = typer.Option(
        Path("compare"), "--out", help="Report folder: report.md, report.html, results.json, plots/, grids/."
    ),
    samples: int = typer.Option(64, help="Samples in each model's grid."),
    title: str = typer.Option("genzoo compare", help="Report title."),
    data_root: DataRoot = None,
    device: Device = None,
    arms: str = typer.Option(
        "auto", help="auto: group <arm>-s<seed> runs into arms (CIs, pairwise tests); none: one row per run."
    ),
    samplers: str = typer.Option(
        "prior", help="Comma-separated: every model under each sampler fitted in its folder (prior,gmm)."
    ),
):
    """Evaluate several models the same way; write a Markdown + static HTML report with the metrics table (per
    arm: mean, std, 95 % CI; pairwise Welch tests; per-run rows; a generated conclusions paragraph),
    metric-over-training plots from metrics.jsonl, and sample / reconstruction grids side by side."""
    from genzoo.analysis.compare import compare as write_comparison
    from genzoo.core.errors import GenzooError
    from genzoo.core.recipe import is_override
    from genzoo.metrics.evaluate import metric_request

    models = [s for s in sources if not is_override(s)]
    if not models:
        raise GenzooError("no models to compare", "name run or model folders: genzoo compare runs/a runs/b")
    names, opts = metric_request(metrics, [s for s in sources if is_override(s)])
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
            progress=_reporter(console, status, "evaluating"),
            arms=arms,
            samplers=[s.strip() for s in samplers.split(",") if s.strip()],
        )
    for line in (report.conclusions, report.warning):
        if line:
            console.print(line, markup=False)
    plots = len(report.plots)
    _print_table(console, report.table, f"wrote {report.markdown}, {report.html}, {report.json}, {plots} plots")


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
    from genzoo.analysis.study import PendingStudy, run_study

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
    if isinstance(report, PendingStudy):
        console.print(
            f"shard done; {len(report.pending)} runs still have no result: run their shards, then "
            f"genzoo study {spec} --merge",
            markup=False,
        )
        return
    console.print(report.conclusions, markup=False)
    _print_table(console, report.table, f"wrote {report.markdown}, {report.html}, {report.json}")


@app.command()
@friendly
def prepare(
    source: Path = typer.Argument(
        ..., help="Images (a folder or archive), or a recipe (.yaml or .yml) with data: {name: prepared, source, ...}."
    ),
    rest: Optional[List[str]] = typer.Argument(None, help="OUT, the store, after images; overrides after a recipe."),
    max_resolution: Optional[int] = typer.Option(None, help="Top level, e.g. 256 (a recipe: data.resolution)."),
    min_resolution: Optional[int] = typer.Option(None, help="Lowest level (default 4; a recipe: its growth's start)."),
    test_count: Optional[int] = typer.Option(None, help="Test split: the LAST N images by name (default 1000)."),
    train_count: Optional[int] = typer.Option(None, help="Training split: the first N (default: all the others)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Leave undecodable files out (listed in the manifest)."),
    verify: bool = typer.Option(False, "--verify", help="Then check every level file against the manifest's sha256."),
    workers: Optional[int] = typer.Option(None, help="Decoding processes (default: up to 8 for 2048 images or more)."),
):
    """Turn a folder of images into a multi-resolution store (one uint8 array per level) for progressive growing.
    Resumable (run it again after a stop), reused when already made, checked with --verify."""
    from genzoo.datasets.prepared import prepare_store, store_options, summary_lines, verify_store

    args = store_options(
        source,
        rest or [],
        max_resolution=max_resolution,
        min_resolution=min_resolution,
        test_count=test_count,
        train_count=train_count,
    )
    console = _console()
    with _prepare_progress(console) as report:
        result = prepare_store(
            **args, skip_bad=skip_bad, workers=workers, progress=report, say=lambda m: console.print(m, markup=False)
        )
    out = args["out"]
    for line in summary_lines(result, out):
        console.print(line)
    if verify:
        verify_store(out)
        console.print(f"verified: every level of {out} matches its sha256")


@contextlib.contextmanager
def _prepare_progress(console):
    """A progress(done, total) callback: a bar on a terminal; in a log, a line every 30 s."""
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("preparing"), BarColumn(), MofNCompleteColumn(), TextColumn("images"), TimeRemainingColumn())
    last = [time.monotonic()]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task("prepare", total=None)

        def report(done, total):
            bar.update(task, completed=done, total=total)
            if not console.is_terminal and time.monotonic() - last[0] > 30:
                last[0] = time.monotonic()
                console.print(f"preparing: {done} of {total} images")

        yield report


@app.command()
@friendly
def push(
    source: Path = typer.Argument(..., help="A run folder (runs/<name>) or a model folder."),
    repo: str = typer.Option(..., "--repo", help="Hub repo id org/name; created when missing."),
    private: bool = typer.Option(
        False, "--private", help="Create the repo private (an existing repo keeps its visibility)."
    ),
    revision: Optional[str] = typer.Option(None, help="Branch to push to (created from main when missing)."),
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
    to: Optional[Path] = typer.Option(None, help="Also copy the model into this folder (a plain model folder)."),
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
