"""Plotly figures of a width study, drawn from an :class:`~nas_width.analysis.Analysis`.

Each function takes plain data (the analysis, the study's :class:`TrialRecord` list, and for
the front its trial numbers) and returns a ``plotly.graph_objects.Figure``; every statistic
(fits, intervals, the best S/C, per-kind means) comes from the analysis. Axes use the paper's
letters: S tokens, C channels, effective width m = S*C, x = log(S/C) (0 at S = C).

plotly is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from nas_width.analysis import Analysis, TrialRecord
from nas_width.kinds import KINDS
from nas_width.report.data import StudyInfo, best_so_far, used_records
from nas_width.report.text import kind_label

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = [
    "FIGURE_IDS",
    "accuracy_vs_m",
    "accuracy_vs_ratio",
    "build_figures",
    "figure_title",
    "kinds_comparison",
    "optimization_history",
    "pareto_front",
]

#: Stable ids of the figures: HTML div ids and optuna-dashboard graph object ids (saving
#: again under the same id replaces the stored figure).
FIGURE_IDS = (
    "nas-width-accuracy-vs-m",
    "nas-width-accuracy-vs-ratio",
    "nas-width-kinds",
    "nas-width-pareto",
    "nas-width-history",
)

_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
_ACCURACY = "validation accuracy"


def _color(kind: str, kinds: Sequence[str]) -> str:
    order = [k for k in KINDS if k in kinds] + sorted(set(kinds) - set(KINDS))
    return _PALETTE[order.index(kind) % len(_PALETTE)] if kind in order else "#7f7f7f"


def _by_kind(records: Sequence[TrialRecord]) -> list[tuple[str, list[TrialRecord]]]:
    kinds = {r.mixing for r in records}
    order = [k for k in KINDS if k in kinds] + sorted(kinds - set(KINDS))
    return [(k, [r for r in records if r.mixing == k]) for k in order]


def _hover(records: Sequence[TrialRecord]) -> dict[str, Any]:
    return {
        "customdata": [[r.number, r.S, r.C, r.m, r.seed, r.shape] for r in records],
        "hovertemplate": (
            "trial %{customdata[0]}: %{customdata[5]}<br>S=%{customdata[1]}, "
            "C=%{customdata[2]}, m=%{customdata[3]}<br>seed %{customdata[4]}<br>"
            "accuracy %{y:.4f}<extra></extra>"
        ),
    }


def _layout(fig: go.Figure, title: str, x: str, y: str = _ACCURACY) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        xaxis_title=x,
        yaxis_title=y,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
        margin={"t": 60, "b": 40},
    )
    return fig


def _kind_scatter(fig: go.Figure, records: Sequence[TrialRecord], x: list[float]) -> None:
    import plotly.graph_objects as go

    kinds = [k for k, _ in _by_kind(records)]
    xs = dict(zip((r.number for r in records), x, strict=True))
    for kind, group in _by_kind(records):
        fig.add_trace(
            go.Scatter(
                x=[xs[r.number] for r in group],
                y=[r.accuracy for r in group],
                mode="markers",
                name=kind_label(kind),
                marker={"color": _color(kind, kinds), "size": 8, "opacity": 0.8},
                **_hover(group),
            )
        )


def accuracy_vs_m(analysis: Analysis, records: Sequence[TrialRecord]) -> go.Figure:
    """Accuracy against m = S*C (log axis), by mixing kind, with the isotonic fit and m*."""
    import plotly.graph_objects as go

    used = used_records(analysis, records)
    fig = go.Figure()
    _kind_scatter(fig, used, [float(r.m) for r in used])
    trend = analysis.trend
    if trend is not None and trend.isotonic is not None:
        iso = trend.isotonic
        way = "non-decreasing" if iso.non_decreasing else "non-increasing"
        fig.add_trace(
            go.Scatter(
                x=[math.exp(v) for v in iso.log_m],
                y=list(iso.fitted),
                mode="lines",
                name=f"isotonic fit ({way}, R² {iso.r2:.2f})",
                line={"color": "black", "width": 2},
            )
        )
    if trend is not None and used:
        t = trend.theory
        name = f"theory: m* = {t.m_star:,.0f} at S = C ({t.m_star_source})"
        _vertical(fig, t.m_star, _accuracy_span(used), name, "gray", "dash")
    fig.update_xaxes(type="log", **_width_ticks([r.m for r in used]))
    return _layout(fig, "Accuracy vs effective width m = S·C", "m = S·C (log scale)")


def _width_ticks(widths: Sequence[int], most: int = 8) -> dict[str, Any]:
    """Ticks at observed widths m, at least 1/(``most`` + 1) of the axis's log span apart (so
    at most ``most`` + 1; the narrowest and the widest always): plotly's own log ticks over
    less than a decade read "2 3 ... 9 1000 2", and two close widths (176, 192) printed one
    over the other in a narrow panel."""
    ms = sorted(set(widths))
    if not ms:
        return {}
    gap = math.log(ms[-1] / ms[0]) / (most + 1)
    kept = [ms[0]]
    for m in ms[1:]:
        if math.log(m / kept[-1]) >= gap:
            kept.append(m)
    if kept[-1] != ms[-1]:  # the widest stays; the tick before it goes if too close
        if len(kept) > 1 and math.log(ms[-1] / kept[-1]) < gap:
            kept.pop()
        kept.append(ms[-1])
    return {"tickvals": kept, "ticktext": [f"{m:,}" for m in kept]}


def _accuracy_span(records: Sequence[TrialRecord]) -> tuple[float, float]:
    """The y extent of a vertical line or band: the accuracies plotted (0 to 1 without any)."""
    ys = [float(r.accuracy) for r in records if r.accuracy is not None]
    return (min(ys), max(ys)) if ys else (0.0, 1.0)


def _vertical(
    fig: go.Figure, x: float, span: tuple[float, float], name: str, color: str, dash: str
) -> None:
    """A vertical line at ``x`` over ``span`` as a named trace (in data coordinates, so it
    also draws on a log axis and in the static figures)."""
    import plotly.graph_objects as go

    fig.add_trace(
        go.Scatter(
            x=[x, x],
            y=list(span),
            mode="lines",
            name=name,
            line={"color": color, "dash": dash, "width": 2},
            hoverinfo="name",
        )
    )


def _ratio_ticks(lo: float, hi: float) -> dict[str, Any]:
    """Ticks at S/C = 2^k over [lo, hi] of x = log(S/C), labelled with S/C."""
    k_lo, k_hi = math.floor(lo / math.log(2)), math.ceil(hi / math.log(2))
    step = max(1, math.ceil((k_hi - k_lo + 1) / 9))
    ks = range(k_lo - (k_lo % step), k_hi + 1, step)
    text = [f"{2**k:g}" if k >= 0 else f"1/{2 ** (-k):g}" for k in ks]
    return {"tickvals": [k * math.log(2) for k in ks], "ticktext": text}


def accuracy_vs_ratio(analysis: Analysis, records: Sequence[TrialRecord]) -> go.Figure:
    """Accuracy against x = log(S/C) with the quadratic fit, the empirical best S/C and its
    interval (shaded), and the theory's optimum S = C (x = 0). The lines and the band are
    legend entries rather than labels on the plot: labels at nearby x overlap in a narrow panel
    (optuna-dashboard's)."""
    import plotly.graph_objects as go

    used = used_records(analysis, records)
    fig = go.Figure()
    _kind_scatter(fig, used, [r.log_ratio for r in used])
    xs = [r.log_ratio for r in used] or [0.0]
    lo, hi = min([*xs, 0.0]), max([*xs, 0.0])
    span = _accuracy_span(used)
    trend = analysis.trend
    q = trend.quadratic if trend is not None else None
    if q is not None:
        grid = np.linspace(q.x_range[0], q.x_range[1], 101)
        fig.add_trace(
            go.Scatter(
                x=grid.tolist(),  # plain lists: no base64 typed arrays in the saved JSON
                y=(q.intercept + q.linear * grid + q.quadratic * grid**2).tolist(),
                mode="lines",
                name=f"quadratic fit in log(S/C) (R² {q.r2:.2f})",
                line={"color": "black", "width": 2},
            )
        )
        ci_lo, ci_hi = q.best_ratio_ci
        level = float(analysis.settings.get("level", 0.95))
        if math.isfinite(ci_lo) and math.isfinite(ci_hi) and ci_lo > 0 and ci_hi > 0:
            x0, x1 = math.log(ci_lo), math.log(ci_hi)
            lo, hi = min(lo, x0), max(hi, x1)
            fig.add_trace(
                go.Scatter(  # a band as a closed polygon: a legend entry, not a label
                    x=[x0, x1, x1, x0, x0],
                    y=[span[0], span[0], span[1], span[1], span[0]],
                    mode="lines",
                    fill="toself",
                    fillcolor="rgba(255, 127, 14, 0.15)",
                    line={"width": 0},
                    name=f"best S/C, {100 * level:g}% interval",
                    hoverinfo="skip",
                )
            )
        _vertical(fig, q.best_x, span, f"best S/C = {q.best_ratio:.3g}", "#ff7f0e", "solid")
    _vertical(fig, 0.0, span, "theory: S = C", "gray", "dash")
    pad = 0.05 * max(hi - lo, 1.0)
    fig.update_xaxes(range=[lo - pad, hi + pad], **_ratio_ticks(lo, hi))
    return _layout(
        fig, "Accuracy vs log(S/C) at the fixed budget", "x = log(S/C), ticks labelled S/C"
    )


def kinds_comparison(analysis: Analysis, records: Sequence[TrialRecord]) -> go.Figure:
    """Accuracy per mixing kind at the matched budget: every trial (spread sideways so that
    equal accuracies stay apart), and mean ± sd. Scatter traces only: the report embeds
    plotly.js's basic bundle, which has no box plot."""
    import plotly.graph_objects as go

    used = used_records(analysis, records)
    groups = dict(_by_kind(used))
    kinds = list(groups)
    means = analysis.kinds.summaries
    fig = go.Figure()
    for i, s in enumerate(means):
        group = groups.get(s.kind, [])
        spread = np.linspace(-0.2, 0.2, len(group)) if len(group) > 1 else np.zeros(len(group))
        fig.add_trace(
            go.Scatter(
                x=(i + spread).tolist(),
                y=[r.accuracy for r in group],
                mode="markers",
                name=kind_label(s.kind),
                marker={"color": _color(s.kind, kinds), "size": 6, "opacity": 0.8},
                **_hover(group),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=list(range(len(means))),
            y=[s.mean for s in means],
            error_y={
                "type": "data",
                "array": [s.std if math.isfinite(s.std) else 0.0 for s in means],
            },
            mode="markers",
            name="mean ± sd",
            marker={"color": "black", "symbol": "diamond", "size": 11},
            customdata=[[s.n, s.n_shapes, s.n_seeds] for s in means],
            hovertemplate=(
                "mean %{y:.4f} ± %{error_y.array:.4f}<br>n=%{customdata[0]}, "
                "%{customdata[1]} shapes, %{customdata[2]} seeds<extra></extra>"
            ),
        )
    )
    fig.update_xaxes(
        tickvals=list(range(len(means))),
        ticktext=[kind_label(s.kind) for s in means],
        range=[-0.5, len(means) - 0.5],
    )
    return _layout(fig, "Accuracy per mixing kind at the matched budget", "mixing kind")


def pareto_front(records: Sequence[TrialRecord], front: Sequence[int]) -> go.Figure:
    """Accuracy against FLOPs of the used ``records``, with the front (trial numbers, by
    FLOPs) drawn as a line."""
    import plotly.graph_objects as go

    rows = [r for r in records if r.flops is not None and r.accuracy is not None]
    by_number = {r.number: r for r in rows}
    on_front = [by_number[n] for n in front if n in by_number]
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[r.flops for r in rows],
            y=[r.accuracy for r in rows],
            mode="markers",
            name="trials",
            marker={"color": "#7f7f7f", "size": 7, "opacity": 0.6},
            **_hover(rows),
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[r.flops for r in on_front],
            y=[r.accuracy for r in on_front],
            mode="lines+markers",
            line_shape="hv",
            name="Pareto front",
            marker={"color": "#d62728", "size": 9},
            line={"color": "#d62728"},
            **_hover(on_front),
        )
    )
    return _layout(fig, "Pareto front: accuracy vs FLOPs", "FLOPs per sample (fvcore)")


def optimization_history(analysis: Analysis, records: Sequence[TrialRecord]) -> go.Figure:
    """Accuracy of each used trial by trial number, and the best so far."""
    import plotly.graph_objects as go

    used = sorted(used_records(analysis, records), key=lambda r: r.number)
    fig = go.Figure()
    _kind_scatter(fig, used, [float(r.number) for r in used])
    fig.add_trace(
        go.Scatter(
            x=[r.number for r in used],
            y=best_so_far(used),
            mode="lines",
            line_shape="hv",
            name="best so far",
            line={"color": "black"},
        )
    )
    return _layout(fig, "Optimization history", "trial number")


def build_figures(
    analysis: Analysis, records: Sequence[TrialRecord], info: StudyInfo
) -> dict[str, go.Figure]:
    """Every figure of the report by id (:data:`FIGURE_IDS`); the Pareto front only where the
    study has one (two objectives, or FLOPs that vary among the used trials). Accuracy is the
    analysis's metric (``records`` read through it); the Pareto front plots the stored
    objective, validation accuracy."""
    figures = {
        FIGURE_IDS[0]: accuracy_vs_m(analysis, records),
        FIGURE_IDS[1]: accuracy_vs_ratio(analysis, records),
        FIGURE_IDS[2]: kinds_comparison(analysis, records),
    }
    if info.front:
        figures[FIGURE_IDS[3]] = pareto_front(used_records(analysis, records), info.front)
    figures[FIGURE_IDS[4]] = optimization_history(analysis, records)
    if analysis.primary.metric == "test_accuracy":  # records carry the held-out accuracy
        for key in (FIGURE_IDS[0], FIGURE_IDS[1], FIGURE_IDS[2], FIGURE_IDS[4]):
            figures[key].update_layout(yaxis_title="held-out test accuracy")
    return figures


def figure_title(figure: go.Figure) -> str:
    """The title text of a figure (for the note's list of figures)."""
    return str(figure.layout.title.text or "")
