"""Every command's ``--help``, as a user reads it at 80 columns, against a reviewed snapshot.

A change to an option, a default or an example shows here as a diff to review. After a change
that is meant, write the snapshots again with::

    NAS_WIDTH_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/test_help.py

Besides the snapshots, rules that hold for every command: examples, flags shown without a
type (typer's ``<bool>`` reads as if a flag took a value), no word in brackets lost to rich's
markup (it ate "[default: the best]" and "[analysis]" before), and docstring lines that fit 80
columns (rich keeps their breaks, so a longer one leaves a ragged paragraph).
"""

from __future__ import annotations

import inspect
import os
import re
from pathlib import Path

import pytest
import typer

from tests.conftest import invoke

SNAPSHOTS = Path(__file__).parent / "snapshots" / "help"
COMMANDS = ["", "search", "count", "export", "train", "dashboard", "report", "scaling",
            "studies", "trials"]  # fmt: skip


def _help(capsys: pytest.CaptureFixture[str], command: str) -> str:
    code, out, err = invoke(capsys, *([command] if command else []), "--help")
    assert (code, err) == (0, "")
    return "\n".join(line.rstrip() for line in out.splitlines()) + "\n"


@pytest.fixture(autouse=True)
def _eighty_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERMINAL_WIDTH", "80")
    monkeypatch.setenv("NO_COLOR", "1")


@pytest.mark.parametrize("command", COMMANDS, ids=[c or "nas-width" for c in COMMANDS])
def test_help_matches_its_snapshot(capsys: pytest.CaptureFixture[str], command: str) -> None:
    text = _help(capsys, command)
    path = SNAPSHOTS / f"{command or 'nas-width'}.txt"
    if os.environ.get("NAS_WIDTH_UPDATE_SNAPSHOTS"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert text == path.read_text(), f"{path} differs: review, then update (module docstring)"


@pytest.mark.parametrize("command", COMMANDS[1:])
def test_help_has_examples_flags_without_types_and_every_bracketed_word(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    from nas_width.cli import app
    from nas_width.cli._app import _flags_as_flags

    text = _help(capsys, command)
    assert "Examples:" in text
    assert f"nas-width {command}" in text.split("Examples:")[1]
    assert "<bool>" not in text
    group = _flags_as_flags(typer.main.get_command(app))
    doc = group.commands[command].help or ""
    flat = " ".join(text.replace("│", " ").split())
    for word in re.findall(r"\[[^\]\n]+\]", doc):
        assert " ".join(word.split()) in flat, f"{word} of the docstring is not in the help"
    # rich keeps the docstring's line breaks: a longer line wraps into a ragged paragraph
    too_long = [line for line in inspect.cleandoc(doc).splitlines()[1:] if len(line) > 78]
    assert not too_long, f"docstring lines over 78 columns: {too_long}"
