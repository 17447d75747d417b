"""Save the report's figures and a markdown note into the study, for optuna-dashboard.

optuna-dashboard (0.21) keeps both in the study's system attributes, in chunks of 2,045
characters: a figure under ``dashboard:plot_data:<id>:<i>``
(:func:`optuna_dashboard.save_plotly_graph_object`), the study note under
``dashboard:note_str:<i>`` with a version counter ``dashboard:note_ver``
(:func:`optuna_dashboard.save_note`). ``nas-width dashboard`` serves them with the study
(``GET /api/studies/<id>``: ``plotly_graph_objects`` and ``note``).

Saving again replaces: each figure is saved under its stable id
(:data:`~nas_width.report.figures.FIGURE_IDS`), which overwrites the stored chunks and blanks
the surplus ones, and the note is one per study (its version goes up by one). optuna-dashboard
has no call that deletes a saved figure, so a figure that a later report no longer draws (the
Pareto front, should a study lose it) stays as it was last saved.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna
    import plotly.graph_objects as go

__all__ = ["save_to_study"]


def save_to_study(study: optuna.Study, figures: Mapping[str, go.Figure], note: str) -> list[str]:
    """Store ``figures`` (by id) and the markdown ``note`` in ``study``; returns the ids."""
    from optuna_dashboard import save_note, save_plotly_graph_object

    saved = [
        save_plotly_graph_object(study, figure, graph_object_id=graph_id)
        for graph_id, figure in figures.items()
    ]
    save_note(study, note)
    return [str(s) for s in saved]
