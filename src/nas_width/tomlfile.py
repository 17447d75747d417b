"""Reading the declarative TOML files (search spaces, studies) with one-line errors.

A malformed file is reported with its path and line; an unknown key is named with the keys
that are allowed, so a typo in a study never silently falls back to a default.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from nas_width.errors import ConfigError

__all__ = ["check_keys", "expect", "read_toml"]


def read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path``; errors name the file (and the line, for syntax errors)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: malformed TOML: {err}") from None


def expect(
    name: str,
    value: Any,
    kinds: type | tuple[type, ...],
    what: str,
    ok: Callable[[Any], bool] = lambda _: True,
) -> None:
    """Refuse ``value`` unless it is of ``kinds`` (bool only if named) and ``ok``: the error
    says ``name must be what, got value``."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        raise ConfigError(f"{name} must be {what}, got {value!r}")
    if not ok(value):
        raise ConfigError(f"{name} must be {what}, got {value!r}")


def check_keys(where: str, table: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Refuse keys of ``table`` that are not in ``allowed``, naming them."""
    allowed = sorted(allowed)
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(allowed)})"
        )
