"""The paper's experiments as ready studies: the shapes they train and the budget they hold.

Each study must resolve, on data of the right shape, to exactly the paper's pair of shapes at
one budget: Mixer-SS/8 against its widening on CIFAR, Mixer-B/16 against Mixer-B-W on ImageNet.
"""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import numpy as np
import pytest

from nas_width.budget import closed_form
from nas_width.models.registry import get_config
from nas_width.search.prepare import prepare
from nas_width.search.study import load_spec


def shapes(study: str, data_dir: Path) -> dict[tuple[int, int], list[int]]:
    spec = load_spec(study)
    spec = spec.replace(dataset=dataclasses.replace(spec.dataset, path=str(data_dir)))
    prepared = prepare(spec)
    budget = prepared.budget
    found: dict[tuple[int, int], list[int]] = {}
    for cfg in prepared.shapes.values():
        used = getattr(closed_form(cfg), budget.metric)
        assert abs(used / budget.value - 1) <= budget.tolerance
        found.setdefault((cfg.tokens, cfg.channels), []).append(cfg.seed)
    assert prepared.spec.trials == len(prepared.shapes)  # trials = "all": every shape once
    return found


def fake_cifar(root: Path, classes: int) -> Path:
    """The python distribution's layout with a few random 32 x 32 images (only shapes matter)."""
    rng = np.random.default_rng(0)
    folder, labels = ("cifar-10-batches-py", b"labels") if classes == 10 else (
        "cifar-100-python", b"fine_labels")  # fmt: skip
    files = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"] if classes == 10 else [
        "train", "test"]  # fmt: skip
    (root / folder).mkdir()
    for name in files:
        batch = {b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                 labels: [int(v) for v in rng.integers(0, classes, 20)]}  # fmt: skip
        (root / folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    return root


@pytest.mark.parametrize(("study", "classes"), [("cifar10-widen", 10), ("cifar100-widen", 100)])
def test_cifar_widening_trains_ss8_and_its_widening_at_ss8s_connections(
    study: str, classes: int, tmp_path: Path
) -> None:
    found = shapes(study, fake_cifar(tmp_path, classes))
    assert found == {(16, 256): [0, 1, 2], (64, 115): [0, 1, 2]}
    ss8 = get_config("mixer_ss8")
    assert load_spec(study).budget == f"mixing_flops={closed_form(ss8).connections}"


def test_imagenet_study_trains_b16_and_the_papers_b_w(tmp_path: Path) -> None:
    """A tiny stand-in .npz of 224 x 224 images with 1000 classes: only its shape matters."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 3, 224, 224), dtype=np.uint8)
    y = np.array([0, 999, 1, 2])
    file = tmp_path / "imagenet-224.npz"
    np.savez(file, x_train=x, y_train=y, x_test=x, y_test=y)
    found = shapes("imagenet-bw", file)
    assert found == {(196, 768): [0], (256, 588): [0]}
