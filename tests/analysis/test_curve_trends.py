"""Reading learning curves: the slope over the last part of training, per run and per arm (seeds), and the verdict."""

import math

import numpy as np
import pytest

from genzoo.analysis.curves import arm_curves, arm_trend, curve_points, plot_curves, run_trend, trend_table
from genzoo.core.errors import GenzooError


def rows(values, se=1.5, epochs=(5, 10, 15, 20), steps_per_epoch=590):
    """Curve rows as `genzoo curve` writes them: FID with its bootstrap std, and a reconstruction MSE (no std)."""
    return [
        {
            "step": e * steps_per_epoch,
            "epoch": e,
            "results": {
                "fid": {"fid": v, "fid_bootstrap_std": se, "images": 1000},
                "reconstruction": {"mse": 0.02 + v / 1e4},
            },
        }
        for e, v in zip(epochs, values)
    ]


def test_points_are_epochs_values_and_bootstrap_errors_in_order():
    curve = rows([120, 100, 95, 93])
    assert curve_points(curve[::-1]) == [(5.0, 120, 1.5), (10.0, 100, 1.5), (15.0, 95, 1.5), (20.0, 93, 1.5)]
    mse = curve_points(curve, "reconstruction", "mse")
    assert [p[0] for p in mse] == [5.0, 10.0, 15.0, 20.0] and all(math.isnan(p[2]) for p in mse)
    curve[1]["epoch"], curve[1]["step"] = None, 5439  # a checkpoint inside an epoch (an interrupt): a fraction
    assert [p[0] for p in curve_points(curve)] == [5.0, 5439 / 590, 15.0, 20.0]
    for r in curve:  # no epochs recorded anywhere: steps
        r["epoch"] = None
    assert [p[0] for p in curve_points(curve)] == [2950.0, 5439.0, 8850.0, 11800.0]


def test_the_trend_is_the_weighted_slope_over_the_last_half_with_known_variances():
    values, ses = [120, 101.6, 96.6, 93.4], [1.7, 1.5, 1.8, 1.6]
    curve = rows(values)
    for r, se in zip(curve, ses):
        r["results"]["fid"]["fid_bootstrap_std"] = se
    trend = run_trend(curve_points(curve))
    # by hand: epochs 10, 15, 20 (the last half of 20), weights 1/se^2, slope and its standard error
    x, y, w = np.array([10.0, 15, 20]), np.array(values[1:]), 1 / np.array(ses[1:]) ** 2
    xm, ym = (w * x).sum() / w.sum(), (w * y).sum() / w.sum()
    sxx = (w * (x - xm) ** 2).sum()
    slope, se = (w * (x - xm) * (y - ym)).sum() / sxx, 1 / math.sqrt(sxx)
    assert trend.span == 10.0
    assert trend.change == pytest.approx(slope * 10, rel=1e-9)
    assert trend.low == pytest.approx((slope - 1.959964 * se) * 10, rel=1e-6)
    assert trend.high == pytest.approx((slope + 1.959964 * se) * 10, rel=1e-6)
    assert trend.verdict == "improving" and trend.tolerance == pytest.approx(0.02 * 93.4)


def test_flat_needs_an_interval_inside_the_tolerance_not_merely_no_significant_slope():
    flat = [120, 95.0, 95.2, 94.9]
    assert run_trend(curve_points(rows(flat, se=0.3))).verdict == "converged"
    # the same values measured with a wide bootstrap interval: no slope shown, but flatness is not shown either
    assert run_trend(curve_points(rows(flat, se=1.5))).verdict == "undecided"
    assert run_trend(curve_points(rows([120, 90, 95, 100], se=0.3))).verdict == "worsening"
    # a metric where higher is better turns the verdicts round
    assert run_trend(curve_points(rows([120, 90, 95, 100], se=0.3)), better="higher").verdict == "improving"
    # without standard errors (MSE): ordinary least squares with the residual scale
    mse = run_trend(curve_points(rows([120, 100, 95, 93]), "reconstruction", "mse"))
    assert mse.change < 0 and mse.low < mse.change < mse.high
    sparse = run_trend(curve_points(rows([120, 93], epochs=(5, 20), se=0.5)))  # nothing else in epochs 10-20
    assert sparse.span == 15.0 and sparse.change == pytest.approx(-27.0) and sparse.verdict == "improving"
    with pytest.raises(GenzooError, match="at least 2 points"):
        run_trend(curve_points(rows([100])))


def test_an_arms_trend_is_the_mean_over_its_seeds_with_their_t_interval():
    from scipy import stats

    curves = {f"a-s{i}": rows([120, 100 - i, 96 - i, 93 - 2 * i], se=1.0) for i in range(3)}
    trends = [run_trend(curve_points(c)) for c in curves.values()]
    arm = arm_trend(trends)
    changes = np.array([t.change for t in trends])
    half = stats.t.ppf(0.975, 2) * changes.std(ddof=1) / math.sqrt(3)
    assert arm.seeds == 3 and arm.change == pytest.approx(changes.mean())
    assert (arm.low, arm.high) == pytest.approx((changes.mean() - half, changes.mean() + half))
    assert arm_trend(trends[:1]) == trends[0]  # one seed: its own bootstrap interval
    groups = {k: k[:1] for k in [*curves, "b-s0"]}
    table = trend_table({**curves, "b-s0": rows([100, 90, 90, 90], se=0.2)}, groups, "fid")
    assert [(t["arm"], t["trend"].verdict) for t in table] == [("a", arm.verdict), ("b", "converged")]
    assert table[0]["final"] == pytest.approx(np.mean([93, 91, 89]))


def test_arm_lines_average_seeds_and_the_figure_is_written(tmp_path):
    curves = {"a-s0": rows([120, 100, 96, 93]), "a-s1": rows([122, 104, 98, 95]), "b-s0": rows([110, 99, 97, 96])}
    lines = arm_curves(curves, {"a-s0": "a", "a-s1": "a", "b-s0": "b"}, "fid")
    x, mean, low, high, seeds = lines["a"][-1]
    assert (x, mean, seeds) == (20.0, 94.0, 2) and low < 94 < high
    assert lines["b"][0][2:] == pytest.approx((110 - 1.96 * 1.5, 110 + 1.96 * 1.5, 1))
    path = plot_curves(lines, tmp_path / "curves.png", "FID")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_curve_command_summarises_a_studys_curve_files_by_arm(tmp_path):
    import json

    from tests.helpers.cli import ONE_THREAD, run_cli

    for run, values, se in (
        ("a-s0", [120, 100, 96, 93], 1.0),
        ("a-s1", [121, 102, 97, 94], 1.0),
        ("b-s0", [100, 90, 90, 90], 0.2),
    ):
        saved = {"run": run, "weights_sha256": "0" * 64, "metrics": ["fid"], "options": {}, "curve": rows(values, se)}
        (tmp_path / f"{run}.curve.json").write_text(json.dumps(saved))
    out = run_cli("curve", tmp_path, "--metrics", "fid", "--out", tmp_path / "figs", env=ONE_THREAD).stdout
    lines = [line for line in out.splitlines() if line.startswith("| a ") or line.startswith("| b ")]
    assert lines[0].startswith("| a | FID | 2 | 93.5 |") and lines[0].endswith("| improving |")
    assert lines[1].startswith("| b | FID | 1 | 90 |") and lines[1].endswith("| converged |")
    assert (tmp_path / "figs" / "plots" / "learning_curve_fid.png").stat().st_size > 0
