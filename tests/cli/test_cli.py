"""Every command as a real subprocess, on a really trained model; every bad input gives one clear line."""

import json

import pytest
from PIL import Image

from tests.helpers.cli import run_cli
from tests.helpers.recipes import write_recipe


@pytest.fixture
def trained(tiny_run):
    """The shared tiny MLP AAE (tests/helpers/runs.py), trained by `genzoo train` for 30 steps: its recipe, run."""
    return tiny_run.recipe("aae"), tiny_run("aae")


def test_help_does_not_import_torch():
    """`genzoo --help` stays light (its time is measured in bench/cli_startup.py, not asserted here)."""
    import subprocess
    import sys

    code = "import sys; from genzoo.cli import app; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    proc = run_cli("--help")
    assert "train" in proc.stdout and "--version" in proc.stdout and "<bool>" not in proc.stdout
    assert run_cli("--version").stdout.strip().startswith("genzoo ")


def test_train_says_done(tiny_run):
    assert "done:" in tiny_run.output("aae")  # the shared run's `genzoo train` subprocess


def test_sample_writes_grid_and_images(trained, tmp_path):
    _, run = trained
    run_cli(
        "sample",
        run,
        "--count",
        "10",
        "--out",
        tmp_path / "grid.png",
        "--images-dir",
        tmp_path / "imgs",
        "--seed",
        "3",
    )
    files = sorted((tmp_path / "imgs").glob("*.png"))
    assert len(files) == 10 and Image.open(files[0]).size == (8, 8)
    assert Image.open(tmp_path / "grid.png").size[0] > 8 * 4
    # same seed, same images; model folder works as well as run folder
    run_cli(
        "sample",
        run / "model",
        "-n",
        "10",
        "--out",
        tmp_path / "g2.png",
        "--images-dir",
        tmp_path / "imgs2",
        "--seed",
        "3",
    )
    assert (tmp_path / "imgs2" / "000004.png").read_bytes() == files[4].read_bytes()


def test_reconstruct_and_eval(trained, tmp_path):
    _, run = trained
    run_cli("reconstruct", run, "-n", "8", "--out", tmp_path / "rec.png")
    w, h = Image.open(tmp_path / "rec.png").size
    assert h > w / 8 * 1.5  # two rows: originals above reconstructions
    proc = run_cli("eval", run, "--out", tmp_path / "eval.json")
    result = json.loads((tmp_path / "eval.json").read_text())["reconstruction"]
    assert result["images"] == 297 and 0 < result["mse"] < 0.2 and result["protocol"]["split"] == "test"
    assert result["protocol"]["model_step"] == 30
    assert "reconstruction.mse" in proc.stdout


def list_rows(stdout: str) -> dict[tuple[str, str], list[str]]:
    """`genzoo list`'s table as {(kind, name): [source, description]}, wrapped descriptions joined."""
    rows, last = {}, None
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.split("\u2502")[1:-1]]  # the table's vertical bars
        if len(cells) != 4 or cells[0] == "kind":
            continue
        if cells[0]:
            last = (cells[0], cells[1])
            rows[last] = [cells[2], cells[3]]
        elif last is not None:  # a wrapped description continues on the next line
            rows[last][1] += " " + cells[3]
    return rows


def test_list_shows_sources():
    from genzoo.core.registry import REGISTRIES

    proc = run_cli("list", env={"COLUMNS": "400"})
    rows = list_rows(proc.stdout)
    # one row per registered component, its source cell exactly where the registry says it came from
    entries = {(r.kind, e.name): e.source for r in REGISTRIES.values() for e in r.entries()}
    assert {key: cells[0] for key, cells in rows.items()} == entries
    # and the built-ins' exactly "genzoo", each in its own kind's rows
    for key in [("prior", "gaussian"), ("model", "mlp_aae"), ("dataset", "digits"), ("dataset", "mnist")]:
        assert rows[key][0] == "genzoo", (key, rows[key])
    assert rows["metric", "reconstruction"][0] == "genzoo" and rows["metric", "reconstruction"][1].startswith(
        "Reconstruction error on a split"
    )


def one_line_error(proc, *words):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def test_bad_inputs(trained, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    recipe, run = trained
    (tmp_path / "bad.yaml").write_text("data: {name: digits\n")
    mnist = write_recipe(tmp_path, "m", data={"name": "mnist", "root": str(tmp_path / "nowhere"), "download": False})
    config = (run / "model" / "config.json").read_bytes()
    # a truncated model file, a foreign config, a config cut short, a pickle where the weights should be
    folders = {
        "truncated": {
            "config.json": config,
            "model.safetensors": (run / "model" / "model.safetensors").read_bytes()[:500],
        },
        "foreign": {"config.json": b'{"_class_name": "UNet2DModel"}'},
        "cut": {"config.json": b'{"format": "genzoo-model/1", "model"'},
        "pickled": {"config.json": config, "model.bin": b"\x80\x04"},
    }
    for name, files in folders.items():
        (tmp_path / name).mkdir()
        for file, content in files.items():
            (tmp_path / name / file).write_bytes(content)
    cases = [
        (("train", tmp_path / "missing.yaml"), ("does not exist",)),
        (("train", tmp_path / "bad.yaml"), ("not valid YAML", "line")),
        (("train", recipe, "model.name=vea"), ("unknown model 'vea'",)),
        (("train", recipe, "train.batch_size=lots"), ("train.batch_size", "integer")),
        (("train", mnist), ("not found under", "data.root")),
        (("sample", tmp_path / "no-run"), ("does not exist",)),
        (("eval", run, "--metrics", "recon"), ("unknown metric 'recon'", "did you mean")),
        (("sample", tmp_path / "truncated"), ("truncated or not a safetensors file",)),
        (("sample", tmp_path / "foreign"), ("not a genzoo model config",)),
        (("sample", tmp_path / "cut"), ("not valid JSON",)),
        (("sample", tmp_path / "pickled"), ("pickle",)),
    ]
    with ThreadPoolExecutor(2) as pool:  # independent subprocesses, two at a time: one per core here
        procs = list(pool.map(lambda case: run_cli(*case[0], check=False), cases))
    for (_, words), proc in zip(cases, procs):
        one_line_error(proc, *words)


def test_debug_shows_traceback(tmp_path):
    proc = run_cli("--debug", "train", tmp_path / "missing.yaml", check=False)
    assert proc.returncode != 0 and "Traceback" in proc.stderr
