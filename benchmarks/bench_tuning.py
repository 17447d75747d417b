"""What tuning the learning rate per shape costs, against training one recipe.

A study with ``[tune]`` trains each shape at every rate of its grid up to the first rung of
successive halving and only the best on to the last epoch (``nas_width.train.tuning``). With
K = 3 rates and eta = 3 that is 5/3 of one recipe's epochs in theory; what it costs in time also
depends on the per-epoch overheads (building K models, evaluating each on validation).

Two measurements, both in the regime a search trial runs (one thread, the study's recipe):

- ``--storage URL --study NAME ...``: from finished sweeps, each trial's ``fit_seconds`` (the
  whole trial's training, every rate included) over ``train_seconds`` (the winner's epochs
  alone, i.e. what one recipe would have cost): median and range per study;
- without ``--storage``: one shape of the ``mnist1d-sweep`` study (``--shape``, S) trained with
  the tuned grid and with the recipe's single rate, timed end to end, ``--rounds`` times.

Usage::

    python benchmarks/bench_tuning.py                       # one MNIST-1D shape, ~2 minutes
    python benchmarks/bench_tuning.py --quick               # tiny data, 3 epochs (CI)
    python benchmarks/bench_tuning.py --storage sqlite:///sweeps.db --study A B
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from _machine import cpu_model, load_average
from nas_width.budget import parse_budget
from nas_width.data import load_dataset
from nas_width.search.space import load_space
from nas_width.search.study import load_spec
from nas_width.train import Training, Tuning, successive_halving


def from_studies(storage: str, names: list[str]) -> list[dict[str, Any]]:
    """Per study: trials, median and range of fit_seconds / train_seconds."""
    import optuna

    rows = []
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        ratios = [
            t.user_attrs["fit_seconds"] / t.user_attrs["train_seconds"]
            for t in study.get_trials(deepcopy=False)
            if t.state.name == "COMPLETE" and t.user_attrs.get("train_seconds")
        ]
        if ratios:
            rows.append({"study": name, "trials": len(ratios), "median": statistics.median(ratios),
                         "min": min(ratios), "max": max(ratios)})  # fmt: skip
    return rows


def one_shape(tokens: int, rounds: int, quick: bool) -> dict[str, Any]:
    """Wall seconds of one shape trained tuned (the study's grid) and untuned."""
    spec = load_spec("mnist1d-sweep")
    options = {"num_samples": 600, "test_samples": 100} if quick else spec.dataset.options
    data = load_dataset("mnist1d", **options)
    recipe = spec.recipe.replace(epochs=3, warmup_epochs=1) if quick else spec.recipe
    grid = spec.tune or Tuning(lr=(recipe.lr,))
    solved = load_space(spec.space).solve(parse_budget("mixing_flops=200k"), data.input_shape, 10)
    key = next(k for k, c in solved.feasible.items() if k.startswith(f"mixer-S{tokens}-"))
    cfg = solved.feasible[key]

    def run(lrs: tuple[float, ...]) -> float:
        started = time.perf_counter()
        runs = [Training(cfg, recipe.replace(lr=lr), data, device="cpu") for lr in lrs]
        winner, _ = successive_halving(runs, lrs, Tuning(lr=lrs, eta=grid.eta))
        while not winner.run.done:
            winner.run.epoch()
        winner.run.test()
        return time.perf_counter() - started

    run((recipe.lr,))  # warm-up: the first model built and trained in a process is slower
    tuned: list[float] = []
    single: list[float] = []
    for i in range(rounds):  # alternate the order between rounds
        pair = [("t", grid.lr), ("s", (recipe.lr,))]
        for which, lrs in pair if i % 2 == 0 else pair[::-1]:
            (tuned if which == "t" else single).append(run(lrs))
    return {"shape": key, "epochs": recipe.epochs, "rates": list(grid.lr), "eta": grid.eta,
            "rungs": grid.rungs(recipe.epochs), "tuned_s": statistics.median(tuned),
            "single_s": statistics.median(single),
            "ratio": statistics.median(tuned) / statistics.median(single),
            "theory": sum(min(r, recipe.epochs) for r in _epochs(grid, recipe.epochs))
            / recipe.epochs}  # fmt: skip


def _epochs(grid: Tuning, epochs: int) -> list[int]:
    """Epochs each rate trains under successive halving when no rate is tied."""
    alive, trained = len(grid.lr), [0] * len(grid.lr)
    for rung in grid.rungs(epochs):
        for i in range(alive):
            trained[i] = rung
        alive = max(1, -(-alive // grid.eta))
    trained[0] = epochs
    return trained


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--storage")
    parser.add_argument("--study", nargs="*", default=[])
    parser.add_argument("--shape", type=int, default=8, help="S of the MNIST-1D shape")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"machine: {cpu_model()}, torch {torch.__version__}, 1 thread, load {load_average()}")
    result: dict[str, Any]
    if args.storage:
        result = {"studies": from_studies(args.storage, args.study)}
        print(f"{'study':<40}{'trials':>7}{'median':>8}{'min':>7}{'max':>7}")
        for r in result["studies"]:
            print(f"{r['study']:<40}{r['trials']:>7}{r['median']:>8.2f}{r['min']:>7.2f}"
                  f"{r['max']:>7.2f}")  # fmt: skip
    else:
        result = one_shape(args.shape, 1 if args.quick else args.rounds, args.quick)
        print(f"{result['shape']}: {result['epochs']} epochs, rates {result['rates']}, eta "
              f"{result['eta']}, rungs {result['rungs']}")  # fmt: skip
        print(f"tuned {result['tuned_s']:.1f} s, one rate {result['single_s']:.1f} s: "
              f"x{result['ratio']:.2f} (epochs x{result['theory']:.2f})")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
