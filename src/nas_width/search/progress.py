"""A search's progress: one line per finished trial, and its counts for a live display.

Ray's own tables are switched off. :class:`TrialPrinter` is the Ray Tune callback that keeps
the counts (done, running, queued), the best accuracy so far and the time left, prints a line
as each trial ends, and hands a :class:`SearchState` to a watcher (the CLI's live bar on a
terminal) whenever the counts change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

if TYPE_CHECKING:
    import optuna

__all__ = ["SearchState", "TrialPrinter"]


def _quiet(text: str) -> None:
    """Prints nothing (a pickled printer's echo)."""


@dataclass(frozen=True)
class SearchState:
    """Where a search stands: ``done`` of ``target`` trials finished (``before`` of them by an
    earlier run), ``running`` now, ``queued`` still to start; the best validation accuracy so
    far; seconds since this run began, and the seconds left at its pace (None until a trial of
    this run has finished, 0 once none is left)."""

    target: int
    done: int
    before: int
    running: int
    best: float | None
    elapsed: float
    left: float | None

    @property
    def queued(self) -> int:
        return max(0, self.target - self.done - self.running)

    def counts(self) -> str:
        """``2 running, 5 queued``."""
        return f"{self.running} running, {self.queued} queued"


class TrialPrinter(Callback):
    """Prints a line when the first trials start, then ``[n/N] status shape val_accuracy=..
    [lr=.. when tuned] (epochs) best .. [r running, q queued; seconds, ~seconds left]`` as
    trials end: the best validation accuracy so far and the time left at the pace of this run
    (the held-out test accuracy is left to the report). ``watch`` is given the
    :class:`SearchState` at the start and whenever a trial starts or ends."""

    def __init__(
        self,
        echo: Callable[[str], None],
        target: int,
        study: optuna.Study,
        epochs: int,
        watch: Callable[[SearchState], None] | None = None,
    ) -> None:
        from nas_width.search.recovery import finished_count

        self._echo = echo
        self._watch = watch
        self._epochs = epochs
        self._target = target
        self._done = self._first = finished_count(study)
        self._running: set[str] = set()
        self._start = time.perf_counter()
        self._started = False
        values = [t.values[0] for t in study.get_trials(deepcopy=False)
                  if t.state.name == "COMPLETE" and t.values]  # fmt: skip
        self._best: float | None = max(values) if values else None
        self._tell()

    def __getstate__(self) -> dict[str, Any]:
        """Ray Tune pickles its callbacks with the experiment's state; the printing functions
        (a live terminal bar holds locks) stay behind: a copy prints nothing."""
        state = self.__dict__.copy()
        state["_echo"], state["_watch"] = _quiet, None
        return state

    def state(self) -> SearchState:
        """The counts now."""
        elapsed = time.perf_counter() - self._start
        here, left = self._done - self._first, max(0, self._target - self._done)
        return SearchState(
            target=self._target,
            done=self._done,
            before=self._first,
            running=len(self._running),
            best=self._best,
            elapsed=elapsed,
            left=elapsed / here * left if here > 0 else (0.0 if left == 0 else None),
        )

    def _tell(self) -> None:
        if self._watch is not None:
            self._watch(self.state())

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._running.add(str(trial.trial_id))
        if not self._started:
            self._started = True
            self._echo(f"training: the first trials started ({self._done} of {self._target} "
                       "finished before)")  # fmt: skip
        self._tell()

    def _line(self, trial: Any, status: str) -> None:
        self._done += 1
        self._running.discard(str(trial.trial_id))
        result = trial.last_result or {}
        shape = trial.config.get("shape", "?")
        acc = result.get("val_accuracy")
        finite = isinstance(acc, float) and acc == acc
        accuracy = f"val_accuracy={acc:.4f}" if finite else ""
        if result.get("tuning"):  # the rate the shape kept on validation
            accuracy += f" lr={result['lr']:g}"
        epochs = result.get("epoch", 0)
        if status == "done" and isinstance(acc, float) and finite:
            self._best = acc if self._best is None else max(self._best, acc)
        best = "" if self._best is None else f"best {self._best:.4f}"
        now = self.state()
        clock = f"{now.elapsed:.0f}s" + (f", ~{now.left:.0f}s left" if now.left else "")
        where = f"[{now.counts()}; {clock}]" if now.running or now.queued else f"[{clock}]"
        words = [f"[{self._done}/{self._target}]", f"{status:<8}", shape, accuracy,
                 f"({epochs} epochs)", result.get("error", ""), best, where]  # fmt: skip
        self._echo(" ".join(w for w in words if w))
        self._tell()

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if "error" in result:
            status = "failed"
        elif result.get("epoch", 0) < self._epochs:
            status = "pruned"
        else:
            status = "done"
        self._line(trial, status)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._line(trial, "error")
