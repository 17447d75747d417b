"""Search efficiency, replayed on a stored exhaustive grid: trials and epochs to near-best.

How many trials (and how many epochs of training) does each sampler of nas-width need to find a
shape within 0.5 points of the best one? Training is not run again: an exhaustive sweep (every
shape of a space at one budget, each with several model seeds, e.g. ``sampler = "grid"``,
``trials = "all"``) is stored in an Optuna database, and a search is *replayed* on it (a
tabular benchmark, as in NAS-Bench).

Definitions:

* A *shape* is an architecture: the sweep's shape key without its seed suffix
  (``mixer-S8-p2x4-gt2-gc2-d2-s1`` is replicate seed 1 of ``mixer-S8-p2x4-gt2-gc2-d2``). The
  replayed search space is one categorical ``shape`` over all of them.
* *Training* shape X in a replayed trial returns the stored final validation accuracy (and
  per-epoch accuracies) of one of X's replicates; which one is drawn once per shape with the
  replay's seed (``numpy.random.default_rng(seed)``), so seed noise is part of the problem and
  all samplers of one replay seed see the same draws (paired comparison).
* The *true accuracy* of a shape is the mean over its replicates. ``best`` = the highest true
  accuracy of the grid; the *near-best* shapes are those with true accuracy >= best - 0.005.
* *Trials to target*: the first trial count t after which the incumbent, the COMPLETE trial
  with the highest observed accuracy among trials 1..t (the earliest one on ties), is a
  near-best shape. *Epochs to target*: the epochs trained by trials 1..t. A replay has a budget
  of as many trials as there are shapes; one that does not reach the target within it counts as
  beyond the budget (shown as ``>N``) in the median and IQR (25th-75th percentile).
* *First observed within*: the simpler measure, the first trial whose observed accuracy is
  >= best - 0.005 (a lucky replicate of a worse shape counts).

Samplers are built by nas-width's own ``make_sampler`` (``nas_width.search.sampler``): TPE
(``ShapeTPE``, a TPE over the shapes' features, which the stored trials' ``config``
attributes give) or Optuna's RandomSampler, seeded, wrapped in ``UntriedShapes``; "grid"
is ``UntriedShapes`` over RandomSampler, a seeded random order without repeats, so in nas-width
"random" and "grid" are the same sampler and their rows agree. Each replay drives an in-memory
Optuna study sequentially with ask and tell, reporting every epoch's accuracy as an intermediate
value as nas-width's searcher does.

ASHA is simulated as Ray's ASHAScheduler runs it in nas-width (one bracket, ``max_t`` = the
recipe's epochs, grace period and reduction factor from ``nas_width.search.study.Asha``) with
one trial at a time: at each rung (epochs grace * rf^k) a trial's accuracy is compared with the
accuracies recorded at that rung by the trials before it and the trial stops if it is below
their (1 - 1/rf) quantile. A stopped trial costs the epochs it ran and is told PRUNED.

Every stored study that is a complete grid (every shape with the same number of replicates,
none running) gets a table; ``--study NAME`` picks studies. Run: ``python
benchmarks/bench_search_efficiency.py [--quick] [--seeds N] [--db PATH] [--study NAME]
[--json PATH] [--grace N ...]`` (50 seeds by default; ``--grace 3 10``: one ASHA row per
grace period; ``--quick``: 2 seeds, the first grid by study name). The
database is only read: it is copied to a temporary file first.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from nas_width.config import MixerConfig
from nas_width.search.sampler import make_sampler
from nas_width.search.study import Asha, StudySpec

DEFAULT_DB = Path("/work/experiments/sweeps.db")
SAMPLERS = ("tpe", "random", "grid")
TOLERANCE = 0.005  # 0.5 accuracy points
SEED_SUFFIX = re.compile(r"-s\d+$")


@dataclass(frozen=True)
class Replicate:
    """One stored training run of a shape: final accuracy, per-epoch accuracies, epochs run."""

    accuracy: float
    curve: dict[int, float]
    epochs: int


@dataclass
class Grid:
    """An exhaustive sweep: every shape's replicates, read from one stored study."""

    study: str
    dataset: str
    budget: str
    epochs: int
    shapes: dict[str, list[Replicate]]
    #: each shape's config (its trials' ``config`` attribute), for TPE's shape features
    configs: dict[str, MixerConfig] = field(default_factory=dict)

    def mean(self, shape: str) -> float:
        """The true accuracy of ``shape``: the mean over its replicates."""
        return statistics.fmean(r.accuracy for r in self.shapes[shape])

    @property
    def best(self) -> tuple[str, float]:
        """The shape with the highest true accuracy and that accuracy."""
        shape = max(self.shapes, key=self.mean)
        return shape, self.mean(shape)

    @property
    def target(self) -> float:
        """Accuracy within ``TOLERANCE`` of the best true accuracy."""
        return self.best[1] - TOLERANCE - 1e-12  # accuracies are ratios: tolerate rounding

    @property
    def near_best(self) -> set[str]:
        """The shapes whose true accuracy reaches the target."""
        return {s for s in self.shapes if self.mean(s) >= self.target}

    def has_curves(self, milestones: Sequence[int]) -> bool:
        """Whether every replicate stored its accuracy at each ASHA rung (and ran past it)."""
        return all(
            all(m in r.curve for m in milestones if m <= r.epochs)
            for reps in self.shapes.values()
            for r in reps
        )


@dataclass
class Replay:
    """One replayed search: per trial its shape, observed accuracy (None: pruned) and epochs."""

    shapes: list[str] = field(default_factory=list)
    accuracy: list[float | None] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)

    def trials_to_target(self, grid: Grid) -> int | None:
        """The first trial count after which the incumbent is a near-best shape (or None)."""
        near, best_seen, incumbent = grid.near_best, -math.inf, None
        for t, (shape, acc) in enumerate(zip(self.shapes, self.accuracy, strict=True), 1):
            if acc is not None and acc > best_seen:
                best_seen, incumbent = acc, shape
            if incumbent in near:
                return t
        return None

    def first_observed_within(self, grid: Grid) -> int | None:
        """The first trial whose observed accuracy is within the tolerance of the best."""
        target = grid.target
        return next(
            (t for t, a in enumerate(self.accuracy, 1) if a is not None and a >= target), None
        )

    def epochs_until(self, trials: int | None) -> int | None:
        """Epochs trained by the first ``trials`` trials."""
        return None if trials is None else sum(self.epochs[:trials])


def copy_db(path: Path, folder: Path) -> Path:
    """Copy an SQLite database (opened read-only) into ``folder``; return the copy."""
    copy = folder / path.name
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    target = sqlite3.connect(copy)
    try:
        source.backup(target)  # consistent even while a sweep writes to the original
    finally:
        target.close()
        source.close()
    return copy


def load_grid(study: optuna.Study) -> tuple[Grid | None, str]:
    """The study as a :class:`Grid`, or None and why it is not a complete grid."""
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and "shape" in t.params]
    attrs = study.user_attrs
    epochs = int(attrs.get("recipe", {}).get("epochs", 0))
    shapes: dict[str, list[Replicate]] = {}
    configs: dict[str, MixerConfig] = {}
    for t in complete:
        curve = {int(k): float(v) for k, v in t.intermediate_values.items()}
        ran = int(t.user_attrs.get("epochs", max(curve, default=epochs)))
        shape = SEED_SUFFIX.sub("", str(t.params["shape"]))
        shapes.setdefault(shape, []).append(Replicate(float(t.values[0]), curve, ran))
        if "config" in t.user_attrs:
            configs[shape] = MixerConfig.from_dict(t.user_attrs["config"]).replace(seed=0)
    keys = len({t.params["shape"] for t in complete})
    feasible = attrs.get("feasible", {}).get("shapes", keys)
    counts = {len(r) for r in shapes.values()}
    running = sum(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials)
    if not shapes or keys < feasible or running or len(counts) > 1:
        why = f"{keys} of {feasible} grid points complete, {running} running"
        return None, why
    epochs = epochs or max(r.epochs for reps in shapes.values() for r in reps)
    dataset = str(attrs.get("dataset", {}).get("name", "?"))
    budget = str(attrs.get("budget", "?"))
    grid = Grid(study.study_name, dataset, budget, epochs, dict(sorted(shapes.items())), configs)
    return grid, ""


def asha_milestones(max_t: int, asha: Asha) -> list[int]:
    """Ray's ASHA rungs in epochs, ascending: grace * rf^k for as many k as Ray makes."""
    rungs = int(math.log(max_t / asha.grace_period) / math.log(asha.reduction_factor) + 1)
    return [asha.grace_period * asha.reduction_factor**k for k in range(max(rungs, 0))]


class Rungs:
    """Successive halving, one trial at a time: the accuracies recorded at each rung."""

    def __init__(self, milestones: Sequence[int], reduction_factor: int) -> None:
        self.recorded: dict[int, list[float]] = {m: [] for m in milestones}
        self.quantile = (1 - 1 / reduction_factor) * 100

    def epochs_run(self, replicate: Replicate) -> int:
        """Epochs the replicate trains before a rung stops it (all of them if none does)."""
        for milestone, recorded in self.recorded.items():
            if milestone > replicate.epochs:
                break
            value = replicate.curve[milestone]
            cutoff = float(np.percentile(recorded, self.quantile)) if recorded else None
            recorded.append(value)
            if cutoff is not None and value < cutoff:
                return milestone
        return replicate.epochs


def replay(grid: Grid, sampler: str, asha: Asha | None, seed: int) -> Replay:
    """Replay one search of ``len(grid.shapes)`` trials on ``grid``."""
    rng = np.random.default_rng(seed)
    draw = {s: int(rng.integers(len(reps))) for s, reps in grid.shapes.items()}
    space: dict[str, optuna.distributions.BaseDistribution] = {
        "shape": optuna.distributions.CategoricalDistribution(list(grid.shapes))
    }
    study = optuna.create_study(
        direction="maximize",
        sampler=make_sampler(StudySpec("replay", sampler=sampler, seed=seed), grid.configs),
    )
    rungs = None
    if asha is not None:
        rungs = Rungs(asha_milestones(grid.epochs, asha), asha.reduction_factor)
    out = Replay()
    for _ in grid.shapes:
        trial = study.ask(space)
        shape = str(trial.params["shape"])
        replicate = grid.shapes[shape][draw[shape]]
        ran = replicate.epochs if rungs is None else rungs.epochs_run(replicate)
        for epoch in range(1, ran + 1):
            if epoch in replicate.curve:
                trial.report(replicate.curve[epoch], epoch)
        pruned = ran < replicate.epochs
        if pruned:
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, replicate.accuracy)
        out.shapes.append(shape)
        out.accuracy.append(None if pruned else replicate.accuracy)
        out.epochs.append(ran)
    return out


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile, interpolated linearly; inf (beyond the budget) wherever it is touched."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    if math.isinf(ordered[low]) or math.isinf(ordered[high]):
        return math.inf
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[int | None], budget: int | None) -> dict[str, Any]:
    """Median, IQR and how many reached, counting None as beyond the budget."""
    finite = [math.inf if v is None else float(v) for v in values]
    stats = {k: quantile(finite, q) for k, q in (("median", 0.5), ("q25", 0.25), ("q75", 0.75))}
    return {
        **{k: None if math.isinf(v) else v for k, v in stats.items()},
        "budget": budget,
        "reached": sum(v is not None for v in values),
        "seeds": len(values),
        "values": list(values),
    }


def _number(value: float | None, budget: int | None) -> str:
    if value is None:  # beyond the budget
        return f">{budget}" if budget is not None else "n.r."
    return f"{value:,.0f}" if value >= 1000 else f"{value:g}"


def _cell(stats: dict[str, Any]) -> str:
    """``median [q25, q75]``."""
    low, median, high = (_number(stats[k], stats["budget"]) for k in ("q25", "median", "q75"))
    return f"{median} [{low}, {high}]"


@dataclass
class Row:
    """One sampler, with or without ASHA, over all replay seeds."""

    sampler: str
    asha: bool
    grace_period: int | None  # ASHA's, when ``asha``
    trials: dict[str, Any]
    epochs: dict[str, Any]
    observed: dict[str, Any]
    epochs_all: float
    seconds: float


def evaluate(grid: Grid, sampler: str, asha: Asha | None, seeds: int) -> Row:
    """Replay ``sampler`` for each seed and summarize trials and epochs to the target."""
    start = time.perf_counter()
    trials, epochs, observed, totals = [], [], [], []
    for seed in range(seeds):
        run = replay(grid, sampler, asha, seed)
        reached = run.trials_to_target(grid)
        trials.append(reached)
        epochs.append(run.epochs_until(reached))
        observed.append(run.first_observed_within(grid))
        totals.append(sum(run.epochs))
    n = len(grid.shapes)
    return Row(
        sampler, asha is not None, asha.grace_period if asha else None,
        summary(trials, n), summary(epochs, None),
        summary(observed, n), statistics.median(totals), time.perf_counter() - start,
    )  # fmt: skip


def print_grid(grid: Grid, rows: list[Row], ashas: list[Asha], note: str) -> None:
    """The grid's description and its markdown table."""
    best_shape, best = grid.best
    reps = len(next(iter(grid.shapes.values())))
    n = len(grid.shapes)
    print(f"\n### {grid.dataset}, budget {grid.budget} (study `{grid.study}`)\n")
    print(
        f"{n} shapes x {reps} seeds, {grid.epochs} epochs each. Best shape `{best_shape}`: "
        f"mean accuracy {best:.4f} over its {reps} seeds; target >= {best - TOLERANCE:.4f}, "
        f"met by {len(grid.near_best)} shape(s). Budget: {n} trials (one per shape). ASHA: "
        f"reduction factor {ashas[0].reduction_factor}; rungs at epochs "
        + "; ".join(
            f"{', '.join(map(str, asha_milestones(grid.epochs, a)))} (grace {a.grace_period})"
            for a in ashas
        )
        + "."
    )
    if note:
        print(f"\n{note}")
    print(
        "\n| sampler | ASHA | trials to target, median [IQR] | epochs to target, median [IQR] "
        "| reached | first observed within 0.005: trials, median [IQR] | reached "
        f"| epochs for all {n} trials (median) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.sampler} | {f'grace {r.grace_period}' if r.asha else 'no'} | {_cell(r.trials)} "
            f"| {_cell(r.epochs)} | {r.trials['reached']}/{r.trials['seeds']} "
            f"| {_cell(r.observed)} | {r.observed['reached']}/{r.observed['seeds']} "
            f"| {r.epochs_all:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 seeds, one data set (CI)")
    parser.add_argument("--seeds", type=int, default=50, help="replay seeds (default 50)")
    parser.add_argument(
        "--db", type=Path, default=DEFAULT_DB, help=f"SQLite sweeps database (default {DEFAULT_DB})"
    )
    parser.add_argument("--study", action="append", help="only this study (repeatable)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "--grace",
        type=int,
        nargs="+",
        default=[Asha().grace_period],
        help=f"ASHA grace periods to replay, in epochs (default {Asha().grace_period})",
    )
    args = parser.parse_args()
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    if min(args.grace) < 1:
        parser.error(f"--grace must be >= 1, got {min(args.grace)}")
    seeds = 2 if args.quick else args.seeds
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    cpu = platform.processor() or platform.machine()
    print(
        f"machine: {cpu}, Python {platform.python_version()}, optuna {optuna.__version__}, "
        f"numpy {np.__version__}; pure-Python replay, no training"
    )
    if not args.db.is_file():
        parser.error(f"no database at {str(args.db)!r}")
    with tempfile.TemporaryDirectory(prefix="bench-search-") as folder:
        storage = f"sqlite:///{copy_db(args.db, Path(folder))}"
        names = sorted(s.study_name for s in optuna.get_all_study_summaries(storage))
        missing = sorted(set(args.study or []) - set(names))
        if missing:
            parser.error(f"no study {missing[0]!r} in {args.db}")
        grids: list[Grid] = []
        for name in names:
            if args.study and name not in args.study:
                continue
            grid, why = load_grid(optuna.load_study(study_name=name, storage=storage))
            if grid is None:
                print(f"skipped study {name!r}: not a complete grid ({why})")
            else:
                grids.append(grid)
    if not grids:
        print(f"error: no complete grid in {args.db}", file=sys.stderr)
        raise SystemExit(1)
    if args.quick:
        grids = grids[:1]
    print(
        f"replay seeds: {seeds}; target: within {TOLERANCE} of the best shape's mean accuracy; "
        "'random' and 'grid' are the same sampler in nas-width (UntriedShapes over "
        "RandomSampler), so their rows agree; '>N' and 'n.r.': not reached within the budget "
        "of N trials by that quantile's seed"
    )
    results = []
    for grid in grids:
        ashas = [Asha(grace_period=g) for g in args.grace if g < grid.epochs]
        milestones = sorted({m for a in ashas for m in asha_milestones(grid.epochs, a)})
        curves = bool(ashas) and grid.has_curves(milestones)
        note = "" if curves else "No per-epoch accuracies stored: ASHA rows skipped."
        rows = [
            evaluate(grid, sampler, with_asha, seeds)
            for sampler in SAMPLERS
            for with_asha in ([None, *ashas] if curves else [None])
        ]
        print_grid(grid, rows, ashas or [Asha()], note)
        rungs_by_grace = {a.grace_period: asha_milestones(grid.epochs, a) for a in ashas}
        best_shape, best = grid.best
        results.append(
            {
                "study": grid.study, "dataset": grid.dataset, "budget": grid.budget,
                "shapes": len(grid.shapes), "epochs": grid.epochs,
                "replicates": {s: len(r) for s, r in grid.shapes.items()},
                "best_shape": best_shape, "best_mean": best, "target": best - TOLERANCE,
                "near_best": sorted(grid.near_best),
                "asha_rungs": rungs_by_grace if curves else None,
                "rows": [asdict(r) for r in rows],
            }
        )  # fmt: skip
    if args.json:
        settings = {
            "seeds": seeds, "tolerance": TOLERANCE, "samplers": list(SAMPLERS),
            "asha": [asdict(Asha(grace_period=g)) for g in args.grace], "db": str(args.db),
        }  # fmt: skip
        args.json.write_text(json.dumps({"settings": settings, "grids": results}, indent=2))


if __name__ == "__main__":
    main()
