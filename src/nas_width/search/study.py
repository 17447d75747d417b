"""Studies: declarative TOML files that say how a width search runs.

A study names the data set, the budget (optional here: ``nas-width search --budget`` gives it),
the search space, the sampler, the number of trials, the training recipe, the scheduler, the
resources per trial, the seed and the storage. Shipped studies live in ``studies/``; a path to
any TOML file works too, and command-line options override the file.

``max_failures`` is how many trials may fail in a row before the search stops (0: never), so
that a search whose every trial fails (a bad recipe, a broken data set, a device out of memory)
does not spend its whole budget failing; scattered failures never stop it.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nas_width import resources
from nas_width.errors import ConfigError
from nas_width.kinds import KINDS
from nas_width.tomlfile import check_keys, expect, read_toml
from nas_width.train import Recipe, Tuning

__all__ = [
    "DEFAULT_MAX_FAILURES",
    "SAMPLERS",
    "SCHEDULERS",
    "AnalysisPlan",
    "DatasetSpec",
    "Resources",
    "StudySpec",
    "load_spec",
    "load_study",
]

SAMPLERS = ("tpe", "random", "grid", "gp", "nsga2")
SCHEDULERS = ("none", "asha")
DEFAULT_STORAGE = "sqlite:///nas-width.db"
DEFAULT_MAX_FAILURES = 5


@dataclass(frozen=True)
class DatasetSpec:
    """Which data set and how its validation split is carved."""

    name: str = "digits"
    path: str | None = None
    val_fraction: float = 0.2
    split_seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        expect("dataset name", self.name, str, "a data set name")
        expect("dataset path", self.path, (str, type(None)), "a path")
        expect("val_fraction", self.val_fraction, (int, float), "in (0, 1)", lambda v: 0 < v < 1)
        expect("split_seed", self.split_seed, int, "an integer >= 0", lambda v: v >= 0)
        expect("dataset options", self.options, dict, "a table")


@dataclass(frozen=True)
class Resources:
    """Per-trial resources for Ray Tune; GPUs may be fractional (several trials per GPU)."""

    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int = 2

    def __post_init__(self) -> None:
        number = (int, float)
        expect("cpus_per_trial", self.cpus_per_trial, number, "a finite number > 0",
               lambda v: 0 < v < math.inf)  # fmt: skip
        expect("gpus_per_trial", self.gpus_per_trial, number, "a finite number >= 0",
               lambda v: 0 <= v < math.inf)  # fmt: skip
        expect("max_concurrent", self.max_concurrent, int, "an integer >= 1", lambda v: v >= 1)


@dataclass(frozen=True)
class AnalysisPlan:
    """The primary test, named before the run (``[analysis]`` in a study file): the rank
    correlation ``primary_statistic`` of m with ``primary_metric`` over the shapes of
    ``primary_kind`` ("all": every kind pooled). ``nas-width report`` states it first and
    Holm-corrects the other tests."""

    primary_kind: str = "mixer"
    primary_statistic: str = "spearman"
    primary_metric: str = "val_accuracy"

    def __post_init__(self) -> None:
        kinds = (*KINDS, "all")
        expect("primary_kind", self.primary_kind, str, f"one of {', '.join(kinds)}",
               lambda v: v in kinds)  # fmt: skip
        expect("primary_statistic", self.primary_statistic, str, "spearman or kendall",
               lambda v: v in ("spearman", "kendall"))  # fmt: skip
        expect("primary_metric", self.primary_metric, str, "val_accuracy or test_accuracy",
               lambda v: v in ("val_accuracy", "test_accuracy"))  # fmt: skip


@dataclass(frozen=True)
class Asha:
    """ASHA's settings (epochs are Ray's training iterations).

    The grace period defaults to 10 epochs, not Ray's usual 1-3: replayed on the five stored
    sweeps (BENCHMARKS.md, search efficiency), ASHA at grace 3 stopped the best MNIST-1D shape
    in most replays (it starts slowly: 14th of 15 at epoch 3), while grace 10 found the best
    shape as often as no early stopping at all and still saved 29-41% of the epochs.
    """

    grace_period: int = 10
    reduction_factor: int = 3

    def __post_init__(self) -> None:
        expect("grace_period", self.grace_period, int, "an integer >= 1", lambda v: v >= 1)
        expect("reduction_factor", self.reduction_factor, int, "an integer >= 2", lambda v: v >= 2)


@dataclass(frozen=True)
class StudySpec:
    """Everything a search needs except the cluster address."""

    name: str
    description: str = ""
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    budget: str | None = None
    tolerance: float = 0.02
    space: str = "mixer"
    sampler: str = "tpe"
    trials: int | str = 16  # or "all": one trial per feasible shape (a grid sweep)
    seed: int = 0
    scheduler: str = "none"
    storage: str = DEFAULT_STORAGE
    pareto: bool = False
    max_failures: int = DEFAULT_MAX_FAILURES  # trials failed in a row that stop the search
    recipe: Recipe = field(default_factory=Recipe)
    resources: Resources = field(default_factory=Resources)
    asha: Asha = field(default_factory=Asha)
    tune: Tuning | None = None  # the learning rates each shape tunes on validation
    analysis: AnalysisPlan = field(default_factory=AnalysisPlan)

    def __post_init__(self) -> None:
        expect("name", self.name, str, "a string")
        expect("description", self.description, str, "a string")
        expect("budget", self.budget, (str, int, type(None)), "a budget such as 50k")
        expect("tolerance", self.tolerance, (int, float), "in [0, 1)", lambda v: 0 <= v < 1)
        expect("space", self.space, str, "a space name, TOML file or module:function")
        # Optuna's samplers and NumPy take seeds below 2**32; refused here, before any storage.
        expect("seed", self.seed, int, "an integer in [0, 2**32)", lambda v: 0 <= v < 2**32)
        expect("storage", self.storage, str, "a storage URL")
        expect("pareto", self.pareto, bool, "true or false")
        expect(
            "max_failures", self.max_failures, int, "an integer >= 0 (0: never stop)",
            lambda v: v >= 0,
        )  # fmt: skip
        if self.sampler not in SAMPLERS:
            raise ConfigError(f"sampler {self.sampler!r} is not one of {', '.join(SAMPLERS)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"scheduler {self.scheduler!r} is not one of {', '.join(SCHEDULERS)}")
        expect(
            "trials", self.trials, (int, str), 'a positive integer or "all"',
            lambda v: v == "all" if isinstance(v, str) else v >= 1,
        )  # fmt: skip
        if self.pareto and self.scheduler == "asha":
            raise ConfigError("--pareto (two objectives) cannot use the asha scheduler")
        if self.pareto and self.sampler not in ("nsga2", "random", "tpe"):
            raise ConfigError(f"sampler {self.sampler!r} does not support --pareto; use nsga2")

    def replace(self, **changes: Any) -> StudySpec:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["recipe"] = self.recipe.to_dict()
        data["tune"] = None if self.tune is None else self.tune.to_dict()
        return data


def _section(cls: type, where: str, table: Any) -> Any:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table, got {table!r}")
    check_keys(where, table, [f.name for f in dataclasses.fields(cls)])
    try:
        return cls(**table)
    except (TypeError, ConfigError) as err:
        raise ConfigError(f"{where}: {err}") from None


def study_from_dict(name: str, table: dict[str, Any], where: str) -> StudySpec:
    """Validate a study table (as read from TOML)."""
    check_keys(where, table, [f.name for f in dataclasses.fields(StudySpec)])
    data = dict(table)
    dataset = data.get("dataset", {})
    if isinstance(dataset, str):
        dataset = {"name": dataset}
    data["dataset"] = _section(DatasetSpec, f"{where} [dataset]", dataset)
    data["resources"] = _section(Resources, f"{where} [resources]", data.get("resources", {}))
    data["asha"] = _section(Asha, f"{where} [asha]", data.get("asha", {}))
    if "tune" in data:
        if not isinstance(data["tune"], dict):
            raise ConfigError(f"{where} [tune] must be a table, got {data['tune']!r}")
        try:
            data["tune"] = Tuning.from_dict(data["tune"])
        except ConfigError as err:
            raise ConfigError(f"{where} [tune]: {err}") from None
    data["analysis"] = _section(AnalysisPlan, f"{where} [analysis]", data.get("analysis", {}))
    try:
        data["recipe"] = Recipe.from_dict(data.get("recipe", {}))
    except ConfigError as err:
        raise ConfigError(f"{where} [recipe]: {err}") from None
    data.setdefault("name", name)
    try:
        return StudySpec(**data)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def load_spec(spec: str | Path) -> StudySpec:
    """A study file by shipped name (``digits``) or TOML path, as a :class:`StudySpec`."""
    path = resources.find("studies", spec, "study")
    return study_from_dict(path.stem, read_toml(path), str(path))


def load_study(spec: str | Path) -> StudySpec:
    """Deprecated: :func:`load_spec` (``load_study`` is Optuna's name for a stored study)."""
    warnings.warn(
        "nas_width.search.load_study is deprecated: use load_spec (it reads a study file)",
        DeprecationWarning,
        stacklevel=2,
    )
    return load_spec(spec)
