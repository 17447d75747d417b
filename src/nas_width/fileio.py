"""The one way nas-width writes and reads its files: atomic, durable, readable as a normal file.

Every file the CLI writes (an exported config, a report, a trained model's weights, config and
metrics) goes through :func:`write_bytes_atomic`: a temporary file in the same directory
(``.NAME.PID.*.tmp``, so the final rename never crosses a file system), written, flushed and
fsync'd, given the mode a plain ``open(path, "w")`` would (0666 less the umask: a team on a
shared cluster reads each other's exports), then renamed over ``path``. A reader sees the old
file or the new one, never half of one; a failed write leaves the old file and no temporary.
A killed writer cannot remove its temporary: the next write of the same path removes those
whose process (the PID in the name) is gone.

JSON is written strictly (NaN and infinities become ``null``, keys strings) and read through
one error ladder (:func:`loads_json`, :func:`read_json`) that names the line of a syntax error.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
from contextlib import suppress
from pathlib import Path
from typing import Any

from nas_width.errors import ConfigError, NasWidthError

__all__ = [
    "dumps_json",
    "loads_json",
    "plain_json",
    "read_json",
    "replace_directory_atomic",
    "safe_name",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def _normal_mode() -> int:
    """0666 less the process's umask: the mode ``open(path, "w")`` gives a new file."""
    return 0o666 & ~_umask()


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically and durably (see the module docstring).

    Raises:
        OSError: the directory is missing or not writable, or the disk is full; ``path``
            is then unchanged and no temporary file is left.
    """
    path = Path(path)
    _sweep(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=_prefix(path), suffix=".tmp")
    try:
        os.fchmod(fd, _normal_mode())  # mkstemp's 0600 would hide the file from the group
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def replace_directory_atomic(directory: Path, files: dict[str, bytes]) -> None:
    """Make ``directory`` hold exactly ``files`` (name -> bytes), all at once: they are written
    and fsync'd in a temporary sibling directory, which is renamed into place; an existing
    ``directory`` is first moved aside and removed after. A kill leaves the old directory or
    the new one (at worst one of them under a hidden ``.NAME.*`` name beside it), never a mix.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    _sweep(directory)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=_prefix(directory), suffix=".tmp"))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # what mkdir gives; mkdtemp's is 0700
        for name, data in files.items():  # the directory is private until renamed
            with open(tmp / name, "wb") as handle:  # the mode a plain open gives
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        if directory.exists():
            aside = Path(tempfile.mkdtemp(dir=directory.parent, prefix=_prefix(directory),
                                          suffix=".old"))  # fmt: skip
            os.replace(directory, aside / directory.name)
            os.rename(tmp, directory)
            shutil.rmtree(aside, ignore_errors=True)
        else:
            os.rename(tmp, directory)
        _fsync_directory(directory.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _prefix(path: Path) -> str:
    """``.NAME.PID.``: hidden, beside ``path``, and naming the process that writes it."""
    return f".{path.name}.{os.getpid()}."


def _sweep(path: Path) -> None:
    """Remove the temporaries that killed writers of ``path`` left beside it (their process,
    the PID in the name, is gone); a live writer's are left alone."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\..*\.(tmp|old)")
    with suppress(OSError):
        for leftover in path.parent.iterdir():
            found = pattern.fullmatch(leftover.name)
            if found is None or _alive(int(found[1])):
                continue
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's: not ours to judge
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_directory(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def safe_name(text: str, default: str) -> str:
    """``text`` as one file or folder name: runs of characters other than letters, digits,
    ``.``, ``_`` and ``-`` become ``_`` and leading dots go, so that ``../x`` cannot leave the
    folder it is joined to (``default`` when nothing is left)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).lstrip(".") or default


def write_text_atomic(path: Path, text: str) -> None:
    """:func:`write_bytes_atomic` of ``text`` in UTF-8."""
    write_bytes_atomic(path, text.encode("utf-8"))


def plain_json(value: Any) -> Any:
    """Strict-JSON form: non-finite floats -> None, tuples -> lists, keys -> str, NumPy
    scalars and arrays -> Python numbers and lists."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()  # a NumPy scalar or array
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(v) for v in value]
    return value


def dumps_json(value: Any) -> str:
    """Indented strict JSON with a final newline.

    Raises:
        TypeError: ``value`` holds something JSON cannot represent.
    """
    try:
        return json.dumps(plain_json(value), indent=2, allow_nan=False) + "\n"
    except ValueError as err:  # circular references
        raise TypeError(str(err)) from None


def write_json_atomic(path: Path, value: Any) -> None:
    """:func:`write_text_atomic` of :func:`dumps_json`."""
    write_text_atomic(path, dumps_json(value))


def loads_json(text: str, error: type[NasWidthError] = ConfigError) -> Any:
    """Parse JSON text; a syntax error raises ``error`` naming its line (callers prefix the
    file's path)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"malformed JSON at line {err.lineno}: {err.msg}") from None
    except ValueError as err:  # an integer of more digits than Python converts
        raise error(f"malformed JSON: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise error("malformed JSON: arrays or objects nested too deeply") from None


def read_json(path: Path, error: type[NasWidthError] = ConfigError, what: str = "file") -> Any:
    """Read and parse the JSON file ``path``; every failure raises ``error`` with one line that
    starts with the path (``what`` names the file in the "missing" message)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: missing ({what})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"{path}: cannot read: {err}") from None
    try:
        return loads_json(text, error)
    except error as err:
        raise error(f"{path}: {err}") from None
