"""ShapeTPE: the ``tpe`` sampler chooses the ``shape`` categorical through the shapes' features."""

from __future__ import annotations

import math
import statistics
from typing import Literal

import optuna
import pytest
from optuna.distributions import BaseDistribution, CategoricalDistribution

from nas_width import MixerConfig
from nas_width.search.sampler import make_sampler
from nas_width.search.study import StudySpec

optuna.logging.set_verbosity(optuna.logging.WARNING)

PATCHES = {256: (1, 1), 64: (2, 2), 16: (4, 4), 4: (8, 8)}  # S on a 16 x 16 input


def shapes() -> dict[str, MixerConfig]:
    """64 shapes: S in {4, 16, 64, 256}, two mixing kinds, two gammas each, two depths."""
    out = {}
    for s, patch in PATCHES.items():
        for mixing in ("mixer", "rp"):
            for gt in (2.0, 4.0):
                for gc in (2.0, 4.0):
                    for depth in (1, 2):
                        cfg = MixerConfig(
                            input_shape=(1, 16, 16), patch=patch, channels=8, depth=depth,
                            gamma_token=gt, gamma_channel=gc, mixing=mixing,
                        )  # fmt: skip
                        out[f"{mixing}-S{s}-gt{gt:g}-gc{gc:g}-d{depth}"] = cfg
    return out


SHAPES = shapes()
SPACE: dict[str, BaseDistribution] = {"shape": CategoricalDistribution(list(SHAPES))}


def accuracy(key: str) -> float:
    """Smooth in log2 S (best at S = 16), the Mixer ahead of the RP-Mixer, depth 2 ahead."""
    cfg = SHAPES[key]
    return (
        0.9
        - 0.05 * abs(math.log2(cfg.tokens) - 4)
        - 0.03 * (cfg.mixing == "rp")
        - 0.01 * (cfg.depth == 1)
        + 0.001 * (cfg.gamma_token + cfg.gamma_channel)
    )


def run(sampler: str, seed: int, trials: int) -> list[str]:
    """``trials`` ask/tell rounds of an in-memory study; the shapes in order."""
    spec = StudySpec("t", sampler=sampler, seed=seed)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(spec, SHAPES))
    picked = []
    for _ in range(trials):
        trial = study.ask(SPACE)
        key = str(trial.params["shape"])
        study.tell(trial, accuracy(key))
        picked.append(key)
    return picked


def test_same_seed_same_shapes_and_no_shape_twice() -> None:
    first = run("tpe", seed=3, trials=20)
    assert first == run("tpe", seed=3, trials=20)
    assert len(set(first)) == len(first)
    assert first != run("tpe", seed=4, trials=20)


def test_tpe_learns_from_features_what_random_cannot() -> None:
    """After its 4 random start-up trials TPE's picks are better shapes than random's, over 10
    seeds: the bare categorical of Optuna's TPE gave no such gain (it was random)."""
    later = slice(4, 16)

    def mean_later(sampler: str) -> float:
        picks = [k for seed in range(10) for k in run(sampler, seed, 16)[later]]
        return statistics.fmean(accuracy(k) for k in picks)

    assert mean_later("tpe") > mean_later("random") + 0.02


@pytest.mark.parametrize("pareto", [False, True])
def test_pruned_trials_and_two_objectives(pareto: bool) -> None:
    """ASHA's pruned trials (with their epochs' values when single-objective) and --pareto's
    two objectives go into the feature TPE without error; still no shape twice."""
    spec = StudySpec("t", sampler="tpe", seed=0)
    directions: list[Literal["maximize", "minimize"]]
    directions = ["maximize", "minimize"] if pareto else ["maximize"]
    study = optuna.create_study(directions=directions, sampler=make_sampler(spec, SHAPES))
    for i in range(10):
        trial = study.ask(SPACE)
        key = str(trial.params["shape"])
        if i % 3 == 2:
            if not pareto:  # Optuna keeps intermediate values for one objective only
                trial.report(accuracy(key) / 2, 1)
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, [accuracy(key), SHAPES[key].tokens][: len(directions)])
    keys = [t.params["shape"] for t in study.trials]
    assert len(set(keys)) == len(keys) == 10


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_shapes_missing_from_the_features_fall_back_to_random(sampler: str) -> None:
    """A study whose categorical holds keys the sampler has no config for (an old study)."""
    spec = StudySpec("t", sampler=sampler, seed=0)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(spec, {}))
    for _ in range(6):
        trial = study.ask(SPACE)
        study.tell(trial, accuracy(str(trial.params["shape"])))
    assert len({t.params["shape"] for t in study.trials}) == 6
