"""What a report shows besides the :class:`~nas_width.analysis.Analysis`: the study's header
and plot-ready series (used trials, best-so-far accuracy, the accuracy-FLOPs front).

The statistics come from :func:`nas_width.analysis.analyze`; this module only selects and
orders trials, so that the figure code draws and computes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nas_width.analysis import Analysis, TrialRecord
from nas_width.analysis.inference import PrimaryTest
from nas_width.schema import study_settings

if TYPE_CHECKING:
    import optuna

__all__ = [
    "StudyInfo",
    "best_so_far",
    "pareto_numbers",
    "study_info",
    "study_primary",
    "used_records",
]


@dataclass(frozen=True)
class StudyInfo:
    """The header of a report: which study, at which budget, on which data and space.

    Attributes:
        name: the study's name. storage: the storage URL it was read from.
        budget: the budget every shape was held to (``"params=50k"``), as the search stored it.
        dataset: the data set's name. space: the search space's name.
        metrics: the objectives' names (``"val_accuracy"``, and ``"flops"`` in a Pareto study).
        directions: "maximize" / "minimize" per objective; two entries in a Pareto study.
        n_trials: every trial of the study, in any state.
        front: trial numbers on the accuracy-FLOPs Pareto front (``study.best_trials`` of a
            two-objective study, else the non-dominated used trials when FLOPs vary; empty when
            there is no front to show).
        searched_with: the nas-width version that ran the search (None if not stored).
        primary_declared: whether the study named its primary test before its run.
    """

    name: str
    storage: str
    budget: str
    dataset: str
    space: str
    metrics: tuple[str, ...]
    directions: tuple[str, ...]
    n_trials: int
    front: tuple[int, ...]
    searched_with: str | None
    primary_declared: bool = False

    @property
    def two_objective(self) -> bool:
        return len(self.directions) == 2


def used_records(analysis: Analysis, records: Iterable[TrialRecord]) -> list[TrialRecord]:
    """The records that entered the statistics: every record the analysis did not exclude."""
    excluded = {e.number for e in analysis.excluded}
    return [r for r in records if r.number not in excluded]


def best_so_far(records: Sequence[TrialRecord]) -> list[float]:
    """The running maximum of accuracy over ``records`` in trial order (all with accuracy)."""
    best: list[float] = []
    for r in records:
        value = float(r.accuracy) if r.accuracy is not None else float("-inf")
        best.append(max(best[-1], value) if best else value)
    return best


def pareto_numbers(records: Sequence[TrialRecord]) -> tuple[int, ...]:
    """Trial numbers of the non-dominated records (higher accuracy, fewer FLOPs), by FLOPs.

    A record is on the front when no other has at least its accuracy with fewer FLOPs, or more
    accuracy with as many. Records without FLOPs or accuracy are left out.
    """
    rows = [r for r in records if r.flops is not None and r.accuracy is not None]
    rows.sort(key=lambda r: (r.flops, -float(r.accuracy or 0.0), r.number))
    front: list[int] = []
    best = float("-inf")
    for r in rows:
        if float(r.accuracy or 0.0) > best:
            front.append(r.number)
            best = float(r.accuracy or 0.0)
    return tuple(front)


def _dataset_name(dataset: Any) -> str:
    if isinstance(dataset, Mapping):
        return str(dataset.get("name", "unknown"))
    return "unknown" if dataset is None else str(dataset)


def study_info(
    study: optuna.Study, storage: str, analysis: Analysis, records: Sequence[TrialRecord]
) -> StudyInfo:
    """The report header of ``study``; ``analysis`` and ``records`` give the Pareto front."""
    attrs = study_settings(study.user_attrs)
    directions = tuple(d.name.lower() for d in study.directions)
    metrics = tuple(study.metric_names or ["val_accuracy", "flops"][: len(directions)])
    used = used_records(analysis, records)
    if len(directions) == 2:
        flops = {r.number: r.flops or 0 for r in records}
        numbers = (t.number for t in study.best_trials)
        front = tuple(sorted(numbers, key=lambda n: (flops.get(n, 0), n)))
    elif len({r.flops for r in used if r.flops is not None}) > 1:
        front = pareto_numbers(used)
    else:
        front = ()
    version = attrs.get("nas_width_version")
    return StudyInfo(
        name=study.study_name,
        storage=storage,
        budget=str(attrs.get("budget", "unknown")),
        dataset=_dataset_name(attrs.get("dataset")),
        space=str(attrs.get("space", "unknown")),
        metrics=metrics,
        directions=directions,
        n_trials=len(records),
        front=front,
        searched_with=None if version is None else str(version),
        primary_declared=isinstance(attrs.get("primary_test"), dict),
    )


def study_primary(study: optuna.Study, records: Sequence[TrialRecord]) -> PrimaryTest:
    """The primary test the study named (``[analysis]``), else the default: Spearman over the
    Mixer's shapes when the study has Mixer trials, over every kind pooled otherwise."""
    named = study_settings(study.user_attrs).get("primary_test")
    if isinstance(named, dict):
        return PrimaryTest(
            kind=str(named.get("primary_kind", "mixer")),
            statistic="kendall" if named.get("primary_statistic") == "kendall" else "spearman",
            metric=str(named.get("primary_metric", "val_accuracy")),
        )
    return PrimaryTest(kind="mixer" if any(r.mixing == "mixer" for r in records) else "all")
