"""Static copies of the report's figures for a paper (SVG, PDF, PNG), drawn offline.

plotly's own static export (kaleido 1.x) drives a Chrome browser, which a fresh machine may
lack and nas-width must not download. The report's figures (:mod:`~nas_width.report.figures`)
use a small part of plotly: scatter traces (markers, lines, ``hv`` steps, filled polygons, y
error bars), a title, axis titles, a log axis, tick values with their labels, and axis ranges.
This module draws exactly that part with matplotlib, so each figure is defined once and its
static copy follows it. Anything outside that part (another trace type, a shape, an annotation)
raises :class:`ValueError` rather than being left out of the copy unseen.

The files are reproducible: no date in the SVG or PDF metadata, and fixed SVG element ids.
PDF fonts are TrueType (Type 42), which publishers' checks accept where Type 3 is refused.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_width.fileio import replace_directory_atomic

if TYPE_CHECKING:
    import plotly.graph_objects as go
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FORMATS", "draw", "render", "write_static"]

#: The formats a static figure can be written in.
FORMATS = ("svg", "pdf", "png")

_SIZE = (7.0, 4.6)  # inches: a two-column paper's full width, or a slide
_DASH = {None: "-", "solid": "-", "dash": "--", "dot": ":", "dashdot": "-."}
_SYMBOL = {None: "o", "circle": "o", "diamond": "D", "square": "s", "x": "x", "cross": "P"}
_PX = 0.75  # points per CSS pixel: plotly sizes are pixels, matplotlib's are points
_RGBA = re.compile(r"rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)\s*(?:,\s*([\d.]+)\s*)?\)")


def _color(value: Any, default: str = "#1f77b4") -> Any:
    """A plotly color ("#1f77b4", "black", "rgba(255, 127, 14, 0.15)") as matplotlib takes it."""
    if value is None:
        return default
    match = _RGBA.fullmatch(str(value).strip())
    if match is None:
        return str(value)
    r, g, b, a = match.groups()
    return (float(r) / 255, float(g) / 255, float(b) / 255, 1.0 if a is None else float(a))


def _floats(values: Sequence[Any] | None) -> list[float]:
    return [float("nan") if v is None else float(v) for v in (values or ())]


def _trace(ax: Axes, trace: Any) -> None:
    """Draw one plotly scatter trace on ``ax``."""
    x, y = _floats(trace.x), _floats(trace.y)
    label = trace.name if trace.showlegend is not False and trace.name else None
    mode = trace.mode or "markers"
    line, marker = trace.line, trace.marker
    if trace.fill == "toself":
        ax.fill(x, y, color=_color(trace.fillcolor), linewidth=0, label=label)
        return
    if trace.fill not in (None, "none"):
        raise ValueError(f"static figures draw fill='toself' only, not {trace.fill!r}")
    color = _color(marker.color if "markers" in mode and marker.color else line.color)
    if "lines" in mode:
        ax.plot(
            x,
            y,
            color=_color(line.color, color),
            linewidth=(line.width or 2) * _PX,
            linestyle=_DASH.get(line.dash, "-"),
            drawstyle="steps-post" if line.shape == "hv" else "default",
            label=None if "markers" in mode else label,
        )
    if "markers" in mode:
        ax.scatter(
            x,
            y,
            s=((marker.size or 6) * _PX) ** 2,
            color=color,
            alpha=marker.opacity if marker.opacity is not None else 1.0,
            marker=_SYMBOL.get(marker.symbol, "o"),
            label=label,
            zorder=3,
        )
    errors = trace.error_y
    if errors is not None and errors.array is not None and errors.visible is not False:
        ax.errorbar(x, y, yerr=_floats(errors.array), fmt="none", ecolor=color, capsize=3)


def _axis(ax: Axes, axis: Any, which: str) -> None:
    set_scale, set_ticks, set_lim, set_label = (
        getattr(ax, f"set_{which}scale"),
        getattr(ax, f"set_{which}ticks"),
        getattr(ax, f"set_{which}lim"),
        getattr(ax, f"set_{which}label"),
    )
    set_label(axis.title.text or "")
    if axis.type == "log":
        set_scale("log")
    if axis.tickvals is not None:
        ticks = _floats(axis.tickvals)
        labels = [str(t) for t in axis.ticktext] if axis.ticktext is not None else None
        set_ticks(ticks, labels=labels)
        set_ticks([], minor=True)  # a log axis's minor ticks would crowd the labelled ones
    if axis.range is not None:
        lo, hi = _floats(axis.range)
        set_lim(10**lo, 10**hi) if axis.type == "log" else set_lim(lo, hi)


def draw(figure: go.Figure) -> Figure:
    """The matplotlib figure of a report figure (not attached to pyplot: nothing global).

    Raises:
        ValueError: the figure uses plotly beyond what this module draws.
    """
    from matplotlib.figure import Figure

    layout = figure.layout
    if layout.shapes or layout.annotations:
        raise ValueError("static figures draw traces only: a shape or annotation would be lost")
    out = Figure(figsize=_SIZE, layout="constrained")
    ax = out.add_subplot()
    for trace in figure.data:
        if trace.type != "scatter":
            raise ValueError(f"static figures draw scatter traces only, not {trace.type!r}")
        _trace(ax, trace)
    ax.set_title(layout.title.text or "", fontsize=11)
    _axis(ax, layout.xaxis, "x")
    _axis(ax, layout.yaxis, "y")
    ax.grid(True, color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if ax.get_legend_handles_labels()[1]:  # below the axes, as in the HTML
        out.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=8)
    return out


def render(figure: go.Figure, fmt: str) -> bytes:
    """``figure`` as the bytes of an ``fmt`` file (one of :data:`FORMATS`)."""
    import matplotlib

    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    metadata: dict[str, Any] = {
        "svg": {"Date": None},
        "pdf": {"CreationDate": None, "ModDate": None},
        "png": {},
    }[fmt]
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "nas-width", "pdf.fonttype": 42}):
        draw(figure).savefig(buffer, format=fmt, metadata=metadata, dpi=200)
    return buffer.getvalue()


def write_static(
    figures: Mapping[str, go.Figure], directory: Path, formats: Sequence[str] = ("svg", "pdf")
) -> list[Path]:
    """Write every figure in every format into ``directory``, which then holds exactly these
    files (written all at once: an earlier set is replaced whole). A figure's file is its id
    less the ``nas-width-`` prefix: ``accuracy-vs-ratio.svg``. Returns the paths, in order."""
    files = {
        f"{figure_id.removeprefix('nas-width-')}.{fmt}": render(figure, fmt)
        for figure_id, figure in figures.items()
        for fmt in formats
    }
    replace_directory_atomic(directory, files)
    return [directory / name for name in files]
