"""The data package: loaders on tiny files in the exact standard layouts, splits, augmentation."""

from __future__ import annotations

import doctest
import importlib
import os
import pickle
import random
import warnings
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pytest
import torch

from nas_width import NasWidthError, build_model
from nas_width.data import DATASETS, Splits, cifar, files, load_dataset, random_crop_flip
from nas_width.data.prepare import DataError, stratified_split
from tests.conftest import small_config

RNG = np.random.default_rng(0)


def _one_line_error(match: str, *args: Any, **kwargs: Any) -> str:
    """The one-line message of the DataError that ``load_dataset(*args, **kwargs)`` raises."""
    with pytest.raises(DataError) as info:
        load_dataset(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    assert match in message, message
    assert isinstance(info.value, NasWidthError)
    return message


def _channel_stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    dims = [0, *range(2, x.dim())]
    return x.mean(dim=dims), x.std(dim=dims, correction=0)


# -- fabricated distributions ---------------------------------------------------------------


def _cifar_batch(n: int, label_key: bytes, num_classes: int) -> dict[bytes, Any]:
    return {
        b"batch_label": b"fabricated",
        label_key: [int(v) for v in RNG.integers(0, num_classes, n)],
        b"data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8),
        b"filenames": [b"img.png"] * n,
    }


def _write_pickle(file: Path, obj: object) -> None:
    file.write_bytes(pickle.dumps(obj, protocol=2))


@pytest.fixture
def cifar10_root(tmp_path: Path) -> Path:
    """cifar-10-batches-py/ with 10 images in each of the five train batches and the test batch."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        _write_pickle(folder / name, _cifar_batch(10, b"labels", 10))
    return tmp_path


@pytest.fixture
def cifar100_root(tmp_path: Path) -> Path:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name, n in (("train", 40), ("test", 8)):
        batch = _cifar_batch(n, b"fine_labels", 100)
        batch[b"coarse_labels"] = [v // 5 for v in batch[b"fine_labels"]]
        _write_pickle(folder / name, batch)
    return tmp_path


@pytest.fixture
def stl10_root(tmp_path: Path) -> Path:
    """stl10_binary/ with 6 train and 3 test images; train image 0 has one marked pixel."""
    folder = tmp_path / "stl10_binary"
    folder.mkdir()
    for split, n in (("train", 6), ("test", 3)):
        x = np.zeros(n * 27648, dtype=np.uint8)
        if split == "train":  # image 0, channel 1, row 5, column 70, in column-major order
            x[1 * 9216 + 70 * 96 + 5] = 255
        (folder / f"{split}_X.bin").write_bytes(x.tobytes())
        (folder / f"{split}_y.bin").write_bytes(bytes([1 + i % 10 for i in range(n)]))
    return tmp_path


# -- names, options, splits -----------------------------------------------------------------


def test_registry_and_name_errors() -> None:
    assert DATASETS == ("digits", "mnist1d", "cifar10", "cifar100", "stl10", "npz", "synthetic")
    message = _one_line_error("'imagenet'", "imagenet")
    assert all(name in message for name in DATASETS)
    _one_line_error("unknown option colour", "synthetic", colour=1)
    _one_line_error("val_fraction", "synthetic", val_fraction=1.0)
    _one_line_error("val_fraction", "synthetic", val_fraction=float("nan"))
    _one_line_error("split_seed", "synthetic", split_seed=-1)
    _one_line_error("takes no path", "digits", path="/somewhere")
    _one_line_error("option n must be an integer", "synthetic", n="many")
    for name in ("cifar10", "cifar100", "stl10", "npz"):
        _one_line_error(f"{name}: needs a path", name)


def test_stratified_split_is_exact_and_balanced() -> None:
    y = np.repeat(np.arange(4), [50, 30, 10, 10])
    keep, held = stratified_split(y, 0.2, seed=3)
    assert len(held) == 20
    assert len(keep) == 80
    assert sorted([*keep, *held]) == list(range(100))
    assert np.bincount(y[held]).tolist() == [10, 6, 2, 2]


def test_digits_sizes_fixed_test_and_seeded_validation() -> None:
    a = load_dataset("digits", split_seed=0)
    b = load_dataset("digits", split_seed=0)
    c = load_dataset("digits", split_seed=1)
    assert a.input_shape == (1, 8, 8)
    assert a.is_image
    assert a.num_classes == 10
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 1797
    assert len(a.y_test) == 359
    assert len(a.y_val) == round(0.2 * (1797 - 359))
    assert a.x_train.dtype == torch.float32
    assert a.y_train.dtype == torch.int64
    assert a.x_train.device.type == "cpu"
    assert torch.equal(a.x_val, b.x_val)
    assert torch.equal(a.y_train, b.y_train)
    assert not torch.equal(a.y_val, c.y_val)
    # The test split never moves; only its normalization follows the train statistics.
    assert torch.equal(a.y_test, c.y_test)
    assert torch.allclose(a.x_test, c.x_test, atol=0.05)
    assert set(torch.cat([a.y_train, a.y_val, a.y_test]).tolist()) == set(range(10))


def test_synthetic_is_learnable_by_a_small_mixer() -> None:
    splits = load_dataset("synthetic", num_classes=4)
    assert splits.input_shape == (1, 8, 8)
    assert len(splits.y_train) == 328
    model = build_model(small_config(num_classes=4))
    for _ in range(5):  # plain SGD: torch.optim would import dynamo, seconds on a cold start
        for i in range(0, len(splits.y_train), 32):
            logits = model(splits.x_train[i : i + 32])
            loss = torch.nn.functional.cross_entropy(logits, splits.y_train[i : i + 32])
            model.zero_grad()
            torch.autograd.backward(loss)  # loss.backward(), which torch leaves untyped
            with torch.no_grad():
                for p in model.parameters():
                    assert p.grad is not None
                    p.sub_(0.1 * p.grad)
    with torch.no_grad():
        accuracy = (model(splits.x_val).argmax(1) == splits.y_val).float().mean().item()
    assert accuracy > 0.9


def test_synthetic_signals_and_seed() -> None:
    s = load_dataset("synthetic", input_shape=(2, 12), n=60, num_classes=3, seed=5)
    assert s.input_shape == (2, 12)
    assert not s.is_image
    assert s.num_classes == 3
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 60
    assert not torch.equal(s.x_test, load_dataset("synthetic", input_shape=(2, 12), n=60).x_test)


def test_digits_folds_partition_every_image_into_stratified_test_splits() -> None:
    """folds = K: the K test splits are disjoint, cover all 1,797 images, and each holds
    every class in proportion; a fold outside [0, K) is refused naming it."""
    from nas_width.data.builtin import digits

    raws = [digits(folds=5, fold=k) for k in range(5)]
    tested = np.concatenate([r.x_test.reshape(len(r.x_test), -1) for r in raws])
    assert len(tested) == 1797
    rows = {r.tobytes() for r in tested}
    every = digits(folds=5, fold=0)
    all_rows = {r.tobytes() for r in np.concatenate([every.x_train, every.x_test]).reshape(-1, 64)}
    assert rows == all_rows  # the folds cover the whole set
    per_class = np.bincount(np.concatenate([every.y_train, every.y_test]), minlength=10)
    for r in raws:
        assert len(r.y_test) in (359, 360)
        share = np.bincount(r.y_test, minlength=10)
        assert (abs(share - per_class / 5) < 1).all()  # stratified: each class within one
        assert len(r.y_train) + len(r.y_test) == 1797
    with pytest.raises(DataError, match="fold must be below folds \\(5\\), got 5"):
        load_dataset("digits", folds=5, fold=5)
    with pytest.raises(DataError, match="folds"):
        load_dataset("digits", folds=1)


def test_mnist1d_test_samples_sets_the_held_out_size() -> None:
    s = load_dataset("mnist1d", num_samples=2000, test_samples=1500)
    assert (len(s.y_train) + len(s.y_val), len(s.y_test)) == (500, 1500)
    plain = load_dataset("mnist1d", num_samples=2000)
    assert len(plain.y_test) == 400  # the package's 20%
    with pytest.raises(DataError, match="test_samples must leave 10 or more"):
        load_dataset("mnist1d", num_samples=2000, test_samples=1995)


def test_mnist1d_offline_shapes_and_global_rng_untouched() -> None:
    np.random.seed(123)
    random.seed(123)
    expected = (np.random.random(), random.random())
    np.random.seed(123)
    random.seed(123)
    s = load_dataset("mnist1d")
    assert (np.random.random(), random.random()) == expected
    assert s.input_shape == (1, 40)
    assert s.num_classes == 10
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (3200, 800, 1000)
    assert int(s.y_train.max()) == 9
    assert int(s.y_train.min()) == 0


# -- CIFAR ----------------------------------------------------------------------------------


@pytest.mark.parametrize("inner", [False, True])
def test_cifar10_loads_from_parent_or_folder(cifar10_root: Path, inner: bool) -> None:
    path = cifar10_root / "cifar-10-batches-py" if inner else cifar10_root
    s = load_dataset("cifar10", path=str(path))
    assert s.input_shape == (3, 32, 32)
    assert s.num_classes == 10
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (40, 10, 10)
    mean, std = _channel_stats(s.x_train)
    assert torch.allclose(mean, torch.zeros(3), atol=1e-5)
    assert torch.allclose(std, torch.ones(3), atol=1e-5)
    assert int(s.y_train.min()) >= 0
    assert int(s.y_train.max()) < 10


def test_cifar_rows_are_row_major_images(cifar10_root: Path) -> None:
    batch = pickle.loads((cifar10_root / "cifar-10-batches-py" / "data_batch_1").read_bytes())
    raw = cifar.cifar10(cifar10_root, max_train=12, max_test=3)
    assert raw.x_train.shape == (12, 3, 32, 32)
    assert raw.x_test.shape == (3, 3, 32, 32)
    assert raw.x_train[4, 2, 7, 30] == batch[b"data"][4, 2 * 1024 + 7 * 32 + 30]
    assert raw.y_train[:10].tolist() == batch[b"labels"]


def test_cifar10_python2_pickles_load_without_warnings(tmp_path: Path) -> None:
    """The real files name ``numpy.core.multiarray``, deprecated (but still valid) in numpy 2."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]:
        blob = pickle.dumps(_cifar_batch(4, b"labels", 10), protocol=2)
        (folder / name).write_bytes(blob.replace(b"numpy._core.", b"numpy.core."))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cifar.cifar10(folder).x_train.shape == (20, 3, 32, 32)


@pytest.mark.parametrize(("label", "classes"), [("fine", 100), ("coarse", 20)])
def test_cifar100_labels(cifar100_root: Path, label: str, classes: int) -> None:
    s = load_dataset("cifar100", path=cifar100_root, label=label, max_test=5)
    assert s.num_classes == classes
    assert s.input_shape == (3, 32, 32)
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (32, 8, 5)
    assert int(torch.cat([s.y_train, s.y_val, s.y_test]).max()) < classes


def test_cifar_errors_name_path_and_layout(cifar10_root: Path, cifar100_root: Path) -> None:
    folder = cifar10_root / "cifar-10-batches-py"
    _one_line_error(f"{cifar10_root / 'x'} does not exist", "cifar10", path=cifar10_root / "x")
    empty = cifar10_root / "empty"
    empty.mkdir()
    message = _one_line_error(
        "cifar-10-batches-py/data_batch_1..5 and test_batch", "cifar10", path=empty
    )
    assert f"{empty} has no cifar-10-batches-py/data_batch_1" in message
    _one_line_error("cifar100: option label", "cifar100", path=cifar100_root, label="medium")
    _one_line_error("unknown option label", "cifar10", path=cifar10_root, label="fine")

    blob = (folder / "data_batch_3").read_bytes()
    (folder / "data_batch_3").unlink()
    _one_line_error(f"{folder} has no data_batch_3", "cifar10", path=cifar10_root)
    for bad, why in [
        (blob[: len(blob) // 2], "is not a cifar10 batch"),
        (os.urandom(500), "is not a cifar10 batch"),
        (pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}), "100 columns"),
        (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 10]}), "0..9"),
        (pickle.dumps({b"labels": [0]}), "no b'data'"),
        (pickle.dumps(os.system), "refusing to load global"),
    ]:
        (folder / "data_batch_3").write_bytes(bad)
        message = _one_line_error(why, "cifar10", path=cifar10_root)
        assert str(folder / "data_batch_3") in message
        assert "expected the python version" in message


# -- STL-10 ---------------------------------------------------------------------------------


def test_stl10_column_major_images_and_labels(stl10_root: Path) -> None:
    raw = files.stl10(stl10_root)
    assert raw.x_train.shape == (6, 3, 96, 96)
    assert raw.x_test.shape == (3, 3, 96, 96)
    assert raw.x_train[0, 1, 5, 70] == 255
    assert int(raw.x_train.sum()) == 255
    assert raw.y_train.tolist() == [0, 1, 2, 3, 4, 5]
    assert raw.y_test.tolist() == [0, 1, 2]
    s = load_dataset("stl10", path=stl10_root / "stl10_binary", max_train=5, val_fraction=0.4)
    assert s.input_shape == (3, 96, 96)
    assert s.num_classes == 10
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (3, 2, 3)


def test_stl10_errors(stl10_root: Path) -> None:
    folder = stl10_root / "stl10_binary"
    _one_line_error(f"{stl10_root / 'x'} does not exist", "stl10", path=stl10_root / "x")
    empty = stl10_root / "empty"
    empty.mkdir()
    _one_line_error(f"{empty} has no stl10_binary/train_X.bin", "stl10", path=empty)
    (folder / "test_y.bin").write_bytes(bytes([0, 1, 2]))
    _one_line_error("labels outside 1..10", "stl10", path=stl10_root)
    (folder / "test_y.bin").unlink()
    _one_line_error(f"{folder} has no test_y.bin", "stl10", path=stl10_root)
    x = folder / "train_X.bin"
    x.write_bytes(x.read_bytes()[:-7])
    message = _one_line_error(str(x), "stl10", path=stl10_root)
    assert "stl10_binary/train_X.bin, train_y.bin" in message


# -- npz ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "layout", "input_shape"),
    [
        ((30, 12), "nhw", (1, 12)),
        ((30, 2, 12), "ncl", (2, 12)),
        ((30, 6, 5), "nhw", (1, 6, 5)),
        ((30, 3, 4, 4), "nhw", (3, 4, 4)),
    ],
)
def test_npz_ranks(
    tmp_path: Path, shape: tuple[int, ...], layout: str, input_shape: tuple[int, ...]
) -> None:
    file = tmp_path / "set.npz"
    x = RNG.normal(3.0, 2.0, shape).astype(np.float64)
    y = np.arange(30) % 3
    np.savez(file, x_train=x, y_train=y, x_test=x[:7] * 2, y_test=np.full(7, 4))
    s = load_dataset("npz", path=file, layout=layout, split_seed=2)
    assert s.input_shape == input_shape
    assert s.num_classes == 5
    assert (len(s.y_train), len(s.y_val), len(s.y_test)) == (24, 6, 7)
    # Train statistics, applied unchanged to test.
    keep, _ = stratified_split(y, 0.2, seed=2)
    train = torch.from_numpy(x[keep]).reshape(len(keep), *input_shape)
    mean, std = _channel_stats(train)
    view = (1, -1) + (1,) * (train.dim() - 2)
    test = torch.from_numpy(x[:7] * 2).reshape(7, *input_shape)
    expected = (test - mean.view(view)) / std.view(view)
    assert torch.allclose(s.x_test, expected.float(), atol=1e-5)
    assert torch.allclose(_channel_stats(s.x_train)[1], torch.ones(input_shape[0]), atol=1e-5)


class _NpzArrays(TypedDict):
    """The arrays of an .npz set without its y_test (keyword arguments of np.savez)."""

    x_train: np.ndarray[Any, Any]
    y_train: np.ndarray[Any, Any]
    x_test: np.ndarray[Any, Any]


def test_npz_errors(tmp_path: Path) -> None:
    file = tmp_path / "set.npz"
    good: _NpzArrays = {
        "x_train": np.zeros((10, 4)),
        "y_train": np.arange(10),
        "x_test": np.zeros((2, 4)),
    }
    _one_line_error(f"npz: {file} does not exist", "npz", path=file)
    _one_line_error("is not a file", "npz", path=tmp_path)
    np.savez(file, **good)
    _one_line_error(f"{file} has no y_test", "npz", path=file)
    np.savez(file, **good, y_test=np.array([0.0, 1.0]))
    _one_line_error("y_test must be non-negative integer labels", "npz", path=file)
    deep: _NpzArrays = {**good, "x_train": np.zeros((10, 1, 1, 1, 4))}
    np.savez(file, **deep, y_test=np.arange(2))
    _one_line_error("x_train has shape (10, 1, 1, 1, 4)", "npz", path=file)
    file.write_bytes(file.read_bytes()[:100])
    _one_line_error(f"{file} is not a readable .npz", "npz", path=file)
    _one_line_error("option layout", "npz", path=file, layout="nlc")


# -- augmentation ---------------------------------------------------------------------------


def _images() -> torch.Tensor:
    return torch.randn(16, 3, 6, 5)


def test_crop_flip_identity_and_shape() -> None:
    x = _images()
    assert random_crop_flip(x, pad=0, flip=False) is x
    assert random_crop_flip(x, pad=2, flip=True).shape == x.shape
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_crop_flip(x[0], pad=1, flip=False)


def test_flip_is_an_exact_mirror() -> None:
    x = _images()
    out = random_crop_flip(x, pad=0, flip=True, generator=torch.Generator().manual_seed(0))
    mirrored = [bool(torch.equal(o, i.flip(-1))) for o, i in zip(out, x, strict=True)]
    kept = [bool(torch.equal(o, i)) for o, i in zip(out, x, strict=True)]
    assert all(m or k for m, k in zip(mirrored, kept, strict=True))
    assert any(mirrored)
    assert any(kept)


def test_crop_flip_deterministic_with_a_generator() -> None:
    x = _images()
    a = random_crop_flip(x, pad=2, flip=True, generator=torch.Generator().manual_seed(7))
    b = random_crop_flip(x, pad=2, flip=True, generator=torch.Generator().manual_seed(7))
    c = random_crop_flip(x, pad=2, flip=True, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def _window(out: torch.Tensor, padded: torch.Tensor, flip: bool) -> tuple[int, int] | None:
    """The offset of the (maybe mirrored) H x W window of ``padded`` (C, H', W') equal to out."""
    H, W = out.shape[-2:]
    for dy in range(padded.shape[-2] - H + 1):
        for dx in range(padded.shape[-1] - W + 1):
            window = padded[:, dy : dy + H, dx : dx + W]
            if torch.equal(out, window) or (flip and torch.equal(out, window.flip(-1))):
                return dy, dx
    return None


@pytest.mark.parametrize("flip", [False, True])
def test_crop_is_a_window_of_the_padded_image(flip: bool) -> None:
    x, pad = _images(), 2
    out = random_crop_flip(x, pad=pad, flip=flip, generator=torch.Generator().manual_seed(1))
    padded = torch.nn.functional.pad(x, (pad,) * 4)
    offsets = [_window(o, p, flip) for o, p in zip(out, padded, strict=True)]
    assert None not in offsets
    assert len(set(offsets)) > 3  # offsets vary per sample


def test_splits_contract() -> None:
    s = load_dataset("synthetic", n=50)
    assert isinstance(s, Splits)
    x, y = s.train_and_val()
    assert len(x) == len(y) == len(s.y_train) + len(s.y_val)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_crop_flip_stays_on_the_device() -> None:
    x = _images().cuda()
    gen = torch.Generator(device="cuda").manual_seed(3)
    out = random_crop_flip(x, pad=1, flip=True, generator=gen)
    assert out.device == x.device
    assert torch.equal(out, random_crop_flip(x, pad=1, flip=True, generator=gen.manual_seed(3)))


def test_docstring_example() -> None:
    result = doctest.testmod(importlib.import_module("nas_width.data"))
    assert result.attempted > 0
    assert result.failed == 0


def test_a_study_with_folds_tests_each_replicate_seed_on_its_own_fold() -> None:
    """digits with folds = 3 and seeds 0..2: seed s trains on its own splits, tested on fold
    s (the three test splits cover the set once) and validated on a split of its own."""
    from nas_width.search import load_spec
    from nas_width.search.prepare import prepare
    from nas_width.search.study import DatasetSpec

    spec = load_spec("digits-sweep").replace(dataset=DatasetSpec("digits", options={"folds": 3}))
    prepared = prepare(spec, "flops=500k")
    assert prepared.replicates is not None
    assert sorted(prepared.replicates) == [0, 1, 2]
    assert prepared.trial_data is prepared.replicates
    tests = [prepared.replicates[s].y_test for s in range(3)]
    assert sum(len(t) for t in tests) == 1797
    vals = [prepared.replicates[s].y_val for s in range(3)]
    assert not torch.equal(vals[0][:50], vals[1][:50])
    fixed = spec.replace(dataset=DatasetSpec("digits", options={"folds": 3, "fold": 1}))
    assert prepare(fixed, "flops=500k").replicates is None  # a fixed fold: one split for all
