import gzip
import hashlib

import numpy as np
import pytest
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import DATASETS
from genzoo.datasets.download import download
from genzoo.datasets.mnist import read_idx
from tests.helpers.recipes import shared


def test_digits_split_and_scale():
    train, test = DATASETS.get("digits")("train"), DATASETS.get("digits")("test")
    assert len(train) == 1500 and len(test) == 297 and train.image_shape == (1, 8, 8)
    assert train.images.dtype == torch.uint8 and train.images.max() == 255
    assert torch.equal(train.__getitems__([3, 1]), train.images[[3, 1]])


def test_mnist_from_the_shared_folder():
    root = shared("mnist")
    train = DATASETS.get("mnist")("train", root=str(root), download=False)
    test = DATASETS.get("mnist")("test", root=str(root), download=False)
    assert len(train) == 60000 and len(test) == 10000 and train.image_shape == (1, 28, 28)
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the canonical first labels
    # the test images are byte-identical to the official t10k file: its well-known mean
    assert abs(test.images.float().mean().item() / 255 - 0.1325) < 1e-3


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_download_verifies_and_is_atomic(tmp_path):
    src = tmp_path / "mirror" / "file.gz"
    src.parent.mkdir()
    write_idx(src, np.arange(24).reshape(2, 3, 4))
    md5 = hashlib.md5(src.read_bytes()).hexdigest()
    dest = tmp_path / "data" / "file.gz"
    with pytest.raises(GenzooError, match="checksum mismatch"):
        download([src.as_uri()], dest, "0" * 32)
    assert not dest.exists() and not list(dest.parent.glob(".*part"))
    # the first mirror is dead, the second answers
    download([(tmp_path / "gone.gz").as_uri(), src.as_uri()], dest, md5)
    assert read_idx(dest).shape == (2, 3, 4)


def test_mnist_downloads_into_the_torchvision_layout(tmp_path, monkeypatch):
    """The real download path, pointed at a local mirror (these machines have no internet)."""
    from genzoo.datasets import mnist as module

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    md5 = {}
    for prefix, n in (("train", 6), ("t10k", 2)):
        write_idx(mirror / f"{prefix}-images-idx3-ubyte.gz", np.full((n, 28, 28), 7))
        write_idx(mirror / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n))
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte.gz"
            md5[name] = hashlib.md5((mirror / name).read_bytes()).hexdigest()
    monkeypatch.setitem(module._SETS["mnist"], "mirrors", [mirror.as_uri() + "/"])
    monkeypatch.setitem(module._SETS["mnist"], "md5", md5)
    data = module.mnist("train", root=str(tmp_path / "root"))
    assert len(data) == 6 and (tmp_path / "root" / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()


def test_validation_holds_out_the_last_training_images(tmp_path):
    """data.validation=N: split 'validation' is the last N training images and 'train' the rest (the AAE paper's
    59k/1k)."""
    for prefix, n in (("train", 10), ("t10k", 4)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", np.arange(n)[:, None, None] * np.ones((1, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n))
    fashion = DATASETS.get("fashion_mnist")
    train = fashion("train", root=str(tmp_path), download=False, validation=3)
    val = fashion("validation", root=str(tmp_path), download=False, validation=3)
    assert train.labels.tolist() == list(range(7)) and val.labels.tolist() == [7, 8, 9]
    assert val.images[:, 0, 5, 5].tolist() == [7, 8, 9] and val.name == "fashion_mnist/validation"
    assert len(fashion("test", root=str(tmp_path), download=False, validation=3)) == 4  # the test split is untouched
    assert len(fashion("train", root=str(tmp_path), download=False)) == 10
    with pytest.raises(GenzooError, match="data.validation=1000"):
        fashion("validation", root=str(tmp_path), download=False)
    with pytest.raises(GenzooError, match="holds out all 10"):
        fashion("train", root=str(tmp_path), download=False, validation=10)


def test_truncated_idx_is_named(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + (10).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\0" * 100)
    with pytest.raises(GenzooError, match="truncated"):
        read_idx(path)
