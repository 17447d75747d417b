"""Ray for one search: join a cluster, or start a private local Ray while the study opens.

A private local Ray exposes nothing and outlives nothing: it listens on 127.0.0.1 only (Ray
binds every interface unless its node address is loopback, which it allows only with its
cluster mode off: :func:`~nas_width.search.internals.ray_cluster_mode`), and a reaper process
(``_reaper.py``) kills what is left of its session if the search dies without shutting it
down (Ray's agents would otherwise linger 60 s after a SIGKILL).

Starting a private local Ray (GCS, raylet, the driver's registration) takes about 2 s on the
project's 2-core machine, most of it spent waiting on those processes. A fresh search has other
work to do meanwhile (opening the study, importing Ray Tune, building the Tuner), so
:class:`RaySession` starts it on a background thread and the search waits for it only when
Tune needs it. Joining a cluster stays synchronous: a cluster that cannot be joined is refused
before the study is created.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from nas_width.errors import NasWidthError
from nas_width.search.internals import ray_cluster_mode

__all__ = ["RaySession", "check_cluster_resources", "check_reachable", "init_ray"]

#: How long a cluster's address may take to accept a connection before the search gives up.
JOIN_PROBE_S = 10.0


def _quiet_tune_environment() -> None:
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_RESULT_BUFFER_LENGTH", "1")


def cluster_address(address: str | None) -> str | None:
    """``address``, else ``RAY_ADDRESS`` (``ray job submit`` sets it), else None (local Ray)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def check_reachable(address: str) -> None:
    """Refuse a ``host:port`` (or ``ray://host:port``) where nothing accepts a connection,
    within :data:`JOIN_PROBE_S`: ``ray.init`` would retry it for ever, printing a warning
    every few seconds. ``auto`` and other forms are left to Ray.

    Raises:
        NasWidthError: naming the address and why it cannot be reached.
    """
    target = address.removeprefix("ray://")
    host, sep, port = target.rpartition(":")
    if not sep or not port.isdigit() or not host or "/" in target:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=JOIN_PROBE_S):
            pass
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise NasWidthError(
            f"cannot join the Ray cluster at {address!r}: nothing accepts a connection at "
            f"{host}:{port} ({reason}); is `ray start --head` running there?"
        ) from None


def check_cluster_resources(cpus_per_trial: float, gpus_per_trial: float) -> None:
    """Refuse per-trial resources that no node of the joined cluster has: Ray would keep such
    trials pending for ever, silently. (A trial runs on one node; an autoscaling cluster that
    would add a larger node later is judged by the nodes it has now.)

    Raises:
        NasWidthError: naming the resource, what was asked and the largest node's share.
    """
    import ray

    alive = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]
    nodes = [n.get("Resources", {}) for n in alive]
    for name, asked, key in (("cpus", cpus_per_trial, "CPU"), ("gpus", gpus_per_trial, "GPU")):
        most = max((float(n.get(key, 0.0)) for n in nodes), default=0.0)
        if asked > most:
            raise NasWidthError(
                f"{name}_per_trial {asked:g} is more than any node of the Ray cluster has "
                f"(the most on one node: {most:g} {key}s, over {len(nodes)} node(s))"
            )


def init_ray(address: str | None, temp_dir: str | None = None) -> str | None:
    """Join a Ray cluster, or start a private local Ray on loopback (returns its session
    directory; None when it joined a cluster or Ray was up already); quiet, no dashboard.

    The cluster is :func:`cluster_address`. Without one, a new local Ray starts: never one that
    ``ray start`` left on this machine, which a bare ``ray.init()`` would join (and then refuse
    ``num_cpus``).

    Raises:
        NasWidthError: the cluster cannot be joined from here (one line with Ray's reason).
    """
    import ray

    _quiet_tune_environment()
    if ray.is_initialized():
        return None
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": logging.ERROR,
        "log_to_driver": False,
    }
    address = cluster_address(address)
    if address:
        check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as err:
            reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise NasWidthError(
                f"cannot join the Ray cluster at {address!r}: {reason}. Run the search on a "
                "node of that cluster; a cluster that checks tokens (the default of `ray "
                "start`) also needs RAY_AUTH_MODE=token and its token (RAY_AUTH_TOKEN_PATH) here"
            ) from None
        return None
    ray_cluster_mode(False)  # node address 127.0.0.1: listen on loopback
    if temp_dir is not None:
        kwargs["_temp_dir"] = temp_dir
    context: Any = ray.init(address="local", num_cpus=max(1, int(os.cpu_count() or 1)), **kwargs)
    return str(context.address_info["session_dir"])


def start_reaper(root: str) -> subprocess.Popen[bytes]:
    """The reaper of the private Ray whose files lie under ``root`` (started before Ray, so
    that a search killed while Ray starts is covered too): kills what is left of it if this
    process dies without :func:`stop_reaper` (its own session, so a signal to this process
    group does not reach it)."""
    script = Path(__file__).with_name("_reaper.py")
    return subprocess.Popen(
        [sys.executable, "-I", str(script), root],
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        close_fds=True, start_new_session=True,
    )  # fmt: skip


def stop_reaper(reaper: subprocess.Popen[bytes]) -> None:
    """Tell the reaper that Ray was shut down cleanly: it exits without killing anything."""
    if reaper.stdin is not None:
        try:
            reaper.stdin.write(b"DONE")
            reaper.stdin.close()
        except OSError:  # it is gone already
            pass
    try:
        reaper.wait(timeout=10)
    except subprocess.TimeoutExpired:
        reaper.kill()


class RaySession:
    """Ray for one search; ``start`` returns at once, ``wait`` blocks until Ray is up.

    A local Ray started in the background is owned by its thread until ``close``: Ray's
    processes are tied to the thread that forked them (Linux's parent-death signal follows the
    thread, not the process), so that thread must outlive them; it also shuts them down.
    ``close`` shuts down a Ray this session started (never a joined cluster) and is safe to call
    whether or not ``start`` was called or Ray came up.

    Once Ray is up, the process handles SIGTERM as it did before ``start``: Ray's driver
    replaces the handler when it connects (a C++ one that prints a stack dump and can abort, and,
    in the main thread, a Python one that exits with status 15), which would skip the search's
    stop (trials marked interrupted, the resume command).
    """

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._release = threading.Event()
        self._started = False
        self._error: BaseException | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        #: The private Ray's session directory (its logs), None until started or if joined.
        self.session_dir: str | None = None
        #: Ray's cluster mode before the private Ray turned it off (restored by ``close``).
        self._cluster_mode: bool | None = None
        #: The SIGTERM handler before Ray (main thread only), put back once Ray is up.
        self._sigterm: Any = None

    def start(self, background: bool = True) -> None:
        """Begin joining or starting Ray (once); a cluster is always joined here, in the caller."""
        if self._thread is not None or self._ready.is_set():
            return
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.getsignal(signal.SIGTERM)
        if not background or cluster_address(self.address):
            self._begin()  # errors surface at once
            self._ready.set()
            self._restore_sigterm()
            return
        logging.getLogger("ray").setLevel(logging.ERROR)
        self._thread = threading.Thread(target=self._own, name="nas-width-ray", daemon=True)
        self._thread.start()

    def _own(self) -> None:
        """The owner thread: start Ray, then hold it until ``close`` and shut it down."""
        try:
            self._begin()
        except BaseException as err:  # re-raised by wait(), in the caller's thread
            self._error = err
        finally:
            self._ready.set()
        if self._started:
            self._release.wait()
            import ray

            ray.shutdown()

    def _begin(self) -> None:
        """Join the cluster, or start a private Ray in a temporary directory of its own with
        its reaper watching that directory (Ray puts its session, sockets and logs there)."""
        if cluster_address(self.address):
            init_ray(self.address)
            return
        root = tempfile.mkdtemp(prefix="nw-ray-")  # short: Ray's socket paths must fit 107 bytes
        self._reaper = start_reaper(root)
        self._cluster_mode = ray_cluster_mode(False)
        self.session_dir = init_ray(None, temp_dir=root)
        self._started = self.session_dir is not None

    def wait(self) -> bool:
        """Block until Ray is up; True if this session started it. Starts it if not started."""
        self.start(background=False)
        self._ready.wait()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        self._restore_sigterm()
        return self._started

    def _restore_sigterm(self) -> None:
        """Put back the SIGTERM handler that Ray replaced when it connected (class docstring);
        setting it again reinstalls it at the C level too (main thread only)."""
        if self._sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._sigterm)

    def close(self) -> None:
        """Shut down the Ray this session started (callers defer Ctrl-C around it)."""
        if self._thread is not None:
            self._ready.wait()
            self._release.set()
            self._thread.join()
        elif self._started:
            import ray

            ray.shutdown()
        if self._reaper is not None:
            stop_reaper(self._reaper)
            self._reaper = None
        if self._cluster_mode is not None:  # as it was: a later ray.init may join a cluster
            ray_cluster_mode(self._cluster_mode)
            self._cluster_mode = None
        self._started = False
