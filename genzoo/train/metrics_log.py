"""metrics.jsonl: a run's append-only log, one JSON object per line (every log_every steps the mean losses and
images/s; each periodic metric), cut back to a checkpoint's step when the run resumes from it."""

from __future__ import annotations

import json
from pathlib import Path


def append_record(path: Path, record: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def truncate_after(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from, so metrics.jsonl reads as one run. The log is
    append-only, so a crash or a full disk can only tear its last line: a line that is not whole JSON is dropped."""
    if not path.is_file():
        return
    from genzoo.core.io import atomic_write_text

    kept = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # torn by a kill mid-append
        if isinstance(record, dict) and record.get("step", 0) <= step:
            kept.append(line)
    atomic_write_text(path, "".join(line + "\n" for line in kept))
