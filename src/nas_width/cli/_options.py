"""The options several commands share, declared once so that their help reads the same."""

from __future__ import annotations

from typing import Annotated

import typer

__all__ = ["StorageOption", "StudyNameOption"]

#: ``--storage``: an Optuna storage URL (sqlite:///, postgresql://, journal:).
StorageOption = Annotated[str, typer.Option("--storage", help="Optuna storage of the study.")]

#: ``--study-name``: which study of the storage; needed only when it holds several.
StudyNameOption = Annotated[
    str | None,
    typer.Option("--study-name", help="Study in the storage (needed if it holds several)."),
]
