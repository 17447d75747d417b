"""The hypothesis test on synthetic width studies with known answers.

Shapes are budget-consistent: for each S, C solves the paper's per-block budget
Omega = gamma*m*(S+C)/2 (gamma = 1), so m = S*C peaks at S = C as in a real study.
"""

from __future__ import annotations

import doctest
import json
import math
import subprocess
import sys
from collections.abc import Callable
from typing import TypedDict

import numpy as np
import pytest

from nas_width.analysis import TrialRecord, analyze, records_from_study
from nas_width.analysis._resample import average_ranks, kendall_rows, spearman_rows

OMEGA = 20_000.0
TOKENS = (2, 3, 4, 5, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96)


class Resamples(TypedDict):
    """The keyword arguments of :func:`analyze` that set the resample counts."""

    n_boot: int
    n_perm: int


FAST: Resamples = {"n_boot": 1000, "n_perm": 1000}


def solve_c(S: int, omega: float = OMEGA) -> int:
    """C with S*C*(S+C)/2 = omega, rounded."""
    return max(1, round((-S + math.sqrt(S * S + 8 * omega / S)) / 2))


def make_records(
    accuracy: Callable[[int, int], float],
    *,
    tokens: tuple[int, ...] = TOKENS,
    seeds: tuple[int, ...] = (0, 1, 2),
    noise: float = 0.005,
    kind: str = "mixer",
    rng_seed: int = 0,
    start: int = 0,
) -> list[TrialRecord]:
    """One COMPLETE record per (shape, seed): accuracy(S, C) + Gaussian noise."""
    rng = np.random.default_rng(rng_seed)
    records: list[TrialRecord] = []
    for S in tokens:
        C = solve_c(S)
        for seed in seeds:
            acc = accuracy(S, C) + float(rng.normal(0.0, noise))
            records.append(
                TrialRecord(
                    number=start + len(records), state="COMPLETE", mixing=kind, S=S, C=C,
                    m=S * C, seed=seed, accuracy=acc, flops=int(OMEGA), params=S * S + C * C,
                    epochs=10, shape=f"{kind}-S{S}-p2x2-gt1-gc1-d1",
                )
            )  # fmt: skip
    return records


def rising(S: int, C: int) -> float:
    return 0.3 + 0.08 * math.log(S * C)


def falling(S: int, C: int) -> float:
    return 0.95 - 0.08 * math.log(S * C)


def test_monotone_rise_is_supported() -> None:
    a = analyze(make_records(rising), **FAST)
    assert a.counts.used == 60
    assert a.verdict.outcome == "supported"
    assert a.verdict.reason == "significant_increase"
    assert a.correlation is not None
    rho = a.correlation.spearman
    assert rho.estimate > 0.5
    assert rho.ci_low > 0
    assert rho.p_increasing < 0.05
    assert a.correlation.kendall.estimate > 0
    assert a.correlation.kendall.ci_low > 0
    assert f"{rho.estimate:+.3f}" in a.verdict.text
    assert a.trend is not None
    assert a.trend.isotonic is not None
    assert a.trend.isotonic.non_decreasing
    assert a.trend.isotonic.rise > 0
    # accuracy is a function of m, which peaks at S = C: the best S/C is near 1.
    assert a.trend.quadratic is not None
    assert a.trend.quadratic.opens_downward
    assert a.trend.theory.in_best_ratio_ci


def test_monotone_fall_is_contradicted() -> None:
    a = analyze(make_records(falling), **FAST)
    assert a.verdict.outcome == "contradicted"
    assert a.correlation is not None
    rho = a.correlation.spearman
    assert rho.estimate < 0
    assert rho.ci_high < 0
    assert rho.p_decreasing < 0.05
    assert rho.p_increasing > 0.5
    assert a.trend is not None
    assert a.trend.isotonic is not None
    assert not a.trend.isotonic.non_decreasing


def test_pure_noise_is_inconclusive() -> None:
    a = analyze(make_records(lambda S, C: 0.7, noise=0.02, rng_seed=3), **FAST)
    assert a.verdict.outcome == "inconclusive"
    assert a.verdict.reason == "not_significant"
    assert a.correlation is not None
    rho = a.correlation.spearman
    assert rho.ci_low < 0 < rho.ci_high
    assert min(rho.p_increasing, rho.p_decreasing) > 0.05
    assert "no significant rank correlation" in a.verdict.text


def test_too_few_trials_is_inconclusive() -> None:
    a = analyze(make_records(rising, tokens=(2, 8, 32, 96), seeds=(0,)), **FAST)
    assert a.counts.used == 4
    assert a.verdict.outcome == "inconclusive"
    assert a.verdict.reason == "too_few_trials"
    assert "only 4 complete trials" in a.verdict.text
    assert "too few trials" in a.verdict.text


@pytest.mark.parametrize(
    "tokens",
    [(24, 25, 26, 28, 30, 32, 35, 38), (4, 6, 8, 12, 16)],
    ids=["small-spread", "constant-m"],
)
def test_no_width_spread_is_inconclusive(tokens: tuple[int, ...]) -> None:
    if len(tokens) == 5:  # S*C = 48 for every shape: no spread at all, but S/C varies
        records = [
            TrialRecord(i * 2 + s, "COMPLETE", "mixer", S, 48 // S, 48, s, 0.5 + 0.01 * S)
            for i, S in enumerate(tokens)
            for s in range(2)
        ]
    else:  # near S = C, m hardly changes: log m spans ~0.1
        records = make_records(rising, tokens=tokens)
    a = analyze(records, **FAST)
    assert a.log_m_spread < 0.3
    assert a.verdict.outcome == "inconclusive"
    assert a.verdict.reason == "no_width_spread"
    assert "too little spread in width m" in a.verdict.text
    assert f"{a.log_m_spread:.3g}" in a.verdict.text


@pytest.mark.parametrize("x0", [0.4, -0.7])
def test_quadratic_peak_is_found(x0: float) -> None:
    def peaked(S: int, C: int) -> float:
        return 0.8 - 0.03 * (math.log(S / C) - x0) ** 2

    records = make_records(peaked, noise=0.003)
    a = analyze(records, **FAST)
    assert a.trend is not None
    q = a.trend.quadratic
    assert q is not None
    assert q.opens_downward
    lo, hi = q.best_ratio_ci
    assert lo <= math.exp(x0) <= hi
    assert q.best_ratio == pytest.approx(math.exp(x0), rel=0.10)
    assert q.best_ratio == pytest.approx(math.exp(q.best_x))
    # scikit-learn's fit is the ordinary least-squares quadratic.
    x = np.array([math.log(r.S / r.C) for r in records])
    y = np.array([r.accuracy for r in records], dtype=float)
    c, b, a0 = np.polyfit(x, y, 2)
    assert (q.intercept, q.linear, q.quadratic) == pytest.approx((a0, b, c), rel=1e-6, abs=1e-9)
    # the theory's optimum S/C = 1 lies outside the interval here, and m* is observed.
    assert a.trend.theory.in_best_ratio_ci is False
    S, C = a.trend.theory.nearest_shape
    assert a.trend.theory.m_star == S * C
    assert a.trend.theory.m_star_source == "observed"


def test_quadratic_opening_upward_picks_the_better_end() -> None:
    # x = log(S/C) spans about -4.2 to 3.2; the linear term makes the upper end the better one.
    records = make_records(lambda S, C: 0.5 + 0.01 * math.log(S / C) ** 2 + 0.05 * math.log(S / C))
    a = analyze(records, **FAST, m_star=750.0)
    assert a.trend is not None
    q = a.trend.quadratic
    assert q is not None
    assert not q.opens_downward
    assert q.best_x == q.x_range[1]
    assert q.best_ratio_ci == pytest.approx((math.exp(q.x_range[1]),) * 2)
    assert a.trend.theory.m_star == 750.0
    assert a.trend.theory.m_star_source == "given"


def test_pruned_and_failed_are_counted_not_used() -> None:
    good = make_records(rising)
    # Accuracies that would flip the verdict if they were used.
    bad = [
        TrialRecord(100, "PRUNED", "mixer", 40, solve_c(40), 40 * solve_c(40), 0, 0.0),
        TrialRecord(101, "PRUNED", "mixer", 32, solve_c(32), 32 * solve_c(32), 1, None),
        TrialRecord(102, "FAIL", "mixer", 48, solve_c(48), 48 * solve_c(48), 0, None),
        TrialRecord(103, "RUNNING", "mixer", 40, solve_c(40), 40 * solve_c(40), 2, None),
        TrialRecord(104, "COMPLETE", "mixer", 32, solve_c(32), 32 * solve_c(32), 3, math.nan),
        TrialRecord(105, "COMPLETE", "mixer", 0, 0, 0, 0, 0.1),
    ]
    a = analyze(good + bad, **FAST)
    assert (a.counts.used, a.counts.pruned, a.counts.failed, a.counts.other) == (60, 2, 1, 3)
    assert [e.number for e in a.excluded] == [100, 101, 102, 103, 104, 105]
    assert [e.reason for e in a.excluded][:3] == ["pruned", "pruned", "failed"]
    clean = analyze(good, **FAST).to_dict()
    mixed = a.to_dict()
    for key in ("correlation", "trend", "kinds", "verdict", "m_range"):
        assert mixed[key] == clean[key]


def test_kinds_paired_difference_recovers_the_offset() -> None:
    # Large shape effect (0.1 per unit log m) and tiny within-pair noise: pairing removes it.
    mixer = make_records(rising, noise=0.004, rng_seed=1)
    rp = [
        TrialRecord(
            r.number + 1000, r.state, "rp", r.S, r.C, r.m, r.seed,
            (r.accuracy or 0.0) - 0.05 + float(np.random.default_rng(r.number).normal(0, 0.004)),
            shape=r.shape.replace("mixer-", "rp-", 1),
        )
        for r in mixer
    ]  # fmt: skip
    a = analyze(mixer + rp, **FAST)
    (d,) = a.kinds.differences
    assert (d.a, d.b, d.method, d.n_pairs) == ("mixer", "rp", "paired", 60)
    assert d.difference == pytest.approx(0.05, abs=0.005)
    assert d.ci_low <= 0.05 <= d.ci_high
    assert d.ci_low > 0
    summary = {s.kind: s for s in a.kinds.summaries}
    assert summary["mixer"].n == summary["rp"].n == 60
    assert summary["mixer"].n_shapes == 20
    assert summary["mixer"].n_seeds == 3
    assert summary["mixer"].mean - summary["rp"].mean == pytest.approx(0.05, abs=0.005)


def test_kind_summaries_count_shapes_not_seeds_when_keys_carry_the_seed() -> None:
    """Sweep keys end in -s<seed>; a kind's shapes and best shape are by shape (seeds
    merged), never one lucky seed."""
    from dataclasses import replace

    records = [replace(r, shape=f"{r.shape}-s{r.seed}") for r in make_records(rising)]
    lucky = max(range(len(records)), key=lambda i: records[i].m)
    records[lucky] = replace(records[lucky], accuracy=1.5)
    (summary,) = analyze(records, **FAST).kinds.summaries
    assert summary.n_shapes == len(TOKENS)
    widest = [r.accuracy or 0 for r in records if r.m == records[lucky].m]
    assert summary.best_shape_mean == pytest.approx(float(np.mean(widest)))
    assert summary.best_shape_n == 3
    assert summary.best_shape_mean < 1.5


def test_kinds_unmatched_use_the_unpaired_difference() -> None:
    mixer = make_records(lambda S, C: 0.80, noise=0.01, rng_seed=1)
    sw = make_records(lambda S, C: 0.75, noise=0.01, kind="sw-mlp", seeds=(7, 8, 9), rng_seed=2)
    a = analyze(mixer + sw, **FAST)
    (d,) = a.kinds.differences
    assert (d.a, d.b, d.method, d.n_pairs, d.n_a, d.n_b) == (
        "mixer",
        "sw-mlp",
        "unpaired",
        0,
        60,
        60,
    )
    assert d.ci_low <= 0.05 <= d.ci_high
    assert d.ci_low > 0


def test_match_key_drops_the_kind_prefix() -> None:
    r = TrialRecord(0, "COMPLETE", "sw-mlp", 16, 8, 128, 2, 0.5, shape="sw-mlp-S16-p2x2-d2")
    assert r.match_key == ("S16-p2x2-d2", 2)
    assert TrialRecord(1, "COMPLETE", "rp", 16, 8, 128, 0, 0.5).match_key == ("S16-C8", 0)


def test_mixing_filter_tests_one_kind() -> None:
    records = make_records(rising) + make_records(falling, kind="rp", start=100)
    a = analyze(records, mixing="rp", **FAST)
    assert a.counts.used == 60
    assert a.counts.other == 60
    assert a.verdict.outcome == "contradicted"
    assert a.excluded[0].reason == "mixing kind 'mixer', not 'rp'"


def test_deterministic_for_a_seed() -> None:
    records = make_records(rising, noise=0.05)
    first = analyze(records, seed=3, **FAST).to_dict()
    assert analyze(records, seed=3, **FAST).to_dict() == first
    other = analyze(records, seed=4, **FAST).to_dict()
    assert other["correlation"]["spearman"]["ci_low"] != first["correlation"]["spearman"]["ci_low"]
    assert (
        other["correlation"]["spearman"]["estimate"] == first["correlation"]["spearman"]["estimate"]
    )


@pytest.mark.parametrize("n", [60, 1, 0])
def test_to_dict_is_strict_json(n: int) -> None:
    records = make_records(rising, tokens=(4, 8, 16, 32, 64) * 4)[:n]
    data = analyze(records, n_boot=100, n_perm=100).to_dict()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["verdict"]["outcome"] in {"supported", "inconclusive"}
    assert data["counts"]["used"] == n


def test_rank_statistics_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a = rng.integers(0, 6, size=(5, 25)).astype(float)  # many ties
    b = rng.normal(size=(5, 25)).round(1)
    np.testing.assert_allclose(average_ranks(a), stats.rankdata(a, axis=1))
    rho, tau = spearman_rows(a, b), kendall_rows(a, b)
    for i in range(5):
        assert rho[i] == pytest.approx(stats.spearmanr(a[i], b[i]).statistic)
        assert tau[i] == pytest.approx(stats.kendalltau(a[i], b[i]).statistic)
    assert np.isnan(spearman_rows(np.ones((1, 4)), b[:1, :4])).all()


def test_records_from_study() -> None:
    optuna = pytest.importorskip("optuna")
    from optuna.distributions import BaseDistribution, CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    keys = ["mixer-S16-p2x2-gt2-gc4-d2", "mixer-S4-p4x4-gt2-gc4-d2"]
    dist: dict[str, BaseDistribution] = {"shape": CategoricalDistribution(keys)}
    study = optuna.create_study(direction="maximize")

    def attrs(S: int, C: int, seed: int) -> dict[str, object]:
        return {"S": S, "C": C, "m": S * C, "mixing": "mixer", "seed": seed,
                "flops": 12345, "params": 678, "epochs": 5}  # fmt: skip

    shape0, shape1 = {"shape": keys[0]}, {"shape": keys[1]}
    study.add_trial(
        create_trial(params=shape0, distributions=dist, value=0.91, user_attrs=attrs(16, 24, 0))
    )
    pruned = TrialState.PRUNED
    study.add_trial(
        create_trial(
            params=shape1, distributions=dist, state=pruned, user_attrs=attrs(4, 60, 1),
            intermediate_values={1: 0.4},
        )
    )  # fmt: skip
    failed = {"fail_reason": "nan"}
    study.add_trial(
        create_trial(params=shape1, distributions=dist, state=TrialState.FAIL, user_attrs=failed)
    )
    records = records_from_study(study)
    assert records[0] == TrialRecord(
        number=0, state="COMPLETE", mixing="mixer", S=16, C=24, m=384, seed=0, accuracy=0.91,
        flops=12345, params=678, epochs=5, shape=keys[0],
    )  # fmt: skip
    assert (records[1].state, records[1].accuracy, records[1].m) == ("PRUNED", None, 240)
    assert (records[2].state, records[2].S, records[2].m) == ("FAIL", 0, 0)
    a = analyze(records, n_boot=50, n_perm=50)
    assert (a.counts.used, a.counts.pruned, a.counts.failed) == (1, 1, 1)
    assert a.verdict.reason == "too_few_trials"


def test_import_is_light() -> None:
    code = (
        "import sys, nas_width.analysis; "
        "print(sorted(m for m in ('optuna', 'sklearn', 'scipy') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


def test_docstring_example() -> None:
    import nas_width.analysis.hypothesis as module

    result = doctest.testmod(module)
    assert result.attempted > 0
    assert result.failed == 0
