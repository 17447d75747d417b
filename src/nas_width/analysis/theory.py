"""The theory's optimum for a stored study: m* = (Omega/gamma)^(2/3) at S = C.

Hayase & Karakida's wider-is-better argument puts the best width m = S*C of a Mixer at a fixed
number of connections where S = C; DESIGN.md section 1 turns a ``mixing_flops`` budget into
that m*. The analysis compares the fitted best shape against it (``analyze(m_star=...)``); a
budget with no closed form (whole-model params or FLOPs, several depths or gammas) has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from nas_width.schema import study_settings, trial_attrs

if TYPE_CHECKING:
    import optuna

__all__ = ["study_m_star", "theory_m_star"]


def theory_m_star(
    study_attrs: Mapping[str, Any], configs: Iterable[Mapping[str, Any]]
) -> float | None:
    """m* from the budget, where it has a closed form; None otherwise.

    DESIGN.md section 1: a block's connections are 2*gamma*m*(S + C) for gamma_S = gamma_C =
    gamma; the paper's Omega is a quarter of that, and m* = (Omega/gamma)^(2/3) at S = C. So
    for a ``mixing_flops`` budget B (connections of all ``depth`` blocks) with one depth and one
    gamma in every trial, m* = (B / (4*depth*gamma))^(2/3). A whole-model budget (params,
    flops) adds the stem, head and norms, which have no such closed form: None.
    """

    def positive(v: Any) -> float | None:
        ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        return float(v) if ok else None

    if study_attrs.get("budget_metric") != "mixing_flops":
        return None
    budget = positive(study_attrs.get("budget_value"))
    shapes = {(c.get("depth"), c.get("gamma_token"), c.get("gamma_channel")) for c in configs}
    if budget is None or len(shapes) != 1:
        return None  # several depths or gammas: m* differs between shapes
    depth, gamma_token, gamma_channel = (positive(v) for v in shapes.pop())
    if depth is None or gamma_token is None or gamma_token != gamma_channel:
        return None
    return (budget / (4.0 * depth * gamma_token)) ** (2.0 / 3.0)


def study_m_star(study: optuna.Study) -> float | None:
    """:func:`theory_m_star` of a stored study: its budget and its COMPLETE trials' configs."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    configs = [trial_attrs(t.user_attrs).get("config") for t in trials]
    return theory_m_star(
        study_settings(study.user_attrs), [c for c in configs if isinstance(c, Mapping)]
    )
