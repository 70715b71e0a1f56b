"""Image-file datasets: CelebA and any folder of images (CIFAR-10 in cifar10.py), decoded once into the in-memory
ImageDataset.

Sources are folders (searched recursively) or archives (.tar, .tar.gz, .tgz, .zip) read without extracting.
Decoding runs on a pool of forked processes (threads on systems without fork). The decoded uint8 array is
cached as an .npz (no pickle) in $GENZOO_CACHE, else $XDG_CACHE_HOME/genzoo/decoded, else ~/.cache/genzoo/decoded,
keyed by a hash of the file list (names, sizes, modification times; for an archive its path, size and time) and
of the decoding options, and written atomically; `cache: false` turns it off. Both splits share one cache file.

Every image becomes grey (`channels: 1`) or RGB: palette, 16-bit, CMYK and bilevel images are converted, and
transparent pixels are composited on white. A file that cannot be decoded is a GenzooError naming it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.registry import DATASETS
from genzoo.datasets.base import ImageDataset, data_root

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm", ".pbm"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
CACHE_VERSION = 2


# -- decoding --------------------------------------------------------------------------------------------------
def _as_mode(img, channels: int):
    """Any PIL image -> mode 'L' (channels 1) or 'RGB' (channels 3)."""
    from PIL import Image

    if img.mode.startswith("I;16") or img.mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        if img.mode.startswith("I;16") or a.max(initial=0) > 255:
            a = a / 257.0
        elif img.mode == "F" and a.max(initial=0) <= 1.0:
            a = a * 255.0
        img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L")
    transparent = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    if transparent:
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return img.convert("L" if channels == 1 else "RGB")


def centre_square(img, crop: int | None):
    """Centre crop to a square of side `crop` (None: the largest), rounding offsets as torchvision's CenterCrop."""
    w, h = img.size
    side = crop or min(w, h)
    if side > min(w, h):
        raise ValueError(f"crop {side} is larger than the image ({w}x{h})")
    left, top = int(round((w - side) / 2.0)), int(round((h - side) / 2.0))
    return img.crop((left, top, left + side, top + side))


@dataclass(frozen=True)
class Decode:
    """How each file becomes an array: colour mode, optional centre square crop, optional resize to size x size."""

    channels: int = 3
    size: int | None = None
    crop: int | None = None
    square: bool = True  # crop to a square before resizing
    resample: str = "bilinear"  # a PIL filter name: bilinear, lanczos, box, ...

    def __call__(self, source) -> np.ndarray:
        from PIL import Image

        with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as img:
            img.load()
            img = _as_mode(img, self.channels)
        if self.crop is not None or (self.size is not None and self.square):
            img = centre_square(img, self.crop)
        if self.size is not None and img.size != (self.size, self.size):
            img = img.resize((self.size, self.size), Image.Resampling[self.resample.upper()])
        a = np.asarray(img, dtype=np.uint8)
        return (a[..., None] if a.ndim == 2 else a).transpose(2, 0, 1)


def _decode_one(decode: Callable[[object], np.ndarray], name: str, source, where: str) -> np.ndarray:
    try:
        return decode(source)
    except Exception as exc:  # PIL raises many types for broken files
        raise GenzooError(
            f"image '{name}' in '{where}' cannot be decoded ({type(exc).__name__}: {exc})",
            "delete or replace that file (and run again)",
        ) from None


_SHARED: dict[int, np.ndarray] = {}  # decode_images' outputs in shared memory, found by key in forked workers


def _decode_into(target, start: int, decode, chunk, where) -> tuple[int, tuple] | None:
    """Decode a chunk straight into rows start, start + 1, ... of the output (`target`: the array, or in a forked
    worker the _SHARED key of one in shared memory), so no decoded image travels back; returns (index in the chunk,
    shape) of the first image whose size differs from the output's, else None."""
    out = _SHARED[target] if isinstance(target, int) else target
    for k, (name, source) in enumerate(chunk):
        a = _decode_one(decode, name, source, where)
        if a.shape != out.shape[1:]:
            return k, a.shape
        out[start + k] = a
    return None


def _is_shared(a: np.ndarray | None) -> bool:
    """Whether forked processes' writes to `a` reach this process: a memory map opened for writing (MAP_SHARED)."""
    return isinstance(a, np.memmap) and a.mode in ("r+", "w+")


def _shared_empty(shape: tuple[int, ...]) -> np.ndarray:
    """An uninitialised uint8 array in anonymous shared memory, which forked processes write into."""
    import mmap

    n = int(np.prod(shape))
    return np.frombuffer(mmap.mmap(-1, max(n, 1)), np.uint8, count=n).reshape(shape)


POOL_MIN_IMAGES = 2048  # below this a pool costs more than it saves


def decode_images(
    items: list[tuple[str, object]],
    decode: Callable[[object], np.ndarray],
    where: str,
    workers: int | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Decode [(name, path or bytes)] into one uint8 array (N, C, H, W), in chunks on a pool of processes.

    Processes, not threads: for small images (CIFAR's 32x32) Pillow's per-call Python work dominates and threads
    only contend for the GIL (measured: 2 threads 1.4x slower than 1 on CIFAR-10, 2 forked processes 1.4x faster).
    Forked workers need no re-import; where fork is unavailable (macOS, Windows) a thread pool is used.
    `workers` None: up to 8, and a pool only from POOL_MIN_IMAGES images on; a number: that many, whatever the count.
    `out`: an array (N, C, H, W) to fill (e.g. rows of a memory map) instead of a new one.

    Every image is written into the output as it is decoded: no list of decoded images is held. Forked workers
    write into the output themselves (a new output is made in anonymous shared memory), so only a size mismatch
    comes back from them; a given `out` that is not a writable memory map is filled from such a buffer, the one
    case that holds the set twice (genzoo prepare passes a writable memory map). The parent thus never receives
    and frees large blocks, which would leave glibc's malloc keeping freed memory for the rest of the run (its mmap
    threshold rises with every large block freed).
    """
    import multiprocessing
    import sys

    if not items:
        raise GenzooError(f"no images found in '{where}'", f"image files end in {', '.join(sorted(IMAGE_SUFFIXES))}")
    first = _decode_one(decode, *items[0], where)
    shape = (len(items), *first.shape)
    if out is not None and out.shape != shape:
        raise ValueError(f"out is {out.shape}, the images need {shape}")
    if workers is None:
        workers = min(8, os.cpu_count() or 1) if len(items) >= POOL_MIN_IMAGES else 1
    rest = items[1:]
    pooled = workers > 1 and len(rest) >= 2
    forked = pooled and sys.platform.startswith("linux")
    target = out
    if forked and not _is_shared(out):
        target = _shared_empty(shape)
    elif target is None:
        target = np.empty(shape, dtype=np.uint8)
    target[0] = first

    def check(start, misfit):
        if misfit is not None:
            k, got = misfit
            raise GenzooError(
                f"images in '{where}' differ in size: '{items[0][0]}' is {_hw(first.shape)} but "
                f"'{items[start + k][0]}' is {_hw(got)}",
                "set data.size to resize them all to one square size",
            )

    if not pooled:
        check(1, _decode_into(target, 1, decode, rest, where))
    else:
        size = max(64, -(-len(rest) // (4 * workers)))
        starts = [1 + i for i in range(0, len(rest), size)]
        chunks = [rest[i - 1 : i - 1 + size] for i in starts]
        key, n = (id(target) if forked else target), len(chunks)
        try:
            if forked:
                from concurrent.futures import ProcessPoolExecutor

                _SHARED[key] = target  # before the fork: the workers inherit it
                pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
            else:
                pool = ThreadPoolExecutor(workers)
            with pool:
                for start, misfit in zip(
                    starts, pool.map(_decode_into, [key] * n, starts, [decode] * n, chunks, [where] * n)
                ):
                    check(start, misfit)
        finally:
            if forked:
                _SHARED.pop(key, None)
    if out is not None and target is not out:
        out[...] = target
        return out
    return target


def _hw(shape: tuple) -> str:
    return f"{shape[2]}x{shape[1]}"


# -- sources: folders and archives -------------------------------------------------------------------------------
def is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_SUFFIXES)


def is_image_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_SUFFIXES


def list_folder(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, hidden files and folders skipped, sorted by relative path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found += [Path(dirpath) / f for f in filenames if is_image_name(f)]
    return sorted(found, key=lambda p: p.relative_to(folder).as_posix())


def read_archive(path: Path, keep: Callable[[str], bool] = is_image_name) -> dict[str, bytes]:
    """{member name: bytes} of the members `keep` accepts, read straight from the archive (nothing extracted)."""
    out = {}
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as z:
                for info in z.infolist():
                    if not info.is_dir() and keep(info.filename):
                        out[info.filename] = z.read(info)
        else:
            with tarfile.open(path, "r|*") as tar:
                for member in tar:
                    if member.isfile() and keep(member.name):
                        out[member.name.removeprefix("./")] = tar.extractfile(member).read()
    except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise GenzooError(
            f"archive '{path}' cannot be read ({type(exc).__name__}: {exc})",
            "it is truncated or corrupt: fetch it again",
        ) from None
    return out


def _stat_identity(paths: list[Path], base: Path) -> list:
    out = []
    for p in paths:
        st = p.stat()
        out.append([p.relative_to(base).as_posix(), st.st_size, st.st_mtime_ns])
    return out


def _archive_identity(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


# -- the cache ---------------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    if os.environ.get("GENZOO_CACHE"):
        return Path(os.environ["GENZOO_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")).expanduser() / "genzoo" / "decoded"


def cached_arrays(
    kind: str, identity, options: dict, build: Callable[[], dict[str, np.ndarray]], enabled: bool = True
) -> dict[str, np.ndarray]:
    """Arrays from the cache if the same files were decoded with the same options before, else built and cached."""
    if not enabled:
        return build()
    key = hashlib.sha256(json.dumps([CACHE_VERSION, kind, identity, options], sort_keys=True).encode()).hexdigest()[
        :24
    ]
    path = cache_dir() / f"{kind}-{key}.npz"
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                return {k: f[k] for k in f.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            pass  # a damaged cache file is rebuilt below
    arrays = build()
    from genzoo.core.io import atomic_path

    try:
        with atomic_path(path, suffix=".npz.tmp") as tmp, open(tmp, "wb") as f:
            np.savez(f, **arrays)
    except OSError as exc:
        warnings.warn(
            f"could not write the decoded-image cache '{path}' ({exc}); decoding again next time", stacklevel=2
        )
    return arrays


def _dataset(arrays: dict, part, name: str, label_names=None) -> ImageDataset:
    labels = torch.from_numpy(arrays["labels"][part].astype(np.int64)) if "labels" in arrays else None
    ds = ImageDataset(torch.from_numpy(np.ascontiguousarray(arrays["images"][part])), labels, name=name)
    ds.files = [str(f) for f in arrays["names"][part]] if "names" in arrays else None
    ds.label_names = label_names
    return ds


def _check_split(name: str, split: str) -> None:
    if split not in ("train", "test"):
        raise GenzooError(f"dataset '{name}' has splits train and test, not '{split}'", "use split train or test")


# -- label files ------------------------------------------------------------------------------------------------
def read_label_file(path: Path) -> tuple[dict[str, np.ndarray], list[str] | None]:
    """Per-image labels: {file name: values}, column names or None.

    Reads CelebA's list_attr_celeba.txt (a count line, a line of 40 names, then `000001.jpg -1 1 ...`) and any
    `file value [value ...]` table, whitespace- or comma-separated, with an optional header line of names.
    Values in {-1, 1} are mapped to {0, 1}.
    """
    if not path.is_file():
        raise GenzooError(f"label file '{path}' does not exist", "check data.attributes / data.labels")
    lines = [line.replace(",", " ").split() for line in path.read_text().splitlines() if line.strip()]
    names = None
    if lines and len(lines[0]) == 1 and lines[0][0].isdigit():  # CelebA: count, then names
        lines = lines[1:]
        names, lines = lines[0], lines[1:]
    elif lines and not _numeric(lines[0][1:]):
        names = lines[0][1:] if len(lines) > 1 and len(lines[0]) == len(lines[1]) else lines[0]
        lines = lines[1:]
    table = {}
    for i, row in enumerate(lines):
        if len(row) < 2 or not _numeric(row[1:]):
            raise GenzooError(
                f"label file '{path}' line {i + 1}: expected `file value ...`, got {' '.join(row)!r}", "fix the file"
            )
        table[row[0]] = np.array([float(v) for v in row[1:]])
    if not table:
        raise GenzooError(f"label file '{path}' holds no labels", "fix the file")
    values = np.unique(np.concatenate(list(table.values())))
    if set(values.tolist()) <= {-1.0, 1.0}:
        table = {k: (v > 0).astype(np.int64) for k, v in table.items()}
    else:
        table = {k: v.astype(np.int64) for k, v in table.items()}
    return table, names


def _numeric(tokens) -> bool:
    try:
        [float(t) for t in tokens]
        return bool(tokens)
    except ValueError:
        return False


def _attach_label_file(arrays: dict, names: list[str], path: Path) -> None:
    """Add the label file's values for `names` (in order) and its column names to a decoded-arrays dict."""
    table, label_names = read_label_file(path)
    arrays["labels"] = labels_for(names, table, path)
    arrays["label_names"] = np.array(label_names or [])


def _label_names(arrays: dict) -> list[str] | None:
    names = [str(s) for s in arrays["label_names"]] if "label_names" in arrays else None
    return names or None


def labels_for(names: list[str], table: dict[str, np.ndarray], path: Path) -> np.ndarray:
    """Rows of `table` for image names (matched by relative path, else by file name)."""
    rows = []
    for n in names:
        row = table.get(n)
        if row is None:
            row = table.get(n.rsplit("/", 1)[-1])
        if row is None:
            raise GenzooError(f"image '{n}' has no line in label file '{path}'", "add it, or remove the image")
        rows.append(row)
    out = np.stack(rows)
    return out[:, 0] if out.shape[1] == 1 else out


def image_source(base: Path, what: str):
    """(items() -> [(name, path or bytes)], identity, where) for a folder of images or an archive of them.

    An archive is only read when `items()` is called (a cache hit needs just its size and time). A folder without
    images of its own is searched for the single archive that has them.
    """
    if is_archive(base):
        return _archive_source(base)
    if not base.is_dir():
        raise GenzooError(
            f"{what}: '{base}' does not exist", "set data.root to a folder of images or an archive of them"
        )
    paths = list_folder(base)
    if not paths:
        archives = [p for p in sorted(base.iterdir()) if is_archive(p)]
        if len(archives) == 1:
            return _archive_source(archives[0])
        raise GenzooError(
            f"{what}: no images under '{base}'" + (f" (and {len(archives)} archives: name one)" if archives else ""),
            "set data.root to a folder of images or to an archive of them",
        )
    return (lambda: [(p.relative_to(base).as_posix(), p) for p in paths]), _stat_identity(paths, base), base


def _archive_source(path: Path):
    def items():
        files = read_archive(path)
        tops = {n.split("/", 1)[0] for n in files}
        if len(tops) == 1 and all("/" in n for n in files):  # one top folder: names relative to it
            files = {n.split("/", 1)[1]: v for n, v in files.items()}
        return sorted(files.items())

    return items, _archive_identity(path), path


def _find_label_file(explicit: str | None, base: Path, default_name: str | None) -> Path | None:
    if explicit:
        p = Path(explicit).expanduser()
        return p if p.is_absolute() or p.exists() else (base if base.is_dir() else base.parent) / p
    if default_name:
        for d in (base if base.is_dir() else base.parent, (base if base.is_dir() else base.parent).parent):
            if (d / default_name).is_file():
                return d / default_name
    return None


def _file_identity(path: Path | None):
    return None if path is None else _archive_identity(path)


@DATASETS.register("celeba")
def celeba(
    split: str,
    root: str | None = None,
    size: int = 64,
    crop: int | None = None,
    test_count: int = 1000,
    train_count: int | None = None,
    attributes: str | None = None,
    cache: bool = True,
) -> ImageDataset:
    """CelebA aligned faces (a folder of JPEGs or an archive): centre square crop, resized to size x size.

    `crop` is the side of the centred square in source pixels (None: the largest square, e.g. 89x89 of the
    89x109 subset; 148 is usual for the 178x218 originals). Images are ordered by file name; the last
    `test_count` are the test split and the first `train_count` of the rest (default all) the training split.
    Labels: the 40 attributes in {0, 1} from list_attr_celeba.txt (`attributes`, or found next to the images).
    """
    _check_split("celeba", split)
    if not 8 <= size <= 1024:
        raise GenzooError(f"recipe key 'data.size' must be between 8 and 1024, got {size}", "use e.g. 64, 128 or 256")
    base = data_root(root, "celeba")
    items, identity, where = image_source(base, "celeba")
    label_path = _find_label_file(attributes, base, "list_attr_celeba.txt")
    if attributes and not label_path.is_file():
        raise GenzooError(f"attributes file '{label_path}' does not exist", "fix data.attributes")
    options = {"size": size, "crop": crop, "labels": _file_identity(label_path)}

    def load():
        todo = items()
        names = [n for n, _ in todo]
        images = decode_images(todo, Decode(3, size, crop), str(where))
        arrays = {"images": images, "names": np.array(names)}
        if label_path is not None:
            _attach_label_file(arrays, names, label_path)
        return arrays

    arrays = cached_arrays("celeba", identity, options, load, enabled=cache)
    n = len(arrays["images"])
    if test_count < 0 or test_count >= n:
        raise GenzooError(
            f"recipe key 'data.test_count' must be 0..{n - 1} ({n} images in '{where}'), got {test_count}",
            "lower data.test_count",
        )
    rest = n - test_count
    if train_count is not None and not 0 < train_count <= rest:
        raise GenzooError(
            f"recipe key 'data.train_count' must be 1..{rest} (after {test_count} test images), got {train_count}",
            "lower data.train_count or data.test_count",
        )
    part = slice(rest, n) if split == "test" else slice(0, train_count or rest)
    return _dataset(arrays, part, f"celeba/{split}", label_names=_label_names(arrays))


@DATASETS.register("image_folder")
def image_folder(
    split: str,
    root: str,
    size: int | None = None,
    crop: int | None = None,
    channels: Literal[1, 3] = 3,
    test_fraction: float = 0.1,
    labels: str | None = None,
    cache: bool = True,
) -> ImageDataset:
    """Any folder (searched recursively) or archive of images; train/ and test/ subfolders are used as splits.

    With `size`, each image is centre-cropped to a square (side `crop`, default the largest) and resized to
    size x size; without it, all images must share one size. Without train/ and test/ subfolders a fixed random
    `test_fraction` of the images is the test split. `labels`: `folders` (the first subfolder names a class) or a
    label file (`file value ...` lines, optional header; CelebA's attribute file works too).
    """
    _check_split("image_folder", split)
    if not 0 <= test_fraction < 1:
        raise GenzooError(f"recipe key 'data.test_fraction' must be in [0, 1), got {test_fraction}", "fix it")
    base = Path(root).expanduser()
    items, identity, where = image_source(base, "image_folder")
    label_path = None if labels in (None, "folders") else _find_label_file(labels, base, None)
    options = {
        "size": size,
        "crop": crop,
        "channels": channels,
        "labels": labels,
        "label_file": _file_identity(label_path),
    }

    def load():
        todo = items()
        names = [n for n, _ in todo]
        images = decode_images(todo, Decode(channels, size, crop), str(where))
        arrays = {"images": images, "names": np.array(names)}
        if labels == "folders":
            top = [
                n.split("/")[1] if n.split("/")[0] in ("train", "test") and n.count("/") >= 2 else n.split("/")[0]
                for n in names
            ]
            if any("/" not in n for n in names):
                raise GenzooError(
                    f"image_folder: data.labels 'folders' needs every image in a class subfolder of '{where}'",
                    "move the images into subfolders or drop data.labels",
                )
            classes = sorted(set(top))
            arrays["labels"] = np.array([classes.index(t) for t in top], dtype=np.int64)
            arrays["label_names"] = np.array(classes)
        elif label_path is not None:
            _attach_label_file(arrays, names, label_path)
        return arrays

    arrays = cached_arrays("image_folder", identity, options, load, enabled=cache)
    names_all = arrays["names"].astype(str)
    top = np.array([n.split("/", 1)[0] for n in names_all])
    if {"train", "test"} <= set(top.tolist()):
        part = np.flatnonzero(top == split)
    else:
        n = len(names_all)
        perm = np.random.default_rng(0).permutation(n)
        n_test = int(round(n * test_fraction))
        is_test = np.zeros(n, dtype=bool)
        is_test[perm[:n_test]] = True
        part = np.flatnonzero(is_test if split == "test" else ~is_test)
    if len(part) == 0:
        raise GenzooError(
            f"image_folder: the {split} split of '{where}' is empty", "raise data.test_fraction or add images"
        )
    return _dataset(arrays, part, f"image_folder/{split}", label_names=_label_names(arrays))


# -- padding and resizing in-memory sets (MNIST to 32x32 as LBAE, or 64x64 as the conv VAE seed) ----------------------
def pad_and_resize(ds: ImageDataset, pad: int = 0, size: int | None = None, chunk: int = 4096) -> ImageDataset:
    """Add a `pad`-pixel black border, then (optionally) resize to size x size (bilinear, antialiased)."""
    if pad < 0 or (size is not None and size < 1):
        raise GenzooError(
            f"data.pad must be >= 0 and data.size >= 1 (got pad {pad}, size {size})", "fix data.pad / data.size"
        )
    images = ds.images
    if pad:
        images = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    if size is not None and tuple(images.shape[-2:]) != (size, size):
        out = torch.empty(len(images), images.shape[1], size, size, dtype=torch.uint8)
        for i in range(0, len(images), chunk):
            x = torch.nn.functional.interpolate(
                images[i : i + chunk].float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True
            )
            out[i : i + chunk] = x.round_().clamp_(0, 255).to(torch.uint8)
        images = out
    if images is ds.images:
        return ds
    out = ImageDataset(images.contiguous(), ds.labels, name=ds.name)
    out.files, out.label_names = ds.files, ds.label_names
    return out
