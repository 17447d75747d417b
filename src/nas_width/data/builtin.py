"""Data sets that need no files: scikit-learn's digits, MNIST-1D and a synthetic set.

All three are generated or shipped offline, so a search runs with no network and no data
directory. scikit-learn and mnist1d are imported inside the loaders (``import nas_width`` stays
fast without them).
"""

from __future__ import annotations

import functools
import importlib
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nas_width.data.prepare import DataError, Raw, check_int, stratified_split

__all__ = ["digits", "mnist1d", "synthetic"]

# Fixed, so the digits test split never moves when a search changes split_seed.
_DIGITS_TEST_SEED = 1797
_DIGITS_TEST_FRACTION = 0.2


def digits(*, folds: int | None = None, fold: int = 0) -> Raw:
    """scikit-learn's 1,797 handwritten digits: x (N, 1, 8, 8), pixel values 0..16, 10 classes.

    The set has no test split, so a stratified 20% (359 images) is held out with a fixed seed;
    the remaining 1,438 are the pool that validation is carved from. One such split tests on
    359 images (one image = 0.28 points), too few to tell shapes apart; with ``folds`` the test
    split is fold ``fold`` of a fixed stratified K-fold instead (scikit-learn's
    StratifiedKFold), and a study that sets ``folds`` gives each replicate seed its own fold
    (seed mod K), so that with K seeds every image is tested once per shape.

    Args:
        folds: K >= 2 for K-fold test splits (None: the fixed 20% holdout).
        fold: which fold is the test split, in [0, K).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float32)[:, None]  # (1797, 8, 8) -> (N, 1, 8, 8)
    y = np.asarray(bunch.target, dtype=np.int64)
    if folds is None:
        train, test = stratified_split(y, _DIGITS_TEST_FRACTION, _DIGITS_TEST_SEED)
    else:
        train, test = _kfold(y, check_int("digits", "folds", folds, minimum=2), fold)
    return Raw(x[train], y[train], x[test], y[test], num_classes=10)


def _kfold(y: NDArray[Any], folds: int, fold: object) -> tuple[NDArray[Any], NDArray[Any]]:
    """(train, test) indices of fold ``fold`` of a fixed stratified ``folds``-fold split."""
    from sklearn.model_selection import StratifiedKFold

    k = check_int("digits", "fold", fold, minimum=0)
    if k >= folds:
        raise DataError(f"digits: option fold must be below folds ({folds}), got {fold!r}")
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=_DIGITS_TEST_SEED)
    train, test = list(splitter.split(np.zeros(len(y)), y))[k]
    return train, test


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int) -> tuple[NDArray[Any], ...]:
    """MNIST-1D generated offline by ``make_dataset`` (never ``get_dataset``: it downloads).

    ``make_dataset`` reseeds the global ``random`` and ``numpy`` generators; their states are
    restored so that loading data does not change a trial's randomness. Cached in-process:
    trials load it repeatedly and generation takes about half a second.
    """
    data = importlib.import_module("mnist1d.data")
    args = data.get_dataset_args()
    args.num_samples = num_samples
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        ds = data.make_dataset(args)
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    arrays = (ds["x"], ds["y"], ds["x_test"], ds["y_test"])
    for a in arrays:
        a.setflags(write=False)  # shared by every caller through the cache
    return arrays


def mnist1d(*, num_samples: int = 5000, test_samples: int | None = None) -> Raw:
    """MNIST-1D (Greydanus 2020): x (N, 1, 40), 10 classes, 80% train and 20% test.

    The package's generator makes any number of signals, so the test split can be as large as
    a comparison of shapes needs: the default 1,000 test signals put one signal at 0.1 points.

    Args:
        num_samples: total samples generated (default 5000: 4000 train, 1000 test).
        test_samples: the last ``test_samples`` of them are the test split (default: 20%);
            e.g. 16000 and 10000 keep the usual ~5k training pool and test on 10k signals.
    """
    n = check_int("mnist1d", "num_samples", num_samples, minimum=10)
    x, y, x_test, y_test = _mnist1d_arrays(n)
    if test_samples is not None:
        t = check_int("mnist1d", "test_samples", test_samples, minimum=1)
        x, y = np.concatenate([x, x_test]), np.concatenate([y, y_test])  # generator order
        cut = len(y) - t  # num_samples rounded down to whole classes
        if cut < 10:
            raise DataError(
                f"mnist1d: option test_samples must leave 10 or more of num_samples ({n}) "
                f"for training, got {t}"
            )
        x, y, x_test, y_test = x[:cut], y[:cut], x[cut:], y[cut:]
    return Raw(x[:, None], y, x_test[:, None], y_test, num_classes=10)  # (N, 40) -> (N, 1, 40)


def _shape(value: object) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace("x", ",").split(",") if v.strip()]
    if not isinstance(value, Sequence) or len(value) not in (2, 3):
        raise DataError(f"synthetic: option input_shape must be (C, L) or (C, H, W), got {value!r}")
    return tuple(check_int("synthetic", "input_shape", v) for v in value)


def synthetic(
    *,
    n: int = 512,
    input_shape: Sequence[int] = (1, 8, 8),
    num_classes: int = 4,
    seed: int = 0,
) -> Raw:
    """A small learnable set for tests: a fixed random pattern per class plus unit noise.

    Class means are standard normal, so two classes differ by about ``sqrt(2 * numel)``
    standard deviations of noise and a small Mixer separates them within a few epochs.
    Labels are balanced. The last ``n // 5`` samples are the test split.

    Args:
        n: total samples, x of shape (n, *input_shape).
        input_shape: (C, H, W) for images or (C, L) for signals.
        num_classes: number of classes (>= 2).
        seed: seeds the class patterns, the labels and the noise.
    """
    n = check_int("synthetic", "n", n, minimum=10)
    shape = _shape(input_shape)
    k = check_int("synthetic", "num_classes", num_classes, minimum=2)
    rng = np.random.default_rng(check_int("synthetic", "seed", seed, minimum=0))
    means = rng.standard_normal((k, *shape)).astype(np.float32)  # (K, *input_shape)
    y = rng.permutation(np.arange(n) % k)
    x = means[y] + rng.standard_normal((n, *shape)).astype(np.float32)  # (n, *input_shape)
    cut = n - n // 5
    return Raw(x[:cut], y[:cut], x[cut:], y[cut:], num_classes=k)
