"""YAML recipe -> a typed, validated Recipe, with dotted command-line overrides.

A recipe names a dataset, an architecture (model) and a prior, each as `{name: ..., **options}`; the options are
checked against the registered component's constructor, so every key is validated and every default is filled.
The `train` section is the Trainer's, checked against TrainSpec; `train.phases.<phase>` is the one place for
optimiser settings (model sections hold the architecture only; older recipes are translated, see translate_moved).
The resolved recipe (all defaults filled) is what gets saved into the run folder.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from annotated_types import Ge

from genzoo.core.errors import GenzooError
from genzoo.core.options import PositiveFloat, PositiveInt, build_dataclass


@dataclass
class PhaseOptions:
    """Optimiser settings of one optimisation phase; unset values keep the architecture's defaults (its Phase's)."""

    lr: PositiveFloat | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None
    decoupled_weight_decay: bool | None = None  # true: AdamW


@dataclass
class GrowthSpec:
    """Recipe section `train.growth`: progressive growing (genzoo/train/growth.py). Resolution keys are numbers
    (`64: 32`); the top resolution is the data's, so `data.resolution=16` makes a short run."""

    start_resolution: int = 4
    images_per_level: int | None = None  # images shown at each level before the next one starts ...
    epochs_per_level: float | None = None  # ... or that many passes over the training set (ALAE: 30)
    transition: float = 0.5  # fraction of a level spent blending its new block in (ALAE: the first half)
    batch_size: dict[str, int] = field(default_factory=dict)  # global batch per resolution; else train.batch_size
    batch_size_by_processes: dict[str, dict[str, int]] = field(
        default_factory=dict
    )  # {processes: {resolution: batch}}
    lr: dict[str, float] = field(default_factory=dict)  # every phase's learning rate per resolution
    reset_optimizers: bool = True  # ALAE restarts Adam at each resolution switch


@dataclass
class EvalSpec:
    """Recipe section `train.eval`: a metric measured during training (at the top resolution when growing, as seed
    000 measures FID every few epochs) on a held-out split; the best model so far is kept in `model-best/`."""

    metric: str = "fid"
    value: str | None = None  # which number of the metric's result decides (default: the metric's name), e.g. mse
    every_epochs: float | None = None
    every_steps: int | None = None
    split: str = "test"
    options: dict[str, Any] = field(default_factory=dict)  # the metric's options, e.g. {count: 10000}
    higher_is_better: bool = False


@dataclass
class TrainSpec:
    batch_size: PositiveInt = 64  # global batch, split evenly over processes
    steps: PositiveInt | None = None  # optimisation steps in all; or give epochs
    epochs: PositiveFloat | None = None
    log_every: PositiveInt = 50
    sample_every: PositiveInt = 500
    sample_count: PositiveInt = 64
    checkpoint_every: PositiveInt = 1000
    keep_checkpoints: PositiveInt = 2
    ema_half_life_images: PositiveFloat | None = None  # ALAE uses 10k images; None: no EMA
    # None: Accelerate's (`accelerate config`, `accelerate launch --mixed_precision`, ACCELERATE_MIXED_PRECISION)
    mixed_precision: Literal["no", "fp16", "bf16"] | None = None
    cpu: bool = False  # train on the CPU even where a GPU is present
    grad_clip: PositiveFloat | None = None
    grad_accumulation: PositiveInt = 1
    # torch's fused Adam kernel: one pass over each tensor instead of ~8 (on a CPU the MLP AAE trains 1.15-1.2x faster,
    # BENCHMARKS.md). Off by default: it rounds differently in the last bit, so a run's numbers change.
    fused_optimizer: bool = False
    num_workers: Annotated[int, Ge(0)] = 0
    threads: PositiveInt | None = None  # CPU threads of this process; None: chosen from the cores and the load
    log_with: list[str] = field(default_factory=list)  # any tracker Accelerate supports: tensorboard, wandb, mlflow...
    phases: dict[str, PhaseOptions] = field(default_factory=dict)
    growth: GrowthSpec | None = None  # progressive growing, for models with `set_growth` (StyleALAE)
    eval: EvalSpec | None = None  # a metric during training, keeping the best model


# Keys that may change when a stopped run is started again (everything else must match the saved recipe).
RESUMABLE_CHANGES = {
    "train.steps",
    "train.epochs",
    "train.log_every",
    "train.sample_every",
    "train.sample_count",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.log_with",
    "train.num_workers",
    "train.threads",
    "output_dir",
    "data.root",
    "data.download",
    "train.phases",
    "train.grad_clip",
    "train.eval",
    "train.cpu",
}  # lowering a learning rate after a divergence is a resume


@dataclass
class Recipe:
    data: dict
    model: dict
    prior: dict | None = None
    train: TrainSpec = field(default_factory=TrainSpec)
    name: str | None = None
    seed: int = 0
    output_dir: str = "runs"

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


_RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def is_override(text: str) -> bool:
    """Whether a command-line argument is KEY=VALUE (fid.count=1000) rather than a path: it holds '=' and its key
    holds no '/' (so runs/lr=0.1 and ./a=b are paths). Decided by the text alone, never by what exists on disk."""
    key, sep, _ = str(text).partition("=")
    return bool(sep) and "/" not in key and "\\" not in key


def parse_override(text: str) -> tuple[list[str], object]:
    import yaml

    if "=" not in text:
        raise GenzooError(f"override '{text}' is not of the form key.path=value", "write e.g. train.batch_size=64")
    key, raw = text.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise GenzooError(f"override '{text}' has an empty key", "write e.g. train.batch_size=64")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # a plain string such as a path with a colon
    return keys, value


def apply_overrides(raw: dict, overrides: list[str]) -> dict:
    raw = copy.deepcopy(raw)
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for i, k in enumerate(keys[:-1]):
            if not isinstance(node.get(k), dict):
                if k in node and node[k] is not None:
                    raise GenzooError(
                        f"override '{text}': '{'.'.join(keys[: i + 1])}' is not a section", "check the key path"
                    )
                node[k] = {}
            node = node[k]
        node[keys[-1]] = value
    return raw


def _unique_key_loader():
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML silently keeps the last one)."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key '{key}' is given twice (first at line {seen[key] + 1})", key_node.start_mark
                    )
                seen[key] = key_node.start_mark.line
            return super().construct_mapping(node, deep=deep)

    return UniqueKeyLoader


def read_yaml(path: str | Path) -> dict:
    import yaml

    path = Path(path)
    if not path.is_file():
        raise GenzooError(f"recipe '{path}' does not exist", "check the path (the shipped recipes are in recipes/)")
    try:
        raw = yaml.load(path.read_text(), Loader=_unique_key_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise GenzooError(
            f"recipe '{path}' is not valid YAML{where}: {getattr(exc, 'problem', exc)}", "fix the YAML syntax there"
        ) from None
    if not isinstance(raw, dict):
        raise GenzooError(
            f"recipe '{path}' must be a mapping of sections (data, model, prior, train)",
            "see recipes/quickstart.yaml for the layout",
        )
    return raw


class RecipeProblems(GenzooError):
    """Several independent problems of one recipe, all named at once (one line each)."""

    def __init__(self, problems: list[GenzooError]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the recipe has {len(problems)} problems:\n{lines}")


class TranslatedRecipe(UserWarning):
    """A recipe or config.json key that moved was read from its old place: one line names the move."""


def translate_moved(raw: dict, source: str = "recipe", notify: bool = True) -> dict:
    """`raw` with the model section's moved options (the architecture's MovesOptions: learning rates and other
    optimiser settings, which moved to `train.phases.<phase>`) at their new place, leaving any value already set
    there (train.phases always won). One notice line names every move unless `notify` is false."""
    from genzoo.core.capabilities import MovesOptions, can
    from genzoo.core.registry import MODELS, PRIORS

    model, prior = raw.get("model"), raw.get("prior")
    name = model.get("name") if isinstance(model, dict) else None
    if name not in MODELS or not can(MODELS.get(name), MovesOptions):
        return raw
    prior_name = prior.get("name") if isinstance(prior, dict) else None
    prior_cls = PRIORS.get(prior_name) if prior_name in PRIORS else None
    moves = {k: v for k, v in MODELS.get(name).moved_options(model, prior_cls).items() if k in model}
    train = raw.get("train") or {}
    if not moves or not isinstance(train, dict) or not isinstance(train.get("phases") or {}, dict):
        return raw  # nothing to move, or a train section whose own problem resolve names
    raw = {**copy.deepcopy(raw), "train": copy.deepcopy(train)}
    phases = raw["train"].setdefault("phases", {}) or {}
    raw["train"]["phases"] = phases
    lines = []
    for key, (setting, names) in moves.items():
        value = raw["model"].pop(key)
        for phase in names:
            entry = phases[phase] = phases.get(phase) or {}
            if isinstance(entry, dict):  # else resolve names the problem
                entry.setdefault(setting, value)
        where = names[0] if len(names) == 1 else "{" + ",".join(names) + "}"
        lines.append(f"{name}.{key} moved to train.phases.{where}.{setting}")
    if notify:
        warnings.warn(f"{source}: {'; '.join(lines)} (translated)", TranslatedRecipe, stacklevel=3)
    return raw


def resolve(raw: dict, default_name: str = "run") -> Recipe:
    """Validate a raw recipe mapping and fill every default, components included. The sections are checked one by
    one and every section's problem is reported together, so one run of the command names them all."""
    import inspect

    from genzoo.core.registry import DATASETS, METRIC_INPUTS, METRICS, MODELS, PRIORS, resolve_section

    raw = translate_moved(raw)
    problems: list[GenzooError] = []

    def attempt(check, *args, **kwargs):
        try:
            return check(*args, **kwargs)
        except GenzooError as exc:
            problems.append(exc)
            return None

    sections = {k: raw.get(k) for k in ("data", "model", "prior")}
    train = attempt(build_dataclass, TrainSpec, raw.get("train") or {}, "train")
    top = attempt(build_dataclass, Recipe, {k: v for k, v in raw.items() if k not in ("train", "prior")})
    name = (top.name if top else None) or default_name
    if top is not None and (not _RUN_NAME.fullmatch(name) or name in (".", "..")):
        problems.append(
            GenzooError(
                f"recipe key 'name' must be a plain folder name (letters, digits, '.', '-', '_'), got {name!r}",
                "the run is written to output_dir/<name>: choose a name without '/' or '..'",
            )
        )
    present = [k for k in ("data", "model") if sections[k] is not None]  # a missing one is reported above
    data = attempt(resolve_section, DATASETS, sections["data"], "data", ("split",)) if "data" in present else None
    model = (
        attempt(resolve_section, MODELS, sections["model"], "model", ("prior", "image_shape"))
        if "model" in present
        else None
    )
    prior = sections["prior"]
    model_name = (sections["model"] or {}).get("name") if isinstance(sections["model"], dict) else None
    if model_name in MODELS:  # the prior is checked even when the model's options have problems of their own
        model_cls = MODELS.get(model_name)
        if "prior" in inspect.signature(model_cls).parameters:
            if prior is None:
                problems.append(
                    GenzooError(
                        f"model '{model_name}' needs a prior but the recipe has no 'prior' section",
                        "add e.g. `prior: {name: gaussian}`",
                    )
                )
            else:
                prior = attempt(resolve_section, PRIORS, prior, "prior", injected=("dim",))
                if prior is not None:
                    attempt(_check_pairing, model_cls, model_name, prior)
        elif prior is not None:
            problems.append(
                GenzooError(
                    f"model '{model_name}' takes no prior, but the recipe has a 'prior' section",
                    "remove the 'prior' section",
                )
            )
    if train is not None:
        if train.steps is None and train.epochs is None:
            problems.append(GenzooError("the recipe sets neither 'train.steps' nor 'train.epochs'", "set one of them"))
        if train.eval is not None:  # an unknown metric or option fails now, not after hours of training
            ev = train.eval
            attempt(resolve_section, METRICS, {**ev.options, "name": ev.metric}, ev.metric, injected=METRIC_INPUTS)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise RecipeProblems(problems)
    top.name, top.data, top.model, top.prior, top.train = name, data, model, prior, train
    return top


def _check_pairing(model_cls, model_name: str, prior: dict) -> None:
    """An impossible architecture/prior pairing fails here, not mid-run."""
    from genzoo.core.registry import PRIORS

    prior_cls = PRIORS.get(prior["name"])
    needs = model_cls.prior_needs
    missing = [flag for flag in needs if not getattr(prior_cls, flag)]  # flags of Prior: matches_codes, has_log_prob
    if missing:
        raise GenzooError(
            f"prior '{prior['name']}' cannot be used with model '{model_name}' (it lacks: {', '.join(missing)})",
            "choose another prior for this architecture",
        )


def load_recipe(path: str | Path, overrides: list[str] = ()) -> Recipe:
    raw = apply_overrides(read_yaml(path), list(overrides))
    return resolve(raw, default_name=Path(path).stem)


def save_recipe(recipe: Recipe, path: Path) -> None:
    import yaml

    from genzoo.core.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(_plain(recipe.to_dict()), sort_keys=False))


def _plain(obj):
    """Tuples -> lists so that the YAML stays readable by yaml.safe_load."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def flat_items(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flat_items(v, key + "."))
        else:
            out[key] = v
    return out


def differences(old: dict, new: dict) -> list[str]:
    """Keys whose values differ between two resolved recipes, minus those a resume may change. A recipe saved
    before the optimiser settings moved to train.phases compares in its translated form, and one saved before a
    key existed with that key's default filled in (a new key's default is always the behaviour before it)."""
    old = translate_moved(old, notify=False)
    try:
        old = resolve(old).to_dict()
    except GenzooError:  # no longer a valid recipe (RecipeProblems included): compared as saved, so it differs
        pass
    a, b = flat_items(_plain(old)), flat_items(_plain(new))
    return sorted(
        k
        for k in set(a) | set(b)
        if a.get(k) != b.get(k) and not any(k == r or k.startswith(r + ".") for r in RESUMABLE_CHANGES)
    )
