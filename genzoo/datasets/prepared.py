"""A multi-resolution image store for progressive growing: `genzoo prepare` writes it, the `prepared` dataset reads it.

A store is a folder:

    manifest.json   format version, resolutions, split row ranges, the file behind every row, skipped files,
                    per-level sha256, the source listing and the options
    <R>.npy         one uint8 array (N, 3, R, R) per level R = min_resolution ... max_resolution: train rows first,
                    then test rows

Each level is a plain .npy file, read through a memory map (never allow_pickle): a batch is one fancy-index read,
with no decoding, no per-image Python and no pickle, and a level is never read whole (CelebA-HQ at 256: 5.9 GB).
After each batch the map's pages are released (madvise MADV_DONTNEED; they stay in the page cache), so the
process's resident memory is one batch however much of the store an epoch has touched: a map's touched pages
otherwise count as resident until the kernel needs the memory, and the whole level shows in the process's RSS by
the end of an epoch. bench/data_loading.py measures it against decoding the JPEG folder.

Preparation (the original's prepare_tfrecords.py, done our way): images (a folder searched recursively, or an archive)
in natural order of their names (2.jpg before 10.jpg), converted to RGB (palette, grey, 16-bit, CMYK; transparent
pixels composited on white, as everywhere in genzoo), centre-cropped to a square and resized to the top level with
Lanczos; each lower level is the exact 2x2 box mean of the level above (ALAE's preparation, but rounded, see
`halve`). The LAST `test_count` images are the test split and the first `train_count` (default: all the others)
the training split, as ALAE cuts CelebA-HQ and as genzoo's `celeba` dataset does, so the split depends only on the
names, not on the train count. Work goes in chunks into preallocated memory maps in a hidden `.<out>.partial`
folder with a progress file, so a killed run continues from its last finished chunk; the whole store is renamed
into place at the end.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.io import read_json, write_json
from genzoo.core.registry import DATASETS
from genzoo.datasets.base import data_root, halve
from genzoo.datasets.images import POOL_MIN_IMAGES, Decode, decode_images, image_source

FORMAT = "genzoo-prepared"
VERSION = 1
MANIFEST, PROGRESS = "manifest.json", "progress.json"
RESAMPLE = "lanczos"  # the top level's filter, up or down
RELEASE_PAGES = sys.platform != "win32"  # Windows maps have no madvise


def natural_key(name: str):
    """Sort key reading digit runs as numbers: '2.jpg' < '10.jpg', 'img9' < 'img10' (ties broken by the name)."""
    parts = re.split(r"(\d+)", name)
    return [int(p) if i % 2 else p.lower() for i, p in enumerate(parts)], name


def resolutions_between(low: int, high: int) -> list[int]:
    levels = [high >> k for k in range(high.bit_length()) if high % (1 << k) == 0 and high >> k >= low]
    if low < 1 or high < low or low not in levels:
        raise GenzooError(
            f"resolutions {low}..{high} are not a chain of halvings",
            "use a max resolution that is the min resolution times a power of two, e.g. 4 and 256",
        )
    return levels[::-1]


# -- preparing ---------------------------------------------------------------------------------------------------
def store_options_from_recipe(path: str | Path, overrides: list[str], min_resolution: int | None = None) -> dict:
    """prepare_store's arguments from a recipe whose data block is {name: prepared, root, source, resolution, ...};
    the lowest level is the recipe's train.growth.start_resolution unless `min_resolution` is given."""
    from genzoo.core.recipe import load_recipe

    recipe = load_recipe(path, overrides)
    data = recipe.data
    if data["name"] != "prepared" or not data.get("source"):
        raise GenzooError(
            f"recipe '{path}' does not read a prepared store from images (data.name is "
            f"'{data['name']}', data.source is {data.get('source')!r})",
            "use data: {name: prepared, root: STORE, source: IMAGES, resolution: 256}",
        )
    if data["resolution"] is None:
        raise GenzooError(f"recipe '{path}' sets no data.resolution", "set it to the top level, e.g. 256")
    growth = recipe.train.growth
    return dict(
        source=data["source"],
        out=data_root(data["root"], "prepared"),
        max_resolution=data["resolution"],
        min_resolution=min_resolution or (growth.start_resolution if growth else 4),
        test_count=1000 if data["test_count"] is None else data["test_count"],
        train_count=data["train_count"],
    )


def store_options(
    source: str | Path,
    rest: list[str],
    *,
    max_resolution: int | None = None,
    min_resolution: int | None = None,
    test_count: int | None = None,
    train_count: int | None = None,
) -> dict:
    """prepare_store's arguments from `genzoo prepare`'s: a recipe (a .yaml or .yml file) followed by dotted
    overrides, whose data block sets the levels and counts; or images followed by the store folder OUT."""
    if Path(source).suffix in (".yaml", ".yml"):
        given = [
            f"--{k.replace('_', '-')}"
            for k, v in (("max_resolution", max_resolution), ("test_count", test_count), ("train_count", train_count))
            if v is not None
        ]
        if given:
            raise GenzooError(
                f"{', '.join(given)} with a recipe: the recipe's data block sets these",
                "set data.resolution / data.test_count / data.train_count in it, or override: data.test_count=500",
            )
        return store_options_from_recipe(source, rest, min_resolution)
    if len(rest) != 1 or max_resolution is None:
        raise GenzooError(
            "genzoo prepare needs the images, the store folder and --max-resolution",
            "genzoo prepare IMAGES OUT --max-resolution 256 (or genzoo prepare RECIPE.yaml)",
        )
    return dict(
        source=source,
        out=Path(rest[0]),
        max_resolution=max_resolution,
        min_resolution=min_resolution or 4,
        test_count=1000 if test_count is None else test_count,
        train_count=train_count,
    )


def prepare_store(
    source: str | Path,
    out: str | Path,
    max_resolution: int,
    min_resolution: int = 4,
    test_count: int = 1000,
    train_count: int | None = None,
    skip_bad: bool = False,
    chunk: int = 1024,
    workers: int | None = None,
    say: Callable[[str], None] = print,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Prepare (or resume, or reuse) the store `out` from the images at `source`; returns its manifest plus
    `reused`, `seconds` and `decoded` (images decoded by this call). The test split is the LAST `test_count`
    images in natural name order, the training split the first `train_count` (default: all the others).

    `skip_bad`: leave undecodable files out and list them in the manifest (their split shrinks by as many), instead
    of stopping at the first. `workers`: decoding processes (default: up to 8 when there are 2048 images or more).
    """
    source, out = Path(source).expanduser(), Path(out).expanduser()
    resolutions = resolutions_between(min_resolution, max_resolution)
    if not source.exists():
        raise GenzooError(
            f"image source '{source}' does not exist",
            "name a folder of images or an archive of them (.tar, .tar.gz, .zip)",
        )
    items_of, listing, where = image_source(source, "prepare")
    options = {
        "max_resolution": max_resolution,
        "min_resolution": min_resolution,
        "test_count": test_count,
        "train_count": train_count,
        "resample": RESAMPLE,
    }
    # Same source listing (names, sizes, times) and options: the same store. skip_bad and chunk change no pixel.
    key = hashlib.sha256(json.dumps([FORMAT, VERSION, listing, options]).encode()).hexdigest()
    t0 = time.perf_counter()
    existing = _existing_store(out, key, options)
    if existing:
        say(f"'{out}' is already prepared from these images with these options: reusing it")
        return {**existing, "reused": True, "seconds": time.perf_counter() - t0, "decoded": 0}

    items = sorted(items_of(), key=lambda item: natural_key(item[0]))
    n = len(items)
    if not 0 <= test_count < n:
        raise GenzooError(
            f"'{source}' has {n} images: a test split of {test_count} leaves none to train on",
            "lower the test count: data.test_count=N after a recipe, --test-count N after a folder of images",
        )
    train_count = n - test_count if train_count is None else train_count
    if not 0 < train_count <= n - test_count:
        raise GenzooError(
            f"'{source}' has {n} images, fewer than {train_count} train + {test_count} test",
            "lower the train count or the test count",
        )
    chosen = items[:train_count] + items[n - test_count :]
    tmp = out.parent / f".{out.name}.partial"
    finished = read_json(tmp / MANIFEST, "manifest") if (tmp / MANIFEST).is_file() else None
    decoded = 0
    if not (finished and finished["key"] == key):
        state = _start_or_resume(tmp, key, len(chosen), resolutions, say)
        if workers is None:  # decode_images pools only big jobs; this job's chunks are worth a pool when it is big
            workers = min(8, os.cpu_count() or 1) if len(chosen) >= POOL_MIN_IMAGES else 1
        decode = Decode(3, max_resolution, resample=RESAMPLE)
        levels = {r: np.load(tmp / f"{r}.npy", mmap_mode="r+") for r in resolutions}
        if progress:
            progress(state["done"], len(chosen))
        for lo in range(state["done"], len(chosen), chunk):
            todo = chosen[lo : lo + chunk]
            start = state["written"]  # the top level is decoded straight into its memory map
            count, bad = _decode(
                todo, decode, where, skip_bad, workers, levels[max_resolution][start : start + len(todo)]
            )
            rows = slice(start, start + count)
            level = levels[max_resolution][rows]
            for r in reversed(resolutions[:-1]):
                level = levels[r][rows] = halve(level)
            for array in levels.values():
                array.flush()  # on disk before the progress file says so
            state.update(done=lo + len(todo), written=rows.stop, skipped=state["skipped"] + bad)
            write_json(tmp / PROGRESS, state)
            decoded += len(todo)
            if progress:
                progress(state["done"], len(chosen))
        del levels
        finished = _finish(tmp, state, chosen, train_count, resolutions, key, source, listing, options, skip_bad)
    if out.is_dir():
        out.rmdir()  # empty (_existing_store said so); rename would not replace a full one
    os.replace(tmp, out)
    return {**finished, "reused": False, "seconds": time.perf_counter() - t0, "decoded": decoded}


def _existing_store(out: Path, key: str, options: dict) -> dict | None:
    """The manifest of a finished store at `out` made the same way, None if `out` is free; else an error."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return None
    if not (out / MANIFEST).is_file():
        raise GenzooError(f"'{out}' exists and is not a prepared store", "choose another output folder, or delete it")
    manifest = read_json(out / MANIFEST, "store manifest")
    if manifest.get("key") == key:
        return manifest
    made = manifest.get("options", {})
    changed = [f"{k} {made.get(k)} -> {v}" for k, v in options.items() if v is not None and made.get(k) != v]
    raise GenzooError(
        f"'{out}' holds a store prepared differently ({', '.join(changed) or 'the source images changed'})",
        f"delete '{out}' to prepare it again, or choose another output folder",
    )


def _start_or_resume(tmp: Path, key: str, count: int, resolutions: list[int], say) -> dict:
    """The progress of an earlier, interrupted run of the same job, or a fresh partial folder."""
    progress = read_json(tmp / PROGRESS, "progress file") if (tmp / PROGRESS).is_file() else None
    if progress and progress["key"] == key and all((tmp / f"{r}.npy").is_file() for r in resolutions):
        say(f"resuming an interrupted preparation: {progress['done']} of {count} images are done")
        return progress
    if tmp.exists():
        say(f"discarding '{tmp}': an unfinished preparation from other images or with other options")
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for r in resolutions:
        array = np.lib.format.open_memmap(tmp / f"{r}.npy", mode="w+", dtype=np.uint8, shape=(count, 3, r, r))
        _allocate(tmp / f"{r}.npy", array.offset + array.nbytes)
        del array
    state = {"key": key, "done": 0, "written": 0, "skipped": []}
    write_json(tmp / PROGRESS, state)
    return state


def _allocate(path: Path, size: int) -> None:
    """Reserve the disk blocks now: a memory-mapped write into a full disk kills the process (SIGBUS), this raises."""
    if not hasattr(os, "posix_fallocate"):
        return
    with open(path, "r+b") as f:
        try:
            os.posix_fallocate(f.fileno(), 0, size)
        except OSError as exc:
            raise GenzooError(
                f"cannot reserve {size / 1e9:.2f} GB for '{path}' ({exc.strerror})",
                "free disk space or choose an output folder on a larger disk",
            ) from None


def _decode(todo, decode: Decode, where, skip_bad: bool, workers: int, out: np.ndarray) -> tuple[int, list[str]]:
    """Decode `todo` into the first rows of `out`; returns (how many, names of the undecodable files). An undecodable
    file is an error naming it unless `skip_bad`; finding it re-decodes the chunk one file at a time (a rare path)."""
    try:
        decode_images(todo, decode, str(where), workers, out=out)
        return len(todo), []
    except GenzooError:
        pass
    count, bad = 0, []
    for name, src in todo:
        try:
            out[count] = decode(src)
            count += 1
        except Exception as exc:  # PIL raises many types for broken files
            if not skip_bad:
                raise GenzooError(
                    f"image '{name}' in '{where}' cannot be decoded ({type(exc).__name__}: {exc})",
                    "remove or replace it, or pass --skip-bad to leave such files out (listed in the "
                    "manifest); running again continues from the last finished chunk",
                ) from None
            bad.append(name)
    return count, bad


def _finish(tmp, state, chosen, train_count, resolutions, key, source, listing, options, skip_bad) -> dict:
    """Cut skipped rows off, hash each level, write the manifest: the partial folder is then a whole store."""
    skipped = set(state["skipped"])
    files = [name for name, _ in chosen if name not in skipped]
    n_train = sum(name not in skipped for name, _ in chosen[:train_count])
    levels = {}
    for r in resolutions:
        path = tmp / f"{r}.npy"
        array = np.load(path, mmap_mode="r")
        if len(array) > len(files):  # files were skipped: keep the rows written (rare, so a plain copy)
            with open(tmp / f"{r}.tmp", "wb") as f:
                np.save(f, array[: len(files)])
            del array
            os.replace(tmp / f"{r}.tmp", path)
        levels[str(r)] = {"file": path.name, "shape": [len(files), 3, r, r], "sha256": file_sha256(path)}
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "resolutions": resolutions,
        "count": len(files),
        "split": {
            "train": {"rows": [0, n_train], "count": n_train},
            "test": {"rows": [n_train, len(files)], "count": len(files) - n_train},
        },
        "levels": levels,
        "skipped": sorted(skipped),
        "files": files,
        "source": {"path": str(source.resolve()), "listing": listing},
        "options": {**options, "train_count": train_count, "skip_bad": skip_bad},
        "key": key,
    }
    write_json(tmp / MANIFEST, manifest)
    (tmp / PROGRESS).unlink()
    return manifest


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# -- reading -----------------------------------------------------------------------------------------------------
def load_manifest(root: str | Path, source: str | None = None) -> dict:
    root = Path(root).expanduser()
    if not (root / MANIFEST).is_file():
        made_by = f"genzoo prepare {source} {root}" if source else f"genzoo prepare IMAGES {root}"
        raise GenzooError(
            f"no prepared store at '{root}'"
            + (" (an unfinished one is beside it)" if (root.parent / f".{root.name}.partial").exists() else ""),
            f"run `genzoo prepare <recipe>.yaml` (or `{made_by}`) first",
        )
    manifest = read_json(root / MANIFEST, "store manifest")
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise GenzooError(
            f"'{root / MANIFEST}' is not a version-{VERSION} genzoo store manifest",
            "prepare the store again with this genzoo (delete the folder first)",
        )
    return manifest


def summary_lines(result: dict, out: str | Path) -> list[str]:
    """What prepare_store did, for the console: the splits, levels and speed (unless it reused the store), and the
    files it left out."""
    lines, split, skipped = [], result["split"], result["skipped"]
    if not result["reused"]:
        rate = f", {result['decoded'] / result['seconds']:.0f} images/s" if result["decoded"] else ""
        lines.append(
            f"prepared {out}: {split['train']['count']} train + {split['test']['count']} test images at "
            f"{', '.join(map(str, result['resolutions']))} in {result['seconds']:.1f} s{rate}"
        )
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        lines.append(f"skipped {len(skipped)} undecodable files (listed in {Path(out) / MANIFEST}): {shown}")
    return lines


def verify_store(root: str | Path) -> dict:
    """Recompute every level file's sha256 against the manifest; a mismatch is an error naming the file."""
    root = Path(root).expanduser()
    manifest = load_manifest(root)
    for level in manifest["levels"].values():
        path = root / level["file"]
        if not path.is_file() or file_sha256(path) != level["sha256"]:
            raise GenzooError(
                f"store '{root}': '{path.name}' "
                + (
                    "is missing"
                    if not path.is_file()
                    else "does not match the sha256 in manifest.json (damaged or changed)"
                ),
                f"prepare it again: delete '{root}' and rerun genzoo prepare",
            )
    return manifest


class PreparedDataset(torch.utils.data.Dataset):
    """One split of a prepared store at one resolution, with ImageDataset's interface (`__len__`, `__getitem__`,
    `__getitems__` -> uint8 (B, 3, R, R), `image_shape`, `name`, `labels`, `at_resolution`): nothing is read until
    a batch asks for it, a batch is one fancy-index read, and the map's pages are released after it."""

    labels = None
    label_names = None

    def __init__(
        self, root: str | Path, split: str = "train", resolution: int | None = None, manifest: dict | None = None
    ):
        self.root = Path(root).expanduser()
        self.manifest = manifest or load_manifest(self.root)
        levels = self.manifest["resolutions"]
        self.resolution = resolution or levels[-1]
        if self.resolution not in levels:
            raise GenzooError(
                f"store '{self.root}' has the resolutions {levels}, not {self.resolution}",
                "use one of those, or prepare the store again with other --min/--max-resolution",
            )
        if split not in ("train", "test"):
            raise GenzooError(
                f"dataset 'prepared' has splits train and test, not '{split}'", "use split train or test"
            )
        self.split, self.name = split, f"prepared/{split}"
        self.rows = slice(*self.manifest["split"][split]["rows"])
        if self.rows.stop <= self.rows.start:
            raise GenzooError(
                f"store '{self.root}' has no {split} images", "prepare it again with a nonzero count for that split"
            )
        self.files = self.manifest["files"][self.rows]
        self._array = self._map = None
        _ = self.array  # open now: a damaged file fails here, not mid-training

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            level = self.manifest["levels"][str(self.resolution)]
            path = self.root / level["file"]
            try:
                array = np.load(path, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise GenzooError(
                    f"store '{self.root}': cannot open '{path.name}' ({exc})",
                    "prepare the store again (genzoo prepare)",
                ) from None
            if list(array.shape) != level["shape"] or array.dtype != np.uint8:
                raise GenzooError(
                    f"store '{self.root}': '{path.name}' is {array.dtype} {list(array.shape)}, the "
                    f"manifest says uint8 {level['shape']}",
                    "prepare the store again (genzoo prepare)",
                )
            with open(path, "rb") as f:  # our own map of the same bytes, so that its pages can be released
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            whole = np.frombuffer(self._map, np.uint8, array.size, array.offset).reshape(array.shape)
            self._array = whole[self.rows]  # a view: still nothing read
        return self._array

    def __getstate__(self):  # pickled (spawned DataLoader workers): reopen the map there, never copy the data
        return {**self.__dict__, "_array": None, "_map": None}

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return (3, self.resolution, self.resolution)

    def __len__(self) -> int:
        return self.rows.stop - self.rows.start

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices):
        batch = torch.from_numpy(self.array[np.asarray(indices, dtype=np.int64)])  # fancy indexing copies the rows
        if RELEASE_PAGES:
            self._map.madvise(mmap.MADV_DONTNEED)
        return batch

    def at_resolution(self, resolution: int) -> PreparedDataset:
        if resolution == self.resolution:
            return self
        return PreparedDataset(self.root, self.split, resolution, self.manifest)


@DATASETS.register("prepared")
def prepared(
    split: str,
    root: str | None = None,
    resolution: int | None = None,
    source: str | None = None,
    test_count: int | None = None,
    train_count: int | None = None,
) -> PreparedDataset:
    """A store made by `genzoo prepare` (per-level uint8 arrays, memory-mapped): progressive growing reads each level.

    `root` is the store folder; `resolution` the top level used (default: the store's top). `source`, `test_count`
    and `train_count` tell `genzoo prepare <recipe>` how to make the store; here they are only checked against it.
    """
    base = data_root(root, "prepared")
    manifest = load_manifest(base, source)
    for option, value in (("test_count", test_count), ("train_count", train_count)):
        made = manifest["options"][option]
        if value is not None and value != made:
            raise GenzooError(
                f"store '{base}' was prepared with {option} {made}, the recipe says {value}",
                f"make them agree: prepare the store again (delete '{base}', then genzoo prepare "
                "<recipe>) or change data." + option,
            )
    return PreparedDataset(base, split, resolution, manifest)
