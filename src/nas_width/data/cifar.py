"""CIFAR-10 and CIFAR-100 read from their standard "python version" directories.

The batches are pickles written by Python 2 (numpy arrays inside, byte-string keys). They are
read with an unpickler that resolves only the few numpy and codecs globals those files need, so
a tampered file cannot run code, and ``numpy.core`` (the name Python 2 era files use) is mapped
to ``numpy._core`` without numpy 2's deprecation warning. No torchvision is needed.
"""

from __future__ import annotations

import codecs
import importlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nas_width.data.prepare import DataError, Raw, check_int, need_path

__all__ = ["cifar10", "cifar100"]

_PIXELS = 3 * 32 * 32
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


@dataclass(frozen=True)
class _Layout:
    """Where a distribution keeps its files, and how an error message describes it."""

    dataset: str
    folder: str
    train: tuple[str, ...]
    test: str
    expected: str


_CIFAR10 = _Layout(
    "cifar10",
    "cifar-10-batches-py",
    tuple(f"data_batch_{i}" for i in range(1, 6)),
    "test_batch",
    "the python version of CIFAR-10: cifar-10-batches-py/data_batch_1..5 and test_batch",
)
_CIFAR100 = _Layout(
    "cifar100",
    "cifar-100-python",
    ("train",),
    "test",
    "the python version of CIFAR-100: cifar-100-python/train and test",
)


class _NumpyOnly(pickle.Unpickler):
    """Resolves numpy's array reconstructors and ``_codecs.encode``, nothing else."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return codecs.encode  # bytes pickled by Python 3 with protocol 2
        canonical = module.replace("numpy._core", "numpy.core")
        if (canonical, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")
        if canonical.startswith("numpy.core"):  # numpy 2 renamed it; numpy 1 has only this
            try:
                return getattr(importlib.import_module(canonical.replace("core", "_core")), name)
            except ImportError:
                pass
        return getattr(importlib.import_module(canonical), name)


def _find(layout: _Layout, path: Path | None) -> Path:
    """The distribution directory: ``path`` itself or ``path/<layout.folder>``."""
    path = need_path(layout.dataset, path, f"{layout.expected}, or its parent directory")
    first = layout.train[0]
    for candidate in (path / layout.folder, path):
        if (candidate / first).is_file():
            return candidate
    raise DataError(
        f"{layout.dataset}: {path} has no {layout.folder}/{first} (expected {layout.expected})"
    )


def _read(
    layout: _Layout, file: Path, label_key: bytes, num_classes: int
) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """One pickled batch: images (N, 3, 32, 32) uint8 and labels (N,) int64."""
    dataset = layout.dataset

    def bad(why: str) -> DataError:
        why = " ".join(why.split())  # one line, whatever the exception said
        return DataError(
            f"{dataset}: {file} is not a {dataset} batch ({why}); expected {layout.expected}"
        )

    try:
        with file.open("rb") as f:
            batch = _NumpyOnly(f, encoding="bytes").load()
    except Exception as e:  # truncated or garbled pickles raise many different types
        raise bad(f"{type(e).__name__}: {e}") from e
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise bad(f"no b'data' and {label_key!r} entries")
    data, labels = batch[b"data"], batch[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise bad("b'data' is not a 2-D uint8 array")
    if data.shape[1] != _PIXELS:
        raise bad(f"b'data' has {data.shape[1]} columns, not {_PIXELS}")
    try:
        y = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise bad(f"{label_key!r} is not a list of integers") from e
    if len(y) != len(data) or (len(y) and (y.min() < 0 or y.max() >= num_classes)):
        raise bad(f"{label_key!r} must hold {len(data)} labels in 0..{num_classes - 1}")
    return data.reshape(-1, 3, 32, 32), y  # rows are row-major 3x32x32 images


def _load(
    layout: _Layout,
    path: Path | None,
    label_key: bytes,
    num_classes: int,
    max_train: int | None,
    max_test: int | None,
) -> Raw:
    """Reads train files until ``max_train`` images are in, then the test file."""
    dataset = layout.dataset
    cap = None if max_train is None else check_int(dataset, "max_train", max_train)
    test_cap = None if max_test is None else check_int(dataset, "max_test", max_test)
    folder = _find(layout, path)
    for name in [*layout.train, layout.test]:  # a missing file fails before any reading
        if not (folder / name).is_file():
            raise DataError(f"{dataset}: {folder} has no {name} (expected {layout.expected})")
    xs, ys = [], []
    for name in layout.train:
        x, y = _read(layout, folder / name, label_key, num_classes)
        xs.append(x)
        ys.append(y)
        if cap is not None and sum(map(len, ys)) >= cap:
            break
    x_test, y_test = _read(layout, folder / layout.test, label_key, num_classes)
    return Raw(
        np.concatenate(xs)[:cap],
        np.concatenate(ys)[:cap],
        x_test[:test_cap],
        y_test[:test_cap],
        num_classes=num_classes,
    )


def cifar10(path: Path | None, *, max_train: int | None = None, max_test: int | None = None) -> Raw:
    """CIFAR-10: x (N, 3, 32, 32) uint8, 10 classes, 50,000 train and 10,000 test images.

    Args:
        path: ``cifar-10-batches-py/`` or the directory holding it.
        max_train, max_test: keep only the first so many images (CPU runs and tests).
    """
    return _load(_CIFAR10, path, b"labels", 10, max_train, max_test)


def cifar100(
    path: Path | None,
    *,
    label: str = "fine",
    max_train: int | None = None,
    max_test: int | None = None,
) -> Raw:
    """CIFAR-100: x (N, 3, 32, 32) uint8, 100 fine or 20 coarse classes, 50,000 / 10,000.

    Args:
        path: ``cifar-100-python/`` or the directory holding it.
        label: ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses).
        max_train, max_test: keep only the first so many images (CPU runs and tests).
    """
    if label not in ("fine", "coarse"):
        raise DataError(f"cifar100: option label must be 'fine' or 'coarse', got {label!r}")
    key, classes = (b"fine_labels", 100) if label == "fine" else (b"coarse_labels", 20)
    return _load(_CIFAR100, path, key, classes, max_train, max_test)
