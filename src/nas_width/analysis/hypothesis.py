"""The hypothesis test over a width study's trials: :func:`analyze` returns :class:`Analysis`.

Only trials that ran their full recipe count: COMPLETE trials with a finite accuracy and a
shape (S, C > 0). Pruned, failed, running and otherwise unusable trials are listed with the
reason, never used. Everything is plain dataclasses (reports, plots and the CLI present them);
:meth:`Analysis.to_dict` gives JSON-ready data. Results are deterministic for a given seed.

Example:
    >>> from nas_width.analysis import TrialRecord, analyze
    >>> recs = [TrialRecord(i, "COMPLETE", "mixer", S, 16, 16 * S, 0, 0.5 + 0.02 * i)
    ...         for i, S in enumerate([2, 3, 4, 6, 8, 12, 16, 24])]
    >>> a = analyze(recs, n_boot=200, n_perm=200)
    >>> a.verdict.outcome, a.counts.used, round(a.correlation.spearman.estimate, 3)
    ('supported', 8, 1.0)
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from nas_width.analysis._resample import streams
from nas_width.analysis.convergence import Unconverged, unconverged
from nas_width.analysis.correlation import Correlation, shape_correlation
from nas_width.analysis.inference import (
    FamilyResult,
    PrimaryTest,
    RankStat,
    ShapeMean,
    run_family,
    shape_means,
    shape_rank_test,
    unit_key,
)
from nas_width.analysis.kinds import Kinds, compare_kinds
from nas_width.analysis.records import TrialRecord
from nas_width.analysis.trend import Trend, fit_trend
from nas_width.analysis.verdict import Verdict, decide
from nas_width.fileio import plain_json

__all__ = ["Analysis", "Counts", "Excluded", "analyze"]


@dataclass(frozen=True)
class Counts:
    """How many trials were used, pruned, failed, or excluded otherwise (running, waiting,
    COMPLETE without a finite accuracy or a shape, another mixing kind than asked for)."""

    used: int
    pruned: int
    failed: int
    other: int


@dataclass(frozen=True)
class Excluded:
    """A trial left out of the statistics, and why."""

    number: int
    state: str
    reason: str


@dataclass(frozen=True)
class Analysis:
    """The hypothesis test of one width study.

    Attributes:
        counts: used, pruned, failed and other excluded trials; ``excluded`` lists them.
        m_range: (min, max) effective width m among the used trials (None when none).
        log_m_spread: log(max m) - log(min m) among the used trials (0 when none).
        flops_range: (min, max) measured FLOPs of the used trials that recorded them: a check
            that they share one budget (None when none recorded).
        correlation: rank correlation of m with accuracy (None with fewer than three used
            trials or a single m).
        trend: isotonic and quadratic fits, theory's optimum (None when no trial was used).
        kinds: per mixing kind accuracy and the differences between kinds.
        verdict: supported / contradicted / inconclusive, with criterion and numbers: the
            outcome of the primary test.
        settings: the arguments that produced it (seed, resamples, thresholds).
        primary: the test named in advance (kind, statistic, metric).
        tests: the family, primary first, then the secondaries with Holm-adjusted p-values.
        unconverged: the used shapes whose training loss was still falling at the end
            (:mod:`nas_width.analysis.convergence`).
        n_shapes: the used shapes (the unit of replication).
        train_accuracy_range: (min, max) last-epoch training accuracy of the used trials that
            recorded it (None when none did).
        params_correlation: Spearman's rho of the shapes' stored parameters (fvcore, the whole
            model) with their mean accuracy, by shape like the tests (None when a shape lacks
            the count or fewer than three shapes or one count): descriptive, outside the test
            family. Beside rho for m it says whether a trend follows width or capacity.
        lr_counts: (learning rate, used trials) for each rate the used trials trained with,
            smallest first: with a tuned recipe, which rates the shapes chose on validation.
        val_samples: samples per trial of the split the metric is measured on (validation,
            or test for ``test_accuracy``) when every used trial recorded it and the numbers
            agree within 1% (the smallest; None otherwise): accuracies are counts out of it
            (see :meth:`binomial_se`).
    """

    counts: Counts
    excluded: tuple[Excluded, ...]
    m_range: tuple[int, int] | None
    log_m_spread: float
    flops_range: tuple[int, int] | None
    correlation: Correlation | None
    trend: Trend | None
    kinds: Kinds
    verdict: Verdict
    settings: dict[str, Any]
    primary: PrimaryTest = field(default_factory=PrimaryTest)
    tests: tuple[FamilyResult, ...] = ()
    val_samples: int | None = None
    unconverged: tuple[Unconverged, ...] = ()
    n_shapes: int = 0
    train_accuracy_range: tuple[float, float] | None = None
    lr_counts: tuple[tuple[float, int], ...] = ()
    params_correlation: RankStat | None = None

    def binomial_se(self, accuracy: float, replicates: int = 1) -> float | None:
        """The evaluation's binomial standard error of ``accuracy`` measured on ``replicates``
        trials of :attr:`val_samples` samples each: sqrt(p (1 - p) / (replicates * n)). It
        covers the finite validation set only, not the variation between seeds."""
        if self.val_samples is None:
            return None
        return math.sqrt(accuracy * (1.0 - accuracy) / (replicates * self.val_samples))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready plain data: dicts, lists, str, int, float, bool, None (NaN -> None)."""
        plain = plain_json(dataclasses.asdict(self))
        assert isinstance(plain, dict)
        return plain


def _capacity(
    used: Sequence[TrialRecord], units: Sequence[ShapeMean], **kw: Any
) -> RankStat | None:
    """Spearman of stored parameters with the shape means (see ``params_correlation``)."""
    if len(units) < 3 or any(r.params is None for r in used):
        return None
    params = {unit_key(r): r.params for r in used}
    counted = [replace(u, m=int(params[u.key] or 0)) for u in units]  # x: parameters, not m
    if len({u.m for u in counted}) < 2:
        return None
    seed = kw.pop("seed")
    return shape_rank_test(counted, "spearman", seed=seed * 2 + 7, **kw)


def _common_size(sizes: set[int | None]) -> int | None:
    """The samples per trial when the trials agree on it within 1% (K-fold splits differ by
    one): the smallest, so a binomial SE from it is never too small; else None."""
    if not sizes or None in sizes:
        return None
    known = [n for n in sizes if n is not None]
    return min(known) if max(known) <= 1.01 * min(known) else None


def _exclusion(r: TrialRecord, mixing: str | None) -> str | None:
    if r.state == "PRUNED":
        return "pruned"
    if r.state == "FAIL":
        return "failed"
    if r.state != "COMPLETE":
        return f"not finished ({r.state})"
    if r.accuracy is None or not math.isfinite(r.accuracy):
        return "no finite accuracy (none recorded for the study's metric)"
    if r.S <= 0 or r.C <= 0 or r.m <= 0:
        return "no shape (S, C, m)"
    if mixing is not None and r.mixing != mixing:
        return f"mixing kind {r.mixing!r}, not {mixing!r}"
    return None


def analyze(
    records: Iterable[TrialRecord],
    *,
    n_boot: int = 2000,
    n_perm: int = 2000,
    seed: int = 0,
    min_trials: int = 8,
    min_shapes: int = 5,
    min_log_width_spread: float = 0.3,
    alpha: float = 0.05,
    level: float = 0.95,
    m_star: float | None = None,
    mixing: str | None = None,
    primary: PrimaryTest | None = None,
    lr_grid: Sequence[float] = (),
) -> Analysis:
    """Test "accuracy rises with effective width m = S*C at a fixed budget" on ``records``.

    Args:
        records: the study's trials (:func:`~nas_width.analysis.records_from_study`); all
            from one budget. Only COMPLETE trials with an accuracy are used.
        n_boot: bootstrap resamples (of trials) for every interval.
        n_perm: shuffles for the permutation p-values.
        seed: seeds every resampling; equal seeds give equal results.
        min_trials: fewer used trials than this make the verdict inconclusive.
        min_shapes: fewer shapes (seeds and patch grids of one S and C merged) than this make
            it inconclusive too: the shape is the unit of replication.
        min_log_width_spread: a smaller log(max m / min m) makes it inconclusive.
        alpha: the one-sided significance level of the verdict.
        level: the confidence level of the intervals.
        m_star: the theory's m* at S = C for the study's budget, when the caller can compute
            it (e.g. (Omega/gamma)^(2/3) with the paper's per-block Omega, or ``solve`` at
            S = C); without it, m* is the largest m observed among the shapes nearest S = C.
        mixing: test one mixing kind only (pooling kinds mixes their accuracy differences
            into the correlation when kinds cover different m); other kinds are excluded.
        primary: the study's primary test; its kind sets ``mixing`` when that is not given,
            its metric which accuracy every test reads (``test_accuracy``: the held-out
            split at each trial's selected recipe). Default: Spearman of validation accuracy
            over ``mixing`` (or every kind pooled).
        lr_grid: the learning rates each shape chose from (the study's ``[tune]``), kept in
            ``settings`` so that the report can flag choices at the grid's edges.
    """
    if primary is not None and mixing is None and primary.kind != "all":
        mixing = primary.kind
    if primary is None:
        primary = PrimaryTest(kind=mixing or "all")
    records = [r.with_metric(primary.metric) for r in records]
    used: list[TrialRecord] = []
    excluded: list[Excluded] = []
    for r in records:
        why = _exclusion(r, mixing)
        if why is None:
            used.append(r)
        else:
            excluded.append(Excluded(r.number, r.state, why))
    counts = Counts(
        used=len(used),
        pruned=sum(e.reason == "pruned" for e in excluded),
        failed=sum(e.reason == "failed" for e in excluded),
        other=sum(e.reason not in {"pruned", "failed"} for e in excluded),
    )
    _, _, rng_trend, rng_kinds = streams(seed, 4)  # streams 0, 1: the correlation
    S = np.array([r.S for r in used], dtype=np.float64)
    C = np.array([r.C for r in used], dtype=np.float64)
    m = np.array([r.m for r in used], dtype=np.float64)
    acc = np.array([r.accuracy for r in used], dtype=np.float64)
    spread = float(np.log(m.max()) - np.log(m.min())) if used else 0.0
    flops = [r.flops for r in used if r.flops is not None]
    sizes = {r.val_samples for r in used}
    train = [r.train_accuracy for r in used if r.train_accuracy is not None]

    units = shape_means(used)
    correlation = None
    if len(units) >= 3 and len({u.m for u in units}) >= 2:
        correlation = shape_correlation(units, n_perm=n_perm, n_boot=n_boot, seed=seed, level=level)
    params_correlation = _capacity(used, units, n_perm=n_perm, n_boot=n_boot, seed=seed,
                                   level=level)  # fmt: skip
    trend = None
    if used:
        trend = fit_trend(S, C, acc, n_boot=n_boot, rng=rng_trend, m_star=m_star, level=level)
    verdict = decide(
        n_used=len(used),
        log_m_spread=spread,
        correlation=correlation,
        trend=trend,
        alpha=alpha,
        level=level,
        min_trials=min_trials,
        min_log_width_spread=min_log_width_spread,
        min_shapes=min_shapes,
        statistic=primary.statistic,
    )
    known = {}  # the verdict's tests, reused by the family over the same shapes
    if correlation is not None and primary.kind == (mixing or "all"):
        known = {(primary.kind, s.name): s for s in (correlation.spearman, correlation.kendall)}
    settings: dict[str, Any] = {
        "n_boot": n_boot, "n_perm": n_perm, "seed": seed, "min_trials": min_trials,
        "min_shapes": min_shapes,
        "min_log_width_spread": min_log_width_spread, "alpha": alpha, "level": level,
        "m_star": m_star, "mixing": mixing, "lr_grid": [float(v) for v in lr_grid],
    }  # fmt: skip
    return Analysis(
        counts=counts,
        excluded=tuple(excluded),
        m_range=(int(m.min()), int(m.max())) if used else None,
        log_m_spread=spread,
        flops_range=(min(flops), max(flops)) if flops else None,
        correlation=correlation,
        trend=trend,
        kinds=compare_kinds(used, n_boot=n_boot, rng=rng_kinds, level=level),
        verdict=verdict,
        settings=settings,
        primary=primary,
        val_samples=_common_size(sizes),
        unconverged=tuple(unconverged(used)),
        n_shapes=len(units),
        train_accuracy_range=(min(train), max(train)) if train else None,
        params_correlation=params_correlation,
        lr_counts=tuple(sorted(Counter(r.lr for r in used if r.lr is not None).items())),
        tests=tuple(
            run_family(
                records, primary, n_perm=n_perm, n_boot=n_boot, seed=seed, level=level, known=known
            )
        ),
    )
