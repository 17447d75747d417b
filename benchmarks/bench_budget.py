"""Budget work: how long measuring (fvcore) and solving C take, cold and warm.

Issue #2 asks that ``measure`` plus ``solve`` of one config take under 100 ms once warm (both
are cached per frozen config); a search also enumerates every shape of its space once before
any trial. Run: ``python benchmarks/bench_budget.py [--quick]``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from collections.abc import Callable

import torch

from nas_width import MixerConfig, measure, solve
from nas_width.budget import clear_cache, parse_budget
from nas_width.search import load_space


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes for CI")
    args = parser.parse_args()
    repeats = 3 if args.quick else 20
    cpu = platform.processor() or platform.machine()
    print(f"machine: {cpu}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    rows = []
    cifar = MixerConfig(
        input_shape=(3, 32, 32), patch=(4, 4), channels=1, depth=8, gamma_token=0.5,
        gamma_channel=4,
    )  # fmt: skip
    configs = {
        "digits 8x8, S=16": MixerConfig(input_shape=(1, 8, 8), patch=(2, 2), channels=1),
        "CIFAR 32x32, S=64": cifar,
    }
    budgets = {"digits 8x8, S=16": "50k", "CIFAR 32x32, S=64": "flops=200M"}
    for name, base in configs.items():
        budget = parse_budget(budgets[name])
        clear_cache()
        start = time.perf_counter()
        solved = solve(base, budget)
        cold = (time.perf_counter() - start) * 1e3
        warm = _median_ms(lambda b=base, bu=budget: measure(solve(b, bu)), repeats)
        rows.append((f"solve + measure, {name}, budget {budget}, C={solved.channels}", cold, warm))
    enumerations = [("mixer", (1, 8, 8), "digits", "50k")]
    if not args.quick:  # issue #6: 200+ candidates, fvcore counts included, under 2 s cold
        enumerations += [
            ("sweep", (1, 8, 8), "digits", "flops=500k"),
            ("mixer", (3, 32, 32), "CIFAR-10", "flops=20M"),
        ]
    for space_name, shape, data, text in enumerations:
        space, budget = load_space(space_name), parse_budget(text)
        candidates = len(list(space.candidates(shape, 10)))
        clear_cache()
        start = time.perf_counter()
        shapes = space.shapes(budget, shape, 10)
        cold = (time.perf_counter() - start) * 1e3
        warm = _median_ms(lambda s=space, b=budget, x=shape: s.shapes(b, x, 10), repeats)
        label = (
            f"enumerate space {space_name!r} on {data} at {budget}: {candidates} candidates, "
            f"{len(shapes)} feasible"
        )
        rows.append((label, cold, warm))
    print("| work | cold (ms) | warm (ms, median) |")
    print("|---|---:|---:|")
    for label, c, w in rows:
        print(f"| {label} | {c:.1f} | {w:.2f} |")


if __name__ == "__main__":
    main()
