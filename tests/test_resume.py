"""A search survives what happens to real searches: SIGKILL, Ctrl-C, a second search at once.

Every search here is a real ``nas-width search`` process on the digits study (a small space,
tiny epochs) in a session of its own; Ray's processes are its children. A kill is SIGKILL to
the process group, Ctrl-C is SIGINT to it as a terminal sends it. The storage is polled
read-only to signal at the right moment (trials finished and trials training), and everything is
checked in the storage afterwards, on SQLite, a journal file and a PostgreSQL server.
"""

from __future__ import annotations

import re
import shlex
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FrozenTrial, TrialState

from nas_width.schema import COMPLETE_MARK
from nas_width.search.hooks import MOMENTS, PAUSE_HOOK_ENV
from nas_width.search.recovery import INTERRUPTED, MAX_ATTEMPTS
from tests.servers import (
    LOOPBACK,
    Postgres,
    Search,
    Searches,
    listening,
    postgres_fixture,  # noqa: F401 (the fixture "postgres")
    read_trials,
    searches_fixture,  # noqa: F401 (the fixture "searches")
    session_pids,
    wait_for,
)

pytestmark = pytest.mark.slow

BUDGET = "10k"
STUDY_NAME = "digits-params-10k"  # the default name: study, metric, value
SPACE = """\
name = "small"
mixing = ["mixer", "rp"]
patch = [[2, 2], [2, 4], [4, 2]]
gamma_token = [2.0]
gamma_channel = [2.0, 4.0]
depth = [1, 2]
"""


def search_args(directory: Path, storage: str, trials: int, epochs: int) -> list[str]:
    space = directory / "space-small.toml"
    space.write_text(SPACE)
    return ["--study", "digits", "--space", str(space), "--budget", BUDGET, "--storage", storage,
            "--trials", str(trials), "--epochs", str(epochs), "--max-concurrent", "2"]  # fmt: skip


def trials_now(storage: str, search: Search) -> list[FrozenTrial]:
    """The study's trials, or [] until the search says that it runs them.

    Before that line the search may be setting the storage up, and Optuna writes its schema
    version when it opens a database that has none: a reader must not race it.
    """
    if "trial(s) to run" not in search.stdout():
        return []
    try:
        return read_trials(storage, STUDY_NAME)
    except Exception:  # a journal line half appended
        return []


def training(
    storage: str, search: Search, after: int = -1, finished: int = 0
) -> list[FrozenTrial] | None:
    """Trials that are RUNNING and have reported an epoch (numbered above ``after``), once at
    least ``finished`` trials are complete; None until then."""
    trials = trials_now(storage, search)
    complete = sum(t.state == TrialState.COMPLETE for t in trials)
    running = [
        t for t in trials
        if t.state == TrialState.RUNNING and t.intermediate_values and t.number > after
    ]  # fmt: skip
    return running if running and complete >= finished else None


def is_finished(t: FrozenTrial) -> bool:
    if t.state == TrialState.FAIL:
        return t.user_attrs.get("fail_reason") != INTERRUPTED
    return t.state in (TrialState.COMPLETE, TrialState.PRUNED)


def record(t: FrozenTrial) -> tuple[object, ...]:
    """What a finished trial must keep through kills and resumes."""
    return (t.state, t.params, t.values, t.intermediate_values, t.datetime_complete,
            t.user_attrs.get("fail_reason"))  # fmt: skip


def first_of_chain(t: FrozenTrial) -> int:
    return int(t.user_attrs.get("retry_of", t.number))


def attempt(t: FrozenTrial) -> int:
    return int(t.user_attrs.get("attempt", 1))


def check_interrupted_were_retried_once(trials: list[FrozenTrial], stopped: set[int]) -> None:
    """Each trial in ``stopped`` ended FAIL (interrupted) and has exactly one retry, unless it
    was stopped before it had a shape or on its last attempt."""
    for number in stopped:
        t = trials[number]
        assert t.state == TrialState.FAIL, t
        assert t.user_attrs["fail_reason"] == INTERRUPTED
        retries = [
            r for r in trials
            if "retry_of" in r.user_attrs and first_of_chain(r) == first_of_chain(t)
            and attempt(r) == attempt(t) + 1
        ]  # fmt: skip
        # Killed between Optuna's ask and the sampler's choice: no shape, nothing to retry.
        chosen = t.params or t.system_attrs.get("fixed_params")
        expected = 1 if chosen and attempt(t) < MAX_ATTEMPTS else 0
        assert len(retries) == expected, (t.number, [r.number for r in retries])
        for r in retries:  # the same shape (a kill may come before its features were set)
            assert r.params["shape"] == (chosen or {}).get("shape")


def sigkill(search: Search) -> None:
    """SIGKILL the search alone (``kill -9 PID``); Ray's processes must be gone 10 s later."""
    search.process.kill()
    search.wait(timeout=60)
    survivors = search.session_gone(timeout=10)
    assert not survivors, f"processes of the killed search still run after 10 s: {survivors}"


@pytest.fixture(params=["sqlite", "journal", "postgres"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    if request.param == "journal":
        return f"journal:{tmp_path / 'study.log'}"
    server: Postgres = request.getfixturevalue("postgres")
    return server.create_database()


def test_sigkill_then_resume_keeps_finished_trials_and_retries_interrupted_ones(
    searches: Searches, storage: str, tmp_path: Path
) -> None:
    """SQLite: kill, resume and kill again, resume to the end; the others: one kill."""
    target = 6
    args = search_args(tmp_path, storage, trials=target, epochs=12)
    kills = 2 if storage.startswith("sqlite") else 1
    finished: dict[int, tuple[object, ...]] = {}  # before some kill, by trial number
    stopped: set[int] = set()  # RUNNING when a search was killed
    killed_pids: list[int] = []
    last = -1
    for kill in range(kills):
        search = searches.start(*args, *(["--resume"] if kill else []))

        def trains_or_died(run: Search = search, after: int = last) -> list[FrozenTrial] | bool:
            return training(storage, run, after, 1) or not run.alive()

        wait_for("a trial to train while another is finished", trains_or_died)
        assert search.alive(), search.stderr()
        sigkill(search)
        killed_pids.append(search.process.pid)
        trials = read_trials(storage, STUDY_NAME)
        for t in trials:
            if is_finished(t):
                assert finished.setdefault(t.number, record(t)) == record(t)
        running = {t.number for t in trials if t.state == TrialState.RUNNING}
        assert running, "the kill found no trial running"
        stopped |= running
        last = max(t.number for t in trials)

    final = searches.run(*args, "--resume")
    assert final.process.returncode == 0, final.stderr()
    out = final.stdout()
    assert f"taking over from the search with pid {killed_pids[-1]} on host " in out
    assert re.search(r"^marked interrupted trials \[[\d, ]+\] as failed", out, re.MULTILINE)
    trials = read_trials(storage, STUDY_NAME)
    assert sum(is_finished(t) for t in trials) == target
    assert not [t.number for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for number, kept in finished.items():
        assert record(trials[number]) == kept, f"trial {number} changed after the kill"
    check_interrupted_were_retried_once(trials, stopped)
    assert {t.number for t in trials if t.user_attrs.get("fail_reason") == INTERRUPTED} == stopped


@dataclass
class CtrlC:
    """One search stopped by Ctrl-C, a second one tried while it ran, then the printed resume."""

    storage: str
    target: int
    first: Search
    second: Search
    resumed: Search
    before_second: list[FrozenTrial]
    after_second: list[FrozenTrial]
    stopped: list[FrozenTrial]
    final: list[FrozenTrial] = field(default_factory=list)


@pytest.fixture(scope="module")
def ctrl_c(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CtrlC]:
    directory = tmp_path_factory.mktemp("ctrl-c")
    runs = Searches(directory)
    try:
        storage = f"sqlite:///{directory / 'study.db'}"
        target = 6
        args = search_args(directory, storage, trials=target, epochs=30)
        first = runs.start(*args)
        before = wait_for("a trial to train", lambda: training(storage, first) or not first.alive())
        assert first.alive(), first.stderr()
        second = runs.run(*args, "--resume", timeout=180)
        after = read_trials(storage, STUDY_NAME)
        wait_for(
            "a trial to train while another is finished",
            lambda: training(storage, first, finished=1) or not first.alive(),
        )
        assert first.alive(), first.stderr()
        first.signal_group(signal.SIGINT)  # as Ctrl-C in a terminal
        first.wait(timeout=120)
        stopped = read_trials(storage, STUDY_NAME)
        command = re.search(r"^continue with: (.+)$", first.stderr(), re.MULTILINE)
        assert command, first.stderr()
        words = shlex.split(command[1])
        assert words[:2] == ["nas-width", "search"], words
        resumed = runs.start(*words[2:])  # the printed command, as the user would paste it
        resumed.wait()
        yield CtrlC(storage, target, first, second, resumed, before, after, stopped,
                    read_trials(storage, STUDY_NAME))  # fmt: skip
    finally:
        runs.cleanup()


def test_a_second_search_of_a_running_study_exits_2_naming_the_holder(ctrl_c: CtrlC) -> None:
    second = ctrl_c.second
    assert second.process.returncode == 2, second.stderr()
    assert second.stdout() == ""
    err = second.stderr()
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"nas-width: error: study '{STUDY_NAME}' is in use by the search ")
    assert f"with pid {ctrl_c.first.process.pid} on host " in err
    assert re.search(r" since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", err), err
    # It touched no trial of the running search: what was training is still training or done.
    before = {t.number: t for t in ctrl_c.before_second}
    for t in ctrl_c.after_second:
        assert t.user_attrs.get("fail_reason") != INTERRUPTED
        if t.number in before and before[t.number].state != TrialState.RUNNING:
            assert record(t) == record(before[t.number])


def test_ctrl_c_exits_130_and_marks_the_running_trials_interrupted(ctrl_c: CtrlC) -> None:
    first = ctrl_c.first
    err = first.stderr()
    assert first.process.returncode == 130, err
    assert "Traceback" not in err
    assert not first.session_gone(timeout=10), "Ray processes outlived the interrupted search"
    stopped = ctrl_c.stopped
    assert not [t.number for t in stopped if t.state == TrialState.RUNNING]
    interrupted = {t.number for t in stopped if t.user_attrs.get("fail_reason") == INTERRUPTED}
    assert interrupted, "Ctrl-C came while trials were training"
    listed = re.search(r"^interrupted: trial\(s\) ([\d, ]+) stopped before they finished", err,
                       re.MULTILINE)  # fmt: skip
    assert listed, err
    assert {int(n) for n in listed[1].split(", ")} == interrupted
    done = sum(t.state == TrialState.COMPLETE for t in stopped)
    assert f"; {done} of {ctrl_c.target} trial(s) done in '{STUDY_NAME}'" in err
    waiting = [t for t in stopped if t.state == TrialState.WAITING]
    assert sorted(t.user_attrs["retry_of"] for t in waiting) == sorted(interrupted)
    for t in waiting:
        shape = stopped[t.user_attrs["retry_of"]].params["shape"]
        assert t.system_attrs["fixed_params"] == {"shape": shape}  # its features follow from it


def test_the_printed_resume_command_completes_the_study(ctrl_c: CtrlC) -> None:
    resumed = ctrl_c.resumed
    assert resumed.process.returncode == 0, resumed.stderr()
    out = resumed.stdout()
    assert "taking over" not in out  # Ctrl-C released the study
    assert "marked interrupted" not in out  # and left nothing RUNNING
    final = ctrl_c.final
    assert sum(is_finished(t) for t in final) == ctrl_c.target
    assert not [t.number for t in final if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    for t in ctrl_c.stopped:
        if is_finished(t):
            assert record(final[t.number]) == record(t)
    interrupted = {t.number for t in ctrl_c.stopped if t.state == TrialState.FAIL}
    check_interrupted_were_retried_once(final, interrupted)
    for t in final:
        if "retry_of" in t.user_attrs:
            assert t.state == TrialState.COMPLETE


def test_sigterm_stops_a_search_as_ctrl_c_does(tmp_path: Path) -> None:
    """``kill PID`` (or a scheduler's time limit) mid-trial: the running trials end
    interrupted, the resume command is printed, no stack dump, no Ray process left."""
    runs = Searches(tmp_path)
    try:
        storage = f"sqlite:///{tmp_path / 'term.db'}"
        search = runs.start(*search_args(tmp_path, storage, trials=4, epochs=30))
        wait_for("a trial to train", lambda: training(storage, search) or not search.alive())
        assert search.alive(), search.stderr()
        search.process.send_signal(signal.SIGTERM)  # the search process alone, as kill does
        search.wait(timeout=120)
        err = search.stderr()
        assert search.process.returncode == 143, err  # 128 + SIGTERM, the resume hint printed
        assert "Traceback" not in err
        assert re.search(r"^continue with: nas-width search .*--resume", err, re.MULTILINE), err
        stopped = read_trials(storage, STUDY_NAME)
        assert not [t.number for t in stopped if t.state == TrialState.RUNNING]
        assert any(t.user_attrs.get("fail_reason") == INTERRUPTED for t in stopped)
        assert not search.session_gone(timeout=10), "Ray processes outlived the search by 10 s"
    finally:
        runs.cleanup()


#: What Ray's driver prints, with a stack dump, when a signal reaches its own handler.
RAY_SIGNAL_DUMP = "received at time="

SIGNALS = {"INT": signal.SIGINT, "TERM": signal.SIGTERM, "KILL": signal.SIGKILL}
#: How the search ends on each signal: 128 + the signal as the CLI's exit code, or killed.
ENDS = {"INT": 130, "TERM": 143, "KILL": -signal.SIGKILL}


def study_now(storage: str) -> tuple[dict[str, Any] | None, list[FrozenTrial]]:
    """The study's settings and trials, (None, []) if no study was made."""
    from nas_width.search.storage import open_storage

    if not Path(storage.removeprefix("sqlite:///")).exists():
        return None, []
    backend = open_storage(storage, create=False)
    if STUDY_NAME not in {s.study_name for s in optuna.get_all_study_summaries(backend)}:
        return None, []
    study = optuna.load_study(study_name=STUDY_NAME, storage=backend)
    return study.user_attrs, study.get_trials(deepcopy=True)


def start_paused(
    runs: Searches, args: list[str], moment: str, ctrl_c_ignored: bool = False
) -> Search:
    """A search started and held at ``moment`` (one of MOMENTS), alive there."""
    search = runs.start(*args, env={PAUSE_HOOK_ENV: moment}, ctrl_c_ignored=ctrl_c_ignored)
    paused = f"nas-width: paused at {moment}"
    wait_for(paused, lambda: paused in search.stderr() or not search.alive())
    assert search.alive(), search.stderr()
    return search


@pytest.mark.parametrize("name", list(SIGNALS))
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_signal_at_any_moment_leaves_a_whole_study_or_none_and_the_next_run_completes(
    tmp_path: Path, moment: str, name: str
) -> None:
    """Before the settings, while Ray starts, before the summary (mid-trial: the tests above):
    INT, TERM and KILL leave no study without its settings and no Ray process 10 s later; the
    command the search printed (after a KILL: --resume, or a plain rerun of a study that never
    came into being) completes the study, and no finished trial is lost or run again."""
    runs = Searches(tmp_path)
    try:
        storage = f"sqlite:///{tmp_path / 'moment.db'}"
        args = search_args(tmp_path, storage, trials=2, epochs=1)
        search = start_paused(runs, args, moment)
        _, finished = study_now(storage)
        if moment == "summary":  # Ray is up, its workers too: nothing listens beyond loopback
            addresses = listening(set(session_pids(search.sid)))
            assert addresses, "no listener found"
            assert [a for a in addresses if not a.startswith(LOOPBACK)] == []
        search.process.send_signal(SIGNALS[name])  # the search process alone, as kill does
        assert search.wait(timeout=120) == ENDS[name], search.stderr()
        err = search.stderr()
        assert "Traceback" not in err, err
        assert RAY_SIGNAL_DUMP not in err, err
        assert not search.session_gone(timeout=10), "Ray processes outlived the search by 10 s"
        settings, _ = study_now(storage)
        whole = settings is not None and COMPLETE_MARK in settings
        if name == "KILL" and moment == "settings":  # killed half-made: it counts as not made
            assert settings is not None
            assert not whole
            refused = runs.run(*args, "--resume")
            assert refused.process.returncode == 2, refused.stderr()
            assert "was never fully created" in refused.stderr()
            rerun = args
        elif name == "KILL":
            assert settings is None or whole
            rerun = [*args, "--resume"] if whole else args
        else:
            assert settings is None or whole, settings
            hint = re.search(r"^(?:interrupted; )?continue with: (nas-width search .*)$", err, re.M)
            assert hint is not None, err
            rerun = shlex.split(hint[1])[2:]
            assert ("--resume" in rerun) is whole
        done = runs.run(*rerun)
        assert done.process.returncode == 0, done.stderr()
        settings, trials = study_now(storage)
        assert settings is not None
        assert COMPLETE_MARK in settings
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 2  # none re-run or lost
        for before in finished:
            if before.state == TrialState.COMPLETE:
                assert record(trials[before.number]) == record(before)
    finally:
        runs.cleanup()


def test_sigterm_stops_a_search_started_with_ctrl_c_ignored(tmp_path: Path) -> None:
    """A search run as a background job of a script (``nas-width search ... &``: the shell
    ignores SIGINT there) still stops on ``kill PID``: exit 143, the resume command, a whole
    study, no stack dump. It used to run on to exit 0 before the trials and after them, or to
    abort in Ray's own SIGTERM handler."""
    runs = Searches(tmp_path)
    try:
        storage = f"sqlite:///{tmp_path / 'ignored.db'}"
        args = search_args(tmp_path, storage, trials=2, epochs=1)
        for moment in ("ray", "summary"):
            search = start_paused(runs, args, moment, ctrl_c_ignored=True)
            search.process.send_signal(signal.SIGTERM)
            assert search.wait(timeout=120) == ENDS["TERM"], search.stderr()
            err = search.stderr()
            assert "Traceback" not in err, err
            assert RAY_SIGNAL_DUMP not in err, err
            assert re.search(r"^(interrupted; )?continue with: nas-width search ", err, re.M), err
            assert not search.session_gone(timeout=10), "Ray processes outlived the search"
            settings, _ = study_now(storage)
            assert settings is None or COMPLETE_MARK in settings, settings
            if moment == "ray":
                assert settings is None  # stopped before the study came into being
        _, trials = study_now(storage)
        assert [t.state for t in trials] == [TrialState.COMPLETE] * 2  # the summary's run
    finally:
        runs.cleanup()
