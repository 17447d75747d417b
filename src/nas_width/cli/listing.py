"""``nas-width studies`` and ``nas-width trials``: what a storage holds, as Optuna's CLI lists it.

``studies`` gives one row per study (budget, space, data set, trials by state, best validation
accuracy); ``trials`` one row per trial of a study in the paper's letters (S, C, m, the mixing
kind, seed, learning rate, validation and held-out test accuracy, epochs, state), or only the
best with ``--best``. Both print a table, JSON or CSV (``--format``), and only read.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from nas_width.cli._options import StorageOption, StudyNameOption
from nas_width.errors import NasWidthError
from nas_width.schema import study_settings, trial_attrs
from nas_width.search.study import DEFAULT_STORAGE

if TYPE_CHECKING:
    import optuna

__all__ = ["studies", "trials"]

Format = Literal["table", "json", "csv"]
FORMATS = ("table", "json", "csv")

TRIAL_COLUMNS = ("number", "state", "shape", "mixing", "S", "C", "m", "seed", "lr",
                 "val_accuracy", "test_accuracy", "epochs")  # fmt: skip
STUDY_COLUMNS = ("study", "budget", "space", "dataset", "complete", "pruned", "failed",
                 "running", "best_val_accuracy")  # fmt: skip


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> str:
    """``rows`` as an aligned table, a JSON list or CSV with a header (no trailing newline)."""
    if fmt == "json":
        return json.dumps([{c: r.get(c) for c in columns} for r in rows], indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue().rstrip("\n")
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
              for row in cells]  # fmt: skip
    return "\n".join(lines)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise NasWidthError(f"--format {fmt!r} is not one of {', '.join(FORMATS)}")


def trial_row(t: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """One trial in the paper's letters (missing attributes are None)."""
    a = trial_attrs(t.user_attrs)
    return {
        "number": t.number, "state": t.state.name, "shape": t.params.get("shape"),
        "mixing": a.get("mixing"), "S": a.get("S"), "C": a.get("C"), "m": a.get("m"),
        "seed": a.get("seed"), "lr": a.get("lr"),
        "val_accuracy": t.values[0] if t.values else None,
        "test_accuracy": a.get("test_accuracy"), "epochs": a.get("epochs"),
    }  # fmt: skip


def trials(
    storage: StorageOption = DEFAULT_STORAGE,
    study_name: StudyNameOption = None,
    best: Annotated[
        bool, typer.Option("--best", help="Only the best trial (highest validation accuracy).")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
) -> None:
    """List a study's trials: S, C, m, kind, seed, learning rate, accuracies, state.

    Examples:

      nas-width trials --storage sqlite:///nas-width.db

      nas-width trials --study-name digits-params-50k --format csv > trials.csv

      nas-width trials --best --format json
    """
    from nas_width.search.storage import open_study

    _check_format(fmt)
    study = open_study(storage, study_name)
    rows = [trial_row(t) for t in study.get_trials(deepcopy=False)]
    if best:
        done = [r for r in rows if r["state"] == "COMPLETE" and r["val_accuracy"] is not None]
        if not done:
            raise NasWidthError(f"study {study.study_name!r} has no finished trial")
        rows = [max(done, key=lambda r: (r["val_accuracy"], -r["number"]))]
    typer.echo(render(rows, TRIAL_COLUMNS, fmt))


def studies(
    storage: Annotated[str, typer.Option(help="Optuna storage.")] = DEFAULT_STORAGE,
    fmt: Annotated[str, typer.Option("--format", help="table, json or csv.")] = "table",
) -> None:
    """List the studies of a storage: budget, space, data set, trials by state, best accuracy.

    Examples:

      nas-width studies

      nas-width studies --storage sqlite:///sweeps.db --format json
    """
    import optuna

    from nas_width.search.storage import StorageError, open_storage

    _check_format(fmt)
    store = open_storage(storage, create=False)
    summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
    if not summaries:
        raise StorageError(f"storage {storage!r} holds no study")
    rows = []
    for summary in summaries:
        study = optuna.load_study(study_name=summary.study_name, storage=store)
        found = study.get_trials(deepcopy=False)
        states = [t.state.name for t in found]
        values = [t.values[0] for t in found if t.state.name == "COMPLETE" and t.values]
        attrs = study_settings(summary.user_attrs)
        rows.append({
            "study": summary.study_name, "budget": attrs.get("budget"),
            "space": attrs.get("space"), "dataset": (attrs.get("dataset") or {}).get("name"),
            "complete": states.count("COMPLETE"), "pruned": states.count("PRUNED"),
            "failed": states.count("FAIL"), "running": states.count("RUNNING"),
            "best_val_accuracy": max(values) if values else None,
        })  # fmt: skip
    typer.echo(render(rows, STUDY_COLUMNS, fmt))
