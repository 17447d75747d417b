"""Running the Typer app with the project's error contract.

Bad input exits with code 2 and one line on stderr naming the bad value, never a traceback or
a usage box: click's usage errors and :class:`~nas_width.NasWidthError` are both caught here.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import typer

from nas_width.errors import NasWidthError

__all__ = ["fail", "run"]

PROG = "nas-width"


def fail(message: str) -> typer.Exit:
    """Print ``message`` as the one-line error and return the exit to raise (code 2)."""
    typer.echo(f"{PROG}: error: {message}", err=True)
    return typer.Exit(code=2)


def _given(err: typer.TyperException, args: Sequence[str]) -> str | None:
    """The text given on the command line for the option that ``err`` refuses, if any."""
    param = getattr(err, "param", None)
    names = [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]
    for i, arg in enumerate(args):
        for name in names:
            if not name.startswith("-"):
                continue
            if arg == name and i + 1 < len(args):
                return args[i + 1]
            if arg.startswith(f"{name}="):
                return arg.removeprefix(f"{name}=")
    return None


def _flags_as_flags(command: Any) -> Any:
    """Leave a flag's type column empty in help: typer shows ``<bool>`` there, which reads as
    if ``--json`` took a value. ``command`` is the app's click group; returned for chaining.
    The help option is made here under the app's names (click keeps the one it makes first)."""
    names = command.context_settings.get("help_option_names", ["--help"])
    for cmd in [command, *getattr(command, "commands", {}).values()]:
        params = [*cmd.params, cmd.get_help_option(typer.Context(cmd, help_option_names=names))]
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
    return command


def run(app: typer.Typer, argv: Sequence[str] | None = None) -> int:
    """Run ``app`` on ``argv`` (default: sys.argv[1:]) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        command = _flags_as_flags(typer.main.get_command(app))
        result = command(args=args, prog_name=PROG, standalone_mode=False)
    except typer.TyperException as err:  # click's usage errors, as vendored by typer
        ctx = getattr(err, "ctx", None)
        where = ctx.command_path if ctx is not None else PROG
        message = " ".join(err.format_message().split())
        given = _given(err, args)
        if given is not None and repr(given) not in message:
            message = f"{message}, got {given!r}"
        typer.echo(f"{where}: error: {message}", err=True)
        return int(getattr(err, "exit_code", 2))
    except NasWidthError as err:
        typer.echo(f"{PROG}: error: {err}", err=True)
        return 2
    except (typer.Abort, KeyboardInterrupt):
        typer.echo(f"{PROG}: interrupted", err=True)
        return 130
    return result if isinstance(result, int) else 0
