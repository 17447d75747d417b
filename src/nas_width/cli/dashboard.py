"""``nas-width dashboard``: optuna-dashboard on 127.0.0.1 for a study's storage."""

from __future__ import annotations

import errno
import re
import socket
from contextlib import suppress
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nas_width.cli._options import StorageOption
from nas_width.errors import NasWidthError
from nas_width.search.study import DEFAULT_STORAGE

__all__ = ["check_port", "dashboard", "read_only"]

#: What a read-only dashboard answers: reading a study never needs another method.
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: optuna-dashboard's two note endpoints (a study's note, a trial's note), which
#: ``--allow-notes`` lets through: notes are the one edit that cannot lose a result.
NOTE_PATH = re.compile(r"/api/studies/\d+(/\d+)?/note")

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def read_only(app: WSGIApp, allow_notes: bool = False) -> WSGIApp:
    """``app`` refusing every request that could change the storage (403 Forbidden):
    optuna-dashboard has no read-only mode, and its API deletes a study on
    ``DELETE /api/studies/N``. nas-width writes a study only through ``search`` and ``report``.
    With ``allow_notes``, the study and trial notes (``PUT .../note``) can be edited."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        path = str(environ.get("PATH_INFO", ""))
        note = allow_notes and method == "PUT" and NOTE_PATH.fullmatch(path) is not None
        if method in READ_METHODS or note:
            return app(environ, start_response)
        body = (
            b"nas-width dashboard is read-only: studies change through search and report"
            + (b"; notes too" if allow_notes else b" (--allow-notes lets notes be edited)")
            + b"\n"
        )
        start_response("403 Forbidden", [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("Content-Length", str(len(body))),
        ])  # fmt: skip
        return [body]

    return guarded


def _serve(app: WSGIApp, host: str, port: int) -> None:
    """Serve ``app`` until Ctrl-C, without a line per request (wsgiref, as optuna-dashboard's
    own ``run_server`` does)."""
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    with make_server(host, port, app, handler_class=Quiet) as server, suppress(KeyboardInterrupt):
        server.serve_forever()


def check_port(host: str, port: int) -> None:
    """Refuse a port that another process listens on, or a host that is not an address of
    this machine (before the server prints anything)."""
    if not 0 < port < 65536:
        raise NasWidthError(f"port {port} is not in 1..65535")
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as err:
        reason = getattr(err, "strerror", None) or " ".join(str(err).split())
        raise NasWidthError(f"host {host!r} is not a known address ({reason})") from None
    # IPv4 first, as the server listens: "localhost" may also resolve to ::1.
    family, kind, _, _, address = next((a for a in found if a[0] == socket.AF_INET), found[0])
    with socket.socket(family, kind) as probe:
        try:
            probe.bind(address)
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise NasWidthError(f"port {port} on {host} is in use ({err.strerror})") from None
            raise NasWidthError(f"cannot listen on {host} port {port} ({err.strerror})") from None


def dashboard(
    storage: StorageOption = DEFAULT_STORAGE,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    allow_notes: Annotated[
        bool, typer.Option("--allow-notes", help="Let the study and trial notes be edited.")
    ] = False,
) -> None:
    """Open the studies of a storage in optuna-dashboard, read-only (Ctrl-C stops it).

    Requests that would change the storage (deleting a study, telling a trial)
    are refused with 403: a dashboard open beside a running search never
    changes it. --allow-notes lets the notes be written, which change no
    result.

    Examples:

      nas-width dashboard

      nas-width dashboard --storage sqlite:///sweeps.db --port 8081 --allow-notes
    """
    from optuna_dashboard import wsgi

    from nas_width.search.storage import open_storage

    store = open_storage(storage, create=False)
    check_port(host, port)
    mode = "read-only but for notes" if allow_notes else "read-only"
    typer.echo(f"optuna-dashboard on http://{host}:{port}/ for {storage}, {mode} (Ctrl-C stops it)")
    _serve(read_only(wsgi(store), allow_notes), host, port)
