"""Real processes for the end-to-end tests: ``nas-width search`` runs and a PostgreSQL server.

A search runs in a session of its own (``start_new_session``), so that a test can signal it as a
terminal would (the process group) and kill it as the kernel's OOM killer or ``kill -9`` would
(SIGKILL to the group). Ray's workers run in process groups of their own but stay in that
session, which is how a test checks that nothing of a killed search survives it, and how it
cleans up exactly its own processes.

The PostgreSQL server is started from the distribution's binaries on loopback on a free port,
in a temporary directory, as an unprivileged user when the tests run as root (PostgreSQL refuses
to run as root), and stopped when the tests end.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest

from tests.conftest import console_script

#: Generous: the machine may be busy with other searches.
PATIENCE_S = 240.0


def read_trials(storage: str, study_name: str) -> list[optuna.trial.FrozenTrial]:
    """The study's trials, read without creating anything (no tables, no study)."""
    from nas_width.search.storage import open_storage

    backend = open_storage(storage, create=False)
    return optuna.load_study(study_name=study_name, storage=backend).get_trials(deepcopy=True)


def session_pids(sid: int) -> list[int]:
    """Processes of the session ``sid`` (Linux /proc), zombies excluded."""
    pids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:  # state, ppid, pgrp, session
            pids.append(int(Path(stat).parent.name))
    return pids


def descendants(root: int) -> set[int]:
    """``root`` and every process below it (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo += children.get(pid, [])
    return found


def listening(pids: set[int]) -> list[str]:
    """The local addresses ("ip:port", hex as /proc gives them) where ``pids`` listen on TCP."""
    where = {}
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == "0A":  # LISTEN
                where[f"socket:[{fields[9]}]"] = fields[1]
    found = []
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        found += [where[link] for link in links if link in where]
    return found


#: 127.0.0.1 in /proc/net/tcp, and as an IPv4-mapped address in /proc/net/tcp6.
LOOPBACK = ("0100007F:", "0000000000000000FFFF00000100007F:")


def wait_for(what: str, check: Callable[[], Any], timeout: float = PATIENCE_S) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@dataclass
class Search:
    """A ``nas-width search`` running in its own session; output goes to files."""

    args: list[str]
    cwd: Path
    process: subprocess.Popen[str]
    out: Path
    err: Path

    @property
    def sid(self) -> int:
        return self.process.pid

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait(self, timeout: float = PATIENCE_S) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"search did not end within {timeout:.0f} s\n{self.stdout()}\n{self.stderr()}"
            ) from None

    def signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL the process group, reap the search, and kill what is left of its session."""
        self.signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        for pid in session_pids(self.sid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def session_gone(self, timeout: float = 60) -> list[int]:
        """Wait until no process of the search's session is left; returns the survivors."""
        deadline = time.monotonic() + timeout
        while (left := session_pids(self.sid)) and time.monotonic() < deadline:
            time.sleep(0.2)
        return left


class Searches:
    """Starts searches and, at the end of a test, kills whatever of them still runs."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.started: list[Search] = []

    def start(
        self, *args: str | Path, env: dict[str, str] | None = None, ctrl_c_ignored: bool = False
    ) -> Search:
        """Start a search with Ctrl-C as a terminal's foreground job has it, whatever the suite
        inherited (a shell's background job ignores SIGINT, and its children inherit that); or
        ignored, as a background job of a script (``ctrl_c_ignored``)."""
        n = len(self.started)
        out, err = self.directory / f"search-{n}.out", self.directory / f"search-{n}.err"
        words = [str(a) for a in args]
        sigint = signal.SIG_IGN if ctrl_c_ignored else signal.SIG_DFL
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [*console_script(), "search", *words],
                cwd=self.directory, stdout=stdout, stderr=stderr, text=True,
                start_new_session=True, env={**os.environ, **(env or {})},
                preexec_fn=lambda: signal.signal(signal.SIGINT, sigint),
            )  # fmt: skip
        search = Search(words, self.directory, process, out, err)
        self.started.append(search)
        return search

    def run(self, *args: str | Path, timeout: float = PATIENCE_S) -> Search:
        """Start a search and wait for it to end."""
        search = self.start(*args)
        search.wait(timeout)
        return search

    def cleanup(self) -> None:
        for search in self.started:
            if search.alive() or session_pids(search.sid):
                search.kill()


@pytest.fixture(name="searches")
def searches_fixture(tmp_path: Path) -> Iterator[Searches]:
    """Searches of one test, killed at its end if still running (import it to use it)."""
    started = Searches(tmp_path)
    try:
        yield started
    finally:
        started.cleanup()


# PostgreSQL -----------------------------------------------------------------------------------


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Postgres:
    """A running server: ``url(database)`` for SQLAlchemy, ``create_database()`` for a test."""

    port: int
    user: str = "postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg2

        name = f"t_{uuid.uuid4().hex[:12]}"
        connection = psycopg2.connect(
            host="127.0.0.1", port=self.port, user=self.user, dbname="postgres"
        )
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"CREATE DATABASE {name}")
        finally:
            connection.close()
        return self.url(name)


@pytest.fixture(scope="session", name="postgres")
def postgres_fixture() -> Iterator[Postgres]:
    """A PostgreSQL server of our own, or a skip that says why there cannot be one."""
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (initdb/pg_ctl not found; .ci/run installs it)")
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("the psycopg2 driver is not installed (pip install -e '.[test]')")
    root = Path(tempfile.mkdtemp(prefix="nas-width-pg-"))
    owner: dict[str, Any] = {}
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        import pwd

        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        owner = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    data, log, port = root / "data", root / "server.log", free_port()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args, cwd=root, capture_output=True, text=True, check=False, timeout=120, **owner
        )

    done = run(initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
               "--no-sync")  # fmt: skip
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {(done.stderr or done.stdout).strip()[-300:]}")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    done = run(pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
    if done.returncode != 0:
        reason = log.read_text()[-300:] if log.exists() else done.stderr[-300:]
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {reason.strip()}")
    try:
        yield Postgres(port)
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "-t", "60", "stop")
        shutil.rmtree(root, ignore_errors=True)
