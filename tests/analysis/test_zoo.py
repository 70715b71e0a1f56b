"""The zoo's results table from a tiny digits study (2 arms x 2 seeds, under the prior and a fitted gmm): the CSV's
means and t-intervals against the result JSONs by hand, one seed giving no interval, rows pushed to the fake Hub
and recorded in pretrained.json, `genzoo list --pretrained` telling published rows from reproducible ones, a
missing run named with the `genzoo train` line that retrains it bit-exactly, and CelebA rows refused."""

from __future__ import annotations

import csv
import json
import math
import re
import shlex
import shutil

import pytest
import yaml

from genzoo.core.errors import GenzooError
from genzoo.core.io import file_sha256
from tests.helpers.cli import ONE_THREAD, run_cli
from tests.helpers.fake_hub import FakeHub
from tests.helpers.recipes import TINY, write_recipe

T_975_DF1 = 12.706204736174698  # the 97.5 % quantile of Student's t with 1 degree of freedom (two seeds)
WIDE = {"COLUMNS": "3000"}  # rich tables unwrapped in the CLI's output
# TINY with each model's own optimiser settings: the mbrce arm has other phases than the AAE's
BASE = {
    **TINY,
    "model": {k: v for k, v in TINY["model"].items() if "lr" not in k},
    "train": {k: v for k, v in TINY["train"].items() if k != "phases"},
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from genzoo.analysis.study import run_study

    folder = tmp_path_factory.mktemp("zoo")
    train = {"steps": 10, "checkpoint_every": 10, "log_every": 5, "sample_every": 10}
    aae = write_recipe(folder, "aae", BASE, train=train)
    mbrce = write_recipe(folder, "mbrce", BASE, prior={"name": "mbrce", "target": "gaussian", "std": 2.0}, train=train)
    spec = folder / "tiny.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "output_dir": str(folder / "runs"),
                "seeds": [0, 1],
                "budget": {"steps": 10},
                "overrides": ["train.threads=1"],
                "models": {"aae": str(aae), "mbrce": str(mbrce)},
                "metrics": ["reconstruction", "fid"],
                "metric_options": {"fid": {"count": 12, "reference_count": 12}},
                "samplers": ["prior", "gmm"],
                "sampler_options": {"gmm": {"components": 2}},
                "samples": 4,
                "committed_results": str(folder / "committed"),
            }
        )
    )
    run_study(spec)
    return spec, folder / "committed", folder


def _by_hand(committed, arm, metric, value):
    values = [
        json.loads(p.read_text())["results"][metric][value]
        for p in sorted(committed.glob("*.json"))
        if json.loads(p.read_text())["arm"] == arm
    ]
    mean = sum(values) / 2
    half = T_975_DF1 * math.sqrt(sum((v - mean) ** 2 for v in values)) / math.sqrt(2)  # sd of 2 values, / sqrt(n)
    return mean, mean - half, mean + half


def test_the_csv_holds_each_arms_means_and_t_intervals_over_seeds(study, tmp_path):
    spec, committed, folder = study
    out = tmp_path / "zoo.csv"
    proc = run_cli("zoo", committed, "--spec", spec, "--out", out, env={**ONE_THREAD, **WIDE})
    assert f"wrote {out}: 4 rows" in proc.stdout and "tiny/mbrce+gmm" in proc.stdout
    rows = {r["arm"]: r for r in csv.DictReader(out.open())}
    assert list(rows) == ["aae", "aae+gmm", "mbrce", "mbrce+gmm"]
    for arm, row in rows.items():
        cells = [json.loads((committed / f"{arm.split('+')[0]}-s{s}{arm[len(arm.split('+')[0]) :]}.json").read_text())
                 for s in (0, 1)]  # fmt: skip
        for column, metric, value in (("fid_clean", "fid", "fid"), ("mse", "reconstruction", "mse")):
            expected = _by_hand(committed, arm, metric, value)
            got = [float(row[f"{column}{part}"]) for part in ("", "_low", "_high")]
            assert got == pytest.approx(expected, rel=1e-5), (arm, column)
        assert row["fid_clean_images"] == "12" and row["fid_clean_reference_images"] == "12"
        assert row["seeds"] == "2" and row["seed_list"] == "0;1" and row["data"] == "digits"
        assert row["model"] == "mlp_aae" and row["prior"] == arm.split("+")[0].replace("aae", "gaussian")
        assert row["sampler"] == ("gmm" if "+" in arm else "prior") and row["study"] == "tiny"
        assert row["steps"] == "10" and row["images"] == "500" and row["threads"] == "1"
        assert int(row["parameters"]) == cells[0]["training"]["parameters"] > 0
        assert float(row["train_core_hours"]) > 0 and float(row["train_images_per_s"]) > 0
        assert row["weights_sha256"] == ";".join(c["weights_sha256"] for c in cells)
        assert re.fullmatch("[0-9a-f]{40}", row["genzoo_commit"]) and row["genzoo_commit"] == cells[0]["genzoo_commit"]
        assert row["command"] == f"genzoo study {spec}"


def test_one_seed_gives_its_value_and_no_interval(study, tmp_path):
    from genzoo.analysis.zoo import write_zoo_csv, zoo_rows

    spec, committed, _ = study
    one = tmp_path / "one"
    one.mkdir()
    for path in committed.glob("*-s0*"):
        shutil.copy(path, one)
    rows = zoo_rows([one], specs=[spec])
    cell = json.loads((committed / "aae-s0.json").read_text())
    aae = next(r for r in rows if r["arm"] == "aae")
    assert aae["seeds"] == 1 and aae["fid_clean"] == cell["results"]["fid"]["fid"]
    assert aae["fid_clean_low"] is None and aae["fid_clean_high"] is None
    written = next(csv.DictReader(write_zoo_csv(rows, tmp_path / "zoo.csv").open()))
    assert written["fid_clean_low"] == "" and written["fid_clean_high"] == "" and written["fid_clean"] != ""


def test_a_folder_of_further_evaluations_gives_rows_of_its_own_with_a_second_fid_mode(study, tmp_path):
    """bench/samplers_fid.py --cells: a study's runs measured again at a larger protocol, FID in two modes."""
    from genzoo.analysis.zoo import zoo_rows
    from genzoo.analysis.zoo_publish import eval_metrics, repo_for

    spec, committed, _ = study
    larger = tmp_path / "tiny_10k"
    larger.mkdir()
    cell = json.loads((committed / "aae-s0.json").read_text())
    tf = {**cell["results"]["fid"], "fid": 12.5, "images": 100}
    tf["protocol"] = {**tf["protocol"], "mode": "legacy_tensorflow"}
    cell["results"] = {"fid": cell["results"]["fid"], "fid@legacy_tensorflow": tf}
    cell["command"] = "python bench/samplers_fid.py runs/aae-s0 --count 100"
    (larger / "aae-s0.json").write_text(json.dumps(cell))
    (row,) = zoo_rows([larger], specs=[spec])
    assert row["study"] == "tiny_10k" and row["arm"] == "aae" and row["seeds"] == 1
    assert row["fid_clean"] == cell["results"]["fid"]["fid"] and row["fid_legacy_tensorflow"] == 12.5
    assert row["fid_legacy_tensorflow_images"] == 100 and row["command"] == cell["command"]
    assert repo_for("org", row) == "org/tiny-aae"  # the weights' repository is the training study's, as its rows'
    assert set(eval_metrics([row], row["_run_dir"])) == {"tiny_10k/fid", "tiny_10k/fid@legacy_tensorflow"}


def test_rows_pushed_to_the_hub_fill_pretrained_json_and_the_listing(study, tmp_path):
    spec, committed, folder = study
    out, table = tmp_path / "zoo.csv", tmp_path / "pretrained.json"
    with FakeHub() as hub:
        env = {"HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": hub.url, "HF_TOKEN": hub.token, **ONE_THREAD, **WIDE}
        pushed = run_cli(
            "zoo", committed, "--spec", spec, "--out", out, "--push", "--org", "me",
            "--rows", "tiny/aae", "--rows", "tiny/aae+gmm", "--pretrained-file", table, env=env,
        )  # fmt: skip
        assert "pushing" in pushed.stdout and "recorded 2 rows" in pushed.stdout
        assert list(hub.repos) == ["me/tiny-aae"]  # two rows, one run's weights: one push
        files = hub.files("me/tiny-aae")
        weights = folder / "runs" / "tiny" / "aae-s0" / "model" / "model.safetensors"
        assert files["model.safetensors"] == weights.read_bytes()
        evaluated = json.loads(files["eval.json"])
        assert {"fid", "fid+gmm", "reconstruction"} <= set(evaluated) and b"fid" in files["README.md"]
        revision = hub.repos["me/tiny-aae"]["branches"]["main"]
    rows = json.loads(table.read_text())["weights"]
    assert set(rows) == {"tiny/aae", "tiny/aae+gmm"}
    assert rows["tiny/aae"]["repo"] == "me/tiny-aae" and rows["tiny/aae"]["revision"] == revision
    notes = rows["tiny/aae"]["notes"]
    assert notes.startswith("digits, 10 steps") and "95 % t-interval over 2 seeds" in notes
    assert "FID (clean at 12 vs 12 images)" in notes  # the protocol with the number
    assert "12 samples vs 12 digits/test" in notes and "gmm sampler is not uploaded" in rows["tiny/aae+gmm"]["notes"]

    listed = run_cli("list", "--pretrained", "--zoo", out, "--pretrained-file", table, env=WIDE).stdout
    lines = {line.split()[1]: line for line in listed.splitlines() if line.split()[1:2] and "tiny/" in line}
    assert "published" in lines["tiny/aae"] and "genzoo sample hf://me/tiny-aae@" in lines["tiny/aae"]
    assert "reproducible, not on the Hub" in lines["tiny/mbrce"] and f"genzoo study {spec}" in lines["tiny/mbrce"]


def test_a_missing_run_is_named_with_the_line_that_retrains_it_bit_exactly(study, tmp_path):
    from genzoo.analysis.zoo import zoo_rows
    from genzoo.analysis.zoo_publish import publish

    spec, committed, folder = study
    run = folder / "runs" / "tiny" / "mbrce-s0"
    shutil.move(run, tmp_path / "kept")
    rows = zoo_rows([committed], specs=[spec])
    with pytest.raises(GenzooError, match="retrain it as the study did") as failed:
        publish(rows, "me", tmp_path / "pretrained.json", ["tiny/mbrce"])
    command = str(failed.value).split("): ", 1)[1]
    assert command.startswith("OMP_NUM_THREADS=1 genzoo train ") and not (tmp_path / "pretrained.json").exists()
    argv = shlex.split(command)[2:]  # without OMP_NUM_THREADS=1 and `genzoo`
    run_cli(*argv, env=ONE_THREAD)
    expected = json.loads((committed / "mbrce-s0.json").read_text())["weights_sha256"]
    assert file_sha256(run / "model" / "model.safetensors") == expected

    with pytest.raises(GenzooError, match="trained on CelebA") as refused:
        publish([{**rows[0], "data": "celeba"}], "me", tmp_path / "pretrained.json")
    assert "\n" not in str(refused.value)
