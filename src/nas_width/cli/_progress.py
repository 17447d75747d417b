"""Live progress for ``search`` and ``train``: a rich bar on a terminal, plain lines elsewhere.

On a terminal the bar stays at the bottom, under the lines of finished trials (or epochs) that
scroll above it: done of the target, running and queued, the best accuracy so far, elapsed and
estimated time left. Anywhere else (a pipe, a CI log, a file) the same lines are printed with
no bar and no escape codes, and each line carries the counts itself.

rich's console decides what a terminal is: it honours ``TERM=dumb``, ``FORCE_COLOR`` and
``TTY_COMPATIBLE``.
"""

from __future__ import annotations

import math
import sys
import time
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from nas_width.search.progress import SearchState
    from nas_width.train.loop import EpochReport

__all__ = ["LiveProgress", "clock"]


def clock(seconds: float | None) -> str:
    """``1:05`` for 65 s, ``1:01:05`` past an hour; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_terminal(stream: IO[str]) -> bool:
    from rich.console import Console

    console = Console(file=stream)
    return console.is_terminal and not console.is_dumb_terminal


class LiveProgress:
    """A context manager: ``echo`` prints a line (above the bar when there is one), ``search``
    and ``epoch`` move the bar. ``live=None`` decides by whether ``stream`` is a terminal."""

    def __init__(self, title: str, *, stderr: bool = False, live: bool | None = None) -> None:
        self._title = title
        self._stderr = stderr
        self._stream = sys.stderr if stderr else sys.stdout
        self._live = _is_terminal(self._stream) if live is None else live
        self._bar: Any = None
        self._task: Any = None
        self._start = time.perf_counter()

    @property
    def live(self) -> bool:
        """Whether a bar is drawn (a terminal)."""
        return self._live

    def __enter__(self) -> LiveProgress:
        if self._live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                TextColumn("{task.fields[left]}"),
                console=Console(file=self._stream),
                redirect_stdout=False,
                redirect_stderr=False,
                transient=True,  # the lines above it stay; the bar goes when the work ends
            )
            self._bar.start()
            self._task = self._bar.add_task(self._title, total=None, detail="", left="")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def stage(self, text: str) -> None:
        """What is happening before the counts start (on the bar only: a log gets no line,
        so that bad input still prints nothing but its one error line)."""
        if self._bar is not None and self._bar.tasks[0].description != text:
            self._bar.update(self._task, description=text)
            self._bar.refresh()  # shown now, not at the next tick

    def echo(self, text: str) -> None:
        """Print one line, above the bar when there is one."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            typer.echo(text, err=self._stderr)

    def _move(self, done: int, total: int, detail: str, left: float | None) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total, detail=detail,
                             left=f"~{clock(left)} left" if left else "")  # fmt: skip
            self._bar.refresh()  # every change is drawn, not only the one at the next tick

    def search(self, state: SearchState) -> None:
        """The search's counts: trials done of the target, running, queued, best so far."""
        best = "" if state.best is None else f" · best {state.best:.4f}"
        self.stage("trials")
        self._move(state.done, state.target, f"{state.counts()}{best}", state.left)

    def epoch(self, report: EpochReport, epochs: int) -> None:
        """One finished epoch of ``epochs``: its line, and the bar moved on."""
        from nas_width.train.loop import epoch_line

        self.echo(epoch_line(report, epochs))
        elapsed = time.perf_counter() - self._start
        left = elapsed / report.epoch * (epochs - report.epoch)
        self._move(report.epoch, epochs, f"train_loss {report.train_loss:.4f}", left)
