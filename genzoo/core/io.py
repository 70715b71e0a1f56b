"""Files written atomically and read back safely: safetensors and JSON only, never pickle."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from genzoo.core.errors import GenzooError


@contextmanager
def atomic_path(path: Path, suffix: str = ".tmp"):
    """Yield a temporary path next to `path`; when the block succeeds it replaces `path` in one os.replace, so
    readers see the old or the new file, whole. The file gets the permissions open() would give it (umask), not
    mkstemp's owner-only 0600: others may read a shared store or report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write text atomically (see atomic_path), flushed to disk before the rename."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def write_json(path: Path, data) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path, what: str):
    path = Path(path)
    if not path.is_file():
        raise GenzooError(f"{what} '{path}' does not exist", "check the path")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GenzooError(
            f"{what} '{path}' is not valid JSON ({exc})", "it is truncated or foreign: restore or re-export it"
        ) from None


def save_tensors(path: Path, tensors: dict, metadata: dict | None = None) -> None:
    """Write a safetensors file; a full disk or a refused write is an OSError naming the file (safetensors itself
    raises its own error type with the OS error inside its message)."""
    import errno

    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    try:
        save_file(tensors, str(path), metadata={k: str(v) for k, v in (metadata or {}).items()})
    except SafetensorError as exc:
        text = str(exc)
        code = errno.ENOSPC if ("StorageFull" in text or "code: 28" in text) else errno.EIO
        raise OSError(code, f"{os.strerror(code)} ({text})", str(path)) from None


def load_tensors(path: Path, what: str = "weights file") -> dict:
    """Load a safetensors file; a missing, truncated or foreign file is one clear GenzooError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        if path.with_suffix(".bin").exists() or path.with_suffix(".pt").exists():
            raise GenzooError(
                f"'{path.parent}' holds pickle weights (.bin/.pt) but no {path.name}",
                "genzoo loads safetensors only, because pickle can run code; convert them to safetensors",
            )
        raise GenzooError(f"{what} '{path}' does not exist", "check the path")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise GenzooError(
            f"{what} '{path}' is truncated or not a safetensors file ({exc})",
            "restore it, re-export it, or delete it to fall back to an earlier checkpoint",
        ) from None


@contextmanager
def atomic_dir(final: Path):
    """Yield an empty temporary folder next to `final`; when the block succeeds it replaces `final` (replace_dir),
    else it is removed: readers see the old folder or the new one, whole, never a half-written one."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        replace_dir(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a fully written folder into place; the old folder (if any) is removed only after the new one exists."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)


@contextmanager
def folder_lock(folder: Path, what: str):
    """Hold an advisory lock on `folder` (fcntl.flock on folder/.lock) for the block; another process asking for it
    gets a GenzooError naming the holder. The kernel drops the lock when its process dies, so a kill leaves none."""
    import fcntl
    import socket
    import time

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".lock"
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise GenzooError(
                f"'{folder}' is in use: {holder}",
                "wait for it to finish or stop it; two processes writing one run folder would corrupt it",
            ) from None
        except OSError as exc:  # a shared filesystem without flock (some NFS mounts): go on, unguarded
            import warnings

            warnings.warn(f"cannot lock '{path}' ({exc.strerror}): nothing stops a second run here", stacklevel=3)
        handle.seek(0)
        handle.truncate()
        handle.write(
            f"{what} by process {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
        )
        handle.flush()
        yield
    finally:
        handle.close()


def file_sha256(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
