"""The model folder: config.json + model.safetensors (diffusers' layout), and `load` to rebuild a model from it.

config.json holds everything needed to rebuild the network through the registries: the resolved model and prior
sections of the recipe, the image shape, and the dataset section (so `reconstruct` knows its data).
Loading never runs code from the file: safetensors only, never pickle.

The Hugging Face Hub (second half of this file): `push` uploads a run with a model card, `pull`/`hub_snapshot`
fetch into huggingface_hub's cache, and `resolve_source` maps every model source (run folder, model folder,
`hf://org/name[@rev]`, bare `org/name`) to a local folder. huggingface_hub and torch load only when used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from genzoo.errors import GenzooError
from genzoo.io import load_tensors, read_json, save_tensors, write_json

if TYPE_CHECKING:  # torch loads on first use, so `genzoo push` / `pull` stay light
    import torch

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
FORMAT = "genzoo-model/1"


def create_model(model: dict, prior: dict | None, image_shape) -> torch.nn.Module:
    """Build an architecture (and its prior) from resolved recipe sections; the config rides along on `.config`."""
    from genzoo.registry import MODELS, PRIORS, build

    injected = {"image_shape": tuple(image_shape)}
    if prior is not None:
        injected["prior"], prior = build(PRIORS, prior, "prior", dim=model.get("latent_dim"))
    net, model = build(MODELS, model, "model", **injected)
    net.config = {"format": FORMAT, "model": model, "prior": prior, "image_shape": list(image_shape)}
    return net


def save_pretrained(model: torch.nn.Module, folder: Path, extra: dict | None = None) -> Path:
    """Write `folder` = config.json + model.safetensors. Written into a temporary folder, then swapped in."""
    from genzoo import __version__
    from genzoo.io import replace_dir

    folder = Path(folder)
    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_tensors(tmp / WEIGHTS_NAME, model.state_dict(), metadata={"format": "pt"})
    write_json(tmp / CONFIG_NAME, {**model.config, "genzoo_version": __version__, **(extra or {})})
    replace_dir(tmp, folder)
    return folder


def resolve_model_folder(path: str | Path) -> Path:
    """A model folder, or a run folder (its model/ export)."""
    path = Path(path)
    if (path / CONFIG_NAME).is_file():
        return path
    if (path / "model" / CONFIG_NAME).is_file():
        return path / "model"
    if not path.exists():
        raise GenzooError(f"'{path}' does not exist", "give a run folder (runs/<name>) or a model folder")
    if (path / "checkpoints").is_dir():
        raise GenzooError(f"run '{path}' has checkpoints but no exported model/ yet",
                          "let training reach its first checkpoint (train.checkpoint_every), or finish it")
    raise GenzooError(f"'{path}' is neither a model folder (config.json + model.safetensors) nor a run folder",
                      "give runs/<name> or its model/ folder")


def load(path: str | Path, device: str | torch.device = "cpu", *, local_files_only: bool = False) -> torch.nn.Module:
    """Rebuild a model from a model folder, a run folder, or a Hub model (`hf://org/name[@rev]`, or `org/name` when
    no such local folder exists), weights loaded, in eval mode."""
    folder = resolve_source(path, local_files_only=local_files_only)
    config = read_json(folder / CONFIG_NAME, "model config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GenzooError(f"'{folder / CONFIG_NAME}' is not a genzoo model config (format {FORMAT} expected)",
                          "point at a folder written by genzoo (runs/<name>/model)")
    model = create_model(config["model"], config.get("prior"), config["image_shape"])
    state = load_tensors(folder / WEIGHTS_NAME, "model weights")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches
        raise GenzooError(f"'{folder / WEIGHTS_NAME}' does not fit {config['model']['name']} ({str(exc).splitlines()[1:2]})",
                          "the weights and config.json come from different models: re-export the run") from None
    if missing or unexpected:
        raise GenzooError(f"'{folder / WEIGHTS_NAME}' does not fit {config['model']['name']} "
                          f"(missing {len(missing)} tensors, e.g. {missing[:2]}; unexpected {len(unexpected)}, e.g. {unexpected[:2]})",
                          "the weights and config.json come from different models: re-export the run")
    model.config = {k: config[k] for k in ("format", "model", "prior", "image_shape", "data") if k in config}
    model.extra_config = {k: v for k, v in config.items() if k not in model.config}
    return model.to(device).eval()


# -- the Hugging Face Hub --------------------------------------------------------------------------------------------
# One resolver maps every model source to a local folder: a run or model folder as is; `hf://org/name[@rev]`, or a
# bare `org/name[@rev]` that is no local path, to a snapshot in huggingface_hub's cache (read-only for us: commands
# write their outputs elsewhere). Only the files below are ever downloaded, so pickle weights never reach the disk.

HUB_PREFIX = "hf://"
HUB_FILES = [CONFIG_NAME, WEIGHTS_NAME, "README.md", "recipe.yaml", "eval.json", "*.png"]
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
PRETRAINED_FILE = Path(__file__).with_name("pretrained.json")
# Hub dataset ids for the model card's `datasets:` (names not listed are written as they are).
HUB_DATASETS = {"mnist": "ylecun/mnist", "fashion_mnist": "zalando-datasets/fashion_mnist"}
_REPO_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"


def parse_hub_source(source) -> tuple[str, str | None] | None:
    """(repo_id, revision) for `hf://org/name[@rev]`, or for a bare `org/name[@rev]` string that is not a local
    path; None for a local source. A `Path` object is always local."""
    import re

    if isinstance(source, Path):
        return None
    text = str(source)
    if text.startswith(HUB_PREFIX):
        repo_id, _, revision = text[len(HUB_PREFIX):].partition("@")
        if not re.fullmatch(rf"(?:{_REPO_ID}/)?{_REPO_ID}", repo_id) or (not revision and "@" in text):
            raise GenzooError(f"'{text}' is not a Hub model id", "write hf://org/name or hf://org/name@revision")
        return repo_id, revision or None
    if Path(text).exists():
        return None
    match = re.fullmatch(rf"({_REPO_ID}/{_REPO_ID})(?:@(.+))?", text)
    return (match.group(1), match.group(2)) if match else None


def resolve_source(source, *, local_files_only: bool = False) -> Path:
    """A local model folder for any model source (run folder, model folder, Hub id): the one resolver of genzoo."""
    hub = parse_hub_source(source)
    if hub is None:
        return resolve_model_folder(source)
    bare = not str(source).startswith(HUB_PREFIX)
    return hub_snapshot(*hub, local_files_only=local_files_only, bare_source=str(source) if bare else None)


def _label(repo_id: str, revision: str | None) -> str:
    return f"{repo_id}@{revision}" if revision else repo_id


def _offline(local_files_only: bool) -> bool:
    from huggingface_hub import constants

    return local_files_only or constants.is_offline_mode()


def hub_snapshot(repo_id: str, revision: str | None = None, *, local_files_only: bool = False,
                 bare_source: str | None = None) -> Path:
    """Download (or find in huggingface_hub's cache) a genzoo model from the Hub; returns the snapshot folder.

    Honours HF_HUB_OFFLINE, HF_ENDPOINT, HF_HOME/HF_HUB_CACHE and the saved token, like every Hugging Face library.
    A repository without model.safetensors (pickle-only, or not a genzoo model) is refused.
    """
    from huggingface_hub import snapshot_download

    from genzoo import __version__

    label = _label(repo_id, revision)
    with _hub_errors(label, "download", bare_source=bare_source, local_files_only=local_files_only), _no_progress_bars():
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=HUB_FILES,
                                        local_files_only=local_files_only, library_name="genzoo",
                                        library_version=__version__))
    if not (folder / WEIGHTS_NAME).is_file():
        pickles = [f for f in _repo_files(repo_id, folder) if f.endswith(PICKLE_SUFFIXES)]
        if pickles:
            raise GenzooError(f"Hub model '{label}' holds only pickle weights ({', '.join(pickles[:3])}), no {WEIGHTS_NAME}",
                              "genzoo never loads pickle, because unpickling can run code: ask its author for a "
                              "safetensors export (`genzoo push` writes one)")
        hint = " (or it is only partly cached: pull it once with network access)" if _offline(local_files_only) else ""
        raise GenzooError(f"Hub repo '{label}' has no {WEIGHTS_NAME}{hint}",
                          "it is not a genzoo model: a genzoo model is config.json + model.safetensors")
    if not (folder / CONFIG_NAME).is_file():
        raise GenzooError(f"Hub repo '{label}' has no {CONFIG_NAME}", "it is not a genzoo model (`genzoo push` writes one)")
    return folder


def _repo_files(repo_id: str, snapshot: Path) -> list[str]:
    """Files the repo holds, from the tree listing huggingface_hub cached (no network), else the snapshot folder."""
    names = {p.name for p in snapshot.iterdir()} if snapshot.is_dir() else set()
    try:
        from huggingface_hub import get_cached_repo_tree

        names |= {f.path for f in get_cached_repo_tree(repo_id, revision=snapshot.name)}
    except Exception:  # no cached listing (hand-filled cache, older huggingface_hub): the folder is what we know
        pass
    return sorted(names)


def check_weights_file(path: Path, what: str = "weights file") -> list[str]:
    """Check a safetensors file's header covers the whole file, without torch; returns its tensor names."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise GenzooError(f"{what} '{path}' does not exist", "check the path")
    try:
        with safe_open(str(path), framework="numpy") as f:
            return list(f.keys())
    except (SafetensorError, OSError, ValueError) as exc:
        raise GenzooError(f"{what} '{path}' is truncated or not a safetensors file ({exc})",
                          "re-export it (a finished or resumed `genzoo train` writes model/ again)") from None


def pull(source: str, *, local_files_only: bool = False, to: Path | None = None) -> tuple[Path, str]:
    """Fetch a Hub model into the cache and check it (config and a whole safetensors file); optionally copy it into
    the plain folder `to`. Returns (folder, commit hash)."""
    import shutil

    from genzoo.io import replace_dir

    text = str(source)
    hub = parse_hub_source(text if text.startswith(HUB_PREFIX) else HUB_PREFIX + text)
    folder = hub_snapshot(*hub, local_files_only=local_files_only)
    label = _label(*hub)
    config = read_json(folder / CONFIG_NAME, "model config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GenzooError(f"Hub repo '{label}' is not a genzoo model (its config.json is not format {FORMAT})",
                          "pull models written by `genzoo push`")
    try:
        check_weights_file(folder / WEIGHTS_NAME)
    except GenzooError as exc:
        raise GenzooError(f"Hub model '{label}' has a broken {WEIGHTS_NAME}: {exc.problem}",
                          "ask its author to push it again; nothing was loaded") from None
    if to is not None:
        to = Path(to)
        tmp = to.with_name(f".{to.name}.tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for f in folder.iterdir():
            shutil.copyfile(f, tmp / f.name)  # follows the cache's symlinks: a plain, self-contained folder
        replace_dir(tmp, to)
    return folder, folder.name


# -- push ------------------------------------------------------------------------------------------------------------

def _refuse_celeba(config: dict, recipe_text: str | None) -> None:
    data = config.get("data") or {}
    if "celeba" in " ".join([str(data.get("name", "")), str(data.get("root", "")), recipe_text or ""]).lower():
        raise GenzooError("this model was trained on CelebA, whose licence forbids redistributing derived weights",
                          "CelebA-trained weights are never uploaded; push models trained on other data")


def _eval_results(run: Path | None, folder: Path, step) -> tuple[dict, list[str]]:
    """The metrics of eval.json (run folder or model folder) when they were computed on this very model: the
    protocol's weights hash matches model.safetensors (or, without a hash, its step matches the model's)."""
    from genzoo.io import file_sha256

    notes, sha = [], None
    for candidate in ([run / "eval.json"] if run else []) + [folder / "eval.json"]:
        if candidate.is_file():
            results = read_json(candidate, "evaluation")
            if not isinstance(results, dict):
                continue

            def same_model(protocol: dict) -> bool:
                nonlocal sha
                weights = (protocol.get("model") or {}).get("weights_sha256") if isinstance(protocol.get("model"), dict) else None
                if weights:
                    sha = sha or file_sha256(folder / WEIGHTS_NAME)
                    return weights == sha
                return protocol.get("model_step") == step

            fresh = {k: v for k, v in results.items() if isinstance(v, dict) and same_model(v.get("protocol") or {})}
            for values in fresh.values():  # the source is a local path (maybe /home/<you>/...): not for the Hub
                if isinstance((values.get("protocol") or {}).get("model"), dict):
                    values["protocol"]["model"].pop("source", None)
            if len(fresh) < len(results):
                notes.append(f"left out metrics of {candidate} computed on other weights than the model's (step {step}): "
                             f"run `genzoo eval` again to include them")
            return fresh, notes
    return {}, notes


def _fmt(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _flat(d: dict, prefix: str = "") -> dict:
    """{"model": {"step": 3}} -> {"model.step": 3}; None values dropped (a protocol, readable in one table cell)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = v
    return out


def _plain_dumper():
    import yaml

    class PlainDumper(yaml.SafeDumper):
        def ignore_aliases(self, data):  # no &id001 / *id001: every metric spells out its protocol
            return True

    return PlainDumper


def model_card(repo_id: str, config: dict, *, recipe_text: str | None = None, metrics: dict | None = None,
               sample_image: str | None = None, prior_source: str = "genzoo") -> str:
    """README.md for the Hub: YAML metadata the Hub understands, then how to load it, the metrics with their
    protocol, and the training recipe."""
    import json

    import yaml

    _PlainDumper = _plain_dumper()
    model, prior, data = config.get("model") or {}, config.get("prior") or {}, config.get("data") or {}
    model_name, prior_name, dataset = model.get("name", "?"), prior.get("name"), data.get("name")
    tags = ["genzoo", "generative-autoencoder", model_name] + ([prior_name] if prior_name else [])
    meta: dict = {"library_name": "genzoo", "tags": list(dict.fromkeys(tags)), "pipeline_tag": "unconditional-image-generation"}
    if dataset:
        meta["datasets"] = [HUB_DATASETS.get(dataset, dataset)]
    results, rows = [], []
    for name, values in (metrics or {}).items():
        protocol = json.loads(json.dumps(values.get("protocol") or {}))
        numbers = {k: v for k, v in values.items() if isinstance(v, float)}
        args = {**protocol, **{k: v for k, v in values.items() if k != "protocol" and k not in numbers}}
        args = {k: v for k, v in args.items() if v is not None}
        if not numbers:
            continue
        results.append({
            "task": {"type": "unconditional-image-generation", "name": name},
            "dataset": {"name": str(protocol.get("dataset", dataset)), "type": str(protocol.get("dataset", dataset)),
                        **({"split": str(protocol["split"])} if protocol.get("split") else {})},
            "metrics": [{"name": f"{name}.{k}", "type": k, "value": v, "args": args} for k, v in numbers.items()],
        })
        shown = {a: (b[:12] if isinstance(b, str) and len(b) == 64 else b)  # hashes, shortened for the table
                 for a, b in _flat(args).items() if a != "metric"}
        rows.append(f"| {name} | {', '.join(f'{k} {_fmt(v)}' for k, v in numbers.items())} | "
                    + ", ".join(f"{a}={_fmt(b)}" for a, b in shown.items()).replace("|", "/") + " |")
    if results:
        meta["model-index"] = [{"name": repo_id.split("/")[-1], "results": results}]

    short = repo_id.split("/")[-1]
    step = config.get("step")
    install = "pip install genzoo"
    if prior_source != "genzoo":
        install += f" {prior_source}   # the '{prior_name}' prior comes from the plugin package {prior_source}"
    lines = [
        "---", yaml.dump(meta, Dumper=_PlainDumper, sort_keys=False).rstrip(), "---", "",
        f"# {short}", "",
        f"A `{model_name}` generative autoencoder with a `{prior_name}` prior"
        + (f", trained on `{dataset}`" if dataset else "") + (f" for {step} steps" if step is not None else "")
        + " with genzoo. Weights are safetensors only (no pickle).", "",
    ]
    if sample_image:
        lines += [f"![samples from the prior]({sample_image})", ""]
    lines += [
        "## Use it", "",
        "```bash", install,
        f"genzoo sample hf://{repo_id} -n 64 --out samples.png      # decode codes drawn from the prior",
        f"genzoo reconstruct hf://{repo_id}                          # needs the training data set",
        f"genzoo eval hf://{repo_id}",
        "```", "",
        "```python", "import genzoo", "",
        f'model = genzoo.load("{repo_id}")   # or "{repo_id}@<revision>"; cached by huggingface_hub',
        "images = model.sample(16)           # (16, C, H, W) in [0, 1]",
        "codes = model.encode(images)", "```", "",
        "## Model", "",
        "```yaml", yaml.safe_dump({"model": model, "prior": prior, "image_shape": config.get("image_shape")},
                                  sort_keys=False).rstrip(), "```", "",
    ]
    if rows:
        lines += ["## Metrics", "", "Computed by `genzoo eval`; the protocol says how.", "",
                  "| metric | values | protocol |", "|---|---|---|", *rows, ""]
    if recipe_text:
        lines += ["## Training recipe", "", "The resolved recipe (every default filled in); "
                  "`genzoo train recipe.yaml` trains it again.", "", "```yaml", recipe_text.rstrip(), "```", ""]
    lines += ["## Files", "", "`config.json` + `model.safetensors`: the model (load with `genzoo.load`); "
              "`recipe.yaml`: how it was trained; `samples.png`: samples at the exported step; "
              "`eval.json`: metrics with their protocol (when evaluated).", ""]
    return "\n".join(lines)


def build_upload(source, dest: Path, repo_id: str) -> dict:
    """Write into `dest` what `push` uploads: the model folder, the run's recipe, its latest sample grid, eval.json and
    a model card. Returns {"files": [...], "notes": [...], "config": {...}}."""
    import shutil

    folder = resolve_model_folder(source)
    run = folder.parent if folder.name == "model" and (folder.parent / "recipe.yaml").is_file() else None
    config = read_json(folder / CONFIG_NAME, "model config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GenzooError(f"'{folder / CONFIG_NAME}' is not a genzoo model config (format {FORMAT} expected)",
                          "push a run folder (runs/<name>) or its model/ folder")
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
        (dest / "eval.json").write_text(__import__("json").dumps(metrics, indent=2) + "\n")
    prior_source = "genzoo"
    if (config.get("prior") or {}).get("name"):
        from genzoo.registry import PRIORS

        if config["prior"]["name"] in PRIORS:
            prior_source = PRIORS.entry(config["prior"]["name"]).source
    (dest / "README.md").write_text(model_card(repo_id, config, recipe_text=recipe_text, metrics=metrics,
                                               sample_image=sample, prior_source=prior_source))
    return {"files": sorted(p.name for p in dest.iterdir()), "notes": notes, "config": config}


def _check_repo_id(repo_id: str) -> str:
    import re

    repo_id = repo_id[len(HUB_PREFIX):] if repo_id.startswith(HUB_PREFIX) else repo_id
    if not re.fullmatch(rf"{_REPO_ID}/{_REPO_ID}", repo_id) or "@" in repo_id:
        raise GenzooError(f"'{repo_id}' is not a Hub repo id", "write --repo org/name (letters, digits, '-', '_', '.')")
    return repo_id


def push(source, repo_id: str, *, private: bool = False, revision: str | None = None,
         commit_message: str | None = None, dry_run: Path | None = None) -> dict:
    """Upload a run (or model folder) to the Hub as one commit: model, recipe, samples, eval.json, model card.

    The upload is built in a temporary folder first; the Hub commit is all-or-nothing. With `dry_run`, the upload
    is written into that folder and nothing is sent. Returns {"url", "commit", "files", "notes"}.
    """
    import shutil
    import tempfile

    from genzoo import __version__
    from genzoo.io import replace_dir

    repo_id = _check_repo_id(repo_id)
    with tempfile.TemporaryDirectory(prefix="genzoo-push-") as tmp:
        built = build_upload(source, Path(tmp) / "upload", repo_id)
        upload = Path(tmp) / "upload"
        if dry_run is not None:
            dry_run = Path(dry_run)
            staging = dry_run.with_name(f".{dry_run.name}.tmp")
            if staging.exists():
                shutil.rmtree(staging)
            shutil.copytree(upload, staging)
            replace_dir(staging, dry_run)
            return {"url": None, "commit": None, "files": built["files"], "notes": built["notes"]}

        from huggingface_hub import HfApi, constants, get_token

        if not get_token():
            raise GenzooError("no Hugging Face token found, and pushing needs one",
                              "run `hf auth login` (or set HF_TOKEN) with a token that has write access")
        config = built["config"]
        api = HfApi(library_name="genzoo", library_version=__version__)
        message = commit_message or f"genzoo push: {config['model']['name']} + {(config.get('prior') or {}).get('name')}" \
                                    f", step {config.get('step')}"
        with _hub_errors(repo_id, "push to"), _no_progress_bars():
            api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
            if revision and revision != constants.DEFAULT_REVISION:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            info = api.upload_folder(repo_id=repo_id, folder_path=str(upload), revision=revision,
                                     commit_message=message)
    return {"url": f"{constants.ENDPOINT}/{repo_id}", "commit": info.oid, "files": built["files"], "notes": built["notes"]}


# -- published weights -----------------------------------------------------------------------------------------------

def pretrained(path: Path | None = None) -> dict[str, dict]:
    """The published weights the project knows: recipe name -> {repo, revision, notes} (genzoo/pretrained.json)."""
    path = Path(path or PRETRAINED_FILE)
    data = read_json(path, "pretrained weights table")
    rows = data.get("weights") if isinstance(data, dict) else None
    if not isinstance(rows, dict):
        raise GenzooError(f"'{path}' has no \"weights\" object", 'it maps recipe name -> {"repo": "org/name", ...}')
    for recipe, row in rows.items():
        if not isinstance(row, dict) or not isinstance(row.get("repo"), str):
            raise GenzooError(f"'{path}': row '{recipe}' needs a \"repo\" (org/name)",
                              'write {"repo": "org/name", "revision": "<commit>", "notes": "..."}')
        _check_repo_id(row["repo"])
    return rows


# -- huggingface_hub's errors as one line ----------------------------------------------------------------------------

def _scrub(text: str) -> str:
    """Never show a token: the saved/env token and anything shaped like one are masked."""
    import re

    try:
        from huggingface_hub import get_token

        token = get_token()
    except Exception:
        token = None
    if token:
        text = text.replace(token, "***")
    return re.sub(r"hf_[A-Za-z0-9]{8,}", "hf_***", text)


def _is_network_error(exc: BaseException) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, TimeoutError)) or type(exc).__module__.split(".")[0] in (
                "httpx", "httpx2", "httpcore", "requests", "urllib3"):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class _no_progress_bars:
    """huggingface_hub's tqdm bars off while we call it (the CLI shows its own status); restored afterwards."""

    def __enter__(self):
        from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

        self._was = are_progress_bars_disabled()
        disable_progress_bars()

    def __exit__(self, *exc):
        from huggingface_hub.utils import enable_progress_bars

        if not self._was:
            enable_progress_bars()


class _hub_errors:
    """Turn huggingface_hub's exceptions into one GenzooError line with a fix; tokens never appear."""

    def __init__(self, label: str, action: str, *, bare_source: str | None = None, local_files_only: bool = False):
        self.label, self.action, self.bare, self.local_files_only = label, action, bare_source, local_files_only

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc is None or isinstance(exc, (GenzooError, KeyboardInterrupt)) or not isinstance(exc, Exception):
            return False
        problem, fix = self._explain(exc)
        if self.bare:
            problem = f"'{self.bare}' is not a local folder, and as a Hub id: {problem}"
            fix = f"check the path of a local run or model folder; for the Hub: {fix}"
        raise GenzooError(_scrub(problem), _scrub(fix)) from None

    def _explain(self, exc: Exception) -> tuple[str, str]:
        from huggingface_hub import constants, errors

        label, endpoint = self.label, constants.ENDPOINT
        offline = _offline(self.local_files_only)
        retry = "check your connection, proxy and HF_ENDPOINT, then try again"
        if isinstance(exc, errors.LocalTokenNotFoundError):
            return "no Hugging Face token found", "run `hf auth login` or set HF_TOKEN"
        if isinstance(exc, errors.IncompleteSnapshotError):
            return (f"the cached copy of '{label}' is incomplete and the Hub cannot be reached",
                    f"run `genzoo pull {label}` with network access")
        if isinstance(exc, (errors.OfflineModeIsEnabled, errors.LocalEntryNotFoundError)):
            if offline:
                how = "--local-files-only" if self.local_files_only else "HF_HUB_OFFLINE=1"
                return (f"'{label}' is not in the local Hugging Face cache and downloads are off ({how})",
                        f"run `genzoo pull {label}` once with network access, or unset HF_HUB_OFFLINE")
            return (f"could not reach the Hugging Face Hub at {endpoint}, and '{label}' is not in the local cache",
                    retry)
        if isinstance(exc, errors.RevisionNotFoundError):
            return f"'{label}': no such revision on the Hub", "give an existing branch, tag or commit after '@'"
        if isinstance(exc, errors.GatedRepoError):
            return (f"'{label}' is gated on the Hub", "accept its conditions on its Hub page, then log in "
                    "(`hf auth login` or HF_TOKEN)")
        if isinstance(exc, errors.RepositoryNotFoundError):
            if self.action == "download":
                return (f"the Hub has no model '{label}' (or it is private and your token cannot see it)",
                        "check the name; for a private model log in with `hf auth login` or set HF_TOKEN")
            return (f"cannot {self.action} '{label}': the Hub says it does not exist or your token cannot write to it",
                    "check the name and use a token with write access (`hf auth login` or HF_TOKEN)")
        if isinstance(exc, errors.HFValidationError):
            return f"'{label}' is not a valid Hub repo id", "write org/name (letters, digits, '-', '_', '.')"
        if isinstance(exc, errors.HfHubHTTPError) and getattr(exc, "response", None) is not None:
            status = exc.response.status_code
            server = (getattr(exc, "server_message", None) or "").strip().splitlines()
            said = f": {server[0]}" if server else ""
            if status == 401:
                return (f"the Hub rejected your token (401) while trying to {self.action} '{label}'",
                        "log in again with `hf auth login` or set HF_TOKEN to a valid token")
            if status == 403:
                return (f"your token may not {self.action} '{label}' (403 Forbidden{said})",
                        "use a token with write access to that namespace, or push under your own name")
            nothing = "; the commit is all-or-nothing, so nothing changed" if self.action != "download" else ""
            return (f"the Hub answered {status} while trying to {self.action} '{label}'{said}",
                    f"try again later{nothing}")
        if _is_network_error(exc):
            return (f"could not reach the Hugging Face Hub at {endpoint} to {self.action} '{label}' "
                    f"({type(exc).__name__})", retry + "; HF_HUB_OFFLINE=1 uses only the local cache")
        if isinstance(exc, ValueError) and "README.md" in str(exc):
            return f"the Hub refused the model card's metadata ({str(exc).splitlines()[0]})", "report this genzoo bug"
        return (f"the Hub call to {self.action} '{label}' failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
                "run again with --debug for the full traceback")
