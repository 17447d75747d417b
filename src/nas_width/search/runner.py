"""Run a width search: Ray Tune runs the trials, Optuna chooses them and stores the study.

Everything that can be wrong with the input (study file, budget, space, data, storage, a
mismatched or existing study, a study another search is running) is checked before Ray starts
and before any trial is touched.

How a search ends: it returns when the study has its trials. Ctrl-C (SIGINT), or SIGTERM while
trials run, stops it cleanly:
Ray stops the running trials, which end FAIL as interrupted with their parameters queued again
(the rule of :func:`~nas_width.search.storage.recover_interrupted`), and :class:`SearchInterrupted`
is raised, so that ``--resume`` continues where it stopped. A search whose trials keep failing
(``max_failures`` in a row) starts no new trial, lets the running ones end and raises
:class:`TooManyFailures`. A SIGKILL leaves trials RUNNING and the lease stale; ``--resume``
takes the lease over and recovers them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import signal
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from nas_width.budget import Budget, parse_budget
from nas_width.budget.solve import _human
from nas_width.config import MixerConfig
from nas_width.data import Splits, load_dataset
from nas_width.errors import BudgetError, ConfigError
from nas_width.fileio import safe_name
from nas_width.search import storage as stored
from nas_width.search.ray_session import RaySession, cluster_address
from nas_width.search.space import (
    Infeasible,
    SearchSpace,
    SolvedShapes,
    load_space,
    shapes_hash,
    space_size,
)
from nas_width.search.study import StudySpec

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Prepared",
    "RayFailed",
    "SearchInterrupted",
    "SearchOutcome",
    "SearchStopped",
    "TooManyFailures",
    "default_study_name",
    "prepare",
    "run_search",
]

PARETO_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
SHAPE_FIELDS = (
    "S", "C", "m", "mixing", "gamma_token", "gamma_channel", "hidden_token", "hidden_channel",
    "depth", "patch",
)  # fmt: skip


@dataclass
class Prepared:
    """A validated search: its spec, budget, space, data and feasible shapes."""

    spec: StudySpec
    budget: Budget
    space: SearchSpace
    data: Splits
    shapes: dict[str, MixerConfig]
    study_name: str
    solved: SolvedShapes | None = None  # the feasible shapes and the infeasible ones
    #: Per replicate seed, its own splits (a data set with ``folds``: fold = seed mod K);
    #: None: every trial trains on ``data``.
    replicates: dict[int, Splits] | None = None

    @property
    def trial_data(self) -> Splits | dict[int, Splits]:
        """What the trainable receives: the splits, or the splits of each replicate seed."""
        return self.data if self.replicates is None else self.replicates

    @property
    def infeasible(self) -> list[Infeasible]:
        """Candidate shapes that no C holds at the budget, with the reason for each."""
        return [] if self.solved is None else self.solved.infeasible

    @property
    def metrics(self) -> list[str]:
        return ["val_accuracy", "flops"] if self.spec.pareto else ["val_accuracy"]

    def study_attrs(self) -> dict[str, Any]:
        from nas_width._version import __version__

        return {
            "budget": str(self.budget),
            "budget_metric": self.budget.metric,
            "budget_value": self.budget.value,
            "tolerance": self.budget.tolerance,
            "space": self.space.name,
            "space_hash": self.space.hash,
            "space_definition": self.space.definition,
            "dataset": {
                "name": self.spec.dataset.name,
                "path": self.spec.dataset.path,
                "val_fraction": self.spec.dataset.val_fraction,
                "split_seed": self.spec.dataset.split_seed,
                "options": self.spec.dataset.options,
            },
            "recipe": self.spec.recipe.to_dict(),
            "tune": None if self.spec.tune is None else self.spec.tune.to_dict(),
            "sampler": self.spec.sampler,
            "scheduler": self.spec.scheduler,
            "seed": self.spec.seed,
            "pareto": self.spec.pareto,
            "primary_test": dataclasses.asdict(self.spec.analysis),
            "feasible": space_size(self.shapes),
            "shapes_hash": shapes_hash(self.shapes),
            "infeasible": {i.key: i.reason for i in self.infeasible},
            "nas_width_version": __version__,
        }


@dataclass
class SearchOutcome:
    """What a finished (or already complete) search left in its study."""

    study_name: str
    storage: str
    states: dict[str, int]
    best: dict[str, Any] | None
    front: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    recovered: list[int] = field(default_factory=list)
    infeasible: dict[str, str] = field(default_factory=dict)


class SearchStopped(Exception):  # noqa: N818 (a stop, not a bug: callers print the message)
    """The search ended before the study had its trials; ``outcome`` is what the study holds."""

    def __init__(self, message: str, outcome: SearchOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class SearchInterrupted(SearchStopped):
    """Ctrl-C (SIGINT): ``interrupted`` lists the trials failed as interrupted and queued again."""

    def __init__(self, outcome: SearchOutcome, interrupted: list[int], target: int) -> None:
        done = sum(n for s, n in outcome.states.items() if s in ("COMPLETE", "PRUNED"))
        which = (
            f"trial(s) {', '.join(map(str, interrupted))} stopped before they finished: marked "
            "failed (interrupted) and queued again"
            if interrupted
            else "no trial was running"
        )
        super().__init__(
            f"interrupted: {which}; {done} of {target} trial(s) done in {outcome.study_name!r}",
            outcome,
        )
        self.interrupted = interrupted


class RayFailed(SearchStopped):
    """Ray Tune raised instead of returning (a worker killed by Ray's memory monitor while it
    started, a lost cluster): the running trials are failed as interrupted and queued again."""

    def __init__(self, outcome: SearchOutcome, error: Exception, interrupted: list[int]) -> None:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        which = f"; trial(s) {', '.join(map(str, interrupted))} queued again" if interrupted else ""
        super().__init__(f"Ray stopped the search: {reason}{which}", outcome)
        self.interrupted = interrupted


class TooManyFailures(SearchStopped):
    """``max_failures`` trials failed in a row; ``failures`` are (trial number, reason)."""

    def __init__(self, outcome: SearchOutcome, failures: list[tuple[int, str]]) -> None:
        number, reason = failures[-1]
        super().__init__(
            f"stopped: {len(failures)} trials in a row failed (last: trial {number}: {reason})",
            outcome,
        )
        self.failures = failures


def default_study_name(spec: StudySpec, budget: Budget) -> str:
    """``digits-params-50k``: one study per study file and budget."""
    return f"{spec.name}-{budget.metric.replace('_', '-')}-{_human(budget.value)}"


def _pareto_shapes(space: SearchSpace, budget: Budget, data: Splits) -> SolvedShapes:
    """The space at fractions of the budget (a front needs cheaper shapes too)."""
    shapes: dict[str, MixerConfig] = {}
    infeasible: list[Infeasible] = []
    candidates = 0
    for fraction in PARETO_FRACTIONS:
        part = Budget(budget.metric, max(1, round(budget.value * fraction)), budget.tolerance)
        found = space.solve(part, data.input_shape, data.num_classes)
        suffix = f"-f{fraction:g}"
        shapes.update({k + suffix: v for k, v in found.feasible.items()})
        infeasible += [replace(i, key=i.key + suffix) for i in found.infeasible]
        candidates += found.candidates
    if not shapes:
        raise BudgetError(f"budget {budget} is infeasible for every shape of {space.name!r}")
    return SolvedShapes(shapes, infeasible, candidates)


def prepare(spec: StudySpec, budget: str | None = None, study_name: str | None = None) -> Prepared:
    """Validate the search and compute its feasible shapes (no storage touched, no Ray)."""
    text = budget or spec.budget
    if text is None:
        raise BudgetError("no budget: pass --budget (e.g. --budget 50k or --budget flops=20M)")
    spec_budget = parse_budget(text, spec.tolerance)
    space = load_space(spec.space)
    ds = spec.dataset
    data = load_dataset(
        ds.name, path=ds.path, val_fraction=ds.val_fraction, split_seed=ds.split_seed,
        **ds.options,
    )  # fmt: skip
    if spec.pareto:
        solved = _pareto_shapes(space, spec_budget, data)
    else:
        solved = space.solve(spec_budget, data.input_shape, data.num_classes)
        if not solved.feasible:
            space.shapes(spec_budget, data.input_shape, data.num_classes)  # raises, naming it
    name = study_name or default_study_name(spec, spec_budget)
    if spec.trials == "all":
        spec = spec.replace(trials=len(solved.feasible))
    replicates = _replicate_splits(spec, {cfg.seed for cfg in solved.feasible.values()})
    return Prepared(spec, spec_budget, space, data, solved.feasible, name, solved, replicates)


def _replicate_splits(spec: StudySpec, seeds: set[int]) -> dict[int, Splits] | None:
    """With a ``folds`` option (and no fixed ``fold``), each replicate seed s tests on fold
    s mod K and carves its validation with split_seed + s: repeated stratified splits, the same
    for every shape (a paired design), so the verdict rests on more than one small test set."""
    ds = spec.dataset
    if "folds" not in ds.options or "fold" in ds.options:
        return None
    folds = int(ds.options["folds"])
    return {
        s: load_dataset(ds.name, path=ds.path, val_fraction=ds.val_fraction,
                        split_seed=ds.split_seed + s, **ds.options, fold=s % folds)
        for s in sorted(seeds)
    }  # fmt: skip


def _sampler(spec: StudySpec, shapes: dict[str, MixerConfig]) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded, wrapped to skip shapes already tried.

    "grid" is every shape once in a seeded random order: Optuna's GridSampler calls
    ``Study.stop`` when its grid is used up, which fails outside ``Study.optimize`` (Ray drives
    the study through ask and tell).
    """
    import optuna

    from nas_width.search.sampler import UntriedShapes

    seed = spec.seed
    base: optuna.samplers.BaseSampler
    if spec.sampler in ("random", "grid"):
        base = optuna.samplers.RandomSampler(seed=seed)
    elif spec.sampler == "gp":
        base = optuna.samplers.GPSampler(seed=seed)
    elif spec.sampler == "nsga2":
        base = optuna.samplers.NSGAIISampler(seed=seed)
    else:  # tpe: over the shapes' features, not the bare categorical (nas_width.search.shape_tpe)
        from nas_width.search.shape_tpe import ShapeTPE

        base = ShapeTPE(shapes, seed=seed)
    return UntriedShapes(base, seed=seed)


def describe_shapes(prepared: Prepared) -> list[str]:
    """Where the feasible shapes lie against S = C, and each candidate left out with why: no
    shape is dropped silently."""
    lines = [f"shapes: {prepared.solved.ratio_note()}"] if prepared.solved else []
    if prepared.infeasible:
        lines.append(f"left out: {len(prepared.infeasible)} shape(s) no C can hold:")
        lines += [f"  {i.key}: {i.reason}" for i in prepared.infeasible]
    return lines


def open_search_study(prepared: Prepared, resume: bool) -> tuple[optuna.Study, stored.Lease]:
    """Create the study (refusing an existing one) or reopen it for ``resume``; take its lease.

    Raises:
        StorageError: the study exists (without ``resume``), differs from this search, or is
            being run by another search.
    """
    import optuna

    url, name = prepared.spec.storage, prepared.study_name
    stored.check_writable(url)
    if resume:
        study = stored.load_study(url, name)
        stored.check_compatible(study, prepared.study_attrs())
        return study, stored.acquire_lease(study)
    storage = stored.open_storage(url)
    exists = stored.StorageError(
        f"study {name!r} already exists in {url!r}: continue it with --resume, "
        "or choose another --study-name"
    )
    if name in {s.study_name for s in optuna.get_all_study_summaries(storage)}:
        raise exists
    directions: list[Literal["maximize", "minimize"]] = (
        ["maximize", "minimize"] if prepared.spec.pareto else ["maximize"]
    )
    try:
        study = optuna.create_study(study_name=name, storage=storage, directions=directions)
    except optuna.exceptions.DuplicatedStudyError:  # created by another search just now
        raise exists from None
    lease = stored.acquire_lease(study)
    settings = prepared.study_attrs()
    mark = settings.pop(stored.COMPLETE_MARK)
    for key, value in settings.items():
        study.set_user_attr(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(prepared.metrics)
    study.set_user_attr(stored.COMPLETE_MARK, mark)  # last: the study is whole (resume checks)
    return study, lease


def summarize(study: optuna.Study, prepared: Prepared) -> SearchOutcome:
    """States, the best trial (or the Pareto front) as plain data."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = {s.name: sum(t.state == s for t in trials) for s in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]

    def record(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
        used = t.user_attrs.get(prepared.budget.metric)
        return {
            "trial": t.number,
            "shape": t.params.get("shape"),
            **{k: t.user_attrs.get(k) for k in SHAPE_FIELDS},
            "val_accuracy": t.values[0],
            "flops": t.user_attrs.get("flops"),
            "budget_used": used,
            "budget_error": None if used is None else used / prepared.budget.value - 1,
        }

    best = None
    front: list[dict[str, Any]] = []
    if complete and prepared.spec.pareto:
        front = sorted((record(t) for t in study.best_trials), key=lambda r: r["flops"] or 0)
        best = max(front, key=lambda r: r["val_accuracy"])
    elif complete:
        best = record(max(complete, key=lambda t: t.values[0]))
    left_out = {i.key: i.reason for i in prepared.infeasible}
    return SearchOutcome(
        study.study_name, prepared.spec.storage, states, best, front, infeasible=left_out
    )


def check_local_resources(resources: Any) -> None:
    """Refuse per-trial resources this machine cannot give (a private local Ray has its CPUs
    and CUDA devices): Ray would keep such trials pending forever, silently. A cluster's
    resources are the cluster's to judge.

    Raises:
        ConfigError: naming the resource, what was asked and what the machine has.
    """
    import os

    import torch

    cpus = os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if resources.cpus_per_trial > cpus:
        raise ConfigError(
            f"cpus_per_trial {resources.cpus_per_trial:g} is more than this machine's {cpus} "
            "CPUs (join a cluster with --address for more)"
        )
    if resources.gpus_per_trial > gpus:
        raise ConfigError(
            f"gpus_per_trial {resources.gpus_per_trial:g} is more than this machine's {gpus} "
            "CUDA GPUs (join a cluster with --address for more)"
        )


def run_search(
    prepared: Prepared,
    *,
    resume: bool = False,
    address: str | None = None,
    echo: Callable[[str], None] = print,
) -> SearchOutcome:
    """Run the remaining trials of the study with Ray Tune and summarize it.

    Raises:
        StorageError: the study cannot be used (see :func:`open_search_study`).
        SearchInterrupted: Ctrl-C; the study is consistent and ``resume`` continues it.
        TooManyFailures: ``max_failures`` trials failed in a row.
        RayFailed: Ray Tune raised; the study is consistent and ``resume`` continues it.
    """
    import optuna

    from nas_width.search.progress import TrialPrinter

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    spec = prepared.spec
    target = int(spec.trials)
    if not cluster_address(address):
        check_local_resources(spec.resources)
    ray_session = RaySession(address)
    # A cluster that cannot be joined is refused before any study exists; a private local Ray
    # starts on a thread while a new study opens (a resumed one may have nothing left to run).
    if not resume or cluster_address(address):
        ray_session.start()
    try:
        study, lease = open_search_study(prepared, resume)
    except BaseException:
        with _sigint_deferred():
            ray_session.close()
        raise
    failures: list[tuple[int, str]] = []
    interrupted: list[int] | None = None
    try:
        if lease.taken_over is not None:
            echo(f"taking over from the search with {stored.describe_lease(lease.taken_over)}")
        recovered = stored.recover_interrupted(study)
        if recovered:
            echo(f"marked interrupted trials {recovered} as failed; their shapes are queued again")
        remaining = target - stored.finished_count(study)
        if remaining > 0:
            echo(
                f"study {prepared.study_name!r}: {remaining} trial(s) to run over "
                f"{len(prepared.shapes)} feasible shapes at budget {prepared.budget} "
                f"(+/-{prepared.budget.tolerance:.0%}), storage {spec.storage}"
            )
            for line in describe_shapes(prepared):
                echo(line)
            printer = TrialPrinter(echo, target, study, spec.recipe.epochs)
            ray_error: Exception | None = None
            try:
                with _sigterm_as_sigint():
                    failures = _tune(prepared, study, remaining, ray_session, printer)
            except KeyboardInterrupt:  # a second Ctrl-C while Ray was stopping
                interrupted = []
            except Exception as err:  # Ray itself failed (e.g. its memory monitor killed a worker)
                ray_error = err
            finally:
                with _sigint_deferred():
                    stopped = stored.recover_interrupted(study)
            if ray_error is not None:
                raise RayFailed(summarize(study, prepared), ray_error, stopped) from ray_error
            if stopped or (not failures and stored.finished_count(study) < target):
                interrupted = stopped  # Ray returned early: Ctrl-C (or SIGUSR1)
        outcome = summarize(study, prepared)
    finally:
        with _sigint_deferred():
            ray_session.close()
            lease.release()
    outcome.seconds = time.perf_counter() - start
    outcome.recovered = recovered
    if interrupted is not None:
        raise SearchInterrupted(outcome, interrupted, target)
    if failures:
        raise TooManyFailures(outcome, failures)
    return outcome


@contextlib.contextmanager
def _sigterm_as_sigint() -> Iterator[None]:
    """A SIGTERM (``kill``, a batch scheduler's time limit) stops the trials as Ctrl-C does:
    through the SIGINT handler in place (Ray Tune's, while it runs), so that the running trials
    end interrupted, the study is released and the resume command is printed (main thread
    only; elsewhere signals are the caller's)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        current = signal.getsignal(signal.SIGINT)
        if callable(current):
            current(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ignore Ctrl-C while the study is brought to a consistent state (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _tune(
    prepared: Prepared, study: optuna.Study, trials: int, ray_session: RaySession, printer: Any
) -> list[tuple[int, str]]:
    """Run up to ``trials`` trials; returns the failures that stopped it early (or [])."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import ConcurrencyLimiter

    from nas_width.search.internals import study_storage
    from nas_width.search.searcher import WidthSearch
    from nas_width.search.trainable import make_trainable

    spec = prepared.spec
    pareto = spec.pareto
    searcher = WidthSearch(
        prepared.shapes,
        spec.recipe.epochs,
        metric=prepared.metrics if pareto else "val_accuracy",
        mode=["max", "min"] if pareto else "max",
        sampler=_sampler(spec, prepared.shapes),
        storage=study_storage(study),
        study_name=study.study_name,
        max_failures=spec.max_failures,
    )
    scheduler: Any = FIFOScheduler()  # type: ignore[no-untyped-call]
    if spec.scheduler == "asha":
        scheduler = ASHAScheduler(
            time_attr="epoch", max_t=spec.recipe.epochs, grace_period=spec.asha.grace_period,
            reduction_factor=spec.asha.reduction_factor,
        )  # fmt: skip
    ray_session.wait()  # the data goes to Ray's object store
    trainable = make_trainable(
        prepared.shapes, spec.recipe, prepared.trial_data, tuning=spec.tune,
        cpus_per_trial=spec.resources.cpus_per_trial,
        gpus_per_trial=spec.resources.gpus_per_trial,
    )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="nas-width-ray-") as results:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(
                search_alg=ConcurrencyLimiter(searcher, spec.resources.max_concurrent),
                scheduler=scheduler,
                num_samples=trials,
                metric=None if pareto else "val_accuracy",
                mode=None if pareto else "max",
                reuse_actors=True,
            ),
            run_config=tune.RunConfig(
                name=safe_name(prepared.study_name, "study"),  # a ../ name left Ray's folder
                storage_path=results,
                verbose=0,
                callbacks=[printer],
                failure_config=tune.FailureConfig(max_failures=0),
            ),
        )
        tune_logger = logging.getLogger("ray.tune")
        level = tune_logger.level
        tune_logger.setLevel(logging.ERROR)  # Ray's per-run INFO/WARNING lines are not ours
        try:
            tuner.fit()
        finally:
            tune_logger.setLevel(level)
    return list(searcher.failed_in_row) if searcher.gave_up else []
