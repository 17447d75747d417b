"""Mixing kinds compared at the matched budget: accuracy per kind, differences between kinds.

Every kind (Mixer, RP-Mixer, Monarch, SW-MLP) is held to the same budget by the search, so
their accuracies are directly comparable. A difference between two kinds is paired when the
study ran the same shapes for both: the same shape key without its kind prefix (S, patch,
gamma, depth; C is solved from the budget) and the same seed. Pairing removes the shape and
seed effects that both kinds share, so its interval is narrower than the unpaired one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import numpy as np

from nas_width.analysis._resample import Array, percentile_ci
from nas_width.analysis.inference import unit_key
from nas_width.analysis.records import TrialRecord
from nas_width.kinds import KINDS

__all__ = ["KindDifference", "KindSummary", "Kinds", "compare_kinds"]

#: Fewest matched (shape, seed) pairs for a paired difference.
MIN_PAIRS = 2


@dataclass(frozen=True)
class KindSummary:
    """Accuracy of one mixing kind over all its used trials (shapes and seeds).

    Attributes:
        std: sample standard deviation (ddof=1; NaN for one trial).
        n_shapes, n_seeds: distinct shapes (the unit of replication: seeds and patch grids of
            one S and C merged, :func:`~nas_width.analysis.inference.unit_key`) and seeds.
        best_shape: the shape with the highest mean accuracy over its replicates, and that mean,
            the standard deviation over its seeds (NaN for one seed) and its number of trials.
    """

    kind: str
    n: int
    n_shapes: int
    n_seeds: int
    mean: float
    std: float
    min: float
    max: float
    best_shape: str
    best_shape_mean: float
    best_shape_std: float
    best_shape_n: int


@dataclass(frozen=True)
class KindDifference:
    """mean accuracy of ``a`` minus that of ``b``, with a percentile bootstrap interval.

    Attributes:
        method: "paired" (mean of per-match differences over ``n_pairs`` matched shape-seed
            pairs, resampling pairs) or "unpaired" (difference of the two means, resampling
            each kind's trials separately).
        n_a, n_b: trials of each kind that entered the difference.
    """

    a: str
    b: str
    difference: float
    ci_low: float
    ci_high: float
    method: Literal["paired", "unpaired"]
    n_pairs: int
    n_a: int
    n_b: int


@dataclass(frozen=True)
class Kinds:
    """Per-kind summaries (registered kinds in their order, :mod:`nas_width.kinds`, then others
    by name) and the difference of every pair of kinds."""

    summaries: tuple[KindSummary, ...]
    differences: tuple[KindDifference, ...]


def _std(values: Array) -> float:
    return float(values.std(ddof=1)) if values.size > 1 else float("nan")


def _summary(kind: str, records: Sequence[TrialRecord]) -> KindSummary:
    acc = np.array([r.accuracy for r in records], dtype=np.float64)
    by_shape: dict[str, list[float]] = defaultdict(list)
    for r in records:
        by_shape[unit_key(r)].append(float(r.accuracy or 0.0))
    best = max(sorted(by_shape), key=lambda k: float(np.mean(by_shape[k])))
    best_acc = np.array(by_shape[best])
    return KindSummary(
        kind=kind,
        n=acc.size,
        n_shapes=len(by_shape),
        n_seeds=len({r.seed for r in records}),
        mean=float(acc.mean()),
        std=_std(acc),
        min=float(acc.min()),
        max=float(acc.max()),
        best_shape=best,
        best_shape_mean=float(best_acc.mean()),
        best_shape_std=_std(best_acc),
        best_shape_n=best_acc.size,
    )


def _by_match(records: Sequence[TrialRecord]) -> dict[tuple[str, int], float]:
    """Accuracy per (shape without kind, seed); repeated trials of one match are averaged."""
    groups: dict[tuple[str, int], list[float]] = defaultdict(list)
    for r in records:
        groups[r.match_key].append(float(r.accuracy or 0.0))
    return {k: float(np.mean(v)) for k, v in groups.items()}


def _difference(
    a: str,
    b: str,
    rec_a: Sequence[TrialRecord],
    rec_b: Sequence[TrialRecord],
    rng: np.random.Generator,
    n_boot: int,
    level: float,
) -> KindDifference:
    match_a, match_b = _by_match(rec_a), _by_match(rec_b)
    common = sorted(set(match_a) & set(match_b))
    if len(common) >= MIN_PAIRS:
        d = np.array([match_a[k] - match_b[k] for k in common])
        boot = d[rng.integers(0, d.size, size=(n_boot, d.size))].mean(axis=1)
        lo, hi = percentile_ci(boot, level)
        n_a = sum(r.match_key in match_b for r in rec_a)
        n_b = sum(r.match_key in match_a for r in rec_b)
        return KindDifference(a, b, float(d.mean()), lo, hi, "paired", d.size, n_a, n_b)
    xa = np.array([r.accuracy for r in rec_a], dtype=np.float64)
    xb = np.array([r.accuracy for r in rec_b], dtype=np.float64)
    boot_a = xa[rng.integers(0, xa.size, size=(n_boot, xa.size))].mean(axis=1)
    boot_b = xb[rng.integers(0, xb.size, size=(n_boot, xb.size))].mean(axis=1)
    lo, hi = percentile_ci(boot_a - boot_b, level)
    diff = float(xa.mean() - xb.mean())
    return KindDifference(a, b, diff, lo, hi, "unpaired", 0, xa.size, xb.size)


def _order(kind: str) -> tuple[int, str]:
    names = list(KINDS)
    return (names.index(kind) if kind in names else len(names), kind)


def compare_kinds(
    records: Sequence[TrialRecord],
    *,
    n_boot: int,
    rng: np.random.Generator,
    level: float = 0.95,
) -> Kinds:
    """Summaries and pairwise differences of the mixing kinds among ``records`` (all used:
    COMPLETE with an accuracy). Differences are ``a - b`` with ``a`` earlier in the order."""
    groups: dict[str, list[TrialRecord]] = defaultdict(list)
    for r in records:
        groups[r.mixing].append(r)
    kinds = sorted(groups, key=_order)
    pairs = list(combinations(kinds, 2))
    pair_rngs = rng.spawn(len(pairs))  # one stream per pair
    diffs = tuple(
        _difference(a, b, groups[a], groups[b], g, n_boot, level)
        for (a, b), g in zip(pairs, pair_rngs, strict=True)
    )
    return Kinds(tuple(_summary(k, groups[k]) for k in kinds), diffs)
