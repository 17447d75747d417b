"""A recipe tuned per shape: successive halving over learning rates, chosen on validation."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import pytest

from nas_width.data import load_dataset
from nas_width.errors import ConfigError
from nas_width.search.study import study_from_dict
from nas_width.train import EpochReport, Recipe, Training, TrialFailed, Tuning, fit
from nas_width.train import successive_halving as halving
from tests.conftest import small_config


@dataclass
class Scripted:
    """A stand-in for :class:`Training` whose validation accuracy per epoch is given."""

    curve: list[float]
    recipe: Recipe = field(default_factory=lambda: Recipe(epochs=9, warmup_epochs=0))
    diverge_at: int | None = None
    history: list[EpochReport] = field(default_factory=list)

    def epoch(self) -> EpochReport:
        n = len(self.history) + 1
        if n == self.diverge_at:
            raise TrialFailed(f"non-finite loss (nan) at epoch {n}, step 1")
        acc = self.curve[n - 1]
        report = EpochReport(n, 1.0, 1 - acc, acc, 1.0, 0.1)
        self.history.append(report)
        return report

    @property
    def model(self) -> Any:
        return self  # .cpu() frees nothing here

    def cpu(self) -> None:
        pass


def trainings(runs: list[Scripted]) -> list[Training]:
    """``runs`` as the Training list successive halving takes: it reads only their ``recipe``,
    ``history``, ``epoch()`` and ``model``, which Scripted has (a stand-in, not a subclass)."""
    return cast("list[Training]", runs)


def run(curves: list[list[float]], eta: int = 3, **kw: Any) -> tuple[Any, list[Any], list[Any]]:
    runs = [Scripted(c, **kw) for c in curves]
    lrs = [10.0**-i for i in range(1, len(curves) + 1)]
    winner, everyone = halving(trainings(runs), lrs, Tuning(lr=tuple(lrs), eta=eta))
    return winner, everyone, runs


def test_rungs_follow_eta_and_end_at_the_last_epoch() -> None:
    assert Tuning(lr=(1.0,)).rungs(30) == [30]
    assert Tuning(lr=(1.0, 2.0)).rungs(30) == [10, 30]
    assert Tuning(lr=(1.0, 2.0, 3.0, 4.0)).rungs(27) == [3, 9, 27]
    assert Tuning(lr=(1.0, 2.0, 3.0, 4.0), eta=2).rungs(40) == [10, 20, 40]
    assert Tuning(lr=tuple(range(1, 10))).rungs(2) == [1, 2]  # rungs collapse, still end at E


def test_the_best_on_validation_at_the_rung_wins_whatever_comes_later() -> None:
    # At rung 3 (E = 9, 3 rates) the second rate leads; the third would overtake it later.
    curves = [[0.1] * 9, [0.5, 0.6, 0.7] + [0.7] * 6, [0.2, 0.3, 0.4] + [0.99] * 6]
    winner, everyone, runs = run(curves)
    assert winner.lr == pytest.approx(0.01)
    assert [c.stopped_at for c in everyone] == [3, None, 3]
    assert [len(r.history) for r in runs] == [3, 3, 3]  # the caller trains the winner on


def test_survivors_per_rung_are_ceil_n_over_eta() -> None:
    curves = [[0.1 * i] * 9 for i in range(1, 5)]  # 4 rates, eta 3: rungs 1, 3, 9
    winner, everyone, runs = run(curves)
    assert winner.lr == pytest.approx(1e-4)  # the last curve is the best throughout
    assert [c.stopped_at for c in everyone] == [1, 1, 3, None]
    assert [len(r.history) for r in runs] == [1, 1, 3, 3]


def test_ties_go_to_lower_validation_loss_then_grid_order() -> None:
    winner, *_ = run([[0.5] * 9, [0.5] * 9])
    assert winner.lr == pytest.approx(0.1)


def test_a_diverging_rate_ranks_last_and_all_diverging_fails_the_shape() -> None:
    runs = [Scripted([0.9] * 9, diverge_at=2), Scripted([0.2] * 9)]
    winner, everyone = halving(trainings(runs), [0.1, 0.01], Tuning(lr=(0.1, 0.01)))
    assert winner.lr == pytest.approx(0.01)
    assert everyone[0].failed
    assert math.isnan(everyone[0].val_accuracy)
    runs = [Scripted([0.9] * 9, diverge_at=1), Scripted([0.2] * 9, diverge_at=2)]
    with pytest.raises(TrialFailed, match="every learning rate diverged"):
        halving(trainings(runs), [0.1, 0.01], Tuning(lr=(0.1, 0.01)))


def test_the_tuned_winner_trains_exactly_as_fit_does_at_its_rate() -> None:
    """Rates are compared on the same weights and batch order, and the winner's epochs are
    those a plain fit at its rate would give (CPU is bit-reproducible)."""
    data = load_dataset("synthetic", n=192)
    cfg = small_config()
    recipe = Recipe(epochs=3, batch_size=32, lr=0.01, warmup_epochs=0.5)
    grid = Tuning(lr=(0.003, 0.03))
    runs = [Training(cfg, recipe.replace(lr=lr), data) for lr in grid.lr]
    first, second = (list(r.model.parameters()) for r in runs)
    assert all((a == b).all() for a, b in zip(first, second, strict=True))  # same weights
    winner, _ = halving(runs, grid.lr, grid)
    while not winner.run.done:
        winner.run.epoch()
    plain = fit(cfg, recipe.replace(lr=winner.lr), data)
    assert [r.val_accuracy for r in winner.run.history] == [r.val_accuracy for r in plain.history]
    assert [r.train_loss for r in winner.run.history] == [r.train_loss for r in plain.history]


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"lr": []}, "list of distinct numbers"),
        ({"lr": [0.01, 0.01]}, "distinct"),
        ({"lr": [0.01, -1]}, "> 0"),
        ({"lr": [0.01, math.inf]}, "> 0"),
        ({"lr": 0.01}, "list"),
        ({"lr": [0.01], "eta": 1}, "eta"),
        ({"lr": [0.01], "rate": 2}, "no setting 'rate'"),
        ({"eta": 3}, "needs lr"),
    ],
)
def test_bad_tuning_tables_name_the_bad_value(table: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        study_from_dict("s", {"tune": table}, "s.toml")


def test_a_study_file_tunes_and_round_trips() -> None:
    spec = study_from_dict("s", {"tune": {"lr": [1e-3, 3e-3], "eta": 2}}, "s.toml")
    assert spec.tune == Tuning(lr=(1e-3, 3e-3), eta=2)
    assert spec.to_dict()["tune"] == {"lr": [1e-3, 3e-3], "eta": 2}
    assert study_from_dict("s", {}, "s.toml").tune is None
