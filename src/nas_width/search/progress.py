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
    """Prints ``[n/N] shape val_accuracy=.. [lr=.. when tuned] (epochs) [seconds]`` as trials
    end (the held-out test accuracy is left to the report)."""

    def __init__(
        self, echo: Callable[[str], None], target: int, study: optuna.Study, epochs: int
    ) -> None:
        from nas_width.search.storage import finished_count

        self._echo = echo
        self._epochs = epochs
        self._target = target
        self._done = finished_count(study)
        self._start = time.perf_counter()

    def _line(self, trial: Any, status: str) -> None:
        self._done += 1
        result = trial.last_result or {}
        shape = trial.config.get("shape", "?")
        acc = result.get("val_accuracy")
        accuracy = f"val_accuracy={acc:.4f}" if isinstance(acc, float) and acc == acc else ""
        if result.get("tuning"):  # the rate the shape kept on validation
            accuracy += f" lr={result['lr']:g}"
        epochs = result.get("epoch", 0)
        elapsed = time.perf_counter() - self._start
        words = [f"[{self._done}/{self._target}]", f"{status:<8}", shape, accuracy,
                 f"({epochs} epochs)", result.get("error", ""), f"[{elapsed:.0f}s]"]  # fmt: skip
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
