"""What nas-width stores in an Optuna study, written down once: every study setting and trial
attribute with its type.

A study outlives the code that wrote it (a dashboard, ``report`` or ``--resume`` a version
later reads it), so the names are a file format. Writers build these records and readers view
Optuna's ``user_attrs`` through :func:`study_settings` / :func:`trial_attrs`, so that mypy checks
every key either side uses against this one file: a renamed or misspelt attribute is a type
error, not a silently empty column. Optuna's storage gives plain JSON back, so the records are
``TypedDict``\\ s (``total=False``: a study from an older version lacks the newer keys) and the
views are casts, not parsers: readers still check what they use.

The paper's letters: S tokens, C channels, m = S*C the width of the wide MLP, gamma the hidden
ratios (D_S = gamma_S*S, D_C = gamma_C*C).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, TypedDict, cast

__all__ = [
    "COMPLETE_MARK",
    "LEASE_KEY",
    "DatasetRecord",
    "StudySettings",
    "TrialAttrs",
    "study_settings",
    "trial_attrs",
]


class DatasetRecord(TypedDict, total=False):
    """The data set a study trained on (``[dataset]`` of its study file)."""

    name: str
    path: str | None
    val_fraction: float
    split_seed: int
    options: dict[str, Any]


class StudySettings(TypedDict, total=False):
    """A study's user attributes, written once when a search creates it (all together, the
    :data:`COMPLETE_MARK` last) and compared by ``--resume``."""

    budget: str  # "mixing_flops=100k" as parsed: the metric and its value
    budget_metric: str  # params, flops, mixing_params, mixing_flops
    budget_value: float
    tolerance: float
    space: str
    space_hash: str
    space_definition: Any  # the TOML table or "module:function"
    dataset: DatasetRecord
    recipe: dict[str, Any]  # Recipe.to_dict()
    tune: dict[str, Any] | None  # Tuning.to_dict(), None: one recipe for every shape
    sampler: str
    scheduler: str
    seed: int
    pareto: bool
    primary_test: dict[str, Any]  # AnalysisPlan, named before the run
    feasible: dict[str, Any]  # space_size(): shapes, S and C ranges
    shapes_hash: str
    infeasible: dict[str, str]  # shape key -> why no C holds it
    nas_width_version: str


class TrialAttrs(TypedDict, total=False):
    """A trial's user attributes: its shape (written when it is suggested, so a dashboard shows
    it while it runs), then what it reached (when it ends), or why it failed."""

    # The shape in the paper's letters and its fvcore counts.
    S: int
    C: int
    m: int
    mixing: str
    patch: list[int]
    gamma_token: float
    gamma_channel: float
    hidden_token: int  # D_S as built (the solver may move it)
    hidden_channel: int  # D_C as built
    depth: int
    seed: int
    density_token: float
    density_channel: float
    params: int
    flops: int
    mixing_params: int
    mixing_flops: int
    connections: int
    config: dict[str, Any]  # MixerConfig.to_dict()
    # The last epoch's result (Ray's "epoch" is stored as "epochs").
    epochs: int
    images_per_sec: float
    device: str
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_samples: int
    node_id: str
    pid: int  # the Ray worker's
    started_at: float
    fit_started_at: float
    fit_seconds: float
    train_seconds: float
    lr: float  # the learning rate it trained with (tuned or the recipe's)
    test_accuracy: float
    test_loss: float
    test_samples: int
    tuning: dict[str, Any] | None  # what each rate reached when the tuner chose; None: untuned
    history: dict[str, list[float | None]]  # per epoch: train_loss, train_accuracy, val_loss
    # Failure and recovery.
    fail_reason: str
    retry_of: int  # the first trial of a chain of retries of interrupted trials
    attempt: int  # 2, 3, ... for a retry


#: The study setting written last when a search creates a study: without it, the study was
#: stopped half-made and its other settings cannot be trusted to guard a resume.
COMPLETE_MARK: Final = "nas_width_version"

#: The study *system* attribute that holds the lease of the search running it.
LEASE_KEY: Final = "nas_width:lease"


def study_settings(user_attrs: Mapping[str, Any]) -> StudySettings:
    """A study's user attributes, typed (a view: nothing is checked or copied)."""
    return cast(StudySettings, user_attrs)


def trial_attrs(user_attrs: Mapping[str, Any]) -> TrialAttrs:
    """A trial's user attributes, typed (a view: nothing is checked or copied)."""
    return cast(TrialAttrs, user_attrs)
