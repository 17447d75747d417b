"""Files that ship with the package: the declarative search spaces and studies.

They live at the repository root (``search_spaces/``, ``studies/``) so that users find and edit
them easily; the wheel carries them inside the package (``nas_width/search_spaces``). An
editable install or a source checkout reads them from the root instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

__all__ = ["find", "path"]

Kind = Literal["search_spaces", "studies"]

_PACKAGE = Path(__file__).resolve().parent


def path(kind: Kind) -> Path:
    """The directory of shipped ``kind`` files."""
    for candidate in (_PACKAGE / kind, _PACKAGE.parents[1] / kind):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"the {kind} directory is missing from this installation")


def find(kind: Kind, spec: str | Path, label: str) -> Path:
    """A TOML file given as a path, or by the name of a shipped one (no suffix)."""
    file = Path(spec)
    if file.suffix:
        return file
    file = path(kind) / f"{spec}.toml"
    if not file.is_file():
        from nas_width.errors import ConfigError

        known = sorted(p.stem for p in file.parent.glob("*.toml"))
        raise ConfigError(f"unknown {label} {str(spec)!r}; known: {', '.join(known)}")
    return file
