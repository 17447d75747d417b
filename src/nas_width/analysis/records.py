"""One finished (or pruned, failed) trial of a width study as plain data: :class:`TrialRecord`.

A nas-width study stores each trial's shape in the paper's letters in its user attributes
(S tokens, C channels, effective width m = S*C, the mixing kind, the seed, fvcore FLOPs and
parameters, the epochs it ran) and its validation accuracy as the first objective value; the
``shape`` parameter is the shape key (:func:`nas_width.search.shape_key`). The analysis reads
only these records, so it can be tested with synthetic ones and never needs Optuna itself.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from nas_width.schema import trial_attrs

if TYPE_CHECKING:
    import optuna

__all__ = ["TrialRecord", "records_from_study"]


@dataclass(frozen=True)
class TrialRecord:
    """One trial of a width study.

    Attributes:
        number: the trial's number in its study.
        state: Optuna's state name: "COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING".
        mixing: the mixing kind ("mixer", "rp", "monarch", "sw-mlp").
        S: tokens (patches). C: channels (solved from the budget). m: effective width S*C.
        seed: the trial's model seed.
        accuracy: validation accuracy (None unless the trial finished with a value).
        flops: fvcore FLOPs of the whole model (one multiply-add counted once).
        params: stored parameters of the whole model.
        epochs: epochs the trial ran.
        shape: the shape key, e.g. ``"mixer-S16-p2x2-gt2-gc4-d2"``.
        val_samples: the validation samples the accuracy was counted over (None in studies
            stored before it was recorded): an accuracy is a count out of these.
        train_losses: the training loss of each epoch (empty where not recorded).
        train_accuracy: the last epoch's training accuracy (None where not recorded).
        test_accuracy: held-out test accuracy after the last epoch, at the trial's selected
            recipe; never used to choose anything (None in studies stored before it was
            recorded, or for trials that did not finish).
        test_samples: the test samples ``test_accuracy`` was counted over.
        lr: the learning rate the trial trained with (per shape when the study tunes it).
    """

    number: int
    state: str
    mixing: str
    S: int
    C: int
    m: int
    seed: int
    accuracy: float | None
    flops: int | None = None
    params: int | None = None
    epochs: int | None = None
    shape: str = ""
    val_samples: int | None = None
    train_losses: tuple[float, ...] = ()
    train_accuracy: float | None = None
    test_accuracy: float | None = None
    test_samples: int | None = None
    lr: float | None = None

    def with_metric(self, metric: str) -> TrialRecord:
        """This record with ``accuracy`` (and its sample count) read from ``metric``:
        ``"val_accuracy"`` (as stored) or ``"test_accuracy"`` (the held-out split)."""
        if metric == "val_accuracy":
            return self
        if metric != "test_accuracy":
            raise ValueError(f"metric {metric!r} is not val_accuracy or test_accuracy")
        return replace(self, accuracy=self.test_accuracy, val_samples=self.test_samples)

    @property
    def log_m(self) -> float:
        """log of the effective width m = S*C."""
        return math.log(self.m)

    @property
    def log_ratio(self) -> float:
        """x = log(S/C): 0 at the theory's optimum S = C."""
        return math.log(self.S / self.C)

    @property
    def match_key(self) -> tuple[str, int]:
        """What a shape is matched on across mixing kinds: its key without the kind, and seed.

        The shape key starts with the kind (``"rp-S16-..."``); the rest names S, the patch,
        gamma and depth (C is solved from the budget). Records without a key fall back to S, C.
        """
        prefix = f"{self.mixing}-"
        rest = self.shape[len(prefix) :] if self.shape.startswith(prefix) else self.shape
        return (rest or f"S{self.S}-C{self.C}", self.seed)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _floats(values: Any) -> tuple[float, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(math.nan if v is None else float(v) for v in values)


def _record(trial: optuna.trial.FrozenTrial) -> TrialRecord:
    attrs = trial_attrs(trial.user_attrs)
    S, C = int(attrs.get("S", 0)), int(attrs.get("C", 0))
    accuracy: float | None = None
    if trial.state.name == "COMPLETE" and trial.values:
        value = float(trial.values[0])
        accuracy = value if math.isfinite(value) else None
    config = attrs.get("config")
    seed = attrs.get("seed", config.get("seed", 0) if isinstance(config, Mapping) else 0)
    return TrialRecord(
        number=trial.number,
        state=trial.state.name,
        mixing=str(attrs.get("mixing", "")),
        S=S,
        C=C,
        m=int(attrs.get("m", S * C)),
        seed=int(seed),
        accuracy=accuracy,
        flops=_int(attrs.get("flops")),
        params=_int(attrs.get("params")),
        epochs=_int(attrs.get("epochs")),
        shape=str(trial.params.get("shape", "")),
        val_samples=_int(attrs.get("val_samples")),
        train_losses=_floats((attrs.get("history") or {}).get("train_loss")),
        train_accuracy=_float(attrs.get("train_accuracy")),
        test_accuracy=_float(attrs.get("test_accuracy")) if accuracy is not None else None,
        test_samples=_int(attrs.get("test_samples")),
        lr=_float(attrs.get("lr")),
    )


def records_from_study(study: optuna.Study) -> list[TrialRecord]:
    """Every trial of a stored nas-width study as a :class:`TrialRecord`, in trial order.

    ``trial.values[0]`` is the validation accuracy (also in a two-objective Pareto study, whose
    second objective is FLOPs); it is read only for COMPLETE trials. Trials that never got a
    shape (S or C missing) keep S = C = m = 0, and :func:`~nas_width.analysis.analyze`
    excludes them.
    """
    return [_record(t) for t in study.get_trials(deepcopy=False)]
