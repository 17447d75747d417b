"""The trend of accuracy against log m and against x = log(S/C), fitted with scikit-learn.

Two fits, both on the used trials (several seeds per shape are separate points):

- an isotonic (monotone) fit of accuracy against log m, in whichever direction fits better;
  the hypothesis predicts the non-decreasing one;
- a quadratic accuracy ~ a + b*x + c*x^2 in x = log(S/C). At a fixed budget m = S*C is largest
  at S = C (x = 0, DESIGN.md section 1), so the hypothesis predicts a peak at x = 0. The
  empirical best S/C is exp(argmax of the quadratic) clipped to the observed x range; when the
  quadratic opens upward (c >= 0) the best is the better end of the range. Its bootstrap
  interval refits the quadratic on resampled trials (the same least squares, vectorized).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from nas_width.analysis._resample import Array, percentile_ci

__all__ = ["IsotonicTrend", "QuadraticTrend", "TheoryOptimum", "Trend", "fit_trend"]


@dataclass(frozen=True)
class IsotonicTrend:
    """Monotone fit of accuracy against log m.

    Attributes:
        log_m: the distinct log m values, ascending.
        fitted: the fit at each of them.
        non_decreasing: True when the non-decreasing fit has the smaller squared error (ties
            and a flat fit count as non-decreasing); False when the non-increasing one does.
        rise: fitted[-1] - fitted[0], the accuracy gained from the narrowest to the widest m.
        r2: the fit's coefficient of determination on the trials.
    """

    log_m: tuple[float, ...]
    fitted: tuple[float, ...]
    non_decreasing: bool
    rise: float
    r2: float


@dataclass(frozen=True)
class QuadraticTrend:
    """accuracy ~ intercept + linear*x + quadratic*x^2, x = log(S/C).

    Attributes:
        x_range: the observed (min, max) of x; the best x is clipped to it.
        opens_downward: quadratic < 0, so the fit has an interior maximum.
        vertex_x: -linear / (2*quadratic), unclipped (None when quadratic == 0).
        best_x: the argmax of the fit on x_range. best_ratio: exp(best_x), the best S/C.
        best_ratio_ci: percentile bootstrap interval of the best S/C.
        accuracy_at_best: the fit's value at best_x.
        n_boot_valid: resamples with at least three distinct x (the quadratic is defined).
    """

    intercept: float
    linear: float
    quadratic: float
    r2: float
    x_range: tuple[float, float]
    opens_downward: bool
    vertex_x: float | None
    best_x: float
    best_ratio: float
    best_ratio_ci: tuple[float, float]
    accuracy_at_best: float
    n_boot_valid: int


@dataclass(frozen=True)
class TheoryOptimum:
    """The theory's optimum S = C (x = 0) and its width m*.

    Attributes:
        ratio: 1.0 (S/C at the optimum). x: 0.0.
        m_star: m* = (Omega/gamma)^(2/3) when the caller gave it (``analyze(m_star=...)``);
            otherwise the largest m observed among the used shapes nearest S = C.
        m_star_source: "given" or "observed".
        nearest_shape: (S, C) of the observed shape nearest S = C (largest m among ties).
        in_best_ratio_ci: whether the empirical best S/C interval contains 1 (None without a
            quadratic).
        accuracy_at_theory: the quadratic's value at x = 0 when 0 is inside the observed
            x range, else None (no extrapolation).
    """

    ratio: float
    x: float
    m_star: float
    m_star_source: str
    nearest_shape: tuple[int, int]
    in_best_ratio_ci: bool | None
    accuracy_at_theory: float | None


@dataclass(frozen=True)
class Trend:
    """Isotonic fit vs log m, quadratic vs log(S/C) (None, with ``note``, when fewer than
    three distinct x were observed), and the theory's optimum next to them."""

    isotonic: IsotonicTrend | None
    quadratic: QuadraticTrend | None
    theory: TheoryOptimum
    note: str


def _r2(y: Array, fitted: Array) -> float:
    ss_tot = float(((y - y.mean()) ** 2).sum())
    ss_res = float(((y - fitted) ** 2).sum())
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else float("nan")


def _isotonic(log_m: Array, acc: Array) -> IsotonicTrend:
    from sklearn.isotonic import IsotonicRegression

    grid = np.unique(log_m)
    fits = []
    for increasing in (True, False):
        model = IsotonicRegression(increasing=increasing).fit(log_m, acc)
        pred = np.asarray(model.predict(log_m), dtype=np.float64)
        fits.append((float(((acc - pred) ** 2).sum()), increasing, model, pred))
    sse_up, _, up, pred_up = fits[0]
    sse_down, _, down, pred_down = fits[1]
    non_decreasing = sse_up <= sse_down + 1e-15
    model, pred = (up, pred_up) if non_decreasing else (down, pred_down)
    on_grid = np.asarray(model.predict(grid), dtype=np.float64)
    return IsotonicTrend(
        log_m=tuple(float(v) for v in grid),
        fitted=tuple(float(v) for v in on_grid),
        non_decreasing=bool(non_decreasing),
        rise=float(on_grid[-1] - on_grid[0]),
        r2=_r2(acc, pred),
    )


def _best_x(coef: Array, lo: float, hi: float) -> Array:
    """argmax over [lo, hi] of a + b x + c x^2 for each row (a, b, c) of ``coef``."""
    a, b, c = coef[:, 0], coef[:, 1], coef[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        vertex = np.clip(-b / (2.0 * c), lo, hi)
    at_lo, at_hi = a + b * lo + c * lo**2, a + b * hi + c * hi**2
    end = np.where(at_hi > at_lo, hi, lo)
    out: Array = np.where(c < 0, vertex, end)
    return out


def _boot_quadratic(x: Array, y: Array, boot: npt.NDArray[np.int64]) -> Array:
    """Least-squares (a, b, c) for each resample (row of indices); NaN rows where fewer than
    three distinct x were drawn. The normal equations in the moments of x, solved batched."""
    X, Y = x[boot], y[boot]
    distinct = 1 + (np.diff(np.sort(X, axis=1), axis=1) > 1e-12).sum(axis=1)
    ok = distinct >= 3
    X, Y = X[ok], Y[ok]
    p = np.stack([(X**k).sum(axis=1) for k in range(5)], axis=1)
    gram = np.stack([p[:, 0:3], p[:, 1:4], p[:, 2:5]], axis=1)
    rhs = np.stack([(Y * X**k).sum(axis=1) for k in range(3)], axis=1)
    coef = np.full((boot.shape[0], 3), np.nan)
    coef[ok] = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0]
    return coef


def _quadratic(x: Array, acc: Array, boot: npt.NDArray[np.int64], level: float) -> QuadraticTrend:
    from sklearn.linear_model import LinearRegression

    features = np.column_stack([x, x**2])
    model = LinearRegression().fit(features, acc)
    a = float(model.intercept_)
    b, c = float(model.coef_[0]), float(model.coef_[1])
    lo, hi = float(x.min()), float(x.max())
    best = float(_best_x(np.array([[a, b, c]]), lo, hi)[0])
    coef = _boot_quadratic(x, acc, boot)
    valid = np.isfinite(coef).all(axis=1)
    boot_best = np.full(coef.shape[0], np.nan)
    boot_best[valid] = _best_x(coef[valid], lo, hi)
    ci_x = percentile_ci(boot_best, level)
    pred = np.asarray(model.predict(features), dtype=np.float64)
    return QuadraticTrend(
        intercept=a,
        linear=b,
        quadratic=c,
        r2=_r2(acc, pred),
        x_range=(lo, hi),
        opens_downward=c < 0,
        vertex_x=None if c == 0 else -b / (2.0 * c),
        best_x=best,
        best_ratio=float(np.exp(best)),
        best_ratio_ci=(float(np.exp(ci_x[0])), float(np.exp(ci_x[1]))),
        accuracy_at_best=a + b * best + c * best**2,
        n_boot_valid=int(valid.sum()),
    )


def _theory(
    S: Array, C: Array, m: Array, x: Array, quad: QuadraticTrend | None, m_star: float | None
) -> TheoryOptimum:
    gap = np.abs(x)
    nearest = np.flatnonzero(gap <= gap.min() + 1e-12)
    pick = nearest[np.argmax(m[nearest])]
    in_ci = None
    at_theory = None
    if quad is not None:
        in_ci = bool(quad.best_ratio_ci[0] <= 1.0 <= quad.best_ratio_ci[1])
        if quad.x_range[0] <= 0.0 <= quad.x_range[1]:
            at_theory = quad.intercept
    return TheoryOptimum(
        ratio=1.0,
        x=0.0,
        m_star=float(m[pick]) if m_star is None else float(m_star),
        m_star_source="observed" if m_star is None else "given",
        nearest_shape=(int(S[pick]), int(C[pick])),
        in_best_ratio_ci=in_ci,
        accuracy_at_theory=at_theory,
    )


def fit_trend(
    S: Array,
    C: Array,
    accuracy: Array,
    *,
    n_boot: int,
    rng: np.random.Generator,
    m_star: float | None = None,
    level: float = 0.95,
) -> Trend:
    """Fit the isotonic and quadratic trends of ``accuracy`` (all arrays shape (n,), n >= 1)."""
    m = S * C
    x = np.log(S / C)
    boot = rng.integers(0, x.size, size=(n_boot, x.size))
    notes = []
    iso = None
    if np.unique(m).size >= 2:
        iso = _isotonic(np.log(m), accuracy)
    else:
        notes.append("one distinct m: no isotonic fit")
    quad = None
    if np.unique(x).size >= 3:
        quad = _quadratic(x, accuracy, boot, level)
    else:
        notes.append("fewer than three distinct S/C: no quadratic fit")
    return Trend(iso, quad, _theory(S, C, m, x, quad, m_star), "; ".join(notes))
