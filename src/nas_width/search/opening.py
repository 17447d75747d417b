"""Open a study for a search: create it with all its settings, or reopen it for ``--resume``
after checking that it is whole and is the same search; either way take its lease.

A study and its settings come into being together: the settings are written with the lease
held and :data:`~nas_width.schema.COMPLETE_MARK` last, so a study whose search was killed while
creating it is refused by ``--resume`` (its settings cannot guard the resume) and named as such.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Literal

from nas_width.schema import COMPLETE_MARK, StudySettings, study_settings
from nas_width.search.errors import StorageError
from nas_width.search.hooks import pause_at
from nas_width.search.lease import Lease, acquire_lease, held_by_a_gone_search
from nas_width.search.storage import check_writable, open_storage, open_study

if TYPE_CHECKING:
    import optuna

    from nas_width.search.prepare import Prepared

__all__ = ["check_compatible", "open_search_study"]


def open_search_study(prepared: Prepared, resume: bool) -> tuple[optuna.Study, Lease]:
    """Create the study (refusing an existing one) or reopen it for ``resume``; take its lease.

    Raises:
        StorageError: the study exists (without ``resume``), differs from this search, or is
            being run by another search.
    """
    import optuna

    url, name = prepared.spec.storage, prepared.study_name
    check_writable(url)
    if resume:
        study = open_study(url, name)
        check_compatible(study, prepared.study_attrs())
        return study, acquire_lease(study)
    storage = open_storage(url)
    exists = StorageError(
        f"study {name!r} already exists in {url!r}: continue it with --resume, "
        "or choose another --study-name"
    )
    if name in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
        if not _half_made(optuna.load_study(study_name=name, storage=storage)):
            raise exists
        optuna.delete_study(study_name=name, storage=storage)  # never created, in effect
    directions: list[Literal["maximize", "minimize"]] = (
        ["maximize", "minimize"] if prepared.spec.pareto else ["maximize"]
    )
    try:
        study = optuna.create_study(study_name=name, storage=storage, directions=directions)
    except optuna.exceptions.DuplicatedStudyError:  # created by another search just now
        raise exists from None
    lease = acquire_lease(study)
    pause_at("settings")
    settings = dict(prepared.study_attrs())
    mark = settings.pop(COMPLETE_MARK)
    for key, value in settings.items():
        study.set_user_attr(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(prepared.metrics)
    study.set_user_attr(COMPLETE_MARK, mark)  # last: the study is whole (resume checks)
    return study, lease


def _half_made(study: optuna.Study) -> bool:
    """Whether ``study`` is a search's study that never came into being: a search took its
    lease and was killed before its settings were all written, so it holds no trial either.
    Such a study counts as not created; a new search makes it again. (A study without a lease,
    say one made with Optuna's own API, is never taken for one.)"""
    if COMPLETE_MARK in study.user_attrs or study.get_trials(deepcopy=False):
        return False
    return held_by_a_gone_search(study)


def check_compatible(study: optuna.Study, expected: StudySettings) -> None:
    """Refuse to continue a study whose budget, space, data set or training recipe differ
    from this search's: its trials would not be comparable.

    Recipe fields are compared where both sides have them, so a study stored before a field
    existed still resumes.
    """
    stored = study_settings(study.user_attrs)
    if COMPLETE_MARK not in stored:
        raise StorageError(
            f"study {study.study_name!r} was never fully created (a search stopped while "
            f"writing its settings; it has {len(stored)} of them): it cannot be resumed. Choose "
            "another --study-name, or delete it with: optuna delete-study --storage URL "
            f"--study-name {study.study_name}"
        )
    refuse = f"study {study.study_name!r} was run with {{}} {{!r}}; this search asks for {{!r}}"
    for key in ("budget", "space_hash", "dataset", "pareto"):
        if key in stored and stored[key] != expected[key]:
            raise StorageError(
                refuse.format(key, stored[key], expected[key]) + ": choose another --study-name"
            )
    # The solved shapes: the same keys with other C or hidden widths are other models. A study
    # stored before shapes_hash existed is compared by its number of feasible shapes.
    if "shapes_hash" in stored:
        differ = stored["shapes_hash"] != expected.get("shapes_hash")
    else:
        count = (stored.get("feasible") or {}).get("shapes")
        differ = count is not None and count != (expected.get("feasible") or {}).get("shapes")
    if differ:
        raise StorageError(
            f"study {study.study_name!r} holds shapes solved differently from this search's "
            "(another nas-width version's budget solver): its trials would not be comparable; "
            "choose another --study-name"
        )
    # Tuning per shape or not: a study stored before it existed did not tune (None).
    if stored.get("tune") != expected.get("tune"):
        raise StorageError(
            refuse.format("tune", stored.get("tune"), expected.get("tune"))
            + ": resume with the study's tuning, or choose another --study-name"
        )
    was, now = stored.get("recipe") or {}, expected.get("recipe") or {}
    for field in sorted(was.keys() & now.keys()):
        if was[field] != now[field]:
            raise StorageError(
                refuse.format(f"recipe {field}", was[field], now[field])
                + f": resume with the study's {field}, or choose another --study-name"
            )
