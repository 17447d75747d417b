"""The one writer: atomic, durable, and readable as a normal file (0666 less the umask)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nas_width.errors import ConfigError
from nas_width.fileio import (
    read_json,
    replace_directory_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from nas_width.train import CheckpointError


@pytest.fixture(params=[0o022, 0o002, 0o077])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_files_get_the_mode_a_plain_open_would(tmp_path: Path, umask: int) -> None:
    plain = tmp_path / "plain"
    plain.write_text("x")
    written = tmp_path / "written"
    write_text_atomic(written, "x")
    assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~umask


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    write_json_atomic(path, {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(path, {"a": object()})
    assert read_json(path) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "missing" / "x", b"")


def test_json_is_strict_and_read_errors_are_one_line_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "v.json"
    write_json_atomic(path, {"nan": math.nan, "t": (1, 2), 3: math.inf})
    assert path.read_text() == '{\n  "nan": null,\n  "t": [\n    1,\n    2\n  ],\n  "3": null\n}\n'
    import numpy as np

    write_json_atomic(path, {"x": np.float64(math.nan), "a": np.arange(2), "b": np.bool_(True)})
    assert read_json(path) == {"x": None, "a": [0, 1], "b": True}
    path.write_text('{"a": 1,\n')
    with pytest.raises(ConfigError, match=r"v\.json: malformed JSON at line 2"):
        read_json(path)
    with pytest.raises(CheckpointError, match=r"nope\.json: missing \(a checkpoint\)"):
        read_json(tmp_path / "nope.json", CheckpointError, "a checkpoint")


def test_an_output_that_cannot_be_written_is_refused_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One check for every command's output (root may write anywhere, so the permission is
    stubbed to test the message)."""
    from nas_width.cli._output import check_output
    from nas_width.errors import NasWidthError

    (tmp_path / "f").write_text("")
    check_output(tmp_path / "new" / "deeper" / "r.html")  # created when written
    with pytest.raises(NasWidthError, match="is a directory; give a file name"):
        check_output(tmp_path)
    with pytest.raises(NasWidthError, match="is a file; give a directory"):
        check_output(tmp_path / "f", directory=True)
    with pytest.raises(NasWidthError, match=r"'f'|/f' is not a directory"):
        check_output(tmp_path / "f" / "x.json")
    monkeypatch.setattr(os, "access", lambda *_: False)
    with pytest.raises(NasWidthError, match=f"directory '{tmp_path}' is not writable"):
        check_output(tmp_path / "x.json")


def test_a_directory_is_replaced_whole_with_the_mode_mkdir_gives(tmp_path: Path) -> None:
    from nas_width.fileio import replace_directory_atomic

    target = tmp_path / "model"
    replace_directory_atomic(target, {"a": b"1", "b": b"2"})
    replace_directory_atomic(target, {"a": b"3"})
    assert sorted(p.name for p in target.iterdir()) == ["a"]  # nothing of the old one left
    assert (target / "a").read_bytes() == b"3"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporaries
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o777 & ~mask


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def test_temporaries_of_a_killed_writer_are_removed_by_the_next_write(tmp_path: Path) -> None:
    """A kill between writing the temporary and renaming it leaves ``.NAME.PID.*.tmp``; the
    next write of the same path removes it (its process is gone), never a live writer's."""
    dead, live = _dead_pid(), os.getpid()
    stale = tmp_path / f".best.json.{dead}.x1.tmp"
    stale.write_text("half")
    busy = tmp_path / f".best.json.{live}.x2.tmp"
    busy.write_text("being written")
    other = tmp_path / f".other.json.{dead}.x3.tmp"
    other.write_text("another file's")
    old_model = tmp_path / f".model.{dead}.x4.old"
    (old_model / "model").mkdir(parents=True)
    write_json_atomic(tmp_path / "best.json", {"a": 1})
    replace_directory_atomic(tmp_path / "model", {"config.json": b"{}"})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["best.json", "model", busy.name, other.name]
    )
