"""`genzoo study`'s runner on a tiny digits study (2 arms x 2 seeds): each run's result written as soon as it is
evaluated, a study killed mid-way resumes without redoing finished runs, --jobs 2 gives the numbers of --jobs 1,
--shard i/k plus --merge gives the same report, and the budget is turned into equal images seen."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from genzoo.analysis.study import budget_overrides, load_study, parse_shard
from tests.helpers.cli import ONE_THREAD, run_cli
from tests.helpers.recipes import TINY_MBRCE_PHASES, write_recipe


def _study(tmp_path, out: str, steps: int = 30, **extra):
    runs = tmp_path / "recipes"
    runs.mkdir(exist_ok=True)
    train = {"steps": 10, "checkpoint_every": 10, "log_every": 10, "sample_every": 1000}
    aae = write_recipe(runs, "aae", train=train)
    mbrce_prior = {"name": "mbrce", "target": "gaussian", "std": 2.0}
    mbrce = write_recipe(runs, "mbrce", prior=mbrce_prior, train={**train, "phases": TINY_MBRCE_PHASES})
    study = tmp_path / f"{out}.yaml"
    study.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "output_dir": str(tmp_path / out),
                "seeds": [0, 1],
                "budget": {"images": steps * 50},
                "overrides": [f"train.checkpoint_every={steps // 3}"],
                "models": {"aae": str(aae), "mbrce": str(mbrce)},
                "factors": {"aae": {"matching": "adversarial"}, "mbrce": {"matching": "mbrce"}},
                "metrics": ["reconstruction", "prior_match"],
                "metric_options": {"prior_match": {"samples": 100}},
                "samples": 4,
                **extra,
            }
        )
    )
    return study, tmp_path / out / "tiny"


def _values(root):
    return {
        p.stem: json.loads(p.read_text())["results"]["reconstruction"]["mse"]
        for p in (root / "results").glob("*.json")
    }


def test_killed_study_resumes_without_redoing_finished_runs(tmp_path):
    study, root = _study(tmp_path, "killed", steps=60)
    proc = subprocess.Popen(
        [sys.executable, "-m", "genzoo", "study", str(study)],
        env={**os.environ, **ONE_THREAD},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    first = root / "results" / "aae-s0.json"
    deadline = time.time() + 240
    while not first.is_file() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first.is_file(), proc.stdout.read().decode()[-3000:] if proc.poll() is not None else "no result yet"
    os.killpg(proc.pid, signal.SIGKILL)  # mid-way: the first run is written, the rest is not
    proc.wait()
    assert not (root / "report" / "results.json").exists()
    done_before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (root / "results").glob("*.json")}
    weights = root / "aae-s0" / "model" / "model.safetensors"
    weights_before = weights.stat().st_mtime_ns
    log_before = (root / "aae-s0" / "metrics.jsonl").read_bytes()

    again = run_cli("study", study, env=ONE_THREAD)
    assert "aae-s0: reused" in again.stdout, again.stdout
    for name, (mtime, data) in done_before.items():  # finished runs: neither retrained nor re-evaluated
        path = root / "results" / name
        assert path.stat().st_mtime_ns == mtime and path.read_bytes() == data
    assert weights.stat().st_mtime_ns == weights_before
    assert (root / "aae-s0" / "metrics.jsonl").read_bytes() == log_before
    full = json.loads((root / "report" / "results.json").read_text())
    assert sorted(full["runs"]) == ["aae-s0", "aae-s1", "mbrce-s0", "mbrce-s1"]
    assert full["budget"] == {"images": 3000}
    assert {t["images_seen"] for t in full["training"].values()} == {3000}  # the budget: equal images seen
    assert (
        full["training"]["aae-s0"]["optimizer_steps"] == 180 and full["training"]["mbrce-s0"]["optimizer_steps"] == 120
    )
    assert "Budget: images 3000" in (root / "report" / "report.md").read_text()
    # every run drew its own samples: the metrics' seed is the run's
    assert full["runs"]["mbrce-s1"]["results"]["prior_match"]["protocol"]["seed"] == 1
    # prior_match is circular across models: per-run rows only
    assert not any(k.startswith("prior_match") for k in full["metrics"])
    third = run_cli("study", study, env=ONE_THREAD)
    assert third.stdout.count("reused") == 4


@pytest.mark.slow  # 17-21 s: moved out of the default run to keep it under 10 minutes
def test_jobs_2_gives_the_numbers_of_jobs_1(tmp_path):
    one, root1 = _study(tmp_path, "one")
    two, root2 = _study(tmp_path, "two")
    run_cli("study", one, "--jobs", "1", env=ONE_THREAD)
    proc = run_cli("study", two, "--jobs", "2", env=ONE_THREAD)
    assert "2 at a time" in proc.stdout
    a, b = _values(root1), _values(root2)
    assert sorted(a) == ["aae-s0", "aae-s1", "mbrce-s0", "mbrce-s1"] and a == b
    j1 = json.loads((root1 / "report" / "results.json").read_text())
    j2 = json.loads((root2 / "report" / "results.json").read_text())
    assert j1["metrics"] == j2["metrics"] and j1["comparisons"] == j2["comparisons"]
    assert (root2 / "logs" / "aae-s1.log").is_file()


@pytest.mark.slow  # four CLI studies (30 s): kept out of the default run's 10 minutes
def test_shards_then_merge(tmp_path):
    study, root = _study(tmp_path, "sharded")
    first = run_cli("study", study, "--shard", "1/2", env=ONE_THREAD)
    assert "still have no result" in first.stdout
    # the grid is seed-major (aae-s0, mbrce-s0, aae-s1, mbrce-s1): shard 1/2 takes the 1st and 3rd
    assert sorted(p.stem for p in (root / "results").glob("*.json")) == ["aae-s0", "aae-s1"]
    early = run_cli("study", study, "--merge", check=False, env=ONE_THREAD)
    assert early.returncode == 1 and "mbrce-s1" in early.stderr
    run_cli("study", study, "--shard", "2/2", env=ONE_THREAD)
    merged = run_cli("study", study, "--merge", env=ONE_THREAD)
    assert "wrote" in merged.stdout
    full = json.loads((root / "report" / "results.json").read_text())
    assert sorted(full["runs"]) == ["aae-s0", "aae-s1", "mbrce-s0", "mbrce-s1"]


def test_budget_and_shard_parsing(tmp_path):
    study, _ = _study(tmp_path, "parse")
    spec = load_study(study)
    entry = spec.models["aae"]
    assert budget_overrides(spec, entry, []) == ["train.steps=30", "train.epochs=null"]
    assert budget_overrides(spec, entry, ["train.batch_size=25"]) == ["train.steps=60", "train.epochs=null"]
    spec.budget = {"optimizer_steps": 90}
    assert budget_overrides(spec, entry, []) == ["train.steps=30", "train.epochs=null"]  # 3 phases per batch
    assert budget_overrides(spec, spec.models["mbrce"], []) == ["train.steps=45", "train.epochs=null"]
    assert parse_shard("2/3") == (2, 3) and parse_shard(None) is None
    from genzoo.core.errors import GenzooError

    with pytest.raises(GenzooError):
        parse_shard("3/2")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"name": "b", "budget": {"hours": 2}, "models": {"x": str(study)}}))
    with pytest.raises(GenzooError, match="budget"):
        load_study(bad)


def test_bad_factors_are_named(tmp_path):
    from genzoo.core.errors import GenzooError

    study, _ = _study(tmp_path, "bad", factors={"vae": {"matching": "KL"}})
    with pytest.raises(GenzooError, match=r"factors.vae' names no model of the study"):
        load_study(study)
    study, _ = _study(tmp_path, "bad2", factors={"aae": "adversarial"})
    with pytest.raises(GenzooError, match=r"factors.aae' must map factor names to levels"):
        load_study(study)


def test_a_sampler_factor_evaluates_every_run_under_each_sampler_without_retraining(tmp_path):
    """2 arms x 2 seeds x 2 samplers: 8 (run, sampler) cells from 4 trainings, `sampler` a factor of the report."""
    from genzoo.analysis.study import run_study

    study, root = _study(tmp_path, "samplers", samplers=["prior", "gmm"], sampler_options={"gmm": {"components": 2}})
    run_study(study)
    results = sorted(p.stem for p in (root / "results").glob("*.json"))
    assert results == sorted(f"{a}-s{s}{c}" for a in ("aae", "mbrce") for s in (0, 1) for c in ("", "+gmm"))
    assert sorted(p.name for p in root.iterdir() if (p / "model").is_dir()) == [
        "aae-s0",
        "aae-s1",
        "mbrce-s0",
        "mbrce-s1",
    ]
    cell = json.loads((root / "results" / "aae-s1+gmm.json").read_text())
    assert cell["arm"] == "aae+gmm" and cell["sampler_fit"]["seed"] == 1
    assert cell["results"]["reconstruction"]["protocol"]["sampler"]["name"] == "gmm"
    full = json.loads((root / "report" / "results.json").read_text())
    assert full["factors"]["mbrce+gmm"] == {"matching": "mbrce", "sampler": "gmm"}
    assert full["factors"]["aae"] == {"matching": "adversarial", "sampler": "prior"}
    # a second run reuses all 8 cells
    weights = root / "aae-s0" / "model" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    run_study(study)
    assert weights.stat().st_mtime_ns == before


def test_bad_samplers_are_named_before_training(tmp_path):
    study, _ = _study(tmp_path, "bad", samplers=["prior", "gmm"], sampler_options={"gmm": {"componets": 2}})
    with pytest.raises(Exception, match="componets"):
        load_study(study)
    study, _ = _study(tmp_path, "bad_curve", curve={"metrics": ["fid"], "options": {"fid": {"cont": 100}}})
    with pytest.raises(Exception, match="cont"):
        load_study(study)
    study, _ = _study(tmp_path, "no_curve_metrics", curve={"options": {}})
    with pytest.raises(Exception, match="study key 'curve' must be"):
        load_study(study)


def test_a_fresh_checkout_resumes_from_the_committed_results_training_nothing_done(tmp_path):
    """committed_results: every finished result and its run's metrics.jsonl are copied there; with runs/ gone (a new
    machine), the study trains only what has no committed result and reports from the copies."""
    import shutil

    from genzoo.analysis.study import run_study

    committed = tmp_path / "committed"
    study, root = _study(tmp_path, "fresh", committed_results=str(committed), seeds=[0])
    run_study(study)
    assert sorted(p.name for p in committed.iterdir() if p.suffix != ".png") == [
        "aae-s0.json",
        "aae-s0.metrics.jsonl",
        "mbrce-s0.json",
        "mbrce-s0.metrics.jsonl",
    ]
    assert (committed / "aae-s0-samples.png").is_file()
    first = json.loads((committed / "aae-s0.json").read_text())
    shutil.rmtree(root.parent)  # a fresh checkout: no runs/, only the committed files
    raw = yaml.safe_load(study.read_text())
    study.write_text(yaml.safe_dump({**raw, "seeds": [0, 1]}))  # and one more seed asked for
    run_study(study)
    trained = sorted(p.name for p in root.iterdir() if (p / "model").is_dir())
    assert trained == ["aae-s1", "mbrce-s1"]  # seed 0 of both arms was not retrained
    full = json.loads((root / "report" / "results.json").read_text())
    assert sorted(full["runs"]) == ["aae-s0", "aae-s1", "mbrce-s0", "mbrce-s1"]
    assert full["runs"]["aae-s0"]["results"]["reconstruction"]["mse"] == first["results"]["reconstruction"]["mse"]
    assert (root / "report" / "grids").is_dir() and "aae-s0" in (root / "report" / "report.md").read_text()
    # a committed result does not stand for other weights: retrained runs get new results
    assert (
        json.loads((committed / "aae-s1.json").read_text())["weights_sha256"]
        == json.loads((root / "results" / "aae-s1.json").read_text())["weights_sha256"]
    )


def test_learning_curve_evaluates_every_kept_checkpoint_and_the_export(tmp_path):
    import genzoo
    from genzoo.analysis.curves import checkpoint_curve

    train = {"steps": 60, "checkpoint_every": 20, "keep_checkpoints": 3, "log_every": 10, "sample_every": 1000}
    run = genzoo.fit(genzoo.recipe(str(write_recipe(tmp_path, train=train))))
    options = {"fid": {"count": 12, "reference_count": 12}}
    rows = checkpoint_curve(run, ["reconstruction", "fid"], options)
    assert [r["step"] for r in rows] == [20, 40, 60]
    mse = [r["results"]["reconstruction"]["mse"] for r in rows]
    assert len(set(mse)) == 3  # three different weights
    # and three different sample sets: cached features of the first weights had been reused for every step
    assert len({r["results"]["fid"]["fid"] for r in rows}) == 3
    # the last checkpoint is the exported model: the same number as evaluating the export
    assert mse[-1] == genzoo.evaluate(run, ["reconstruction"])["reconstruction"]["mse"]
    assert json.loads((run / "curve.json").read_text())[0]["results"]["reconstruction"]["protocol"]["model_step"] == 20
    out = run_cli("curve", run, "--metrics", "reconstruction", env=ONE_THREAD)
    assert "step 40: reconstruction.mse" in out.stdout


def test_a_plugin_metric_computed_in_a_study_reaches_its_report(tmp_path):
    """A metric registered as a plugin would (its facts declared) is computed on every run of a real study and
    reported under its display name; its values are those of the function on the trained models."""
    import torch

    import genzoo
    from genzoo.analysis.study import run_study
    from genzoo.core.registry import METRICS, load_components

    def sharpness(model, dataset, limit=None, count: int = 8, seed: int = 0):
        """Mean absolute Laplacian of samples: higher is sharper."""
        x = model.sample(count, generator=torch.Generator().manual_seed(seed))
        edges = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
        return {"sharpness": float(edges.abs().mean()), "images": count}

    load_components()
    facts = {"better": "higher", "display": "edge sharpness", "headline": True, "sample_based": True}
    METRICS.register("sharpness", sharpness, **facts)
    try:
        study, root = _study(tmp_path, "plugin", metrics=["reconstruction", "sharpness"], metric_options={})
        run_study(study)
        for run in ("aae-s0", "mbrce-s1"):
            saved = json.loads((root / "results" / f"{run}.json").read_text())["results"]["sharpness"]
            seed = saved["protocol"]["options"]["seed"]  # the study draws each seed's samples with its own seed
            assert saved["sharpness"] == sharpness(genzoo.load(root / run), None, seed=seed)["sharpness"]
            assert saved["protocol"]["sampler"] == {"name": "prior"}
        md = (root / "report" / "report.md").read_text()
        assert "edge sharpness" in md and "sharpness.images" not in md
    finally:
        METRICS._entries.pop("sharpness")
        METRICS._info.pop("sharpness")


def test_a_study_computes_each_runs_learning_curve_once_and_reports_it(tmp_path):
    """study key `curve`: each run's metrics at its kept checkpoints, computed once after its evaluation, committed
    beside its result, and read back (not recomputed) by a rerun and by a fresh checkout's report."""
    import shutil

    from genzoo.analysis.curves import VERDICTS
    from genzoo.analysis.study import run_study

    committed = tmp_path / "committed"
    overrides = ["train.checkpoint_every=10", "train.keep_checkpoints=3"]
    study, root = _study(
        tmp_path,
        "curves",
        committed_results=str(committed),
        overrides=overrides,
        curve={"metrics": ["reconstruction"]},
    )
    run_study(study)
    ends = {}
    for run in ("aae-s0", "aae-s1", "mbrce-s0", "mbrce-s1"):
        saved = json.loads((committed / f"{run}.curve.json").read_text())
        assert saved == json.loads((root / "results" / f"{run}.curve.json").read_text())
        assert [r["step"] for r in saved["curve"]] == [10, 20, 30]
        mse = [r["results"]["reconstruction"]["mse"] for r in saved["curve"]]
        result = json.loads((root / "results" / f"{run}.json").read_text())
        assert saved["weights_sha256"] == result["weights_sha256"]
        assert mse[-1] == result["results"]["reconstruction"]["mse"]  # the last checkpoint is the evaluated model
        assert len(set(mse)) == 3
        ends.setdefault(run[:-3], []).append(mse[-1])
    md = (root / "report" / "report.md").read_text()
    assert "## Learning curves" in md and "(plots/learning_curve_reconstruction.png)" in md
    assert (root / "report" / "plots" / "learning_curve_reconstruction.png").stat().st_size > 0
    for arm, values in ends.items():  # one row per arm: its seeds' mean end value and a verdict
        row = next(line for line in md.splitlines() if line.startswith(f"| {arm} | reconstruction MSE | 2 |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[3] == f"{sum(values) / 2:.4g}" and cells[5] in VERDICTS
    stamps = {p.name: p.stat().st_mtime_ns for p in committed.glob("*.curve.json")}
    run_study(study)  # a rerun reuses every curve
    assert {p.name: p.stat().st_mtime_ns for p in committed.glob("*.curve.json")} == stamps
    shutil.rmtree(root.parent)  # a fresh checkout: the report's curves come from the committed copies
    run_study(study)
    assert not any((root / r / "model").is_dir() for r in ("aae-s0", "mbrce-s1"))
    assert "## Learning curves" in (root / "report" / "report.md").read_text()
    curves = json.loads((root / "report" / "results.json").read_text())["learning_curves"]
    assert sorted(curves) == ["aae-s0", "aae-s1", "mbrce-s0", "mbrce-s1"]


def test_a_raised_budget_trains_every_run_on_to_the_numbers_of_the_longer_study(tmp_path):
    """Raising the study's budget makes its results stale (they were once reused as they stood, reporting the
    shorter training as the longer): each run resumes from its last checkpoint and trains on, to the same weights
    and numbers as a study given the longer budget from the start."""
    from genzoo.analysis.study import run_study

    short, root = _study(tmp_path, "grown", steps=30, seeds=[0])
    run_study(short)
    before = _values(root)
    assert {json.loads(p.read_text())["budget"]["images"] for p in (root / "results").glob("*.json")} == {1500}
    raw = yaml.safe_load(short.read_text())
    short.write_text(yaml.safe_dump({**raw, "budget": {"images": 60 * 50}}))  # twice as long
    run_study(short)
    grown = _values(root)
    assert grown.keys() == before.keys() and all(grown[k] != before[k] for k in grown)
    steps = {p.stem: json.loads(p.read_text())["training"]["steps"] for p in (root / "results").glob("*.json")}
    assert steps == {"aae-s0": 60, "mbrce-s0": 60}
    longer, other = _study(tmp_path, "longer", steps=60, seeds=[0])
    raw = yaml.safe_load(longer.read_text())  # the same checkpoint cadence as the grown study had at first
    longer.write_text(yaml.safe_dump({**raw, "overrides": ["train.checkpoint_every=10"]}))
    run_study(longer)
    assert _values(other) == grown
