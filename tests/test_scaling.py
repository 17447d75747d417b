"""The multi-budget fit: best S/C and best accuracy against log2(budget), and its prediction.

Synthetic sweeps with a known law: at budget b the accuracy of a shape peaks at
x = log(S/C) = x0(b), where log2(exp(x0)) moves linearly in log2(b), and the peak accuracy
rises linearly in log2(b). The fit must recover both lines and predict a held-out budget.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import create_trial

from nas_width.analysis import TrialRecord
from nas_width.analysis.scaling import scaling
from tests.conftest import invoke, snapshot

BUDGETS = (250_000.0, 500_000.0, 1_000_000.0, 2_000_000.0)
TOKENS = (2, 4, 8, 16, 32, 64)
SEEDS = (0, 1, 2)
RATIO_SLOPE = 0.5  # log2(best S/C) gains 0.5 per doubling of the budget
ACC_SLOPE = 0.01  # the peak accuracy gains one point per doubling


def channels(S: int, budget: float) -> int:
    """C with S*C*(S+C) = budget / 50: m = S*C peaks at S = C, as at a real budget."""
    omega = budget / 50
    return max(1, round((-S + math.sqrt(S * S + 4 * omega / S)) / 2))


def law(budget: float, S: int, C: int) -> float:
    t = math.log2(budget / BUDGETS[0])
    x0 = math.log(2.0) * (-2.0 + RATIO_SLOPE * t)  # natural-log best S/C
    return 0.80 + ACC_SLOPE * t - 0.02 * (math.log(S / C) - x0) ** 2


def sweep(
    budget: float, noise: float = 0.002, kind: str = "mixer", seed: int = 0
) -> list[TrialRecord]:
    rng = np.random.default_rng(seed + int(budget))
    out: list[TrialRecord] = []
    for S in TOKENS:
        C = channels(S, budget)
        for s in SEEDS:
            acc = law(budget, S, C) + float(rng.normal(0, noise))
            shape = f"{kind}-S{S}-p1x{S}-gt2-gc2-d2-s{s}"
            out.append(TrialRecord(len(out), "COMPLETE", kind, S, C, S * C, s, acc, shape=shape))
    return out


def studies(budgets: tuple[float, ...]) -> dict[str, tuple[float, list[TrialRecord]]]:
    return {f"sweep-{b:g}": (b, sweep(b)) for b in budgets}


def test_recovers_both_lines_and_predicts_the_held_out_budget() -> None:
    result = scaling(studies(BUDGETS), predict_at=BUDGETS[-1], n_boot=300)
    assert [p.budget for p in result.points] == list(BUDGETS[:-1])
    assert result.ratio_slope == pytest.approx(RATIO_SLOPE, abs=0.1)
    assert result.accuracy_slope == pytest.approx(ACC_SLOPE, abs=0.003)
    pred = result.prediction
    assert pred is not None
    assert pred.observed is not None
    assert pred.observed.study == "sweep-2e+06"
    truth = 2.0 ** (-2.0 + RATIO_SLOPE * 3)
    assert pred.best_ratio == pytest.approx(truth, rel=0.25)
    assert abs(pred.ratio_error_log2 or 9) < 0.3
    assert abs(pred.accuracy_error or 9) < ACC_SLOPE  # shapes are discrete: not the exact peak
    assert pred.best_ratio_ci[0] < pred.best_ratio < pred.best_ratio_ci[1]
    assert pred.accuracy_in_ci is not None
    # The prediction interval covers the truth and the held-out check, and is wider than the
    # bootstrap's within-budget noise (it adds the scatter of the budgets about the line).
    assert pred.best_ratio_pi[0] < truth < pred.best_ratio_pi[1]
    assert pred.ratio_in_pi is True
    assert pred.accuracy_in_pi is True
    assert pred.best_accuracy_pi[1] - pred.best_accuracy_pi[0] > 0
    assert 0 <= pred.best_accuracy_pi[0] <= pred.best_accuracy_pi[1] <= 1  # an accuracy


def test_a_wrong_law_gives_a_large_held_out_error() -> None:
    """The check can fail: a budget whose best S/C jumps away from the line is flagged."""
    data = studies(BUDGETS[:3])
    flipped = [
        TrialRecord(r.number, r.state, r.mixing, r.S, r.C, r.m, r.seed,
                    law(BUDGETS[0], r.C, r.S), shape=r.shape)
        for r in sweep(BUDGETS[-1])
    ]  # fmt: skip
    data["odd"] = (BUDGETS[-1], flipped)
    pred = scaling(data, predict_at=BUDGETS[-1], n_boot=300).prediction
    assert pred is not None
    assert pred.ratio_error_log2 is not None
    assert abs(pred.ratio_error_log2) > 1.0
    assert pred.ratio_in_ci is False
    assert pred.ratio_in_pi is False


def test_best_accuracy_is_the_fitted_peak_not_the_luckiest_shape() -> None:
    """One lucky trial lifts its shape's mean (the max over shape means is biased upward); the
    fitted curve's peak stays near the law's true peak, 0.80 at the first budget."""
    records = sweep(BUDGETS[0], noise=0.0)
    i = max(range(len(records)), key=lambda j: records[j].accuracy or 0)  # the best shape's
    lucky = records[i]
    records[i] = TrialRecord(lucky.number, "COMPLETE", "mixer", lucky.S, lucky.C, lucky.m,
                             lucky.seed, 0.99, shape=lucky.shape)  # fmt: skip
    data = {"a": (BUDGETS[0], records)}
    data |= {f"{b:g}": (b, sweep(b)) for b in BUDGETS[1:3]}
    point = scaling(data, n_boot=50).points[0]
    by_shape: dict[str, list[float]] = {}
    for r in records:
        by_shape.setdefault(r.shape.rsplit("-s", 1)[0], []).append(float(r.accuracy or 0))
    assert point.best_shape_mean == pytest.approx(max(np.mean(v) for v in by_shape.values()))
    assert point.best_shape_mean > 0.85  # the lucky shape
    assert point.accuracy_source == "fitted peak"
    assert abs(point.best_accuracy - 0.80) < abs(point.best_shape_mean - 0.80) / 2
    clean = scaling({f"{b:g}": (b, sweep(b, noise=0.0)) for b in BUDGETS[:3]}, n_boot=20)
    assert clean.points[0].best_accuracy == pytest.approx(0.80, abs=1e-6)  # exact quadratic


def test_mixing_filter_and_too_few_budgets() -> None:
    data = {"a": (BUDGETS[0], sweep(BUDGETS[0]) + sweep(BUDGETS[0], kind="rp"))}
    data["b"] = (BUDGETS[1], sweep(BUDGETS[1], kind="rp"))
    data["c"] = (BUDGETS[2], sweep(BUDGETS[2], kind="rp"))
    with pytest.raises(ValueError, match="no finished trial of mixing kind 'mixer'"):
        scaling(data, mixing="mixer", n_boot=20)
    assert scaling(data, mixing="rp", n_boot=20).points[0].trials == len(TOKENS) * len(SEEDS)
    with pytest.raises(ValueError, match="3 budgets or more"):
        scaling(studies(BUDGETS[:3]), predict_at=BUDGETS[2], n_boot=20)  # two left to fit


def test_deterministic_for_a_seed() -> None:
    a = scaling(studies(BUDGETS[:3]), predict_at=4e6, n_boot=100, seed=3)
    b = scaling(studies(BUDGETS[:3]), predict_at=4e6, n_boot=100, seed=3)
    assert a == b
    assert a.prediction is not None
    assert a.prediction.observed is None


def store(path: Path, budgets: tuple[float, ...], primary: str | None = None) -> str:
    """The synthetic sweeps as stored nas-width studies (one per FLOP budget); with
    ``primary = "test_accuracy"`` the test accuracy is 1 - the validation accuracy."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{path}"
    for budget in budgets:
        records = sweep(budget)
        dist: dict[str, BaseDistribution] = {
            "shape": CategoricalDistribution(sorted({r.shape for r in records}))
        }
        study = optuna.create_study(storage=url, study_name=f"sweep-flops-{budget:g}",
                                    direction="maximize")  # fmt: skip
        study.set_user_attr("budget_metric", "flops")
        study.set_user_attr("budget_value", int(budget))
        study.set_user_attr("feasible", {"shapes": len(records) + (budget == budgets[0])})
        if primary is not None:
            study.set_user_attr("primary_test", {"primary_metric": primary})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["val_accuracy"])
        for r in records:
            attrs = {"S": r.S, "C": r.C, "m": r.m, "mixing": r.mixing, "seed": r.seed,
                     "test_accuracy": 1 - (r.accuracy or 0)}  # fmt: skip
            study.add_trial(create_trial(value=r.accuracy, params={"shape": r.shape},
                                         distributions=dist, user_attrs=attrs))  # fmt: skip
    return url


def test_cli_prints_fit_prediction_and_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = store(tmp_path / "s.db", BUDGETS)
    names = [f"sweep-flops-{b:g}" for b in BUDGETS]
    before = snapshot(tmp_path)
    code, out, err = invoke(capsys, "scaling", "--storage", url, *names, "--predict", "flops=2M")
    assert (code, err) == (0, "")
    assert "scaling over 3 flops budgets" in out
    assert "prediction at flops=2M" in out
    assert "95% prediction interval" in out
    assert "check against 'sweep-flops-2e+06'" in out
    assert "inside the prediction interval" in out
    assert "val_accuracy" in out
    # A sweep that did not finish every shape is named (the first stores one shape more).
    assert "note: study 'sweep-flops-250000' finished 18 of its 19 shapes" in out
    assert snapshot(tmp_path) == before  # read only

    code, out, _ = invoke(capsys, "scaling", "--storage", url, *names[:3], "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["metric"] == "flops"
    assert len(payload["points"]) == 3
    assert payload["prediction"] is None


def test_cli_fits_each_studys_primary_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Studies whose primary metric is test_accuracy are fitted on it, never on validation
    (here test = 1 - validation, so the best S/C moves to the other end)."""
    names = [f"sweep-flops-{b:g}" for b in BUDGETS[:3]]
    val = scaling(studies(BUDGETS[:3]), n_boot=20)
    url = store(tmp_path / "t.db", BUDGETS[:3], primary="test_accuracy")
    code, out, err = invoke(capsys, "scaling", "--storage", url, *names, "--json")
    assert (code, err) == (0, "")
    points = json.loads(out)["points"]
    assert points[0]["best_ratio"] != pytest.approx(val.points[0].best_ratio)
    worst = min(r.accuracy or 0 for r in sweep(BUDGETS[0]))  # shape means of 1 - accuracy
    assert points[0]["best_shape_mean"] <= 1 - worst + 1e-9
    assert points[0]["best_shape_mean"] > 1 - val.points[0].best_shape_mean


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["sweep-flops-250000"], "3 budgets or more"),
        (["sweep-flops-250000", "sweep-flops-500000", "--predict", "2M"], "'2M' is a params"),
        (["sweep-flops-250000", "nope"], "no study 'nope'"),
        (["sweep-flops-250000", "sweep-flops-500000", "--mixing", "cnn"], "--mixing 'cnn'"),
        (["sweep-flops-250000", "sweep-flops-500000", "--mixing", "rp"], "mixing kind 'rp'"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], names: str
) -> None:
    url = store(tmp_path / "s.db", BUDGETS[:2])
    before = snapshot(tmp_path)
    code, out, err = invoke(capsys, "scaling", "--storage", url, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert names in err
    assert snapshot(tmp_path) == before


def test_accuracy_intervals_stop_at_one() -> None:
    """Near 100% a straight line in log2(budget) runs past 1; its intervals are clipped."""
    from dataclasses import replace

    high = {f"{b:g}": (b, [replace(r, accuracy=(r.accuracy or 0) + 0.19) for r in sweep(b)])
            for b in BUDGETS[:3]}  # fmt: skip
    pred = scaling(high, predict_at=BUDGETS[0] * 2**8, n_boot=100).prediction
    assert pred is not None
    assert pred.best_accuracy > 1  # the line itself is not clipped: it says the trend must end
    assert pred.best_accuracy_pi[1] == 1.0
    assert pred.best_accuracy_ci[1] == 1.0
