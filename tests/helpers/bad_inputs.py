"""Bad inputs a user can give genzoo, each run through the real CLI (in process), with the line it answers.

`python tests/helpers/bad_inputs.py > docs/bad_inputs.md` writes the table; tests/cli/test_bad_inputs.py checks
every case fails cleanly (exit 1, one line, no traceback) and that the committed table is what the code says today.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

import yaml

RECIPE = {
    "data": {"name": "digits"},
    "model": {"name": "mlp_aae", "latent_dim": 4, "hidden": 32},
    "prior": {"name": "gaussian", "std": 2.0},
    "train": {"batch_size": 50, "steps": 4, "log_every": 2, "sample_every": 4, "checkpoint_every": 4},
    "output_dir": "runs",
}

# (what, arguments); "R" stands for the recipe above, "M" for a model trained from it.
CASES = [
    ("learning rate NaN", ["train", "R", "train.phases.reconstruction.lr=.nan"]),
    ("negative learning rate", ["train", "R", "train.phases.reconstruction.lr=-0.1"]),
    ("dropout above 1", ["train", "R", "model.dropout=2"]),
    ("huge latent_dim (allocation fails)", ["train", "R", "model.latent_dim=100000000000"]),
    ("log_every 0", ["train", "R", "train.log_every=0"]),
    ("sample_every 0", ["train", "R", "train.sample_every=0"]),
    ("checkpoint_every 0", ["train", "R", "train.checkpoint_every=0"]),
    ("checkpoint_every -1", ["train", "R", "train.checkpoint_every=-1"]),
    ("grad_accumulation 0", ["train", "R", "train.grad_accumulation=0"]),
    ("sample_count 0", ["train", "R", "train.sample_count=0"]),
    ("steps 0", ["train", "R", "train.steps=0"]),
    ("epochs -1", ["train", "R", "train.steps=null", "train.epochs=-1"]),
    ("batch size 0", ["train", "R", "train.batch_size=0"]),
    ("name escaping output_dir", ["train", "R", "name=../elsewhere"]),
    ("unknown key", ["train", "R", "prior.sdt=5"]),
    ("wrong type", ["train", "R", "train.batch_size=many"]),
    ("unknown prior", ["train", "R", "prior.name=gausian"]),
    ("duplicate YAML key", ["train", "DUP"]),
    ("recipe not YAML", ["train", "BROKEN"]),
    ("missing recipe", ["train", "nowhere.yaml"]),
    ("--device cuda without a GPU", ["sample", "M", "--device", "cuda"]),
    ("--device nonsense", ["sample", "M", "--device", "tpu9"]),
    ("sample -n 0", ["sample", "M", "-n", "0"]),
    ("no such model", ["sample", "runs/nothing"]),
    ("pickle file as the LPIPS network", ["eval", "M", "--metrics", "ppl", "ppl.lpips=evil.pkl", "ppl.samples=4"]),
    ("unknown metric", ["eval", "M", "--metrics", "fdi"]),
    ("unknown metric option", ["eval", "M", "--metrics", "parzen", "parzen.sampels=10"]),
    ("Nystrom with one landmark", ["eval", "M", "--metrics", "renyi_features", "renyi_features.landmarks=1"]),
    ("unknown Renyi estimator", ["eval", "M", "--metrics", "renyi_features", "renyi_features.estimator=fast"]),
    (
        "landmarks with the Lanczos estimator",
        [
            "eval",
            "M",
            "--metrics",
            "renyi_features",
            "renyi_features.estimator=lanczos",
            "renyi_features.landmarks=50",
        ],
    ),
    ("unknown sampler", ["fit-sampler", "M", "--sampler", "gmn"]),
    ("unknown sampler option", ["fit-sampler", "M", "--sampler", "gmm", "gmm.componets=3"]),
    ("sampler option out of range", ["fit-sampler", "M", "--sampler", "gmm", "components=0"]),
    ("fitting the prior", ["fit-sampler", "M", "--sampler", "prior"]),
    ("sampler name with a slash", ["fit-sampler", "M", "--sampler", "gmm", "--name", "../gmm"]),
    ("VAE draws from a model without a posterior", ["fit-sampler", "M", "--sampler", "gmm", "--codes", "draw"]),
    ("sampling from a sampler not fitted", ["sample", "M", "--sampler", "flow"]),
    (
        "a sampler for a metric without samples",
        ["eval", "M", "--metrics", "reconstruction", "reconstruction.sampler=gmm"],
    ),
]


def prepare(folder: Path) -> dict[str, str]:
    """Write the recipes and train the model the cases refer to; returns the placeholders' values."""
    import pickle

    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import Trainer

    (folder / "r.yaml").write_text(yaml.safe_dump(RECIPE))
    (folder / "dup.yaml").write_text("data: {name: digits}\nmodel:\n  name: mlp_aae\n  name: vae\n")
    (folder / "broken.yaml").write_text("data: {name: digits\nmodel: [\n")
    (folder / "evil.pkl").write_bytes(pickle.dumps({"not": "a network"}))
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        Trainer(load_recipe("r.yaml", ["name=m"])).fit()
    finally:
        os.chdir(cwd)
    return {"R": "r.yaml", "DUP": "dup.yaml", "BROKEN": "broken.yaml", "M": "runs/m"}


def run_case(args: list[str], folder: Path, names: dict[str, str]):
    """(exit code, stderr) of `genzoo ARGS` run in `folder`, through the CLI's own entry (typer's CliRunner)."""
    from typer.testing import CliRunner

    from genzoo.cli import app

    argv = [names.get(a, a) for a in args]
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        result = CliRunner().invoke(app, argv)
    finally:
        os.chdir(cwd)
    return result.exit_code, result.stderr


def normalise(text: str, folder: Path) -> str:
    """Stable text for the table: the temporary folder, process ids, sizes that vary."""
    text = text.replace(str(folder), "<tmp>").replace(os.path.realpath(folder), "<tmp>")
    return re.sub(r"\s+", " ", text).strip()


def table() -> str:
    rows = ["| input | command | exit | message |", "|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        names = prepare(folder)
        for what, args in CASES:
            code, err = run_case(args, folder, names)
            line = normalise(err, folder).replace("|", "\\|")
            rows.append(f"| {what} | `genzoo {' '.join(names.get(a, a) for a in args)}` | {code} | {line} |")
    head = (
        "# Bad inputs and what genzoo answers\n\n"
        "Generated by `python tests/helpers/bad_inputs.py > docs/bad_inputs.md` (run from the repository root);\n"
        "`tests/cli/test_bad_inputs.py` fails when this table and the code disagree. `r.yaml` is a 4-step\n"
        "quickstart, `runs/m` a model trained from it. Every case exits 1 with one line on stderr and no traceback\n"
        "(`--debug` shows it).\n\n"
    )
    return head + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    sys.stdout.write(table())
