"""Checks on a CUDA GPU (marker `cuda`; skipped where torch sees no GPU): `python -m pytest -m cuda`, which
bench/gpu_check.py runs first.

Training on the GPU and resuming it, a progressively grown MBRCE-StyleALAE under bf16 autocast, sampling and
encoding on the GPU against the same model on the CPU, the Rényi estimators on the GPU against the CPU in float64,
and a checkpoint written on the GPU read and resumed on the CPU.

GENZOO_CUDA_TESTS_DEVICE=cpu runs these same tests on the CPU (the comparisons become CPU against CPU): a check of
the tests themselves on a machine without a GPU, not of CUDA.
"""

from __future__ import annotations

import json
import math
import os
import shutil

import pytest
import torch

import genzoo
from genzoo import renyi as R
from genzoo.core.io import load_tensors
from genzoo.core.recipe import load_recipe
from genzoo.train.checkpoint import Checkpoints
from genzoo.train.trainer import Trainer
from tests.helpers.recipes import write_recipe

DEVICE = os.environ.get("GENZOO_CUDA_TESTS_DEVICE", "cuda")

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

SHORT = {"steps": 30, "log_every": 5, "checkpoint_every": 15, "sample_every": 15}


def fit(recipe) -> Trainer:
    """Train in this process from a fresh Accelerate state: Accelerate keeps one state per process, so a later
    Trainer would otherwise keep the first one's device (train.cpu ignored) and refuse another mixed_precision."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    trainer = Trainer(recipe)
    trainer.fit()
    return trainer


def log_of(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def without_speed(log):
    return [{k: v for k, v in r.items() if k != "images_per_s"} for r in log]


def close(a: dict, b: dict, atol: float) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], rtol=0, atol=atol) for k in a)


@pytest.fixture(scope="module")
def cuda_run(tmp_path_factory):
    """tests/helpers/recipes.py's TINY MLP AAE (digits, dropout, Gaussian prior) trained 30 steps on the device."""
    folder = tmp_path_factory.mktemp("cuda")
    trainer = fit(load_recipe(write_recipe(folder, "whole", train=SHORT)))
    run = trainer.run_dir
    assert {p.device.type for p in trainer.model.parameters()} == {DEVICE}
    return folder, run


def test_training_on_the_gpu_resumes_as_one_run(cuda_run):
    """Stopped at step 15 and resumed to 30: the same log and the same weights as the uninterrupted run (the CUDA
    RNG state, which draws the dropout masks, rides in the checkpoint). Bit-exact where the kernels are
    deterministic; the tolerance leaves room for a library's choice of reduction order."""
    folder, whole = cuda_run
    cut = write_recipe(folder, "cut", train=SHORT)
    fit(load_recipe(cut, ["train.steps=15"]))
    rng = load_tensors(folder / "runs" / "cut" / "checkpoints" / "step-0000015" / "rng-rank0.safetensors")
    assert ("cuda" in rng) == (DEVICE == "cuda")
    fit(load_recipe(cut))
    a, b = (log_of(folder / "runs" / n) for n in ("whole", "cut"))
    assert [r["step"] for r in b] == [5, 10, 15, 20, 25, 30]
    for ra, rb in zip(without_speed(a), without_speed(b)):
        assert ra.keys() == rb.keys() and all(v == pytest.approx(rb[k], rel=1e-5, abs=1e-6) for k, v in ra.items())
    wa = load_tensors(whole / "model" / "model.safetensors")
    wb = load_tensors(folder / "runs" / "cut" / "model" / "model.safetensors")
    assert close(wa, wb, atol=1e-5), max((wa[k] - wb[k]).abs().max().item() for k in wa)


def test_sample_grids_leave_the_gpu_training_stream_alone(tmp_path):
    """A sample grid draws from a fixed seed without touching the training noise (dropout masks, on the GPU drawn by
    the CUDA generator): a grid every 5 steps or none before the end give the same weights."""
    often = write_recipe(tmp_path, "often", train={**SHORT, "steps": 20, "sample_every": 5, "checkpoint_every": 20})
    never = write_recipe(tmp_path, "never", train={**SHORT, "steps": 20, "sample_every": 1000, "checkpoint_every": 20})
    fit(load_recipe(often))
    fit(load_recipe(never))
    assert len(list((tmp_path / "runs" / "often" / "samples").glob("*.png"))) == 4
    wa, wb = (load_tensors(tmp_path / "runs" / n / "model" / "model.safetensors") for n in ("often", "never"))
    assert close(wa, wb, atol=1e-6), max((wa[k] - wb[k]).abs().max().item() for k in wa)


def test_sample_encode_and_reconstruct_on_the_gpu_match_the_cpu(cuda_run):
    _, run = cuda_run
    gpu, cpu = genzoo.load(run, device=DEVICE), genzoo.load(run)
    assert {p.device.type for p in gpu.parameters()} == {DEVICE}
    samples = gpu.sample(16, generator=torch.Generator().manual_seed(3))
    assert samples.device.type == DEVICE and samples.shape == (16, 1, 8, 8)
    assert 0 <= samples.min().item() and samples.max().item() <= 1
    on_cpu = cpu.sample(16, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(samples.cpu(), on_cpu, atol=1e-5)  # the same draws: a CPU generator serves both
    codes = gpu.encode(on_cpu.to(DEVICE))
    assert codes.device.type == DEVICE and codes.shape == (16, 4)
    assert torch.allclose(codes.cpu(), cpu.encode(on_cpu), atol=1e-4)
    assert torch.allclose(gpu.reconstruct(on_cpu.to(DEVICE)).cpu(), cpu.reconstruct(on_cpu), atol=1e-5)


def test_a_checkpoint_written_on_the_gpu_loads_and_resumes_on_the_cpu(cuda_run, tmp_path):
    _, run = cuda_run
    copy = shutil.copytree(run, tmp_path / "whole")
    state = Checkpoints.read(Checkpoints(copy).latest(), 0)
    assert {t.device.type for t in state["model"].values()} == {"cpu"}
    model = genzoo.load(copy)  # model/ on the CPU, the default device
    assert {p.device.type for p in model.parameters()} == {"cpu"}
    assert model.sample(4).shape == (4, 1, 8, 8)
    # the same run continued on the CPU (train.cpu may change on resume)
    recipe = load_recipe(copy / "recipe.yaml", [f"output_dir={tmp_path}", "train.steps=40", "train.cpu=true"])
    trainer = fit(recipe)
    assert {p.device.type for p in trainer.model.parameters()} == {"cpu"}
    log = log_of(copy)
    assert [r["step"] for r in log] == [5, 10, 15, 20, 25, 30, 35, 40]
    assert all(math.isfinite(v) for r in log for k, v in r.items() if k.startswith("loss/"))


def test_a_growing_mbrce_style_alae_trains_in_bf16(tmp_path):
    """The flagship's kind of model, tiny: StyleALAE with the MBRCE prior grown 4 -> 8 -> 16 under bf16 autocast
    (the Rényi estimator computes in float64 inside it); the weights stay float32 and every loss stays finite."""
    base = {
        "data": {"name": "digits", "size": 16},
        "model": {"name": "style_alae", "latent_dim": 16, "mapping_layers": 2, "start_filters": 8, "max_filters": 16},
        "prior": {"name": "mbrce", "target": "gaussian", "alpha": 0.5, "sigma": "median", "measure": "pooled"},
        "train": {
            "batch_size": 16,
            "steps": 24,
            "log_every": 1,
            "sample_every": 24,
            "checkpoint_every": 24,
            "mixed_precision": "bf16",
            "ema_half_life_images": 1000,
            "growth": {"start_resolution": 4, "images_per_level": 128, "transition": 0.5},
        },
    }
    trainer = fit(load_recipe(write_recipe(tmp_path, "bf16", base=base)))
    run = trainer.run_dir
    assert {(p.device.type, p.dtype) for p in trainer.model.parameters()} == {(DEVICE, torch.float32)}
    log = [r for r in log_of(run) if "resolution" in r]
    assert [r["resolution"] for r in log] == [4] * 8 + [8] * 8 + [16] * 8
    assert {"loss/push", "loss/pull", "loss/reciprocity"} <= set(log[0])
    assert all(math.isfinite(v) for r in log for k, v in r.items() if k.startswith("loss/"))
    assert genzoo.load(run, device=DEVICE).sample(2).shape == (2, 1, 16, 16)


# name: (estimator, bound on |value - float64 value| and on the relative gradient error (norm) when float32 points on
# a GPU are computed in float32, as precision="auto" does there where it is allowed; the bounds are those
# tests/renyi/test_renyi_numerics.py holds the float32 path to on the CPU; None: "auto" keeps float64 for this
# estimator)
ESTIMATORS = {
    "entropy a=2": (lambda x, y, p: R.renyi_entropy(x, 2.0, "gaussian", "median", precision=p), (1e-3, 3e-2)),
    "entropy a=0.5": (lambda x, y, p: R.renyi_entropy(x, 0.5, "gaussian", "median", precision=p), (1e-3, 3e-2)),
    "pooled a=0.5": (lambda x, y, p: R.pooled_divergence(x, y, 0.5, "gaussian", "median", precision=p), (1e-4, 3e-3)),
    "pooled a=1.5 mix": (
        lambda x, y, p: R.pooled_divergence(x, y, 1.5, "gaussian", "median", mix=0.1, precision=p),
        None,
    ),
    "bipartite a=2": (lambda x, y, p: R.bipartite_divergence(x, y, 2, "gaussian", "median", precision=p), (1e-3, 0.1)),
    "mutual information": (
        lambda x, y, p: R.mutual_information(x, y, 0.5, "gaussian", "median", precision=p),
        (1e-3, 3e-2),
    ),
}


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_renyi_on_the_gpu_equals_the_cpu_in_float64(name):
    """Against the CPU in float64: float64 points on the GPU (computed in float64) to 1e-7 (LAPACK and cuSOLVER
    round differently); float32 points with precision="float64" to float32 precision; float32 points with the
    default precision="auto" (float32 work on a GPU where allowed) within the float32 path's measured bounds."""
    fn, f32_bounds = ESTIMATORS[name]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(96, 12, generator=g), torch.randn(96, 12, generator=g) + 0.5
    ref_x = x.double().requires_grad_()
    ref = fn(ref_x, y.double(), "float64")
    ref.backward()

    def on_device(dtype, precision):
        px = x.to(DEVICE, dtype).clone().requires_grad_()
        value = fn(px, y.to(DEVICE, dtype), precision)
        assert value.device.type == DEVICE and value.dtype == dtype
        value.backward()
        return value.item(), px.grad.double().cpu()

    for dtype, precision, rtol in ((torch.float64, "auto", 1e-7), (torch.float32, "float64", 1e-5)):
        value, grad = on_device(dtype, precision)
        assert value == pytest.approx(ref.item(), rel=rtol, abs=rtol)
        assert torch.allclose(grad, ref_x.grad, rtol=0, atol=100 * rtol * ref_x.grad.abs().max().item()), name
    value, grad = on_device(torch.float32, "auto")
    vtol, gtol = f32_bounds or (1e-5, 1e-3)
    assert abs(value - ref.item()) < vtol
    assert (grad - ref_x.grad).norm() < gtol * ref_x.grad.norm()
