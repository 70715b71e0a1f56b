"""FID of trained models under each sampler: the model's prior against densities fitted to its codes after training.

For every run given: fit `gaussian`, `gmm` and `flow` on its training codes (seed 0, 10 % held out; the fit's
seconds and held-out log-likelihood recorded), then FID (clean mode) of `count` samples under each sampler
against `count` test images, with a bootstrap interval. One JSON line per (run, sampler, mode) in --out (a run
stopped part-way resumes: cells already there are skipped), and a Markdown table beside it. With --cells, every row
is also written as a result cell of the study that trained the run (its committed result gives the training record,
weights and commit; a second FID mode goes in under 'fid@<mode>'), so `genzoo zoo` puts the larger protocol in the
results table beside the study's own rows.

    OMP_NUM_THREADS=1 python bench/samplers_fid.py runs/studies/converged_mnist/ae-s0 ... --count 1000 \\
        --out bench/results/samplers_mnist.jsonl
    python bench/samplers_fid.py --cells results/studies/converged_mnist_10k \\
        --out bench/results/samplers_mnist_10k.jsonl       (no runs: rewrite the cells from the rows measured)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

SAMPLERS = ("prior", "gaussian", "gmm", "flow")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="*")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--mode", default="clean", help="FID mode: clean, or legacy_tensorflow (the papers' TF FID)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="bench/results/samplers_mnist.jsonl")
    parser.add_argument("--cells", default=None, help="also write the rows as study result cells into this folder")
    parser.add_argument("--study-results", default="results/studies/converged_mnist", help="the study's own cells")
    args = parser.parse_args()

    import torch

    import genzoo
    from genzoo.metrics.evaluate import evaluate

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    done = {(r["run"], r["sampler"], r["mode"]) for r in _rows(out)}
    for run in args.runs:
        name = Path(run).name
        for sampler in args.samplers.split(","):
            if (name, sampler, args.mode) in done:
                continue
            fit = None
            if sampler != "prior":
                folder = Path(run) / "model" / "samplers" / sampler
                if not folder.is_dir():
                    genzoo.fit_sampler(run, sampler, data_root=args.data_root)
                fit = json.loads((folder / "config.json").read_text())["fit"]
            model = genzoo.load(run, sampler=sampler)
            start = time.perf_counter()
            fid = {"count": args.count, "reference_count": args.count, "bootstrap": args.bootstrap, "mode": args.mode}
            options = {"fid": fid}
            result = evaluate(model, ["fid"], options, data_root=args.data_root)["fid"]
            row = {
                "run": name,
                "sampler": sampler,
                "fid": result["fid"],
                "fid_ci": [result.get("fid_ci_low"), result.get("fid_ci_high")],
                "images": result["images"],
                "reference_images": result["reference_images"],
                "mode": result["protocol"].get("mode"),
                "fit_seconds": None if fit is None else fit["fit_seconds"],
                "held_out_log_likelihood": None if fit is None else fit["log_likelihood_held_out"],
                "eval_seconds": round(time.perf_counter() - start, 1),
                "threads": torch.get_num_threads(),
                "load_average": round(os.getloadavg()[0], 2),
            }
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
            if args.cells:
                write_cells(out, Path(args.cells), Path(args.study_results))
    _table(out)
    if args.cells:
        write_cells(out, Path(args.cells), Path(args.study_results))


def write_cells(out: Path, folder: Path, study_results: Path) -> None:
    """One study result cell per (run, sampler) of the rows: the study's committed cell of the run under its prior
    gives the training record, weights, commit and source; FID replaces its results ('fid' in clean mode, 'fid@<mode>'
    for another mode). Each cell's metrics.jsonl is copied beside it so the table's cost columns need no run folder."""
    import shutil

    from genzoo.core.io import write_json

    folder.mkdir(parents=True, exist_ok=True)
    cells: dict[str, dict] = {}
    for r in _rows(out):
        base = json.loads((study_results / f"{r['run']}.json").read_text())
        sampler = r["sampler"]
        name = r["run"] if sampler == "prior" else f"{r['run']}+{sampler}"
        cell = cells.setdefault(name, _cell_of(base, r, name))
        lo, hi = r["fid_ci"]
        key = "fid" if r["mode"] == "clean" else f"fid@{r['mode']}"
        cell["results"][key] = {
            "fid": r["fid"],
            "fid_ci_low": lo,
            "fid_ci_high": hi,
            "images": r["images"],
            "reference_images": r["reference_images"],
            "protocol": _protocol(base, r),
            "seconds": r["eval_seconds"],
            "threads": r["threads"],
        }
        commands = cell.setdefault("_commands", [])
        commands.append(_command(r, base["source"], out))
    for name, cell in cells.items():
        cell["command"] = " && ".join(dict.fromkeys(cell.pop("_commands")))
        write_json(folder / f"{name}.json", cell)
        log = study_results / f"{cell['source'].rsplit('/', 1)[-1]}.metrics.jsonl"
        if log.is_file():
            shutil.copyfile(log, folder / log.name)


def _cell_of(base: dict, row: dict, name: str) -> dict:
    sampler, fit = row["sampler"], None
    if sampler != "prior":  # the fit's own record where the run folder is here, else the row's two figures
        config = Path(base["source"]) / "model" / "samplers" / sampler / "config.json"
        fit = {"fit_seconds": row["fit_seconds"], "log_likelihood_held_out": row["held_out_log_likelihood"]}
        fit = json.loads(config.read_text())["fit"] if config.is_file() else fit
    keep = ("seed", "source", "training", "weights_sha256", "genzoo_commit", "budget")
    return {
        "run": name,
        "arm": base["arm"] if sampler == "prior" else f"{base['arm']}+{sampler}",
        "sampler": sampler,
        **({"sampler_fit": fit} if fit else {}),
        **{k: base[k] for k in keep if k in base},
        "results": {},
    }


def _protocol(base: dict, row: dict) -> dict:
    """The study's FID protocol of the run (data, split, the weights' hash and step) at this row's count and mode."""
    study = base["results"]["fid"]["protocol"]
    keep = ("dataset", "split", "model_step", "model", "genzoo_version")
    counts = {"count": row["images"], "reference_count": row["reference_images"], "mode": row["mode"]}
    return {
        "metric": "fid",
        **{k: study[k] for k in keep if k in study},
        "mode": row["mode"],
        "options": {**study.get("options", {}), **counts},
        "sampler": {"name": row["sampler"]},
    }


def _command(row: dict, source: str, out: Path) -> str:
    """The line that measured the row (the data from $GENZOO_DATA/mnist, or add --data-root)."""
    return (
        f"OMP_NUM_THREADS={row['threads']} python bench/samplers_fid.py {source} --samplers {row['sampler']} "
        f"--count {row['images']} --mode {row['mode']} --out {out}"
    )


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _table(path: Path) -> None:
    rows = _rows(path)
    lines = [
        f"FID of N samples against N test images; interval: 1.96 bootstrap std. Rows from `{path}`.",
        "",
        "| run | sampler | mode | N | FID | 95 % interval | held-out log-lik. (nats/code) | fit s | eval s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lo, hi = r["fid_ci"]
        ci = f"{lo:.1f}-{hi:.1f}" if lo is not None else "-"
        ll = f"{r['held_out_log_likelihood']:.2f}" if r["held_out_log_likelihood"] is not None else "-"
        fit = f"{r['fit_seconds']:.1f}" if r["fit_seconds"] is not None else "-"
        cells = [r["run"], r["sampler"], r["mode"], r["images"], f"{r['fid']:.1f}", ci, ll, fit, r["eval_seconds"]]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
