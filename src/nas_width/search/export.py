"""Export a trial of a stored study as a self-contained JSON file to train from.

The file holds the MixerConfig, the training recipe, the data set, the measured budget and the
provenance (storage, study, trial number, accuracy, nas-width version), so that
``nas-width train best.json`` needs nothing else.
"""

from __future__ import annotations

from typing import Any

from nas_width.config import MixerConfig
from nas_width.errors import ConfigError, NasWidthError
from nas_width.fileio import write_json_atomic
from nas_width.search.storage import load_study

__all__ = ["export_trial", "write_json_atomic"]

MEASURED = (
    "params", "flops", "mixing_params", "mixing_flops", "connections",
    "S", "C", "m", "density_token", "density_channel",
)  # fmt: skip


def export_trial(storage: str, study_name: str | None, trial: int | None = None) -> dict[str, Any]:
    """The best COMPLETE trial (highest val_accuracy) or trial number ``trial``, as plain data."""
    from optuna.trial import TrialState

    from nas_width._version import __version__

    study = load_study(storage, study_name)
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
    attrs, study_attrs = chosen.user_attrs, study.user_attrs
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
    measured = {k: attrs.get(k) for k in MEASURED}
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
