"""STL-10 from its binary distribution, and any data set saved as one ``.npz`` file.

Files are checked against their layout before they are read (sizes, keys, ranks, label
ranges), so a wrong directory or a truncated download fails with one line that names the path
and what was expected, not with a reshape error deep inside a trial.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nas_width.data.prepare import DataError, Raw, check_int, need_path

__all__ = ["npz", "stl10"]

_STL_FOLDER = "stl10_binary"
_STL_EXPECTED = (
    "the binary version of STL-10: stl10_binary/train_X.bin, train_y.bin, test_X.bin and test_y.bin"
)
_STL_IMAGE = 3 * 96 * 96
_NPZ_EXPECTED = (
    "an .npz file with x_train, y_train, x_test, y_test; x of shape (N, L), (N, C, L), "
    "(N, H, W) or (N, C, H, W) and integer labels"
)


def _stl_split(folder: Path, split: str, cap: int | None) -> tuple[NDArray[Any], NDArray[Any]]:
    """``split``_X.bin as (N, 3, 96, 96) uint8 and ``split``_y.bin as (N,) labels 0..9."""
    x_file, y_file = folder / f"{split}_X.bin", folder / f"{split}_y.bin"
    for file in (x_file, y_file):
        if not file.is_file():
            raise DataError(f"stl10: {folder} has no {file.name} (expected {_STL_EXPECTED})")
    size, n_labels = x_file.stat().st_size, y_file.stat().st_size
    if size == 0 or size % _STL_IMAGE or size // _STL_IMAGE != n_labels:
        raise DataError(
            f"stl10: {x_file} holds {size} bytes and {y_file.name} {n_labels} labels, "
            f"not {_STL_IMAGE} bytes per labelled 3x96x96 image (expected {_STL_EXPECTED})"
        )
    n = n_labels if cap is None else min(cap, n_labels)
    x = np.fromfile(x_file, dtype=np.uint8, count=n * _STL_IMAGE)
    y = np.fromfile(y_file, dtype=np.uint8, count=n).astype(np.int64)
    if y.min() < 1 or y.max() > 10:
        raise DataError(f"stl10: {y_file} has labels outside 1..10 (expected {_STL_EXPECTED})")
    # Each image is stored column-major (MATLAB order): (N, 3, W, H) -> (N, 3, H, W).
    return x.reshape(n, 3, 96, 96).transpose(0, 1, 3, 2), y - 1


def stl10(path: Path | None, *, max_train: int | None = None, max_test: int | None = None) -> Raw:
    """STL-10's labelled images: x (N, 3, 96, 96) uint8, 10 classes, 5,000 train, 8,000 test.

    The unlabelled split and the predefined folds are not used.

    Args:
        path: ``stl10_binary/`` or the directory holding it.
        max_train, max_test: keep only the first so many images (CPU runs and tests).
    """
    cap = None if max_train is None else check_int("stl10", "max_train", max_train)
    test_cap = None if max_test is None else check_int("stl10", "max_test", max_test)
    root = need_path("stl10", path, f"{_STL_EXPECTED}, or its parent directory")
    folder = next((c for c in (root / _STL_FOLDER, root) if (c / "train_X.bin").is_file()), None)
    if folder is None:
        raise DataError(
            f"stl10: {root} has no {_STL_FOLDER}/train_X.bin (expected {_STL_EXPECTED})"
        )
    x, y = _stl_split(folder, "train", cap)
    x_test, y_test = _stl_split(folder, "test", test_cap)
    return Raw(x, y, x_test, y_test, num_classes=10)


def _npz_array(file: Path, data: Any, key: str) -> NDArray[Any]:
    if key not in data.files:
        raise DataError(f"npz: {file} has no {key} (expected {_NPZ_EXPECTED})")
    try:
        return np.asarray(data[key])
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        why = " ".join(f"{type(e).__name__}: {e}".split())
        raise DataError(f"npz: {file} entry {key} is unreadable ({why})") from e


def _npz_x(file: Path, key: str, x: NDArray[Any], layout: str) -> NDArray[Any]:
    """x as (N, C, L) or (N, C, H, W): (N, L) -> (N, 1, L), (N, H, W) -> (N, 1, H, W)."""
    if x.ndim not in (2, 3, 4) or x.dtype.kind not in "biuf" or len(x) == 0:
        raise DataError(
            f"npz: {file} {key} has shape {x.shape} and dtype {x.dtype} (expected {_NPZ_EXPECTED})"
        )
    return x[:, None] if x.ndim == 2 or (x.ndim == 3 and layout == "nhw") else x


def npz(
    path: Path | None,
    *,
    layout: str = "nhw",
    max_train: int | None = None,
    max_test: int | None = None,
) -> Raw:
    """A data set saved with ``np.savez(path, x_train=..., y_train=..., x_test=..., y_test=...)``.

    x may be (N, L) signals, (N, C, L) signals, (N, H, W) images or (N, C, H, W) images; a
    3-D x is ambiguous and is read as (N, H, W) unless ``layout="ncl"``. Labels are integers
    and ``num_classes`` is the largest label plus one.

    Args:
        path: the .npz file (loaded without pickle).
        layout: how to read a 3-D x: ``"nhw"`` (images, the default) or ``"ncl"`` (signals).
        max_train, max_test: keep only the first so many samples.
    """
    if layout not in ("nhw", "ncl"):
        raise DataError(f"npz: option layout must be 'nhw' or 'ncl', got {layout!r}")
    cap = None if max_train is None else check_int("npz", "max_train", max_train)
    test_cap = None if max_test is None else check_int("npz", "max_test", max_test)
    file = need_path("npz", path, _NPZ_EXPECTED)
    if not file.is_file():
        raise DataError(f"npz: {file} is not a file (expected {_NPZ_EXPECTED})")
    try:
        data = np.load(file, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        why = " ".join(f"{type(e).__name__}: {e}".split())
        raise DataError(
            f"npz: {file} is not a readable .npz ({why}); expected {_NPZ_EXPECTED}"
        ) from e
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DataError(f"npz: {file} holds a single array (expected {_NPZ_EXPECTED})")
    with data:
        arrays = {k: _npz_array(file, data, k) for k in ("x_train", "y_train", "x_test", "y_test")}
    xs = {k: _npz_x(file, k, arrays[k], layout) for k in ("x_train", "x_test")}
    if xs["x_train"].shape[1:] != xs["x_test"].shape[1:]:
        raise DataError(
            f"npz: {file} x_train samples have shape {xs['x_train'].shape[1:]} but x_test "
            f"samples {xs['x_test'].shape[1:]} (expected the same shape)"
        )
    for split in ("train", "test"):
        y, n = arrays[f"y_{split}"], len(xs[f"x_{split}"])
        if y.dtype.kind not in "iu" or y.shape != (n,) or (y < 0).any():
            raise DataError(
                f"npz: {file} y_{split} must be non-negative integer labels of shape ({n},), "
                f"got shape {y.shape} and dtype {y.dtype}"
            )
    # From the whole file, so a capped load keeps the head size of the full data set.
    num_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max())) + 1
    return Raw(
        xs["x_train"][:cap],
        arrays["y_train"][:cap],
        xs["x_test"][:test_cap],
        arrays["y_test"][:test_cap],
        num_classes,
    )
