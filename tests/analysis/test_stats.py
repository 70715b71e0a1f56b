"""genzoo.analysis.stats against independent computations: Welch, permutation, Holm and the two-way ANOVA worked
by hand (numpy formulas, exact enumeration, t and F tails integrated here), a hand bootstrap, a noncentral-t power.
The code calls scipy and statsmodels; these oracles do not, so a wrong library function or argument fails them."""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from scipy import stats as sps

from genzoo.analysis import stats
from genzoo.analysis.conclusions import _num, conclusions, describe, factorial_sentence

A = [148.2, 151.9, 146.0, 149.7, 150.3]
B = [166.4, 158.1, 175.0, 161.2, 170.9]
C = [149.9, 147.1, 153.8]


def t_tail(t: float, df: float, steps: int = 200_000) -> float:
    """P(|T| >= |t|) for Student's t with df degrees of freedom: with T = sqrt(df) tan(theta) the density of theta
    is proportional to cos(theta)^(df - 1) on (-pi/2, pi/2), integrated here by Simpson's rule."""
    theta = np.linspace(math.atan(abs(t) / math.sqrt(df)), math.pi / 2, steps + 1)
    weights = np.ones(steps + 1)
    weights[1:-1:2], weights[2:-1:2] = 4, 2
    tail = (weights * np.cos(theta) ** (df - 1)).sum() * (theta[1] - theta[0]) / 3
    half = math.exp(math.lgamma(df / 2) + math.lgamma(0.5) - math.lgamma(df / 2 + 0.5)) / 2
    return float(tail / half)


def t_quantile(q: float, df: float) -> float:
    """The upper quantile (q > 0.5) of Student's t by bisection on t_tail."""
    lo, hi = 0.0, 1e3
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 1 - t_tail(mid, df, 20_000) / 2 < q else (lo, mid)
    return (lo + hi) / 2


def f_tail(f: float, df1: int, df2: int) -> float:
    """P(F >= f) for the F distributions the tests use: F(1, n) is a squared t, F(2, n) has a closed form."""
    if df1 == 1:
        return t_tail(math.sqrt(f), df2)
    assert df1 == 2
    return (1 + 2 * f / df2) ** (-df2 / 2)


def welch_by_hand(a, b) -> dict:
    a, b = np.asarray(a), np.asarray(b)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff, se = a.mean() - b.mean(), math.sqrt(va + vb)
    half = t_quantile(0.975, df) * se
    return {"t": diff / se, "df": df, "p": t_tail(diff / se, df), "ci": (diff - half, diff + half)}


def test_summary_is_the_t_interval_of_the_mean():
    s = stats.summarize(A)
    half = t_quantile(0.975, len(A) - 1) * np.std(A, ddof=1) / math.sqrt(len(A))
    assert s["n"] == 5
    assert s["mean"] == pytest.approx(np.mean(A), rel=1e-12)
    assert s["std"] == pytest.approx(np.std(A, ddof=1), rel=1e-12)
    assert (s["ci_low"], s["ci_high"]) == (pytest.approx(np.mean(A) - half), pytest.approx(np.mean(A) + half))
    one = stats.summarize([3.0, None, float("nan")])
    assert one == {"mean": 3.0, "std": None, "ci_low": None, "ci_high": None, "n": 1}


def test_welch_worked_example():
    """a = 1..4, b = 2, 4, ..., 10: variances 5/3 and 10, so se^2 = 5/12 + 2 = 29/12 and the Welch-Satterthwaite
    df = (29/12)^2 / ((5/12)^2 / 3 + 2^2 / 4) = 2523/457 (the pooled test would have 7 and another t)."""
    got = stats.welch([1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0, 8.0, 10.0])
    t, df = -3.5 / math.sqrt(29 / 12), 2523 / 457
    assert got["difference"] == pytest.approx(-3.5, rel=1e-12)
    assert got["t"] == pytest.approx(t, rel=1e-10) and got["df"] == pytest.approx(df, rel=1e-10)
    assert got["p_value"] == pytest.approx(t_tail(t, df), rel=1e-7)  # two-sided: both tails
    half = t_quantile(0.975, df) * math.sqrt(29 / 12)
    assert (got["ci_low"], got["ci_high"]) == (pytest.approx(-3.5 - half, rel=1e-7), pytest.approx(-3.5 + half))


@pytest.mark.parametrize("a, b", [(A, B), (A, C), (B, C), ([1.0, 2.0], [1.5, 2.5, 9.0, 0.1])])
def test_welch_matches_the_hand_formulas(a, b):
    ours, ref = stats.welch(a, b), welch_by_hand(a, b)
    assert ours["difference"] == pytest.approx(np.mean(a) - np.mean(b), rel=1e-12)
    assert ours["t"] == pytest.approx(ref["t"], rel=1e-10)
    assert ours["df"] == pytest.approx(ref["df"], rel=1e-10)
    assert ours["p_value"] == pytest.approx(ref["p"], rel=1e-6)
    assert (ours["ci_low"], ours["ci_high"]) == (pytest.approx(ref["ci"][0]), pytest.approx(ref["ci"][1]))


def test_welch_without_spread_or_runs():
    same = stats.welch([2.0, 2.0], [2.0, 2.0, 2.0])
    assert same["p_value"] == 1.0 and same["ci_low"] == same["ci_high"] == 0.0 and same["t"] is None
    apart = stats.welch([1.0, 1.0], [3.0, 3.0])
    assert apart["p_value"] == 0.0 and apart["difference"] == -2.0
    assert stats.welch([1.0], [2.0, 3.0])["p_value"] is None and stats.welch([], [1.0])["difference"] is None


def test_welch_ci_agrees_with_a_hand_bootstrap():
    """For large arms the t-based CI of the difference and a percentile bootstrap of it nearly coincide."""
    rng = np.random.default_rng(1)
    a, b = rng.normal(10, 2, 400), rng.normal(9, 3, 300)
    diffs = []
    for _ in range(4000):
        diffs.append(rng.choice(a, len(a)).mean() - rng.choice(b, len(b)).mean())
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    ours = stats.welch(a, b)
    width = ours["ci_high"] - ours["ci_low"]
    assert abs(ours["ci_low"] - lo) < 0.05 * width and abs(ours["ci_high"] - hi) < 0.05 * width


def exact_permutation_p(a, b) -> float:
    """Every split of the pooled values into groups of len(a) and len(b): the share whose |difference of means|
    is at least the observed one."""
    pooled, na = list(a) + list(b), len(a)
    observed = abs(np.mean(a) - np.mean(b))
    gaps = []
    for idx in itertools.combinations(range(len(pooled)), na):
        rest = [v for i, v in enumerate(pooled) if i not in idx]
        gaps.append(abs(np.mean([pooled[i] for i in idx]) - np.mean(rest)))
    return float(np.mean(np.asarray(gaps) >= observed - 1e-9))


def test_permutation_test_worked_examples():
    # 1, 2, 3 vs 4..7: of the 35 splits only the observed one and {5, 6, 7} vs {1, 2, 3, 4} differ by 3.5
    assert stats.permutation_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]) == pytest.approx(2 / 35, rel=1e-12)
    assert stats.permutation_test(A, B) == pytest.approx(2 / math.comb(10, 5))  # the observed split and its mirror
    rng = np.random.default_rng(5)
    for _ in range(5):
        a, b = rng.normal(0, 1, 4).round(1).tolist(), rng.normal(0.5, 1, 5).round(1).tolist()  # ties included
        assert stats.permutation_test(a, b) == pytest.approx(exact_permutation_p(a, b), rel=1e-12)
    assert stats.permutation_test([1.0], [2.0, 3.0]) is None


def test_permutation_test_random_splits_beyond_the_exact_limit():
    a, b = [0.1, 0.5, 0.9, 1.4, 2.0, 0.3, 1.2], [1.1, 1.9, 2.2, 0.8, 2.5, 1.6, 1.0]  # 3432 splits
    p = stats.permutation_test(a, b, exact_limit=8, rounds=3000)
    assert (p * 3001) == pytest.approx(round(p * 3001), abs=1e-6)  # (1 + hits) / (1 + rounds)
    assert p == pytest.approx(exact_permutation_p(a, b), abs=0.02)
    big = stats.permutation_test(np.arange(15.0), np.arange(15.0) + 0.5, rounds=3000)
    assert 0.5 < big <= 1.0


def test_minimum_detectable_difference_has_80_percent_power():
    """The MDD, fed back as the true difference, gives 80 % power by the noncentral t (an independent formula)."""
    for n in (3, 5, 10):
        base = np.linspace(-1, 1, n)
        a, b = base * 4.0, base * 4.0  # equal observed std
        mdd = stats.min_detectable_difference(a, b)
        se = math.sqrt(2 * np.var(a, ddof=1) / n)
        df = 2 * n - 2
        crit = sps.t.ppf(0.975, df)
        power = sps.nct.sf(crit, df, mdd / se) + sps.nct.cdf(-crit, df, mdd / se)
        assert power == pytest.approx(0.8, abs=0.03), n
    assert stats.min_detectable_difference([1.0], [2.0, 3.0]) is None


def test_holm_adjustment_by_hand():
    p = [0.01, 0.04, None, 0.03]
    # sorted 0.01, 0.03, 0.04 -> 3*0.01, max(0.03, 2*0.03), max(0.06, 1*0.04) (Hochberg's step-up would give 0.04)
    assert stats.holm(p) == [pytest.approx(0.03), pytest.approx(0.06), None, pytest.approx(0.06)]
    assert stats.holm([0.6, 0.7]) == [1.0, 1.0]  # 2 * 0.6 capped at 1, never below the step before
    assert stats.holm([]) == [] and stats.holm([None]) == [None]


def test_compare_arms_rows_and_conclusions_agree_with_the_numbers():
    rows = stats.compare_arms("fid.fid", {"mbrce": A, "aae": B, "vae": C})
    assert [(r["a"], r["b"]) for r in rows] == [("mbrce", "aae"), ("mbrce", "vae"), ("aae", "vae")]
    for r, (a, b) in zip(rows, [(A, B), (A, C), (B, C)]):
        assert r["p_value"] == pytest.approx(welch_by_hand(a, b)["p"], rel=1e-6)
        assert set(r) >= {"metric", "a", "b", "difference", "ci_low", "ci_high", "p_value"}
    text = conclusions(rows)
    mbrce_aae, mbrce_vae, _ = rows
    assert mbrce_aae["p_holm"] < 0.05 and mbrce_vae["p_holm"] > 0.05
    # the significant pair: direction, size and CI as in the row
    number = r"(-?[0-9.]+)"
    m = re.search(rf"mbrce vs aae: FID lower by {number} \[{number}, {number}\], p = {number} \(mbrce better\)", text)
    assert m, text
    assert float(m.group(1)) == pytest.approx(-mbrce_aae["difference"], rel=0.01)
    # the CI of the size named ("lower by 17 [9, 25]"): the CI of a - b, negated
    assert float(m.group(2)) == pytest.approx(-mbrce_aae["ci_high"], rel=0.01) and float(m.group(2)) > 0
    assert float(m.group(3)) == pytest.approx(-mbrce_aae["ci_low"], rel=0.01)
    assert float(m.group(4)) == pytest.approx(mbrce_aae["p_value"], abs=0.006)
    # the other: no claim, with the MDD
    m = re.search(r"mbrce vs vae: no detectable FID difference \(.*?MDD ([0-9.]+)\)", text)
    assert m, text
    assert float(m.group(1)) == pytest.approx(mbrce_vae["mdd"], rel=0.01)
    assert "higher by" not in text.split("mbrce vs vae")[1].split(";")[0]


def test_conclusions_separate_nominal_from_adjusted_significance():
    row = {"metric": "fid.fid", "a": "x", "b": "y", "difference": -12.0, "ci_low": -20.0, "ci_high": -4.1}
    row.update(p_value=0.023, p_holm=0.23, mdd=9.8)
    text = conclusions([row])
    assert "x vs y: FID lower by 12.0 [4.1, 20.0], p = 0.02, not significant after Holm's adjustment" in text
    assert "(x better)" not in text


def test_conclusions_say_when_nothing_can_be_tested():
    rows = stats.compare_arms("reconstruction.mse", {"a": [0.1], "b": [0.2]})
    text = conclusions(rows)
    assert "Not testable" in text and "a vs b" in text and "lower by" not in text


def test_conclusions_do_not_test_arms_without_spread():
    """Recall 0 in every run of two arms (as the mixture-prior arms of the MNIST study): no 'MDD 0' claim."""
    rows = stats.compare_arms(
        "precision_recall.recall", {"a": [0.0] * 5, "b": [0.0] * 5, "c": [0.1, 0.0, 0.2, 0.1, 0.05]}
    )
    text = conclusions(rows)
    assert "a vs b: the same recall in every run of both (no spread to test)" in text
    assert "MDD 0)" not in text and "a vs c" in text


def test_metrics_declare_direction_and_name():
    assert describe("fid.fid").better == "lower" and describe("precision_recall.recall").better == "higher"
    assert describe("kid.kid").better == "lower" and describe("parzen.log_likelihood").better == "higher"
    assert describe("fid.fid").display == "FID" and describe("reconstruction.psnr").unit == "dB"
    assert describe("something.else").better is None and describe("something.else").display == "something.else"


def test_conclusions_name_the_better_arm_by_the_declared_direction():
    """Recall is higher-is-better: the arm with the higher recall is the better one (for FID it is the lower)."""
    rows = stats.compare_arms("precision_recall.recall", {"a": [0.30, 0.32, 0.31], "b": [0.10, 0.12, 0.11]})
    assert "a vs b: recall higher by 0.2" in conclusions(rows) and "(a better)" in conclusions(rows)
    rows = stats.compare_arms("fid.fid", {"a": [30.0, 32.0, 31.0], "b": [10.0, 12.0, 11.0]})
    assert "a vs b: FID higher by 20.0" in conclusions(rows) and "(b better)" in conclusions(rows)
    rows = stats.compare_arms("parzen.log_likelihood", {"a": [300.0, 302.0, 301.0], "b": [10.0, 12.0, 11.0]})
    assert "Parzen log-likelihood higher by 290 nats [" in conclusions(rows)


FACTORS = {  # the MNIST study's seven arms: a 3 x 2 grid plus a VAE with a prior no other matching uses
    "mbrce_mixture": {"matching": "mbrce", "prior": "mixture"},
    "mbrce_gauss5": {"matching": "mbrce", "prior": "gauss5"},
    "aae_gauss5": {"matching": "D", "prior": "gauss5"},
    "vae_gauss5": {"matching": "KL", "prior": "gauss5"},
    "vae_gauss1": {"matching": "KL", "prior": "gauss1"},
    "aae_mixture": {"matching": "D", "prior": "mixture"},
    "vae_mixture": {"matching": "KL", "prior": "mixture"},
}


def test_complete_grid_keeps_the_largest_full_grid():
    grid = stats.complete_grid(FACTORS, list(FACTORS))
    assert grid["factors"] == ["matching", "prior"]
    assert grid["levels"] == {"matching": ["mbrce", "D", "KL"], "prior": ["mixture", "gauss5"]}
    assert sorted(grid["cells"].values()) == sorted(set(FACTORS) - {"vae_gauss1"})
    # without the D x mixture cell the largest full grid drops a level; two arms in one cell is no grid
    partial = {k: v for k, v in FACTORS.items() if k != "aae_mixture"}
    assert stats.complete_grid(partial, list(partial))["levels"] == {
        "matching": ["mbrce", "KL"],
        "prior": ["mixture", "gauss5"],
    }
    twice = {**FACTORS, "extra": {"matching": "D", "prior": "mixture"}}
    assert stats.complete_grid(twice, list(twice)) is None
    diagonal = {f"arm{i}": {"m": i, "p": i} for i in range(4)}  # four arms, no two share a level: no grid
    assert stats.complete_grid(diagonal, list(diagonal)) is None
    # four matchings, the mixture run with two of them only: the full grid is those two x both priors (dropping
    # the emptiest level first would drop the mixture and find nothing); an arm without both factors stays out
    four = {f"{m}_g": {"matching": m, "prior": "gauss"} for m in "abcd"}
    four |= {"a_mix": {"matching": "a", "prior": "mix"}, "c_mix": {"matching": "c", "prior": "mix"}}
    four["control"] = {"matching": "none", "note": "no prior"}
    grid = stats.complete_grid(four, list(four))
    assert grid["levels"] == {"matching": ["a", "c"], "prior": ["gauss", "mix"]}


def test_factorial_anova_matches_the_balanced_textbook_formulas():
    """Balanced 3 x 2 design, 4 runs a cell: the sums of squares of the classical formulas, F and its tail, and the
    two-level factor's difference with its t interval from the residual mean square."""
    rng = np.random.default_rng(3)
    grid = stats.complete_grid(FACTORS, list(FACTORS))
    la, lb = grid["levels"]["matching"], grid["levels"]["prior"]
    effect_a, effect_b = {"mbrce": 0.0, "D": 8.0, "KL": 3.0}, {"mixture": -6.0, "gauss5": 6.0}
    y = np.zeros((3, 2, 4))
    values = {}
    for (x, p), arm in grid["cells"].items():
        i, j = la.index(x), lb.index(p)
        y[i, j] = 200 + effect_a[x] + effect_b[p] + (10.0 if (x, p) == ("D", "gauss5") else 0) + rng.normal(0, 5, 4)
        values[arm] = y[i, j].tolist()
    values["vae_gauss1"] = [1.0, 2.0]  # outside the grid: ignored
    got = stats.factorial(values, grid)
    n, a, b = 4, 3, 2
    grand, mi, mj, mij = y.mean(), y.mean((1, 2)), y.mean((0, 2)), y.mean(2)
    ss_a = n * b * ((mi - grand) ** 2).sum()
    ss_b = n * a * ((mj - grand) ** 2).sum()
    ss_ab = n * ((mij - mi[:, None] - mj[None, :] + grand) ** 2).sum()
    ss_e = ((y - mij[:, :, None]) ** 2).sum()
    df_e = a * b * (n - 1)
    for term, ss, df in zip(got["effects"], (ss_a, ss_b, ss_ab), (a - 1, b - 1, (a - 1) * (b - 1))):
        f = (ss / df) / (ss_e / df_e)
        assert term["ss"] == pytest.approx(ss, rel=1e-9) and term["df"] == df
        assert term["F"] == pytest.approx(f, rel=1e-9)
        assert term["p_value"] == pytest.approx(f_tail(f, df, df_e), rel=1e-6)
    assert got["residual_df"] == df_e and got["n"] == 24
    assert got["marginal_means"]["prior"]["gauss5"] == pytest.approx(mj[1])
    (c,) = got["contrasts"]
    se = np.sqrt(ss_e / df_e * 2 / (n * a))
    half = t_quantile(0.975, df_e) * se
    assert (c["a"], c["b"]) == ("gauss5", "mixture")
    assert c["difference"] == pytest.approx(mj[1] - mj[0])
    assert c["ci_low"] == pytest.approx(mj[1] - mj[0] - half) and c["ci_high"] == pytest.approx(mj[1] - mj[0] + half)
    assert c["p_value"] == pytest.approx(t_tail((mj[1] - mj[0]) / se, df_e), rel=1e-6)


def test_study_statistics_say_the_factorial_effects():
    from genzoo.analysis.report_tables import Entry, statistics

    rng = np.random.default_rng(0)
    entries = []
    for arm, f in FACTORS.items():
        shift = 40.0 if f["prior"] == "gauss5" else 0.0  # a large prior effect, nothing else
        entries += [Entry(f"{arm}-s{s}", {"fid": {"fid": 200 + shift + rng.normal(0, 3)}}) for s in range(3)]
    groups = {e.label: e.label.rsplit("-s", 1)[0] for e in entries}
    block = statistics(entries, groups, factors=FACTORS)
    (fid,) = [e for e in block.factorial if e["metric"] == "fid.fid"]
    prior = fid["effects"][1]
    assert prior["term"] == "prior" and prior["p_value"] < 1e-6 and fid["effects"][0]["p_value"] > 0.01
    assert "Factorial FID over the complete matching x prior grid" in block.conclusions
    assert f"prior F(1, 12) = {_num(prior['F'])}, p < 0.001" in block.conclusions
    assert "vae_gauss1" not in block.conclusions.split("Factorial FID")[1].split(")")[0]


def test_a_study_with_samplers_gets_one_factorial_per_sampler():
    """Every arm also evaluated under a fitted sampler (arm+gmm, a third factor): the two-way analysis runs within
    each sampler, over independent runs, instead of finding two arms in each cell and giving up."""
    from genzoo.analysis.report_tables import Entry, factorial_table, statistics

    factors = {arm: {**f, "sampler": "prior"} for arm, f in FACTORS.items()}
    factors |= {f"{arm}+gmm": {**f, "sampler": "gmm"} for arm, f in FACTORS.items()}
    rng = np.random.default_rng(1)
    entries = []
    for arm, f in factors.items():
        shift = 40.0 if f["prior"] == "gauss5" and f["sampler"] == "prior" else 0.0  # a prior effect under one
        entries += [Entry(f"{arm}-s{s}", {"fid": {"fid": 200 + shift + rng.normal(0, 3)}}) for s in range(3)]
    groups = {e.label: e.label.rsplit("-s", 1)[0] for e in entries}
    block = statistics(entries, groups, factors=factors)
    fids = {e["where"]["sampler"]: e for e in block.factorial if e["metric"] == "fid.fid"}
    assert sorted(fids) == ["gmm", "prior"]
    assert sorted(fids["gmm"]["arms"]) == sorted(f"{a}+gmm" for a in FACTORS if a != "vae_gauss1")
    assert fids["prior"]["effects"][1]["p_value"] < 1e-6 and fids["gmm"]["effects"][1]["p_value"] > 0.01
    assert "Factorial FID (sampler prior) over the complete matching x prior grid" in block.conclusions
    assert "Factorial FID (sampler gmm) over the complete matching x prior grid" in block.conclusions
    assert {row[0] for row in factorial_table(block.factorial).rows} >= {"FID (sampler prior)", "FID (sampler gmm)"}
    # arms that name no further factor: one grid, as before
    assert stats.complete_grids(FACTORS, list(FACTORS)) == [({}, stats.complete_grid(FACTORS, list(FACTORS)))]


def test_factorial_type_ii_on_unbalanced_cells_matches_projections():
    """Unequal runs per cell (a failed seed): Type II sums of squares as y'(H_full - H_reduced)y with projection
    matrices of effect-coded designs, computed here independently of the code's least-squares fits."""
    rng = np.random.default_rng(7)
    grid = stats.complete_grid(FACTORS, list(FACTORS))
    sizes = dict(zip(grid["cells"].values(), [2, 5, 3, 7, 4, 3]))
    values = {arm: (200 + rng.normal(0, 5, k) + 3 * i).tolist() for i, (arm, k) in enumerate(sizes.items())}
    got = stats.factorial(values, grid)
    la, lb = grid["levels"]["matching"], grid["levels"]["prior"]
    rows = [(la.index(x), lb.index(p), v) for (x, p), arm in grid["cells"].items() for v in values[arm]]
    y = np.array([r[2] for r in rows])

    def effect(index, k):  # sum-to-zero coding: level j -> e_j, the last level -> -1 everywhere
        out = np.zeros((len(rows), k - 1))
        for n, r in enumerate(rows):
            out[n] = -1 if r[index] == k - 1 else np.eye(k - 1)[r[index]]
        return out

    ea, eb = effect(0, 3), effect(1, 2)
    eab = (ea[:, :, None] * eb[:, None, :]).reshape(len(rows), -1)
    one = np.ones((len(rows), 1))

    def hat(*blocks):
        x = np.hstack([one, *blocks])
        return x @ np.linalg.pinv(x)

    ss_a = y @ (hat(ea, eb) - hat(eb)) @ y
    ss_b = y @ (hat(ea, eb) - hat(ea)) @ y
    ss_ab = y @ (hat(ea, eb, eab) - hat(ea, eb)) @ y
    ms_e = y @ (np.eye(len(y)) - hat(ea, eb, eab)) @ y / (len(y) - 6)
    for term, ss, df in zip(got["effects"], (ss_a, ss_b, ss_ab), (2, 1, 2)):
        assert term["ss"] == pytest.approx(ss, rel=1e-8)
        assert term["F"] == pytest.approx(ss / df / ms_e, rel=1e-8)
        assert term["p_value"] == pytest.approx(f_tail(ss / df / ms_e, df, len(y) - 6), rel=1e-6)


def test_factorial_zero_effect_and_zero_spread():
    grid = stats.complete_grid(FACTORS, list(FACTORS))
    arms = list(grid["cells"].values())
    # the prior has exactly no effect (mirror-image cells): F 0 and p 1, not a round-off negative F and p NaN
    mirror = {arm: ([0.1, 0.2, 0.7] if i % 2 == 0 else [0.7, 0.2, 0.1]) for i, arm in enumerate(arms)}
    got = stats.factorial(mirror, grid)
    prior = got["effects"][1]
    assert prior["ss"] == 0.0 and prior["F"] == 0.0 and prior["p_value"] == 1.0
    # no run differs from its cell: no F-test, no contrast, and the sentence says why
    flat = {arm: [float(i)] * 3 for i, arm in enumerate(arms)}
    got = stats.factorial(flat, grid)
    assert got["no_spread"] and all(e["F"] is None and e["p_value"] is None for e in got["effects"])
    assert got["contrasts"] == []
    assert "no spread to test" in factorial_sentence(got, "FID")
    rows = stats.compare_arms("precision_recall.recall", {"a": [0.0] * 3, "b": [0.1] * 3})
    assert "a vs b: recall lower by 0.1 in every run of both (no spread to test)" in conclusions(rows)
