"""Which shapes had not finished learning when their recipe ended.

"Wide is worse" is only a finding if the wide shapes were trained as far as the narrow ones: a
shape whose training loss is still falling steeply at its last epochs measures the recipe, not
the width. Trials store their training loss per epoch (``history``); a trial is flagged when its
training loss fell by more than :data:`STILL_FALLING` over the last :data:`TAIL` of its epochs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from nas_width.analysis.inference import unit_key
from nas_width.analysis.records import TrialRecord

__all__ = ["STILL_FALLING", "TAIL", "Unconverged", "loss_drop", "unconverged"]

#: A relative fall of the training loss over the last epochs that means "still learning".
STILL_FALLING = 0.05
#: The last fraction of the epochs over which the fall is measured.
TAIL = 0.2
_MIN_EPOCHS = 5


@dataclass(frozen=True)
class Unconverged:
    """A shape with trials still learning at the end: its key, those trials, the largest fall
    of their training loss over the last epochs, and their last training accuracy (mean)."""

    shape: str
    trials: tuple[int, ...]
    drop: float
    train_accuracy: float | None


def loss_drop(losses: Sequence[float]) -> float | None:
    """(loss E_k - loss E) / loss E_k with k = max(1, round(TAIL * E)) epochs before the last
    one; None with fewer than five epochs or a loss that is not positive and finite."""
    if len(losses) < _MIN_EPOCHS:
        return None
    k = max(1, round(TAIL * len(losses)))
    before, last = losses[-1 - k], losses[-1]
    if not (math.isfinite(before) and math.isfinite(last) and before > 0):
        return None
    return (before - last) / before


def unconverged(records: Sequence[TrialRecord]) -> list[Unconverged]:
    """The used shapes whose trials' training loss was still falling, ordered by shape key."""
    flagged: dict[str, list[tuple[TrialRecord, float]]] = {}
    for r in records:
        drop = loss_drop(r.train_losses)
        if drop is not None and drop > STILL_FALLING:
            flagged.setdefault(unit_key(r), []).append((r, drop))
    out = []
    for key, rows in sorted(flagged.items()):
        accs = [r.train_accuracy for r, _ in rows if r.train_accuracy is not None]
        out.append(Unconverged(
            key, tuple(r.number for r, _ in rows), max(d for _, d in rows),
            sum(accs) / len(accs) if accs else None,
        ))  # fmt: skip
    return out
