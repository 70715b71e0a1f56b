"""The report's numbers: each evaluated model as an `Entry`, the statistics over arms as `Statistics`
(genzoo.analysis.stats), and the tables that show them as `Section`s, which report.py writes and report_render.py
turns into Markdown and HTML.

Runs can be grouped into arms (`groups`: {label: arm}). The tables are then, per metric and arm, n, mean ± std and
the 95 % t interval of the mean; every pair of arms with Welch's t-test (difference, its 95 % CI, p-value,
Holm-adjusted p, exact permutation p, and the minimum detectable difference at 80 % power); with a study's factors,
the two-way analysis; and the per-run rows. Without arms there is one table, a row per run.

What each number is comes from its metric's declaration (genzoo.core.registry.MetricInfo): the numbers it names
as results are columns (the others, counts and options, stay in results.json), headline values and the
sample-based metrics come first, display names and directions word the comparisons and conclusions. A metric
declared circular (`prior_match` scores each model's codes against its own prior with MBRCE's own objective)
stays in the per-run rows and is left out of the arm table, the comparisons and the conclusions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from genzoo.analysis.conclusions import conclusions, describe, factorial_sentence
from genzoo.analysis.stats import FACTORIAL_METHOD, compare_arms, complete_grids, factorial, summarize
from genzoo.core.registry import METRICS
from genzoo.metrics.evaluate import format_value, scalar_items

PAIRWISE_METHOD = (
    "per arm: mean, std (ddof 1), 95 % t interval of the mean; pairs: Welch's t-test (two-sided), 95 % CI of the "
    "difference a - b, Holm-adjusted p over each metric's pairs, exact permutation p, minimum detectable difference "
    "at alpha 0.05 and 80 % power"
)


@dataclass
class Entry:
    """One evaluated model: its results ({metric: {value: ...}}), where it came from, its training log (the rows of
    its metrics.jsonl) and its grids ({"samples": png, "reconstructions": png})."""

    label: str
    results: dict
    source: object = None
    log: list[dict] = field(default_factory=list)
    grids: dict = field(default_factory=dict)


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Section:
    """One table of the report under its heading, with a paragraph above it when `note` is set."""

    title: str
    note: str | None
    table: Table


@dataclass
class Statistics:
    """The numbers behind the arm tables; results.json keeps each field under its own name."""

    metrics: dict  # {metric: {arm: {mean, std, ci_low, ci_high, n}}}
    comparisons: list[dict]  # every pair of arms per metric (stats.compare_arms)
    factorial: list[dict]  # the two-way analysis per metric, a study's complete grid only
    conclusions: str
    method: str


def _circular(key: str) -> bool:
    return METRICS.info(key.split(".", 1)[0]).circular


def _column_rank(key: str) -> tuple[bool, bool]:
    """Headline values first (FID, recall), then the other values of sample-based metrics, then the rest."""
    return not describe(key).headline, not METRICS.info(key.split(".", 1)[0]).sample_based


def metric_columns(entries: list[Entry], cross_model: bool = False) -> list[str]:
    """Numeric result keys (`metric.value`) in report order; `cross_model` leaves out the circular ones."""
    found = []
    for e in entries:
        for key, value in scalar_items(e.results):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or METRICS.value_info(key) is None:
                continue  # text, or a number its metric declares bookkeeping
            if cross_model and _circular(key):
                continue
            if key not in found:
                found.append(key)
    return sorted(found, key=_column_rank)


def arm_of(entry: Entry, groups: dict[str, str]) -> str:
    return groups.get(entry.label, entry.label)


def arm_order(entries: list[Entry], groups: dict[str, str]) -> list[str]:
    """The arms in the order of their first run."""
    return list(dict.fromkeys(arm_of(e, groups) for e in entries))


def arm_values(entries: list[Entry], groups: dict[str, str] | None) -> dict[str, dict[str, list[float]]]:
    """{metric: {arm: [per-run values]}} over the cross-model metrics."""
    groups = groups or {e.label: e.label for e in entries}
    values = [dict(scalar_items(e.results)) for e in entries]
    out = {}
    for c in metric_columns(entries, cross_model=True):
        out[c] = {}
        for g in arm_order(entries, groups):
            out[c][g] = [
                float(v[c])
                for e, v in zip(entries, values)
                if arm_of(e, groups) == g and isinstance(v.get(c), (int, float)) and math.isfinite(float(v[c]))
            ]
    return out


def statistics(
    entries: list[Entry], groups: dict[str, str] | None, budget: str | None = None, factors: dict | None = None
) -> Statistics:
    """Per-arm summaries, pairwise comparisons and the conclusions (genzoo.analysis.stats); `factors`
    ({arm: {factor: level}}, a study's) adds the two-way analysis."""
    by_metric = arm_values(entries, groups)
    summaries = {c: {g: summarize(xs) for g, xs in arms.items()} for c, arms in by_metric.items()}
    comparisons = [row for c, arms in by_metric.items() for row in compare_arms(c, arms)]
    headline = [r for r in comparisons if describe(r["metric"]).headline] or comparisons
    grids = complete_grids(factors or {}, list(next(iter(by_metric.values()), {}))) if groups else []
    effects, said = _factorial_effects(by_metric, grids)
    return Statistics(
        metrics=summaries,
        comparisons=comparisons,
        factorial=effects,
        conclusions=" ".join([conclusions(headline, budget=budget), *said]),
        method=PAIRWISE_METHOD + (f"; factorial: {FACTORIAL_METHOD}" if effects else ""),
    )


def _factorial_effects(by_metric: dict, grids: list[tuple[dict, dict]]) -> tuple[list[dict], list[str]]:
    """The two-way analysis of every metric over each complete grid (one per sampler in a study with samplers),
    and a sentence for each headline metric."""
    effects, said = [], []
    for c, arms in by_metric.items():
        for where, grid in grids:
            result = factorial(arms, grid)
            if result:
                effects.append({"metric": c, **({"where": where} if where else {}), **result})
            if describe(c).headline:
                label = describe(c).display + _where(where)
                said.append(
                    factorial_sentence(result, label)
                    if result
                    else f"Factorial {label}: not possible here (a cell of the grid has no run with this metric, "
                    "or there are not more runs than cells)."
                )
    return effects, said


def _where(where: dict) -> str:
    """{'sampler': 'gmm'} -> ' (sampler gmm)'."""
    return "".join(f" ({k} {v})" for k, v in where.items())


def _short(x) -> str:
    return "" if x is None else f"{x:.4g}"


def run_table(entries: list[Entry]) -> Table:
    """One row per run, every metric; FID with its bootstrap interval where it has one."""
    columns = metric_columns(entries)
    values = [dict(scalar_items(e.results)) for e in entries]

    def cell(v, c):
        if c == "fid.fid" and isinstance(v.get("fid.fid_ci_low"), (int, float)):
            return f"{v[c]:.4g} [{v['fid.fid_ci_low']:.4g}, {v['fid.fid_ci_high']:.4g}]"
        return format_value(v.get(c, ""))

    with_ci = any("fid.fid_ci_low" in v for v in values)
    header = ["run", *[f"{c} [bootstrap 95 %]" if c == "fid.fid" and with_ci else c for c in columns]]
    return Table(header, [[e.label, *[cell(v, c) for c in columns]] for e, v in zip(entries, values)])


def arm_table(entries: list[Entry], groups: dict[str, str]) -> Table:
    """One row per arm over the cross-model metrics: n, and mean ± std [95 % CI] (the mean alone for one run)."""
    by_metric = arm_values(entries, groups)
    rows = []
    for g in arm_order(entries, groups):
        n = sum(1 for e in entries if arm_of(e, groups) == g)
        rows.append([g, str(n), *[_summary_cell(summarize(by_metric[c][g])) for c in by_metric]])
    return Table(["model", "n", *by_metric], rows)


def _summary_cell(s: dict) -> str:
    if s["n"] == 0:
        return ""
    if s["n"] == 1:
        return _short(s["mean"])
    return f"{_short(s['mean'])} ± {s['std']:.2g} [{_short(s['ci_low'])}, {_short(s['ci_high'])}]"


def comparison_table(comparisons: list[dict]) -> Table:
    header = ["metric", "a", "b", "a - b", "95 % CI", "p (Welch)", "p (Holm)", "p (permutation)", "MDD (80 %)"]
    rows = [
        [
            describe(r["metric"]).display,
            r["a"],
            r["b"],
            _short(r["difference"]),
            "" if r["ci_low"] is None else f"[{_short(r['ci_low'])}, {_short(r['ci_high'])}]",
            _short(r["p_value"]),
            _short(r.get("p_holm")),
            _short(r.get("p_permutation")),
            _short(r.get("mdd")),
        ]
        for r in comparisons
    ]
    return Table(header, rows)


def factorial_table(effects: list[dict]) -> Table:
    """One row per metric and term of the two-way analysis, with the marginal means of the term's levels."""
    rows = []
    for e in effects:
        for t in e["effects"]:
            means = e["marginal_means"].get(t["term"])
            rows.append(
                [
                    describe(e["metric"]).display + _where(e.get("where", {})),
                    t["term"],
                    f"{t['df']}, {e['residual_df']}",
                    _short(t["F"]),
                    _short(t["p_value"]),
                    ", ".join(f"{k} {_short(v)}" for k, v in means.items()) if means else "",
                ]
            )
    return Table(["metric", "term", "df", "F", "p", "marginal means"], rows)


def sections(
    entries: list[Entry], groups: dict[str, str] | None, stats: Statistics, notes: str | None
) -> list[Section]:
    """The report's tables in order; `notes` goes above the first (the study's budget, a budget warning)."""
    per_run = run_table(entries)
    if not groups:
        return [Section("Results", notes, per_run)]
    circular = [c for c in per_run.header if _circular(c)]
    factorial_section = (
        [Section("Factorial effects", FACTORIAL_METHOD + ".", factorial_table(stats.factorial))]
        if stats.factorial
        else []
    )
    return [
        Section("Per arm: mean ± std [95 % CI]", notes, arm_table(entries, groups)),
        Section("Pairwise comparisons (a - b)", PAIRWISE_METHOD + ".", comparison_table(stats.comparisons)),
        *factorial_section,
        Section(
            "Per run",
            (
                f"{', '.join(circular)}: each model scored against its own prior with MBRCE's own objective; "
                "circular across models, so left out of the tables above."
            )
            if circular
            else None,
            per_run,
        ),
    ]
