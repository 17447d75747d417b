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
from optuna.distributions import CategoricalDistribution
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
    out = []
    for S in TOKENS:
        C = channels(S, budget)
        for s in SEEDS:
            acc = law(budget, S, C) + float(rng.normal(0, noise))
            shape = f"{kind}-S{S}-p1x{S}-gt2-gc2-d2-s{s}"
            out.append(TrialRecord(len(out), "COMPLETE", kind, S, C, S * C, s, acc, shape=shape))
    return out


def studies(budgets: tuple[float, ...], **kw: float) -> dict[str, tuple[float, list[TrialRecord]]]:
    return {f"sweep-{b:g}": (b, sweep(b, **kw)) for b in budgets}  # type: ignore[arg-type]


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


def test_best_accuracy_is_the_best_shape_mean_not_the_luckiest_trial() -> None:
    records = sweep(BUDGETS[0], noise=0.0)
    lucky = records[0]
    records[0] = TrialRecord(lucky.number, "COMPLETE", "mixer", lucky.S, lucky.C, lucky.m,
                             lucky.seed, 0.99, shape=lucky.shape)  # fmt: skip
    result = scaling({"a": (BUDGETS[0], records), "b": (BUDGETS[1], sweep(BUDGETS[1]))}, n_boot=50)
    point = result.points[0]
    by_shape: dict[str, list[float]] = {}
    for r in records:
        by_shape.setdefault(r.shape.rsplit("-s", 1)[0], []).append(float(r.accuracy or 0))
    assert point.best_accuracy == pytest.approx(max(np.mean(v) for v in by_shape.values()))
    assert point.best_accuracy < 0.99


def test_mixing_filter_and_too_few_budgets() -> None:
    data = {"a": (BUDGETS[0], sweep(BUDGETS[0]) + sweep(BUDGETS[0], kind="rp"))}
    data["b"] = (BUDGETS[1], sweep(BUDGETS[1], kind="rp"))
    with pytest.raises(ValueError, match="no finished trial of mixing kind 'mixer'"):
        scaling(data, mixing="mixer", n_boot=20)
    assert scaling(data, mixing="rp", n_boot=20).points[0].trials == len(TOKENS) * len(SEEDS)
    with pytest.raises(ValueError, match="two budgets or more"):
        scaling(studies(BUDGETS[:2]), predict_at=BUDGETS[1], n_boot=20)


def test_deterministic_for_a_seed() -> None:
    a = scaling(studies(BUDGETS[:3]), predict_at=4e6, n_boot=100, seed=3)
    b = scaling(studies(BUDGETS[:3]), predict_at=4e6, n_boot=100, seed=3)
    assert a == b
    assert a.prediction is not None
    assert a.prediction.observed is None


def store(path: Path, budgets: tuple[float, ...]) -> str:
    """The synthetic sweeps as stored nas-width studies (one per FLOP budget)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{path}"
    for budget in budgets:
        records = sweep(budget)
        dist = {"shape": CategoricalDistribution(sorted({r.shape for r in records}))}
        study = optuna.create_study(storage=url, study_name=f"sweep-flops-{budget:g}",
                                    direction="maximize")  # fmt: skip
        study.set_user_attr("budget_metric", "flops")
        study.set_user_attr("budget_value", int(budget))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(["val_accuracy"])
        for r in records:
            attrs = {"S": r.S, "C": r.C, "m": r.m, "mixing": r.mixing, "seed": r.seed}
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
    assert "check against 'sweep-flops-2e+06'" in out
    assert snapshot(tmp_path) == before  # read only

    code, out, _ = invoke(capsys, "scaling", "--storage", url, *names[:2], "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["metric"] == "flops"
    assert len(payload["points"]) == 2
    assert payload["prediction"] is None


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["sweep-flops-250000"], "two budgets or more"),
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
