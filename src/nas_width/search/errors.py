"""Every way a search refuses or stops, in one place, so that callers (the CLI, a plugin
user's script) catch them from one module.

:class:`StorageError` is a refusal before anything runs (bad URL, missing or damaged file, a
study that exists, differs, or is held by another search): exit code 2. :class:`SearchStopped`
and its subclasses end a search that ran: the study is consistent, ``outcome`` says what it
holds, and ``--resume`` continues it.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

from nas_width.errors import NasWidthError

if TYPE_CHECKING:
    from nas_width.search.summary import SearchOutcome

__all__ = [
    "RayFailed",
    "SearchInterrupted",
    "SearchStopped",
    "StorageError",
    "Terminated",
    "TooManyFailures",
]


class StorageError(NasWidthError):
    """A storage URL or a stored study cannot be used as asked."""


class SearchStopped(Exception):  # noqa: N818 (a stop, not a bug: callers print the message)
    """The search ended before the study had its trials; ``outcome`` is what the study holds."""

    def __init__(self, message: str, outcome: SearchOutcome) -> None:
        super().__init__(message)
        self.outcome = outcome


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a scheduler's time limit), which a search treats as Ctrl-C; the CLI
    exits 143 for it (128 + 15), as a shell reports a process ended by SIGTERM."""


class SearchInterrupted(SearchStopped):
    """Ctrl-C (SIGINT) or SIGTERM (``signum``): ``interrupted`` lists the trials failed as
    interrupted and queued again."""

    def __init__(
        self,
        outcome: SearchOutcome,
        interrupted: list[int],
        target: int,
        signum: int = signal.SIGINT,
    ) -> None:
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
        self.signum = signum


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
