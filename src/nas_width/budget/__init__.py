"""Count and solve budgets: fvcore measurement, closed forms, the channel solver."""

from nas_width.budget.closed_form import Counts, closed_form
from nas_width.budget.measure import Measurement, clear_cache, measure
from nas_width.budget.solve import (
    DEFAULT_TOLERANCE,
    MAX_HIDDEN_SHIFT,
    METRICS,
    PRECISION,
    Budget,
    parse_budget,
    solve,
)

__all__ = [
    "DEFAULT_TOLERANCE",
    "MAX_HIDDEN_SHIFT",
    "METRICS",
    "PRECISION",
    "Budget",
    "Counts",
    "Measurement",
    "clear_cache",
    "closed_form",
    "measure",
    "parse_budget",
    "solve",
]
