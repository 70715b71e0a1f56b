"""MNIST and Fashion-MNIST from the canonical idx files (the layout torchvision uses, read without torchvision).

Files are looked for in `root`, `root/raw` and `root/<MNIST|FashionMNIST>/raw`, gzipped or not; if absent and
`download` is true they are fetched from the usual mirrors (torchvision's) and checked against their md5.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import DATASETS
from genzoo.datasets.base import ImageDataset, data_root
from genzoo.datasets.download import download as fetch

_SETS = {
    "mnist": dict(
        folder="MNIST",
        mirrors=["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"],
        md5={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion_mnist": dict(
        folder="FashionMNIST",
        mirrors=["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        md5={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
}


def read_idx(path: Path) -> np.ndarray:
    """Parse an idx file (optionally gzipped) into a uint8 array."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise GenzooError(
            f"'{path}' cannot be read ({exc})", "it is truncated or corrupt: delete it and download again"
        ) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 8:
        raise GenzooError(f"'{path}' is not a uint8 idx file", "use the canonical *-idx?-ubyte(.gz) files")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise GenzooError(f"'{path}' is truncated ({body.size} of {int(np.prod(shape))} values)", "download it again")
    return body.reshape(shape)


def _find(root: Path, folder: str, stem: str) -> Path | None:
    for d in (root, root / "raw", root / folder / "raw"):
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    return None


def load_idx_pair(name: str, root: str | None, split: str, download: bool, validation: int = 0) -> ImageDataset:
    """`validation` > 0 holds out the last that many training images as split 'validation' (the AAE paper: 1000);
    split 'train' is then the rest, so nothing chosen on the validation images was trained on."""
    spec = _SETS[name]
    base = data_root(root, name)
    prefix = {"train": "train", "validation": "train", "test": "t10k"}.get(split)
    if prefix is None:
        raise GenzooError(
            f"dataset '{name}' has splits train, validation and test, not '{split}'",
            "use split train, validation or test",
        )
    if split == "validation" and validation <= 0:
        raise GenzooError(
            f"dataset '{name}' has no validation split unless some training images are held out",
            "set data.validation=1000 (the last 1000 training images)",
        )
    arrays = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        stem = f"{prefix}-{kind}"
        path = _find(base, spec["folder"], stem)
        if path is None:
            if not download:
                raise GenzooError(
                    f"{name}: '{stem}(.gz)' not found under '{base}'",
                    "set data.root to the folder holding the idx files, or data.download=true",
                )
            gz = stem + ".gz"
            path = fetch([m + gz for m in spec["mirrors"]], base / spec["folder"] / "raw" / gz, spec["md5"][gz])
        arrays.append(read_idx(path))
    images, labels = arrays
    if images.shape[0] != labels.shape[0]:
        raise GenzooError(
            f"{name} {split}: {images.shape[0]} images but {labels.shape[0]} labels", "re-download the files"
        )
    if prefix == "train" and validation > 0:
        if validation >= images.shape[0]:
            raise GenzooError(
                f"data.validation={validation} holds out all {images.shape[0]} training images",
                "hold out fewer, e.g. data.validation=1000",
            )
        cut = (
            slice(images.shape[0] - validation, None)
            if split == "validation"
            else slice(0, images.shape[0] - validation)
        )
        images, labels = images[cut], labels[cut]
    return ImageDataset(
        torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64)), name=f"{name}/{split}"
    )


@DATASETS.register("mnist")
def mnist(
    split: str,
    root: str | None = None,
    download: bool = True,
    pad: int = 0,
    size: int | None = None,
    validation: int = 0,
) -> ImageDataset:
    """MNIST, 60k train + 10k test, 28x28 grey (downloads to the data root if absent); `pad`/`size`: border, resize;
    `validation`: hold out the last that many training images as split 'validation'."""
    from genzoo.datasets.images import pad_and_resize

    return pad_and_resize(load_idx_pair("mnist", root, split, download, validation), pad, size)


@DATASETS.register("fashion_mnist")
def fashion_mnist(
    split: str,
    root: str | None = None,
    download: bool = True,
    pad: int = 0,
    size: int | None = None,
    validation: int = 0,
) -> ImageDataset:
    """Fashion-MNIST, 60k train + 10k test, 28x28 grey (downloads to the data root if absent); options as MNIST."""
    from genzoo.datasets.images import pad_and_resize

    return pad_and_resize(load_idx_pair("fashion_mnist", root, split, download, validation), pad, size)
