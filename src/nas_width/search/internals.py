"""Every private attribute of Optuna and Ray Tune that nas-width reads, in one place.

nas-width needs a few things neither library exposes publicly: an Optuna study's storage and
id (the lease lives in the study's system attributes; an interrupted trial is failed through
the storage, which ``Study.tell`` refuses for a trial another process asked), a frozen trial's
storage id, and the live trials of Ray Tune's ``OptunaSearch`` (the searcher subclass reports
intermediate values and ends trials PRUNED or FAIL). Each accessor is covered by a contract
test (``tests/test_internals.py``) run at the oldest and newest versions CI installs, so that
a release that renames one fails there, loudly, instead of breaking a search.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

__all__ = [
    "SEARCHER_DRIVER_ONLY",
    "live_trial_id",
    "ray_cluster_mode",
    "searcher_completed",
    "searcher_live_study",
    "searcher_live_trials",
    "study_id",
    "study_storage",
    "trial_id",
]

#: The attributes of Ray's ``OptunaSearch`` that only the driver's live searcher holds: the
#: sampler, the storage, the study and its trials (never pickled: Optuna 5.1's NSGA-II sampler
#: holds a thread lock).
SEARCHER_DRIVER_ONLY = ("_sampler", "_storage", "_ot_study", "_ot_trials")


def ray_cluster_mode(enabled: bool) -> bool:
    """Set Ray's cluster mode; returns the previous setting. Off, Ray takes 127.0.0.1 as the
    node address (``ray_constants.ENABLE_RAY_CLUSTER``, read by
    ``services.resolve_ip_for_localhost``), and its servers bind loopback only; on (Linux's
    default), they bind every interface. Only a private local Ray turns it off."""
    from ray._private import ray_constants

    previous = bool(ray_constants.ENABLE_RAY_CLUSTER)
    ray_constants.ENABLE_RAY_CLUSTER = enabled
    return previous


def study_storage(study: optuna.Study) -> BaseStorage:
    """The storage a study reads and writes (Optuna: ``Study._storage``)."""
    storage: BaseStorage = study._storage
    return storage


def study_id(study: optuna.Study) -> int:
    """The study's id in its storage (Optuna: ``Study._study_id``)."""
    return int(study._study_id)


def live_trial_id(trial: optuna.Trial) -> int:
    """A running trial's id in its storage (Optuna: ``Trial._trial_id``)."""
    return int(trial._trial_id)


def trial_id(trial: optuna.trial.FrozenTrial) -> int:
    """The trial's id in its storage (Optuna: ``FrozenTrial._trial_id``)."""
    return int(trial._trial_id)


def searcher_live_trials(searcher: Any) -> dict[str, optuna.Trial]:
    """Ray's trial id -> the live Optuna trial it asked (``OptunaSearch._ot_trials``)."""
    trials: dict[str, optuna.Trial] = searcher._ot_trials
    return trials


def searcher_completed(searcher: Any) -> set[str]:
    """Ray's trial ids that the searcher has already told Optuna about
    (``OptunaSearch._completed_trials``)."""
    done: set[str] = searcher._completed_trials
    return done


def searcher_live_study(searcher: Any) -> optuna.Study | None:
    """The searcher's live study, None on a pickled copy (``OptunaSearch._ot_study``)."""
    study: optuna.Study | None = getattr(searcher, "_ot_study", None)
    return study
