"""Reading the declarative files (TOML spaces and studies, JSON configs) with one-line errors.

A malformed file is reported with its path and line; an unknown key is named with the keys
that are allowed, so a typo in a study never silently falls back to a default. Whatever the
bytes of a file, the readers raise :class:`~nas_width.errors.ConfigError` or return data.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from nas_width.errors import ConfigError

__all__ = ["check_keys", "expect", "key_names", "read_text", "read_toml"]

_WHERE = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)$")


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable or undecodable file is a ConfigError,
    and so is anything but a regular file (reading a FIFO or a device would block or never
    end)."""
    try:
        if path.exists() and not path.is_file():
            raise ConfigError(f"cannot read {path}: not a regular file")
        return path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {err.start} is {err.object[err.start]:#04x})"
        ) from None
    except ValueError as err:  # a path with a NUL character
        raise ConfigError(f"cannot read {str(path)!r}: {err}") from None


def _syntax_error(path: Path, text: str, err: tomllib.TOMLDecodeError) -> ConfigError:
    """``path: malformed TOML at line L, column C: why``; the end of the file has a line too."""
    message = str(err)
    where = _WHERE.search(message)
    if where is None:
        return ConfigError(f"{path}: malformed TOML: {message}")
    why = message[: where.start()]
    if where[1] is None:
        line = max(1, len(text.splitlines()))
        return ConfigError(f"{path}: malformed TOML at line {line} (end of file): {why}")
    return ConfigError(f"{path}: malformed TOML at line {where[1]}, column {where[2]}: {why}")


def read_toml(path: Path) -> dict[str, Any]:
    """Parse ``path``; errors name the file (and the line, for syntax errors)."""
    text = read_text(path)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise _syntax_error(path, text, err) from None
    except ValueError as err:  # an integer of more digits than Python converts
        raise ConfigError(f"{path}: malformed TOML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ConfigError(f"{path}: malformed TOML: arrays or tables nested too deeply") from None


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
            f"{where}: unknown key(s) {key_names(unknown)} (allowed: {', '.join(allowed)})"
        )


def key_names(keys: Iterable[Any]) -> str:
    """Keys for a one-line message: plain names as they are, any other key quoted (repr)."""
    plain = re.compile(r"[\w.-]+", re.ASCII)
    return ", ".join(k if isinstance(k, str) and plain.fullmatch(k) else repr(k) for k in keys)
