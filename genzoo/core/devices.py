"""The --device argument: a torch device this machine has, checked before any work."""

from __future__ import annotations

import torch

from genzoo.core.errors import GenzooError


def resolve_device(device: str | None) -> str:
    """`device` checked against this machine ("cpu", "cuda", "cuda:N"); None: "cuda" when torch sees a GPU."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise GenzooError(f"--device '{device}' is not a device", "write cpu, cuda or cuda:N") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise GenzooError(f"--device {device}: this machine has no CUDA GPU torch can use", "use --device cpu")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise GenzooError(
            f"--device {device}: there are {torch.cuda.device_count()} GPUs", "choose an index below that"
        )
    return device
