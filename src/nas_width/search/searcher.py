"""Ray Tune's OptunaSearch, with the study semantics a width search needs.

Ray tells Optuna that a trial its scheduler stopped early (ASHA) is COMPLETE with its truncated
accuracy; for a width study that is wrong data. Here such trials end PRUNED, keeping the
intermediate values they reported; a trial whose training failed (NaN loss, an exception) ends
FAIL with the reason in its user attributes. Each trial's shape (S, C, m, densities, measured
parameters and FLOPs) is written to its user attributes when it is suggested, so the dashboard
shows them while it runs.

With ``max_failures`` set, the searcher suggests no new trial once that many trials in a row
have failed; Ray lets the running ones end and returns, and the caller reports why it stopped.

The searcher lives on the driver. Ray pickles it all the same (``tuner.pkl`` for
``Tuner.restore``, and :meth:`save` in its experiment checkpoints), but nas-width resumes from
the Optuna study, never from those: the pickled form leaves out the live study, its trials and
the sampler, which need not be picklable (Optuna 5.1's ``NSGAIISampler`` holds a thread lock).
"""

from __future__ import annotations

import math
import pickle
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from nas_width.budget import measure
from nas_width.config import MixerConfig
from nas_width.schema import TrialAttrs
from nas_width.search.internals import (
    SEARCHER_DRIVER_ONLY,
    live_trial_id,
    searcher_completed,
    searcher_live_study,
    searcher_live_trials,
    study_storage,
)

__all__ = ["WidthSearch", "feature_space", "feature_values", "shape_attrs"]

#: Per-epoch metrics kept as lists in each finished trial's ``history`` user attribute (the
#: validation accuracy per epoch is already its intermediate values).
HISTORY = ("train_loss", "train_accuracy", "val_loss")

#: What only the driver's live searcher holds; never pickled (see the module docstring).
DRIVER_ONLY = SEARCHER_DRIVER_ONLY

#: Result keys copied into each finished trial's user attributes: the last epoch's metrics,
#: where it ran (``pid`` is Ray's: the worker process), when it trained (see trainable.py),
#: the learning rate it trained with and the held-out test metrics of a finished trial.
RESULT_ATTRS = (
    "epoch", "images_per_sec", "device", "train_loss", "val_loss", "node_id", "pid",
    "started_at", "fit_started_at", "fit_seconds", "train_seconds", "val_samples",
    "train_accuracy", "lr", "test_accuracy", "test_loss", "test_samples", "tuning",
)  # fmt: skip


def feature_values(cfg: MixerConfig) -> dict[str, Any]:
    """What a shape is made of, in the paper's letters: the mixing kind, log2 S, the depth,
    gamma_S, gamma_C and the patch. C, m and the densities follow from these at the budget
    (they are solved), so they stay trial attributes."""
    return {
        "mixing": cfg.mixing,
        "log2_S": math.log2(cfg.tokens),
        "depth": cfg.depth,
        "gamma_token": float(cfg.gamma_token),
        "gamma_channel": float(cfg.gamma_channel),
        "patch": "x".join(map(str, cfg.patch)),
    }


def feature_space(shapes: dict[str, MixerConfig]) -> dict[str, BaseDistribution]:
    """Each feature's distribution over the feasible shapes (numbers as ranges, so that
    optuna-dashboard's slice, contour and importance plots treat them as numbers)."""
    values = [feature_values(cfg) for cfg in shapes.values()]

    def span(name: str) -> tuple[Any, Any]:
        return min(v[name] for v in values), max(v[name] for v in values)

    return {
        "mixing": CategoricalDistribution(sorted({v["mixing"] for v in values})),
        "log2_S": FloatDistribution(*span("log2_S")),
        "depth": IntDistribution(*span("depth")),
        "gamma_token": FloatDistribution(*span("gamma_token")),
        "gamma_channel": FloatDistribution(*span("gamma_channel")),
        "patch": CategoricalDistribution(sorted({v["patch"] for v in values})),
    }


def shape_attrs(cfg: MixerConfig) -> TrialAttrs:
    """The shape in the paper's letters plus its fvcore counts."""
    m = measure(cfg)
    return TrialAttrs(
        S=m.tokens,
        C=m.channels,
        m=m.width,
        mixing=cfg.mixing,
        patch=list(cfg.patch),
        gamma_token=cfg.gamma_token,
        gamma_channel=cfg.gamma_channel,
        hidden_token=cfg.token_hidden,  # D_S and D_C as built (the solver may move them)
        hidden_channel=cfg.channel_hidden,
        depth=cfg.depth,
        seed=cfg.seed,
        density_token=m.density_token,
        density_channel=m.density_channel,
        params=m.params,
        flops=m.flops,
        mixing_params=m.mixing_params,
        mixing_flops=m.mixing_flops,
        connections=m.connections,
        config=cfg.to_dict(),
    )


class WidthSearch(OptunaSearch):
    """OptunaSearch over the ``shape`` categorical with PRUNED/FAIL mapping.

    Args:
        shapes: the feasible shapes by key (computed once, before any trial).
        epochs: the recipe's epochs; a trial that reports fewer was stopped early.
        max_failures: stop suggesting after this many trials failed in a row (0: never).
        kwargs: passed to OptunaSearch (metric, mode, sampler, storage, study_name).
    """

    def __init__(
        self, shapes: dict[str, MixerConfig], epochs: int, max_failures: int = 0, **kwargs: Any
    ) -> None:
        space: dict[str, optuna.distributions.BaseDistribution] = {
            "shape": optuna.distributions.CategoricalDistribution(list(shapes))
        }
        super().__init__(space=space, **kwargs)
        self._shapes = shapes
        self._features = feature_space(shapes) if shapes else {}
        self._epochs = epochs
        self._reported: dict[str, set[int]] = {}
        self._history: dict[str, dict[int, dict[str, float]]] = {}
        self.max_failures = max_failures
        #: (trial number, fail reason) of the trials that failed since the last one that did not.
        self.failed_in_row: list[tuple[int, str]] = []

    @property
    def gave_up(self) -> bool:
        """Whether ``max_failures`` trials in a row failed (no new trial is suggested)."""
        return 0 < self.max_failures <= len(self.failed_in_row)

    @property
    def study(self) -> optuna.Study:
        study = searcher_live_study(self)
        if study is None:
            raise RuntimeError("no live study: only the driver's searcher has one (not a copy)")
        return study

    @property
    def _multi(self) -> bool:
        metric: Any = self.metric
        return isinstance(metric, list)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        if self.gave_up:
            return Searcher.FINISHED  # type: ignore[return-value]  # Ray's "no more" marker
        params = super().suggest(trial_id)
        if params is not None:
            trial = searcher_live_trials(self)[trial_id]
            cfg = self._shapes[params["shape"]]
            for key, value in shape_attrs(cfg).items():
                trial.set_user_attr(key, value)
            self._store_features(trial, cfg)
        return params

    def _store_features(self, trial: optuna.Trial, cfg: MixerConfig) -> None:
        """The shape's features as parameters of the trial beside ``shape`` (set, not
        sampled: ``shape`` alone is chosen; samplers see only it, see ``UntriedShapes``)."""
        storage, number = study_storage(self.study), live_trial_id(trial)
        for name, value in feature_values(cfg).items():
            distribution = self._features[name]
            internal = distribution.to_internal_repr(value)
            storage.set_trial_param(number, name, internal, distribution)

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        self._report(trial_id, result)

    def _report(self, trial_id: str, result: dict[str, Any]) -> None:
        """Store the epoch's accuracy as an intermediate value (once per epoch) and keep its
        training metrics for the trial's ``history``."""
        if "error" in result or trial_id in searcher_completed(self):
            return
        epoch = int(result.get("epoch", 0))
        if epoch > 0:
            self._history.setdefault(trial_id, {})[epoch] = {
                k: float(result[k]) for k in HISTORY if k in result
            }
        if self._multi:
            return
        value = result.get(self.metric)
        reported = self._reported.setdefault(trial_id, set())
        if value is not None and math.isfinite(value) and epoch not in reported:
            searcher_live_trials(self)[trial_id].report(value, epoch)
            reported.add(epoch)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        if trial_id in searcher_completed(self) or trial_id not in searcher_live_trials(self):
            return
        trial = searcher_live_trials(self)[trial_id]
        result = result or {}
        # Ray hands the result its scheduler stopped on to on_trial_complete only.
        self._report(trial_id, result)
        for key in RESULT_ATTRS:
            if key in result:
                trial.set_user_attr("epochs" if key == "epoch" else key, result[key])
        epochs = self._history.pop(trial_id, {})
        if epochs:
            ordered = [epochs[e] for e in sorted(epochs)]
            trial.set_user_attr("history", {k: [row.get(k) for row in ordered] for k in HISTORY})
        reason = result.get("error") or ("the trial's worker failed" if error else None)
        if reason is not None:
            trial.set_user_attr("fail_reason", str(reason))
            self._tell(trial_id, None, TrialState.FAIL)
            self.failed_in_row.append((trial.number, str(reason)))
            return
        self.failed_in_row.clear()
        if result.get("epoch", 0) < self._epochs:
            self._tell(trial_id, None, TrialState.PRUNED)  # stopped by the scheduler
        elif self._multi:
            metrics: list[str] = list(self.metric)
            self._tell(trial_id, [result[m] for m in metrics], TrialState.COMPLETE)
        else:
            self._tell(trial_id, result[self.metric], TrialState.COMPLETE)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in DRIVER_ONLY}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.update(dict.fromkeys(DRIVER_ONLY))

    def save(self, checkpoint_path: str) -> None:
        """Ray's searcher checkpoint: bookkeeping only (the study is the record)."""
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def restore(self, checkpoint_path: str) -> None:
        raise RuntimeError(
            "a width search resumes from its Optuna study (nas-width search --resume), "
            "not from Ray's searcher checkpoint"
        )

    def _tell(self, trial_id: str, value: Any, state: TrialState) -> None:
        self.study.tell(searcher_live_trials(self)[trial_id], value, state=state)
        searcher_completed(self).add(trial_id)
