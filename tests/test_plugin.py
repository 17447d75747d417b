"""Plugin use, as the README shows it: the space and the trainable in a user's own study.

An Optuna objective samples a budget-matched shape with ``space.suggest`` and trains it with
``fit``; a user's own Ray Tune ``Tuner`` runs ``make_trainable`` over the same shapes.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas_width import MixerConfig, measure, parse_budget
from nas_width.data import Splits, load_dataset
from nas_width.search import load_space
from nas_width.train import Recipe, fit

BUDGET = "5k"


@pytest.fixture(scope="module")
def data() -> Splits:
    return load_dataset("synthetic", n=256)


@pytest.fixture(scope="module")
def shapes(data: Splits) -> dict[str, MixerConfig]:
    return load_space("mixer").shapes(parse_budget(BUDGET), data.input_shape, data.num_classes)


def test_shapes_fit_the_data_and_the_budget(data: Splits, shapes: dict[str, MixerConfig]) -> None:
    assert len(shapes) >= 4
    for cfg in shapes.values():
        assert cfg.input_shape == data.input_shape
        assert cfg.num_classes == data.num_classes
        assert abs(measure(cfg).params / 5000 - 1) <= 0.02


def test_optuna_objective(data: Splits, shapes: dict[str, MixerConfig]) -> None:
    space = load_space("mixer")

    def objective(trial: optuna.Trial) -> float:
        cfg = space.suggest(trial, shapes)
        assert cfg in shapes.values()
        return fit(cfg, Recipe(epochs=2), data).history[-1].val_accuracy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(objective, n_trials=3)
    trials = study.trials
    assert len(trials) == 3
    for t in trials:
        assert t.state == TrialState.COMPLETE
        assert t.params["shape"] in shapes
        assert t.value is not None
        assert 0.0 <= t.value <= 1.0


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.slow
@pytest.mark.smoke
@pytest.mark.usefixtures("ray_cluster")
def test_ray_tune_tuner(tmp_path: Path, data: Splits, shapes: dict[str, MixerConfig]) -> None:
    from ray import tune

    from nas_width.search.trainable import make_trainable

    tuner = tune.Tuner(
        make_trainable(shapes, Recipe(epochs=2), data),
        param_space={"shape": tune.choice(list(shapes))},
        tune_config=tune.TuneConfig(metric="val_accuracy", mode="max", num_samples=2),
        run_config=tune.RunConfig(storage_path=str(tmp_path), verbose=0),
    )
    results = tuner.fit()
    assert not results.errors
    assert len(results) == 2
    best = results.get_best_result().metrics
    assert best is not None
    assert 0.0 <= best["val_accuracy"] <= 1.0
    assert best["epoch"] == 2
    assert best["shape"] in shapes
    assert best["flops"] == measure(shapes[best["shape"]]).flops
    assert "error" not in best
