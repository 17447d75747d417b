"""The self-contained HTML report: one file that opens with no network.

plotly.js is embedded inline once, before the figures, which all use it. Which bundle: the
report draws scatter traces only, so it embeds plotly.js's *basic* bundle (scatter, bar, pie;
1.2 MB, shipped in ``assets/`` with its MIT licence), where the installed plotly writes figures
for the same plotly.js major version; otherwise the full bundle that plotly ships (4.6 MB), so
that the figures always draw. Nothing is loaded from a CDN: no MathJax, no external script or
style sheet. Div ids are the stable figure ids, and no timestamp is written, so the same study
and seed give the same file.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import TYPE_CHECKING

from nas_width._version import __version__
from nas_width.analysis import Analysis
from nas_width.fileio import write_text_atomic
from nas_width.report.data import StudyInfo
from nas_width.report.text import key_numbers, kind_label, plural, primary_line, test_rows

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["BASIC_BUNDLE", "plotly_bundle", "render_html", "write_text_atomic"]

#: plotly.js's basic bundle in ``assets/`` (npm ``plotly.js-basic-dist-min``) and its version.
BASIC_BUNDLE = ("plotly-basic.min.js", "4.1.1")
_BASIC_TRACES = frozenset({"scatter", "bar", "pie"})

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; }
.meta { color: #555; }
.verdict { border-left: 6px solid #999; padding: 0.4em 1em; background: #f6f6f6; }
.verdict.supported { border-color: #2ca02c; }
.verdict.contradicted { border-color: #d62728; }
.verdict.inconclusive { border-color: #ff7f0e; }
.criterion { color: #555; font-size: 0.92em; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3em 0.8em; text-align: left;
         vertical-align: top; }
th { background: #fafafa; }
figure { margin: 1em 0 2em; }
footer { color: #777; font-size: 0.9em; margin-top: 3em; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plotly_bundle(figures: Mapping[str, go.Figure]) -> str:
    """The plotly.js to embed for ``figures``: the basic bundle when every trace is one it
    draws and the installed plotly targets its major version, else plotly's full bundle."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    name, version = BASIC_BUNDLE
    types = {trace.type for figure in figures.values() for trace in figure.data}
    if types <= _BASIC_TRACES and get_plotlyjs_version().split(".")[0] == version.split(".")[0]:
        return resources.files(__package__).joinpath("assets", name).read_text("utf-8")
    return str(get_plotlyjs())


def _figures(figures: Mapping[str, go.Figure]) -> str:
    parts = [  # the library once, inline (never a CDN link); MathJax off
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>",
        f'<script charset="utf-8">{plotly_bundle(figures)}</script>',
    ]
    for div_id, figure in figures.items():
        div = figure.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            div_id=div_id,
            default_height="480px",  # "100%" of an auto-height <figure> could collapse to 0
            default_width="100%",
            config={"displaylogo": False, "responsive": True},
        )
        parts.append(f"<figure>{div}</figure>")
    return "\n".join(parts)


def render_html(
    info: StudyInfo,
    analysis: Analysis,
    figures: Mapping[str, go.Figure],
    per_kind: Mapping[str, Analysis] | None = None,
    pooled: Analysis | None = None,
) -> str:
    """The report as one HTML document (plotly.js inline): the primary test's verdict
    (``analysis``), the tests, then key numbers over every kind (``pooled``)."""
    v = analysis.verdict
    every = pooled or analysis
    objectives = ", ".join(
        f"{m} ({d})" for m, d in zip(info.metrics, info.directions, strict=False)
    )
    meta = (
        f"budget <b>{_e(info.budget)}</b> · data set <b>{_e(info.dataset)}</b> · space "
        f"<b>{_e(info.space)}</b> · objectives {_e(objectives)} · "
        f"{plural(info.n_trials, 'trial')} · storage <code>{_e(info.storage)}</code>"
    )
    sections = [
        f"<h1>Width study {_e(info.name)}</h1>",
        f'<p class="meta">{meta}</p>',
        f'<section class="verdict {_e(v.outcome)}"><h2>Verdict: {_e(v.outcome)}</h2>'
        f"<p>{_e(v.text)}</p>"
        f'<p class="criterion">Criterion: {_e(v.criterion)}</p></section>',
        f"<p>{_e(primary_line(analysis, info.primary_declared))}</p>",
        "<h2>Tests (the primary first; the secondaries Holm-corrected)</h2>",
        _table(("test", "result"), test_rows(analysis)),
        "<h2>Key numbers</h2>",
        _table(("quantity", "value"), key_numbers(every)),
    ]
    if per_kind:
        rows = [(kind_label(k), a.verdict.outcome, a.verdict.text) for k, a in per_kind.items()]
        sections += [
            "<h2>Each mixing kind alone</h2>",
            _table(("mixing kind", "verdict", "numbers"), rows),
        ]
    sections += ["<h2>Figures</h2>", _figures(figures)]
    excluded = [(str(e.number), e.state, e.reason) for e in every.excluded]
    sections.append(f"<h2>Excluded trials ({len(excluded)})</h2>")
    sections.append(
        _table(("trial", "state", "reason"), excluded)
        if excluded
        else "<p>none: every trial was used</p>"
    )
    searched = f"; searched with nas-width {_e(info.searched_with)}" if info.searched_with else ""
    settings = ", ".join(
        f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}"
        for k, v in analysis.settings.items()
        if v not in (None, [], "")
    )
    sections.append(
        f"<footer>Generated by nas-width {_e(__version__)}{searched}. "
        f"Analysis settings: {_e(settings)}.</footer>"
    )
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>nas-width report: {_e(info.name)}</title>\n<style>{_STYLE}</style>\n"
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
