"""Prepare a search: validate everything it is given and solve its shapes, before any storage
is touched or Ray starts.

:func:`prepare` reads the budget, loads the space and the data set, solves C for every
candidate shape so that each meets the budget (S tokens x C channels, m = S*C), and names the
study; :class:`Prepared` carries the result and the settings the study will store
(:class:`~nas_width.schema.StudySettings`). A search that fails here has stored nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, replace
from typing import Any

from nas_width.budget import Budget, parse_budget
from nas_width.budget.solve import _human
from nas_width.config import MixerConfig
from nas_width.data import Splits, load_dataset
from nas_width.errors import BudgetError, ConfigError
from nas_width.schema import DatasetRecord, StudySettings
from nas_width.search.space import (
    Infeasible,
    SearchSpace,
    SolvedShapes,
    load_space,
    shapes_hash,
    space_size,
)
from nas_width.search.study import StudySpec

__all__ = [
    "PARETO_FRACTIONS",
    "Prepared",
    "check_local_resources",
    "default_study_name",
    "describe_shapes",
    "prepare",
]

#: A Pareto search solves the space at these fractions of the budget: a front needs cheaper
#: shapes too.
PARETO_FRACTIONS = (0.125, 0.25, 0.5, 1.0)


@dataclass
class Prepared:
    """A validated search: its spec, budget, space, data and feasible shapes."""

    spec: StudySpec
    budget: Budget
    space: SearchSpace
    data: Splits
    shapes: dict[str, MixerConfig]
    study_name: str
    solved: SolvedShapes | None = None  # the feasible shapes and the infeasible ones
    #: Per replicate seed, its own splits (a data set with ``folds``: fold = seed mod K);
    #: None: every trial trains on ``data``.
    replicates: dict[int, Splits] | None = None

    @property
    def trial_data(self) -> Splits | dict[int, Splits]:
        """What the trainable receives: the splits, or the splits of each replicate seed."""
        return self.data if self.replicates is None else self.replicates

    @property
    def infeasible(self) -> list[Infeasible]:
        """Candidate shapes that no C holds at the budget, with the reason for each."""
        return [] if self.solved is None else self.solved.infeasible

    @property
    def metrics(self) -> list[str]:
        return ["val_accuracy", "flops"] if self.spec.pareto else ["val_accuracy"]

    def study_attrs(self) -> StudySettings:
        """The settings the study stores, which ``--resume`` compares against."""
        from nas_width._version import __version__

        ds = self.spec.dataset
        return StudySettings(
            budget=str(self.budget),
            budget_metric=self.budget.metric,
            budget_value=self.budget.value,
            tolerance=self.budget.tolerance,
            space=self.space.name,
            space_hash=self.space.hash,
            space_definition=self.space.definition,
            dataset=DatasetRecord(
                name=ds.name,
                path=ds.path,
                val_fraction=ds.val_fraction,
                split_seed=ds.split_seed,
                options=ds.options,
            ),
            recipe=self.spec.recipe.to_dict(),
            tune=None if self.spec.tune is None else self.spec.tune.to_dict(),
            sampler=self.spec.sampler,
            scheduler=self.spec.scheduler,
            seed=self.spec.seed,
            pareto=self.spec.pareto,
            primary_test=dataclasses.asdict(self.spec.analysis),
            feasible=space_size(self.shapes),
            shapes_hash=shapes_hash(self.shapes),
            infeasible={i.key: i.reason for i in self.infeasible},
            nas_width_version=__version__,
        )


def default_study_name(spec: StudySpec, budget: Budget) -> str:
    """``digits-params-50k``: one study per study file and budget."""
    return f"{spec.name}-{budget.metric.replace('_', '-')}-{_human(budget.value)}"


def _pareto_shapes(space: SearchSpace, budget: Budget, data: Splits) -> SolvedShapes:
    """The space at fractions of the budget (a front needs cheaper shapes too)."""
    shapes: dict[str, MixerConfig] = {}
    infeasible: list[Infeasible] = []
    candidates = 0
    for fraction in PARETO_FRACTIONS:
        part = Budget(budget.metric, max(1, round(budget.value * fraction)), budget.tolerance)
        found = space.solve(part, data.input_shape, data.num_classes)
        suffix = f"-f{fraction:g}"
        shapes.update({k + suffix: v for k, v in found.feasible.items()})
        infeasible += [replace(i, key=i.key + suffix) for i in found.infeasible]
        candidates += found.candidates
    if not shapes:
        raise BudgetError(f"budget {budget} is infeasible for every shape of {space.name!r}")
    return SolvedShapes(shapes, infeasible, candidates)


def prepare(spec: StudySpec, budget: str | None = None, study_name: str | None = None) -> Prepared:
    """Validate the search and compute its feasible shapes (no storage touched, no Ray)."""
    text = budget or spec.budget
    if text is None:
        raise BudgetError("no budget: pass --budget (e.g. --budget 50k or --budget flops=20M)")
    spec_budget = parse_budget(text, spec.tolerance)
    space = load_space(spec.space)
    ds = spec.dataset
    data = load_dataset(
        ds.name, path=ds.path, val_fraction=ds.val_fraction, split_seed=ds.split_seed,
        **ds.options,
    )  # fmt: skip
    if spec.pareto:
        solved = _pareto_shapes(space, spec_budget, data)
    else:
        solved = space.solve(spec_budget, data.input_shape, data.num_classes)
        if not solved.feasible:
            space.shapes(spec_budget, data.input_shape, data.num_classes)  # raises, naming it
    name = study_name or default_study_name(spec, spec_budget)
    if spec.trials == "all":
        spec = spec.replace(trials=len(solved.feasible))
    replicates = _replicate_splits(spec, {cfg.seed for cfg in solved.feasible.values()})
    return Prepared(spec, spec_budget, space, data, solved.feasible, name, solved, replicates)


def _replicate_splits(spec: StudySpec, seeds: set[int]) -> dict[int, Splits] | None:
    """With a ``folds`` option (and no fixed ``fold``), each replicate seed s tests on fold
    s mod K and carves its validation with split_seed + s: repeated stratified splits, the same
    for every shape (a paired design), so the verdict rests on more than one small test set."""
    ds = spec.dataset
    if "folds" not in ds.options or "fold" in ds.options:
        return None
    folds = int(ds.options["folds"])
    return {
        s: load_dataset(ds.name, path=ds.path, val_fraction=ds.val_fraction,
                        split_seed=ds.split_seed + s, **ds.options, fold=s % folds)
        for s in sorted(seeds)
    }  # fmt: skip


def describe_shapes(prepared: Prepared) -> list[str]:
    """Where the feasible shapes lie against S = C, and each candidate left out with why: no
    shape is dropped silently."""
    lines = [f"shapes: {prepared.solved.ratio_note()}"] if prepared.solved else []
    if prepared.infeasible:
        lines.append(f"left out: {len(prepared.infeasible)} shape(s) no C can hold:")
        lines += [f"  {i.key}: {i.reason}" for i in prepared.infeasible]
    return lines


def check_local_resources(resources: Any) -> None:
    """Refuse per-trial resources this machine cannot give (a private local Ray has its CPUs
    and CUDA devices): Ray would keep such trials pending forever, silently. A cluster's
    resources are the cluster's to judge.

    Raises:
        ConfigError: naming the resource, what was asked and what the machine has.
    """
    import os

    import torch

    cpus = os.cpu_count() or 1
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if resources.cpus_per_trial > cpus:
        raise ConfigError(
            f"cpus_per_trial {resources.cpus_per_trial:g} is more than this machine's {cpus} "
            "CPUs (join a cluster with --address for more)"
        )
    if resources.gpus_per_trial > gpus:
        raise ConfigError(
            f"gpus_per_trial {resources.gpus_per_trial:g} is more than this machine's {gpus} "
            "CUDA GPUs (join a cluster with --address for more)"
        )
