"""The study report's conclusions in plain language, generated from the rows of genzoo.analysis.stats.

Each metric value is named and read as its metric declares it (genzoo.core.registry.MetricValue): its display
name, which direction is better (so which arm is called better) and its unit.
"""

from __future__ import annotations

from genzoo.analysis.stats import LEVEL
from genzoo.core.registry import METRICS, MetricValue


def describe(key: str) -> MetricValue:
    """The declared facts of a `<metric>.<value>` key, its display name filled in (the key itself if undeclared)."""
    return METRICS.value_info(key) or MetricValue(display=key)


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


def _pair(r: dict, facts: MetricValue, alpha: float) -> str:
    """One pair of arms in words (see `conclusions`)."""
    label, d = facts.display, r["difference"]
    unit = f" {facts.unit}" if facts.unit else ""
    if r["ci_low"] == r["ci_high"]:  # every run of each arm the same value: nothing to test against
        what = f"the same {label}" if d == 0 else f"{label} {'higher' if d > 0 else 'lower'} by {_num(abs(d))}{unit}"
        return f"{r['a']} vs {r['b']}: {what} in every run of both (no spread to test)"
    p_holm = r.get("p_holm", r["p_value"])
    word = "higher" if d > 0 else "lower"
    # the size of the difference with its CI, in the direction named ("lower by 17 [9, 25]")
    low, high = (r["ci_low"], r["ci_high"]) if d > 0 else (-r["ci_high"], -r["ci_low"])
    size = f"{label} {word} by {_num(abs(d))}{unit} [{_num(low)}, {_num(high)}], {_p(r['p_value'])}"
    if p_holm is not None and p_holm < alpha and d != 0:
        verdict = "" if facts.better is None else f" ({r['a'] if word == facts.better else r['b']} better)"
        return f"{r['a']} vs {r['b']}: {size}{verdict}"
    if r["p_value"] < alpha and d != 0:  # below alpha on its own, not after Holm's adjustment
        return f"{r['a']} vs {r['b']}: {size}, not significant after Holm's adjustment (p = {_num(p_holm)})"
    return (
        f"{r['a']} vs {r['b']}: no detectable {label} difference ({_num(d)} "
        f"[{_num(r['ci_low'])}, {_num(r['ci_high'])}], {_p(r['p_value'])}; MDD {_num(r['mdd'])})"
    )


def conclusions(comparisons: list[dict], alpha: float = 1 - LEVEL, budget: str | None = None) -> str:
    """A plain-language paragraph of what the comparisons support: for each metric and pair, the size of the
    difference in the direction named with its 95 % CI ("a vs b: FID lower by 17 [9, 25], p = 0.01") and Welch
    p-value where the Holm-adjusted p is below `alpha`, with the better arm where the metric declares a direction;
    below `alpha` only before the adjustment, said so; else 'no detectable difference' with the signed difference
    a - b, its CI and the minimum detectable difference. Pairs with fewer than 2 runs per arm are said to be
    untestable."""
    sentences = []
    untestable: dict = {}
    for key in dict.fromkeys(r["metric"] for r in comparisons):
        facts = describe(key)
        parts = []
        for r in comparisons:
            if r["metric"] != key:
                continue
            if r["p_value"] is None:
                untestable[(r["a"], r["b"])] = None
            else:
                parts.append(_pair(r, facts, alpha))
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
