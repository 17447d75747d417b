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

__all__ = ["MAX_HIDDEN_SHIFT", "PRECISION", "Budget", "Metric", "parse_budget", "solve"]

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


#: What the solver aims for where whole numbers allow it: within 0.5% of the budget.
PRECISION = 0.005
#: How far the solver may move a hidden width off round(gamma*n) to hold the budget.
MAX_HIDDEN_SHIFT = 0.1


@dataclass(frozen=True)
class _Fit:
    """One candidate (C, D_S, D_C) and how well it holds the budget."""

    config: MixerConfig  # C set; the hidden widths below not yet applied
    error: float
    shift: float  # the larger relative move of D_S or D_C off round(gamma*n)
    hidden: tuple[int, int] | None = None  # (D_S, D_C), or the gammas' own

    def solved(self) -> MixerConfig:
        """The config with the hidden widths set (only those off round(gamma*n))."""
        if self.hidden is None:
            return self.config
        n_s, n_c = _nominal(self.config)
        h_s, h_c = self.hidden
        return self.config.replace(
            hidden_token=None if h_s == n_s else h_s, hidden_channel=None if h_c == n_c else h_c
        )

    def rank(self, aim: float) -> tuple[int, float, float]:
        """Within ``aim``: the smallest move of the hidden widths first; else the nearest."""
        if abs(self.error) <= aim:
            return (0, self.shift, abs(self.error))
        return (1, abs(self.error), self.shift)


def _nominal(config: MixerConfig) -> tuple[int, int]:
    """round(gamma_S*S) and round(gamma_C*C): the hidden widths the gammas alone give."""
    bare = config.replace(hidden_token=None, hidden_channel=None)
    return bare.token_hidden, bare.channel_hidden


def _fits(config: MixerConfig, spec: Budget) -> list[_Fit]:
    """For C = ``config.channels``, hidden widths D_S and D_C each within 10% of round(gamma*n):
    for every value of the narrower window, the two values of the wider one either side of the
    budget (the count grows with both, so a bisection finds them)."""
    n_s, n_c = _nominal(config)
    k_s, k_c = int(MAX_HIDDEN_SHIFT * n_s), int(MAX_HIDDEN_SHIFT * n_c)
    s_range = range(max(1, n_s - k_s), n_s + k_s + 1)
    c_range = range(max(1, n_c - k_c), n_c + k_c + 1)
    token_outer = len(s_range) <= len(c_range)
    outer, inner = (s_range, c_range) if token_outer else (c_range, s_range)

    def widths(a: int, b: int) -> tuple[int, int]:
        return (a, b) if token_outer else (b, a)

    def count(h_s: int, h_c: int) -> int:
        counts = closed_form(config, token_hidden=h_s, channel_hidden=h_c)
        return int(getattr(counts, spec.metric))

    found = []
    for a in outer:
        lo, hi = inner.start, inner.stop - 1
        while lo < hi:  # the smallest inner width whose count reaches the budget
            mid = (lo + hi) // 2
            if count(*widths(a, mid)) >= spec.value:
                hi = mid
            else:
                lo = mid + 1
        for b in {max(inner.start, lo - 1), lo}:
            h_s, h_c = widths(a, b)
            shift = max(abs(h_s - n_s) / n_s, abs(h_c - n_c) / n_c)
            error = spec.error(closed_form(config, token_hidden=h_s, channel_hidden=h_c))
            found.append(_Fit(config, error, shift, (h_s, h_c)))
    return found


def _best_fit(config: MixerConfig, spec: Budget) -> _Fit:
    """The (C, D_S, D_C) that holds ``spec`` best: C nearest the budget at the gammas' hidden
    widths when that is within :data:`PRECISION` (or the tolerance, if tighter); otherwise C
    and its neighbours with hidden widths moved as little as reaches it."""
    base = config.replace(hidden_token=None, hidden_channel=None)

    def count(c: int) -> int:
        return int(getattr(closed_form(base, channels=c), spec.metric))

    channels = _nearest_channels(count, spec.value)
    plain = base.replace(channels=channels)
    first = _Fit(plain, spec.error(closed_form(plain)), 0.0)
    aim = min(PRECISION, spec.tolerance)
    if abs(first.error) <= aim or channels >= _MAX_C:
        return first
    fits = [first]
    for c in range(max(1, channels - 1), channels + 2):
        fits += _fits(base.replace(channels=c), spec)
    return min(fits, key=lambda f: f.rank(aim))


def solve(
    config: MixerConfig, budget: str | Budget, tolerance: float = DEFAULT_TOLERANCE
) -> MixerConfig:
    """``config`` with ``channels`` (and, where needed, hidden widths) set to meet ``budget``.

    S (from input_shape and patch), the gammas, depth and mixing stay as given. Whole numbers
    of channels step over a narrow budget where C is small (at C = 29 one channel is ~4% of
    the connections), so where C alone misses the budget by more than :data:`PRECISION`, the
    solver also moves the hidden widths D_S = round(gamma_S*S) and D_C = round(gamma_C*C) by
    as little as holds it (at most 10%), and records them in ``hidden_token`` and
    ``hidden_channel``. The search uses the closed-form counts; the result is then counted
    with fvcore (cached), which must agree.

    Raises:
        BudgetError: the budget is malformed, or no C meets it within the tolerance (the
            message gives the nearest count and its error).

    Example:
        >>> from nas_width import MixerConfig, solve
        >>> cfg = MixerConfig(input_shape=(1, 8, 8), patch=(2, 2), channels=1)
        >>> solve(cfg, "params=20k").channels
        45
    """
    spec = parse_budget(budget, tolerance)
    fit = _best_fit(config, spec)
    solved = fit.solved()
    counts = closed_form(solved)
    got = int(getattr(counts, spec.metric))
    if not spec.holds(counts):
        # Refused on the closed form, before fvcore builds the model: a budget beyond any C
        # would otherwise build (and allocate) the largest C tried.
        raise BudgetError(
            f"budget {spec} cannot be met within {spec.tolerance:.0%} at S={config.tokens}, "
            f"mixing={config.mixing}: nearest is C={solved.channels} with {_human(got)} "
            f"({fit.error:+.1%}){_why(solved, fit.error, spec)}"
        )
    measured = measure(solved)
    if getattr(measured, spec.metric) != got:
        raise RuntimeError(f"fvcore and the closed form disagree on {spec.metric} for {solved}")
    return solved


def _why(solved: MixerConfig, error: float, spec: Budget) -> str:
    """Why no C holds the budget, beyond the nearest count."""
    if solved.channels >= _MAX_C:
        return ": beyond any C"
    if solved.channels == 1 and error > 0:
        return ": even C = 1 is over the budget (S too large for it)"
    step = solved.channels + (1 if error < 0 else -1)
    other = spec.error(closed_form(solved.replace(hidden_channel=None), channels=step))
    return (
        f"; C={step} gives {other:+.1%}: one channel steps over the budget even with the "
        f"hidden widths moved by up to {MAX_HIDDEN_SHIFT:.0%}"
    )
