"""One line per finished trial while a search runs (Ray's own tables are switched off)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

if TYPE_CHECKING:
    import optuna

__all__ = ["TrialPrinter"]


class TrialPrinter(Callback):
    """Prints a line when the first trials start, then ``[n/N] status shape val_accuracy=..
    [lr=.. when tuned] (epochs) best .. [seconds, ~seconds left]`` as trials end: the best
    validation accuracy so far and the time left at the pace of this run (the held-out test
    accuracy is left to the report)."""

    def __init__(
        self, echo: Callable[[str], None], target: int, study: optuna.Study, epochs: int
    ) -> None:
        from nas_width.search.recovery import finished_count

        self._echo = echo
        self._epochs = epochs
        self._target = target
        self._done = self._first = finished_count(study)
        self._start = time.perf_counter()
        self._started = False
        values = [t.values[0] for t in study.get_trials(deepcopy=False)
                  if t.state.name == "COMPLETE" and t.values]  # fmt: skip
        self._best: float | None = max(values) if values else None

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if not self._started:
            self._started = True
            self._echo(f"training: the first trials started ({self._done} of {self._target} "
                       "finished before)")  # fmt: skip

    def _line(self, trial: Any, status: str) -> None:
        self._done += 1
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
        elapsed = time.perf_counter() - self._start
        clock = f"[{elapsed:.0f}s]"
        here, left = self._done - self._first, self._target - self._done
        if here > 0 and left > 0:
            clock = f"[{elapsed:.0f}s, ~{elapsed / here * left:.0f}s left]"
        words = [f"[{self._done}/{self._target}]", f"{status:<8}", shape, accuracy,
                 f"({epochs} epochs)", result.get("error", ""), best, clock]  # fmt: skip
        self._echo(" ".join(w for w in words if w))

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
