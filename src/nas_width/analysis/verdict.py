"""The verdict on "wider and sparser is better at a fixed budget", in words and numbers.

The test is the rank correlation between the effective width m = S*C and accuracy over the
**shapes** (seeds averaged first; :mod:`nas_width.analysis.inference`), with its two-sided
permutation p-value over shape means: under "no width effect" the means are exchangeable, so
the rule's false-positive rate is alpha (tested by simulation). The hierarchical bootstrap
interval is reported with it; it describes the estimate and is not part of the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from nas_width.analysis.correlation import Correlation
from nas_width.analysis.trend import Trend

__all__ = ["Outcome", "Verdict", "decide"]

Outcome = Literal["supported", "contradicted", "inconclusive"]
Reason = Literal[
    "too_few_trials",
    "too_few_shapes",
    "no_width_spread",
    "significant_increase",
    "significant_decrease",
    "not_significant",
]


@dataclass(frozen=True)
class Verdict:
    """The hypothesis test's outcome.

    Attributes:
        outcome: "supported", "contradicted" or "inconclusive".
        reason: why, as a key: "too_few_trials", "too_few_shapes", "no_width_spread",
            "significant_increase", "significant_decrease" or "not_significant".
        criterion: the decision rule in words, with its thresholds.
        text: one or two sentences with the numbers.
    """

    outcome: Outcome
    reason: Reason
    criterion: str
    text: str


def criterion_text(
    alpha: float, level: float, min_trials: int, min_spread: float, min_shapes: int = 5
) -> str:
    """The decision rule in words."""
    pct = f"{100 * level:g}%"
    return (
        f"by shape (seeds averaged first): supported when Spearman's rho between m and the "
        f"shape means is > 0 with two-sided permutation p < {alpha:g} (shape means permuted); "
        f"contradicted when rho < 0 with p < {alpha:g}; inconclusive otherwise, or with fewer "
        f"than {min_trials} complete trials or {min_shapes} shapes, or when log m spans less "
        f"than {min_spread:g} among them. The {pct} interval is a hierarchical bootstrap "
        "(shapes, then seeds) and is reported, not used by the rule."
    )


def _trend_clause(trend: Trend | None, level: float) -> str:
    if trend is None or trend.quadratic is None:
        return ""
    q = trend.quadratic
    lo, hi = q.best_ratio_ci
    return (
        f" The quadratic in log(S/C) puts the best S/C at {q.best_ratio:.3g} "
        f"({100 * level:g}% interval {lo:.3g} to {hi:.3g}); the theory's optimum is S/C = 1."
    )


def decide(
    *,
    n_used: int,
    log_m_spread: float,
    correlation: Correlation | None,
    trend: Trend | None,
    alpha: float,
    level: float,
    min_trials: int,
    min_log_width_spread: float,
    min_shapes: int = 5,
    statistic: Literal["spearman", "kendall"] = "spearman",
) -> Verdict:
    """Apply the rule of :func:`criterion_text` to the statistics (``correlation`` over
    shapes: its ``n`` is the number of shapes)."""
    criterion = criterion_text(alpha, level, min_trials, min_log_width_spread, min_shapes)
    needed = max(min_trials, 3)  # a rank correlation needs three points at least
    if n_used < needed:
        text = (
            f"Inconclusive: only {n_used} complete trials, fewer than the {needed} "
            f"needed (too few trials)."
        )
        return Verdict("inconclusive", "too_few_trials", criterion, text)
    shapes = correlation.n if correlation is not None else 0
    if correlation is not None and shapes < max(min_shapes, 3):
        text = (
            f"Inconclusive: the {n_used} complete trials cover only {shapes} shapes, fewer than "
            f"the {max(min_shapes, 3)} needed (too few shapes; seeds of a shape are one point)."
        )
        return Verdict("inconclusive", "too_few_shapes", criterion, text)
    if correlation is None or log_m_spread < min_log_width_spread:
        text = (
            f"Inconclusive: log m spans only {log_m_spread:.3g} over the {n_used} complete "
            f"trials, less than {min_log_width_spread:g} (too little spread in width m)."
        )
        return Verdict("inconclusive", "no_width_spread", criterion, text)
    rho = correlation.spearman if statistic == "spearman" else correlation.kendall
    p = min(1.0, 2.0 * min(rho.p_increasing, rho.p_decreasing))
    name = "Spearman rho" if statistic == "spearman" else "Kendall tau"
    other = correlation.kendall if statistic == "spearman" else correlation.spearman
    numbers = (
        f"{name} = {rho.estimate:+.3f} over {shapes} shapes ({correlation.n_trials} "
        f"trials; two-sided permutation p = {p:.3g}; {100 * level:g}% hierarchical bootstrap "
        f"interval {rho.ci_low:+.3f} to {rho.ci_high:+.3f}; {other.name} = "
        f"{other.estimate:+.3f})"
    )
    clause = _trend_clause(trend, level)
    if p < alpha and rho.estimate > 0:
        text = f"Supported: accuracy rises with width m, {numbers}."
        return Verdict("supported", "significant_increase", criterion, text + clause)
    if p < alpha and rho.estimate < 0:
        text = f"Contradicted: accuracy falls with width m, {numbers}."
        return Verdict("contradicted", "significant_decrease", criterion, text + clause)
    text = f"Inconclusive: no significant rank correlation, {numbers}."
    return Verdict("inconclusive", "not_significant", criterion, text + clause)
