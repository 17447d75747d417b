"""Contract tests of the Optuna and Ray Tune internals nas-width reads
(``nas_width.search.internals``): run at the oldest and newest versions CI installs (smoke),
so that a release that renames one fails here, loudly, before it breaks a search."""

from __future__ import annotations

import ast
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution

from nas_width.search.internals import (
    SEARCHER_DRIVER_ONLY,
    live_trial_id,
    ray_cluster_mode,
    searcher_completed,
    searcher_live_study,
    searcher_live_trials,
    study_id,
    study_storage,
    trial_id,
)

pytestmark = pytest.mark.smoke

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "nas_width"


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


def test_a_running_trials_id_sets_a_parameter_it_did_not_sample() -> None:
    """The searcher stores each shape's features as parameters beside ``shape``."""
    study = optuna.create_study(direction="maximize")
    trial = study.ask()
    distribution = optuna.distributions.FloatDistribution(1.0, 5.0)
    study_storage(study).set_trial_param(live_trial_id(trial), "log2_S", 3.0, distribution)
    study.tell(trial, 0.5)
    assert study.trials[0].params == {"log2_S": 3.0}
    assert study.trials[0].distributions == {"log2_S": distribution}


def test_rays_cluster_mode_is_a_setting_nas_width_can_turn_off_and_back() -> None:
    """Off, Ray takes 127.0.0.1 as its node address (a private Ray listens on loopback)."""
    from ray._private import services

    before = ray_cluster_mode(False)
    try:
        assert services.resolve_ip_for_localhost("127.0.0.1") == "127.0.0.1"
    finally:
        assert ray_cluster_mode(before) is False


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


#: Private attributes outside the adapter that are not Optuna's or Ray's, each with why.
NOT_OPTUNA_OR_RAY = {
    "nn.modules.batchnorm._NormBase": "torch's base of every batch and instance norm",
}


def private_uses(path: Path) -> list[str]:
    """``x._name`` (x not self or cls) and ``getattr(x, "_name")`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            owner = node.value
            mine = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            if not mine and not node.attr.startswith("__"):
                found.append(ast.unparse(node))
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("getattr", "setattr"):
            name = node.args[1] if len(node.args) > 1 else None
            if isinstance(name, ast.Constant) and str(name.value).startswith("_"):
                found.append(ast.unparse(node))
    return [use for use in found if use not in NOT_OPTUNA_OR_RAY]


@pytest.mark.parametrize(
    "path",
    sorted(p for p in PACKAGE.rglob("*.py") if p.name != "internals.py"),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_only_the_adapter_touches_private_attributes(path: Path) -> None:
    assert private_uses(path) == [], f"use nas_width.search.internals instead ({path.name})"


def test_the_private_attribute_check_finds_them(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "def f(study, searcher):\n"
        "    study._storage.get_all_studies()\n"
        "    return getattr(searcher, '_ot_trials'), self._mine\n"
    )
    assert sorted(private_uses(module)) == ["getattr(searcher, '_ot_trials')", "study._storage"]
