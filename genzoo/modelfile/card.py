"""What `genzoo push` uploads: the model folder, the run's recipe, its latest samples, eval.json and a model card
(README.md) whose metadata the Hub understands."""

from __future__ import annotations

from pathlib import Path

from genzoo.core.errors import GenzooError
from genzoo.core.io import read_json
from genzoo.modelfile.folder import CONFIG_NAME, WEIGHTS_NAME, check_weights_file, read_config, resolve_model_folder

# Hub dataset ids for the model card's `datasets:` (names not listed are written as they are).
HUB_DATASETS = {
    "mnist": "ylecun/mnist",
    "fashion_mnist": "zalando-datasets/fashion_mnist",
    "cifar10": "uoft-cs/cifar10",
}
# The weights' licence follows the data they learned from, where that licence is known (the Hub's licence ids).
DATA_LICENSES = {"mnist": "cc-by-sa-3.0", "fashion_mnist": "mit", "digits": "bsd-3-clause"}
# genzoo is not on PyPI: a model card tells how to install it from its source (the `pip install -e .` of its README).
INSTALL = "pip install -e path/to/genzoo   # from a checkout of genzoo's repository (not on PyPI yet)"


def _refuse_celeba(config: dict, recipe_text: str | None) -> None:
    data = config.get("data") or {}
    if "celeba" in " ".join([str(data.get("name", "")), str(data.get("root", "")), recipe_text or ""]).lower():
        raise GenzooError(
            "this model was trained on CelebA, whose licence forbids redistributing derived weights",
            "CelebA-trained weights are never uploaded; push models trained on other data",
        )


def _eval_results(run: Path | None, folder: Path, step) -> tuple[dict, list[str]]:
    """The metrics of eval.json (run folder or model folder) when they were computed on this very model: the
    protocol's weights hash matches model.safetensors (or, without a hash, its step matches the model's)."""
    from genzoo.core.io import file_sha256

    notes, sha = [], None
    for candidate in ([run / "eval.json"] if run else []) + [folder / "eval.json"]:
        if candidate.is_file():
            results = read_json(candidate, "evaluation")
            if not isinstance(results, dict):
                continue

            def same_model(protocol: dict) -> bool:
                nonlocal sha
                weights = (
                    (protocol.get("model") or {}).get("weights_sha256")
                    if isinstance(protocol.get("model"), dict)
                    else None
                )
                if weights:
                    sha = sha or file_sha256(folder / WEIGHTS_NAME)
                    return weights == sha
                return protocol.get("model_step") == step

            fresh = {k: v for k, v in results.items() if isinstance(v, dict) and same_model(v.get("protocol") or {})}
            for values in fresh.values():  # the source is a local path (maybe /home/<you>/...): not for the Hub
                if isinstance((values.get("protocol") or {}).get("model"), dict):
                    values["protocol"]["model"].pop("source", None)
            if len(fresh) < len(results):
                notes.append(
                    f"left out metrics of {candidate} computed on other weights than the model's (step {step}): "
                    f"run `genzoo eval` again to include them"
                )
            return fresh, notes
    return {}, notes


def _plain_dumper():
    import yaml

    class PlainDumper(yaml.SafeDumper):
        def ignore_aliases(self, data):  # no &id001 / *id001: every metric spells out its protocol
            return True

    return PlainDumper


def model_card(
    repo_id: str,
    config: dict,
    *,
    recipe_text: str | None = None,
    metrics: dict | None = None,
    sample_image: str | None = None,
    prior_source: str = "genzoo",
    license: str | None = None,
) -> str:
    """README.md for the Hub: YAML metadata the Hub understands, then how to load it, the metrics with their
    protocol, and the training recipe. `license` (a Hub licence id) defaults to the training data's where known,
    else "other"."""
    import json

    import yaml

    from genzoo.core.recipe import flat_items
    from genzoo.metrics.evaluate import format_value

    _PlainDumper = _plain_dumper()
    model, prior, data = config.get("model") or {}, config.get("prior") or {}, config.get("data") or {}
    model_name, prior_name, dataset = model.get("name", "?"), prior.get("name"), data.get("name")
    tags = ["genzoo", "generative-autoencoder", model_name] + ([prior_name] if prior_name else [])
    meta: dict = {
        "license": license or DATA_LICENSES.get(dataset, "other"),
        "library_name": "genzoo",
        "tags": list(dict.fromkeys(tags)),
        "pipeline_tag": "unconditional-image-generation",
    }
    if dataset in HUB_DATASETS:  # only real Hub dataset ids
        meta["datasets"] = [HUB_DATASETS[dataset]]
    results, rows = [], []
    for name, values in (metrics or {}).items():
        protocol = json.loads(json.dumps(values.get("protocol") or {}))
        numbers = {k: v for k, v in values.items() if isinstance(v, float)}
        args = {**protocol, **{k: v for k, v in values.items() if k != "protocol" and k not in numbers}}
        args = {k: v for k, v in args.items() if v is not None}
        if not numbers:
            continue
        results.append(
            {
                "task": {"type": "unconditional-image-generation", "name": name},
                "dataset": {
                    "name": str(protocol.get("dataset", dataset)),
                    "type": str(protocol.get("dataset", dataset)),
                    **({"split": str(protocol["split"])} if protocol.get("split") else {}),
                },
                "metrics": [{"name": f"{name}.{k}", "type": k, "value": v, "args": args} for k, v in numbers.items()],
            }
        )
        shown = {
            a: (b[:12] if isinstance(b, str) and len(b) == 64 else b)  # hashes, shortened for the table
            for a, b in flat_items(args).items()
            if a != "metric" and b not in (None, {})
        }
        rows.append(
            f"| {name} | {', '.join(f'{k} {format_value(v)}' for k, v in numbers.items())} | "
            + ", ".join(f"{a}={format_value(b)}" for a, b in shown.items()).replace("|", "/")
            + " |"
        )
    if results:
        meta["model-index"] = [{"name": repo_id.split("/")[-1], "results": results}]

    short = repo_id.split("/")[-1]
    step = config.get("step")
    install = INSTALL
    if prior_source != "genzoo":
        install += f"\npip install {prior_source}   # the '{prior_name}' prior comes from this plugin package"
    lines = [
        "---",
        yaml.dump(meta, Dumper=_PlainDumper, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {short}: {model_name}"
        + (f" + {prior_name}" if prior_name else "")
        + (f" on {dataset}" if dataset else ""),
        "",
        f"A `{model_name}` generative autoencoder with a `{prior_name}` prior"
        + (f", trained on `{dataset}`" if dataset else "")
        + (f" for {step} steps" if step is not None else "")
        + " with genzoo. Weights are safetensors only (no pickle).",
        "",
    ]
    if sample_image:
        lines += [f"![samples from the prior]({sample_image})", ""]
    lines += [
        "## Use it",
        "",
        "```bash",
        install,
        f"genzoo sample hf://{repo_id} -n 64 --out samples.png      # decode codes drawn from the prior",
        f"genzoo reconstruct hf://{repo_id}                          # needs the training data set",
        f"genzoo eval hf://{repo_id}",
        "```",
        "",
        "```python",
        "import genzoo",
        "",
        f'model = genzoo.load("{repo_id}")   # or "{repo_id}@<revision>"; cached by huggingface_hub',
        "images = model.sample(16)           # (16, C, H, W) in [0, 1]",
        "codes = model.encode(images)",
        "```",
        "",
        "## Model",
        "",
        "```yaml",
        yaml.safe_dump(
            {"model": model, "prior": prior, "image_shape": config.get("image_shape")}, sort_keys=False
        ).rstrip(),
        "```",
        "",
    ]
    if rows:
        lines += [
            "## Metrics",
            "",
            "Computed by `genzoo eval`; the protocol says how.",
            "",
            "| metric | values | protocol |",
            "|---|---|---|",
            *rows,
            "",
        ]
    if recipe_text:
        lines += [
            "## Training recipe",
            "",
            "The resolved recipe (every default filled in); `genzoo train recipe.yaml` trains it again.",
            "",
            "```yaml",
            recipe_text.rstrip(),
            "```",
            "",
        ]
    lines += [
        "## Files",
        "",
        "`config.json` + `model.safetensors`: the model (load with `genzoo.load`); "
        "`recipe.yaml`: how it was trained; `samples.png`: samples at the exported step; "
        "`eval.json`: metrics with their protocol (when evaluated).",
        "",
    ]
    return "\n".join(lines)


def build_upload(source, dest: Path, repo_id: str, license: str | None = None) -> dict:
    """Write into `dest` what `push` uploads: the model folder, the run's recipe, its latest sample grid, eval.json and
    a model card. Returns {"files": [...], "notes": [...], "config": {...}}."""
    import json
    import shutil

    folder = resolve_model_folder(source)
    run = folder.parent if folder.name == "model" and (folder.parent / "recipe.yaml").is_file() else None
    config = read_config(folder, fix="push a run folder (runs/<name>) or its model/ folder")
    recipe_text = (run / "recipe.yaml").read_text() if run else None
    _refuse_celeba(config, recipe_text)
    check_weights_file(folder / WEIGHTS_NAME, "model weights")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        shutil.copyfile(folder / name, dest / name)
    if recipe_text is not None:
        (dest / "recipe.yaml").write_text(recipe_text)
    sample = None
    grids = sorted((run / "samples").glob("step-*.png")) if run else []
    if grids:
        shutil.copyfile(grids[-1], dest / "samples.png")
        sample = "samples.png"
    metrics, notes = _eval_results(run, folder, config.get("step"))
    if metrics:
        (dest / "eval.json").write_text(json.dumps(metrics, indent=2) + "\n")
    prior_source = "genzoo"
    if (config.get("prior") or {}).get("name"):
        from genzoo.core.registry import PRIORS

        if config["prior"]["name"] in PRIORS:
            prior_source = PRIORS.entry(config["prior"]["name"]).source
    (dest / "README.md").write_text(
        model_card(
            repo_id,
            config,
            recipe_text=recipe_text,
            metrics=metrics,
            sample_image=sample,
            prior_source=prior_source,
            license=license,
        )
    )
    return {"files": sorted(p.name for p in dest.iterdir()), "notes": notes, "config": config}
