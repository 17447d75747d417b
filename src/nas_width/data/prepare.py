"""From raw arrays to :class:`Splits`: option checks, the validation split, normalization.

Every loader returns a :class:`Raw` (numpy arrays of the data set's own train and test splits);
:func:`make_splits` is the one place that carves validation out of train and normalizes, so all
data sets share the same guarantees: the validation split depends only on ``split_seed``, the
test split is never mixed into train or validation, and the statistics come from train alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray

from nas_width.data.splits import Splits
from nas_width.errors import NasWidthError

__all__ = ["DataError", "Raw", "check_int", "make_splits", "need_path", "stratified_split"]

_EPS = 1e-8


class DataError(NasWidthError):
    """A data set name, option, path or file is wrong; one line naming the path or value."""


class Raw(NamedTuple):
    """A data set as its loader read it.

    Attributes:
        x_train, x_test: inputs, shape (N, C_in, H, W) or (N, C_in, L), any real dtype.
        y_train, y_test: integer labels in [0, num_classes), shape (N,).
        num_classes: number of classes.
    """

    x_train: NDArray[Any]
    y_train: NDArray[Any]
    x_test: NDArray[Any]
    y_test: NDArray[Any]
    num_classes: int


def check_int(dataset: str, option: str, value: object, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``; int-valued strings are accepted (CLI options)."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(
            f"{dataset}: option {option} must be an integer >= {minimum}, got {value!r}"
        )
    return int(value)


def need_path(dataset: str, path: Path | None, what: str) -> Path:
    """``path`` made absolute; a missing path or one that does not exist is a :class:`DataError`.

    ``what`` names the expected layout, e.g. ``"a directory holding cifar-10-batches-py/"``.
    """
    if path is None:
        raise DataError(f"{dataset}: needs a path (expected {what})")
    path = path.expanduser().absolute()
    if not path.exists():
        raise DataError(f"{dataset}: {path} does not exist (expected {what})")
    return path


def stratified_split(
    y: NDArray[Any], fraction: float, seed: int
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Indices ``(keep, held_out)`` with ``round(fraction * N)`` held out, class by class.

    Each class is shuffled with ``seed``; an element's rank within its class, divided by the
    class size, orders all elements, so every class gives up the same share (up to rounding)
    and the held-out count is exact. Both index arrays are sorted, keeping the source order.
    """
    n = len(y)
    order = np.random.default_rng(seed).permutation(n)
    by_class = np.argsort(y[order], kind="stable")  # positions in `order`, grouped by class
    _, starts, counts = np.unique(y[order][by_class], return_index=True, return_counts=True)
    rank = np.empty(n, dtype=np.float64)
    for start, count in zip(starts, counts, strict=True):
        rank[by_class[start : start + count]] = (np.arange(count) + 0.5) / count
    held_out = np.zeros(n, dtype=bool)
    held_out[order[np.argsort(rank, kind="stable")[: round(fraction * n)]]] = True
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def _float(a: NDArray[Any]) -> torch.Tensor:
    """(N, C_in, ...) float32 copy that shares no memory with ``a`` (loaders may cache it)."""
    if not a.flags.writeable or not a.dtype.isnative:  # torch.from_numpy needs both
        a = np.array(a, dtype=a.dtype.newbyteorder("="))
    return torch.from_numpy(np.ascontiguousarray(a)).to(torch.float32, copy=True)


def make_splits(name: str, raw: Raw, *, val_fraction: float, split_seed: int) -> Splits:
    """Carve ``val_fraction`` of train as validation (stratified, seeded) and normalize.

    Each input channel is shifted and scaled by the mean and (population) standard deviation
    of the remaining train split, and the same affine map is applied to validation and test.
    Tensors are float32 (x) and int64 (y), on the CPU.
    """
    keep, val = stratified_split(raw.y_train, val_fraction, split_seed)
    if len(keep) == 0 or len(val) == 0:
        raise DataError(
            f"{name}: val_fraction={val_fraction} of {len(raw.y_train)} training samples leaves "
            f"{len(keep)} for train and {len(val)} for validation (both need at least one)"
        )
    x_train, x_val, x_test = _float(raw.x_train[keep]), _float(raw.x_train[val]), _float(raw.x_test)
    dims = [0, *range(2, x_train.dim())]  # every axis but the channel axis
    var, mean = torch.var_mean(x_train, dim=dims, correction=0, keepdim=True)  # (1, C_in, 1...)
    std = var.sqrt().clamp_min(_EPS)
    for x in (x_train, x_val, x_test):
        x.sub_(mean).div_(std)

    def labels(a: NDArray[Any]) -> torch.Tensor:
        return torch.tensor(np.asarray(a, dtype=np.int64))

    return Splits(
        name=name,
        x_train=x_train,
        y_train=labels(raw.y_train[keep]),
        x_val=x_val,
        y_val=labels(raw.y_train[val]),
        x_test=x_test,
        y_test=labels(raw.y_test),
        num_classes=raw.num_classes,
        mean=tuple(float(v) for v in mean.flatten()),
        std=tuple(float(v) for v in std.flatten()),
    )
