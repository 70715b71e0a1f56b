"""The zoo's results table (results/zoo.csv): one row per (study, arm, sampler), read from committed study results.

Nothing here trains or evaluates: `genzoo study` does both and commits one result JSON per (run, sampler) cell to its
spec's committed_results folder; this module groups those cells across seeds and writes what a user choosing a
model needs: what was trained and for how long, what it cost, each metric's mean with its 95 % t-interval over seeds
(with the sample and reference counts it was measured on), the genzoo commit, the weights' sha256 of every seed and
the command that reproduces the row. A value with one seed has no interval: its low/high cells stay empty.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

from genzoo.core.errors import GenzooError

ZOO_FILE = Path(__file__).resolve().parents[2] / "results" / "zoo.csv"  # the table of a genzoo checkout
STUDY_SPECS = Path("recipes") / "studies"  # where a result folder's spec is looked for, besides --spec

# (column, result key, value key) of every metric value the table reports, in its order. FID and FID-infinity
# depend on the resize/quantisation mode their protocol records, so their columns name it (fid_clean).
VALUES = [
    ("fid", "fid", "fid"),
    ("fid_infinity", "fid_infinity", "fid_infinity"),
    ("precision", "precision_recall", "precision"),
    ("recall", "precision_recall", "recall"),
    ("density", "precision_recall", "density"),
    ("coverage", "precision_recall", "coverage"),
    ("parzen", "parzen", "log_likelihood"),
    ("mse", "reconstruction", "mse"),
]
MODED = {"fid", "fid_infinity"}
VALUE_PARTS = ("", "_low", "_high", "_images", "_reference_images")
HEAD_COLUMNS = [
    "model",
    "data",
    "prior",
    "sampler",
    "arm",
    "study",
    "seeds",
    "seed_list",
    "steps",
    "epochs",
    "images",
    "parameters",
    "threads",
    "train_images_per_s",
    "train_core_hours",
]
TAIL_COLUMNS = ["genzoo_commit", "weights_sha256", "command", "notes"]


# -- the cells of a study ---------------------------------------------------------------------------------------------


def read_cells(folder: Path) -> list[dict]:
    """Every study result (one (run, sampler) cell) in a committed_results folder, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise GenzooError(f"study results folder '{folder}' does not exist", "give a study's committed_results folder")
    cells = []
    for path in sorted(folder.glob("*.json")):
        try:
            cell = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(cell, dict) and {"run", "arm", "seed", "results", "source"} <= cell.keys():
            cells.append(cell)
    if not cells:
        raise GenzooError(f"'{folder}' holds no study result", "give a folder `genzoo study` wrote results into")
    return cells


def find_spec(folder: Path, study: str, specs=()):
    """(path, StudySpec) of the study whose committed_results is `folder` (or, failing that, named `study`), among
    `specs` and recipes/studies/*.yaml; None when no spec is found."""
    from genzoo.analysis.study import load_study
    from genzoo.core.recipe import read_yaml

    candidates = [Path(p) for p in specs] + sorted(STUDY_SPECS.glob("*.yaml"))
    raws = []
    for path in candidates:
        try:
            raws.append((path, read_yaml(path)))
        except GenzooError:
            continue
    here = Path(folder).resolve()
    same_folder = [p for p, raw in raws if Path(raw.get("committed_results") or "/nowhere").resolve() == here]
    same_name = [p for p, raw in raws if raw.get("name") == study]
    for path in same_folder + same_name:
        return path, load_study(path)
    return None


def _label(cell: dict) -> str:
    """The study's model label of a cell: its arm without the +<sampler> of a fitted sampler."""
    suffix = f"+{cell.get('sampler')}"
    arm = cell["arm"]
    return arm[: -len(suffix)] if cell.get("sampler", "prior") != "prior" and arm.endswith(suffix) else arm


# -- statistics -------------------------------------------------------------------------------------------------------


def t_interval(values: list[float]) -> tuple[float, float | None, float | None]:
    """(mean, low, high) of the 95 % t-interval over seeds; one value has no interval (None, None)."""
    from scipy import stats

    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, None, None
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def cell_values(cell: dict) -> dict[str, tuple[float, object, object]]:
    """{column: (value, sample images, reference images)} of every metric value the cell holds. A cell may hold a
    moded metric twice, the second pass under '<metric>@<mode>' (fid@legacy_tensorflow beside fid in clean mode)."""
    out = {}
    results = cell.get("results") or {}
    for column, key, value_key in VALUES:
        for entry in (entry for name, entry in results.items() if name == key or name.startswith(f"{key}@")):
            value = entry.get(value_key) if isinstance(entry, dict) else None
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            mode = (entry.get("protocol") or {}).get("mode")
            name = f"{column}_{mode}" if column in MODED and mode else column
            out[name] = (float(value), entry.get("images"), entry.get("reference_images"))
    return out


def _one_or_all(values: list) -> object:
    """The value all seeds share, else every seed's, semicolon-joined."""
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else ";".join(map(str, values))


def metric_columns(cells: list[dict]) -> tuple[dict, list[str]]:
    """Each metric value's mean, t-interval and counts over the seeds (columns), and notes on seeds lacking one."""
    per_cell = [cell_values(c) for c in cells]
    names = list(dict.fromkeys(name for values in per_cell for name in values))
    out, notes = {}, []
    for name in names:
        found = [values[name] for values in per_cell if name in values]
        mean, low, high = t_interval([v for v, _, _ in found])
        out |= {
            name: mean,
            f"{name}_low": low,
            f"{name}_high": high,
            f"{name}_images": _one_or_all([i for _, i, _ in found]),
            f"{name}_reference_images": _one_or_all([r for _, _, r in found]),
        }
        if len(found) < len(cells):
            notes.append(f"{name} over {len(found)} of {len(cells)} seeds")
    return out, notes


# -- training: length, cost, size -------------------------------------------------------------------------------------


def training_log(folder: Path, cell: dict) -> list[dict]:
    """The run's metrics.jsonl: the committed copy beside the result, else the run folder's own."""
    run = Path(cell["source"])
    for path in (Path(folder) / f"{run.name}.metrics.jsonl", run / "metrics.jsonl"):
        if path.is_file():
            rows = []
            for line in path.read_text().splitlines():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
            return rows
    return []


def training_seconds(log: list[dict], batch_size: int) -> float | None:
    """Seconds spent training, from the log's throughput windows: over every session of a resumed run, without
    the checkpoint and sample-grid writes (a result's own seconds.training counts only the last session)."""
    windows = [r for r in log if r.get("images_per_s") and r.get("steps_averaged")]
    if not windows or not batch_size:
        return None
    return sum(r["steps_averaged"] * batch_size / r["images_per_s"] for r in windows)


def _environment(cell: dict) -> dict:
    try:
        return json.loads((Path(cell["source"]) / "environment.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _parameters(cell: dict) -> int | None:
    """Trainable parameters of the run folder's model (for results from before the training record held them)."""
    weights = Path(cell["source"]) / "model" / "model.safetensors"
    if not weights.is_file():
        return None
    import warnings

    from genzoo.modelfile.hub import load

    with warnings.catch_warnings():  # an old config's translation notes: not the table's business
        warnings.simplefilter("ignore")
        model = load(Path(cell["source"]), device="cpu")
    return sum(p.numel() for p in model.parameters())


def run_cost(folder: Path, cell: dict, recipe) -> tuple[dict, list[str]]:
    """One run's threads, parameters, epochs, images/s and core-hours, each from the result's training record when
    it holds it, else from the run folder or the study's recipe (said in the notes)."""
    record, notes = cell.get("training") or {}, []
    env = _environment(cell)
    threads = record.get("threads") or env.get("threads")
    processes = record.get("processes") or env.get("processes") or 1
    if threads is None and recipe is not None and recipe.train.threads:
        threads = recipe.train.threads
        notes.append("threads from the recipe's train.threads")
    parameters = record.get("parameters")
    if parameters is None:
        parameters = _parameters(cell)
        notes.append("parameters counted in the run folder" if parameters else "parameters not recorded")
    log = training_log(folder, cell)
    epochs = record.get("epochs") or (recipe.train.epochs if recipe is not None else None)
    if epochs is None and log and "epoch" in log[-1]:
        epochs = log[-1]["epoch"]
        notes.append("epochs: whole epochs completed (the log's counter)")
    seconds = training_seconds(log, record.get("batch_size"))
    if seconds is None and (cell.get("seconds") or {}).get("training"):
        seconds = cell["seconds"]["training"]
        notes.append("training seconds of the last session (no training log)")
    images = record.get("images_seen")
    return {
        "threads": threads,
        "processes": processes,
        "parameters": parameters,
        "epochs": epochs,
        "images_per_s": images / seconds if images and seconds else None,
        "core_hours": seconds * threads * processes / 3600 if seconds and threads else None,
    }, notes


def _mean(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


# -- rows -------------------------------------------------------------------------------------------------------------


def _recipe_names(recipe) -> dict:
    if recipe is None:
        return {}
    prior = (recipe.prior or {}).get("name")
    return {"model": recipe.model.get("name"), "data": recipe.data.get("name"), "prior": prior}


def _display(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def retrain_command(spec, spec_path: Path, label: str, seed: int, threads) -> str:
    """The `genzoo train` line that trains one run of a study exactly as the study did (bit-exact on CPU):
    `genzoo study` itself trains no run whose result is committed."""
    import shlex

    from genzoo.analysis.study import budget_overrides

    entry = spec.models[label]
    root = Path(spec.output_dir) / spec.name
    overrides = [
        *spec.overrides,
        *entry["overrides"],
        *budget_overrides(spec, entry, []),
        f"seed={seed}",
        f"name={label}-s{seed}",
        f"output_dir={root}",
    ]
    prefix = f"OMP_NUM_THREADS={threads} " if threads else ""
    return prefix + shlex.join(["genzoo", "train", _display(entry["recipe"]), *overrides])


def _group_row(folder: Path, study: str, found, cells: list[dict], runs: dict) -> dict:
    """The table row of one (arm, sampler) over its seeds."""
    cells = sorted(cells, key=lambda c: c["seed"])
    first, label = cells[0], _label(cells[0])
    recipe = (runs.get(f"{label}-s{first['seed']}") or {}).get("recipe")
    record = first.get("training") or {}
    names = {**_recipe_names(recipe), **{k: record[k] for k in ("model", "data", "prior") if record.get(k)}}
    if not names.get("data"):
        names["data"] = ((first["results"].get("fid") or {}).get("protocol") or {}).get("dataset")
    costs, notes = [], []
    for cell in cells:
        cost, said = run_cost(folder, cell, recipe)
        costs.append(cost)
        notes += [n for n in said if n not in notes]
    metrics, metric_notes = metric_columns(cells)
    commits = [c.get("genzoo_commit") or "not recorded" for c in cells]
    row = {
        "model": names.get("model") or "not recorded",
        "data": names.get("data") or "not recorded",
        "prior": names.get("prior"),
        "sampler": first.get("sampler", "prior"),
        "arm": first["arm"],
        "study": study,
        "seeds": len(cells),
        "seed_list": ";".join(str(c["seed"]) for c in cells),
        "steps": _one_or_all([(c.get("training") or {}).get("steps") for c in cells]),
        "epochs": _one_or_all([c["epochs"] for c in costs]),
        "images": _one_or_all([(c.get("training") or {}).get("images_seen") for c in cells]),
        "parameters": _one_or_all([c["parameters"] for c in costs]),
        "threads": _one_or_all([c["threads"] for c in costs]),
        "train_images_per_s": _mean([c["images_per_s"] for c in costs]),
        "train_core_hours": _mean([c["core_hours"] for c in costs]),
        **metrics,
        "genzoo_commit": _one_or_all(commits),
        "weights_sha256": ";".join(c.get("weights_sha256") or "not recorded" for c in cells),
        "command": first.get("command") or (f"genzoo study {_display(found[0])}" if found else "no spec: pass --spec"),
        "notes": "; ".join(notes + metric_notes),
        "_cells": cells,
        "_label": label,
        "_study": found[1].name if found else study,  # the Hub repository's name: the study that trained the run
        "_run_dir": Path(first["source"]),
    }
    if found and label in found[1].models:
        row["_retrain"] = retrain_command(found[1], found[0], label, first["seed"], costs[0]["threads"])
    return row


def zoo_rows(result_folders, specs=()) -> list[dict]:
    """One row per (study, arm, sampler) of the committed study results in `result_folders` (one folder per study),
    in the study's order of models and samplers. `specs`: study YAMLs to look in besides recipes/studies/."""
    from genzoo.analysis.study import study_runs

    rows = []
    for folder in result_folders:
        cells = read_cells(folder)
        study = Path(cells[0]["source"]).parent.name
        found = find_spec(Path(folder), study, specs)
        runs = study_runs(found[1]) if found else {}
        if found:  # a folder of further evaluations of a study's runs (a larger protocol) is named by its folder
            own = Path(found[1].committed_results or "").name == Path(folder).name
            study = found[1].name if own else Path(folder).name
        groups: dict[tuple, list] = {}
        for cell in cells:
            groups.setdefault((cell["arm"], cell.get("sampler", "prior")), []).append(cell)
        order = _group_order(found[1] if found else None)
        for key in sorted(groups, key=lambda k: (order(_label(groups[k][0]), k[1]), k)):
            rows.append(_group_row(Path(folder), study, found, groups[key], runs))
    return rows


def _group_order(spec):
    """Sort key: the spec's order of models, then of samplers (unknown ones last)."""
    labels = list(spec.models) if spec else []
    samplers = list(spec.samplers) if spec else []

    def key(label, sampler):
        return (
            labels.index(label) if label in labels else len(labels),
            samplers.index(sampler) if sampler in samplers else len(samplers),
        )

    return key


# -- the CSV ----------------------------------------------------------------------------------------------------------


def columns_of(rows: list[dict]) -> list[str]:
    """The table's columns: the fixed head, every metric value any row holds (in VALUES order), the tail."""
    present = {k for row in rows for k in row}
    metric = []
    for column, _, _ in VALUES:
        names = sorted(k for k in present if k == column or (column in MODED and k.startswith(f"{column}_")))
        for name in names:
            if name.endswith(VALUE_PARTS[1:]) or (column == "fid" and name.startswith("fid_infinity")):
                continue
            metric += [f"{name}{part}" for part in VALUE_PARTS]
    return HEAD_COLUMNS + metric + TAIL_COLUMNS


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def zoo_csv_text(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = columns_of(rows)
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(c)) for c in columns])
    return out.getvalue()


def write_zoo_csv(rows: list[dict], path) -> Path:
    """Write the table (atomically); returns its path."""
    from genzoo.core.io import atomic_write_text

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, zoo_csv_text(rows))
    return path


def read_zoo_csv(path) -> list[dict]:
    """The table's rows as {column: text}; an absent file is an empty table."""
    path = Path(path)
    if not path.is_file():
        return []
    return list(csv.DictReader(io.StringIO(path.read_text())))


def row_id(row: dict) -> str:
    return f"{row['study']}/{row['arm']}"


# -- what a person reads ----------------------------------------------------------------------------------------------


def headline(row: dict) -> str:
    """The row's headline number: FID (clean mode when there) with its interval, else the reconstruction mse."""
    fids = [c for c in columns_of([row]) if c.startswith("fid_") and not c.startswith("fid_infinity")]
    fids = [c for c in fids if not c.endswith(VALUE_PARTS[1:]) and _number(row.get(c)) is not None]
    name = "fid_clean" if "fid_clean" in fids else (fids[0] if fids else None)
    if name is None:
        mse = _number(row.get("mse"))
        return "" if mse is None else f"mse {mse:.4g}"
    value, low, high = (_number(row.get(f"{name}{p}")) for p in ("", "_low", "_high"))
    interval = f" [{low:.1f}, {high:.1f}]" if low is not None and high is not None else ""
    images, reference = (_number(row.get(f"{name}{p}")) for p in ("_images", "_reference_images"))
    counts = f" at {images:,.0f} vs {reference:,.0f} images" if images and reference else ""
    return f"FID ({name[4:]}{counts}) {value:.1f}{interval}"


def _number(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def print_zoo(console, rows: list[dict], path: Path) -> None:
    """A short table of the rows written to `path`."""
    from rich.table import Table

    table = Table("row", "model", "data", "prior", "sampler", "seeds", "headline (95 % t over seeds)", "core-h")
    for row in rows:
        hours = _number(row.get("train_core_hours"))
        table.add_row(
            row_id(row),
            str(row["model"]),
            str(row["data"]),
            str(row.get("prior") or ""),
            str(row["sampler"]),
            str(row["seeds"]),
            headline(row),
            "" if hours is None else f"{hours:.2f}",
        )
    console.print(table)
    console.print(f"wrote {path}: {len(rows)} rows", markup=False)
