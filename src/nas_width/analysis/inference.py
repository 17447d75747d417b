"""Inference by shape: the unit of replication of a width study is the shape, not the trial.

Seeds of one shape, and patch grids that give the same S and C, are replicates of one design
point (one effective width m = S*C); treating them as independent trials inflates every test
(pseudo-replication). Here accuracies are averaged per shape first; the permutation test then
permutes shape means (exact under "no width effect": the means are exchangeable), and the
interval comes from a hierarchical bootstrap that resamples shapes, then seeds within each.
The permutation tests are ``scipy.stats.permutation_test``; the rank statistics are checked
against ``scipy.stats.spearmanr`` and ``kendalltau`` in the tests.

A study names its **primary** test in advance (mixing kind, statistic, metric); the other tests
of the family are secondary and Holm-corrected.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nas_width.analysis._resample import Array, kendall_rows, percentile_ci, spearman_rows
from nas_width.analysis.records import TrialRecord

__all__ = [
    "FamilyResult",
    "PrimaryTest",
    "RankStat",
    "ShapeMean",
    "holm",
    "run_family",
    "shape_means",
    "shape_rank_test",
]

Statistic = Literal["spearman", "kendall"]
#: A shape key: kind, S, patch, gammas and depth, then an optional seed and Pareto fraction.
_KEY = re.compile(r"^(?P<kind>.+?)-S(?P<S>\d+)-p[\dx]+-(?P<rest>.+?)(?:-s\d+)?(?:-f[\d.]+)?$")
_ROWS: dict[str, Callable[[Array, Array], Array]] = {
    "spearman": spearman_rows,
    "kendall": kendall_rows,
}


@dataclass(frozen=True)
class PrimaryTest:
    """The test a study names before its run: the rank correlation ``statistic`` between
    m and ``metric`` over the shapes of one mixing ``kind`` ("all": every kind pooled)."""

    kind: str = "mixer"
    statistic: Statistic = "spearman"
    metric: str = "val_accuracy"

    def describe(self) -> str:
        kind = "every kind pooled" if self.kind == "all" else self.kind
        return f"{self.statistic} correlation of m with {self.metric}, {kind}, by shape"


@dataclass(frozen=True)
class ShapeMean:
    """One shape (the unit of replication): its accuracy averaged over its replicates.

    Attributes:
        key: kind, S, C, gammas and depth (patch grids of one S and seeds merged).
        mixing, S, C, m: the shape in the paper's letters, m = S*C.
        accuracies: the replicates' accuracies (seeds, patch grids), in trial order.
    """

    key: str
    mixing: str
    S: int
    C: int
    m: int
    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def n(self) -> int:
        return len(self.accuracies)


def unit_key(r: TrialRecord) -> str:
    """The shape a trial replicates: its key without the patch grid, the seed or a Pareto
    fraction, with C (solved) added; records without a key fall back to kind, S and C."""
    match = _KEY.match(r.shape)
    if match is None:
        return f"{r.mixing}-S{r.S}-C{r.C}"
    return f"{match['kind']}-S{match['S']}-C{r.C}-{match['rest']}"


def shape_means(records: Sequence[TrialRecord]) -> list[ShapeMean]:
    """The used records grouped by :func:`unit_key`, ordered by m then key (deterministic)."""
    groups: dict[str, list[TrialRecord]] = {}
    for r in records:
        if r.accuracy is not None:
            groups.setdefault(unit_key(r), []).append(r)
    units = [
        ShapeMean(key, rs[0].mixing, rs[0].S, rs[0].C, rs[0].m,
                  tuple(float(r.accuracy) for r in rs if r.accuracy is not None))
        for key, rs in groups.items()
    ]  # fmt: skip
    return sorted(units, key=lambda u: (u.m, u.key))


def _rng_kwarg(rng: np.random.Generator) -> dict[str, Any]:
    """SciPy 1.15 renamed ``random_state`` to ``rng``; both take a Generator."""
    params = inspect.signature(_permutation_test()).parameters
    return {"rng": rng} if "rng" in params else {"random_state": rng}


def _permutation_test() -> Any:
    from scipy.stats import permutation_test

    return permutation_test


@dataclass(frozen=True)
class RankStat:
    """One rank correlation between m and accuracy.

    Attributes:
        name: "spearman" or "kendall".
        estimate: the statistic over the points (shape means, or trials for the trial-level
            reference of :func:`~nas_width.analysis.correlation.rank_correlation`).
        p_increasing: one-sided permutation p-value for "accuracy rises with m"
            (H0: accuracy is exchangeable across the points, i.e. unrelated to m):
            (1 + #{shuffles with statistic >= observed}) / (1 + n_perm), or exact over
            every permutation when there are fewer.
        p_decreasing: the same, one-sided for "accuracy falls with m" (statistic <= observed).
        ci_low, ci_high: percentile bootstrap interval: shapes resampled, then replicates
            within each shape, for a shape-level statistic (it covers the sampling variation
            from both the choice of shapes and the seeds); trials for a trial-level one.
        n_boot_valid: resamples where the statistic was defined (m and accuracy not constant
            in the resample); the interval uses these.
    """

    name: Statistic
    estimate: float
    p_increasing: float
    p_decreasing: float
    ci_low: float
    ci_high: float
    n_boot_valid: int

    @property
    def p_two_sided(self) -> float:
        """min(1, 2 * the smaller one-sided p): the verdict's p-value."""
        return min(1.0, 2.0 * min(self.p_increasing, self.p_decreasing))


def _p_values(
    m: Array, means: Array, rows: Callable[[Array, Array], Array], n_perm: int, seed: int
) -> tuple[float, float]:
    """One-sided permutation p-values (increasing, decreasing) with SciPy's convention. Only
    the shape means are permuted (m stays), so there are K! orderings and the test is exact
    when ``n_perm`` covers them all."""
    n = m.size

    def statistic(y: Array, axis: int = -1) -> Array:
        batch = np.reshape(y, (-1, n))
        return rows(np.broadcast_to(m, batch.shape), batch).reshape(np.shape(y)[:-1])

    out = []
    for alternative in ("greater", "less"):
        result = _permutation_test()(
            (means,), statistic, permutation_type="pairings", vectorized=True,
            n_resamples=n_perm, alternative=alternative,
            **_rng_kwarg(np.random.default_rng(seed)),
        )  # fmt: skip
        out.append(float(result.pvalue))
    return out[0], out[1]


def _hierarchical_boot(
    units: Sequence[ShapeMean],
    rows: Callable[[Array, Array], Array],
    n_boot: int,
    rng: np.random.Generator,
) -> Array:
    """The statistic over ``n_boot`` resamples: K shapes drawn with replacement, then each
    drawn shape's replicates drawn with replacement and averaged."""
    K, L = len(units), max(u.n for u in units)
    acc = np.zeros((K, L))
    for i, u in enumerate(units):
        acc[i, : u.n] = u.accuracies
    n_of = np.array([u.n for u in units])
    m = np.array([u.m for u in units], dtype=np.float64)
    drawn = rng.integers(0, K, size=(n_boot, K))  # (B, K) shapes
    sizes = n_of[drawn]  # (B, K)
    picks = (rng.random((n_boot, K, L)) * sizes[..., None]).astype(np.int64)  # (B, K, L)
    values = acc[drawn[..., None], picks]
    used = np.arange(L) < sizes[..., None]
    means = np.where(used, values, 0.0).sum(axis=-1) / sizes
    return rows(m[drawn], means)


def shape_rank_test(
    units: Sequence[ShapeMean],
    statistic: Statistic,
    *,
    n_perm: int,
    n_boot: int,
    seed: int,
    level: float = 0.95,
) -> RankStat:
    """The rank correlation of m with the shape means, tested and bootstrapped by shape."""
    rows = _ROWS[statistic]
    m = np.array([u.m for u in units], dtype=np.float64)
    means = np.array([u.mean for u in units])
    estimate = float(rows(m[None, :], means[None, :])[0])
    perm_seed, boot_seed = np.random.SeedSequence(seed).spawn(2)
    p_inc, p_dec = _p_values(m, means, rows, n_perm, int(perm_seed.generate_state(1)[0]))
    boot = _hierarchical_boot(units, rows, n_boot, np.random.default_rng(boot_seed))
    lo, hi = percentile_ci(boot, level)
    return RankStat(statistic, estimate, p_inc, p_dec, lo, hi, int(np.isfinite(boot).sum()))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (family-wise error control), in the given order."""
    n = len(p_values)
    order = sorted(range(n), key=lambda i: p_values[i])
    adjusted = [0.0] * n
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (n - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class FamilyResult:
    """One test of the family: a shape-level rank correlation of m with accuracy.

    Attributes:
        name: e.g. "spearman, mixer" or "kendall, every kind pooled".
        kind, statistic: the shapes tested (a mixing kind or "all") and the statistic.
        primary: whether this is the study's primary test (named before the run).
        n_shapes, n_trials: the points (shapes) and the trials behind them.
        estimate, p: the statistic and its two-sided permutation p-value.
        p_holm: the Holm-adjusted p-value among the secondary tests (None for the primary,
            which is tested at alpha alone).
        ci_low, ci_high: the hierarchical bootstrap interval (shapes, then seeds).
    """

    name: str
    kind: str
    statistic: Statistic
    primary: bool
    n_shapes: int
    n_trials: int
    estimate: float
    p: float
    p_holm: float | None
    ci_low: float
    ci_high: float


def _result(
    kind: str, test: RankStat, units: Sequence[ShapeMean], primary: bool, p_holm: float | None
) -> FamilyResult:
    label = "every kind pooled" if kind == "all" else kind
    return FamilyResult(
        f"{test.name}, {label}", kind, test.name, primary, len(units),
        sum(u.n for u in units), test.estimate, test.p_two_sided, p_holm, test.ci_low,
        test.ci_high,
    )  # fmt: skip


def run_family(
    records: Sequence[TrialRecord],
    primary: PrimaryTest,
    *,
    n_perm: int,
    n_boot: int,
    seed: int,
    level: float = 0.95,
    known: Mapping[tuple[str, Statistic], RankStat] | None = None,
) -> list[FamilyResult]:
    """The primary test first, then the secondaries with Holm-adjusted p-values: the other
    statistic on the primary's shapes, each other mixing kind alone, and every kind pooled.
    Only complete records with an accuracy and a shape count; a set of shapes too small to
    rank (fewer than three, or one m) gets no test. ``known`` holds tests already computed
    over the same shapes, by (kind, statistic): reused, so a report shows one set of numbers.
    """
    usable = [
        r for r in records
        if r.state == "COMPLETE" and r.accuracy is not None and min(r.S, r.C, r.m) > 0
    ]  # fmt: skip
    kinds = sorted({r.mixing for r in usable})
    other: Statistic = "kendall" if primary.statistic == "spearman" else "spearman"
    plan: list[tuple[str, Statistic]] = [(primary.kind, primary.statistic), (primary.kind, other)]
    plan += [(k, primary.statistic) for k in kinds if k != primary.kind]
    if primary.kind != "all" and len(kinds) > 1:
        plan.append(("all", primary.statistic))
    tested: list[tuple[str, RankStat, list[ShapeMean]]] = []
    for i, (kind, statistic) in enumerate(plan):
        units = shape_means([r for r in usable if kind == "all" or r.mixing == kind])
        if len(units) < 3 or len({u.m for u in units}) < 2:
            continue
        test = (known or {}).get((kind, statistic)) or shape_rank_test(
            units, statistic, n_perm=n_perm, n_boot=n_boot, seed=seed * 101 + i, level=level
        )
        tested.append((kind, test, units))
    is_primary = [i == 0 and (k, t.name) == plan[0] for i, (k, t, _) in enumerate(tested)]
    secondary = [t.p_two_sided for (_, t, _), first in zip(tested, is_primary, strict=True)
                 if not first]  # fmt: skip
    adjusted = iter(holm(secondary))
    return [
        _result(k, t, u, first, None if first else next(adjusted))
        for (k, t, u), first in zip(tested, is_primary, strict=True)
    ]
