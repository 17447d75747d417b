"""Optuna storage: the source of truth of a study.

Storage strings: an Optuna RDB URL (``sqlite:///nas-width.db``, ``postgresql://...``), or a
journal file (``journal:path`` or a path ending in ``.log``/``.journal``). Only the Ray driver
writes to the study; trials report to it through Ray Tune.

Opening a study for a search enforces the rules that keep stored results trustworthy:
a new search refuses an existing study (continue it with ``resume``), a resumed study must have
the same budget and space, and trials left RUNNING by a killed or interrupted search are failed
with a reason and their parameters queued again (see :func:`recover_interrupted`), so that no
finished trial is lost or re-run.

One search at a time: a search holds a lease on its study, a study system attribute
(``nas_width:lease``) that says which process runs it (host, pid, since when) and that the driver
refreshes every ``HEARTBEAT_S`` seconds and clears when it ends, however it ends short of a kill.
A second search on a study whose lease is live is refused (exit code 2, naming the holder),
before it touches a trial: otherwise its recovery would fail the first search's running trials.
A lease is stale, and taken over by ``--resume``, when its process is gone (same host: the pid
does not exist, is a zombie, or is another process that reused the pid) or, for a holder on
another host, when its heartbeat is older than ``STALE_S`` seconds. Taking a lease writes it,
waits ``SETTLE_S`` and reads it back, so that of two searches started at the same moment only
the last writer runs.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_width.errors import NasWidthError
from nas_width.search.internals import study_id, study_storage, trial_id

if TYPE_CHECKING:
    import optuna

__all__ = [
    "INTERRUPTED",
    "MAX_ATTEMPTS",
    "Lease",
    "StorageError",
    "acquire_lease",
    "describe_lease",
    "finished_count",
    "open_storage",
    "recover_interrupted",
]

INTERRUPTED = "interrupted: the search stopped before this trial finished"
#: Runs of the same parameters that an interruption may cost: the first run and two retries.
MAX_ATTEMPTS = 3
LEASE_KEY = "nas_width:lease"
HEARTBEAT_S = 10.0
STALE_S = 120.0
SETTLE_S = 0.5
LEASE_FIELDS = {"token", "host", "pid", "since", "heartbeat"}


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
            if tries_left and "already exists" in str(err):
                # Another process (a search, a dashboard) set up the same new database at this
                # moment: Optuna's table and version set-up is not atomic. It is there now.
                time.sleep(0.5)
                continue
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise StorageError(f"cannot open storage {url!r}: {reason}") from None
    raise AssertionError("unreachable")


def check_writable(url: str) -> None:
    """Refuse a SQLite or journal file (or its directory) this user cannot write, before a
    search touches it: SQLite says so only at the first write, as a traceback mid-search.

    Raises:
        StorageError: naming the storage and the path.
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
            raise StorageError(
                f"storage {url!r} holds {len(names)} studies ({listed}): name one with --study-name"
            )
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
    """Fail the trials left RUNNING by a stopped search and queue their parameters again.

    Call it only while holding the study's lease: every RUNNING trial then belongs to a search
    that is gone (killed), or to this one once Ray has stopped (Ctrl-C).

    "Retried once" means one retry per interruption: each interrupted trial ends FAIL with
    ``fail_reason`` :data:`INTERRUPTED` and exactly one new trial with the same parameters is
    queued (never a second copy, even if recovery itself is killed half-way and run again).
    An interruption is not the trial's fault, so a retry that is interrupted in its turn is
    retried once too, but the same parameters run at most :data:`MAX_ATTEMPTS` times: a shape
    that keeps going down with its search (say, one that exhausts the host's memory) is then
    left to the sampler. A retry carries ``retry_of`` (the number of the first trial of the
    chain) and ``attempt`` (2, 3, ...). Returns the numbers of the trials that were failed.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    queued = {(t.user_attrs["retry_of"], _attempt(t)) for t in trials if "retry_of" in t.user_attrs}
    failed = []
    for trial in trials:
        if trial.state != TrialState.RUNNING:
            continue
        first, attempt = trial.user_attrs.get("retry_of", trial.number), _attempt(trial)
        # A dequeued retry stopped before it was suggested holds its parameters as fixed_params.
        params = trial.params or trial.system_attrs.get("fixed_params")
        if params and attempt < MAX_ATTEMPTS and (first, attempt + 1) not in queued:
            study.enqueue_trial(params, user_attrs={"retry_of": first, "attempt": attempt + 1})
        storage = study_storage(study)
        storage.set_trial_user_attr(trial_id(trial), "fail_reason", INTERRUPTED)
        storage.set_trial_state_values(trial_id(trial), TrialState.FAIL)
        failed.append(trial.number)
    return failed


def _attempt(trial: optuna.trial.FrozenTrial) -> int:
    """Which run of its parameters a trial is: 1, or 2 for a retry stored without ``attempt``."""
    if "retry_of" not in trial.user_attrs:
        return 1
    return int(trial.user_attrs.get("attempt", 2))


#: The study setting written last when a search creates a study: without it, the study was
#: stopped half-made and its other settings cannot be trusted to guard a resume.
COMPLETE_MARK = "nas_width_version"


def check_compatible(study: optuna.Study, expected: dict[str, Any]) -> None:
    """Refuse to continue a study whose budget, space, data set or training recipe differ
    from this search's: its trials would not be comparable.

    Recipe fields are compared where both sides have them, so a study stored before a field
    existed still resumes.
    """
    stored = study.user_attrs
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


def _process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    return None if fields[0] == "Z" else fields[19]  # state, ..., starttime (field 22)


def _process_alive(pid: int, started: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    if not Path("/proc/self/stat").exists():
        return True  # no procfs: existence is all that can be told
    now = _process_start(pid)
    return now is not None and (started is None or now == started)


def _now() -> float:
    return time.time()


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe_lease(lease: dict[str, Any]) -> str:
    """``pid 123 on host h since ... (heartbeat 4 s ago)``: who holds a lease, for messages."""
    age = max(0.0, _now() - float(lease["heartbeat"]))
    return (
        f"pid {lease['pid']} on host {lease['host']} since {_stamp(float(lease['since']))} "
        f"(heartbeat {age:.0f} s ago)"
    )


def _live(lease: dict[str, Any]) -> bool:
    if lease["host"] == socket.gethostname():
        return _process_alive(int(lease["pid"]), lease.get("process_start"))
    return _now() - float(lease["heartbeat"]) < STALE_S


class Lease:
    """This process's claim on a study; refreshed by a daemon thread until :meth:`release`."""

    def __init__(
        self, storage: optuna.storages.BaseStorage, study_id: int, record: dict[str, Any]
    ) -> None:
        self._storage = storage
        self._study_id = study_id
        self.record = record
        self.taken_over: dict[str, Any] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="nas-width-lease", daemon=True)

    def _read(self) -> dict[str, Any] | None:
        """The current lease, or None (released, never taken, or not one that can be read)."""
        value = self._storage.get_study_system_attrs(self._study_id).get(LEASE_KEY)
        if not isinstance(value, dict) or not value.keys() >= LEASE_FIELDS:
            return None
        return value

    def _write(self, value: dict[str, Any] | None) -> None:
        self._storage.set_study_system_attr(self._study_id, LEASE_KEY, value)

    def held(self) -> bool:
        current = self._read()
        return current is not None and current["token"] == self.record["token"]

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not self.held():
                    return  # taken over (this search was thought dead): write nothing more
                self.record["heartbeat"] = _now()
                self._write(self.record)
            except Exception:  # a busy database: try again at the next beat
                continue

    def start(self) -> Lease:
        self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and clear the lease (if it is still this process's)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=HEARTBEAT_S + 30)
        if self.held():
            self._write(None)


def acquire_lease(study: optuna.Study) -> Lease:
    """Take the study's lease for this process, or refuse while another search holds it.

    Raises:
        StorageError: the lease is held by a live search (the message names it).
    """
    storage, sid = study_storage(study), study_id(study)
    holder = Lease(storage, sid, {})
    current = holder._read()
    name = study.study_name
    if current is not None and _live(current):
        raise StorageError(
            f"study {name!r} is in use by the search with {describe_lease(current)}: wait for it "
            "to end, or stop it (--resume takes over the study of a search that is gone)"
        )
    now = _now()
    holder.record = {
        "token": uuid.uuid4().hex,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "process_start": _process_start(os.getpid()),
        "since": now,
        "heartbeat": now,
    }
    holder.taken_over = current
    holder._write(holder.record)
    time.sleep(SETTLE_S)
    won = holder._read()
    if won is None or won["token"] != holder.record["token"]:
        raced = f"the search with {describe_lease(won)}" if won else "another search"
        raise StorageError(f"study {name!r} was just taken by {raced}: try again later")
    return holder.start()
