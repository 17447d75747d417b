"""Contract tests of the Optuna and Ray Tune internals nas-width reads
(``nas_width.search.internals``): run at the oldest and newest versions CI installs (smoke),
so that a release that renames one fails here, loudly, before it breaks a search."""

from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from nas_width.search.internals import (
    SEARCHER_DRIVER_ONLY,
    searcher_completed,
    searcher_live_study,
    searcher_live_trials,
    study_id,
    study_storage,
    trial_id,
)

pytestmark = pytest.mark.smoke


def test_a_studys_storage_and_ids_address_it_in_the_storage() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="contract", direction="maximize")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    storage = study_storage(study)
    assert isinstance(storage, optuna.storages.BaseStorage)
    assert storage.get_study_name_from_id(study_id(study)) == "contract"
    assert storage.get_trial(trial_id(study.trials[1])).number == 1
    study.ask()  # a trial left RUNNING, as a killed search leaves one: recovery fails it
    running = study.trials[2]
    storage.set_trial_user_attr(trial_id(running), "fail_reason", "interrupted")
    storage.set_trial_state_values(trial_id(running), optuna.trial.TrialState.FAIL)
    assert study.trials[2].state == optuna.trial.TrialState.FAIL
    assert study.trials[2].user_attrs == {"fail_reason": "interrupted"}


def test_ray_optuna_search_keeps_its_live_trials_study_and_completed_set() -> None:
    from ray.tune.search.optuna import OptunaSearch

    searcher = OptunaSearch(
        space={"shape": CategoricalDistribution(["a", "b"])}, metric="v", mode="max"
    )
    params = searcher.suggest("t1")
    assert params is not None
    assert params["shape"] in ("a", "b")
    assert all(hasattr(searcher, name) for name in SEARCHER_DRIVER_ONLY)
    assert isinstance(searcher_live_trials(searcher)["t1"], optuna.Trial)
    study = searcher_live_study(searcher)
    assert isinstance(study, optuna.Study)
    searcher.on_trial_complete("t1", {"v": 0.5})
    assert "t1" in searcher_completed(searcher)
    assert study.trials[0].value == 0.5
