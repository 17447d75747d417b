"""The reaper of a private local Ray: run as a script (``python -I _reaper.py SESSION_DIR``),
never imported by nas-width, so that it starts without torch or Ray.

Linux's parent-death signal ends Ray's GCS and raylet with the search that started them, and
the workers follow within seconds, but Ray's DashboardAgent and RuntimeEnvAgent (children of
the raylet) spend a hard-coded 60 s telling a dead GCS that the raylet died before they exit.
So the search starts this process with a pipe on its stdin: ``DONE`` then EOF means the search
shut Ray down itself and nothing is left to do; EOF alone means the search died (a SIGKILL, an
abort), and once it has exited every process of its Ray session is killed. A process belongs
to the session when its command line or one of its open files lies in the session directory
(the agents and workers rewrite their titles, but all keep their log files open there).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time

DONE = b"DONE"
ROUNDS = 20  # the agents may still be starting workers: look again until none is left
PAUSE_S = 0.2


def session_pids(session: str, spare: set[int]) -> list[int]:
    """Processes whose command line or open files lie in the directory ``session``."""
    found = []
    inside = session + "/"
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in spare:
            continue
        proc = f"/proc/{name}"
        try:
            with open(f"{proc}/cmdline", "rb") as cmdline:
                if inside.encode() in cmdline.read():
                    found.append(int(name))
                    continue
            for fd in os.listdir(f"{proc}/fd"):
                try:
                    target = os.readlink(f"{proc}/fd/{fd}")
                except OSError:
                    continue
                if target == session or target.startswith(inside):
                    found.append(int(name))
                    break
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def main(session: str) -> int:
    search = os.getppid()
    said = b""
    while chunk := sys.stdin.buffer.read(64):
        said += chunk
    if said.strip() == DONE:
        return 0
    while os.getppid() == search:  # EOF comes before the search has fully exited
        time.sleep(0.05)
    spare = {os.getpid(), search}
    for _ in range(ROUNDS):
        pids = session_pids(session.rstrip("/"), spare)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(PAUSE_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
