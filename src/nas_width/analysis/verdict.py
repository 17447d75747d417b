"""The verdict on "wider and sparser is better at a fixed budget", in words and numbers.

The test is Spearman's rank correlation between the effective width m = S*C and accuracy over
the used trials, with its one-sided permutation p-value and bootstrap interval
(:mod:`nas_width.analysis.correlation`). Spearman is the primary statistic because it uses the
size of rank differences; Kendall's tau is reported beside it as a check.
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
        reason: why, as a key: "too_few_trials", "no_width_spread", "significant_increase",
            "significant_decrease" or "not_significant".
        criterion: the decision rule in words, with its thresholds.
        text: one or two sentences with the numbers.
    """

    outcome: Outcome
    reason: Reason
    criterion: str
    text: str


def criterion_text(alpha: float, level: float, min_trials: int, min_spread: float) -> str:
    """The decision rule in words."""
    pct = f"{100 * level:g}%"
    return (
        f"supported when Spearman's rho between m and accuracy is > 0 with one-sided "
        f"permutation p < {alpha:g} and its {pct} bootstrap interval excludes 0; contradicted "
        f"when rho < 0 with one-sided p (for decreasing) < {alpha:g} and the interval excludes "
        f"0; inconclusive otherwise, or with fewer than {min_trials} complete trials, or when "
        f"log m spans less than {min_spread:g} among them."
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
) -> Verdict:
    """Apply the rule of :func:`criterion_text` to the statistics."""
    criterion = criterion_text(alpha, level, min_trials, min_log_width_spread)
    needed = max(min_trials, 3)  # a rank correlation needs three trials at least
    if n_used < needed:
        text = (
            f"Inconclusive: only {n_used} complete trials, fewer than the {needed} "
            f"needed (too few trials)."
        )
        return Verdict("inconclusive", "too_few_trials", criterion, text)
    if correlation is None or log_m_spread < min_log_width_spread:
        text = (
            f"Inconclusive: log m spans only {log_m_spread:.3g} over the {n_used} complete "
            f"trials, less than {min_log_width_spread:g} (too little spread in width m)."
        )
        return Verdict("inconclusive", "no_width_spread", criterion, text)
    rho = correlation.spearman

    def numbers(p: float) -> str:
        return (
            f"Spearman rho = {rho.estimate:+.3f} ({100 * level:g}% CI {rho.ci_low:+.3f} to "
            f"{rho.ci_high:+.3f}; one-sided permutation p = {p:.3g}; Kendall tau = "
            f"{correlation.kendall.estimate:+.3f}) over {n_used} trials"
        )

    clause = _trend_clause(trend, level)
    if rho.estimate > 0 and rho.p_increasing < alpha and rho.ci_low > 0:
        text = f"Supported: accuracy rises with width m, {numbers(rho.p_increasing)}."
        return Verdict("supported", "significant_increase", criterion, text + clause)
    if rho.estimate < 0 and rho.p_decreasing < alpha and rho.ci_high < 0:
        text = f"Contradicted: accuracy falls with width m, {numbers(rho.p_decreasing)}."
        return Verdict("contradicted", "significant_decrease", criterion, text + clause)
    p = rho.p_increasing if rho.estimate >= 0 else rho.p_decreasing
    text = f"Inconclusive: no significant rank correlation, {numbers(p)}."
    return Verdict("inconclusive", "not_significant", criterion, text + clause)
