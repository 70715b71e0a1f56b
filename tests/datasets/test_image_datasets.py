"""CIFAR-10, CelebA and image folders: every accepted layout, the decoded-image cache, odd and broken files.

Real images come from small slices of ../shared/data (skipped when absent); odd formats are made with Pillow.
"""

import hashlib
import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from genzoo.core.errors import GenzooError
from genzoo.core.registry import DATASETS
from genzoo.datasets import cifar10
from genzoo.datasets import images as module
from tests.helpers.recipes import shared

PER_CLASS = 2  # CIFAR images per class and split in the slice


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GENZOO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="module")
def cifar_slice(tmp_path_factory):
    """PER_CLASS real CIFAR-10 JPEGs per class and split, as a folder (train/<class>/x.jpg, test/...) and a .tar.gz."""
    tarball = shared("cifar10-jpeg") / "cifar10-jpeg.tar.gz"
    folder = tmp_path_factory.mktemp("cifar") / "cifar10"
    counts = {}
    with tarfile.open(tarball, "r|gz") as tar:
        for m in tar:
            parts = m.name.split("/")
            if m.isfile() and len(parts) == 3 and counts.get(tuple(parts[:2]), 0) < PER_CLASS:
                counts[tuple(parts[:2])] = counts.get(tuple(parts[:2]), 0) + 1
                (folder / parts[0] / parts[1]).mkdir(parents=True, exist_ok=True)
                (folder / m.name).write_bytes(tar.extractfile(m).read())
    archive = folder.parent / "slice.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="cifar10")
    return folder, archive


def test_cifar10_from_a_folder_a_tarball_and_its_parent(cifar_slice, private_cache):
    folder, archive = cifar_slice
    train = DATASETS.get("cifar10")("train", root=str(folder), download=False)
    test = DATASETS.get("cifar10")("test", root=str(folder), download=False)
    assert len(train) == len(test) == 10 * PER_CLASS and train.image_shape == (3, 32, 32)
    assert train.images.dtype == torch.uint8 and sorted(train.labels.tolist()) == sorted(list(range(10)) * PER_CLASS)
    assert train.labels[:10].tolist() == list(range(10))  # classes interleave
    assert train.files[0].startswith("train/airplane/") and test.files[0].startswith("test/airplane/")
    first = np.asarray(Image.open(folder / train.files[0]).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(train.images[0].numpy(), first)
    for root in (archive, archive.parent):  # the archive itself, or the folder holding it
        again = DATASETS.get("cifar10")("train", root=str(root), download=False)
        assert torch.equal(again.images, train.images) and torch.equal(again.labels, train.labels)
    big = DATASETS.get("cifar10")("test", root=str(folder), download=False, size=64)
    assert big.image_shape == (3, 64, 64)


def test_the_cache_is_used_and_follows_the_files(cifar_slice, tmp_path, monkeypatch, private_cache):
    folder = tmp_path / "c"
    shutil.copytree(cifar_slice[0], folder)
    first = DATASETS.get("cifar10")("train", root=str(folder), download=False)
    assert len(list(private_cache.glob("cifar10-*.npz"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again although cached")

    monkeypatch.setattr(module, "decode_images", no_decoding)
    cached = DATASETS.get("cifar10")("train", root=str(folder), download=False)
    assert torch.equal(cached.images, first.images) and cached.files == first.files
    monkeypatch.undo()
    monkeypatch.setenv("GENZOO_CACHE", str(private_cache))
    # a changed file changes the key: decoded again, a second cache file
    victim = folder / first.files[0]
    Image.new("RGB", (32, 32), (255, 0, 0)).save(victim, format="JPEG")
    changed = DATASETS.get("cifar10")("train", root=str(folder), download=False)
    assert len(list(private_cache.glob("cifar10-*.npz"))) == 2
    assert changed.images[0, 0].float().mean() > 200 and not torch.equal(changed.images, first.images)
    # no half-written files are left next to the cache
    assert not [p for p in private_cache.iterdir() if p.name.startswith(".")]
    # cache: false writes nothing
    DATASETS.get("cifar10")("train", root=str(cifar_slice[0]), download=False, cache=False)
    assert len(list(private_cache.glob("cifar10-*.npz"))) == 2


def official_batches(images: np.ndarray, labels: np.ndarray, python: bool) -> dict[str, bytes]:
    """The official CIFAR-10 files, made from a handful of images (split over the 5 training batches + test)."""
    files = {}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    chunks = np.array_split(np.arange(len(images)), 6)
    for name, idx in zip(names, chunks):
        if python:
            batch = {b"data": images[idx].reshape(len(idx), -1), b"labels": labels[idx].tolist(), b"batch_label": b"x"}
            files[name] = pickle.dumps(batch, protocol=2)
        else:
            rec = np.concatenate([labels[idx, None].astype(np.uint8), images[idx].reshape(len(idx), -1)], axis=1)
            files[name + ".bin"] = rec.tobytes()
    return files


def write_tar(path, folder_name, files):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{folder_name}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("python", [False, True], ids=["binary", "python"])
def test_cifar10_official_archives_folders_and_download(tmp_path, monkeypatch, python):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, 24)
    files = official_batches(images, labels, python)
    folder_name = "cifar-10-batches-py" if python else "cifar-10-batches-bin"
    archive = tmp_path / "mirror" / ("cifar-10-python.tar.gz" if python else "cifar-10-binary.tar.gz")
    archive.parent.mkdir()
    write_tar(archive, folder_name, files)
    n_train = sum(len(c) for c in np.array_split(np.arange(24), 6)[:5])
    train = DATASETS.get("cifar10")("train", root=str(archive), download=False)
    test = DATASETS.get("cifar10")("test", root=str(archive), download=False, cache=False)
    assert np.array_equal(train.images.numpy(), images[:n_train]) and np.array_equal(
        test.images.numpy(), images[n_train:]
    )
    assert train.labels.tolist() == labels[:n_train].tolist()
    extracted = tmp_path / "extracted"
    with tarfile.open(archive) as tar:
        tar.extractall(extracted, filter="data")
    again = DATASETS.get("cifar10")("train", root=str(extracted), download=False, cache=False)
    assert torch.equal(again.images, train.images)
    if python:  # a pickle that tries to run code is refused
        evil = dict(files, test_batch=pickle.dumps(print, protocol=2))
        write_tar(tmp_path / "evil.tar.gz", folder_name, evil)
        with pytest.raises(GenzooError, match="cannot be read"):
            DATASETS.get("cifar10")("train", root=str(tmp_path / "evil.tar.gz"), download=False, cache=False)
        return
    # download: the real code path, pointed at a local mirror (these machines have no internet)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(cifar10.CIFAR10_BINARY, "url", archive.as_uri())
    monkeypatch.setitem(cifar10.CIFAR10_BINARY, "md5", md5)
    home = tmp_path / "data"
    fetched = DATASETS.get("cifar10")("train", root=str(home), download=True, cache=False)
    assert (home / "cifar-10-binary.tar.gz").is_file() and torch.equal(fetched.images, train.images)
    monkeypatch.setitem(cifar10.CIFAR10_BINARY, "md5", "0" * 32)
    with pytest.raises(GenzooError, match="checksum mismatch"):
        DATASETS.get("cifar10")("train", root=str(tmp_path / "other"), download=True)
    with pytest.raises(GenzooError, match="no CIFAR-10 data found"):
        DATASETS.get("cifar10")("train", root=str(tmp_path / "other"), download=False)


@pytest.fixture(scope="module")
def celeba_slice(tmp_path_factory):
    """The first 30 real CelebA faces (89x109) from the shared tarball, plus an attribute file in CelebA's format."""
    tarball = shared("celeba-10k") / "celeba-10k-89x109.tar.gz"
    folder = tmp_path_factory.mktemp("celeba") / "img_align_celeba"
    folder.mkdir()
    wanted = {f"{i:06d}.jpg" for i in range(1, 31)}
    with tarfile.open(tarball, "r|gz") as tar:
        for m in tar:
            base = m.name.rsplit("/", 1)[-1]
            if m.isfile() and base in wanted:
                (folder / base).write_bytes(tar.extractfile(m).read())
    names = [f"A{k}" for k in range(40)]
    rows = [f"{i:06d}.jpg " + " ".join("1" if (i + k) % 3 == 0 else "-1" for k in range(40)) for i in range(1, 31)]
    (folder.parent / "list_attr_celeba.txt").write_text("\n".join(["30", " ".join(names), *rows]) + "\n")
    return folder


def test_celeba_crop_resize_split_and_attributes(celeba_slice):
    build = DATASETS.get("celeba")
    train = build("train", root=str(celeba_slice), size=64, test_count=5)
    test = build("test", root=str(celeba_slice), size=64, test_count=5)
    assert len(train) == 25 and len(test) == 5 and train.image_shape == (3, 64, 64)
    assert test.files[-1] == "000030.jpg" and train.files[0] == "000001.jpg"
    # centre square (89x89 of 89x109, offset 10) then bilinear resize, exactly
    src = Image.open(celeba_slice / "000001.jpg").convert("RGB")
    assert src.size == (89, 109)
    expected = np.asarray(src.crop((0, 10, 89, 99)).resize((64, 64), Image.BILINEAR)).transpose(2, 0, 1)
    assert np.array_equal(train.images[0].numpy(), expected)
    # the attribute file found next to the folder: (N, 40) in {0, 1}
    assert train.labels.shape == (25, 40) and set(train.labels.unique().tolist()) == {0, 1}
    assert train.labels[2, 0] == 1 and train.labels[0, 0] == 0 and train.label_names[:2] == ["A0", "A1"]
    small = build("train", root=str(celeba_slice), size=16, crop=60, test_count=5, train_count=10)
    assert len(small) == 10 and small.image_shape == (3, 16, 16)
    with pytest.raises(GenzooError, match="data.test_count"):
        build("train", root=str(celeba_slice), test_count=30)
    with pytest.raises(GenzooError, match="data.train_count"):
        build("train", root=str(celeba_slice), test_count=5, train_count=26)
    with pytest.raises(GenzooError, match="attributes file"):
        build("train", root=str(celeba_slice), attributes=str(celeba_slice / "nope.txt"))


@pytest.mark.slow
def test_celeba_reads_the_shared_tarball_without_extracting(celeba_slice):
    """The real 10k-image archive as data.root, read without extracting (decodes 10k JPEGs: slow)."""
    archive = shared("celeba-10k") / "celeba-10k-89x109.tar.gz"
    test = DATASETS.get("celeba")("test", root=str(archive), size=32, test_count=1000)
    assert len(test) == 1000 and test.image_shape == (3, 32, 32) and test.files[-1].endswith("010000.jpg")


def make_odd_images(folder):
    """Grey, RGBA (half transparent), palette with a transparent index, 16-bit grey, CMYK JPEG, 1-bit, in
    subfolders."""
    (folder / "a").mkdir(parents=True)
    (folder / "b" / "deep").mkdir(parents=True)
    Image.new("L", (12, 12), 100).save(folder / "a" / "grey.png")
    rgba = Image.new("RGBA", (12, 12), (255, 0, 0, 255))
    rgba.paste((0, 0, 255, 0), (0, 0, 6, 12))  # left half fully transparent
    rgba.save(folder / "a" / "rgba.png")
    pal = Image.new("P", (12, 12), 1)
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.paste(0, (0, 0, 12, 6))
    pal.save(folder / "b" / "palette.png", transparency=0)
    Image.fromarray(np.full((12, 12), 65535, dtype=np.uint16)).save(folder / "b" / "deep" / "sixteen.png")
    Image.new("CMYK", (12, 12), (0, 255, 255, 0)).save(folder / "b" / "deep" / "cmyk.jpg")
    Image.new("1", (12, 12), 1).save(folder / "b" / "bits.bmp")
    (folder / ".hidden.png").write_bytes(b"not even an image")
    (folder / "notes.txt").write_text("ignored")


def test_image_folder_converts_odd_images(tmp_path):
    make_odd_images(tmp_path / "imgs")
    ds = DATASETS.get("image_folder")("train", root=str(tmp_path / "imgs"), test_fraction=0.0)
    assert len(ds) == 6 and ds.image_shape == (3, 12, 12)
    px = {f: ds.images[i, :, 6, :].T.numpy() for i, f in enumerate(ds.files)}  # a middle row, (12, 3)
    assert (px["a/grey.png"] == 100).all()
    assert (px["a/rgba.png"][:6] == 255).all() and px["a/rgba.png"][8].tolist() == [255, 0, 0]  # on white
    assert (px["b/palette.png"][6:] == [0, 255, 0]).all()
    assert (px["b/deep/sixteen.png"] == 255).all() and (px["b/bits.bmp"] == 255).all()
    assert px["b/deep/cmyk.jpg"][0, 0] > 200 and px["b/deep/cmyk.jpg"][0, 1] < 60  # red, through JPEG
    grey = DATASETS.get("image_folder")(
        "train", root=str(tmp_path / "imgs"), channels=1, size=8, test_fraction=0.0, cache=False
    )
    assert grey.image_shape == (1, 8, 8)
    # a label per first-level folder; a fixed random test split
    labelled = DATASETS.get("image_folder")("test", root=str(tmp_path / "imgs"), labels="folders", test_fraction=0.34)
    assert len(labelled) == 2 and labelled.label_names == ["a", "b"]


def test_image_folder_splits_label_files_and_sizes(tmp_path):
    root = tmp_path / "set"
    for split, n in (("train", 5), ("test", 2)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (10 + i, 8), (i * 20, 0, 0)).save(root / split / f"{i}.png")
    with pytest.raises(GenzooError, match="differ in size.*data.size"):
        DATASETS.get("image_folder")("train", root=str(root))
    (root / "labels.csv").write_text(
        "file,smile\n" + "".join(f"{s}/{i}.png,{i % 2}\n" for s in ("train", "test") for i in range(5))
    )
    train = DATASETS.get("image_folder")("train", root=str(root), size=6, labels="labels.csv")
    test = DATASETS.get("image_folder")("test", root=str(root), size=6, labels="labels.csv")
    assert len(train) == 5 and len(test) == 2 and train.image_shape == (3, 6, 6)
    assert train.labels.tolist() == [0, 1, 0, 1, 0] and train.label_names == ["smile"]
    (root / "short.txt").write_text("train/0.png 1\n")
    with pytest.raises(GenzooError, match="has no line in label file"):
        DATASETS.get("image_folder")("train", root=str(root), size=6, labels="short.txt")


def test_a_corrupt_file_is_named(tmp_path):
    root = tmp_path / "broken"
    root.mkdir()
    for i in range(3):
        Image.new("RGB", (8, 8)).save(root / f"{i}.jpg")
    good = (root / "1.jpg").read_bytes()
    (root / "1.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG
    (root / "2.jpg").write_bytes(b"\x89PNG garbage")
    with pytest.raises(GenzooError, match=r"image '1.jpg' in .* cannot be decoded"):
        DATASETS.get("image_folder")("train", root=str(root))
    (root / "1.jpg").write_bytes(good)
    with pytest.raises(GenzooError, match=r"image '2.jpg'.*delete or replace"):
        DATASETS.get("image_folder")("train", root=str(root))
    (tmp_path / "empty").mkdir()
    with pytest.raises(GenzooError, match="no images under"):
        DATASETS.get("image_folder")("train", root=str(tmp_path / "empty"))


def test_mnist_padded_and_resized():
    root = shared("mnist")
    plain = DATASETS.get("mnist")("test", root=str(root), download=False)
    padded = DATASETS.get("mnist")("test", root=str(root), download=False, pad=2)
    assert padded.image_shape == (1, 32, 32) and torch.equal(padded.images[:, :, 2:30, 2:30], plain.images)
    assert padded.images[:, :, :2].sum() == 0
    resized = DATASETS.get("mnist")("test", root=str(root), download=False, size=64)
    assert resized.image_shape == (1, 64, 64) and abs(resized.images.float().mean() - plain.images.float().mean()) < 1


def test_the_process_pool_decodes_in_order_and_names_a_broken_file(tmp_path, monkeypatch):
    monkeypatch.setattr(module, "POOL_MIN_IMAGES", 8)
    root = tmp_path / "many"
    root.mkdir()
    for i in range(40):
        Image.new("L", (6, 6), i * 5).save(root / f"{i:03d}.png")
    ds = DATASETS.get("image_folder")("train", root=str(root), channels=1, test_fraction=0.0, cache=False)
    assert ds.images[:, 0, 0, 0].tolist() == [i * 5 for i in range(40)]
    (root / "031.png").write_bytes(b"broken")
    with pytest.raises(GenzooError, match="image '031.png'.*cannot be decoded"):
        module.decode_images([(p.name, p) for p in sorted(root.iterdir())], module.Decode(1), str(root), workers=2)
