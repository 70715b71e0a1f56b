"""FID of trained models under each sampler: the model's prior against densities fitted to its codes after training.

For every run given: fit `gaussian`, `gmm` and `flow` on its training codes (seed 0, 10 % held out; the fit's
seconds and held-out log-likelihood recorded), then FID (clean mode) of `count` samples under each sampler
against `count` test images, with a bootstrap interval. One JSON line per (run, sampler) in --out (a run stopped
part-way resumes: cells already there are skipped), and a Markdown table beside it.

    OMP_NUM_THREADS=1 python bench/samplers_fid.py runs/studies/converged_mnist/ae-s0 ... --count 1000 \\
        --out bench/results/samplers_mnist.jsonl
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
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--bootstrap", type=int, default=20)
    parser.add_argument("--mode", default="clean", help="FID mode: clean, or legacy_tensorflow (the papers' TF FID)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--out", default="bench/results/samplers_mnist.jsonl")
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
    _table(out)


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
