"""bench/gpu_check.py in its --smoke mode (the CPU, tiny sizes): every section runs and reports what it measured."""

import json
import math
import subprocess
import sys

import pytest
import torch

from tests.helpers.cli import ONE_THREAD
from tests.helpers.recipes import ROOT


@pytest.mark.slow  # a nested pytest (-m cuda) and four sections of measurements: 15 s on a busy machine
def test_gpu_check_smoke_writes_every_section(tmp_path):
    import os

    out = tmp_path / "gpu"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--smoke", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, **ONE_THREAD},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((out / "gpu_check.json").read_text())
    assert result["ok"] is True and result["mode"] == "smoke" and result["device"] == "cpu"
    assert result["environment"]["torch"] == torch.__version__

    # 1. the tests marked cuda ran (and, without a GPU, all skipped cleanly)
    tests = result["cuda_tests"]
    assert tests["returncode"] == 0 and tests["failed"] == 0
    assert tests["passed"] + tests["skipped"] >= 5 and "-m cuda" in tests["command"]

    # 2. every resolution of the smoke table, in fp32 and bf16, with a positive speed
    assert result["throughput"]["complete"]
    rows = result["throughput"]["rows"]
    assert sorted((r["resolution"], r["precision"]) for r in rows) == [
        (res, p) for res in (4, 8, 16) for p in ("bf16", "fp32")
    ]
    for r in rows:
        assert r["batch"] == 8 and math.isfinite(r["images_per_s"]) and r["images_per_s"] > 0
        assert r["step_ms_median"] > 0 and r["peak_memory_mib"] is None  # peak memory is a CUDA figure
        assert r["parameters"] == rows[0]["parameters"] > 0  # one network, every level

    # 3. bf16 growing 4 -> 16, every step logged, every loss finite, samples of the export finite
    stable = result["stability"]
    assert stable["steps_done"] == stable["steps"] == 12 and stable["finite"] and stable["samples_finite"]
    assert stable["resolutions"] == [4, 8, 16] and stable["error"] is None
    assert {"push", "pull", "reciprocity"} <= set(stable["losses"])
    assert all(math.isfinite(v) for loss in stable["losses"].values() for v in loss.values())

    # 4. the Rényi estimator: timed, and equal to the CPU's float64 value
    assert [r["n"] for r in result["renyi"]["rows"]] == [16, 32]
    for r in result["renyi"]["rows"]:
        assert r["auto_ms"] > 0 and r["float64_ms"] > 0 and r["cpu_float64_ms"] > 0
        for precision in ("auto", "float64"):  # on the CPU "auto" is float64 too
            assert r[f"{precision}_abs_diff"] < 1e-6 and r[f"{precision}_grad_rel_diff"] < 1e-5

    # 5. Inception features: genzoo's and clean-fid's folder path agree (or the section says why it was skipped)
    fid = result["inception"]
    if not fid.get("skipped"):
        assert fid["count"] == 4 and fid["max_abs_feature_diff"] < 1e-3
        assert fid["genzoo_images_per_s"] > 0 and fid["cleanfid_folder_images_per_s"] > 0

    table = (out / "gpu_check.md").read_text()
    assert "| resolution | batch | fp32 img/s | fp32 peak MiB | bf16 img/s | bf16 peak MiB |" in table
    assert "All sections passed." in table and (out / "cuda-tests.xml").is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_check_without_a_gpu_and_without_smoke_says_so(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gpu_check.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2 and "--smoke" in proc.stderr
    assert not (tmp_path / "gpu_check.json").exists()
