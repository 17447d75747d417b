"""A search's counts (done / running / queued, best so far, time left) and their lines, fed
the Ray Tune callback calls a search makes, without Ray."""

from __future__ import annotations

import pickle
import threading
from types import SimpleNamespace
from typing import Any

import optuna
import pytest

from nas_width.cli._progress import clock
from nas_width.search.progress import SearchState, TrialPrinter


def trial(trial_id: str, shape: str, **result: Any) -> SimpleNamespace:
    return SimpleNamespace(trial_id=trial_id, config={"shape": shape}, last_result=result)


def test_counts_follow_the_trials_and_each_line_carries_them() -> None:
    study = optuna.create_study(direction="maximize")
    study.add_trial(optuna.trial.create_trial(value=0.4))  # finished by an earlier run
    lines: list[str] = []
    states: list[SearchState] = []
    printer = TrialPrinter(lines.append, 4, study, epochs=2, watch=states.append)
    first = states[-1]
    assert (first.done, first.before, first.running, first.queued) == (1, 1, 0, 3)
    assert (first.best, first.left) == (0.4, None)  # no trial of this run finished yet

    a, b, c = (
        trial("a", "S4", val_accuracy=0.7, epoch=2),
        trial("b", "S8", epoch=1),
        trial("c", "S2"),
    )
    printer.on_trial_start(0, [], a)
    printer.on_trial_start(0, [], b)
    assert (states[-1].running, states[-1].queued) == (2, 1)
    assert lines == ["training: the first trials started (1 of 4 finished before)"]

    printer.on_trial_complete(0, [], a)
    now = states[-1]
    assert (now.done, now.running, now.queued, now.best) == (2, 1, 1, 0.7)
    assert now.left == pytest.approx(now.elapsed / 1 * 2)  # this run's pace, 2 trials left
    assert lines[-1].startswith("[2/4] done     S4 val_accuracy=0.7000 (2 epochs) best 0.7000 ")
    assert "[1 running, 1 queued; " in lines[-1]
    assert lines[-1].endswith("s left]")

    printer.on_trial_complete(0, [], b)  # 1 epoch of 2: pruned, not a best
    assert lines[-1].startswith("[3/4] pruned   S8 (1 epochs) best 0.7000 [0 running, 1 queued; ")
    printer.on_trial_start(0, [], c)
    printer.on_trial_error(0, [], c)
    last = states[-1]
    assert (last.done, last.running, last.queued, last.left) == (4, 0, 0, 0.0)
    assert lines[-1].startswith("[4/4] error    S2 (0 epochs) best 0.7000 [")
    assert "queued" not in lines[-1]  # nothing left: the time only


def test_a_printer_pickles_without_its_printing_functions() -> None:
    """Ray Tune pickles its callbacks; a live bar holds locks, which do not pickle."""
    lock = threading.Lock()

    def watch(state: SearchState) -> None:
        with lock:
            pass

    printer = TrialPrinter(lambda _: None, 2, optuna.create_study(), 1, watch=watch)
    copy = pickle.loads(pickle.dumps(printer))
    copy.on_trial_start(0, [], trial("a", "S4"))  # prints nothing, watches nothing
    assert copy.state().running == 1


def test_clock() -> None:
    assert [clock(5), clock(65), clock(3725), clock(None), clock(float("inf"))] == [
        "0:05", "1:05", "1:02:05", "?", "?",
    ]  # fmt: skip
