"""How the best shape and the best accuracy move with the budget, and a prediction for a larger one.

One width sweep answers "which S/C is best at this budget". Sweeps at several budgets answer how
that answer moves: for each budget we take

- the best S/C: the argmax of the quadratic in x = log(S/C) (:mod:`nas_width.analysis.trend`),
  and
- the best accuracy: the same quadratic's value at that S/C, the peak of the fitted curve. The
  highest of the shape means would be biased upward (a maximum over noisy means); with fewer
  than three S/C values there is no curve and the best shape mean is used, and said,

then fit both against log2(budget) with a straight line (scikit-learn) over three budgets or
more and extrapolate to a larger one. The theory (DESIGN.md section 1) says the best S/C is 1 at
every budget, with S* = C* growing as budget^(1/3); the fit says where the data put it. This is
a prediction the paper does not make. When a study at the predicted budget is given too, it is
held out of the fit and checked against the prediction.

Two intervals, covering different things:

- the **prediction interval** (OLS, Student t with k - 2 degrees of freedom for k budgets):
  where a new budget's best S/C or best accuracy should fall, given how far the fitted budgets
  scatter about the line. It includes the risk that the trend is not a straight line as far as
  the fitted points show it; with three budgets it has one degree of freedom and is wide;
- the **bootstrap interval**: trials resampled within each budget and the whole chain redone
  (best per budget, line, extrapolation). It carries the within-budget noise only.

The held-out check is judged against the prediction interval. Accuracy intervals are clipped
to [0, 1]; the point prediction is not (a line that passes 1 says the trend cannot go on).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nas_width.analysis._resample import Array, percentile_ci, streams
from nas_width.analysis.records import TrialRecord
from nas_width.analysis.trend import _best_x, _boot_quadratic

__all__ = ["MIN_BUDGETS", "BudgetPoint", "Prediction", "Scaling", "scaling"]

#: Budgets a scaling fit needs: a line through two points has no residual to test it by.
MIN_BUDGETS = 3

_SEED_SUFFIX = re.compile(r"-s\d+$")


@dataclass(frozen=True)
class BudgetPoint:
    """The best shape of one study (one budget).

    Attributes:
        budget: the budget's value (e.g. FLOPs per sample); ``study``: the study's name.
        trials: COMPLETE trials used (of the asked mixing kind).
        best_ratio: the quadratic's best S/C, clipped to the observed range (exp of best x).
        best_ratio_ci: its bootstrap interval.
        best_accuracy: the quadratic's value at the best S/C (the fitted curve's peak), or the
            best shape mean with fewer than three S/C values (``accuracy_source`` says which).
        best_accuracy_ci: its bootstrap interval (the chain redone on resampled trials).
        best_shape: the shape with the highest mean over its seeds (its key without the seed)
            and its S and C; ``best_shape_mean`` that mean (biased upward as a maximum).
    """

    budget: float
    study: str
    trials: int
    best_ratio: float
    best_ratio_ci: tuple[float, float]
    best_accuracy: float
    best_accuracy_ci: tuple[float, float]
    best_shape: str
    best_tokens: int
    best_channels: int
    best_shape_mean: float = math.nan
    accuracy_source: str = "fitted peak"


@dataclass(frozen=True)
class Prediction:
    """The fitted lines evaluated at ``budget``, and the check against a held-out study.

    Attributes:
        budget: where the lines are evaluated.
        best_ratio: predicted best S/C (2 ** the line in log2); ``best_ratio_pi`` its
            prediction interval, ``best_ratio_ci`` its bootstrap interval (module docstring).
        best_accuracy, best_accuracy_pi, best_accuracy_ci: the same for the best accuracy.
        observed: the held-out study at this budget, when one was given.
        ratio_error_log2: log2(predicted / observed best S/C) (None without ``observed``).
        accuracy_error: predicted - observed best accuracy (None without ``observed``).
        ratio_in_pi, accuracy_in_pi: whether the observed values fall in the prediction
            intervals (the check); ``ratio_in_ci``, ``accuracy_in_ci`` in the bootstrap ones.
    """

    budget: float
    best_ratio: float
    best_ratio_ci: tuple[float, float]
    best_accuracy: float
    best_accuracy_ci: tuple[float, float]
    observed: BudgetPoint | None
    ratio_error_log2: float | None
    accuracy_error: float | None
    ratio_in_ci: bool | None
    accuracy_in_ci: bool | None
    best_ratio_pi: tuple[float, float] = (math.nan, math.nan)
    best_accuracy_pi: tuple[float, float] = (math.nan, math.nan)
    ratio_in_pi: bool | None = None
    accuracy_in_pi: bool | None = None


@dataclass(frozen=True)
class Scaling:
    """Best S/C and best accuracy against log2(budget): the points, the lines, a prediction.

    Attributes:
        points: one per fitted budget, ascending.
        ratio_slope, ratio_intercept: log2(best S/C) = intercept + slope * log2(budget).
        accuracy_slope, accuracy_intercept: best accuracy = intercept + slope * log2(budget).
        prediction: the lines at the asked budget (None when none was asked).
        mixing: the mixing kind analysed (None: all kinds pooled).
        settings: n_boot, seed, level.
    """

    points: tuple[BudgetPoint, ...]
    ratio_slope: float
    ratio_intercept: float
    accuracy_slope: float
    accuracy_intercept: float
    prediction: Prediction | None
    mixing: str | None
    settings: dict[str, float | int | None]


def _used(records: Sequence[TrialRecord], mixing: str | None) -> list[TrialRecord]:
    return [
        r
        for r in records
        if r.state == "COMPLETE"
        and r.accuracy is not None
        and math.isfinite(r.accuracy)
        and r.S > 0
        and r.C > 0
        and (mixing is None or r.mixing == mixing)
    ]


class _Budget:
    """One budget's trials as arrays, and its best S/C and best accuracy on any resample."""

    def __init__(self, records: list[TrialRecord]) -> None:
        self.S = np.array([r.S for r in records], dtype=np.float64)
        self.C = np.array([r.C for r in records], dtype=np.float64)
        self.x = np.log(self.S / self.C)
        self.acc = np.array([r.accuracy for r in records], dtype=np.float64)
        keys = [_SEED_SUFFIX.sub("", r.shape) or f"{r.mixing}-S{r.S}-C{r.C}" for r in records]
        self.names, codes = np.unique(np.array(keys), return_inverse=True)
        self.shape = codes.astype(np.int64)
        self.lo, self.hi = float(self.x.min()), float(self.x.max())

    @property
    def curved(self) -> bool:
        """Three S/C values or more: a quadratic, hence a fitted peak, exists."""
        return bool(np.unique(self.x).size >= 3)

    def best(self, boot: npt.NDArray[np.int64]) -> tuple[Array, Array]:
        """(best x, accuracy there) per resample row: the quadratic's argmax over the observed
        range and its value (the peak of the fitted curve). Without a curve (fewer than three
        S/C values), the x and mean of the best shape."""
        if not self.curved:
            idx = [self.best_shape_index(row) for row in boot]
            return self.x[idx], np.array([np.nanmax(self.shape_means(row)) for row in boot])
        coef = _boot_quadratic(self.x, self.acc, boot)
        x, peak = np.full(boot.shape[0], np.nan), np.full(boot.shape[0], np.nan)
        ok = np.isfinite(coef).all(axis=1)
        x[ok] = _best_x(coef[ok], self.lo, self.hi)
        peak[ok] = coef[ok, 0] + coef[ok, 1] * x[ok] + coef[ok, 2] * x[ok] ** 2
        return x, peak

    def best_shape_index(self, rows: npt.NDArray[np.int64]) -> int:
        """The trial index of a shape with the highest mean accuracy among ``rows``."""
        means = self.shape_means(rows)
        best = int(np.nanargmax(means))
        return int(rows[np.flatnonzero(self.shape[rows] == best)[0]])

    def shape_means(self, rows: npt.NDArray[np.int64]) -> Array:
        n = self.names.size
        total = np.bincount(self.shape[rows], weights=self.acc[rows], minlength=n)
        count = np.bincount(self.shape[rows], minlength=n)
        with np.errstate(invalid="ignore", divide="ignore"):
            means: Array = np.where(count > 0, total / np.maximum(count, 1), np.nan)
        return means


def _point(
    budget: float, study: str, data: _Budget, boot: npt.NDArray[np.int64], level: float
) -> tuple[BudgetPoint, Array, Array]:
    everything = np.arange(data.acc.size)[None, :]
    xs, peaks = data.best(everything)
    x, peak = float(xs[0]), float(peaks[0])
    boot_x, boot_acc = data.best(boot)
    means = data.shape_means(everything[0])
    best = int(np.nanargmax(means))
    member = int(np.flatnonzero(data.shape == best)[0])
    ci_x = percentile_ci(boot_x, level)
    point = BudgetPoint(
        budget=budget,
        study=study,
        trials=int(data.acc.size),
        best_ratio=math.exp(x),
        best_ratio_ci=(math.exp(ci_x[0]), math.exp(ci_x[1])),
        best_accuracy=peak,
        best_accuracy_ci=percentile_ci(boot_acc, level),
        best_shape=str(data.names[best]),
        best_tokens=int(data.S[member]),
        best_channels=int(data.C[member]),
        best_shape_mean=float(means[best]),
        accuracy_source="fitted peak" if data.curved else "best shape mean",
    )
    return point, boot_x / math.log(2.0), boot_acc


def _unit(interval: tuple[float, float]) -> tuple[float, float]:
    """An accuracy interval clipped to [0, 1]: a straight line in log2(budget) does not know
    that accuracy stops at 1."""
    return max(0.0, interval[0]), min(1.0, interval[1])


def _inside(value: float, interval: tuple[float, float]) -> bool:
    return interval[0] <= value <= interval[1]


def _line(t: Array, y: Array) -> tuple[float, float]:
    """(slope, intercept) of the least-squares line y ~ t, by scikit-learn."""
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit(t[:, None], y)
    return float(model.coef_[0]), float(model.intercept_)


def _prediction_interval(t: Array, y: Array, at: float, level: float) -> tuple[float, float]:
    """The OLS prediction interval of a new y at ``at`` for the line y ~ t (k points):
    fit +- t_{k-2} s sqrt(1 + 1/k + (at - mean t)^2 / Sxx), s from the residuals
    (scipy.stats.linregress and the Student t)."""
    from scipy import stats

    k = t.size
    fit = stats.linregress(t, y)
    resid = y - (fit.intercept + fit.slope * t)
    s = math.sqrt(float(resid @ resid) / (k - 2))
    sxx = float(((t - t.mean()) ** 2).sum())
    half = (
        stats.t.ppf(0.5 + level / 2, k - 2) * s * math.sqrt(1 + 1 / k + (at - t.mean()) ** 2 / sxx)
    )
    centre = fit.intercept + fit.slope * at
    return float(centre - half), float(centre + half)


def _boot_lines(t: Array, ys: Array, at: float) -> Array:
    """The least-squares line through each row of ``ys`` (r, k) at ``t`` (k,), evaluated at
    ``at`` (NaN rows stay NaN)."""
    tc = t - t.mean()
    slope = (ys - ys.mean(axis=1, keepdims=True)) @ tc / float(tc @ tc)
    out: Array = ys.mean(axis=1) + slope * (at - t.mean())
    return out


def scaling(
    studies: Mapping[str, tuple[float, Sequence[TrialRecord]]],
    *,
    predict_at: float | None = None,
    mixing: str | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> Scaling:
    """Fit best S/C and best accuracy against log2(budget) over ``studies`` and predict.

    Args:
        studies: study name -> (budget value, its trials). All share one budget metric.
        predict_at: evaluate the lines at this budget; a study at exactly this budget is held
            out of the fit and used as the check.
        mixing: use this mixing kind only (default: all kinds pooled).
        n_boot: bootstrap resamples per budget; seed: seeds them; level: interval level.

    Raises:
        ValueError: fewer than three budgets to fit (two points always lie on a line, so
            nothing would test it), or a budget without a usable trial.
    """
    fit: list[tuple[float, str, _Budget]] = []
    held: tuple[float, str, _Budget] | None = None
    for name, (budget, records) in studies.items():
        used = _used(records, mixing)
        if not used:
            kind = f" of mixing kind {mixing!r}" if mixing else ""
            raise ValueError(f"study {name!r} has no finished trial{kind} to fit")
        entry = (float(budget), name, _Budget(used))
        if predict_at is not None and math.isclose(budget, predict_at, rel_tol=1e-9):
            held = entry
        else:
            fit.append(entry)
    fit.sort(key=lambda e: e[0])
    if len({b for b, _, _ in fit}) < MIN_BUDGETS:
        raise ValueError(
            f"a scaling fit needs studies at {MIN_BUDGETS} budgets or more (two points always "
            f"lie on a line), got {len({b for b, _, _ in fit})} to fit"
        )
    rngs = streams(seed, len(fit) + 1)
    points, boot_ratio, boot_acc = [], [], []
    for (budget, name, data), rng in zip(fit, rngs, strict=False):
        boot = rng.integers(0, data.acc.size, size=(n_boot, data.acc.size))
        point, r, a = _point(budget, name, data, boot, level)
        points.append(point)
        boot_ratio.append(r)
        boot_acc.append(a)
    t = np.log2([p.budget for p in points])
    log_ratio = np.log2([p.best_ratio for p in points])
    ratio_slope, ratio_intercept = _line(t, log_ratio)
    acc_slope, acc_intercept = _line(t, np.array([p.best_accuracy for p in points]))

    prediction = None
    if predict_at is not None:
        at = math.log2(predict_at)
        pred_ratio = _boot_lines(t, np.column_stack(boot_ratio), at)
        pred_acc = _boot_lines(t, np.column_stack(boot_acc), at)
        ci_r = percentile_ci(pred_ratio, level)
        ratio_ci = (2.0 ** ci_r[0], 2.0 ** ci_r[1])
        acc_ci = _unit(percentile_ci(pred_acc, level))
        ratio = 2.0 ** (ratio_intercept + ratio_slope * at)
        accuracy = acc_intercept + acc_slope * at
        pi_r = _prediction_interval(t, log_ratio, at, level)
        ratio_pi = (2.0 ** pi_r[0], 2.0 ** pi_r[1])
        acc_pi = _unit(
            _prediction_interval(t, np.array([p.best_accuracy for p in points]), at, level)
        )
        observed = None
        if held is not None:
            budget, name, data = held
            boot = rngs[-1].integers(0, data.acc.size, size=(n_boot, data.acc.size))
            observed = _point(budget, name, data, boot, level)[0]
        prediction = Prediction(
            budget=float(predict_at),
            best_ratio=ratio,
            best_ratio_ci=ratio_ci,
            best_accuracy=accuracy,
            best_accuracy_ci=acc_ci,
            observed=observed,
            ratio_error_log2=None if observed is None else math.log2(ratio / observed.best_ratio),
            accuracy_error=None if observed is None else accuracy - observed.best_accuracy,
            ratio_in_ci=None
            if observed is None
            else ratio_ci[0] <= observed.best_ratio <= ratio_ci[1],
            accuracy_in_ci=None
            if observed is None
            else acc_ci[0] <= observed.best_accuracy <= acc_ci[1],
            best_ratio_pi=ratio_pi,
            best_accuracy_pi=acc_pi,
            ratio_in_pi=None if observed is None else _inside(observed.best_ratio, ratio_pi),
            accuracy_in_pi=None if observed is None else _inside(observed.best_accuracy, acc_pi),
        )
    return Scaling(
        points=tuple(points),
        ratio_slope=ratio_slope,
        ratio_intercept=ratio_intercept,
        accuracy_slope=acc_slope,
        accuracy_intercept=acc_intercept,
        prediction=prediction,
        mixing=mixing,
        settings={"n_boot": n_boot, "seed": seed, "level": level},
    )
