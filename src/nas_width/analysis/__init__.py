"""Analysis of a width study: does accuracy rise with the effective width m = S*C?

DESIGN.md section 1: at a fixed budget m = S*C is largest at S = C, so "wider and sparser is
better" predicts accuracy rising with m and peaking at S/C = 1. :func:`analyze` tests that on a
study's finished trials with rank correlations (permutation p-values, bootstrap intervals),
isotonic and quadratic fits (scikit-learn), a comparison of mixing kinds and a verdict in
words. It returns plain dataclasses; reports and plots only present them.

numpy is the only import at load time; scikit-learn and Optuna load inside the functions that
use them.
"""

from nas_width.analysis.correlation import Correlation, RankStat
from nas_width.analysis.hypothesis import Analysis, Counts, Excluded, analyze
from nas_width.analysis.kinds import KindDifference, Kinds, KindSummary
from nas_width.analysis.records import TrialRecord, records_from_study
from nas_width.analysis.trend import IsotonicTrend, QuadraticTrend, TheoryOptimum, Trend
from nas_width.analysis.verdict import Verdict

__all__ = [
    "Analysis",
    "Correlation",
    "Counts",
    "Excluded",
    "IsotonicTrend",
    "KindDifference",
    "KindSummary",
    "Kinds",
    "QuadraticTrend",
    "RankStat",
    "TheoryOptimum",
    "Trend",
    "TrialRecord",
    "Verdict",
    "analyze",
    "records_from_study",
]
