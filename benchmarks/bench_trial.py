"""Trial training speed: nas-width's ``fit`` against a typical DataLoader loop, same model.

What is measured: epochs per second of one trial's training on three workloads, through
:func:`nas_width.train.fit` (what the search's trainable calls: the data as tensors, a batch an
index gather of them, no DataLoader) and through a typical hand-written loop over
``torch.utils.data.DataLoader(TensorDataset(x, y), batch_size, shuffle=True)`` (no worker
processes: the tensors are in memory). Both train ``build_model`` of the same
:class:`~nas_width.MixerConfig` from the same seed, with the same optimizer and schedule
(nas-width's ``make_optimizer``: AdamW with decay on weight matrices only, per-step linear
warm-up then cosine), the same label-smoothed cross-entropy and batch size, for the same
epochs, on the CPU with ``torch.set_num_threads(--threads)`` (default 1, a search trial's
share). Each epoch validates once: ``fit`` with its ``evaluate``, the loop over a DataLoader of
the validation split (batch 1024, as ``evaluate``).

Workloads: scikit-learn's digits (1 x 8 x 8), MNIST-1D (1 x 40, generated offline) and a
CIFAR-shaped synthetic set (3 x 32 x 32, 10 classes, a few thousand samples), each with the
recipe of its shipped study (``digits``, ``mnist1d``, ``cifar10``; augmentation off for both
loops, the epochs and warm-up set here) and a Mixer whose C is solved for a parameter budget.

Timing: ``--rounds`` rounds, each training both loops for ``--epochs`` epochs, the order
alternating between rounds. The first epoch of every run is warm-up and is left out; the table
gives the median over the remaining epochs of epochs/s of the training pass alone (validation
excluded) and of the whole epoch (validation included), and their ratio nas-width / DataLoader.
"CPU share" is the process's CPU time over wall time x threads during a run (about 1.0 when no
other load took the cores).

Usage::

    python benchmarks/bench_trial.py                 # full sizes, a few minutes
    python benchmarks/bench_trial.py --quick         # tiny sizes, 2 epochs (CI)
    python benchmarks/bench_trial.py --json results.json --threads 2
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from _machine import cpu_model, load_average, matmul_gflops
from nas_width import MixerConfig, build_model, measure, solve
from nas_width.budget import parse_budget
from nas_width.data import Splits, load_dataset
from nas_width.search.study import load_spec
from nas_width.train import EpochReport, Recipe, fit, make_optimizer

LOOPS = ("nas-width fit", "DataLoader loop")
EVAL_BATCH = 1024  # nas_width.train.evaluate's default


@dataclass(frozen=True)
class Workload:
    """A data set, a Mixer solved for a parameter budget and the recipe of a shipped study."""

    name: str
    dataset: str
    options: dict[str, Any]
    base: MixerConfig  # C is solved for ``budget``
    budget: str
    study: str  # whose recipe is used


@dataclass
class Row:
    """One loop on one workload: per-epoch seconds of every run and their medians."""

    workload: str
    loop: str
    train_seconds: list[float] = field(default_factory=list)  # steady epochs, training pass
    epoch_seconds: list[float] = field(default_factory=list)  # steady epochs, with validation
    final_train_loss: list[float] = field(default_factory=list)  # per run, a sanity check
    cpu_shares: list[float] = field(default_factory=list)  # per run
    epochs_per_s: float = 0.0  # median over steady epochs, training pass only
    epochs_per_s_min: float = 0.0
    epochs_per_s_max: float = 0.0
    epochs_per_s_with_val: float = 0.0
    vs_dataloader: float = 1.0  # epochs_per_s / the DataLoader loop's
    vs_dataloader_with_val: float = 1.0
    train_gflops: float = 0.0  # fvcore FLOPs of the training pass (2 x 3 x fwd) per second


@dataclass
class RunTimes:
    """Seconds of every epoch of one run (the warm-up epoch included)."""

    train: list[float] = field(default_factory=list)
    epoch: list[float] = field(default_factory=list)
    final_train_loss: float = float("nan")
    cpu_share: float = float("nan")


def workloads(quick: bool) -> list[Workload]:
    """digits, MNIST-1D and CIFAR-shaped synthetic data (tiny sizes with ``quick``)."""
    cifar = {"n": 300 if quick else 5000, "input_shape": (3, 32, 32), "num_classes": 10}
    return [
        Workload(
            "digits", "digits", {},
            MixerConfig(input_shape=(1, 8, 8), patch=(2, 2), channels=1), "50k", "digits",
        ),
        Workload(
            "MNIST-1D", "mnist1d", {"num_samples": 500 if quick else 5000},
            MixerConfig(input_shape=(1, 40), patch=(4,), channels=1), "50k", "mnist1d",
        ),
        Workload(
            "CIFAR-shaped", "synthetic", cifar,
            MixerConfig(input_shape=(3, 32, 32), patch=(4, 4), channels=1, depth=2 if quick else 4),
            "50k" if quick else "200k", "cifar10",
        ),
    ]  # fmt: skip


def recipe_for(study: str, epochs: int) -> Recipe:
    """The study's recipe for ``epochs`` epochs, without augmentation (the loop has none)."""
    recipe = load_spec(study).recipe
    return recipe.replace(
        epochs=epochs, warmup_epochs=min(recipe.warmup_epochs, epochs), augment="none"
    )


# --- the two loops ---------------------------------------------------------------------------


def timed(run: Callable[[], RunTimes], threads: int) -> RunTimes:
    """``run()`` with the share of its threads' CPU time that the process got."""
    cpu, wall = time.process_time(), time.perf_counter()
    times = run()
    times.cpu_share = (time.process_time() - cpu) / ((time.perf_counter() - wall) * threads)
    return times


def run_fit(cfg: MixerConfig, recipe: Recipe, data: Splits) -> RunTimes:
    """nas-width's ``fit``: the training pass from its images/s, the epoch from its seconds."""
    times = RunTimes()
    n = data.x_train.shape[0]

    def report(epoch: EpochReport) -> None:
        times.train.append(n / epoch.images_per_sec)
        times.epoch.append(epoch.seconds)
        times.final_train_loss = epoch.train_loss

    fit(cfg, recipe, data, device="cpu", report=report)
    return times


def run_dataloader(cfg: MixerConfig, recipe: Recipe, data: Splits) -> RunTimes:
    """A typical hand-written loop: shuffled DataLoader batches, a validation pass per epoch."""
    torch.manual_seed(recipe.seed)
    model = build_model(cfg)
    loader = DataLoader(
        TensorDataset(data.x_train, data.y_train),
        batch_size=recipe.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(recipe.seed),
    )
    val_loader = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=EVAL_BATCH)
    steps = len(loader)
    total = recipe.epochs * steps
    optimizer, schedule = make_optimizer(
        model,
        lr=recipe.lr,
        weight_decay=recipe.weight_decay,
        total_steps=total,
        warmup_steps=min(total, round(recipe.warmup_epochs * steps)),
    )
    times = RunTimes()
    n = len(loader.dataset)  # type: ignore[arg-type]
    for _ in range(recipe.epochs):
        started = time.perf_counter()
        model.train()
        loss_sum = 0.0
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb, label_smoothing=recipe.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            optimizer.step()
            schedule.step()
            loss_sum += loss.item() * len(yb)
        times.train.append(time.perf_counter() - started)
        model.eval()
        val_loss, correct = 0.0, 0
        with torch.no_grad():
            for xb, yb in val_loader:
                logits = model(xb)
                val_loss += F.cross_entropy(logits, yb, reduction="sum").item()
                correct += int((logits.argmax(dim=1) == yb).sum())
        times.epoch.append(time.perf_counter() - started)
        times.final_train_loss = loss_sum / n
    return times


# --- report ----------------------------------------------------------------------------------


def summarize(rows: dict[str, Row], flops_per_epoch: float) -> None:
    """Medians over the steady epochs, the ratios to the DataLoader loop and the achieved
    GFLOP/s of the training pass (in place)."""
    for row in rows.values():
        rates = [1 / s for s in row.train_seconds]
        row.epochs_per_s = statistics.median(rates)
        row.epochs_per_s_min, row.epochs_per_s_max = min(rates), max(rates)
        row.epochs_per_s_with_val = statistics.median(1 / s for s in row.epoch_seconds)
        row.train_gflops = flops_per_epoch * row.epochs_per_s / 1e9
    peer = rows[LOOPS[1]]
    for row in rows.values():
        row.vs_dataloader = row.epochs_per_s / peer.epochs_per_s
        row.vs_dataloader_with_val = row.epochs_per_s_with_val / peer.epochs_per_s_with_val


def markdown(rows: list[Row], info: dict[str, dict[str, Any]], peak: float) -> str:
    head = (
        "| workload | input | S x C, depth | params | train / val | batch | loop "
        "| epochs/s, training (median) | min-max | vs DataLoader | epochs/s, with validation "
        "| vs DataLoader | training GFLOP/s | % of matmul rate | final train loss | CPU share |"
    )
    lines = [head, "|" + "---|" * 16]
    for r in rows:
        w = info[r.workload]
        loss = statistics.median(r.final_train_loss)
        lines.append(
            f"| {r.workload} | {w['input']} | {w['S']} x {w['C']}, {w['depth']} "
            f"| {w['params']:,} | {w['n_train']:,} / {w['n_val']:,} | {w['batch']} | {r.loop} "
            f"| {r.epochs_per_s:.2f} | {r.epochs_per_s_min:.2f}-{r.epochs_per_s_max:.2f} "
            f"| {r.vs_dataloader:.2f}x | {r.epochs_per_s_with_val:.2f} "
            f"| {r.vs_dataloader_with_val:.2f}x | {r.train_gflops:.1f} "
            f"| {r.train_gflops / peak:.0%} | {loss:.3f} "
            f"| {statistics.median(r.cpu_shares):.2f} |"
        )
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 epochs (CI smoke run)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--epochs", type=int, default=6, help="epochs per run, 1st is warm-up (6)")
    p.add_argument("--rounds", type=int, default=2, help="runs of each loop (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.rounds = 2, 1
    if args.epochs < 2:
        p.error("--epochs must be at least 2: the first epoch is warm-up")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    started, load_before = time.perf_counter(), load_average()
    machine = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": threads,
        "python": platform.python_version(),
    }
    print(
        f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, "
        f"torch {machine['torch']}, torch.set_num_threads({args.threads}) -> "
        f"torch.get_num_threads() = {threads}, Python {machine['python']}"
    )
    print(f"Load average before: {load_before}")
    print(
        f"Setup: CPU, fp32, {args.rounds} round(s) of {args.epochs} epochs per loop (order "
        "alternating), first epoch of each run left out; augmentation off.\n"
    )

    rows: list[Row] = []
    info: dict[str, dict[str, Any]] = {}
    loops = {LOOPS[0]: run_fit, LOOPS[1]: run_dataloader}
    for w in workloads(args.quick):
        data = load_dataset(w.dataset, **w.options)
        cfg = solve(w.base, parse_budget(w.budget))
        recipe = recipe_for(w.study, args.epochs)
        counts = measure(cfg)
        info[w.name] = {
            "input": " x ".join(map(str, cfg.input_shape)),
            "S": cfg.tokens,
            "C": cfg.channels,
            "depth": cfg.depth,
            "params": counts.params,
            "flops": counts.flops,
            "n_train": int(data.x_train.shape[0]),
            "n_val": int(data.x_val.shape[0]),
            "batch": recipe.batch_size,
            "budget": w.budget,
            "config": cfg.to_dict(),
            "recipe": recipe.to_dict(),
        }
        group = {loop: Row(w.name, loop) for loop in LOOPS}
        for round_ in range(args.rounds):
            order = LOOPS if round_ % 2 == 0 else LOOPS[::-1]
            for loop in order:
                times = timed(functools.partial(loops[loop], cfg, recipe, data), threads)
                row = group[loop]
                row.train_seconds += times.train[1:]
                row.epoch_seconds += times.epoch[1:]
                row.final_train_loss.append(times.final_train_loss)
                row.cpu_shares.append(times.cpu_share)
        # fvcore counts a multiply-add as one flop: a training step is about 3 forward passes.
        summarize(group, 2 * 3 * counts.flops * info[w.name]["n_train"])
        rows += group.values()

    rates = matmul_gflops(seconds=0.3 if args.quick else 2.0)
    peak = max(rates.values())
    print(markdown(rows, info, peak))
    print(
        "\nepochs/s: median over the epochs after the first of every run; 'training' is the "
        "training pass alone, 'with validation' the whole epoch. vs DataLoader: this loop's "
        "median / the DataLoader loop's. Final train loss: median over runs (both loops should "
        "learn alike; batch orders differ). Training GFLOP/s: 2 x 3 x fvcore's forward count "
        "per sample x training samples x epochs/s (a backward pass is about two forwards); "
        f"% of matmul rate: against the best fp32 2048^3 matmul at {threads} thread(s) "
        f"in this run, {', '.join(f'{k} {v:.0f}' for k, v in rates.items())} GFLOP/s."
    )
    elapsed = time.perf_counter() - started
    load_after = load_average()
    print(f"\nLoad average after: {load_after}; wall time {elapsed:.0f} s")

    if args.json:
        payload: dict[str, Any] = {
            "machine": machine,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "load_average": {"before": load_before, "after": load_after},
            "workloads": info,
            "rows": [asdict(r) for r in rows],
            "matmul_gflops": rates,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
