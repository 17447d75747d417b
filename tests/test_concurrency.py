"""optuna-dashboard reading the SQLite study while ``nas-width search`` writes to it.

DESIGN.md section 3: "a dashboard reading the same file concurrently must not break a running
search". Both are real processes: the console script's ``dashboard`` serves the storage on a free
loopback port and ``search`` runs the digits study (two trials at once, a few epochs each) into
the same file. The test polls the dashboard's HTTP API, as its web page does, for as long as the
search runs. Every answer must be 200, the trial list must only grow (no trial lost, none
renumbered, a finished trial never changes), and once the search is done the dashboard must show
exactly the trials in the storage.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.conftest import console_script

pytestmark = pytest.mark.slow

STUDY_NAME = "live"
TRIALS = 6
EPOCHS = 2
#: Generous: the machine may be busy with other searches.
PATIENCE_S = 300.0
#: optuna-dashboard caches a study's trials for 2 s (fewer than 100 trials).
CACHE_S = 2.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> Any:
    """GET a dashboard API answer; an HTTP error status raises ``HTTPError``."""
    with urllib.request.urlopen(url, timeout=60) as response:  # loopback only
        assert response.status == 200, url
        return json.loads(response.read())


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a process this test started in a session of its own, and everything in that
    session (a search's local Ray: its raylet, and workers in process groups of their own)."""
    if process.poll() is None:  # not reaped: its pid cannot belong to another process yet
        os.killpg(process.pid, signal.SIGKILL)
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        try:
            stat = Path(entry.path, "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # it ended while being read
            continue
        if stat and int(stat[stat.rindex(")") + 2 :].split()[3]) == process.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(entry.name), signal.SIGKILL)
    process.wait(timeout=30)


def env() -> dict[str, str]:
    """This environment without a Ray address, so that the search starts its own local Ray."""
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; each is killed (with its session) when the test ends."""
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        stop(process)


Snapshot = dict[int, tuple[str, list[float] | None]]


def snapshot(detail: dict[str, Any]) -> Snapshot:
    """Trial number -> (state, values) as the dashboard shows them."""
    return {t["number"]: (t["state"], t.get("values")) for t in detail["trials"]}


def check_growth(before: Snapshot, now: Snapshot) -> None:
    """What a reader may see change while a search writes: trials are added and then finish."""
    assert sorted(now) == list(range(len(now))), f"trial numbers with a gap: {sorted(now)}"
    assert len(now) >= len(before), f"trials were lost: {sorted(before)} -> {sorted(now)}"
    for number, (state, values) in before.items():
        if state in ("Complete", "Pruned", "Fail"):
            assert now[number] == (state, values), f"finished trial {number} changed"


def dashboard_view(trial: dict[str, Any]) -> dict[str, Any]:
    return {
        "state": trial["state"],
        "values": trial.get("values"),
        "params": {p["name"]: p["param_external_value"] for p in trial["params"]},
        "intermediate": [(v["step"], v["value"]) for v in trial["intermediate_values"]],
        "user_attrs": {a["key"] for a in trial["user_attrs"]},
    }


def storage_view(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    return {
        "state": trial.state.name.capitalize(),
        "values": trial.values,
        "params": {k: str(v) for k, v in trial.params.items()},
        "intermediate": sorted(trial.intermediate_values.items()),
        "user_attrs": set(trial.user_attrs),
    }


def test_dashboard_reads_the_study_while_a_search_writes_it(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    db = tmp_path / "live.db"
    url = f"sqlite:///{db}"
    optuna.storages.RDBStorage(url)  # Optuna's tables, no study: the dashboard starts first
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/studies"
    dashboard_log = tmp_path / "dashboard.log"
    with dashboard_log.open("wb") as log:
        dashboard = subprocess.Popen(
            [*console_script(), "dashboard", "--storage", url, "--port", str(port)],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, env=env(), start_new_session=True,
        )  # fmt: skip
    processes.append(dashboard)
    deadline = time.monotonic() + 60
    studies = None
    while studies is None:
        assert dashboard.poll() is None, dashboard_log.read_text()
        assert time.monotonic() < deadline, "the dashboard did not answer within 60 s"
        try:
            studies = get_json(base)["study_summaries"]
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    assert studies == []

    out, err = tmp_path / "search.out", tmp_path / "search.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        search = subprocess.Popen(
            [*console_script(), "search", "--study", "digits", "--budget", "5k",
             "--epochs", str(EPOCHS), "--trials", str(TRIALS), "--max-concurrent", "2",
             "--storage", url, "--study-name", STUDY_NAME],
            cwd=tmp_path, stdout=stdout, stderr=stderr, env=env(), start_new_session=True,
        )  # fmt: skip
    processes.append(search)

    # Poll as the dashboard's page does, for as long as the search runs.
    seen: Snapshot = {}
    polls = 0
    states_seen: set[str] = set()
    deadline = time.monotonic() + PATIENCE_S
    while search.poll() is None:
        assert time.monotonic() < deadline, f"the search did not end within {PATIENCE_S:.0f} s"
        ids = [s["study_id"] for s in get_json(base)["study_summaries"]]
        if ids:
            (study_id,) = ids
            now = snapshot(get_json(f"{base}/{study_id}?after=0"))
            check_growth(seen, now)
            seen = now
            polls += 1
            states_seen.update(state for state, _ in now.values())
        time.sleep(0.2)
    search.wait()

    output, errors = out.read_text(), err.read_text()
    assert search.returncode == 0, errors
    for text in (output, errors, dashboard_log.read_text()):
        for bad in ("Traceback", "database is locked", "OperationalError", "Error:"):
            assert bad not in text, text
    for n in range(1, TRIALS + 1):
        assert f"[{n}/{TRIALS}] done " in output, output
    # The polls overlapped the trials: the dashboard saw trials running and finished ones.
    assert polls >= 10, polls
    assert {"Running", "Complete"} <= states_seen, states_seen

    trials = optuna.load_study(study_name=STUDY_NAME, storage=url).get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * TRIALS
    expected = {t.number: storage_view(t) for t in trials}
    # The dashboard's final list is the storage's, once its short trial cache has expired.
    deadline = time.monotonic() + 10 * CACHE_S
    while True:
        (summary,) = get_json(base)["study_summaries"]
        assert summary["study_name"] == STUDY_NAME
        detail = get_json(f"{base}/{summary['study_id']}?after=0")
        shown = {t["number"]: dashboard_view(t) for t in detail["trials"]}
        if shown == expected or time.monotonic() > deadline:
            break
        time.sleep(CACHE_S / 4)
    assert shown == expected
    assert [t["values"] for t in detail["best_trials"]] == [[max(t.values[0] for t in trials)]]
    assert dashboard.poll() is None  # the dashboard still serves
