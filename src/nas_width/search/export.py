"""Export a trial of a stored study as a self-contained JSON file to train from, and read
such a file back.

The file holds the MixerConfig, the training recipe, the data set, the measured budget and the
provenance (storage, study, trial number, accuracy, nas-width version), so that
``nas-width train best.json`` needs nothing else. Writer and reader live together so the format
has one home.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas_width.config import MixerConfig
from nas_width.errors import ConfigError, NasWidthError
from nas_width.fileio import loads_json, write_json_atomic
from nas_width.schema import study_settings, trial_attrs
from nas_width.search.storage import open_study
from nas_width.search.study import DatasetSpec
from nas_width.tomlfile import check_keys, read_text
from nas_width.train.recipe import Recipe

__all__ = ["Exported", "export_trial", "read_export", "write_json_atomic"]

MEASURED = (
    "params", "flops", "mixing_params", "mixing_flops", "connections",
    "S", "C", "m", "density_token", "density_channel",
)  # fmt: skip


def export_trial(storage: str, study_name: str | None, trial: int | None = None) -> dict[str, Any]:
    """The best COMPLETE trial (highest val_accuracy) or trial number ``trial``, as plain data."""
    from optuna.trial import TrialState

    from nas_width._version import __version__

    study = open_study(storage, study_name)
    trials = study.get_trials(deepcopy=False)
    if trial is not None:
        chosen = next((t for t in trials if t.number == trial), None)
        if chosen is None:
            raise NasWidthError(f"study {study.study_name!r} has no trial {trial}")
        if chosen.state != TrialState.COMPLETE:
            raise NasWidthError(f"trial {trial} of {study.study_name!r} is {chosen.state.name}")
    else:
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if not complete:
            raise NasWidthError(f"study {study.study_name!r} has no finished trial to export")
        chosen = max(complete, key=lambda t: t.values[0])
    attrs, study_attrs = trial_attrs(chosen.user_attrs), study_settings(study.user_attrs)
    config = attrs.get("config")
    if not isinstance(config, dict):
        raise NasWidthError(
            f"trial {chosen.number} of {study.study_name!r} has no stored config "
            "(not a study of nas-width search?)"
        )
    try:
        MixerConfig.from_dict(config)
    except ConfigError as err:
        raise NasWidthError(
            f"trial {chosen.number} of {study.study_name!r} stores an invalid config: {err}"
        ) from None
    measured = {k: chosen.user_attrs.get(k) for k in MEASURED}
    return {
        "config": config,
        "recipe": study_attrs.get("recipe", {}),
        "dataset": study_attrs.get("dataset", {"name": "digits"}),
        "budget": {
            "spec": study_attrs.get("budget"),
            "tolerance": study_attrs.get("tolerance"),
            "measured": measured,
        },
        "provenance": {
            "storage": storage,
            "study": study.study_name,
            "trial": chosen.number,
            "shape": chosen.params.get("shape"),
            "val_accuracy": chosen.values[0],
            "space": study_attrs.get("space"),
            "space_hash": study_attrs.get("space_hash"),
            "nas_width_version": __version__,
            "searched_with": study_attrs.get("nas_width_version"),
        },
    }


@dataclass(frozen=True)
class Exported:
    """A file written by ``nas-width export``, validated: everything training needs."""

    config: MixerConfig
    recipe: Recipe
    dataset: DatasetSpec
    provenance: dict[str, Any]


def _dataset(value: Any) -> DatasetSpec:
    if value is None:
        return DatasetSpec()
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ConfigError(f"dataset must be an object, got {value!r}")
    check_keys("dataset", value, [f.name for f in dataclasses.fields(DatasetSpec)])
    return DatasetSpec(**value)


def read_export(path: Path) -> Exported:
    """Read and validate an export; whatever the file holds, errors are one-line ConfigErrors
    that name ``path``."""
    text = read_text(path)
    try:
        payload = loads_json(text)
        if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict):
            raise ConfigError("not a nas-width export (no 'config' object)")
        provenance = payload.get("provenance", {})
        if not isinstance(provenance, dict):
            raise ConfigError(f"provenance must be an object, got {provenance!r}")
        return Exported(
            config=MixerConfig.from_dict(payload["config"]),
            recipe=Recipe.from_dict(payload.get("recipe", {})),
            dataset=_dataset(payload.get("dataset")),
            provenance=provenance,
        )
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
