"""Downloads for users online: mirrors tried in turn, checksum verified, written atomically."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from genzoo.core.errors import GenzooError


def download(urls: list[str], dest: Path, md5: str | None, timeout: float = 60.0) -> Path:
    """Fetch the first mirror that answers into `dest`; a failed or corrupt download leaves nothing behind."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for url in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            digest = hashlib.md5()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    digest.update(chunk)
                    out.write(chunk)
            if md5 and digest.hexdigest() != md5:
                raise OSError(f"checksum mismatch (md5 {digest.hexdigest()}, expected {md5})")
            os.replace(tmp, dest)
            return dest
        except (OSError, ValueError) as exc:  # URLError is an OSError
            errors.append(f"{url}: {exc}")
        finally:
            Path(tmp).unlink(missing_ok=True)
    raise GenzooError(
        f"could not download {dest.name} ({'; '.join(errors)})",
        f"download it by hand into {dest.parent}, or point data.root at a folder that holds it",
    )
