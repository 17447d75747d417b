"""A recipe tuned per shape: the learning rate chosen by successive halving on validation.

One learning rate for every shape measures, in part, which shapes that rate happens to suit:
a wide S = C Mixer and a narrow one need not share an optimum. :class:`Tuning` names a small
grid of peak learning rates; :func:`successive_halving` trains every one of them on the same
shape with the same seed (same weights, same batch order: a paired comparison), compares them
on validation accuracy at a few rungs and keeps the best 1/eta at each, so that one survivor
trains to the last epoch. The held-out test split plays no part in the choice.

Cost, for K rates and reduction factor eta: rungs at E * eta**-R, ..., E / eta, E with
R = ceil(log_eta K); with K = 3 and eta = 3 every rate trains E/3 epochs and the winner E, so
5/3 of one recipe instead of 3x for the whole grid.

Example:
    >>> Tuning(lr=(1e-3, 3e-3, 1e-2)).rungs(30)
    [10, 30]
    >>> Tuning(lr=(1e-3, 2e-3, 4e-3, 8e-3), eta=2).rungs(40)
    [10, 20, 40]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nas_width.errors import ConfigError
from nas_width.train.loop import Training, TrialFailed

__all__ = ["Candidate", "Tuning", "successive_halving"]


@dataclass(frozen=True)
class Tuning:
    """Which nuisance hyper-parameters each shape tunes (``[tune]`` in a study file).

    Args:
        lr: the peak learning rates tried on every shape (a small log grid, distinct values).
        eta: successive halving's reduction factor: the best ceil(n / eta) go on at a rung.
    """

    lr: tuple[float, ...]
    eta: int = 3

    def __post_init__(self) -> None:
        lrs = self.lr
        ok = isinstance(lrs, (list, tuple)) and len(lrs) >= 1
        ok = ok and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0
            for v in lrs
        )
        if not ok or len(set(lrs)) != len(lrs):
            raise ConfigError(f"tune lr must be a list of distinct numbers > 0, got {lrs!r}")
        object.__setattr__(self, "lr", tuple(float(v) for v in lrs))
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ConfigError(f"tune eta must be an integer >= 2, got {self.eta!r}")

    def rungs(self, epochs: int) -> list[int]:
        """The epochs at which candidates are compared, the last one ``epochs`` (E)."""
        depth = math.ceil(math.log(len(self.lr), self.eta) - 1e-9) if len(self.lr) > 1 else 0
        rungs = {max(1, round(epochs * self.eta ** (i - depth))) for i in range(depth)}
        return [*sorted(r for r in rungs if r < epochs), epochs]

    def to_dict(self) -> dict[str, Any]:
        return {"lr": list(self.lr), "eta": self.eta}

    @classmethod
    def from_dict(cls, table: dict[str, Any]) -> Tuning:
        unknown = sorted(set(table) - {"lr", "eta"})
        if unknown:
            raise ConfigError(f"tune has no setting {unknown[0]!r} (known: lr, eta)")
        if "lr" not in table:
            raise ConfigError("tune needs lr, the learning rates to try on every shape")
        return cls(lr=table["lr"], eta=table.get("eta", 3))


@dataclass
class Candidate:
    """One recipe of the grid in training; ``stopped_at`` is the rung it lost at (None: won)
    and ``failed`` why its training diverged (it then ranks last)."""

    lr: float
    run: Training
    stopped_at: int | None = None
    failed: str | None = None

    @property
    def val_accuracy(self) -> float:
        """Validation accuracy at its last trained epoch (what the rungs compare)."""
        if self.failed is not None or not self.run.history:
            return math.nan
        return self.run.history[-1].val_accuracy

    def rank_key(self) -> tuple[float, float]:
        """Best first: higher validation accuracy, then lower validation loss; NaN last."""
        acc = self.val_accuracy
        loss = self.run.history[-1].val_loss if self.run.history else math.nan
        return (math.inf if math.isnan(acc) else -acc, math.inf if math.isnan(loss) else loss)

    def train_to(self, epoch: int) -> None:
        try:
            while self.failed is None and len(self.run.history) < epoch:
                self.run.epoch()
        except TrialFailed as err:
            self.failed = err.reason

    def to_dict(self) -> dict[str, Any]:
        return {"lr": self.lr, "epochs": len(self.run.history),
                "val_accuracy": self.val_accuracy, "stopped_at": self.stopped_at,
                "failed": self.failed}  # fmt: skip


def successive_halving(
    runs: Sequence[Training], lrs: Sequence[float], tuning: Tuning
) -> tuple[Candidate, list[Candidate]]:
    """Train ``runs`` (one per rate of ``lrs``, same shape and seed) rung by rung; the best
    ceil(n / eta) by validation accuracy go on (ties: lower validation loss, then grid order).
    A rate whose loss diverges ranks last instead of failing the shape.

    Stops as soon as one candidate is left, before the last rung: the caller trains the
    winner to the end (reporting its epochs as it goes). Returns the winner and every
    candidate in grid order with the rung each lost at.

    Raises:
        TrialFailed: every rate diverged.
    """
    if len(runs) != len(lrs) or not runs:
        raise ValueError(f"one run per learning rate: {len(runs)} runs for {len(lrs)} rates")
    everyone = [Candidate(lr, run) for lr, run in zip(lrs, runs, strict=True)]
    alive = list(everyone)
    for rung in tuning.rungs(runs[0].recipe.epochs):
        if len(alive) == 1:
            break
        for c in alive:
            c.train_to(rung)
        keep = sorted(alive, key=Candidate.rank_key)[: math.ceil(len(alive) / tuning.eta)]
        for c in alive:
            if c not in keep:
                c.stopped_at = rung
                c.run.model.cpu()  # frees the device for the survivors
        alive = [c for c in alive if c in keep]  # grid order
    winner = min(alive, key=Candidate.rank_key)  # more than one only when rungs collapse
    for c in alive:
        if c is not winner:
            c.stopped_at = len(c.run.history)
    if winner.failed is not None:
        raise TrialFailed(f"every learning rate diverged; lr {winner.lr:g}: {winner.failed}")
    return winner, everyone
