"""``nas-width dashboard``: optuna-dashboard on 127.0.0.1 for a study's storage."""

from __future__ import annotations

import socket
from typing import Annotated

import typer

from nas_width.errors import NasWidthError
from nas_width.search.study import DEFAULT_STORAGE

__all__ = ["check_port", "dashboard"]


def check_port(host: str, port: int) -> None:
    """Refuse a port that another process listens on (before the server prints anything)."""
    if not 0 < port < 65536:
        raise NasWidthError(f"port {port} is not in 1..65535")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise NasWidthError(f"port {port} on {host} is in use ({err.strerror})") from None


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
