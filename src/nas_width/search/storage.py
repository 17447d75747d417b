"""Optuna storage: open what a storage string names, and the studies in it.

Storage strings: an Optuna RDB URL (``sqlite:///nas-width.db``, ``postgresql://...``), or a
journal file (``journal:path`` or a path ending in ``.log``/``.journal``). Only the Ray driver
writes to the study; trials report to it through Ray Tune. Anything that cannot be opened as
asked (a bad URL, a missing directory, a file that is not Optuna's, one this user cannot write)
is a :class:`~nas_width.search.errors.StorageError` naming it, raised before anything is written.
What happens to a study once open lives beside this module: creating or resuming it
(:mod:`~nas_width.search.opening`), its lease (:mod:`~nas_width.search.lease`) and the recovery
of interrupted trials (:mod:`~nas_width.search.recovery`).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_width.search.errors import StorageError

if TYPE_CHECKING:
    import optuna

__all__ = ["StorageError", "check_writable", "open_storage", "open_study", "storage_exists"]


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


def _set_up_meanwhile(err: Exception) -> bool:
    """Whether opening a new database failed because another process created its tables
    ("table ... already exists") or wrote its schema version (a unique-key clash on
    ``alembic_version``) between Optuna's check and its write."""
    from sqlalchemy.exc import IntegrityError

    return "already exists" in str(err) or isinstance(err, IntegrityError)


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
        try:
            return JournalStorage(JournalFileBackend(str(journal)))
        except Exception:  # optuna replays the file: any other content fails to decode
            raise StorageError(f"storage {url!r} is not an Optuna journal file") from None
    if "://" not in url:
        raise StorageError(
            f"storage {url!r} is not a database URL (sqlite:///file.db, postgresql://...) "
            "or a journal file (journal:file.log)"
        )
    sqlite = _sqlite_path(url)
    if sqlite is not None and not sqlite.parent.is_dir():
        raise StorageError(f"storage {url!r}: directory {str(sqlite.parent)!r} is missing")
    for tries_left in (2, 1, 0):
        try:
            # An existing storage is opened without creating tables, so that a database that
            # is not Optuna's (or an empty file) is refused untouched instead of being written.
            return optuna.storages.RDBStorage(
                url, engine_kwargs=_engine_kwargs(url), skip_table_creation=not create
            )
        except Exception as err:  # SQLAlchemy raises many kinds for bad URLs or servers
            if not create:
                raise StorageError(f"storage {url!r} is not an Optuna study database") from None
            if tries_left and _set_up_meanwhile(err):
                # Another process (a search, a dashboard) set up the same new database at this
                # moment: Optuna's table and version set-up is not atomic. It is there now.
                time.sleep(0.5)
                continue
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise StorageError(f"cannot open storage {url!r}: {reason}") from None
    raise AssertionError("unreachable")


def check_writable(url: str) -> None:
    """Refuse a SQLite or journal file this user cannot write (or its directory), or one that
    is damaged, before anything writes to it: SQLite says it cannot write only at the first
    write, as a traceback mid-search, and a write after a damaged record makes it worse (Optuna
    reads past a journal's cut-off last record, but a record appended to it joins that line,
    and from then on the whole file fails to read).

    Raises:
        StorageError: naming the storage, the path and, for damage, what is damaged and how to
            keep what is readable.
    """
    path = _sqlite_path(url) or _journal_path(url)
    if path is None:
        return  # a database server: its permissions are the server's to refuse
    if path.exists() and not os.access(path, os.W_OK):
        raise StorageError(f"storage {url!r}: {str(path)!r} is not writable by this user")
    # SQLite writes a journal beside the file; a new file needs the directory too.
    if path.parent.is_dir() and not os.access(path.parent, os.W_OK | os.X_OK):
        raise StorageError(
            f"storage {url!r}: directory {str(path.parent)!r} is not writable by this user"
        )
    if not path.is_file() or path.stat().st_size == 0:
        return
    damage = _journal_damage(path) if _journal_path(url) else _sqlite_damage(path)
    if damage is not None:
        raise StorageError(f"storage {url!r} is damaged: {damage}; nothing was written to it")


def _journal_damage(path: Path) -> str | None:
    """Why a journal file cannot be appended to (a record cut off or not JSON), with the
    command that keeps the complete records before it; None if every record is whole."""
    import json

    with path.open("rb") as journal:
        for number, line in enumerate(journal, start=1):
            if not line.endswith(b"\n"):
                why = f"its last record (line {number}) is cut off, as a crash mid-write leaves it"
            else:
                try:
                    json.loads(line)
                    continue
                except ValueError:
                    why = f"record {number} is not JSON"
            keep = f"head -n {number - 1} {shlex.quote(str(path))} > fixed.log"
            return f"{why}. Keep the {number - 1} records before it with: {keep}"
    return None


def _sqlite_damage(path: Path) -> str | None:
    """SQLite's own check of the file, read-only; None when it is sound (or not SQLite at all:
    opening it says so)."""
    import sqlite3

    with open(path, "rb") as head:
        if head.read(16) != b"SQLite format 3\x00":
            return None
    try:
        with contextlib.closing(
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        ) as db:
            rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as err:
        rows = [(str(err),)]
    if rows == [("ok",)]:
        return None
    found = "; ".join(str(r[0]) for r in rows[:2])
    keep = f"sqlite3 {shlex.quote(str(path))} .recover > recovered.sql"
    return f"SQLite finds {found}. Recover what is readable with: {keep}"


def _engine_kwargs(url: str) -> dict[str, Any]:
    # A dashboard may read the SQLite file while the search writes: wait for its locks.
    return {"connect_args": {"timeout": 30}} if url.startswith("sqlite") else {}


def open_study(url: str, name: str | None) -> optuna.Study:
    """An existing study; with ``name=None`` the storage must hold exactly one."""
    import optuna

    storage = open_storage(url, create=False)
    names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
    if not names:
        raise StorageError(f"storage {url!r} holds no study")
    if name is None:
        if len(names) != 1:
            listed = ", ".join(names) or "none"
            raise StorageError(
                f"storage {url!r} holds {len(names)} studies ({listed}): name one with --study-name"
            )
        name = names[0]
    if name not in names:
        listed = ", ".join(names) or "none"
        raise StorageError(f"no study {name!r} in {url!r} (studies: {listed})")
    return optuna.load_study(study_name=name, storage=storage)
