"""CIFAR-10 from its official archives (binary or python, read without pickle), from a folder of them, or from the
JPEG export of the data set, decoded once into the in-memory ImageDataset (images.py's cache and decoder)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from genzoo.core.errors import GenzooError
from genzoo.core.registry import DATASETS
from genzoo.datasets.base import ImageDataset, data_root
from genzoo.datasets.images import (
    Decode,
    _archive_identity,
    _check_split,
    _dataset,
    _stat_identity,
    cached_arrays,
    decode_images,
    is_archive,
    is_image_name,
    list_folder,
    pad_and_resize,
    read_archive,
)

# -- the archives -----------------------------------------------------------------------------------------------------
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_BINARY = dict(
    url="https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    file="cifar-10-binary.tar.gz",
    md5="c32a1d4ab5d03f1284b67883e8d87530",
)
_CIFAR_BIN = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
_CIFAR_PY = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def _cifar_from_binary(files: dict[str, bytes], where: str) -> dict[str, np.ndarray]:
    """The official binary version: records of 1 label byte + 3072 pixel bytes (R, G, B planes of 32x32)."""
    images, labels, names = [], [], []
    for f in _CIFAR_BIN:
        raw = np.frombuffer(files[f], dtype=np.uint8)
        if raw.size % 3073:
            raise GenzooError(f"CIFAR-10 file '{f}' in '{where}' is truncated", "fetch the archive again")
        rec = raw.reshape(-1, 3073)
        labels.append(rec[:, 0].astype(np.int64))
        images.append(rec[:, 1:].reshape(-1, 3, 32, 32))
        names += [f"{'test' if f.startswith('test') else 'train'}/{f}:{i}" for i in range(len(rec))]
    return _with_split({"images": np.concatenate(images), "labels": np.concatenate(labels), "names": np.array(names)})


def _with_split(arrays: dict) -> dict:
    """Mark each image train (0) or test (1) from the split folder or file its name starts with."""
    arrays["test"] = np.array(
        [n.split("/")[-3 if n.count("/") >= 2 else 0] == "test" for n in arrays["names"].tolist()], dtype=np.uint8
    )
    return arrays


def _cifar_from_python(files: dict[str, bytes], where: str) -> dict[str, np.ndarray]:
    """The official python version, read with an unpickler that can only build numpy arrays, lists and dicts."""
    import pickle

    allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("_codecs", "encode"),
    }

    class Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) not in allowed:
                raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
            return super().find_class(module, name)

    images, labels, names = [], [], []
    for f in _CIFAR_PY:
        try:
            batch = Restricted(io.BytesIO(files[f]), encoding="bytes").load()
            data, lab = np.asarray(batch[b"data"], dtype=np.uint8), np.asarray(batch[b"labels"], dtype=np.int64)
        except Exception as exc:
            raise GenzooError(
                f"CIFAR-10 file '{f}' in '{where}' cannot be read ({exc})", "fetch the archive again"
            ) from None
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(lab)
        names += [f"{'test' if f.startswith('test') else 'train'}/{f}:{i}" for i in range(len(lab))]
    return _with_split({"images": np.concatenate(images), "labels": np.concatenate(labels), "names": np.array(names)})


def _member_table(names, wanted: list[str]) -> dict[str, str] | None:
    """Map each wanted base name to the one member/file path ending in it, or None if any is missing."""
    found = {}
    for n in names:
        base = n.rsplit("/", 1)[-1]
        if base in wanted:
            found.setdefault(base, n)
    return found if len(found) == len(wanted) else None


def _cifar_jpeg_items(names: list[str]) -> tuple[list[str], np.ndarray] | None:
    """Order and labels of a `train|test/<class>/*` layout, or None if the names are not in it."""
    rows = []
    for n in names:
        parts = n.split("/")
        if len(parts) >= 3 and parts[-3] in ("train", "test") and is_image_name(parts[-1]):
            rows.append((parts[-3], parts[-1], parts[-2], n))
    if not rows or {r[0] for r in rows} != {"train", "test"}:
        return None
    classes = sorted({r[2] for r in rows})
    index = {c: CIFAR10_CLASSES.index(c) if c in CIFAR10_CLASSES else i for i, c in enumerate(classes)}
    # train before test; within a split, by file name then class, so that classes interleave (reconstruction grids)
    rows.sort(key=lambda r: (r[0] != "train", r[1], r[2]))
    return [r[3] for r in rows], np.array([index[r[2]] for r in rows], dtype=np.int64)


def _find_cifar(base: Path, download: bool):
    """(kind, where, identity, loader) for the first CIFAR-10 form found at `base`."""
    candidates = [base] if base.is_file() else ([base] + sorted(base.iterdir()) if base.is_dir() else [])
    for c in candidates:
        if c.is_dir():
            if (c / "train").is_dir() and (c / "test").is_dir():
                paths = list_folder(c)
                rel = [p.relative_to(c).as_posix() for p in paths]
                layout = _cifar_jpeg_items(rel)
                if layout:
                    order, labels = layout
                    return (
                        "jpeg",
                        c,
                        _stat_identity(paths, c),
                        lambda c=c, order=order, labels=labels: _decode_cifar(order, labels, lambda n: c / n, c),
                    )
            for kind, wanted, read in (("bin", _CIFAR_BIN, _cifar_from_binary), ("py", _CIFAR_PY, _cifar_from_python)):
                files = {p.name: p for p in c.iterdir() if p.is_file()}
                if all(w in files for w in wanted):
                    paths = [files[w] for w in wanted]
                    return (
                        kind,
                        c,
                        _stat_identity(paths, c),
                        lambda paths=paths, read=read, c=c: read({p.name: p.read_bytes() for p in paths}, str(c)),
                    )
        elif is_archive(c):
            return ("archive", c, _archive_identity(c), lambda c=c: _cifar_from_archive(c))
    if download and (base.is_dir() or not base.exists()):
        from genzoo.datasets.download import download as fetch

        target = (base if base.suffix == "" else base.parent) / CIFAR10_BINARY["file"]
        fetch([CIFAR10_BINARY["url"]], target, CIFAR10_BINARY["md5"])
        return ("archive", target, _archive_identity(target), lambda: _cifar_from_archive(target))
    raise GenzooError(
        f"cifar10: no CIFAR-10 data found at '{base}'",
        "set data.root to a folder with train/<class>/*.jpg and test/<class>/*.jpg, to such a .tar.gz, "
        "or to the official cifar-10-binary/python archive or folder; or set data.download=true",
    )


def _decode_cifar(order, labels, locate, where):
    items = [(n, locate(n)) for n in order]
    images = decode_images(items, Decode(channels=3), str(where))
    return _with_split({"images": images, "labels": labels, "names": np.array(order)})


def _cifar_from_archive(path: Path) -> dict[str, np.ndarray]:
    wanted = set(_CIFAR_BIN) | set(_CIFAR_PY)
    files = read_archive(path, keep=lambda n: is_image_name(n) or n.rsplit("/", 1)[-1] in wanted)
    for _kind, names, read in (("bin", _CIFAR_BIN, _cifar_from_binary), ("py", _CIFAR_PY, _cifar_from_python)):
        table = _member_table(files, names)
        if table:
            return read({base: files[member] for base, member in table.items()}, str(path))
    layout = _cifar_jpeg_items(list(files))
    if layout is None:
        raise GenzooError(
            f"archive '{path}' holds no CIFAR-10 data",
            "expected train/<class>/*.jpg + test/<class>/*.jpg, or the official binary/python batches",
        )
    order, labels = layout
    return _with_split(
        {
            "images": decode_images([(n, files[n]) for n in order], Decode(channels=3), str(path)),
            "labels": labels,
            "names": np.array(order),
        }
    )


@DATASETS.register("cifar10")
def cifar10(
    split: str, root: str | None = None, download: bool = True, size: int | None = None, cache: bool = True
) -> ImageDataset:
    """CIFAR-10, 50k train + 10k test, 32x32 RGB: JPEG class folders, or the official binary/python archives.

    `root` may be a folder holding train/<class>/*.jpg and test/<class>/*.jpg (or one level above it), such a
    .tar.gz, or the official cifar-10-batches-bin / cifar-10-batches-py folder or archive. When nothing is found
    and `download` is true, the official binary archive (no pickle) is fetched and checked against its md5.
    `size` resizes (bilinear, antialiased), e.g. 64 as the conv VAE seed does.
    """
    _check_split("cifar10", split)
    base = data_root(root, "cifar10")
    kind, where, identity, load = _find_cifar(base, download)
    arrays = cached_arrays("cifar10", [kind, identity], {}, load, enabled=cache)
    is_test = arrays["test"].astype(bool)
    part = np.flatnonzero(is_test if split == "test" else ~is_test)
    return pad_and_resize(_dataset(arrays, part, f"cifar10/{split}", label_names=list(CIFAR10_CLASSES)), 0, size)


# -- CelebA and generic folders -------------------------------------------------------------------------------------
