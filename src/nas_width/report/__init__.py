"""Reports of a width study: plotly figures, a self-contained HTML file, a dashboard note.

Everything here presents an :class:`~nas_width.analysis.Analysis` (STYLE lesson 6): the
statistics are computed by :func:`nas_width.analysis.analyze`, and the figures, the HTML report
and the optuna-dashboard note only show them. ``nas-width report`` puts the pieces together::

    records = records_from_study(study)
    analysis = analyze(records, m_star=study_m_star(study))
    info = study_info(study, storage, analysis, records)
    figures = build_figures(analysis, records, info)  # {figure id: plotly Figure}
    write_text_atomic(Path("report.html"), render_html(info, analysis, figures))
    save_to_study(study, figures, markdown_note(info, analysis, titles))

plotly and optuna-dashboard are imported inside the functions that use them.
"""

from nas_width.analysis.theory import study_m_star, theory_m_star
from nas_width.report.dashboard import save_to_study
from nas_width.report.data import (
    StudyInfo,
    best_so_far,
    pareto_numbers,
    study_info,
    study_primary,
    used_records,
)
from nas_width.report.figures import (
    FIGURE_IDS,
    accuracy_vs_m,
    accuracy_vs_ratio,
    build_figures,
    figure_title,
    kinds_comparison,
    optimization_history,
    pareto_front,
)
from nas_width.report.html import render_html, write_text_atomic
from nas_width.report.text import KIND_LABELS, key_numbers, markdown_note, terminal_lines

__all__ = [
    "FIGURE_IDS",
    "KIND_LABELS",
    "StudyInfo",
    "accuracy_vs_m",
    "accuracy_vs_ratio",
    "best_so_far",
    "build_figures",
    "figure_title",
    "key_numbers",
    "kinds_comparison",
    "markdown_note",
    "optimization_history",
    "pareto_front",
    "pareto_numbers",
    "render_html",
    "save_to_study",
    "study_info",
    "study_m_star",
    "study_primary",
    "terminal_lines",
    "theory_m_star",
    "used_records",
    "write_text_atomic",
]
