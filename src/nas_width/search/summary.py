"""What a search left in its study, as plain data: the trial states, the best trial (or the
Pareto front of accuracy against FLOPs), each with its shape in the paper's letters (S, C,
m = S*C, gamma) and how much of the budget it used. The CLI prints it; a plugin user reads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nas_width.schema import trial_attrs

if TYPE_CHECKING:
    import optuna

    from nas_width.search.prepare import Prepared

__all__ = ["SHAPE_FIELDS", "SearchOutcome", "summarize"]

#: The trial attributes that say which shape it trained (see :class:`~nas_width.schema.TrialAttrs`).
SHAPE_FIELDS = (
    "S", "C", "m", "mixing", "gamma_token", "gamma_channel", "hidden_token", "hidden_channel",
    "depth", "patch",
)  # fmt: skip


@dataclass
class SearchOutcome:
    """What a finished (or already complete) search left in its study."""

    study_name: str
    storage: str
    states: dict[str, int]
    best: dict[str, Any] | None
    front: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    recovered: list[int] = field(default_factory=list)
    infeasible: dict[str, str] = field(default_factory=dict)


def summarize(study: optuna.Study, prepared: Prepared) -> SearchOutcome:
    """States, the best trial (or the Pareto front) as plain data."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]

    def record(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
        attrs = trial_attrs(t.user_attrs)
        used = t.user_attrs.get(prepared.budget.metric)  # one of the count attributes
        return {
            "trial": t.number,
            "shape": t.params.get("shape"),
            **{k: t.user_attrs.get(k) for k in SHAPE_FIELDS},
            "val_accuracy": t.values[0],
            "flops": attrs.get("flops"),
            "budget_used": used,
            "budget_error": None if used is None else used / prepared.budget.value - 1,
        }

    best = None
    front: list[dict[str, Any]] = []
    if complete and prepared.spec.pareto:
        front = sorted((record(t) for t in study.best_trials), key=lambda r: r["flops"] or 0)
        best = max(front, key=lambda r: r["val_accuracy"])
    elif complete:
        best = record(max(complete, key=lambda t: t.values[0]))
    left_out = {i.key: i.reason for i in prepared.infeasible}
    return SearchOutcome(
        study.study_name, prepared.spec.storage, states, best, front, infeasible=left_out
    )
