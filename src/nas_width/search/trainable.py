"""The Ray Tune trainable: train one shape with the study's recipe and report every epoch.

Public for plugin use: ``make_trainable`` gives a function trainable for a user's own
``ray.tune.Tuner``, with the data set put in Ray's object store once rather than per trial.
A trial whose training fails (NaN/inf loss, an exception, a CUDA out-of-memory error) reports a
final result with an ``error`` and returns; the search goes on and the trial ends FAIL.

Test hook: ``NAS_WIDTH_FAIL_SHAPE`` makes chosen trials fail for real inside the Ray worker (set
it before Ray starts: workers inherit the environment). It is a comma-separated list of
``PATTERN[=KIND]``; a trial whose shape key contains PATTERN fails with the first matching KIND
(default ``NAS_WIDTH_FAIL_SHAPE_KIND``, else ``error``): ``error`` raises a RuntimeError after
the first epoch, ``oom`` a ``torch.OutOfMemoryError`` as CUDA raises it (CPU-only CI has no real
one), ``nan`` trains on NaN inputs so that the loss check of :func:`nas_width.train.fit` fails.

Timing: every result also carries ``started_at`` (Unix time at which the trial's code began, the
data already fetched from the object store), ``fit_started_at`` (when training began),
``fit_seconds`` (seconds spent training so far, tuning and the reports included) and
``train_seconds`` (the sum of the reported epochs' own seconds so far), so that the time a
trial spends training can be told apart from Ray's and Optuna's
(``benchmarks/bench_orchestration.py``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch

from nas_width.config import MixerConfig
from nas_width.data import Splits
from nas_width.train import EpochReport, Recipe, Training, Tuning, successive_halving

__all__ = ["FAIL_HOOK_ENV", "make_trainable", "train_shape"]

#: Test hook: ``PATTERN[=KIND],...``; a trial whose shape key contains PATTERN fails (KIND).
FAIL_HOOK_ENV = "NAS_WIDTH_FAIL_SHAPE"
FAIL_KINDS = ("error", "oom", "nan")


class _ReportInterrupted(BaseException):
    """Wraps whatever Ray raised from inside ``tune.report`` so it is never taken for a
    training failure (Ray stops trials through exceptions raised there)."""

    def __init__(self, original: BaseException) -> None:
        self.original = original


def train_shape(
    config: dict[str, Any],
    *,
    shapes: dict[str, dict[str, Any]],
    recipe: dict[str, Any],
    data: Splits | Mapping[int, Splits],
    device: str | None = None,
    threads: int = 1,
    tuning: dict[str, Any] | None = None,
) -> None:
    """Ray function trainable: ``config["shape"]`` picks the MixerConfig to train.

    Each result carries the epoch's metrics plus the shape's fvcore FLOPs (the second
    objective of a Pareto search) and the id of the Ray node that trained it (``node_id``:
    where a trial ran on a cluster) and its timing (``started_at``, ``fit_started_at``,
    ``fit_seconds``, ``train_seconds``: see the module docstring). ``threads`` is the trial's
    CPU share: more intra-op threads than CPUs makes small models many times slower.

    With ``tuning`` (:class:`~nas_width.train.Tuning` as a dict) the shape trains each of its
    learning rates and keeps the best on validation by successive halving; the epochs reported
    are the winner's (those it trained while the rates were compared come at once). Every
    result carries the ``lr`` trained with; the last also the held-out ``test_accuracy``,
    ``test_loss`` and ``test_samples`` of the selected recipe and, when tuning, ``tuning``:
    each rate's epochs and validation accuracy when the choice was made.
    """
    timing = {"started_at": time.time(), "fit_started_at": math.nan, "train_seconds": 0.0}
    import ray
    from ray import tune

    from nas_width.budget import measure

    key = str(config["shape"])
    cfg = MixerConfig.from_dict(shapes[key])
    if not isinstance(data, Splits):
        data = data[cfg.seed]  # the replicate's own splits (repeated stratified splits)
    flops = measure(cfg).flops
    torch.set_num_threads(max(1, threads))
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    injected = injected_failure(key)
    if injected == "nan":
        data = dataclasses.replace(data, x_train=torch.full_like(data.x_train, math.nan))

    def report(epoch: EpochReport, extra: dict[str, Any]) -> None:
        timing["train_seconds"] += epoch.seconds
        if injected is not None and injected != "nan":
            raise _injected_failure(injected)
        try:
            tune.report({**epoch.to_dict(), "shape": key, "device": device, "flops": flops,
                         "val_samples": len(data.y_val),
                         "node_id": ray.get_runtime_context().get_node_id(), **timing,
                         "fit_seconds": time.time() - timing["fit_started_at"],
                         **extra})  # fmt: skip
        except BaseException as err:
            raise _ReportInterrupted(err) from err

    try:
        # A shape's seed is its replicate: it draws the permutations and masks (config.seed)
        # and offsets the recipe's seed for weights, batch order and augmentation.
        plan = Recipe.from_dict(recipe)
        plan = plan.replace(seed=plan.seed + cfg.seed)
        timing["fit_started_at"] = time.time()
        grid = Tuning.from_dict(tuning) if tuning else Tuning(lr=(plan.lr,))
        runs = [Training(cfg, plan.replace(lr=lr), data, device=device) for lr in grid.lr]
        winner, everyone = successive_halving(runs, grid.lr, grid)
        tried = [c.to_dict() for c in everyone] if tuning else None  # when the choice was made
        extra: dict[str, Any] = {"lr": winner.lr}
        for epoch in _epochs(winner.run):
            if epoch.epoch == plan.epochs:  # the held-out split, after every choice is made
                test_loss, test_accuracy = winner.run.test()
                extra = {**extra, "test_accuracy": test_accuracy, "test_loss": test_loss,
                         "test_samples": len(data.y_test),
                         "tuning": tried}  # fmt: skip
            report(epoch, extra)
    except _ReportInterrupted as wrapped:
        raise wrapped.original from None
    except Exception as err:  # the trial failed; the search goes on
        if isinstance(err, torch.OutOfMemoryError) and torch.cuda.is_available():
            torch.cuda.empty_cache()  # the actor is reused by the next trial
        reason = " ".join(f"{type(err).__name__}: {err}".split())[:500]
        tune.report(
            {"error": reason, "shape": key, "device": device, "val_accuracy": math.nan,
             "flops": flops}
        )  # fmt: skip


def _epochs(run: Training) -> Iterator[EpochReport]:
    """The epochs the run already trained (while tuning), then the rest as they train."""
    yield from list(run.history)
    while not run.done:
        yield run.epoch()


def injected_failure(key: str) -> str | None:
    """The failure kind the test hook injects into the trial of shape ``key`` (None: none)."""
    rules = os.environ.get(FAIL_HOOK_ENV, "")
    default = os.environ.get(FAIL_HOOK_ENV + "_KIND", "error")
    for rule in rules.split(","):
        pattern, _, kind = rule.strip().partition("=")
        if pattern and pattern in key:
            return kind or default
    return None


def _injected_failure(kind: str) -> Exception:
    """Failures a test hook can inject into a trial (CPU-only CI has no real CUDA OOM)."""
    if kind == "oom":
        return torch.OutOfMemoryError("CUDA out of memory (injected by a test hook)")
    if kind == "error":
        return RuntimeError("failure injected by a test hook")
    return RuntimeError(
        f"unknown failure kind {kind!r} for the test hook (use one of {FAIL_KINDS})"
    )


def make_trainable(
    shapes: dict[str, MixerConfig],
    recipe: Recipe,
    data: Splits | Mapping[int, Splits],
    *,
    cpus_per_trial: float = 1,
    gpus_per_trial: float = 0,
    tuning: Tuning | None = None,
) -> Callable[..., Any]:
    """A Ray Tune trainable over ``shapes`` with resources attached; with ``tuning``, each
    shape's learning rate is chosen on validation (see :func:`train_shape`). ``data`` may map
    each replicate seed (``MixerConfig.seed``) to its own splits.

    Example (plugin use with a user's own Tuner)::

        shapes = space.shapes(parse_budget("50k"), data.input_shape, data.num_classes)
        tuner = tune.Tuner(make_trainable(shapes, Recipe(epochs=5), data),
                           param_space={"shape": tune.choice(list(shapes))},
                           tune_config=tune.TuneConfig(metric="val_accuracy", mode="max"))
    """
    from ray import tune

    device = "cuda" if gpus_per_trial > 0 else "cpu"
    fn = tune.with_parameters(
        train_shape,
        shapes={k: v.to_dict() for k, v in shapes.items()},
        recipe=recipe.to_dict(),
        data=data,
        device=device,
        threads=max(1, int(cpus_per_trial)),
        tuning=None if tuning is None else tuning.to_dict(),
    )
    return tune.with_resources(fn, {"cpu": cpus_per_trial, "gpu": gpus_per_trial})
