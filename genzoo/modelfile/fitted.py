"""`genzoo fit-sampler`: fit a sampler on a trained model's training codes and keep it in the model's folder."""

from __future__ import annotations

from pathlib import Path

from genzoo.core.errors import GenzooError
from genzoo.modelfile.folder import load_folder
from genzoo.modelfile.hub import resolve_source


def fit_sampler(
    source,
    section: dict,
    *,
    name: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    codes: str = "mean",
    held_out: float = 0.1,
    overwrite: bool = False,
    data_root: str | None = None,
    device: str = "cpu",
) -> tuple[Path, dict]:
    """Fit `section` ({name, **options}) on the codes of the model's training split (its first `limit` images) and
    write it to <model folder>/samplers/<name> (default: the sampler's name). Returns (that folder, the fit record).
    An existing sampler of that name is only replaced with overwrite=True; the model's own files are never touched.
    """
    from genzoo.metrics.evaluate import dataset_for
    from genzoo.samplers.fit import fit_sampler as fit
    from genzoo.samplers.fit import sampler_folder, save_sampler

    if section.get("name") == "prior":
        raise GenzooError(
            "the 'prior' sampler is the model's own prior: there is nothing to fit",
            "name a fitted sampler: gaussian, gmm, flow, two_stage (`genzoo list samplers`)",
        )
    folder = resolve_source(source)
    name = name or section.get("name")
    if not name or "/" in name or name.startswith(".") or name == "prior":
        raise GenzooError(f"'{name}' cannot name a fitted sampler", "pass --name with a plain name, e.g. gmm20")
    target = sampler_folder(folder, name)
    if target.exists() and not overwrite:
        raise GenzooError(f"a sampler '{name}' is already fitted in '{target}'", "pass --overwrite, or another --name")
    model = load_folder(folder, device)
    sampler, record = fit(
        model, dataset_for(model, "train", data_root), section, limit=limit, seed=seed, held_out=held_out, codes=codes
    )
    record["model_weights_sha256"] = model.extra_config.get("weights_sha256")
    return save_sampler(sampler, target), record
