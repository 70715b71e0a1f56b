"""Statistics for comparing models over seeds: per-arm summaries, pairwise tests, the minimum detectable difference.

- `summarize(values)`: n, mean, sample standard deviation (ddof 1) and the two-sided 95 % confidence interval of
  the mean from Student's t with n - 1 degrees of freedom (mean ± t * std / sqrt(n)).
- `welch(a, b)`: Welch's unequal-variance t-test of mean(a) - mean(b) (scipy.stats.ttest_ind, equal_var=False):
  the difference, its 95 % CI from the Welch-Satterthwaite degrees of freedom, and the two-sided p-value.
- `min_detectable_difference(a, b)`: the smallest true difference a two-sided Welch test at level 0.05 detects
  with 80 % power at these sample sizes and the observed standard deviations:
  (t_{1-alpha/2, df} + t_{power, df}) * sqrt(s_a^2 / n_a + s_b^2 / n_b) (the usual normal-theory formula with t
  quantiles in place of z).
- `permutation_test(a, b)`: the exact two-sided permutation p-value of the difference of means (every split of
  the pooled values when there are at most `exact_limit` of them or no more splits than `rounds`, else `rounds`
  random splits; scipy.stats.permutation_test).
- `holm(p_values)`: Holm's step-down adjustment for several comparisons (statsmodels' multipletests).
- `compare_arms(values_by_arm)`: every pair of arms of one metric, as the rows of `results.json`'s `comparisons`.
- `complete_grid(factors, arms)`, `complete_grids` (one grid per level of a further factor such as the sampler)
  and `factorial(values_by_arm, grid)`: for a factorial study (each arm named by
  two factors, e.g. matching x prior), the largest complete grid of their levels and a two-way analysis of variance
  with interaction on the per-run values (Type II sums of squares and F-tests: statsmodels' ols and anova_lm), the
  marginal means of each level (the unweighted mean of its cell means) and, for a factor of two levels, the
  difference of its marginal means with a t interval from the pooled residual variance.

genzoo.analysis.conclusions puts these rows into words. scipy and statsmodels are imported inside the functions.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

LEVEL = 0.95
POWER = 0.8


def _t_quantile(q: float, df: float) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def _t_sf2(t: float, df: float) -> float:
    """Two-sided p-value of a t statistic."""
    from scipy.special import stdtr

    return float(2 * stdtr(df, -abs(t)))


def _clean(values) -> np.ndarray:
    xs = np.asarray([float(v) for v in values if v is not None], dtype=np.float64)
    return xs[np.isfinite(xs)]


def _none(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def summarize(values, level: float = LEVEL) -> dict:
    """{mean, std, ci_low, ci_high, n}: std with ddof 1; the CI is t-based and None when n < 2."""
    xs = _clean(values)
    n = len(xs)
    if n == 0:
        return {"mean": None, "std": None, "ci_low": None, "ci_high": None, "n": 0}
    mean = float(xs.mean())
    if n < 2:
        return {"mean": mean, "std": None, "ci_low": None, "ci_high": None, "n": 1}
    std = float(xs.std(ddof=1))
    half = _t_quantile(0.5 + level / 2, n - 1) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def welch_df(var_a: float, n_a: int, var_b: float, n_b: int) -> float:
    va, vb = var_a / n_a, var_b / n_b
    denom = va**2 / (n_a - 1) + vb**2 / (n_b - 1)
    return (va + vb) ** 2 / denom if denom > 0 else float(n_a + n_b - 2)


def welch(a, b, level: float = LEVEL) -> dict:
    """Welch's t-test of mean(a) - mean(b): {difference, ci_low, ci_high, p_value, df, t}; None where n < 2."""
    from scipy.stats import ttest_ind

    xa, xb = _clean(a), _clean(b)
    out = {"difference": None, "ci_low": None, "ci_high": None, "p_value": None, "df": None, "t": None}
    if len(xa) == 0 or len(xb) == 0:
        return out
    diff = float(xa.mean() - xb.mean())
    out["difference"] = diff
    if len(xa) < 2 or len(xb) < 2:
        return out
    if np.ptp(xa) == 0 and np.ptp(xb) == 0:  # identical values within each arm: no noise to test
        df = float(len(xa) + len(xb) - 2)
        out.update(df=df, p_value=1.0 if diff == 0 else 0.0, ci_low=diff, ci_high=diff)
        return out
    test = ttest_ind(xa, xb, equal_var=False)
    ci = test.confidence_interval(level)
    out.update(ci_low=float(ci.low), ci_high=float(ci.high), p_value=float(test.pvalue), df=float(test.df))
    out["t"] = float(test.statistic)
    return out


def min_detectable_difference(a, b, alpha: float = 1 - LEVEL, power: float = POWER) -> float | None:
    """Smallest |true difference| a two-sided Welch test at level `alpha` detects with probability `power`, at
    these sample sizes and the observed standard deviations; None when an arm has fewer than 2 values."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) < 2 or len(xb) < 2:
        return None
    va, vb = xa.var(ddof=1), xb.var(ddof=1)
    se = math.sqrt(va / len(xa) + vb / len(xb))
    df = welch_df(va, len(xa), vb, len(xb))
    return float((_t_quantile(1 - alpha / 2, df) + _t_quantile(power, df)) * se)


def permutation_test(a, b, exact_limit: int = 20, rounds: int = 20000, seed: int = 0) -> float | None:
    """Two-sided permutation p-value of |mean(a) - mean(b)| over relabellings of the pooled values: exact (every
    split) up to `exact_limit` values in all or when there are no more splits than `rounds`, else `rounds` random
    splits (p = (1 + hits) / (1 + rounds)); None when an arm has fewer than 2 values (scipy's test needs two, and
    such a pair is untestable anyway)."""
    from scipy.stats import permutation_test as scipy_permutation_test

    xa, xb = _clean(a), _clean(b)
    if len(xa) < 2 or len(xb) < 2:
        return None

    def gap(x, y, axis):
        return np.abs(x.mean(axis=axis) - y.mean(axis=axis))

    exact = len(xa) + len(xb) <= exact_limit
    test = scipy_permutation_test(
        (xa, xb),
        gap,
        permutation_type="independent",
        vectorized=True,
        n_resamples=np.inf if exact else rounds,
        alternative="greater",  # |difference| at least the observed one: two-sided in the difference
        rng=np.random.default_rng(seed),
    )
    return float(test.pvalue)


def holm(p_values: list) -> list:
    """Holm's step-down adjusted p-values (None stays None)."""
    from statsmodels.stats.multitest import multipletests

    tested = [i for i, p in enumerate(p_values) if p is not None]
    adjusted: list = [None] * len(p_values)
    if tested:
        _, corrected, _, _ = multipletests([p_values[i] for i in tested], method="holm")
        for i, p in zip(tested, corrected):
            adjusted[i] = float(p)
    return adjusted


def compare_arms(metric: str, values_by_arm: dict[str, list]) -> list[dict]:
    """Every pair (a, b) of arms, in the given order: Welch's test of mean(a) - mean(b), the permutation p-value,
    the minimum detectable difference, and Holm's adjustment over this metric's pairs."""
    arms = [arm for arm, vs in values_by_arm.items() if len(_clean(vs))]
    rows = []
    for a, b in itertools.combinations(arms, 2):
        test = welch(values_by_arm[a], values_by_arm[b])
        rows.append(
            {
                "metric": metric,
                "a": a,
                "b": b,
                "difference": _none(test["difference"]),
                "ci_low": _none(test["ci_low"]),
                "ci_high": _none(test["ci_high"]),
                "p_value": _none(test["p_value"]),
                "df": _none(test["df"]),
                "test": "welch",
                "p_permutation": permutation_test(values_by_arm[a], values_by_arm[b]),
                "mdd": min_detectable_difference(values_by_arm[a], values_by_arm[b]),
                "n_a": len(_clean(values_by_arm[a])),
                "n_b": len(_clean(values_by_arm[b])),
            }
        )
    for row, p in zip(rows, holm([r["p_value"] for r in rows])):
        row["p_holm"] = p
    return rows


def complete_grid(factors: dict[str, dict], arms: list[str]) -> dict | None:
    """{factors: [A, B], levels: {A: [...], B: [...]}, cells: {(a, b): arm}}: the first two factors of the first
    arm that names two, restricted to the largest set of their levels whose every combination is one arm (e.g. a
    prior only the VAE uses falls out). Arms that do not name both factors stay out. None when no 2 x 2 grid or
    larger exists, or two arms share a cell. Levels compare as text (1 and 1.0 are different levels)."""
    named = [arm for arm in arms if isinstance(factors.get(arm), dict) and len(factors[arm]) >= 2]
    if not named:
        return None
    a, b = list(factors[named[0]])[:2]
    cells: dict = {}
    for arm in named:
        f = factors[arm]
        if a not in f or b not in f:
            continue
        key = (str(f[a]), str(f[b]))
        if key in cells:  # two arms in one cell: not a grid of these two factors
            return None
        cells[key] = arm
    la = list(dict.fromkeys(k[0] for k in cells))
    lb = list(dict.fromkeys(k[1] for k in cells))
    flip = len(la) > len(lb)  # search subsets of the factor with fewer levels, keep the other's complete levels
    small, large = (lb, la) if flip else (la, lb)
    if len(small) > 12:  # 4096 subsets; more is not a study design
        return None
    present = {(y, x) for x, y in cells} if flip else set(cells)  # (small level, large level) pairs
    best = None
    for size in range(len(small), 1, -1):
        for chosen in itertools.combinations(small, size):
            kept = [level for level in large if all((c, level) in present for c in chosen)]
            if len(kept) >= 2 and (best is None or size * len(kept) > len(best[0]) * len(best[1])):
                best = (list(chosen), kept)
    if best is None:
        return None
    la, lb = (best[1], best[0]) if flip else best
    return {"factors": [a, b], "levels": {a: la, b: lb}, "cells": {(x, y): cells[(x, y)] for x in la for y in lb}}


def complete_grids(factors: dict[str, dict], arms: list[str]) -> list[tuple[dict, dict]]:
    """[(where, grid)]: `complete_grid` of the first two factors within each combination of the levels of the
    arms' further factors (where: {factor: level}, {} when they name none). A study with samplers names each arm's
    `sampler`: the runs under each sampler make their own grid of independent runs, while the same run under two
    samplers is one training measured twice, not two replications, so the samplers are not pooled into one ANOVA."""
    named = [arm for arm in arms if isinstance(factors.get(arm), dict) and len(factors[arm]) >= 2]
    if not named:
        return []
    a, b = list(factors[named[0]])[:2]
    groups: dict[tuple, list[str]] = {}
    for arm in named:
        rest = tuple((k, str(v)) for k, v in factors[arm].items() if k not in (a, b))
        groups.setdefault(rest, []).append(arm)
    grids = [(dict(rest), complete_grid(factors, members)) for rest, members in groups.items()]
    return [(where, grid) for where, grid in grids if grid is not None]


def _anova_type2(y: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> tuple[list[tuple], float]:
    """[(ss, F, p)] of factor a, factor b and their interaction (Type II, statsmodels' ols + anova_lm) and the
    residual sum of squares. Sums of squares below 1e-12 of the total are round-off: 0, with F 0 and p 1. With no
    residual at all there is nothing to test against: F and p are None and the sums of squares come from the fits."""
    import pandas as pd  # statsmodels' own dependency: its formulas take data frames only
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    frame = pd.DataFrame({"y": y, "a": ia, "b": ib})  # level indices: C() makes them categories
    full = ols("y ~ C(a) * C(b)", data=frame).fit()
    tiny = 1e-12 * float(((y - y.mean()) ** 2).sum())
    if full.ssr <= tiny:
        main = ols("y ~ C(a) + C(b)", data=frame).fit().ssr
        drops = [ols(f"y ~ C({other})", data=frame).fit().ssr - main for other in ("b", "a")] + [main - full.ssr]
        return [(0.0 if ss <= tiny else float(ss), None, None) for ss in drops], float(full.ssr)
    table = anova_lm(full, typ=2)
    rows = []
    for term in ("C(a)", "C(b)", "C(a):C(b)"):
        ss = float(table.loc[term, "sum_sq"])
        rows.append(
            (0.0, 0.0, 1.0) if ss <= tiny else (ss, float(table.loc[term, "F"]), float(table.loc[term, "PR(>F)"]))
        )
    return rows, float(full.ssr)


FACTORIAL_METHOD = (
    "two-way ANOVA with interaction over the largest complete grid of the study's two factors, Type II sums of "
    "squares and F-tests (statsmodels' anova_lm); marginal means: unweighted means of the cell means; "
    "contrasts of a two-level factor: the difference of its unweighted marginal means (the Type III hypothesis, the "
    "same test as the F-test when every cell has as many runs), t interval from the residual mean square"
)


def factorial(values_by_arm: dict[str, list], grid: dict, level: float = LEVEL) -> dict | None:
    """Two-way ANOVA with interaction over the grid's cells (see the module docstring); None when a cell has no run
    or the residual has no degrees of freedom (fewer runs than cells + 1). When no cell has any spread the F-tests
    and contrasts are None (`no_spread`: there is nothing to test against)."""
    a, b = grid["factors"]
    la, lb = grid["levels"][a], grid["levels"][b]
    ys, ia, ib = [], [], []
    for (x, y), arm in grid["cells"].items():
        vals = _clean(values_by_arm.get(arm, []))
        if len(vals) < 1:
            return None
        ys += vals.tolist()
        ia += [la.index(x)] * len(vals)
        ib += [lb.index(y)] * len(vals)
    y, ia, ib = np.asarray(ys), np.asarray(ia), np.asarray(ib)
    n, ka, kb = len(y), len(la), len(lb)
    df_res = n - ka * kb
    if df_res < 1:
        return None
    tests, rss = _anova_type2(y, ia, ib)
    no_spread = tests[0][1] is None
    ms_res = 0.0 if no_spread else rss / df_res
    terms = [(a, ka - 1), (b, kb - 1), (f"{a} x {b}", (ka - 1) * (kb - 1))]
    effects = [
        {"term": term, "df": df, "ss": ss, "F": f, "p_value": p} for (term, df), (ss, f, p) in zip(terms, tests)
    ]
    cell_mean = {(i, j): float(y[(ia == i) & (ib == j)].mean()) for i in range(ka) for j in range(kb)}
    cell_n = {(i, j): int(((ia == i) & (ib == j)).sum()) for i in range(ka) for j in range(kb)}
    marginal = {
        a: {x: float(np.mean([cell_mean[(i, j)] for j in range(kb)])) for i, x in enumerate(la)},
        b: {x: float(np.mean([cell_mean[(i, j)] for i in range(ka)])) for j, x in enumerate(lb)},
    }
    contrasts = []
    for name, levels, other in ((a, la, kb), (b, lb, ka)):
        if len(levels) != 2 or no_spread:
            continue
        diff = marginal[name][levels[1]] - marginal[name][levels[0]]
        se = math.sqrt(sum(ms_res * (1 / other) ** 2 / cell_n[c] for c in cell_n))  # cell means weighted ±1/other
        half = _t_quantile(0.5 + level / 2, df_res) * se
        contrasts.append(
            {
                "factor": name,
                "a": levels[1],
                "b": levels[0],
                "difference": diff,
                "ci_low": diff - half,
                "ci_high": diff + half,
                "p_value": _t_sf2(diff / se, df_res),
            }
        )
    return {
        "factors": [a, b],
        "levels": {a: la, b: lb},
        "arms": list(grid["cells"].values()),
        "n": n,
        "residual_df": df_res,
        "no_spread": no_spread,
        "effects": effects,
        "marginal_means": marginal,
        "contrasts": contrasts,
    }
