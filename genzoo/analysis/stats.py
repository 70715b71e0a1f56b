"""Statistics for comparing models over seeds: per-arm summaries, pairwise tests, the minimum detectable difference.

- `summarize(values)`: n, mean, sample standard deviation (ddof 1) and the two-sided 95 % confidence interval of
  the mean from Student's t with n - 1 degrees of freedom (mean ± t * std / sqrt(n)).
- `welch(a, b)`: Welch's unequal-variance t-test of mean(a) - mean(b): the difference, its 95 % CI from the
  Welch-Satterthwaite degrees of freedom, and the two-sided p-value.
- `min_detectable_difference(a, b)`: the smallest true difference a two-sided Welch test at level 0.05 detects
  with 80 % power at these sample sizes and the observed standard deviations:
  (t_{1-alpha/2, df} + t_{power, df}) * sqrt(s_a^2 / n_a + s_b^2 / n_b) (the usual normal-theory formula with t
  quantiles in place of z).
- `permutation_test(a, b)`: the exact two-sided permutation p-value of the difference of means (every split of
  the pooled values when there are at most `exact_limit` of them, else `rounds` random splits).
- `holm(p_values)`: Holm's step-down adjustment for several comparisons.
- `compare_arms(values_by_arm)`: every pair of arms of one metric, as the rows of `results.json`'s `comparisons`.
- `complete_grid(factors, arms)` and `factorial(values_by_arm, grid)`: for a factorial study (each arm named by
  two factors, e.g. matching x prior), the largest complete grid of their levels and a two-way analysis of variance
  with interaction on the per-run values (Type II sums of squares by least-squares model comparison, F-tests), the
  marginal means of each level (the unweighted mean of its cell means) and, for a factor of two levels, the
  difference of its marginal means with a t interval from the pooled residual variance.
- `conclusions(...)`: the plain-language paragraph the report prints, generated from those rows.

Only numpy and scipy.special (the t and F distributions' CDF and quantile) are used.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

LEVEL = 0.95
POWER = 0.8

# Direction of each metric value: True when higher is better. Keys are `<metric>.<value>` as in the report.
HIGHER_IS_BETTER = {
    "reconstruction.psnr": True,
    "precision_recall.precision": True,
    "precision_recall.recall": True,
    "precision_recall.density": True,
    "precision_recall.coverage": True,
    "prd.f8": True,
    "prd.f1_8": True,
    "parzen.log_likelihood": True,
}
LOWER_IS_BETTER_PREFIXES = (
    "fid.",
    "fid_infinity.",
    "kid.",
    "renyi_features.",
    "reconstruction.mse",
    "reconstruction.bce",
)


def direction(key: str) -> str | None:
    """'higher', 'lower' or None (unknown) for a `<metric>.<value>` key."""
    if HIGHER_IS_BETTER.get(key):
        return "higher"
    if key.startswith(LOWER_IS_BETTER_PREFIXES):
        return "lower"
    return None


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
    xa, xb = _clean(a), _clean(b)
    out = {"difference": None, "ci_low": None, "ci_high": None, "p_value": None, "df": None, "t": None}
    if len(xa) == 0 or len(xb) == 0:
        return out
    diff = float(xa.mean() - xb.mean())
    out["difference"] = diff
    if len(xa) < 2 or len(xb) < 2:
        return out
    va, vb = xa.var(ddof=1), xb.var(ddof=1)
    se = math.sqrt(va / len(xa) + vb / len(xb))
    df = welch_df(va, len(xa), vb, len(xb))
    if se == 0 or (np.ptp(xa) == 0 and np.ptp(xb) == 0):  # identical values within each arm: no noise to test
        out.update(df=df, p_value=1.0 if diff == 0 else 0.0, ci_low=diff, ci_high=diff)
        return out
    half = _t_quantile(0.5 + level / 2, df) * se
    t = diff / se
    out.update(ci_low=diff - half, ci_high=diff + half, p_value=_t_sf2(t, df), df=df, t=t)
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
    split) up to `exact_limit` values in all, else `rounds` random splits (p = (1 + hits) / (1 + rounds))."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) == 0 or len(xb) == 0:
        return None
    pooled = np.concatenate([xa, xb])
    n, na = len(pooled), len(xa)
    observed = abs(xa.mean() - xb.mean())
    tol = 1e-12 * max(1.0, abs(observed))
    total = pooled.sum()
    if n <= exact_limit:
        hits = count = 0
        for idx in itertools.combinations(range(n), na):
            sa = pooled[list(idx)].sum()
            d = abs(sa / na - (total - sa) / (n - na))
            hits += d >= observed - tol
            count += 1
        return hits / count
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(rounds):
        perm = rng.permutation(n)
        sa = pooled[perm[:na]].sum()
        hits += abs(sa / na - (total - sa) / (n - na)) >= observed - tol
    return (1 + hits) / (1 + rounds)


def holm(p_values: list) -> list:
    """Holm's step-down adjusted p-values (None stays None)."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    adjusted: list = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
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


def _rss(design: np.ndarray, y: np.ndarray) -> float:
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    r = y - design @ coef
    return float(r @ r)


FACTORIAL_METHOD = (
    "two-way ANOVA with interaction over the largest complete grid of the study's two factors, Type II sums of "
    "squares (least-squares model comparison), F-tests; marginal means: unweighted means of the cell means; "
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
    da = (ia[:, None] == np.arange(1, ka)[None, :]).astype(float)  # treatment coding, first level as baseline
    db = (ib[:, None] == np.arange(1, kb)[None, :]).astype(float)
    dab = (da[:, :, None] * db[:, None, :]).reshape(n, -1)
    one = np.ones((n, 1))
    # sums of squares are differences of fits: round-off below 1e-12 of the total is zero
    tiny = 1e-12 * float(((y - y.mean()) ** 2).sum())
    rss_full = _rss(np.hstack([one, da, db, dab]), y)
    rss_main = _rss(np.hstack([one, da, db]), y)
    no_spread = rss_full <= tiny
    ms_res = 0.0 if no_spread else rss_full / df_res
    terms = [
        (a, _rss(np.hstack([one, db]), y) - rss_main, ka - 1),
        (b, _rss(np.hstack([one, da]), y) - rss_main, kb - 1),
        (f"{a} x {b}", rss_main - rss_full, (ka - 1) * (kb - 1)),
    ]
    effects = []
    for term, ss, df in terms:
        ss = 0.0 if ss <= tiny else ss
        f = None if no_spread else (ss / df) / ms_res
        effects.append(
            {"term": term, "df": df, "ss": ss, "F": f, "p_value": None if f is None else _f_sf(f, df, df_res)}
        )
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


def factorial_sentence(effect: dict, label: str, alpha: float = 1 - LEVEL) -> str:
    """The two-way analysis in words: each term's F-test, the marginal means, a two-level factor's difference."""
    a, b = effect["factors"]
    grid = f"Factorial {label} over the complete {a} x {b} grid ({', '.join(effect['arms'])}"
    if effect.get("no_spread"):
        return (
            f"{grid}): no run differs from the others of its cell, so there is no spread to test the effects against."
        )
    terms = "; ".join(
        f"{t['term']} F({t['df']}, {effect['residual_df']}) = {_num(t['F'])}, {_p(t['p_value'])}"
        for t in effect["effects"]
    )
    means = "; ".join(
        f"{name}: " + ", ".join(f"{level} {v:.4g}" for level, v in effect["marginal_means"][name].items())
        for name in (a, b)
    )
    text = (
        f"{grid}; two-way ANOVA, Type II, equal variances assumed; the interaction is called significant at "
        f"p < {alpha:g}, no adjustment across the three terms): {terms}. Marginal means, {means}."
    )
    for c in effect["contrasts"]:
        text += (
            f" {c['factor']} {c['a']} - {c['b']}: {_num(c['difference'])} [{_num(c['ci_low'])}, "
            f"{_num(c['ci_high'])}], {_p(c['p_value'])}."
        )
    inter = effect["effects"][2]
    if inter["p_value"] is not None and inter["p_value"] < alpha:
        text += (
            f" The interaction is significant: the effect of {b} depends on {a}; read the cells, not only the margins."
        )
    return text


def _f_sf(f: float, df1: int, df2: int) -> float:
    from scipy.special import fdtrc

    return float(fdtrc(df1, df2, f))


def _num(x: float | None) -> str:
    if x is None:
        return "n/a"
    ax = abs(x)
    if ax == 0:
        return "0"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 0.01:
        return f"{x:.3g}"
    return f"{x:.2g}"


def _p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def conclusions(
    comparisons: list[dict], names: dict[str, str] | None = None, alpha: float = 1 - LEVEL, budget: str | None = None
) -> str:
    """A plain-language paragraph of what the comparisons support: for each metric and pair, the size of the
    difference in the direction named with its 95 % CI ("a vs b: FID lower by 17 [9, 25], p = 0.01") and Welch
    p-value where the Holm-adjusted p is below `alpha`; below `alpha` only before the adjustment, said so; else 'no
    detectable difference' with the signed difference a - b, its CI and the minimum detectable difference. Pairs
    with fewer than 2 runs per arm are said to be untestable."""
    names = names or {}
    sentences = []
    untestable: dict = {}
    for key in dict.fromkeys(r["metric"] for r in comparisons):
        label = names.get(key, key)
        rows = [r for r in comparisons if r["metric"] == key]
        better = direction(key)
        parts = []
        for r in rows:
            if r["p_value"] is None:
                untestable[(r["a"], r["b"])] = None
                continue
            d = r["difference"]
            if r["ci_low"] == r["ci_high"]:  # every run of each arm the same value: nothing to test against
                what = f"the same {label}" if d == 0 else f"{label} {'higher' if d > 0 else 'lower'} by {_num(abs(d))}"
                parts.append(f"{r['a']} vs {r['b']}: {what} in every run of both (no spread to test)")
                continue
            p_holm = r.get("p_holm", r["p_value"])
            word = "higher" if d > 0 else "lower"
            # the size of the difference with its CI, in the direction named ("lower by 17 [9, 25]")
            low, high = (r["ci_low"], r["ci_high"]) if d > 0 else (-r["ci_high"], -r["ci_low"])
            size = f"{label} {word} by {_num(abs(d))} [{_num(low)}, {_num(high)}], {_p(r['p_value'])}"
            if p_holm is not None and p_holm < alpha and d != 0:
                verdict = ""
                if better is not None:
                    verdict = f" ({r['a'] if word == better else r['b']} better)"
                parts.append(f"{r['a']} vs {r['b']}: {size}{verdict}")
            elif r["p_value"] < alpha and d != 0:  # below alpha on its own, not after Holm's adjustment
                parts.append(
                    f"{r['a']} vs {r['b']}: {size}, not significant after Holm's adjustment (p = {_num(p_holm)})"
                )
            else:
                parts.append(
                    f"{r['a']} vs {r['b']}: no detectable {label} difference ({_num(d)} "
                    f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}], {_p(r['p_value'])}; MDD {_num(r['mdd'])})"
                )
        if parts:
            sentences.append("; ".join(parts) + ".")
    head = (
        "What these runs can conclude (Welch t-tests on the per-seed values; 95 % CIs of the size named after "
        "'lower/higher by', else of a - b; a "
        f"difference is claimed only where Holm's adjustment over a metric's pairs leaves p < {alpha:g}; MDD is the "
        "difference this many seeds would detect with 80 % power at the observed spread)"
        + (f", at this budget ({budget})" if budget else "")
        + ":"
    )
    text = " ".join([head, *sentences]) if sentences else head + " nothing: no metric has two arms of 2 or more runs."
    if untestable:
        text += " Not testable (fewer than 2 runs in an arm): " + ", ".join(f"{a} vs {b}" for a, b in untestable) + "."
    return text
