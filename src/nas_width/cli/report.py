"""``nas-width report``: the hypothesis test of a stored study, as text, HTML and dashboard."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nas_width.cli._options import StorageOption, StudyNameOption
from nas_width.cli._output import check_output
from nas_width.errors import NasWidthError
from nas_width.schema import study_settings
from nas_width.search.study import DEFAULT_STORAGE

if TYPE_CHECKING:
    from nas_width.analysis import Analysis, TrialRecord

__all__ = ["report"]


def _per_kind(
    records: list[TrialRecord], seed: int, m_star: float | None, analysis: Analysis
) -> dict[str, Analysis]:
    from nas_width.analysis import analyze

    kinds = [s.kind for s in analysis.kinds.summaries]
    plan = analysis.primary
    return {
        k: analyze(records, seed=seed, m_star=m_star, primary=replace(plan, kind=k)) for k in kinds
    }


def _formats(static: str) -> tuple[str, ...]:
    """The formats of ``--static`` ("svg,pdf"; "none" for none), each checked."""
    from nas_width.report.static import FORMATS

    if static.strip().lower() == "none":
        return ()
    formats = tuple(dict.fromkeys(f.strip().lower() for f in static.split(",")))
    for fmt in formats:
        if fmt not in FORMATS:
            raise NasWidthError(
                f"--static {static!r}: {fmt!r} is not one of {', '.join(FORMATS)} (or none)"
            )
    return formats


def report(
    storage: StorageOption = DEFAULT_STORAGE,
    study_name: StudyNameOption = None,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The HTML report to write.")
    ] = Path("report.html"),
    figures_dir: Annotated[
        Path | None,
        typer.Option(
            "--figures",
            help="Directory of the static figures; default: beside the HTML, OUTPUT-figures.",
        ),
    ] = None,
    static: Annotated[
        str,
        typer.Option(
            help="Formats of the static figures for a paper, comma-separated (svg, pdf, png), "
            "or none.",
        ),
    ] = "svg,pdf",
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the analysis and the report path as JSON.")
    ] = False,
    save: Annotated[
        bool,
        typer.Option(
            "--save/--no-save",
            help="Save the figures and a note into the study for nas-width dashboard.",
        ),
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap and permutations.")] = 0,
    per_kind: Annotated[
        bool, typer.Option("--per-kind", help="Also test each mixing kind on its own.")
    ] = False,
) -> None:
    """Test "accuracy rises with width m = S*C at a fixed budget" on a study.

    Prints the primary test (the study file's analysis table; default: the
    Mixer's shapes) and its verdict, the secondary tests Holm-corrected, and key
    numbers (rank correlations of m with the shape means, the best S/C next to
    the theory's S = C, accuracy per mixing kind). Writes a self-contained HTML
    report (it opens with no network) with static copies of its figures beside
    it (SVG and PDF, drawn offline), and saves the figures and a note into the
    study for nas-width dashboard.

    Examples:

      nas-width report

      nas-width report -o paper/width.html --static pdf --figures paper/figures

      nas-width report --storage sqlite:///d.db --study-name d-50k -o d.html

      nas-width report --json --no-save --per-kind
    """
    from nas_width.analysis import analyze, records_from_study
    from nas_width.report import (
        build_figures,
        figure_title,
        markdown_note,
        render_html,
        save_to_study,
        study_info,
        study_m_star,
        study_primary,
        terminal_lines,
        write_text_atomic,
    )
    from nas_width.report.static import write_static
    from nas_width.search.storage import check_writable, open_study

    if seed < 0:
        raise NasWidthError(f"--seed must be a non-negative integer, got {seed}")
    formats = _formats(static)
    check_output(output)
    figures_dir = figures_dir or output.with_name(f"{output.stem}-figures")
    if formats:
        check_output(figures_dir, directory=True)
    study = open_study(storage, study_name)
    if save:  # the figures and the note go into the study: refuse what cannot take them
        check_writable(storage)
    name = study.study_name
    records = records_from_study(study)
    if not any(r.state == "COMPLETE" for r in records):
        raise NasWidthError(f"study {name!r} has no finished trial to analyze")
    m_star = study_m_star(study)
    primary = study_primary(study, records)
    # Every number, figure and kind reads the primary metric (held-out test accuracy in the
    # shipped sweeps), never the validation accuracy that chose each shape's recipe.
    everything = replace(primary, kind="all")
    grid = tuple((study_settings(study.user_attrs).get("tune") or {}).get("lr") or ())
    pooled = analyze(records, seed=seed, m_star=m_star, primary=everything, lr_grid=grid)
    if pooled.counts.used == 0:
        raise NasWidthError(
            f"study {name!r} has no finished trial with a shape and an accuracy to analyze"
        )
    records = [r.with_metric(primary.metric) for r in records]
    analysis = (  # the verdict is the primary test's
        pooled if primary.kind == "all"
        else analyze(records, seed=seed, m_star=m_star, primary=primary, lr_grid=grid)
    )  # fmt: skip
    by_kind = _per_kind(records, seed, m_star, pooled) if per_kind else None
    info = study_info(study, storage, pooled, records)
    figures = build_figures(pooled, records, info)
    path = output.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, render_html(info, analysis, figures, by_kind, pooled))
    written = write_static(figures, figures_dir.resolve(), formats) if formats else []
    if save:
        titles = [figure_title(f) for f in figures.values()]
        note = markdown_note(info, analysis, titles, by_kind, str(path), pooled)
        save_to_study(study, figures, note)
    if as_json:
        payload: dict[str, Any] = {
            "study": name,
            "storage": storage,
            **analysis.to_dict(),
            "all_kinds": pooled.to_dict(),
            "report": str(path),
            "figures": list(figures),
            "static_figures": [str(f) for f in written],
            "saved_to_study": save,
        }
        if by_kind is not None:
            payload["per_kind"] = {k: a.to_dict() for k, a in by_kind.items()}
        typer.echo(json.dumps(payload, indent=2))
        return
    for line in terminal_lines(info, analysis, by_kind, pooled if pooled is not analysis else None):
        typer.echo(line)
    typer.echo(f"wrote {path}")
    if written:
        typer.echo(f"wrote {len(written)} static figures ({', '.join(formats)}) into "
                   f"{figures_dir.resolve()}")  # fmt: skip
    if save:
        typer.echo(
            f"saved {len(figures)} figures and a note into study {name!r}; see them with: "
            f"nas-width dashboard --storage {storage}"
        )
