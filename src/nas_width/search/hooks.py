"""A test hook: pause a search at a named moment, so that a test can signal it exactly there.

``NAS_WIDTH_PAUSE_AT=MOMENT`` makes a search print ``nas-width: paused at MOMENT`` to stderr and
wait (at most :data:`PAUSE_S`) when it reaches MOMENT, one of :data:`MOMENTS`: ``settings``
(a new study exists and holds its lease, its settings are not written yet), ``ray`` (a private
Ray is starting, no study exists yet) and ``summary`` (the trials are done, the study is not yet
summarized or released). A Ctrl-C or SIGTERM ends the pause at once, as it ends the search; one
held back while a study is created ends it too (:func:`wake`). Unset, nothing happens.
"""

from __future__ import annotations

import os
import sys
import threading

__all__ = ["MOMENTS", "PAUSE_HOOK_ENV", "pause_at", "wake"]

PAUSE_HOOK_ENV = "NAS_WIDTH_PAUSE_AT"
MOMENTS = ("settings", "ray", "summary")
PAUSE_S = 60.0

_woken = threading.Event()


def pause_at(moment: str) -> None:
    """Pause here if the hook names ``moment`` (see the module docstring)."""
    if os.environ.get(PAUSE_HOOK_ENV) != moment:
        return
    print(f"nas-width: paused at {moment}", file=sys.stderr, flush=True)
    _woken.wait(PAUSE_S)  # a signal's KeyboardInterrupt ends the wait in the main thread


def wake() -> None:
    """End a pause: a signal came that the search holds back until the study is whole."""
    _woken.set()
