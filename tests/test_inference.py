"""Inference by shape: seeds averaged first, shape means permuted, Holm for the secondaries, and
a verdict rule whose false-positive rate is alpha on a design with shape-level noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nas_width.analysis import TrialRecord, analyze
from nas_width.analysis.correlation import rank_correlation, shape_correlation
from nas_width.analysis.inference import (
    PrimaryTest,
    holm,
    run_family,
    shape_means,
    shape_rank_test,
)
from nas_width.analysis.verdict import decide
from tests.test_analysis import make_records, rising, solve_c

ALPHA = 0.05


def null_design(rng: np.random.Generator, shapes: int = 10, seeds: int = 3) -> list[TrialRecord]:
    """No width effect: each shape has an effect of its own (sd 0.02, as a recipe that suits
    some shapes better than others), its seeds scatter around it (sd 0.005)."""
    tokens = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96)[:shapes]
    records: list[TrialRecord] = []
    for S in tokens:
        C = solve_c(S)
        effect = 0.9 + rng.normal(0.0, 0.02)
        for seed in range(seeds):
            records.append(TrialRecord(
                len(records), "COMPLETE", "mixer", S, C, S * C, seed,
                effect + rng.normal(0.0, 0.005), shape=f"mixer-S{S}-p2x2-gt1-gc1-d1",
            ))  # fmt: skip
    return records


def shape_rule(records: list[TrialRecord]) -> str:
    units = shape_means(records)
    correlation = shape_correlation(units, n_perm=199, n_boot=20, seed=0)
    spread = math.log(max(r.m for r in records) / min(r.m for r in records))
    verdict = decide(
        n_used=len(records), log_m_spread=spread, correlation=correlation, trend=None,
        alpha=ALPHA, level=0.95, min_trials=8, min_log_width_spread=0.3,
    )  # fmt: skip
    return verdict.outcome


def trial_rule(records: list[TrialRecord]) -> bool:
    """The old rule's test: every trial a point, two-sided at alpha."""
    m = np.array([r.m for r in records], dtype=float)
    acc = np.array([r.accuracy or 0.0 for r in records])
    rng = np.random.default_rng(0)
    rho = rank_correlation(m, acc, n_perm=199, n_boot=20, rng_perm=rng, rng_boot=rng).spearman
    return min(rho.p_increasing, rho.p_decreasing) < ALPHA / 2


@pytest.mark.slow
def test_the_verdict_rule_keeps_its_false_positive_rate_at_alpha() -> None:
    """Seeded, 1,000 null studies: the shape-level rule calls 5% +- 2 points of them supported or
    contradicted; counting seeds as independent trials (the old rule) calls far more."""
    rng = np.random.default_rng(2024)
    studies = [null_design(rng) for _ in range(1000)]
    shape_rate = np.mean([shape_rule(s) != "inconclusive" for s in studies])
    trial_rate = np.mean([trial_rule(s) for s in studies])
    assert 0.03 <= shape_rate <= 0.07, shape_rate
    assert trial_rate > 0.15, trial_rate


def test_seeds_and_patch_grids_of_one_shape_are_one_point() -> None:
    records = make_records(rising, tokens=(2, 4, 8, 16, 32), seeds=(0, 1, 2))
    twin = [
        TrialRecord(100 + i, "COMPLETE", "mixer", r.S, r.C, r.m, r.seed, r.accuracy,
                    shape=r.shape.replace("p2x2", "p4x1"))
        for i, r in enumerate(records)
    ]  # fmt: skip
    units = shape_means(records + twin)
    assert [u.S for u in units] == [2, 4, 8, 16, 32]
    assert {u.n for u in units} == {6}
    a = analyze(records + twin, n_boot=200, n_perm=200)
    assert a.correlation is not None
    assert (a.correlation.n, a.correlation.n_trials, a.correlation.unit) == (5, 30, "shape")


def test_a_perfect_rise_over_five_shapes_has_the_exact_permutation_p() -> None:
    """5 shapes: 120 orderings, so the test is exact; only the observed one is as extreme."""
    units = shape_means(make_records(rising, tokens=(2, 4, 8, 16, 32), seeds=(0,), noise=0.0))
    test = shape_rank_test(units, "spearman", n_perm=1000, n_boot=100, seed=0)
    assert test.estimate == pytest.approx(1.0)
    assert test.p_increasing == pytest.approx(1 / 120)
    assert test.p_two_sided == pytest.approx(2 / 120)
    assert test.p_decreasing == pytest.approx(1.0)


def test_too_few_shapes_is_inconclusive_however_many_seeds() -> None:
    records = make_records(rising, tokens=(2, 8, 32, 64), seeds=tuple(range(10)))
    a = analyze(records, n_boot=200, n_perm=200)
    assert a.verdict.reason == "too_few_shapes"
    assert "4 shapes" in a.verdict.text


def test_holm_matches_the_textbook_example() -> None:
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # monotone in the raw order
    assert holm([0.04, 0.2]) == pytest.approx([0.08, 0.2])
    assert holm([]) == []


def test_the_family_puts_the_primary_first_and_corrects_the_rest() -> None:
    mixer = make_records(rising, kind="mixer")
    rp = make_records(lambda S, C: 0.7, kind="rp", start=len(mixer), noise=0.02, rng_seed=1)
    family = run_family(mixer + rp, PrimaryTest("mixer", "spearman"), n_perm=500, n_boot=200,
                        seed=0)  # fmt: skip
    assert [(t.kind, t.statistic, t.primary) for t in family] == [
        ("mixer", "spearman", True), ("mixer", "kendall", False), ("rp", "spearman", False),
        ("all", "spearman", False),
    ]  # fmt: skip
    assert family[0].p_holm is None
    assert family[0].n_shapes == len({r.S for r in mixer})
    assert family[0].p < ALPHA
    for t in family[1:]:
        assert t.p_holm is not None
        assert t.p_holm >= t.p
    analysis = analyze(mixer + rp, n_boot=200, n_perm=500, primary=PrimaryTest("mixer"))
    assert analysis.verdict.outcome == "supported"
    assert analysis.tests[0].primary
    assert analysis.settings["mixing"] == "mixer"


def test_a_study_names_its_primary_test_and_bad_names_are_refused() -> None:
    from nas_width.errors import ConfigError
    from nas_width.search import load_spec
    from nas_width.search.study import study_from_dict

    assert load_spec("digits-sweep").analysis.primary_kind == "mixer"
    named = {"analysis": {"primary_kind": "rp", "primary_statistic": "kendall"}}
    spec = study_from_dict("s", named, "s.toml")
    assert (spec.analysis.primary_kind, spec.analysis.primary_statistic) == ("rp", "kendall")
    with pytest.raises(ConfigError, match="'sideways'"):
        study_from_dict("s", {"analysis": {"primary_kind": "sideways"}}, "s.toml")
    with pytest.raises(ConfigError, match="'pearson'"):
        study_from_dict("s", {"analysis": {"primary_statistic": "pearson"}}, "s.toml")


def test_accuracies_come_with_their_binomial_se_and_counts() -> None:
    records = [
        TrialRecord(r.number, r.state, r.mixing, r.S, r.C, r.m, r.seed, r.accuracy,
                    shape=r.shape, val_samples=288)
        for r in make_records(rising)
    ]  # fmt: skip
    a = analyze(records, n_boot=200, n_perm=200)
    assert a.val_samples == 288
    se = a.binomial_se(0.985)
    assert se is not None
    assert se == pytest.approx(math.sqrt(0.985 * 0.015 / 288))
    assert a.binomial_se(0.985, replicates=3) == pytest.approx(se / math.sqrt(3))
    from nas_width.report.text import key_numbers

    rows = dict(key_numbers(a))
    assert rows["validation samples per trial"].startswith("288 (one sample = 0.35 points)")
    assert "/288 per trial)" in rows["Mixer validation accuracy"]
    mixed = [*records[:-1], TrialRecord(999, "COMPLETE", "mixer", 2, 5, 10, 0, 0.5)]
    assert analyze(mixed, n_boot=50, n_perm=50).val_samples is None  # sizes differ: no SE


def test_a_test_accuracy_primary_reads_the_held_out_split_never_validation() -> None:
    """primary_metric = "test_accuracy": every test, interval and count reads the held-out
    accuracy; validation (used to choose each shape's rate) rises with m, test falls."""
    from dataclasses import replace

    from nas_width.report.text import key_numbers

    base = make_records(rising)
    records = [
        replace(r, lr=0.003 if r.m % 2 else 0.01, val_samples=288, test_samples=359,
                test_accuracy=None if r.accuracy is None else 1.0 - r.accuracy)
        for r in base
    ]  # fmt: skip
    primary = PrimaryTest(kind="mixer", metric="test_accuracy")
    on_val = analyze(records, n_boot=200, n_perm=200, primary=PrimaryTest(kind="mixer"))
    on_test = analyze(records, n_boot=200, n_perm=200, primary=primary)
    assert on_val.tests[0].estimate > 0 > on_test.tests[0].estimate
    assert on_test.tests[0].estimate == pytest.approx(-on_val.tests[0].estimate)
    assert on_test.val_samples == 359
    assert on_val.val_samples == 288
    rows = dict(key_numbers(on_test))
    assert rows["test samples per trial"].startswith("359")
    assert "/359 per trial)" in rows["Mixer test accuracy"]
    used = on_test.counts.used
    assert sum(n for _, n in on_test.lr_counts) == used
    rates = {r.lr for r in records if r.lr is not None}
    assert [lr for lr, _ in on_test.lr_counts] == sorted(rates)
    unrecorded = [replace(r, test_accuracy=None) for r in records]
    none = analyze(unrecorded, n_boot=50, n_perm=50, primary=primary)
    assert none.counts.used == 0
    assert none.verdict.outcome == "inconclusive"
    assert {e.reason for e in none.excluded} >= {
        "no finite accuracy (none recorded for the study's metric)"
    }


def test_the_report_says_whether_accuracy_follows_width_or_stored_parameters() -> None:
    """At a connections budget the Mixer's stored weights fall as m rises: rho for the
    parameters is then the mirror of rho for m; without every shape's count there is none."""
    from dataclasses import replace

    from nas_width.report.text import key_numbers

    records = [replace(r, params=10**7 // r.m) for r in make_records(rising)]
    a = analyze(records, n_boot=200, n_perm=200, primary=PrimaryTest(kind="mixer"))
    assert a.params_correlation is not None
    assert a.correlation is not None
    assert a.params_correlation.estimate == pytest.approx(-a.correlation.spearman.estimate)
    assert a.params_correlation.ci_low <= a.params_correlation.estimate
    row = dict(key_numbers(a))["Spearman rho (stored parameters, accuracy)"]
    assert row.startswith(f"{a.params_correlation.estimate:+.3f}")
    assert "not in the test family" in row
    missing = [replace(records[0], params=None), *records[1:]]
    assert analyze(missing, n_boot=50, n_perm=50).params_correlation is None


def test_shapes_still_learning_at_the_end_are_flagged() -> None:
    from nas_width.analysis.convergence import loss_drop

    still = (2.0, 1.5, 1.2, 1.0, 0.9, 0.8, 0.7, 0.62, 0.55, 0.5)  # -9% per epoch at the end
    flat = (2.0, 1.0, 0.6, 0.5, 0.45, 0.44, 0.44, 0.43, 0.43, 0.43)
    assert loss_drop(still) == pytest.approx((0.62 - 0.5) / 0.62)
    assert loss_drop(flat) == pytest.approx(0.0)
    assert loss_drop(still[:4]) is None  # too few epochs to tell
    records = [
        TrialRecord(i, "COMPLETE", "mixer", r.S, r.C, r.m, r.seed, r.accuracy, shape=r.shape,
                    train_losses=still if r.S == 8 else flat, train_accuracy=0.8)
        for i, r in enumerate(make_records(rising, tokens=(2, 4, 8, 16, 32)))
    ]  # fmt: skip
    a = analyze(records, n_boot=100, n_perm=100)
    assert [u.shape for u in a.unconverged] == [f"mixer-S8-C{solve_c(8)}-gt1-gc1-d1"]
    assert a.unconverged[0].trials == (6, 7, 8)
    assert a.train_accuracy_range == (0.8, 0.8)
    from nas_width.report.text import key_numbers

    rows = dict(key_numbers(a))
    label = next(k for k in rows if k.startswith("not converged"))
    assert rows[label].startswith("1 of 5 shapes: mixer-S8-")


def test_records_read_the_history_validation_size_and_training_accuracy() -> None:
    import optuna
    from optuna.distributions import CategoricalDistribution

    from nas_width.analysis import records_from_study

    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(
        params={"shape": "mixer-S4-p4x4-gt2-gc2-d2"},
        distributions={"shape": CategoricalDistribution(["mixer-S4-p4x4-gt2-gc2-d2"])},
        value=0.9, user_attrs={"S": 4, "C": 30, "m": 120, "mixing": "mixer", "val_samples": 288,
                               "train_accuracy": 0.95,
                               "history": {"train_loss": [1.0, None, 0.5]}},
    ))  # fmt: skip
    (record,) = records_from_study(study)
    assert (record.val_samples, record.train_accuracy) == (288, 0.95)
    assert record.train_losses[0] == 1.0
    assert math.isnan(record.train_losses[1])
    assert record.train_losses[2] == 0.5
