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
- `conclusions(...)`: the plain-language paragraph the report prints, generated from those rows.

Only numpy and scipy.special (the t distribution's CDF and quantile) are used.
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
    if se == 0:  # identical values within each arm: no noise to test against
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
            if d == 0 and r["ci_low"] == r["ci_high"]:  # every run of both arms the same value: nothing to test
                parts.append(f"{r['a']} vs {r['b']}: the same {label} in every run of both (no spread to test)")
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
