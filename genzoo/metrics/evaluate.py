"""Evaluate a model on registered metrics: what `genzoo eval`, `genzoo compare` and the trainer's periodic metric
(`train.eval`) run, and the tables and protocol lines that show the results.

Every result carries a `protocol` block: the metric and its resolved options, dataset and split, limit, and the
model's revision (training step, sha256 of its weights file: modelfile.folder.model_revision), merged with what
the metric itself records (FID mode, Inception weights hash, reference split and image count, sample count, seed).
"""

from __future__ import annotations

import contextlib
import inspect

from genzoo.core.errors import GenzooError


def metric_request(metrics: str, items: list[str] | None = None) -> tuple[list[str], dict[str, dict]]:
    """--metrics "fid,kid" and ['fid.count=1000'] -> (names, options per name); unknown metrics and options fail
    here, before any model is loaded."""
    names = [m.strip() for m in metrics.split(",") if m.strip()]
    options = parse_metric_options(items, names)
    resolve_metrics(names, options)
    return names, options


def parse_metric_options(items: list[str] | None, names: list[str]) -> dict[str, dict]:
    """['fid.mode=legacy_tensorflow', 'parzen.samples=1000'] -> {'fid': {'mode': ...}, 'parzen': {...}}."""
    from genzoo.core.errors import did_you_mean
    from genzoo.core.recipe import parse_override

    options: dict[str, dict] = {name: {} for name in names}
    for text in items or []:
        keys, value = parse_override(text)
        if len(keys) != 2:
            raise GenzooError(
                f"metric option '{text}' is not of the form metric.option=value", "write e.g. fid.count=1000"
            )
        if keys[0] not in options:
            raise GenzooError(
                f"metric option '{text}' is for '{keys[0]}', which is not among --metrics "
                f"{','.join(names)}{did_you_mean(keys[0], names)}",
                "add it to --metrics or fix the name",
            )
        options[keys[0]][keys[1]] = value
    return options


def dataset_for(model, split: str, data_root: str | None = None):
    """The model's training dataset (from its config.json), at `split`."""
    from genzoo.core.registry import DATASETS, build

    data = dict(model.config.get("data") or {})
    if not data:
        raise GenzooError("this model's config.json names no dataset", "it was not trained by genzoo train")
    if data_root:
        data["root"] = data_root
    dataset, _ = build(DATASETS, data, "data", split=split)
    return dataset


def resolve_metrics(names: list[str], options: dict[str, dict] | None = None) -> dict:
    """{name: (function, resolved options)}; unknown metrics and options fail here, before any work."""
    from genzoo.core.registry import METRIC_INPUTS, METRICS, resolve_section

    if not names:
        raise GenzooError("no metrics named", "pass e.g. --metrics reconstruction,fid")
    resolved = {}
    for name in names:
        given = dict((options or {}).get(name, {}))
        sampler = _check_sampler_option(name, given)
        section = resolve_section(METRICS, {**given, "name": name}, name, METRIC_INPUTS)
        opts = {k: v for k, v in section.items() if k != "name"}
        resolved[name] = (METRICS.get(name), {**opts, "sampler": sampler} if sampler else opts)
    return resolved


def _check_sampler_option(name: str, given: dict) -> str | None:
    """Pop `<metric>.sampler` (a fitted sampler's name, for this metric's samples only): sample-based metrics
    drawing samples take it, every other metric refuses it."""
    from genzoo.core.registry import METRICS

    sampler = given.pop("sampler", None)
    if sampler is None:
        return None
    if not METRICS.info(name).sample_based or given.get("source", "samples") != "samples":
        raise GenzooError(
            f"metric option '{name}.sampler' applies to a metric that draws samples, not to {name}"
            + (f" with source={given['source']}" if "source" in given else ""),
            f"drop {name}.sampler",
        )
    if not isinstance(sampler, str) or not sampler.replace("_", "").isalnum():
        raise GenzooError(f"metric option '{name}.sampler' must name a fitted sampler, got {sampler!r}", "e.g. gmm")
    return sampler


def preflight(plan: dict) -> None:
    """Check what the planned metrics need before any work (before training, with train.eval): clean-fid and the
    Inception weights for the metrics that take an `inception` option, the LPIPS network for those taking `lpips`."""
    for fn, opts in plan.values():
        params = inspect.signature(fn).parameters
        if "inception" in params:
            from genzoo.metrics.inception import find_weights, require_cleanfid

            require_cleanfid()
            find_weights(opts.get("inception"))
        if "lpips" in params:
            from genzoo.metrics.ppl import find_lpips

            find_lpips(opts.get("lpips"))


def sampler_protocol(model) -> dict:
    """Where a model's samples draw their codes: its prior, or a fitted sampler with its options and fit record."""
    fitted = model.code_sampler
    if fitted is None:
        return {"name": "prior"}
    return {**fitted.section, "fit": fitted.record}


@contextlib.contextmanager
def _drawing_from(model, sampler: str | None):
    """For one metric: the model's samples from the sampler fitted as `sampler` in its folder, then as before."""
    if sampler is None:
        yield
        return
    from genzoo.samplers.fit import attach_sampler

    if model.folder is None:
        raise GenzooError(
            f"sampler '{sampler}' is looked up in the model's folder, and this model was not loaded from one",
            "save it (save_pretrained) and evaluate the saved folder",
        )
    before = model.code_sampler
    attach_sampler(model, model.folder, sampler)
    try:
        yield
    finally:
        model.use_sampler(before)


def evaluate(
    model,
    metrics: list[str],
    options: dict[str, dict] | None = None,
    split: str = "test",
    limit: int | None = None,
    data_root: str | None = None,
    revision: dict | None = None,
    progress=None,
    datasets: dict | None = None,
) -> dict:
    """{metric: {values..., "protocol": {...}}} for a loaded model on its dataset's `split`; `revision` says which
    weights these are (modelfile.folder.model_revision). `datasets` ({split: dataset}) gives the data directly (a
    model trained on a dataset given in Python); otherwise the model's config.json names it."""
    from genzoo.core.version import __version__

    plan = resolve_metrics(metrics, options)
    loaded = dict(datasets or {})
    data = loaded[split] if split in loaded else dataset_for(model, split, data_root)
    loaded[split] = data

    def splits(name: str):
        if name not in loaded:
            loaded[name] = dataset_for(model, name, data_root)
        return loaded[name]

    revision = revision or {}
    results = {}
    for name, (fn, opts) in plan.items():
        if progress is not None:
            progress(name)
        kwargs = dict(opts)
        if "splits" in inspect.signature(fn).parameters:
            kwargs["splits"] = splits
        with _drawing_from(model, kwargs.pop("sampler", None)):
            values = dict(fn(model, data, limit=limit, **kwargs))
            drawn_from = sampler_protocol(model)
        own = values.pop("protocol", {}) or {}
        protocol = {
            "metric": name,
            "dataset": (model.config.get("data") or {}).get("name"),
            "split": split,
            "limit": limit,
            "model_step": revision.get("step"),
            "model": revision,
            "options": opts,
            "seed": opts.get("seed"),
            "genzoo_version": __version__,
            "sampler": drawn_from,
            **own,
        }
        results[name] = {**values, "protocol": protocol}
    return results


def scalar_items(results: dict):
    """(metric.key, value) for every number or string in a result set, protocol left out."""
    for name, values in results.items():
        for key, value in values.items():
            if key != "protocol" and (value is None or isinstance(value, (int, float, str, bool))):
                yield f"{name}.{key}", value


def format_value(value) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def results_table(results: dict):
    from rich.table import Table

    table = Table("metric", "value")
    for key, value in scalar_items(results):
        table.add_row(key, format_value(value))
    return table


def protocol_lines(results: dict) -> list[str]:
    """One short line per metric: what the number means (mode, weights, reference, counts, seed)."""
    lines = []
    for name, values in results.items():
        p = values.get("protocol", {})
        bits = [f"{p.get('dataset')}/{p.get('split')}"]
        if "mode" in p:
            inc = p.get("inception") or {}
            bits.append(
                f"mode {p['mode']}, Inception {str(inc.get('layers_sha256') or inc.get('sha256'))[:12]} "
                f"({inc.get('source')})"
            )
        if isinstance(p.get("reference"), dict):
            ref = p["reference"]
            bits.append(f"{p.get('source')} x{p.get('images')} vs {ref.get('dataset')} x{ref.get('images')}")
        elif "images" in values:
            bits.append(f"{values['images']} images")
        if p.get("seed") is not None:
            bits.append(f"seed {p['seed']}")
        model = p.get("model") or {}
        bits.append(f"step {model.get('step')}, weights {str(model.get('weights_sha256'))[:12]}")
        lines.append(f"{name}: " + "; ".join(bits))
    return lines
