"""Learning curves: metrics at every kept checkpoint of a run, so "converged" is measured, not assumed.

`genzoo curve RUN --metrics fid fid.count=2000` evaluates the weights of each checkpoints/step-* folder the run
kept (train.keep_checkpoints, every train.checkpoint_every steps) and of its exported model, and writes
RUN/curve.json: one entry per step with each metric's values and protocol.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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


# --- reading curves: is a run (an arm) still improving at the end of its budget? ---------------------------------

VERDICTS = ("converged", "improving", "worsening", "undecided")


@dataclass(frozen=True)
class Trend:
    """A metric's change over the last part of training (the fitted slope times that part's length, `span`), with its
    95 % interval, and what that says about convergence: training as long again would change it about as much."""

    change: float | None
    low: float | None
    high: float | None
    span: float  # in the curve's x unit (epochs when any row records one, else steps)
    tolerance: float  # |change| within it counts as flat
    verdict: str  # one of VERDICTS
    seeds: int = 1


def curve_points(rows: list[dict], metric: str = "fid", value: str | None = None) -> list[tuple[float, float, float]]:
    """(x, value, standard error) per curve row, in x order: x is the epoch (fractional for a checkpoint written
    inside an epoch, e.g. on an interrupt) when any row records one, else the step; the standard error is the
    metric's bootstrap std (nan where it has none, e.g. reconstruction)."""
    value = value or metric
    whole = next((r for r in rows if r.get("epoch")), None)
    per_epoch = whole["step"] / whole["epoch"] if whole else 1.0
    points = []
    for r in rows:
        result = r["results"].get(metric) or {}
        if result.get(value) is None:
            continue
        se = result.get(f"{value}_bootstrap_std")
        points.append((r["step"] / per_epoch, float(result[value]), math.nan if se is None else se))
    return sorted(points)


def run_trend(points, *, last: float = 0.5, tolerance: float = 0.02, better: str = "lower") -> Trend:
    """The slope over the points in the last `last` of training (x from 0 to the last point) times that part's
    length, with its 95 % interval: weighted least squares with weights 1/se^2, the bootstrap variances taken as
    known; ordinary least squares with the residual scale where a point has no se. `tolerance` is relative to the
    last value: a projected change within +-tolerance * value counts as flat."""
    import statsmodels.api as sm

    if len(points) < 2:
        raise GenzooError(
            "a trend needs a curve of at least 2 points", "keep more checkpoints (train.keep_checkpoints)"
        )
    x1 = points[-1][0]  # training starts at x = 0
    tail = [p for p in points if p[0] >= (1 - last) * x1 - 1e-9]
    tail = tail if len(tail) > 1 else points[-2:]  # checkpoints too sparse for the last part: the last two
    span = tail[-1][0] - tail[0][0]
    tol = abs(tolerance * tail[-1][1])
    xs, ys, ses = (np.asarray(c, dtype=np.float64) for c in zip(*tail))
    design = sm.add_constant(xs - xs.mean())
    known = bool(np.all(np.isfinite(ses)) and np.all(ses > 0))
    if not known and len(tail) < 3:  # two points and no standard errors: the slope's error is unknown
        return Trend((ys[-1] - ys[0]), None, None, span, tol, "undecided")
    if known:
        fit = sm.WLS(ys, design, weights=1 / ses**2).fit(cov_type="fixed scale")
    else:
        fit = sm.OLS(ys, design).fit()
    low, high = fit.conf_int(alpha=0.05)[1] * span
    return _trend(fit.params[1] * span, low, high, span, tol, better, 1)


def _trend(change, low, high, span, tol, better, seeds) -> Trend:
    sign = -1.0 if better == "lower" else 1.0  # an improvement is a change of this sign
    gain_low, gain_high = sorted((sign * low, sign * high))
    if -tol <= low and high <= tol:
        verdict = "converged"  # the whole interval is flat: equivalence, not merely "no significant slope"
    elif gain_low > 0:
        verdict = "improving"
    elif gain_high < 0:
        verdict = "worsening"
    else:
        verdict = "undecided"
    return Trend(float(change), float(low), float(high), float(span), float(tol), verdict, seeds)


def arm_trend(trends: list[Trend], *, better: str = "lower") -> Trend:
    """An arm's trend from its seeds' (the unit of replication): the mean projected change with its t interval
    over seeds; one seed keeps its own interval from the bootstrap."""
    from genzoo.analysis.stats import summarize

    if len(trends) == 1:
        return trends[0]
    changes = [t.change for t in trends]
    s = summarize(changes)
    tol = float(np.mean([t.tolerance for t in trends]))
    span = float(np.mean([t.span for t in trends]))
    return _trend(s["mean"], s["ci_low"], s["ci_high"], span, tol, better, len(trends))


def arm_curves(curves: dict[str, list[dict]], groups: dict[str, str], metric: str, value: str | None = None):
    """{arm: [(x, mean, low, high, seeds)]}: at each x the mean over the arm's runs with its t interval over seeds,
    or the run's own bootstrap interval (+-1.96 se) when the arm has one run."""
    from genzoo.analysis.stats import summarize

    by_arm: dict[str, dict[float, list[tuple[float, float]]]] = {}
    for label, rows in curves.items():
        for x, y, se in curve_points(rows, metric, value):
            by_arm.setdefault(groups.get(label, label), {}).setdefault(x, []).append((y, se))
    out = {}
    for arm, at in by_arm.items():
        line = []
        for x in sorted(at):
            ys = [y for y, _ in at[x]]
            if len(ys) > 1:
                s = summarize(ys)
                line.append((x, s["mean"], s["ci_low"], s["ci_high"], len(ys)))
            else:
                half = 1.96 * at[x][0][1] if math.isfinite(at[x][0][1]) else 0.0
                line.append((x, ys[0], ys[0] - half, ys[0] + half, 1))
        out[arm] = line
    return out


def plot_curves(lines: dict, path: Path, ylabel: str, xlabel: str = "epoch") -> Path:
    """One line per arm with its interval band; written as a PNG (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for arm, line in lines.items():
        xs, mean, low, high, seeds = zip(*line)
        shown = ax.plot(xs, mean, marker="o", label=f"{arm} ({max(seeds)} seed{'s' * (max(seeds) > 1)})")
        ax.fill_between(xs, low, high, alpha=0.2, color=shown[0].get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def trend_table(
    curves: dict[str, list[dict]],
    groups: dict[str, str],
    metric: str,
    value: str | None = None,
    *,
    better: str = "lower",
    last: float = 0.5,
    tolerance: float = 0.02,
) -> list[dict]:
    """Per arm: its last value (mean over seeds), its trend over the last part of training and the verdict."""
    trends: dict[str, list[Trend]] = {}
    finals: dict[str, list[float]] = {}
    for label, rows in curves.items():
        points = curve_points(rows, metric, value)
        if len(points) < 2:
            continue
        arm = groups.get(label, label)
        trends.setdefault(arm, []).append(run_trend(points, last=last, tolerance=tolerance, better=better))
        finals.setdefault(arm, []).append(points[-1][1])
    return [
        {"arm": arm, "final": float(np.mean(finals[arm])), "trend": arm_trend(ts, better=better)}
        for arm, ts in trends.items()
    ]


def _curve_value(metric: str):
    """(value name, its MetricValue) a curve of `metric` follows: the value named like the metric, else its first
    value with a direction (reconstruction: mse)."""
    from genzoo.core.registry import METRICS

    values = METRICS.info(metric).values
    if metric in values:
        return metric, values[metric]
    return next(((k, v) for k, v in values.items() if v.better), (metric, None))


def curve_section(curves: dict[str, list[dict]], groups: dict[str, str], folder: Path, metrics: list[str]):
    """The report's learning-curve table (per arm and metric: the end value, the projected change over the last
    half of training with its 95 % interval, the verdict) and one figure per metric under folder/plots."""
    from genzoo.analysis.report_tables import Section, Table

    rows, plots = [], []
    for metric in metrics:
        value, facts = _curve_value(metric)
        better = (facts.better if facts else None) or "lower"
        name = (facts.display if facts and facts.display else None) or f"{metric}.{value}"
        lines = arm_curves(curves, groups, metric, value)
        if not lines:
            continue
        xlabel = "epoch" if any(r.get("epoch") for c in curves.values() for r in c) else "step"
        plots.append(plot_curves(lines, Path(folder) / "plots" / f"learning_curve_{metric}.png", name, xlabel))
        for t in trend_table(curves, groups, metric, value, better=better):
            trend = t["trend"]
            interval = "" if trend.low is None else f" [{trend.low:+.4g}, {trend.high:+.4g}]"
            rows.append(
                [
                    t["arm"],
                    name,
                    str(trend.seeds),
                    f"{t['final']:.4g}",
                    f"{trend.change:+.4g}{interval}",
                    trend.verdict,
                ]
            )
    note = (
        "Each run's metrics at its kept checkpoints. Change: the slope over the last half of training (weighted by "
        "the bootstrap variances where the metric has them), times that half's length, with its 95 % interval (over "
        "seeds, t, when the arm has several; the run's own otherwise). Converged: the whole interval within 2 % of "
        "the end value; improving or worsening: the interval excludes 0; undecided otherwise."
    )
    header = ["arm", "metric", "seeds", "end value", "change over the last half (95 % CI)", "verdict"]
    return Section(title="Learning curves", note=note, table=Table(header=header, rows=rows)), plots


def saved_curves(folder) -> dict[str, list[dict]]:
    """{run: curve rows} from a study's <run>.curve.json files (its results or committed_results folder)."""
    found = {}
    for path in sorted(Path(folder).glob("*.curve.json")):
        saved = json.loads(path.read_text())
        found[saved["run"]] = saved["curve"]
    if not found:
        raise GenzooError(f"'{folder}' holds no <run>.curve.json files", "run a study with its `curve` key set")
    return found


def arm_of(run: str) -> str:
    """`<arm>-s<seed>` -> `<arm>`: the seed-named runs of a study."""
    arm, sep, seed = run.rpartition("-s")
    return arm if sep and seed.isdigit() else run
