"""Fitting a sampler on a model's training codes, and its folder: config.json + sampler.safetensors.

A model folder keeps its fitted samplers under samplers/<name>/, beside (never in place of) model.safetensors:
the prior-sampling model stays what it was, and `genzoo.load(path, sampler=name)` gives back one that draws
its codes from the fitted density.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from genzoo.core.capabilities import HasPosterior, can
from genzoo.core.errors import GenzooError
from genzoo.core.io import atomic_dir, load_tensors, read_json, save_tensors, write_json
from genzoo.core.registry import SAMPLERS, build, resolve_section
from genzoo.samplers.base import CodeSampler

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "sampler.safetensors"
FORMAT = "genzoo-sampler/1"
CODE_KINDS = ("mean", "draw")


@SAMPLERS.register("prior")
class PriorSampler(CodeSampler):
    """The model's own prior, as trained towards (the default): nothing is fitted."""


@torch.no_grad()
def training_codes(model, dataset, limit: int | None, codes: str, generator, batch_size: int = 500) -> torch.Tensor:
    """The codes `decode` takes of the first `limit` training images, float64 on the CPU, in eval mode.

    codes="mean": what `encode` returns (a VAE's posterior mean, as the RAE paper's code fits); "draw": one
    reparameterised draw per image from a model with a `posterior` (what pythae fits on)."""
    from genzoo.datasets.base import to_unit_float

    if codes not in CODE_KINDS:
        raise GenzooError(f"unknown codes '{codes}'", f"use one of: {', '.join(CODE_KINDS)}")
    if codes == "draw" and not can(model, HasPosterior):
        raise GenzooError(
            f"codes 'draw' needs a model with a posterior (a VAE), not {type(model).__name__}",
            "fit on encoder outputs: codes 'mean' (--codes mean)",
        )
    device = next(model.parameters()).device
    n = len(dataset) if limit is None else min(limit, len(dataset))
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, n, batch_size):
        x = to_unit_float(dataset.__getitems__(list(range(start, min(start + batch_size, n)))).to(device))
        if codes == "mean":
            z = model.encode(x)
        else:
            mean, log_var = model.posterior(x)
            noise = torch.randn(mean.shape, generator=generator).to(mean)
            z = mean + noise * torch.exp(0.5 * log_var)
        out.append(z.flatten(1).double().cpu())
    model.train(was_training)
    return torch.cat(out)


def parse_sampler_options(items: list[str] | None, sampler: str) -> dict:
    """['gmm.components=20'] (or ['components=20']) -> {'components': 20}: each value read as YAML, as on the recipe
    command line, then checked against the sampler's signature when it is built."""
    import yaml

    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.removeprefix(f"{sampler}.")
        if not sep or not key or "." in key:
            raise GenzooError(f"sampler option '{item}' is not KEY=VALUE", f"e.g. {sampler}.components=20")
        options[key] = yaml.safe_load(value)
    return options


def fit_sampler(model, dataset, section: dict, *, limit=None, seed: int = 0, held_out: float = 0.1, codes="mean"):
    """Fit the sampler `section` ({name, **options}) on the model's training codes; returns (sampler, record).

    A random `held_out` share of the codes is kept out of the fit: the record holds their mean log-likelihood
    (nats per code) beside the fitted codes', the counts, the seed, the code kind and the fit's seconds."""
    if section.get("name") == "prior":
        raise GenzooError(
            "the 'prior' sampler is the model's own prior: there is nothing to fit",
            "name a fitted sampler (`genzoo list samplers`)",
        )
    if not 0.0 < held_out < 1.0:
        raise GenzooError(f"held_out must be between 0 and 1, got {held_out}", "use e.g. 0.1")
    resolve_section(SAMPLERS, section, str(section.get("name")), injected=("dim",))  # bad options: before any work
    g = torch.Generator().manual_seed(seed)
    z = training_codes(model, dataset, limit, codes, g)
    order = torch.randperm(len(z), generator=g)
    cut = max(1, int(round(len(z) * held_out)))
    if len(z) - cut < 2:
        raise GenzooError(f"only {len(z)} training codes: too few to fit a sampler", "fit on more images")
    fit_codes, held = z[order[cut:]], z[order[:cut]]
    sampler, resolved = build(SAMPLERS, section, str(section.get("name")), dim=z.shape[1])  # keys as gmm.components
    start = time.perf_counter()
    extra = sampler.fit(fit_codes, held, g) or {}
    seconds = time.perf_counter() - start
    ll_fit = ll_held = None
    if sampler.has_density:
        with torch.no_grad():
            ll_fit, ll_held = float(sampler.log_prob(fit_codes).mean()), float(sampler.log_prob(held).mean())
    if ll_held is not None and not math.isfinite(ll_held):
        raise GenzooError(
            f"the '{resolved['name']}' fit gives held-out codes a log-likelihood of {ll_held}",
            "raise its reg_covar or fit on more codes",
        )
    record = {
        "codes": codes,
        "fit_codes": len(fit_codes),
        "held_out_codes": len(held),
        "seed": seed,
        "log_likelihood_fit": ll_fit,
        "log_likelihood_held_out": ll_held,
        "fit_seconds": round(seconds, 3),
        **extra,
    }
    sampler.section, sampler.record = resolved, record
    return sampler.eval(), record


def describe_fit(record: dict) -> str:
    """One line on a fit: its codes, its time and how well it scores the held-out codes."""
    said = f"on {record['fit_codes']} codes in {record['fit_seconds']:.1f} s: "
    if record.get("log_likelihood_held_out") is None:  # no closed-form density (arcsine): its own held-out check
        error = record["moment_error_held_out"]
        return said + f"largest moment error {error:.4f} on {record['held_out_codes']} held-out codes"
    return said + (
        f"log-likelihood {record['log_likelihood_fit']:.3f} (fit), {record['log_likelihood_held_out']:.3f} "
        f"({record['held_out_codes']} held-out codes)"
    )


def save_sampler(sampler: CodeSampler, folder: Path) -> Path:
    """Write folder = config.json (the sampler's section and its fit record) + sampler.safetensors, whole or not."""
    config = {"format": FORMAT, "sampler": sampler.section, "dim": sampler.dim, "fit": sampler.record}
    with atomic_dir(Path(folder)) as tmp:
        save_tensors(tmp / WEIGHTS_NAME, {k: v.contiguous() for k, v in sampler.state_dict().items()})
        write_json(tmp / CONFIG_NAME, config)
    return Path(folder)


def load_sampler(folder: Path) -> CodeSampler:
    """Rebuild a fitted sampler from its folder: options from config.json, tensors from safetensors (never pickle)."""
    folder = Path(folder)
    config = read_json(folder / CONFIG_NAME, "sampler config")
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GenzooError(
            f"'{folder / CONFIG_NAME}' is not a genzoo sampler config (format {FORMAT} expected)",
            "fit it again with `genzoo fit-sampler`",
        )
    if not (folder / WEIGHTS_NAME).is_file():
        raise GenzooError(
            f"'{folder / WEIGHTS_NAME}' is missing (a sampler's tensors are only read from "
            "safetensors, never from pickle files)",
            "fit it again with `genzoo fit-sampler`",
        )
    sampler, section = build(SAMPLERS, config.get("sampler"), "sampler", dim=config.get("dim"))
    state = load_tensors(folder / WEIGHTS_NAME, "sampler tensors")
    missing, unexpected = sampler.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise GenzooError(
            f"'{folder / WEIGHTS_NAME}' does not fit sampler '{section['name']}' (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]})",
            "fit it again with `genzoo fit-sampler`",
        )
    sampler.section, sampler.record = section, config.get("fit", {})
    return sampler.eval()


SAMPLERS_DIR = "samplers"  # <model folder>/samplers/<name>/: fitted samplers, beside the weights


def sampler_folder(folder: Path, name: str) -> Path:
    return Path(folder) / SAMPLERS_DIR / name


def fitted_samplers(folder: Path) -> list[str]:
    """Names of the samplers fitted for a model folder ("prior", the model's own, is always there)."""
    root = Path(folder) / SAMPLERS_DIR
    return ["prior"] + sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else ["prior"]


def attach_sampler(model, folder: Path, name: str) -> None:
    """Make `model.sample` draw from the sampler fitted as `name` in its folder ("prior": the model's own prior)."""
    if name == "prior":
        return model.use_sampler(None)
    where = sampler_folder(folder, name)
    if not where.is_dir():
        raise GenzooError(
            f"no sampler '{name}' is fitted for '{folder}' (fitted: {', '.join(fitted_samplers(folder))})",
            f"fit one first: genzoo fit-sampler {folder} --sampler {name}",
        )
    sampler = load_sampler(where)
    weights = (model.extra_config or {}).get("weights_sha256")
    if sampler.record.get("model_weights_sha256") not in (None, weights):
        raise GenzooError(
            f"sampler '{where}' was fitted on other weights than those of '{folder}'",
            f"fit it again: genzoo fit-sampler {folder} --sampler {sampler.section['name']} --name {name} --overwrite",
        )
    model.use_sampler(sampler)
