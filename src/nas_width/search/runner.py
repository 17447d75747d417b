"""Run a width search: Ray Tune runs the trials, Optuna chooses them and stores the study.

This module is the orchestration only: what a search is given was checked by
:mod:`~nas_width.search.prepare` and the study opened by :mod:`~nas_width.search.opening`
before Ray starts or any trial is touched; the outcome is :mod:`~nas_width.search.summary`'s
and the ways a search stops are :mod:`~nas_width.search.errors`'s (re-exported here).

How a search ends: it returns when the study has its trials. Ctrl-C (SIGINT), or SIGTERM while
trials run, stops it cleanly: Ray stops the running trials, which end FAIL as interrupted with
their parameters queued again (the rule of
:func:`~nas_width.search.recovery.recover_interrupted`), and :class:`SearchInterrupted` is
raised, so that ``--resume`` continues where it stopped. A search whose trials keep failing
(``max_failures`` in a row) starts no new trial, lets the running ones end and raises
:class:`TooManyFailures`. A SIGKILL leaves trials RUNNING and the lease stale; ``--resume``
takes the lease over and recovers them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from nas_width.fileio import safe_name
from nas_width.search.errors import (
    RayFailed,
    SearchInterrupted,
    SearchStopped,
    Terminated,
    TooManyFailures,
)
from nas_width.search.hooks import pause_at, wake
from nas_width.search.lease import describe_lease
from nas_width.search.opening import open_search_study
from nas_width.search.prepare import (
    Prepared,
    check_local_resources,
    default_study_name,
    describe_shapes,
    prepare,
)
from nas_width.search.ray_session import RaySession, check_cluster_resources, cluster_address
from nas_width.search.recovery import finished_count, recover_interrupted
from nas_width.search.summary import SearchOutcome, summarize

if TYPE_CHECKING:
    import optuna

    from nas_width.search.progress import SearchState

__all__ = [
    "Prepared",
    "RayFailed",
    "SearchInterrupted",
    "SearchOutcome",
    "SearchStopped",
    "Terminated",
    "TooManyFailures",
    "default_study_name",
    "prepare",
    "run_search",
]


def run_search(
    prepared: Prepared,
    *,
    resume: bool = False,
    address: str | None = None,
    echo: Callable[[str], None] = print,
    watch: Callable[[SearchState], None] | None = None,
) -> SearchOutcome:
    """Run the remaining trials of the study with Ray Tune and summarize it. ``echo`` prints
    each line of progress; ``watch`` is given the counts whenever they change (a live bar).

    Raises:
        StorageError: the study cannot be used (see :func:`open_search_study`).
        SearchInterrupted: Ctrl-C or SIGTERM while trials ran; the study is consistent and
            ``resume`` continues it.
        KeyboardInterrupt: Ctrl-C before any trial (:class:`Terminated` for SIGTERM); no study
            is left half-made.
        TooManyFailures: ``max_failures`` trials failed in a row.
        RayFailed: Ray Tune raised; the study is consistent and ``resume`` continues it.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    start = time.perf_counter()
    spec = prepared.spec
    target = int(spec.trials)
    cluster = cluster_address(address)
    if not cluster:
        check_local_resources(spec.resources)
    ray_session = RaySession(address)
    with _sigterm_as_sigint() as stop:
        # A cluster that cannot be joined is refused before any study exists; a private local
        # Ray starts on a thread while a new study opens (a resumed one may have nothing left).
        try:
            if not resume or cluster:
                ray_session.start()
                pause_at("ray")
            if cluster:  # joined already: ask it what it has
                resources = spec.resources
                check_cluster_resources(resources.cpus_per_trial, resources.gpus_per_trial)
            with stop.holding():
                study, lease = open_search_study(prepared, resume)
        except BaseException as err:
            with _sigint_deferred():
                ray_session.close()
            if isinstance(err, KeyboardInterrupt):
                err.study_opened = False  # type: ignore[attr-defined]  # run it again, not --resume
            raise
        failures: list[tuple[int, str]] = []
        interrupted: list[int] | None = None
        try:
            stop.deliver()
            if lease.taken_over is not None:
                echo(f"taking over from the search with {describe_lease(lease.taken_over)}")
            recovered = recover_interrupted(study)
            if recovered:
                echo(
                    f"marked interrupted trials {recovered} as failed; their shapes are queued "
                    "again"
                )
            remaining = target - finished_count(study)
            if remaining > 0:
                interrupted, failures = _run_trials(
                    prepared, study, remaining, ray_session, echo, target, watch
                )
            pause_at("summary")
            outcome = summarize(study, prepared)
        finally:
            with _sigint_deferred():
                ray_session.close()
                lease.release()
    outcome.seconds = time.perf_counter() - start
    outcome.recovered = recovered
    if interrupted is not None:
        signum = signal.SIGTERM if stop.terminated else signal.SIGINT
        raise SearchInterrupted(outcome, interrupted, target, signum)
    if failures:
        raise TooManyFailures(outcome, failures)
    return outcome


def _run_trials(
    prepared: Prepared,
    study: optuna.Study,
    remaining: int,
    ray_session: RaySession,
    echo: Callable[[str], None],
    target: int,
    watch: Callable[[SearchState], None] | None = None,
) -> tuple[list[int] | None, list[tuple[int, str]]]:
    """Run ``remaining`` trials; returns (the trials a stop interrupted, or None if none
    stopped it; the failures in a row that stopped it, or [])."""
    from nas_width.search.progress import TrialPrinter

    spec = prepared.spec
    echo(
        f"study {prepared.study_name!r}: {remaining} trial(s) to run over "
        f"{len(prepared.shapes)} feasible shapes at budget {prepared.budget} "
        f"(+/-{prepared.budget.tolerance:.0%}), storage {spec.storage}"
    )
    for line in describe_shapes(prepared):
        echo(line)
    printer = TrialPrinter(echo, target, study, spec.recipe.epochs, watch)
    failures: list[tuple[int, str]] = []
    ray_error: Exception | None = None
    again = False
    main = threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGINT) if main else None
    try:
        failures = _tune(prepared, study, remaining, ray_session, printer)
    except KeyboardInterrupt:  # a second Ctrl-C while Ray was stopping
        again = True
    except Exception as err:  # Ray itself failed (e.g. its memory monitor killed a worker)
        ray_error = err
    finally:
        if before is not None:  # Ray Tune leaves its own Ctrl-C handler in place
            signal.signal(signal.SIGINT, before)
        with _sigint_deferred():
            stopped = recover_interrupted(study)
    if ray_error is not None:
        raise RayFailed(summarize(study, prepared), ray_error, stopped) from ray_error
    if again or stopped or (not failures and finished_count(study) < target):
        return stopped, failures  # Ray returned early: Ctrl-C, SIGTERM (or SIGUSR1)
    return None, failures


class _Stop:
    """What stopped a search: ``terminated`` once a SIGTERM came; ``held`` once a signal came
    while the study was being created (delivered once it is whole)."""

    def __init__(self) -> None:
        self.terminated = False
        self.held = False

    def deliver(self) -> None:
        """Raise the stop that was held back, if one came."""
        if self.held:
            self.held = False
            raise Terminated if self.terminated else KeyboardInterrupt

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold Ctrl-C and SIGTERM back while a study and its settings come into being: a
        signal there would leave a half-made study (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def hold(signum: int, frame: Any) -> None:
            self.held = True
            wake()  # a test's pause ends too

        previous = signal.signal(signal.SIGINT, hold)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _sigterm_as_sigint() -> Iterator[_Stop]:
    """A SIGTERM (``kill``, a batch scheduler's time limit) stops the search as Ctrl-C does,
    through the SIGINT handler in place: Python's (:class:`Terminated`, a KeyboardInterrupt)
    before the trials, Ray Tune's while they run (the running trials end interrupted), none
    while the study is made consistent; then the study is released and the resume command is
    printed (main thread only; elsewhere signals are the caller's).

    A search started with Ctrl-C ignored (a background job of a script: the shell ignores
    SIGINT there) still stops on SIGTERM: an ignored or default SIGINT raises
    :class:`Terminated` as Python's own handler would.
    """
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        stop.terminated = True
        current = signal.getsignal(signal.SIGINT)
        if callable(current) and current is not signal.default_int_handler:
            current(signal.SIGINT, frame)  # Ray Tune's, the hold, or the deferral
        else:
            raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


def _ignore(signum: int, frame: Any) -> None:
    """The deferral's SIGINT handler: nothing happens."""


@contextlib.contextmanager
def _sigint_deferred() -> Iterator[None]:
    """Ignore Ctrl-C, and SIGTERM with it, while the study is brought to a consistent state
    (main thread only). A handler that does nothing, not SIG_IGN: SIG_IGN is how a search
    started with Ctrl-C ignored sees SIGINT, and SIGTERM must still stop that one."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _ignore)
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
    from nas_width.search.sampler import make_sampler
    from nas_width.search.searcher import WidthSearch
    from nas_width.search.trainable import make_trainable

    spec = prepared.spec
    pareto = spec.pareto
    searcher = WidthSearch(
        prepared.shapes,
        spec.recipe.epochs,
        metric=prepared.metrics if pareto else "val_accuracy",
        mode=["max", "min"] if pareto else "max",
        sampler=make_sampler(spec, prepared.shapes),
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
