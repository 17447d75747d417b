"""Budgets and the channel solver: given S, gammas, depth and mixing, find C.

A budget holds one count of :class:`~nas_width.budget.Measurement` to a target within a
relative tolerance. ``"50k"`` means ``params=50k`` (whole model); the other metrics are
``flops`` (fvcore, per sample), ``mixing_params`` and ``mixing_flops`` (the mixing layers
alone; ``mixing_flops`` is the paper's budget of connections).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

from nas_width.budget.closed_form import Counts, closed_form
from nas_width.budget.measure import Measurement, measure
from nas_width.config import MixerConfig
from nas_width.errors import BudgetError

__all__ = ["Budget", "Metric", "parse_budget", "solve"]

Metric = Literal["params", "flops", "mixing_params", "mixing_flops"]
METRICS: tuple[str, ...] = get_args(Metric)
DEFAULT_TOLERANCE = 0.02
_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_NUMBER = re.compile(r"^\s*([0-9][0-9_]*(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?)\s*([kmgt]?)\s*$", re.I)
_MAX_C = 1 << 20


def _human(n: float) -> str:
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.4g}{suffix}"
    return f"{n:.4g}"


@dataclass(frozen=True)
class Budget:
    """``metric`` held to ``value`` within ``tolerance`` (relative)."""

    metric: Metric
    value: int
    tolerance: float = DEFAULT_TOLERANCE

    def __str__(self) -> str:
        return f"{self.metric}={_human(self.value)}"

    def error(self, counts: Measurement | Counts) -> float:
        """Relative error of ``counts`` against the target (signed)."""
        return float(getattr(counts, self.metric)) / self.value - 1

    def holds(self, counts: Measurement | Counts) -> bool:
        return abs(self.error(counts)) <= self.tolerance


def parse_budget(text: str | Budget, tolerance: float = DEFAULT_TOLERANCE) -> Budget:
    """Parse ``"50k"``, ``"params=100k"``, ``"flops=20M"``, ``"mixing_flops=1.5G"``.

    Suffixes k, M, G, T (any case) scale by powers of 1000; underscores and exponents work.
    """
    if isinstance(text, Budget):
        return text
    if not isinstance(tolerance, (int, float)) or not 0 <= tolerance < 1:
        raise BudgetError(f"budget tolerance must be in [0, 1), got {tolerance!r}")
    raw = str(text)
    metric, sep, amount = raw.strip().partition("=")
    if not sep:
        metric, amount = "params", raw
    metric = metric.strip().lower().replace("-", "_")
    if metric not in METRICS:
        raise BudgetError(f"budget {raw!r}: unknown metric {metric!r} (use {', '.join(METRICS)})")
    match = _NUMBER.match(amount)
    if not match:
        raise BudgetError(f"budget {raw!r}: expected a number like 50k, 2.5M or flops=20M")
    value = float(match.group(1).replace("_", "")) * _SUFFIX[match.group(2).lower()]
    if not math.isfinite(value) or value < 1:
        raise BudgetError(f"budget {raw!r} must be at least 1")
    return Budget(metric, round(value), float(tolerance))  # type: ignore[arg-type]


def _nearest_channels(count: Callable[[int], int], target: int) -> int:
    """The C whose count is nearest ``target``; ``count`` is non-decreasing in C."""
    hi = 1
    while count(hi) < target and hi < _MAX_C:
        hi *= 2
    lo = 1
    while lo < hi:  # smallest C with count(C) >= target
        mid = (lo + hi) // 2
        if count(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    if lo > 1 and target - count(lo - 1) <= count(lo) - target:
        return lo - 1
    return lo


def solve(
    config: MixerConfig, budget: str | Budget, tolerance: float = DEFAULT_TOLERANCE
) -> MixerConfig:
    """``config`` with ``channels`` set so that its measurement meets ``budget``.

    S (from input_shape and patch), the gammas, depth and mixing stay as given. The search uses
    the closed-form counts; the result is then counted with fvcore (cached), which must agree.

    Raises:
        BudgetError: the budget is malformed, or no C meets it within the tolerance.

    Example:
        >>> from nas_width import MixerConfig, solve
        >>> cfg = MixerConfig(input_shape=(1, 8, 8), patch=(2, 2), channels=1)
        >>> solve(cfg, "params=20k").channels
        45
    """
    spec = parse_budget(budget, tolerance)

    def count(c: int) -> int:
        return int(getattr(closed_form(config.replace(channels=c)), spec.metric))

    channels = _nearest_channels(count, spec.value)
    solved = config.replace(channels=channels)
    counts = closed_form(solved)
    got = int(getattr(counts, spec.metric))
    if not spec.holds(counts):
        # Refused on the closed form, before fvcore builds the model: a budget beyond any C
        # would otherwise build (and allocate) the largest C tried.
        raise BudgetError(
            f"budget {spec} cannot be met within {spec.tolerance:.0%} at S={config.tokens}, "
            f"mixing={config.mixing}: nearest is C={channels} with {_human(got)} "
            f"({spec.error(counts):+.1%})"
        )
    measured = measure(solved)
    if getattr(measured, spec.metric) != got:
        raise RuntimeError(f"fvcore and the closed form disagree on {spec.metric} for {solved}")
    return solved
