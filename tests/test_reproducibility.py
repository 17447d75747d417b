"""The same seed repeats a search: the same shapes in the same order and, on CPU, the same
accuracies, epoch by epoch.

What is promised, and why only that:

- Accuracies: a trial trains from a seed (the recipe's seed plus the shape's replicate seed)
  with as many threads as it has CPUs, so on CPU the same shape gives bit-identical accuracies,
  whichever Ray worker runs it and whatever runs beside it (on one kind of CPU and one build
  of torch: other vector instructions may round differently).
- Shapes, random and grid samplers: at any ``max_concurrent``. Trials are asked for one after
  another in the driver, each draw comes from the seeded sampler, and the wrapper that skips
  tried shapes counts every earlier trial, running or finished; the order in which trials
  finish never enters.
- Shapes, TPE (the default): TPE's first ``n_startup_trials`` (4) trials are seeded random draws,
  so they repeat at any ``max_concurrent``. After that TPE models the *finished* trials, and
  with two trials at once which trial has finished when the next is asked depends on timing:
  only ``max_concurrent = 1`` repeats the whole sequence. (GP and NSGA-II too, after their
  own random start.)

Each case runs the digits study twice into separate storages (in-process CLI, one local Ray for
the module) and compares trial by trial; a different ``--seed`` must give another sequence.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from nas_width.search.shape_tpe import ShapeTPE
from tests.conftest import invoke

pytestmark = pytest.mark.slow

BUDGET = "5k"
EPOCHS = 2
SEED = 7
#: TPE's random startup: its first trials are seeded draws that do not look at results.
TPE_STARTUP: int = inspect.signature(ShapeTPE).parameters["n_startup_trials"].default

Run = list[dict[str, Any]]


@pytest.fixture(scope="module", autouse=True)
def ray_local() -> Iterator[None]:
    """One local Ray (two CPUs) that every search of this module joins."""
    import ray

    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if started:
        ray.shutdown()


@pytest.fixture(scope="module")
def runs() -> dict[tuple[Any, ...], Run]:
    """Finished searches by (sampler, max_concurrent, trials, seed, replicate)."""
    return {}


def search(
    capsys: pytest.CaptureFixture[str],
    directory: Path,
    *,
    sampler: str,
    max_concurrent: int,
    trials: int,
    seed: int,
) -> Run:
    """Run ``nas-width search`` on the digits study into a new storage; its trials in order."""
    directory.mkdir(parents=True)
    url = f"sqlite:///{directory / 'study.db'}"
    code, out, err = invoke(
        capsys, "search", "--study", "digits", "--budget", BUDGET, "--epochs", str(EPOCHS),
        "--trials", str(trials), "--sampler", sampler, "--max-concurrent", str(max_concurrent),
        "--seed", str(seed), "--storage", url, "--study-name", "repeat",
    )  # fmt: skip
    assert code == 0, err
    stored = optuna.load_study(study_name="repeat", storage=url).get_trials()
    assert [t.number for t in stored] == list(range(trials)), out
    assert {t.state for t in stored} == {TrialState.COMPLETE}, out
    return [
        {
            "shape": t.params["shape"],
            "val_accuracy": t.values[0],
            "history": t.intermediate_values,
            "epochs": t.user_attrs["epochs"],
        }
        for t in stored
    ]


def cached(
    runs: dict[tuple[Any, ...], Run],
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
    replicate: int,
    **options: Any,
) -> Run:
    key = (*sorted(options.items()), replicate)
    if key not in runs:
        runs[key] = search(capsys, tmp_path_factory.mktemp("search") / "s", **options)
    return runs[key]


# "grid" is the same sampler as "random" (a seeded order without repeats): one case covers both.
CASES = [
    pytest.param("random", 2, 6, id="random-2-at-once"),
    pytest.param("tpe", 2, TPE_STARTUP, id="tpe-startup-2-at-once"),
    pytest.param("tpe", 1, TPE_STARTUP + 2, id="tpe-past-startup-1-at-a-time"),
]


@pytest.mark.parametrize(("sampler", "max_concurrent", "trials"), CASES)
def test_same_seed_repeats_shapes_and_accuracies(
    runs: dict[tuple[Any, ...], Run],
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
    sampler: str,
    max_concurrent: int,
    trials: int,
) -> None:
    options = {"sampler": sampler, "max_concurrent": max_concurrent, "trials": trials}
    first, second = (
        cached(runs, capsys, tmp_path_factory, replicate, seed=SEED, **options)
        for replicate in (0, 1)
    )
    assert [t["shape"] for t in second] == [t["shape"] for t in first]
    assert len({t["shape"] for t in first}) == trials  # no shape sampled twice
    for a, b in zip(first, second, strict=True):
        assert a["epochs"] == b["epochs"] == EPOCHS
        assert b["history"] == a["history"]  # bit-identical, epoch by epoch
        assert b["val_accuracy"] == a["val_accuracy"]


def test_another_seed_samples_another_sequence(
    runs: dict[tuple[Any, ...], Run],
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    options = {"sampler": "tpe", "max_concurrent": 2, "trials": 6}
    base = cached(runs, capsys, tmp_path_factory, 0, seed=SEED, **options)
    other = cached(runs, capsys, tmp_path_factory, 0, seed=SEED + 1, **options)
    assert [t["shape"] for t in other] != [t["shape"] for t in base]
