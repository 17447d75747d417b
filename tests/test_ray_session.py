"""RaySession: a private local Ray started on a background thread while the study opens."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import ray

from nas_width.search.ray_session import RaySession
from tests.servers import LOOPBACK, descendants, listening


@ray.remote(num_cpus=1)
def _square(x: int) -> int:
    return x * x


@pytest.mark.skipif(ray.is_initialized(), reason="needs to start its own Ray")
def test_background_ray_outlives_its_start_and_is_shut_down_by_close() -> None:
    """Ray's processes die with the thread that forked them (Linux's parent-death signal):
    the session keeps that thread alive, so tasks still run after ``start`` returned."""
    session = RaySession(None)
    session.start()
    assert any(t.name == "nas-width-ray" for t in threading.enumerate())
    assert session.wait() is True
    assert ray.get([_square.remote(i) for i in range(3)]) == [0, 1, 4]
    session.close()
    assert not ray.is_initialized()
    assert not any(t.name == "nas-width-ray" for t in threading.enumerate())
    session.close()  # idempotent


def test_close_without_start_does_nothing() -> None:
    session = RaySession(None)
    session.close()
    assert not ray.is_initialized()


@pytest.mark.skipif(ray.is_initialized(), reason="needs to start its own Ray")
def test_a_private_ray_listens_on_loopback_only() -> None:
    """Ray binds every interface unless its node address is loopback (a search on one machine
    must expose nothing): the GCS, the raylet, the driver and the workers all on 127.0.0.1."""
    session = RaySession(None)
    try:
        session.wait()
        assert ray.get([_square.remote(i) for i in range(2)]) == [0, 1]  # workers up
        addresses = listening(descendants(os.getpid()))
        assert len(addresses) >= 3, addresses  # GCS, raylet, driver, workers
        assert [a for a in addresses if not a.startswith(LOOPBACK)] == []
    finally:
        session.close()


DRIVER = """
import sys, time
from nas_width.search.ray_session import RaySession
from tests.servers import LOOPBACK, descendants, listening
session = RaySession(None)
session.wait()
print(session.session_dir, flush=True)
time.sleep(600)
"""


def _in_session(session_dir: str) -> list[int]:
    """Processes with a command line or an open file in ``session_dir``."""
    from nas_width.search._reaper import session_pids

    return session_pids(session_dir, {os.getpid()})


def test_nothing_of_a_private_ray_outlives_a_killed_search_by_10_s(tmp_path: Path) -> None:
    """Ray's agents spend 60 s reporting the raylet's death to a dead GCS; the reaper kills
    them (and any worker) once the search is gone."""
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert driver.stdout is not None
        session_dir = driver.stdout.readline().strip()
        assert session_dir, "the driver did not start Ray"
        assert _in_session(session_dir)  # GCS, raylet, agents
    finally:
        os.kill(driver.pid, signal.SIGKILL)  # the search alone, as `kill -9 PID` does
        driver.wait(timeout=30)
    deadline = time.monotonic() + 10
    while (left := _in_session(session_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], f"processes of the killed search's Ray still run after 10 s: {left}"
