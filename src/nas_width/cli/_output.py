"""The one check of an output path, made before anything is read, trained or stored."""

from __future__ import annotations

import os
from pathlib import Path

from nas_width.errors import NasWidthError

__all__ = ["check_output"]


def check_output(output: Path, *, directory: bool = False) -> None:
    """Refuse an output that cannot be written: a file where a directory is asked for (or the
    other way round), a missing directory under a file, or a directory this user cannot write.
    Missing directories are fine: the command creates them when it writes.

    Raises:
        NasWidthError: one line naming ``output`` and what is wrong with it.
    """
    if directory and output.exists() and not output.is_dir():
        raise NasWidthError(f"output {str(output)!r} is a file; give a directory")
    if not directory and output.is_dir():
        raise NasWidthError(f"output {str(output)!r} is a directory; give a file name")
    parent = output.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise NasWidthError(f"output {str(output)!r}: {str(parent)!r} is not a directory")
    target = output if directory and output.is_dir() else parent
    if not os.access(target, os.W_OK | os.X_OK):
        raise NasWidthError(f"output {str(output)!r}: directory {str(target)!r} is not writable")
