"""``nas-width export``: a trial of a stored study as JSON to train from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from nas_width.cli._options import StorageOption, StudyNameOption
from nas_width.cli._output import check_output
from nas_width.search.study import DEFAULT_STORAGE

__all__ = ["export"]


def export(
    storage: StorageOption = DEFAULT_STORAGE,
    study_name: StudyNameOption = None,
    trial: Annotated[int | None, typer.Option(help="Trial number \\[default: the best].")] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="File, or - for stdout.")] = Path(
        "best.json"
    ),
) -> None:
    """Write the best (or a chosen) trial: config, recipe, data set, budget, provenance.

    Examples:

      nas-width export -o best.json

      nas-width export --study-name digits-params-50k --trial 7 -o trial7.json
    """
    from nas_width.fileio import write_json_atomic
    from nas_width.search.export import export_trial

    if str(output) != "-":
        check_output(output)
    payload = export_trial(storage, study_name, trial)
    if str(output) == "-":
        typer.echo(json.dumps(payload, indent=2))
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output, payload)
    p = payload["provenance"]
    typer.echo(
        f"wrote {output}: trial {p['trial']} of {p['study']!r} ({p['shape']}, "
        f"val_accuracy {p['val_accuracy']:.4f}); train it with: nas-width train {output}"
    )
