"""train.eval: a metric measured during training on a held-out split (as the MBRCE-AAE project measures FID every
few epochs at the top resolution); the best model so far is kept in model-best/."""

from __future__ import annotations

from pathlib import Path


def eval_due(ev, step: int, total_steps: int, images_at, fully_grown: bool, train_size: int) -> bool:
    """Whether the metric runs after `step`: every `every_steps` steps, or each time the images seen
    (`images_at(step)`) cross a multiple of `every_epochs` passes, else at the end; never before the model is fully
    grown (only the fully grown model is comparable)."""
    if not fully_grown:
        return False
    if ev.every_steps:
        return step % ev.every_steps == 0
    if ev.every_epochs:
        span = ev.every_epochs * train_size
        return images_at(step) // span > images_at(step - 1) // span
    return step >= total_steps


def measure_and_keep_best(model, ev, best: float | None, run_dir: Path, step: int) -> tuple[float, bool]:
    """(value, better): the metric on its split, and whether it beats `best`; a better model is saved to model-best/.
    The caller chooses the weights (EMA) and the random stream."""
    from genzoo.metrics.evaluate import evaluate
    from genzoo.metrics.fid import forget_model_features
    from genzoo.modelfile.folder import save_pretrained

    forget_model_features()  # the same model object holds new weights now
    result = evaluate(model, [ev.metric], {ev.metric: dict(ev.options)}, split=ev.split)[ev.metric]
    value = float(result[ev.value or ev.metric])
    better = best is None or (value > best if ev.higher_is_better else value < best)
    if better:
        save_pretrained(
            model,
            run_dir / "model-best",
            extra={"step": step, "best": {ev.value or ev.metric: value, "split": ev.split}},
        )
    return value, better
