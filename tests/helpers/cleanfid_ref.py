"""clean-fid's own functions, as references for the tests.

`cleanfid.fid` imports torchvision at the top (for `transforms.ToTensor` in its folder dataset, and for the base
classes of its pytorch-fid Inception port). Where torchvision does not import (these CPU machines: the registry's
torchvision wheels are CUDA builds), a stand-in with exactly those two things is put in sys.modules before
importing it: ToTensor as torchvision defines it for numpy arrays (HWC -> CHW; uint8 divided by 255, float kept),
and empty Inception block classes that only the legacy_pytorch mode would use (never used here). Everything the
tests compare against — folder reading, resizing, batching, the statistics — is clean-fid's own code.
"""

from __future__ import annotations

import sys
import types

import pytest


def _stub_torchvision():
    import torch

    tv = types.ModuleType("torchvision")
    tv.__version__ = "0.0+genzoo-test-stub"
    transforms = types.ModuleType("torchvision.transforms")

    class ToTensor:
        def __call__(self, pic):
            img = torch.from_numpy(pic.transpose((2, 0, 1))).contiguous()
            return img.to(torch.get_default_dtype()).div(255) if img.dtype == torch.uint8 else img

    transforms.ToTensor = ToTensor
    models = types.ModuleType("torchvision.models")
    inception = types.ModuleType("torchvision.models.inception")
    for name in ("InceptionA", "InceptionC", "InceptionE"):
        setattr(inception, name, type(name, (torch.nn.Module,), {}))
    models.inception = inception
    tv.transforms, tv.models = transforms, models
    sys.modules.update(
        {
            "torchvision": tv,
            "torchvision.transforms": transforms,
            "torchvision.models": models,
            "torchvision.models.inception": inception,
        }
    )


def cleanfid_fid():
    """The module cleanfid.fid, or skip with the reason."""
    pytest.importorskip(
        "cleanfid", reason="clean-fid is not installed (README: pip install --no-deps clean-fid==0.1.35)"
    )
    pytest.importorskip("requests", reason="clean-fid's downloader needs requests")
    if "cleanfid.fid" in sys.modules:
        return sys.modules["cleanfid.fid"]
    stubbed = False
    try:
        import torchvision  # noqa: F401
    except Exception:  # missing, or a CUDA build next to a CPU torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            sys.modules.pop(name)
        _stub_torchvision()
        stubbed = True
    try:
        import cleanfid.fid
    finally:
        if stubbed:  # clean-fid keeps its references; nothing else in the process sees the stand-in
            for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
                sys.modules.pop(name)
    return cleanfid.fid
