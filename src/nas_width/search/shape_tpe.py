"""TPE over what a shape is made of, for the one categorical ``shape`` that a study stores.

A width study's parameter is a single categorical, ``shape`` (one feasible S x C configuration
per value), so that every trial stores the exact shape it trained. Optuna's TPE models a
categorical by the observed frequency of each value: with one trial per shape it learns nothing
that carries over to an untried shape, and a replay of the stored sweeps found it no better than
random (BENCHMARKS.md, search efficiency). :class:`ShapeTPE` keeps ``shape`` as the stored
parameter but chooses it through the shapes' *features*: a TPE (Optuna's ``TPESampler``, in a
throw-away in-memory study) over the mixing kind, log2 S (a float: neighbouring S share
information), gamma_S, gamma_C and the depth, fitted to the finished trials, proposes a point,
and the untried shape nearest that point is sampled. C is not a feature: at a fixed budget it
follows from the others.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState, create_trial

from nas_width.config import MixerConfig
from nas_width.search.sampler import PARAM, tried_shapes

__all__ = ["ShapeTPE"]

_CATEGORICAL = ("mixing", "gamma_token", "gamma_channel", "depth")
_FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _features(config: MixerConfig) -> dict[str, Any]:
    return {
        "mixing": config.mixing,
        "log2_tokens": math.log2(config.tokens),
        "gamma_token": f"{config.gamma_token:g}",
        "gamma_channel": f"{config.gamma_channel:g}",
        "depth": config.depth,
    }


class ShapeTPE(BaseSampler):
    """Sample ``shape`` by a TPE over its features; other parameters at random.

    Args:
        shapes: the feasible shapes (key -> config), as :meth:`SearchSpace.shapes` gives them.
        seed: makes the sequence reproducible (one trial at a time).
        n_startup_trials: finished trials sampled at random before the TPE is used. Replays
            of the stored sweeps found 4 better than TPE's usual 10 on grids of 7 to 45 shapes.
    """

    def __init__(
        self, shapes: dict[str, MixerConfig], seed: int | None = None, n_startup_trials: int = 4
    ) -> None:
        self._features = {key: _features(cfg) for key, cfg in shapes.items()}
        self._seed = seed
        self._n_startup = n_startup_trials
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._rng = np.random.RandomState(seed)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        random = self._random.sample_independent(study, trial, param_name, param_distribution)
        if param_name != PARAM or not isinstance(param_distribution, CategoricalDistribution):
            return random
        choices = [c for c in param_distribution.choices if c in self._features]
        tried = tried_shapes(study, trial)
        fresh = [c for c in choices if c not in tried]
        finished = [
            t
            for t in study.get_trials(deepcopy=False, states=_FINISHED)
            if t.params.get(PARAM) in self._features
        ]
        if not fresh or len(finished) < self._n_startup:
            return random
        point = self._propose(study, trial, finished, choices)
        return self._nearest(point, fresh)

    def _space(self, choices: Sequence[Any]) -> dict[str, BaseDistribution]:
        feats = [self._features[c] for c in choices]
        space: dict[str, BaseDistribution] = {
            name: CategoricalDistribution(sorted({f[name] for f in feats})) for name in _CATEGORICAL
        }
        logs = [f["log2_tokens"] for f in feats]
        space["log2_tokens"] = FloatDistribution(min(logs), max(logs) + 1e-9)
        return space

    def _propose(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        finished: list[FrozenTrial],
        choices: Sequence[Any],
    ) -> dict[str, Any]:
        """The features TPE proposes, fitted to the finished trials (same directions)."""
        space = self._space(choices)
        seed = None if self._seed is None else self._seed * 1_000_003 + trial.number
        with warnings.catch_warnings():  # multivariate TPE is "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = optuna.samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=0)
        shadow = optuna.create_study(directions=study.directions, sampler=sampler)
        for t in finished:  # pruned ones with their epochs' values, as TPE ranks them itself
            params = {k: v for k, v in self._features[t.params[PARAM]].items() if k in space}
            shadow.add_trial(
                create_trial(
                    state=t.state, params=params, distributions=space,
                    values=t.values if t.state == TrialState.COMPLETE else None,
                    intermediate_values=t.intermediate_values,
                )
            )  # fmt: skip
        return shadow.ask(space).params

    def _nearest(self, point: dict[str, Any], fresh: list[Any]) -> Any:
        """The untried shape closest to ``point``: log2 S apart over its range, plus one per
        categorical feature that differs; ties drawn at random (seeded)."""
        logs = [f["log2_tokens"] for f in self._features.values()]
        span = max(max(logs) - min(logs), 1.0)

        def distance(key: Any) -> float:
            f = self._features[key]
            gap = abs(f["log2_tokens"] - point["log2_tokens"]) / span
            return gap + sum(f[name] != point[name] for name in _CATEGORICAL)

        best = min(distance(k) for k in fresh)
        closest = [k for k in fresh if distance(k) <= best + 1e-12]
        return closest[self._rng.randint(len(closest))]

    def reseed_rng(self) -> None:
        self._random.reseed_rng()
        self._rng.seed()
