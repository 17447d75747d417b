"""The ``nas-width`` command line: one module per command, a thin layer over the library."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated

import typer

from nas_width.cli._app import run
from nas_width.cli.count import count
from nas_width.cli.dashboard import dashboard
from nas_width.cli.export import export
from nas_width.cli.listing import studies, trials
from nas_width.cli.report import report
from nas_width.cli.scaling import scaling
from nas_width.cli.search import search
from nas_width.cli.train import train

__all__ = ["app", "main"]

app = typer.Typer(
    name="nas-width",
    help="Search the width of MLP-Mixer mixing layers at a fixed fvcore-counted budget.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("search")(search)
app.command("count")(count)
app.command("export")(export)
app.command("train")(train)
app.command("dashboard")(dashboard)
app.command("report")(report)
app.command("scaling")(scaling)
app.command("studies")(studies)
app.command("trials")(trials)


def _print_version(value: bool) -> None:
    if value:
        from nas_width._version import __version__

        typer.echo(f"nas-width {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True,
                     help="Print the version and exit."),
    ] = False,
) -> None:  # fmt: skip
    """Search the width of MLP-Mixer mixing layers at a fixed fvcore-counted budget."""
    if ctx.invoked_subcommand is None:
        typer.echo(ctx.get_help())


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    sys.exit(run(app, argv))
