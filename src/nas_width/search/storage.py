"""Optuna storage: the source of truth of a study.

Storage strings: an Optuna RDB URL (``sqlite:///nas-width.db``, ``postgresql://...``), or a
journal file (``journal:path`` or a path ending in ``.log``/``.journal``). Only the Ray driver
writes to the study; trials report to it through Ray Tune.

Opening a study for a search enforces the rules that keep stored results trustworthy:
a new search refuses an existing study (continue it with ``resume``), a resumed study must have
the same budget and space, and trials left RUNNING by a killed search are failed with a reason
and their parameters queued once more, so that no finished trial is lost or re-run.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_width.errors import NasWidthError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "StorageError",
    "finished_count",
    "open_storage",
    "recover_interrupted",
]

INTERRUPTED = "interrupted: the search stopped before this trial finished"


class StorageError(NasWidthError):
    """A storage URL or a stored study cannot be used as asked."""


def _journal_path(url: str) -> Path | None:
    if url.startswith("journal:"):
        return Path(url.removeprefix("journal:"))
    if "://" not in url and url.endswith((".log", ".journal")):
        return Path(url)
    return None


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///"):
        rest = url.removeprefix("sqlite:///")
        return None if rest.startswith(":memory:") else Path(rest)
    return None


def storage_exists(url: str) -> bool:
    """Whether a file-backed storage exists already (servers: assumed yes)."""
    path = _journal_path(url) or _sqlite_path(url)
    return path.exists() if path is not None else True


def open_storage(url: str, *, create: bool = True) -> optuna.storages.BaseStorage:
    """The Optuna storage object for ``url`` (OptunaSearch needs an object, not a URL).

    With ``create=False`` a missing SQLite or journal file is an error instead of a new file.
    """
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    if not create and not storage_exists(url):
        raise StorageError(f"storage {url!r} does not exist")
    journal = _journal_path(url)
    if journal is not None:
        if not journal.parent.is_dir():
            raise StorageError(f"storage {url!r}: directory {str(journal.parent)!r} is missing")
        return JournalStorage(JournalFileBackend(str(journal)))
    if "://" not in url:
        raise StorageError(
            f"storage {url!r} is not a database URL (sqlite:///file.db, postgresql://...) "
            "or a journal file (journal:file.log)"
        )
    sqlite = _sqlite_path(url)
    if sqlite is not None and not sqlite.parent.is_dir():
        raise StorageError(f"storage {url!r}: directory {str(sqlite.parent)!r} is missing")
    try:
        # An existing storage is opened without creating tables, so that a database that is
        # not Optuna's (or an empty file) is refused untouched instead of being written to.
        return optuna.storages.RDBStorage(
            url, engine_kwargs=_engine_kwargs(url), skip_table_creation=not create
        )
    except Exception as err:  # SQLAlchemy raises many kinds for bad URLs or servers
        if not create:
            raise StorageError(f"storage {url!r} is not an Optuna study database") from None
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise StorageError(f"cannot open storage {url!r}: {reason}") from None


def _engine_kwargs(url: str) -> dict[str, Any]:
    # A dashboard may read the SQLite file while the search writes: wait for its locks.
    return {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}


def load_study(url: str, name: str | None) -> optuna.Study:
    """An existing study; with ``name=None`` the storage must hold exactly one."""
    import optuna

    storage = open_storage(url, create=False)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if not names:
        raise StorageError(f"storage {url!r} holds no study")
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise StorageError(f"storage {url!r} holds {len(names)} studies ({listed}): name one")
        name = names[0]
    if name not in names:
        listed = ", ".join(names) or "none"
        raise StorageError(f"no study {name!r} in {url!r} (studies: {listed})")
    return optuna.load_study(study_name=name, storage=storage)


def finished_count(study: optuna.Study) -> int:
    """Trials that count towards the target: complete, pruned, or failed for a real reason."""
    from optuna.trial import TrialState

    def counts(t: optuna.trial.FrozenTrial) -> bool:
        if t.state == TrialState.FAIL:
            return t.user_attrs.get("fail_reason") != INTERRUPTED
        return t.state in (TrialState.COMPLETE, TrialState.PRUNED)

    return sum(counts(t) for t in study.get_trials(deepcopy=False))


def recover_interrupted(study: optuna.Study) -> list[int]:
    """Fail trials left RUNNING by a killed search and queue their parameters once more.

    A retried trial carries ``retry_of``; a trial that was itself a retry is not queued again.
    Returns the numbers of the trials that were failed.
    """
    from optuna.trial import TrialState

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(trial._trial_id, "fail_reason", INTERRUPTED)
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        failed.append(trial.number)
        if "retry_of" not in trial.user_attrs and trial.params:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
    return failed


def check_compatible(study: optuna.Study, expected: dict[str, Any]) -> None:
    """Refuse to continue a study whose budget, space or data set differ from this search's."""
    stored = study.user_attrs
    for key in ("budget", "space_hash", "dataset", "pareto"):
        if key in stored and stored[key] != expected[key]:
            raise StorageError(
                f"study {study.study_name!r} was run with {key} {stored[key]!r}; this search "
                f"asks for {expected[key]!r}: choose another --study-name"
            )
