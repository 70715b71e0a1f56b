"""Publishing rows of the zoo's table: each row's weights (its first seed's run) pushed to the Hub with their model
card through `genzoo push`'s code, and recorded in pretrained.json; and `genzoo list --pretrained`, which shows
the published weights beside every row that is only reproducible.

A row is published from the run folder of its first seed, and only if that folder holds the very weights the
study evaluated (their sha256 is in the result). A missing run is retrained with the `genzoo train` line this
module prints, as the study trained it (bit-exact on CPU). Rows of CelebA-trained models are refused.
"""

from __future__ import annotations

from pathlib import Path

from genzoo.analysis.zoo import headline, read_zoo_csv, row_id
from genzoo.core.errors import GenzooError

REPRODUCIBLE = "reproducible, not on the Hub"


def select_rows(rows: list[dict], wanted: list[str] | None) -> list[dict]:
    """The rows named in `wanted` (study/arm ids), or all of them."""
    if not wanted:
        return list(rows)
    ids = {row_id(r): r for r in rows}
    unknown = [w for w in wanted if w not in ids]
    if unknown:
        raise GenzooError(f"no zoo row {', '.join(unknown)}", f"name rows as study/arm: {', '.join(ids)}")
    return [ids[w] for w in wanted]


def refuse_celeba(rows: list[dict]) -> None:
    trained = [row_id(r) for r in rows if "celeba" in str(r.get("data", "")).lower()]
    if trained:
        raise GenzooError(
            f"rows {', '.join(trained)} were trained on CelebA, whose licence forbids redistributing derived weights",
            "leave them out (--rows): CelebA-trained weights are never published",
        )


def check_run(row: dict) -> Path:
    """The run folder of the row's first seed, holding the weights the study evaluated."""
    from genzoo.core.io import file_sha256

    run = row["_run_dir"]
    weights = run / "model" / "model.safetensors"
    retrain = row.get("_retrain") or f"the study's training of run {run.name} (its spec was not found: pass --spec)"
    if not weights.is_file():
        raise GenzooError(
            f"row {row_id(row)}: its run folder '{run}' (seed {row['_cells'][0]['seed']}) is not here",
            f"retrain it as the study did (bit-exact on CPU; add data.root=... for data elsewhere): {retrain}",
        )
    expected = row["_cells"][0].get("weights_sha256")
    if expected and file_sha256(weights) != expected:
        raise GenzooError(
            f"row {row_id(row)}: '{weights}' is not the model the study evaluated (sha256 differs)",
            f"retrain it as the study did: {retrain}",
        )
    return run


def eval_metrics(rows: list[dict], run: Path) -> dict:
    """eval.json for the upload: every evaluation of the run's first seed (one per sampler), `fid` under the prior,
    `fid+gmm` under the fitted gmm; those of a folder of further evaluations under its name (`<folder>/fid`)."""
    metrics = {}
    for row in rows:
        cell = row["_cells"][0]
        if Path(cell["source"]) != run:
            continue
        suffix = "" if cell.get("sampler", "prior") == "prior" else f"+{cell['sampler']}"
        prefix = "" if row["study"] == row["_study"] else f"{row['study']}/"
        metrics |= {f"{prefix}{name}{suffix}": values for name, values in cell["results"].items()}
    return metrics


def stage_run(run: Path, metrics: dict, into: Path) -> Path:
    """A run folder for `push` to read: links to the model, the recipe and the last sample grid, plus eval.json
    (the study wrote its results elsewhere). The run folder itself is not written to."""
    import json

    stage = into / run.name
    (stage / "model").mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        (stage / "model" / name).symlink_to((run / "model" / name).resolve())
    (stage / "recipe.yaml").symlink_to((run / "recipe.yaml").resolve())
    grids = sorted((run / "samples").glob("step-*.png"))
    if grids:
        (stage / "samples").mkdir()
        (stage / "samples" / grids[-1].name).symlink_to(grids[-1].resolve())
    (stage / "eval.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return stage


def published_notes(row: dict) -> str:
    """pretrained.json's notes: data, training length, the headline FID with its interval and protocol."""
    cell = row["_cells"][0]
    epochs = row.get("epochs")
    epochs = f" ({epochs:g} epochs)" if isinstance(epochs, (int, float)) and epochs >= 1 else ""
    length = f"{row['data']}, {row['steps']} steps{epochs}"
    parts = [length, f"{row['model']} + {row.get('prior')}, sampler {row['sampler']}"]
    fid = cell["results"].get("fid") or {}
    protocol = fid.get("protocol") or {}
    if isinstance(fid.get("fid"), (int, float)):
        where = (protocol.get("reference") or {}).get("dataset") or protocol.get("dataset")
        how = f"{protocol.get('mode', '?')} mode, {fid.get('images')} samples vs {fid.get('reference_images')} {where}"
        if row["seeds"] > 1:
            parts.append(f"{headline(row)} (95 % t-interval over {row['seeds']} seeds; {how})")
            parts.append(f"these weights (seed {cell['seed']}): FID {fid['fid']:.1f}")
        else:
            boot = (
                f", bootstrap interval [{fid['fid_ci_low']:.1f}, {fid['fid_ci_high']:.1f}]"
                if fid.get("fid_ci_low") is not None
                else ""
            )
            parts.append(f"FID {fid['fid']:.1f}{boot} (one seed; {how})")
    else:
        parts.append(headline(row))
    if row["sampler"] != "prior":
        fit = cell.get("sampler_fit") or {}
        parts.append(
            f"the {row['sampler']} sampler is not uploaded: fit it with `genzoo fit-sampler <folder> --sampler "
            f"{row['sampler']} --seed {fit.get('seed', cell['seed'])}` and the study's sampler_options"
        )
    parts.append(f"zoo row {row_id(row)}: {row['command']}")
    return "; ".join(p for p in parts if p)


def update_table(path: Path, entries: dict) -> None:
    """Add or replace rows under "weights" in pretrained.json, keeping the rest of the file."""
    import json

    from genzoo.core.io import write_json
    from genzoo.modelfile.published import pretrained

    data = json.loads(path.read_text()) if path.is_file() else {"weights": {}}
    if path.is_file():
        pretrained(path)  # a broken table is named before it is rewritten
    data.setdefault("weights", {}).update(entries)
    write_json(path, data)


def repo_for(org: str, row: dict) -> str:
    from genzoo.modelfile.hub import check_repo_id

    return check_repo_id(f"{org}/{row['_study']}-{row['_label']}")


def publish(rows: list[dict], org: str, table: Path | None = None, wanted=None, say=lambda text: None) -> dict:
    """Push the first-seed run of each chosen row (once per run: a run's rows under several samplers share its
    weights) and record every row in pretrained.json. Everything is checked before anything is pushed."""
    import tempfile

    from genzoo.modelfile.hub import push
    from genzoo.modelfile.published import PRETRAINED_FILE

    chosen = select_rows(rows, wanted)
    refuse_celeba(chosen)
    runs: dict[Path, list[dict]] = {}
    for row in chosen:
        runs.setdefault(check_run(row), []).append(row)
    entries = {}
    for run, run_rows in runs.items():
        repo = repo_for(org, run_rows[0])
        say(f"pushing {run} to {repo} ({', '.join(row_id(r) for r in run_rows)})")
        with tempfile.TemporaryDirectory(prefix="genzoo-zoo-") as tmp:
            stage = stage_run(run, eval_metrics(rows, run), Path(tmp))
            pushed = push(stage, repo, commit_message=f"genzoo zoo: {row_id(run_rows[0])}, run {run.name}")
        for note in pushed["notes"]:
            say(f"note: {note}")
        for row in run_rows:
            entries[row_id(row)] = {"repo": repo, "revision": pushed["commit"], "notes": published_notes(row)}
    path = Path(table or PRETRAINED_FILE)
    update_table(path, entries)
    say(f"recorded {len(entries)} rows in {path}")
    return entries


def pretrained_listing(zoo_csv: Path, table: Path | None = None) -> list[dict]:
    """Every published weight (pretrained.json) and every zoo row not among them, marked as only reproducible."""
    from genzoo.modelfile.published import pretrained

    published = pretrained(table)
    listing = []
    for name, row in sorted(published.items()):
        at = f"@{row['revision']}" if row.get("revision") else ""
        use = f"genzoo sample hf://{row['repo']}{at}"
        listing.append({"name": name, "status": "published", "where": use, "notes": row.get("notes", "")})
    for row in read_zoo_csv(zoo_csv):
        if row_id(row) not in published:
            seeds = f"{row['seeds']} seed" + ("" if row["seeds"] == "1" else "s")
            what = f"{row['data']}, {row['steps']} steps, {seeds}; {headline(row)}"
            listing.append({"name": row_id(row), "status": REPRODUCIBLE, "where": row["command"], "notes": what})
    return listing


def print_pretrained(console, zoo_csv: Path, table: Path | None = None) -> None:
    from rich.table import Table

    from genzoo.modelfile.published import PRETRAINED_FILE

    listing = pretrained_listing(zoo_csv, table)
    if not any(item["status"] == "published" for item in listing):
        console.print(
            f"No weights are published yet ({Path(table or PRETRAINED_FILE).name} is empty). Maintainers: publish "
            "zoo rows with `genzoo zoo results/studies/<study> --push --org ORG`, or push a run with "
            '`genzoo push runs/<recipe> --repo org/name` and add a row under "weights" in '
            f'{table or PRETRAINED_FILE}: "<recipe>": {{"repo": "org/name", "revision": "<commit>", "notes": "..."}}.',
            markup=False,
        )
    if not listing:
        return
    view = Table()
    for column in ("name", "status", "use / reproduce", "notes"):
        view.add_column(column, overflow="fold")  # a command is never cut short
    for item in listing:
        view.add_row(item["name"], item["status"], item["where"], item["notes"])
    console.print(view)


def zoo_command(folders, out, specs=(), org=None, push=False, wanted=None, table=None, console=None) -> list[dict]:
    """`genzoo zoo`: write the table from the study results and print it; with push, publish its rows."""
    from genzoo.analysis.zoo import print_zoo, write_zoo_csv, zoo_rows

    if push != bool(org):
        raise GenzooError("--push and --org go together", "publish with --push --org ORG (the Hub organisation)")
    if wanted and not push:
        raise GenzooError("--rows chooses rows to publish", "add --push --org ORG, or leave --rows out")
    rows = zoo_rows(folders, specs)
    path = write_zoo_csv(rows, out)
    if console is not None:
        print_zoo(console, rows, path)
    if push:
        say = (lambda text: console.print(text, markup=False)) if console is not None else (lambda text: None)
        publish(rows, org, table, wanted, say=say)
    return rows
