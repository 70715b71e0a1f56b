"""StyleALAE: growth levels and blending, phases, equalised layers, truncation, style mixing, training, export,
and `genzoo stylemix`."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import genzoo
from genzoo.core.errors import GenzooError
from genzoo.core.grids import save_image, to_uint8
from genzoo.modelfile.folder import save_pretrained
from genzoo.models.blocks import EqualConv2d, EqualLinear
from tests.helpers.cli import ONE_THREAD, run_cli

TINY = {"name": "style_alae", "latent_dim": 16, "mapping_layers": 2, "start_filters": 8, "max_filters": 16}
MBRCE = {"name": "mbrce", "target": "gaussian", "alpha": 0.5, "sigma": "median", "measure": "pooled"}


def tiny(prior=None, shape=(3, 16, 16), seed=0, **options):
    torch.manual_seed(seed)
    return genzoo.create_model({**TINY, **options}, prior or {"name": "gaussian"}, shape)


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_levels_filters_and_shapes_at_every_resolution():
    model = tiny()
    assert model.resolutions == [4, 8, 16] and model.slots == 6
    # ALAE's filter counts: min(start_filters * 2**(levels-1-i), max_filters) at level i; E's lowest block hands on
    # start_filters * 2**levels (capped)
    assert [b.conv_2.out_channels for b in model.generator.blocks] == [16, 16, 8]
    assert [b.conv_2.out_channels for b in model.encoder.blocks] == [16, 16, 16]
    assert [c.in_channels for c in model.generator.to_rgb] == [16, 16, 8]
    assert (model.resolution, model._blend) == (16, 1.0)  # built at full size
    x = torch.rand(5, 3, 16, 16)
    w = model.encode(x)
    assert w.shape == (5, 16)
    for resolution in model.resolutions:
        for blend in (1.0, 0.4) if resolution > 4 else (1.0,):
            model.set_growth(resolution, blend)
            shape = (3, 3, resolution, resolution)
            assert model.sample(3, generator=seeded()).shape == shape
            assert model.decode(w[:3]).shape == shape and model.decode(model.broadcast(w[:3])).shape == shape
            # E reads the level's resolution; bigger images are average-pooled down to it
            small = F.avg_pool2d(x, 16 // resolution)
            assert torch.allclose(model.encode(x), model.encode(small), atol=1e-5)
            assert model.encode(small).shape == (5, 16)
            assert model.reconstruct(x).shape == (5, 3, resolution, resolution)
    with pytest.raises(GenzooError, match="no level at 32x32"):
        model.set_growth(32)
    with pytest.raises(GenzooError, match="1 at the first level"):
        model.set_growth(4, 0.5)
    model.set_growth(8)
    with pytest.raises(GenzooError, match="cannot read 4x4"):
        model.encode(torch.rand(1, 3, 4, 4))


@torch.no_grad()
def test_blend_zero_is_the_previous_level_and_blend_interpolates():
    model = tiny()
    w = torch.randn(4, 16)
    x = torch.rand(4, 3, 16, 16)
    for resolution in (8, 16):
        model.set_growth(resolution // 2, 1.0)
        coarse = model.decode(w, generator=seeded())
        coarse_code = model.encode(F.avg_pool2d(x, 32 // resolution))
        images = {}
        for blend in (0.0, 0.3, 1.0):
            model.set_growth(resolution, blend)
            images[blend] = model.decode(w, generator=seeded())  # the same noise in the lower levels
        # G at blend 0 = the previous level's output, 2x nearest-upsampled (ALAE's F.interpolate)
        assert torch.allclose(images[0.0], coarse.repeat_interleave(2, -2).repeat_interleave(2, -1), atol=1e-6)
        # in between: the lerp of the two (before the [0, 1] clamp, which these untrained outputs stay inside)
        assert torch.allclose(images[0.3], 0.7 * images[0.0] + 0.3 * images[1.0], atol=1e-5)
        # E at blend 0 = E at the previous level reading the 2x-downsampled image
        model.set_growth(resolution, 0.0)
        assert torch.allclose(model.encode(F.avg_pool2d(x, 16 // resolution)), coarse_code, atol=1e-5)
        model.set_growth(resolution, 0.5)
        assert not torch.allclose(model.encode(F.avg_pool2d(x, 16 // resolution)), coarse_code, atol=1e-3)


PHASES = {
    "gaussian": [
        ("discriminator", {"encoder", "discriminator"}),
        ("generator", {"mapping", "generator"}),
        ("reciprocity", {"encoder", "generator", "mapping"}),
    ],
    "mbrce": [
        ("push", {"encoder"}),
        ("pull", {"mapping", "generator"}),
        ("reciprocity", {"encoder", "generator", "mapping"}),
    ],
}


def run_phase(model, phase, x):
    """One step of one phase as the trainer runs it: only the phase's modules trainable, Adam over them."""
    own = {id(p) for m in phase.modules for p in getattr(model, m).parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in own)
    loss, logs = phase.loss(x)
    loss.backward()
    torch.optim.Adam([p for p in model.parameters() if id(p) in own], lr=1e-3, betas=phase.betas).step()
    model.zero_grad(set_to_none=True)
    for p in model.parameters():
        p.requires_grad_(True)
    return loss, logs


@pytest.mark.parametrize("prior", list(PHASES))
def test_phases_change_only_their_own_parameters(prior):
    model = tiny(MBRCE if prior == "mbrce" else None)
    phases = model.phases()
    assert [(p.name, set(p.modules)) for p in phases] == PHASES[prior]
    assert {p.optimizer for p in phases} == {"alae"} and {p.betas for p in phases} == {(0.0, 0.99)}
    assert (model.discriminator is None) == (prior == "mbrce")
    if prior == "mbrce":  # no D anywhere, so no D weights in the export either
        assert not any(k.startswith("discriminator") for k in model.state_dict())
    x = torch.rand(8, 3, 16, 16)
    model.set_growth(16, 0.5)  # mid-transition: both to_rgb / from_rgb paths take part
    for phase in phases:
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        average = model.dlatent_avg.clone()
        loss, logs = run_phase(model, phase, x)
        assert math.isfinite(loss.item()) and all(math.isfinite(v.item()) for v in logs.values())
        changed = {n.split(".")[0] for n, p in model.named_parameters() if not torch.equal(before[n], p)}
        assert changed == set(phase.modules), (phase.name, changed)
        # the running average of w moves in the F+G step only (ALAE's generator step)
        assert (not torch.equal(average, model.dlatent_avg)) == (phase.name in ("generator", "pull")), phase.name
    model_without = tiny(reciprocity_updates_mapping=False)
    assert model_without.phases()[-1].modules == ("encoder", "generator")


def test_equalised_layers_unit_weights_and_runtime_scale():
    torch.manual_seed(0)
    conv = EqualConv2d(64, 32, 3)
    assert abs(conv.weight.std().item() - 1) < 0.02 and conv.bias.abs().sum() == 0
    assert math.isclose(conv.scale, math.sqrt(2) / math.sqrt(64 * 9))
    x = torch.randn(2, 64, 8, 8)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * conv.scale, conv.bias, padding=1), atol=1e-5)
    slow = EqualConv2d(64, 32, 1, lr_mult=0.1, gain=0.03)
    assert abs(slow.weight.std().item() - 10) < 0.5 and math.isclose(slow.scale, 0.03 * 0.1 / 8)
    # fused resampling is the same function as upsample-then-conv / conv-then-pool, at fewer multiply-adds
    for resample in ("up", "down"):
        plain = EqualConv2d(16, 8, 3, resample=resample)
        fused = EqualConv2d(16, 8, 3, resample=resample, fused=True)
        fused.load_state_dict(plain.state_dict())
        y = torch.randn(2, 16, 8, 8)
        assert plain(y).shape[-1] == (16 if resample == "up" else 4)
        assert torch.allclose(plain(y), fused(y), atol=1e-5), resample
    # in the model: every layer's stored weights are N(0, 1 / lr_mult), scaled by gain * lr_mult / sqrt(fan_in)
    model = tiny(start_filters=32, max_filters=64, latent_dim=64)
    layers = [m for m in model.modules() if isinstance(m, (EqualConv2d, EqualLinear))]
    unit = torch.cat([m.weight.flatten() for m in layers if m.lr_mult == 1])
    assert abs(unit.std().item() - 1) < 0.01 and abs(unit.mean().item()) < 0.01
    mapping = torch.cat([m.weight.flatten() for m in model.mapping.modules() if isinstance(m, EqualLinear)])
    assert abs(mapping.std().item() - 10) < 0.3  # ALAE's F: lr multiplier 0.1
    for m in layers:
        fan_in = m.weight[0].numel()
        assert any(math.isclose(m.scale, g * m.lr_mult / math.sqrt(fan_in)) for g in (math.sqrt(2), 1.0, 0.03)), m


def test_truncation():
    model = tiny(truncation_cutoff=4)
    model.dlatent_avg.copy_(torch.randn(16))
    styles = torch.randn(3, 6, 16)
    assert torch.equal(model.truncate(styles, psi=1.0), styles)
    cut = model.truncate(styles, psi=0.0)
    assert torch.allclose(cut[:, :4], model.dlatent_avg.expand(3, 4, -1)) and torch.equal(cut[:, 4:], styles[:, 4:])
    half = model.truncate(styles)  # the default psi 0.7
    assert torch.allclose(half[:, :4], model.dlatent_avg + 0.7 * (styles[:, :4] - model.dlatent_avg), atol=1e-6)
    # sample() is G(truncated F(z)), its noise from the same generator
    z = model.prior.sample(3, generator=seeded(1))
    expected = model.decode(model.truncate(model.broadcast(model.mapping(z))), generator=seeded(1))
    assert torch.allclose(model.sample(3, generator=seeded(1)), expected, atol=1e-6)


@torch.no_grad()
def test_style_mix_takes_the_sources_slots():
    model = tiny()
    assert [model.style_slots(k) for k in ("coarse", "middle", "fine")] == [[0, 1, 2, 3], [4, 5], []]
    source, target = torch.randn(2, 16), torch.randn(2, 16)
    mixed = model.style_mix(source, target, "coarse")
    by_hand = torch.cat([source[:, None].expand(-1, 4, -1), target[:, None].expand(-1, 2, -1)], dim=1)
    assert torch.equal(mixed, by_hand)
    assert torch.equal(model.decode(mixed, generator=seeded()), model.decode(by_hand, generator=seeded()))
    assert torch.equal(model.style_mix(source, target, "fine"), model.broadcast(target))
    assert torch.equal(model.style_mix(source, target, "middle")[:, 4:], model.broadcast(source)[:, 4:])


def test_a_short_training_run_lowers_its_losses():
    """A plain loop over the phases, one Adam per module shared across phases (the trainer's optimizer "alae"),
    on digits upscaled to 16x16: the latent reciprocity error and R1 fall (measured 5.1 -> 1.5 and 8.6 -> 1.4)."""
    from genzoo.core.registry import DATASETS
    from genzoo.datasets.base import to_unit_float

    digits = DATASETS.get("digits")("train")
    data = F.interpolate(to_unit_float(digits.__getitems__(list(range(512)))), size=16, mode="bilinear")
    model = tiny(shape=(1, 16, 16))
    phases = model.phases()
    adam = {
        m: torch.optim.Adam(getattr(model, m).parameters(), lr=0.002, betas=(0.0, 0.99))
        for p in phases
        for m in p.modules
    }
    log = []
    for _ in range(50):
        x = data[torch.randint(0, len(data), (16,))]
        logs = {}
        for phase in phases:
            own = {id(p) for m in phase.modules for p in getattr(model, m).parameters()}
            for p in model.parameters():
                p.requires_grad_(id(p) in own)
            loss, phase_logs = phase.loss(x)
            loss.backward()
            for m in phase.modules:
                adam[m].step()
                adam[m].zero_grad(set_to_none=True)
            logs.update({k: v.item() for k, v in phase_logs.items()})
        log.append(logs)
    first, last = ({k: np.mean([r[k] for r in part]) for k in log[0]} for part in (log[:5], log[-10:]))
    assert all(math.isfinite(v) for r in log for v in r.values())
    assert last["reciprocity"] < 0.5 * first["reciprocity"] and last["r1"] < 0.5 * first["r1"], (first, last)


def test_trains_with_the_genzoo_trainer(tmp_path):
    """Full resolution, no growth, on 8x8 digits: the three phases run under the trainer (sharing its "alae"
    optimiser state), log finite losses, and the export loads back at full size."""
    import json

    from genzoo.core.recipe import load_recipe
    from genzoo.train.trainer import Trainer
    from tests.helpers.recipes import write_recipe

    recipe = write_recipe(
        tmp_path,
        "style",
        base={
            "data": {"name": "digits"},
            "model": TINY,
            "prior": {"name": "gaussian"},
            "train": {"batch_size": 32, "steps": 12, "log_every": 6, "sample_every": 12, "checkpoint_every": 12},
        },
    )
    run = Trainer(load_recipe(recipe)).fit()
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert {"loss/discriminator", "loss/r1", "loss/generator", "loss/reciprocity"} <= set(log[-1])
    assert all(math.isfinite(v) for r in log for k, v in r.items() if k.startswith("loss/"))
    model = genzoo.load(run)
    assert model.resolutions == [4, 8] and model.sample(2).shape == (2, 1, 8, 8)
    assert model.dlatent_avg.abs().sum() > 0


def test_save_and_load_round_trip(tmp_path):
    model = tiny().eval()
    model.dlatent_avg.copy_(torch.randn(16))
    model.set_growth(8, 0.25)  # mid-growth: the level and blend travel with the weights
    folder = save_pretrained(model, tmp_path / "model")
    loaded = genzoo.load(folder)
    assert (loaded.resolution, loaded._blend) == (8, 0.25)
    assert torch.equal(loaded.dlatent_avg, model.dlatent_avg)
    assert torch.equal(loaded.sample(4, generator=seeded(3)), model.sample(4, generator=seeded(3)))
    for m in (model, loaded):
        m.set_growth(16)
    assert torch.equal(loaded.sample(4, generator=seeded(3)), model.sample(4, generator=seeded(3)))


def tile(png, row, col, size=16, padding=2):
    """Cell (row, col) of a genzoo grid PNG, undoing save_grid's nearest-neighbour upscale: (H, W, C) uint8."""
    image = torch.from_numpy(np.asarray(Image.open(png).convert("RGB")).copy())
    up = max(1, 64 // size)
    top, left = (padding + row * (size + padding)) * up, (padding + col * (size + padding)) * up
    return image[top : top + size * up : up, left : left + size * up : up]


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    """A tiny (untrained) StyleALAE on a folder of 16x16 RGB images, and a conv VAE on digits."""
    folder = tmp_path_factory.mktemp("stylemix")
    g = torch.Generator().manual_seed(0)
    for split, count in (("train", 3), ("test", 6)):
        for i in range(count):
            save_image(
                F.interpolate(torch.rand(1, 3, 4, 4, generator=g), size=16, mode="bilinear")[0],
                folder / "images" / split / f"{i}.png",
            )
    style = tiny()
    style.config["data"] = {"name": "image_folder", "root": str(folder / "images"), "size": 16, "cache": False}
    vae = genzoo.create_model(
        {"name": "vae", "latent_dim": 4, "max_filters": 8, "layers": 2}, {"name": "gaussian"}, (1, 8, 8)
    )
    vae.config["data"] = {"name": "digits"}
    return save_pretrained(style, folder / "style"), save_pretrained(vae, folder / "vae"), folder


def test_stylemix_command_writes_one_grid_per_kind(saved_models, tmp_path):
    from genzoo.core.registry import DATASETS, build
    from genzoo.datasets.base import to_unit_float

    style, _, folder = saved_models
    out = tmp_path / "mix"
    proc = run_cli(
        "stylemix", style, "--split", "test", "--sources", "2", "--targets", "3", "--out", out, env=ONE_THREAD
    )
    assert sorted(p.name for p in out.iterdir()) == ["stylemix-coarse.png", "stylemix-middle.png"]
    assert "skipped fine" in proc.stdout
    test_set, _ = build(
        DATASETS,
        {"name": "image_folder", "root": str(folder / "images"), "size": 16, "cache": False},
        "data",
        split="test",
    )
    images = to_uint8(to_unit_float(test_set.__getitems__(list(range(5)))))
    for kind in ("coarse", "middle"):
        png = out / f"stylemix-{kind}.png"
        assert Image.open(png).size == ((3 * 18 + 2) * 4, (4 * 18 + 2) * 4)  # 3 columns x 4 rows of 16x16, x4
        assert (tile(png, 0, 0) == 255).all()  # the blank corner
        for s in range(2):  # sources along the top, targets down the left
            assert torch.equal(tile(png, 0, 1 + s), images[s])
        for t in range(3):
            assert torch.equal(tile(png, 1 + t, 0), images[2 + t])
    # a cell: its row's target decoded with its column's source's styles of that kind (the noise inputs' scales
    # start at zero, so this untrained model's noise changes nothing)
    model = genzoo.load(style)
    with torch.no_grad():
        w = model.encode(to_unit_float(test_set.__getitems__(list(range(5)))))
        for kind in ("coarse", "middle"):
            cell = model.decode(model.style_mix(w[1:2], w[4:5], kind))  # source 1 onto target 2
            assert (tile(out / f"stylemix-{kind}.png", 3, 2).int() - to_uint8(cell)[0].int()).abs().max() <= 1


def test_stylemix_refuses_a_model_without_style_slots(saved_models):
    _, vae, _ = saved_models
    proc = run_cli("stylemix", vae, "--split", "test", check=False, env=ONE_THREAD)
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    refusal = "model 'vae' cannot mix styles: it has no style slots"
    assert proc.returncode == 1 and len(lines) == 1 and refusal in lines[0], proc.stderr


def test_four_corner_interpolation_grid_of_a_style_alae(saved_models, tmp_path):
    """`genzoo interpolate --corners` on a StyleALAE: an N x N grid whose corner cells reconstruct the four images
    (E then G) and whose other cells decode the bilinear mix of their w codes."""
    from genzoo.core.registry import DATASETS, build
    from genzoo.datasets.base import to_unit_float

    style, _, folder = saved_models
    out = tmp_path / "corners.png"
    run_cli(
        "interpolate",
        style,
        "0",
        "1",
        "2",
        "3",
        "--split",
        "test",
        "--corners",
        "--steps",
        "4",
        "--out",
        out,
        env=ONE_THREAD,
    )
    test_set, _ = build(
        DATASETS,
        {"name": "image_folder", "root": str(folder / "images"), "size": 16, "cache": False},
        "data",
        split="test",
    )
    model = genzoo.load(style)
    with torch.no_grad():
        w = model.encode(to_unit_float(test_set.__getitems__([0, 1, 2, 3])))
        corners = to_uint8(model.decode(w))
        middle = to_uint8(
            model.decode(((2 / 3) * (2 / 3) * w[0] + (2 / 3) * (1 / 3) * (w[1] + w[2]) + (1 / 9) * w[3])[None])
        )[0]
    assert Image.open(out).size == ((4 * 18 + 2) * 4,) * 2
    for (row, col), k in {(0, 0): 0, (0, 3): 1, (3, 0): 2, (3, 3): 3}.items():
        assert (tile(out, row, col).int() - corners[k].int()).abs().max() <= 1
    assert (tile(out, 1, 1).int() - middle.int()).abs().max() <= 1
