"""A sampler wrapper that does not spend trials on shapes already tried.

Every trial of a width study trains a deterministic recipe, so a shape sampled twice buys
nothing; TPE, which models a categorical by its observed frequencies, repeats good shapes
often. This wrapper keeps the wrapped sampler's choice unless that shape was already tried (or is
running), and then draws uniformly among the untried ones. Once every shape was tried it lets
repeats through. Trials enqueued by hand (retries of interrupted trials) bypass samplers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from nas_width.config import MixerConfig
from nas_width.schema import trial_attrs
from nas_width.search.recovery import INTERRUPTED
from nas_width.search.study import StudySpec

__all__ = ["UntriedShapes", "make_sampler", "tried_shapes"]

PARAM = "shape"


def tried_shapes(study: optuna.Study, current: FrozenTrial) -> set[Any]:
    """Shapes of every trial but ``current``, running or finished; an interrupted trial's shape
    does not count (it is queued again)."""
    tried = set()
    for t in study.get_trials(deepcopy=False):
        if t.number == current.number or PARAM not in t.params:
            continue
        if (
            t.state == TrialState.FAIL
            and trial_attrs(t.user_attrs).get("fail_reason") == INTERRUPTED
        ):
            continue
        tried.add(t.params[PARAM])
    return tried


class UntriedShapes(BaseSampler):
    """Wrap ``base`` so that the ``shape`` parameter avoids already-tried values."""

    def __init__(self, base: BaseSampler, seed: int | None = None) -> None:
        self._base = base
        self._rng = np.random.RandomState(seed)

    @staticmethod
    def _tried(study: optuna.Study, current: FrozenTrial) -> set[Any]:
        return tried_shapes(study, current)

    def _untried(self, study: optuna.Study, trial: FrozenTrial, choices: Sequence[Any]) -> Any:
        tried = self._tried(study, trial)
        fresh = [c for c in choices if c not in tried]
        return fresh[self._rng.randint(len(fresh))] if fresh else None

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """``shape`` alone: the features stored beside it (the searcher's) are not chosen."""
        space = self._base.infer_relative_search_space(study, trial)
        return {name: d for name, d in space.items() if name == PARAM}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        params = dict(self._base.sample_relative(study, trial, search_space))
        if PARAM in params and params[PARAM] in self._tried(study, trial):
            replacement = self._untried(study, trial, search_space[PARAM].choices)  # type: ignore[attr-defined]
            if replacement is not None:
                params[PARAM] = replacement
        return params

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        value = self._base.sample_independent(study, trial, param_name, param_distribution)
        if param_name == PARAM and value in self._tried(study, trial):
            replacement = self._untried(study, trial, param_distribution.choices)  # type: ignore[attr-defined]
            if replacement is not None:
                return replacement
        return value

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._base.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._base.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._base.reseed_rng()
        self._rng.seed()


def make_sampler(spec: StudySpec, shapes: dict[str, MixerConfig]) -> BaseSampler:
    """The study's sampler, seeded, wrapped to skip shapes already tried.

    "grid" is every shape once in a seeded random order: Optuna's GridSampler calls
    ``Study.stop`` when its grid is used up, which fails outside ``Study.optimize`` (Ray drives
    the study through ask and tell). "tpe" models the shapes' features, not the bare
    categorical (:mod:`nas_width.search.shape_tpe`).
    """
    seed = spec.seed
    base: BaseSampler
    if spec.sampler in ("random", "grid"):
        base = optuna.samplers.RandomSampler(seed=seed)
    elif spec.sampler == "gp":
        base = optuna.samplers.GPSampler(seed=seed)
    elif spec.sampler == "nsga2":
        base = optuna.samplers.NSGAIISampler(seed=seed)
    else:
        from nas_width.search.shape_tpe import ShapeTPE

        base = ShapeTPE(shapes, seed=seed)
    return UntriedShapes(base, seed=seed)
