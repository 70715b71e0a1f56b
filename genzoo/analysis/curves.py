"""Learning curves: metrics at every kept checkpoint of a run, so "converged" is measured, not assumed.

`genzoo curve RUN --metrics fid fid.count=2000` evaluates the weights of each checkpoints/step-* folder the run
kept (train.keep_checkpoints, every train.checkpoint_every steps) and of its exported model, and writes
RUN/curve.json: one entry per step with each metric's values and protocol.
"""

from __future__ import annotations

import json
from pathlib import Path

from genzoo.core.errors import GenzooError


def _steps(run: Path) -> list[tuple[int, Path | None]]:
    """(step, checkpoint folder) of every sealed checkpoint, then the export's step (None: model/ itself)."""
    found = []
    for folder in sorted((run / "checkpoints").glob("step-*")):
        manifest = folder / "manifest.json"
        if manifest.is_file():
            found.append((int(json.loads(manifest.read_text())["step"]), folder))
    from genzoo.modelfile.folder import exported_step

    final = exported_step(run / "model")
    if final is not None and final not in {s for s, _ in found}:
        found.append((final, None))
    return found


def checkpoint_curve(
    run,
    metrics: list[str],
    options: dict | None = None,
    *,
    split: str = "test",
    data_root: str | None = None,
    device: str = "cpu",
    progress=None,
) -> list[dict]:
    """[{step, epoch, results}] over the run's kept checkpoints and its export; written to RUN/curve.json."""
    from genzoo.core.io import write_json
    from genzoo.metrics.evaluate import evaluate
    from genzoo.metrics.fid import forget_model_features
    from genzoo.modelfile.folder import load_folder
    from genzoo.train.checkpoint import Checkpoints

    run = Path(run)
    if not (run / "model").is_dir():
        raise GenzooError(f"'{run}' is not a run folder with an exported model", "point at runs/<name>")
    points = _steps(run)
    if not points:
        raise GenzooError(f"'{run}' has no checkpoints to evaluate", "train with train.keep_checkpoints > 1")
    model = load_folder(run / "model", device)
    final_state = {k: v.clone() for k, v in model.state_dict().items()}
    rows = []
    for step, folder in points:
        if progress is not None:
            progress(f"step {step}")
        epoch = None
        if folder is None:
            model.load_state_dict(final_state)
        else:
            checkpoint = Checkpoints.read(folder, 0)  # checksums verified
            model.load_state_dict(checkpoint["model"])
            t = checkpoint["trainer"]
            epoch = t["epoch"] if not t.get("batch_in_epoch") else None  # whole epochs only
        model.eval()
        forget_model_features()  # one model object whose weights change: its cached sample features are stale
        results = evaluate(model, metrics, options, split=split, data_root=data_root, revision={"step": step})
        rows.append({"step": step, "epoch": epoch, "results": results})
    write_json(run / "curve.json", rows)
    return rows
