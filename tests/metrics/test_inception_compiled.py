"""Inception's CPU layers rebuilt as an fx graph and compiled for long passes (metrics/inception_compiled.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genzoo.metrics import inception


@pytest.fixture(scope="module")
def fx():
    pytest.importorskip("cleanfid", reason="clean-fid is not installed (README's install line)")
    from genzoo.core.errors import GenzooError

    try:
        return inception.InceptionFeatures("clean", batch_size=64)
    except GenzooError as exc:
        pytest.skip(f"no Inception weights here ({exc})")


@pytest.fixture(scope="module")
def digits3():
    from genzoo.datasets.digits import digits

    return digits("test").images[:3]


def test_the_fx_rebuild_computes_the_frozen_layers_bit_for_bit(fx, digits3):
    from genzoo.metrics.inception_compiled import fx_from_frozen

    x = inception._channels_last(fx.prepare(digits3))
    rebuilt = fx_from_frozen(fx.cpu_layers)
    with torch.inference_mode():
        assert torch.equal(rebuilt(x), fx.cpu_layers(x))
    assert sum(1 for n in rebuilt.graph.nodes if n.target is torch.conv2d) == 94  # every convolution, bn folded


def test_a_long_call_switches_to_the_compiled_layers_and_a_failed_compile_falls_back(fx, digits3, monkeypatch):
    """A call of COMPILE_MIN_IMAGES images or more uses the compiled layers; where compiling fails (no C++
    compiler), one warning and the frozen layers' features, unchanged."""
    from genzoo.metrics import inception_compiled

    expected = fx(digits3)

    def failing(*args, **kwargs):
        def run(x):
            raise RuntimeError("InductorError: no C++ compiler found\nmore detail")

        return run

    monkeypatch.setattr(inception, "COMPILE_MIN_IMAGES", 3)
    monkeypatch.setattr(torch, "compile", failing)
    inception_compiled.compiled_layers.cache_clear()
    frozen = fx.cpu_layers
    try:
        with pytest.warns(UserWarning, match=r"Inception compile failed \(InductorError: no C\+\+ compiler found\)"):
            got = fx(digits3)
        assert isinstance(fx.cpu_layers, inception_compiled.CompiledLayers) and fx.cpu_layers.compiled is None
        np.testing.assert_array_equal(got, expected)
    finally:
        fx.cpu_layers = frozen
        inception_compiled.compiled_layers.cache_clear()


@pytest.mark.slow
def test_compiled_features_equal_the_frozen_layers_within_1e_5(fx, digits3):
    """The real compile (about a minute on a 2-core CPU): a padded short chunk and a full one, against the frozen
    layers; measured 4e-6 of the largest feature."""
    from genzoo.metrics.inception_compiled import CompiledLayers

    compiled = CompiledLayers(fx.cpu_layers, inception.CPU_CHUNK)
    x = inception._channels_last(fx.prepare(torch.cat([digits3, digits3[:1]])))
    with torch.inference_mode():
        for chunk in (x[:3], x):
            got, want = compiled(chunk), fx.cpu_layers(chunk)
            assert compiled.compiled is not None, "the compile fell back"
            assert got.shape == want.shape
            assert (got - want).abs().max() <= 1e-5 * want.abs().max()
