"""Files that ship with the package: the declarative search spaces and studies.

They live at the repository root (``search_spaces/``, ``studies/``) so that users find and edit
them easily; the wheel carries them inside the package (``nas_width/search_spaces``). An
editable install or a source checkout reads them from the root instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = ["path"]

_PACKAGE = Path(__file__).resolve().parent


def path(kind: Literal["search_spaces", "studies"]) -> Path:
    """The directory of shipped ``kind`` files."""
    for candidate in (_PACKAGE / kind, _PACKAGE.parents[1] / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {kind} directory is missing from this installation")
