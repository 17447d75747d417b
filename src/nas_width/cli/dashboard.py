"""``nas-width dashboard``: optuna-dashboard on 127.0.0.1 for a study's storage."""

from __future__ import annotations

import errno
import socket
from typing import Annotated

import typer

from nas_width.errors import NasWidthError
from nas_width.search.study import DEFAULT_STORAGE

__all__ = ["check_port", "dashboard"]


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
    storage: Annotated[str, typer.Option(help="Optuna storage of the study.")] = DEFAULT_STORAGE,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
) -> None:
    """Open the studies of a storage in optuna-dashboard (Ctrl-C stops it).

    Example:

      nas-width dashboard --storage sqlite:///nas-width.db --port 8080
    """
    from optuna_dashboard import run_server

    from nas_width.search.storage import open_storage

    store = open_storage(storage, create=False)
    check_port(host, port)
    typer.echo(f"optuna-dashboard on http://{host}:{port}/ for {storage} (Ctrl-C stops it)")
    run_server(store, host=host, port=port)
