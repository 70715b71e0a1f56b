"""Images from a Hugging Face `datasets` dataset: a Hub id (e.g. `ylecun/mnist`) or a local folder written by
`save_to_disk`, with the split and image column named in the recipe.

    data: {name: hf_dataset, path: ylecun/mnist, image_column: image}

The image column is read undecoded (the stored PNG/JPEG bytes or file paths) and decoded by genzoo's own decoder,
on a pool of processes for large sets, into one uint8 array cached like the image folders' (keyed by the dataset's
fingerprint and the options). The `datasets` package is imported only when this dataset is used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from genzoo.core.errors import GenzooError
from genzoo.core.registry import DATASETS
from genzoo.datasets.base import ImageDataset


def _load(path: str, revision: str | None):
    try:
        import datasets
    except ImportError:
        raise GenzooError(
            "data.name 'hf_dataset' needs the Hugging Face `datasets` package, which is not installed",
            "pip install datasets",
        ) from None
    local = Path(path).expanduser()
    try:
        if local.is_dir() and any((local / f).is_file() for f in ("dataset_dict.json", "state.json")):
            return datasets.load_from_disk(str(local))
        return datasets.load_dataset(path, revision=revision)
    except Exception as exc:  # the Hub, the network, a folder of another layout: one line
        raise GenzooError(
            f"cannot load the Hugging Face dataset '{path}' ({type(exc).__name__}: {str(exc).splitlines()[0]})",
            "give a Hub dataset id (org/name) or a folder written by Dataset(Dict).save_to_disk",
        ) from None


@DATASETS.register("hf_dataset")
def hf_dataset(
    split: str,
    path: str,
    image_column: str = "image",
    train_split: str = "train",
    test_split: str = "test",
    revision: str | None = None,
    size: int | None = None,
    channels: Literal[1, 3] = 3,
    cache: bool = True,
) -> ImageDataset:
    """A Hugging Face `datasets` dataset (Hub id or save_to_disk folder): `image_column` of its splits
    `train_split` and `test_split`; images converted to `channels` and, with `size`, centre-cropped and resized."""
    loaded = _load(path, revision)  # first: a missing `datasets` package is one line naming the install
    import datasets
    import numpy as np
    import torch

    from genzoo.datasets.images import Decode, cached_arrays, decode_images

    wanted = {"train": train_split, "test": test_split}.get(split, split)
    if isinstance(loaded, datasets.DatasetDict):
        if wanted not in loaded:
            raise GenzooError(
                f"Hugging Face dataset '{path}' has no split '{wanted}' (it has {', '.join(loaded)})",
                "set data.train_split / data.test_split to its split names",
            )
        part = loaded[wanted]
    else:
        part = loaded  # a single Dataset: the same images serve every split
    if image_column not in part.column_names:
        raise GenzooError(
            f"Hugging Face dataset '{path}' has no column '{image_column}' (it has {', '.join(part.column_names)})",
            "set data.image_column to the column that holds the images",
        )
    if isinstance(part.features[image_column], datasets.Image):
        part = part.cast_column(image_column, datasets.Image(decode=False))  # bytes/paths: our decoder reads them

    def build():
        items = []
        for i, cell in enumerate(part[image_column]):
            if isinstance(cell, dict):
                items.append((str(i), cell.get("bytes") or cell.get("path")))
            else:  # an array column: encode nothing, convert directly below
                items.append((str(i), np.asarray(cell, dtype=np.uint8)))
        if items and isinstance(items[0][1], np.ndarray):
            arrays = [a[None] if a.ndim == 2 else a.transpose(2, 0, 1) for _, a in items]
            return {"images": np.stack(arrays)}
        return {"images": decode_images(items, Decode(channels, size), f"{path}[{wanted}]")}

    options = {"split": wanted, "column": image_column, "size": size, "channels": channels}
    arrays = cached_arrays("hf_dataset", [path, revision, part._fingerprint], options, build, enabled=cache)
    if len(arrays["images"]) == 0:
        raise GenzooError(f"split '{wanted}' of '{path}' holds no images", "choose another split")
    return ImageDataset(torch.from_numpy(arrays["images"]), name=f"hf:{path}/{wanted}")
