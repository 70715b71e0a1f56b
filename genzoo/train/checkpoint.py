"""Atomic, verifiable training checkpoints in safetensors + JSON (no pickle).

Layout: runs/<name>/checkpoints/step-0001000/{model.safetensors, optimizers.safetensors, rng-rank<r>.safetensors,
state.json} and checkpoints/latest (the name of the newest complete one). A checkpoint is written into a hidden
temporary folder and renamed into place only when whole, and `latest` is replaced atomically after that, so a kill
at any moment leaves the previous checkpoint usable. state.json records each file's sha256, checked on load.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from genzoo.core.errors import GenzooError
from genzoo.core.io import atomic_write_text, file_sha256, load_tensors, read_json, save_tensors, write_json


def optimizer_to_tensors(state: dict, prefix: str) -> tuple[dict, dict]:
    """Split an optimizer state_dict into safetensors-able tensors and JSON-able metadata."""
    tensors, scalars = {}, {}
    for pid, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_tensors(tensors: dict, meta: dict, prefix: str) -> dict:
    state: dict = {}
    for name, value in tensors.items():
        if name.startswith(prefix + "."):
            pid, key = name[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> tuple[dict, dict]:
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        tensors["cuda"] = torch.cuda.get_rng_state()
    np_state = np.random.get_state()
    meta = {"python": _listify(random.getstate()), "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]]}
    return tensors, meta


def set_rng_state(tensors: dict, meta: dict) -> None:
    torch.set_rng_state(tensors["torch"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["cuda"])
    random.setstate(_tuplify(meta["python"]))
    name, keys, *rest = meta["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), *rest))


def _listify(x):
    return [_listify(v) for v in x] if isinstance(x, (list, tuple)) else x


def _tuplify(x):
    return tuple(_tuplify(v) for v in x) if isinstance(x, list) else x


class Checkpoints:
    """The checkpoints folder of one run."""

    def __init__(self, run_dir: Path, keep: int = 2):
        self.dir = Path(run_dir) / "checkpoints"
        self.keep = keep

    def latest(self) -> Path | None:
        pointer = self.dir / "latest"
        if not pointer.is_file():
            return None
        path = self.dir / pointer.read_text().strip()
        if not path.is_dir():
            raise GenzooError(
                f"checkpoints/latest names '{path.name}', which does not exist in {self.dir}",
                "restore that folder, or point checkpoints/latest at an existing step-* folder",
            )
        return path

    def intact(self) -> str:
        """What a failure leaves behind, for its message."""
        latest = self.latest()
        return f"the last good checkpoint ({latest.name}) is intact" if latest else "no checkpoint was written"

    def abandon(self, tmp: Path, what: str, exc: OSError) -> GenzooError:
        """A write that failed (a full disk, a quota, a permission): its temporary folder removed, so nothing
        half-written stays behind, and the error naming what failed and the checkpoint still whole."""
        shutil.rmtree(tmp, ignore_errors=True)
        return GenzooError(
            f"could not {what} ({exc.strerror or exc}"
            + (f": '{exc.filename}'" if exc.filename else "")
            + "); "
            + self.intact(),
            "free disk space (or fix the folder's permissions), then run the same command to resume",
        )

    def begin(self, step: int) -> Path:
        """Create the temporary folder for a checkpoint (main process only)."""
        tmp = self.dir / f".tmp-step-{step:07d}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        return tmp

    def write_main(self, tmp: Path, model_tensors: dict, optimizers: dict, state: dict) -> None:
        """Write the shared parts: model (+ EMA) weights, optimizer states, trainer state (main process)."""
        save_tensors(tmp / "model.safetensors", model_tensors)
        tensors, meta = {}, {}
        for name, opt_state in optimizers.items():
            t, m = optimizer_to_tensors(opt_state, name)
            tensors.update(t)
            meta[name] = m
        save_tensors(tmp / "optimizers.safetensors", tensors)
        write_json(tmp / "optimizers.json", meta)
        write_json(tmp / "trainer.json", state)

    @staticmethod
    def write_rank(tmp: Path, rank: int, extra: dict | None = None) -> None:
        """Every process saves its own RNG state, so a resumed multi-process run draws the same noise (and `extra`,
        e.g. the fingerprint of the model state it held)."""
        tensors, meta = rng_state()
        meta.update(extra or {})
        save_tensors(tmp / f"rng-rank{rank}.safetensors", tensors)
        write_json(tmp / f"rng-rank{rank}.json", meta)

    def commit(self, tmp: Path, step: int) -> Path:
        """Seal (checksums), move into place, point `latest` at it, prune old ones (main process)."""
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir())}
        write_json(tmp / "manifest.json", {"step": step, "sha256": files})
        final = self.dir / f"step-{step:07d}"
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        atomic_write_text(self.dir / "latest", final.name + "\n")
        for old in sorted(self.dir.glob("step-*"))[: -self.keep]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
        return final

    @staticmethod
    def read(path: Path, rank: int) -> dict:
        """Load and verify a checkpoint; a truncated or foreign one is a clear GenzooError."""
        manifest = read_json(path / "manifest.json", "checkpoint manifest")
        sums = manifest.get("sha256") if isinstance(manifest, dict) else None
        if not isinstance(sums, dict):
            raise GenzooError(
                f"'{path}' is not a genzoo checkpoint (manifest.json has no checksums)",
                "point at a folder written by `genzoo train`",
            )
        for name, digest in sums.items():
            file = path / name
            if not file.is_file() or file_sha256(file) != digest:
                raise GenzooError(
                    f"checkpoint file '{file}' is missing or corrupt (checksum mismatch)", _corrupt_fix(path)
                )
        rank_file = path / f"rng-rank{rank}.safetensors"
        if not rank_file.is_file():
            raise GenzooError(
                f"checkpoint '{path}' was written by fewer processes (no state for process {rank})",
                "resume with the same number of processes as the run that wrote it",
            )
        return {
            "model": load_tensors(path / "model.safetensors", "checkpoint weights"),
            "optimizers": load_tensors(path / "optimizers.safetensors", "checkpoint optimizer state"),
            "optimizers_meta": json.loads((path / "optimizers.json").read_text()),
            "trainer": json.loads((path / "trainer.json").read_text()),
            "rng": load_tensors(rank_file, "checkpoint RNG state"),
            "rng_meta": json.loads((path / f"rng-rank{rank}.json").read_text()),
        }


def _corrupt_fix(path: Path) -> str:
    """What to do about a corrupt checkpoint: resume from the newest earlier one, or, when keep_checkpoints left
    none, start over (a run without checkpoints/latest trains from step 0)."""
    earlier = [p for p in sorted(path.parent.glob("step-*")) if p.name < path.name and (p / "manifest.json").is_file()]
    if earlier:
        return f"delete '{path}' and set checkpoints/latest to {earlier[-1].name} to resume from it"
    return f"there is no earlier checkpoint to resume from: delete '{path.parent}' to train from step 0"
