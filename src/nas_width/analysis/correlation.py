"""Rank correlation between effective width m = S*C and accuracy, with resampling statistics.

At a fixed budget the hypothesis "wider and sparser is better" predicts that accuracy rises
with m. Rank correlations (Spearman's rho, Kendall's tau-b) test that without assuming a
functional form. :func:`shape_correlation` is the one the verdict uses: over shape means
(:mod:`nas_width.analysis.inference`). :func:`rank_correlation` treats every trial as
independent; it is kept as the trial-level reference that the simulation tests show to be
anti-conservative when seeds of one shape are counted as separate points.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from nas_width.analysis._resample import (
    Array,
    kendall_rows,
    percentile_ci,
    spearman_rows,
)
from nas_width.analysis.inference import RankStat, ShapeMean, Statistic, shape_rank_test

STATISTICS: tuple[Statistic, ...] = ("spearman", "kendall")

__all__ = ["Correlation", "RankStat", "rank_correlation", "shape_correlation"]


@dataclass(frozen=True)
class Correlation:
    """Spearman and Kendall correlation of m with accuracy over the used trials.

    Attributes:
        n: the points correlated: shapes (seeds averaged) for :func:`shape_correlation`,
            trials for :func:`rank_correlation`. n_perm: shuffles in the permutation test.
        n_boot: bootstrap resamples. level: the confidence level of the intervals (0.95).
        n_trials: the trials behind the n points.
        unit: "shape" or "trial", what was resampled and permuted.
    """

    n: int
    n_perm: int
    n_boot: int
    level: float
    spearman: RankStat
    kendall: RankStat
    n_trials: int = 0
    unit: Literal["shape", "trial"] = "trial"


def _stat(
    name: Literal["spearman", "kendall"],
    m: Array,
    acc: Array,
    perms: Array,
    boot: npt.NDArray[np.int64],
    level: float,
) -> RankStat:
    rows = spearman_rows if name == "spearman" else kendall_rows
    observed = float(rows(m[None, :], acc[None, :])[0])
    null = rows(np.broadcast_to(m, perms.shape), perms)
    tol = 1e-12
    n_perm = perms.shape[0]
    p_inc = (1 + int(np.sum(null >= observed - tol))) / (1 + n_perm)
    p_dec = (1 + int(np.sum(null <= observed + tol))) / (1 + n_perm)
    resampled = rows(m[boot], acc[boot])
    lo, hi = percentile_ci(resampled, level)
    valid = int(np.isfinite(resampled).sum())
    return RankStat(name, observed, p_inc, p_dec, lo, hi, valid)


def rank_correlation(
    m: Array,
    accuracy: Array,
    *,
    n_perm: int,
    n_boot: int,
    rng_perm: np.random.Generator,
    rng_boot: np.random.Generator,
    level: float = 0.95,
) -> Correlation:
    """Spearman and Kendall correlation of ``m`` with ``accuracy`` (both shape (n,)).

    The same shuffles serve both statistics' permutation tests, and the same bootstrap
    resamples both intervals, so their results are comparable. Deterministic given the
    generators.
    """
    n = m.size
    perms = rng_perm.permuted(np.broadcast_to(accuracy, (n_perm, n)), axis=1)
    boot = rng_boot.integers(0, n, size=(n_boot, n))
    return Correlation(
        n=n,
        n_perm=n_perm,
        n_boot=n_boot,
        level=level,
        spearman=_stat("spearman", m, accuracy, perms, boot, level),
        kendall=_stat("kendall", m, accuracy, perms, boot, level),
        n_trials=n,
    )


def shape_correlation(
    units: Sequence[ShapeMean], *, n_perm: int, n_boot: int, seed: int, level: float = 0.95
) -> Correlation:
    """Spearman and Kendall correlation of m with the shape means, permutation-tested over
    shapes and bootstrapped hierarchically (shapes, then seeds); see
    :func:`~nas_width.analysis.inference.shape_rank_test`."""
    spearman, kendall = (
        shape_rank_test(units, name, n_perm=n_perm, n_boot=n_boot, seed=seed * 2 + stream,
                        level=level)
        for stream, name in enumerate(STATISTICS)
    )  # fmt: skip
    return Correlation(
        n=len(units), n_perm=n_perm, n_boot=n_boot, level=level,
        spearman=spearman, kendall=kendall,
        n_trials=sum(u.n for u in units), unit="shape",
    )  # fmt: skip
