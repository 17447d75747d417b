"""Shared fixtures: deterministic torch, small configs for every mixing kind."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
import torch

from nas_width import MIXING_KINDS, MixerConfig


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(params=MIXING_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def small_config(mixing: str = "mixer", **overrides: object) -> MixerConfig:
    """An 8x8 single-channel image config with S=16 that builds in milliseconds."""
    fields: dict[str, object] = {
        "input_shape": (1, 8, 8),
        "patch": (2, 2),
        "channels": 12,
        "depth": 2,
        "gamma_token": 1.5,
        "gamma_channel": 3.0,
        "mixing": mixing,
    }
    fields.update(overrides)
    # The bad-config tests pass invalid fields on purpose, for MixerConfig to refuse at run time.
    return MixerConfig(**fields)  # type: ignore[arg-type]


def invoke(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr) of just this command."""
    from nas_width.cli import app
    from nas_width.cli._app import run

    capsys.readouterr()  # drop what the setup printed (Optuna logs a created study)
    code = run(app, [str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes: what bad input must leave as it was."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


def console_script() -> list[str]:
    """The installed ``nas-width`` next to this Python, for tests that run a real process."""
    exe = shutil.which("nas-width", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from nas_width.cli import main; main()"]
