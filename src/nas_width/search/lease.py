"""One search at a time: the lease a search holds on its study.

A search holds a lease on its study, a study system attribute (``nas_width:lease``,
:data:`~nas_width.schema.LEASE_KEY`) that says which process runs it (host, pid, since when)
and that the driver refreshes every ``HEARTBEAT_S`` seconds and clears when it ends, however it
ends short of a kill. A second search on a study whose lease is live is refused (exit code 2,
naming the holder), before it touches a trial: otherwise its recovery would fail the first
search's running trials. A lease is stale, and taken over by ``--resume``, when its process is
gone (same host: the pid does not exist, is a zombie, or is another process that reused the
pid) or, for a holder on another host, when its heartbeat is older than ``STALE_S`` seconds.
Taking a lease writes it, waits ``SETTLE_S`` and reads it back, so that of two searches started
at the same moment only the last writer runs.
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

from nas_width.schema import LEASE_KEY
from nas_width.search.errors import StorageError
from nas_width.search.internals import study_id, study_storage

if TYPE_CHECKING:
    import optuna

__all__ = [
    "HEARTBEAT_S",
    "STALE_S",
    "Lease",
    "acquire_lease",
    "describe_lease",
    "held_by_a_gone_search",
]

HEARTBEAT_S = 10.0
STALE_S = 120.0
SETTLE_S = 0.5
LEASE_FIELDS = {"token", "host", "pid", "since", "heartbeat"}


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

    def read(self) -> dict[str, Any] | None:
        """The current lease, or None (released, never taken, or not one that can be read)."""
        value = self._storage.get_study_system_attrs(self._study_id).get(LEASE_KEY)
        if not isinstance(value, dict) or not value.keys() >= LEASE_FIELDS:
            return None
        return value

    def write(self, value: dict[str, Any] | None) -> None:
        self._storage.set_study_system_attr(self._study_id, LEASE_KEY, value)

    def held(self) -> bool:
        current = self.read()
        return current is not None and current["token"] == self.record["token"]

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                if not self.held():
                    return  # taken over (this search was thought dead): write nothing more
                self.record["heartbeat"] = _now()
                self.write(self.record)
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
            self.write(None)


def held_by_a_gone_search(study: optuna.Study) -> bool:
    """Whether ``study`` holds the lease of a search that is gone (killed before it ended)."""
    current = Lease(study_storage(study), study_id(study), {}).read()
    return current is not None and not _live(current)


def acquire_lease(study: optuna.Study) -> Lease:
    """Take the study's lease for this process, or refuse while another search holds it.

    Raises:
        StorageError: the lease is held by a live search (the message names it).
    """
    storage, sid = study_storage(study), study_id(study)
    holder = Lease(storage, sid, {})
    current = holder.read()
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
    holder.write(holder.record)
    time.sleep(SETTLE_S)
    won = holder.read()
    if won is None or won["token"] != holder.record["token"]:
        raced = f"the search with {describe_lease(won)}" if won else "another search"
        raise StorageError(f"study {name!r} was just taken by {raced}: try again later")
    return holder.start()
