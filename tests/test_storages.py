"""The storage rules a resumed search relies on, on every back end: SQLite, journal, PostgreSQL.

Retries of interrupted trials (one per interruption, never a second copy, at most
``MAX_ATTEMPTS`` runs of the same parameters) and the lease that keeps a second search off a
study that is being run. No Ray here: trials are asked for and left RUNNING as a killed search
leaves them; the end-to-end kill/resume runs are in test_resume.py.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState

from nas_width.schema import COMPLETE_MARK, LEASE_KEY, StudySettings
from nas_width.search import lease as leases
from nas_width.search import recovery
from nas_width.search import storage as stored
from nas_width.search.errors import StorageError
from nas_width.search.opening import check_compatible
from nas_width.search.recovery import INTERRUPTED, MAX_ATTEMPTS
from tests.servers import Postgres, postgres_fixture  # noqa: F401 (the fixture "postgres")

SPACE: dict[str, BaseDistribution] = {"shape": CategoricalDistribution(["a", "b", "c"])}
BACKENDS = ["sqlite", "journal", "postgres"]


@pytest.fixture(params=BACKENDS)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if request.param == "journal":
        return f"journal:{tmp_path / 'study.log'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def study(url: str) -> optuna.Study:
    return optuna.create_study(study_name="s", storage=stored.open_storage(url))


def running(study: optuna.Study, shape: str) -> optuna.trial.Trial:
    """A trial of ``shape`` left RUNNING, as a SIGKILL leaves it."""
    study.enqueue_trial({"shape": shape})
    return study.ask(SPACE)


def test_open_storage_reads_back_what_it_wrote(url: str, study: optuna.Study) -> None:
    trial = running(study, "a")
    study.tell(trial, 0.5)
    again = stored.open_study(url, "s")
    assert [(t.state, t.params, t.values) for t in again.trials] == [
        (TrialState.COMPLETE, {"shape": "a"}, [0.5])
    ]
    assert recovery.finished_count(again) == 1


def test_interrupted_trials_fail_and_are_retried_once_each(url: str, study: optuna.Study) -> None:
    done = running(study, "a")
    study.tell(done, 0.9)
    left = running(study, "b")
    assert recovery.recover_interrupted(study) == [left.number]
    trials = stored.open_study(url, "s").trials
    assert trials[done.number].state == TrialState.COMPLETE  # finished trials are untouched
    assert trials[done.number].values == [0.9]
    assert trials[left.number].state == TrialState.FAIL
    assert trials[left.number].user_attrs["fail_reason"] == INTERRUPTED
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1
    assert waiting[0].user_attrs == {"retry_of": left.number, "attempt": 2}
    assert recovery.recover_interrupted(study) == []  # nothing RUNNING: nothing queued twice
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1
    assert recovery.finished_count(study) == 1  # an interrupted trial does not count


def test_a_retry_that_is_interrupted_is_retried_until_max_attempts(study: optuna.Study) -> None:
    first = running(study, "c")
    numbers = [first.number]
    for attempt in range(2, MAX_ATTEMPTS + 1):
        assert recovery.recover_interrupted(study) == [numbers[-1]]
        retry = study.ask(SPACE)  # Optuna hands out the queued retry first
        assert retry.params == {"shape": "c"}
        assert study.trials[retry.number].user_attrs == {
            "retry_of": first.number,
            "attempt": attempt,
        }
        numbers.append(retry.number)
    assert recovery.recover_interrupted(study) == [numbers[-1]]  # the last attempt: no retry
    trials = study.trials
    assert [trials[n].state for n in numbers] == [TrialState.FAIL] * MAX_ATTEMPTS
    assert not study.get_trials(states=(TrialState.WAITING, TrialState.RUNNING))


def test_recovery_killed_halfway_queues_no_second_copy(study: optuna.Study) -> None:
    left = running(study, "b")
    # The retry was queued, then the recovering search died before failing the trial.
    study.enqueue_trial({"shape": "b"}, user_attrs={"retry_of": left.number, "attempt": 2})
    assert recovery.recover_interrupted(study) == [left.number]
    assert len(study.get_trials(states=(TrialState.WAITING,))) == 1


def test_a_retry_stopped_before_its_parameters_were_suggested_keeps_them(
    study: optuna.Study,
) -> None:
    left = running(study, "a")
    recovery.recover_interrupted(study)
    popped = study.ask()  # the queued retry, RUNNING, its parameter not suggested yet
    assert popped.params == {}
    assert recovery.recover_interrupted(study) == [popped.number]
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert len(waiting) == 1
    assert waiting[0].user_attrs == {"retry_of": left.number, "attempt": 3}
    assert study.ask(SPACE).params == {"shape": "a"}


def test_a_trial_killed_before_its_shape_was_chosen_is_failed_with_nothing_queued(
    study: optuna.Study,
) -> None:
    """Optuna's ask makes the trial RUNNING before the sampler picks its shape; a kill between
    the two leaves no parameters to retry, and the sampler chooses again."""
    bare = study.ask()
    assert recovery.recover_interrupted(study) == [bare.number]
    assert study.trials[bare.number].state == TrialState.FAIL
    assert study.trials[bare.number].user_attrs["fail_reason"] == INTERRUPTED
    assert not study.get_trials(states=(TrialState.WAITING,))


def dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


LeaseValue = str | int | float | None  # a lease record's values, as JSON stores them


def write_lease(study: optuna.Study, **fields: LeaseValue) -> dict[str, LeaseValue]:
    now = time.time()
    record: dict[str, LeaseValue] = {
        "token": "t0", "host": socket.gethostname(), "pid": os.getpid(),
        "process_start": None, "since": now - 60, "heartbeat": now, **fields,
    }  # fmt: skip
    study._storage.set_study_system_attr(study._study_id, LEASE_KEY, record)
    return record


def test_a_live_lease_refuses_a_second_search_naming_the_holder(study: optuna.Study) -> None:
    lease = leases.acquire_lease(study)
    try:
        with pytest.raises(StorageError) as refused:
            leases.acquire_lease(study)
        message = str(refused.value)
        assert "\n" not in message
        assert "study 's' is in use" in message
        assert f"pid {os.getpid()} on host {socket.gethostname()} since " in message
        assert lease.held()
    finally:
        lease.release()
    assert not lease.held()
    again = leases.acquire_lease(study)  # released: free for the next search
    assert again.taken_over is None
    again.release()


@pytest.mark.parametrize(
    ("fields", "stale"),
    [
        pytest.param({"pid": "DEAD"}, True, id="this-host-process-gone"),
        pytest.param({"process_start": "1"}, True, id="this-host-pid-reused"),
        pytest.param({"host": "elsewhere"}, False, id="other-host-fresh-heartbeat"),
        pytest.param({"host": "elsewhere", "heartbeat": "OLD"}, True, id="other-host-silent"),
    ],
)
def test_a_stale_lease_is_taken_over_and_a_live_one_is_not(
    study: optuna.Study, fields: dict[str, str], stale: bool
) -> None:
    values = {
        k: dead_pid() if v == "DEAD" else time.time() - leases.STALE_S - 5 if v == "OLD" else v
        for k, v in fields.items()
    }
    old = write_lease(study, **values)
    if not stale:
        with pytest.raises(StorageError, match=r"pid .* on host elsewhere since"):
            leases.acquire_lease(study)
        return
    lease = leases.acquire_lease(study)
    try:
        assert lease.taken_over == old
        assert lease.record["pid"] == os.getpid()
        assert lease.held()
    finally:
        lease.release()


def test_the_lease_heartbeat_is_refreshed_while_held(
    study: optuna.Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(leases, "HEARTBEAT_S", 0.1)
    lease = leases.acquire_lease(study)
    try:
        first = float(lease.record["heartbeat"])

        def beat() -> float:
            attrs = study._storage.get_study_system_attrs(study._study_id)
            return float(attrs[LEASE_KEY]["heartbeat"])

        deadline = time.monotonic() + 30
        while beat() <= first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert beat() > first
    finally:
        lease.release()
    assert study._storage.get_study_system_attrs(study._study_id)[LEASE_KEY] is None


def test_a_lease_that_cannot_be_read_does_not_lock_the_study_forever(study: optuna.Study) -> None:
    study._storage.set_study_system_attr(study._study_id, LEASE_KEY, {"token": "t"})
    lease = leases.acquire_lease(study)
    try:
        assert lease.held()
        assert lease.taken_over is None
    finally:
        lease.release()


@pytest.mark.parametrize(
    ("stored_attrs", "refused"),
    [
        ({"shapes_hash": "aaa"}, False),
        ({"shapes_hash": "bbb"}, True),  # the same keys solved to other C or hidden widths
        ({"feasible": {"shapes": 3}}, False),  # a study from before shapes_hash: by its count
        ({"feasible": {"shapes": 4}}, True),
        ({}, False),
    ],
)
def test_resume_refuses_shapes_solved_differently(
    study: optuna.Study, stored_attrs: dict[str, object], refused: bool
) -> None:
    for key, value in {**stored_attrs, COMPLETE_MARK: "0.1.0"}.items():
        study.set_user_attr(key, value)
    expected = StudySettings(budget="params=5k", space_hash="h", dataset={"name": "digits"},
                             pareto=False, shapes_hash="aaa", feasible={"shapes": 3})  # fmt: skip
    if refused:
        with pytest.raises(StorageError, match="shapes solved differently"):
            check_compatible(study, expected)
    else:
        check_compatible(study, expected)


def test_a_study_stopped_while_being_created_is_not_resumed(study: optuna.Study) -> None:
    """A kill between creating the study and writing its settings left 0-2 of them, and the
    guard compared only what was there: a resume with another budget or recipe got in."""
    study.set_user_attr("budget", "params=5k")  # the first setting, then the kill
    expected = StudySettings(budget="params=9k", space_hash="h", dataset={"name": "digits"},
                             pareto=False)  # fmt: skip
    with pytest.raises(StorageError, match=r"was never fully created .*1 of them"):
        check_compatible(study, expected)


def test_a_study_stopped_while_being_created_counts_as_not_created(tmp_path: Path) -> None:
    """A search killed between taking the new study's lease and writing its settings: a rerun
    (not --resume) makes it again, whole. A whole study, a half-made one that holds a trial,
    one whose search is alive, and a bare study made with Optuna's API are refused as
    existing (never deleted)."""
    from nas_width.search.opening import open_search_study
    from nas_width.search.prepare import prepare
    from nas_width.search.study import DatasetSpec, StudySpec

    url = f"sqlite:///{tmp_path / 's.db'}"
    data = DatasetSpec("synthetic", options={"n": 64})
    spec = StudySpec("half", dataset=data, storage=url, space="mixer")
    prepared = prepare(spec, "5k", "half")
    bare = optuna.create_study(study_name="half", storage=url)
    with pytest.raises(StorageError, match="already exists"):
        open_search_study(prepared, resume=False)
    bare.set_user_attr("budget", "params=5k")  # the first setting, then the kill
    write_lease(bare, pid=os.getpid())  # this search is alive: not the killed one's study
    with pytest.raises(StorageError, match="already exists"):
        open_search_study(prepared, resume=False)
    write_lease(bare, pid=dead_pid())
    study, lease = open_search_study(prepared, resume=False)
    lease.release()
    assert study.user_attrs == dict(prepared.study_attrs())  # made again, whole
    with pytest.raises(StorageError, match="already exists"):
        open_search_study(prepared, resume=False)
    optuna.delete_study(study_name="half", storage=url)
    with_trial = optuna.create_study(study_name="half", storage=url)
    write_lease(with_trial, pid=dead_pid())
    with_trial.enqueue_trial({"shape": "x"})
    with pytest.raises(StorageError, match="already exists"):
        open_search_study(prepared, resume=False)


def _open_when_all_are_ready(url: str, ready: Any, said: Any) -> None:
    """One of several searches starting at once: opens ``url`` and says how that went."""
    ready.wait()
    try:
        stored.open_storage(url)
        said.put("opened")
    except StorageError as err:
        said.put(str(err))


def test_searches_starting_together_on_a_new_database_all_open_it(tmp_path: Path) -> None:
    """A sweep launched at once (``for s in ...; do nas-width search ... & done``) on one new
    SQLite file: Optuna checks for its tables and schema version, then writes them, so all but
    one search found the version written meanwhile ("UNIQUE constraint failed:
    alembic_version") and stopped with exit 2 in about half of such starts on this machine.
    Each round is a fresh file; six rounds, as the clash is a matter of timing. (PostgreSQL
    words its clash "... already exists", which was already retried.)"""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # the children need no re-import: quick
    searches = 6
    for round_ in range(6):
        url = f"sqlite:///{tmp_path / f'{round_}.db'}"
        ready, said = context.Barrier(searches), context.Queue()
        started = [
            context.Process(target=_open_when_all_are_ready, args=(url, ready, said))
            for _ in range(searches)
        ]
        for process in started:
            process.start()
        outcomes = [said.get(timeout=120) for _ in started]
        for process in started:
            process.join(timeout=30)
        assert outcomes == ["opened"] * searches, (round_, outcomes)


def test_a_storage_file_this_user_cannot_write_is_refused_before_a_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite said so only at the first write, as a traceback mid-search (root may write
    anywhere, so the permission is stubbed)."""
    db = tmp_path / "s.db"
    db.write_bytes(b"")
    url = f"sqlite:///{db}"
    stored.check_writable(url)
    stored.check_writable("postgresql://u@127.0.0.1:1/x")  # a server's own to refuse
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != db)
    with pytest.raises(StorageError, match=r"s\.db' is not writable by this user"):
        stored.check_writable(url)
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != tmp_path)
    with pytest.raises(StorageError, match=r"directory .* is not writable by this user"):
        stored.check_writable(url)
