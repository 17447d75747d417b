"""``nas-width search``: the main job. Ray Tune runs trials, Optuna stores the study."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from nas_width.search.study import DEFAULT_STORAGE, DatasetSpec, Resources, StudySpec, load_study

__all__ = ["search"]


def _overrides(spec: StudySpec, **options: Any) -> StudySpec:
    """Command-line options over the study file (``None`` = keep the file's value)."""
    changes = {k: v for k, v in options.items() if v is not None}
    recipe = spec.recipe
    if "epochs" in changes:
        recipe = recipe.replace(epochs=changes.pop("epochs"))
    if "seed" in changes:
        recipe = recipe.replace(seed=changes["seed"])
    dataset: DatasetSpec = spec.dataset
    if "data_dir" in changes:
        dataset = DatasetSpec(**{**dataset.__dict__, "path": changes.pop("data_dir")})
    names = ("cpus_per_trial", "gpus_per_trial", "max_concurrent")
    res: dict[str, Any] = {k: changes.pop(k) for k in names if k in changes}
    resources = Resources(**{**spec.resources.__dict__, **res})
    return spec.replace(recipe=recipe, dataset=dataset, resources=resources, **changes)


def _describe(best: dict[str, Any], metric: str) -> str:
    return (
        f"best: trial {best['trial']} {best['shape']}\n"
        f"  S={best['S']} x C={best['C']}  m={best['m']:,}  mixing={best['mixing']}  "
        f"depth={best['depth']}  gamma_token={best['gamma_token']:g}  "
        f"gamma_channel={best['gamma_channel']:g}\n"
        f"  val_accuracy={best['val_accuracy']:.4f}  {metric}={best['budget_used']:,} "
        f"({best['budget_error']:+.2%} of the budget)"
    )


def search(
    budget: Annotated[
        str | None,
        typer.Option(help="The budget every shape is held to: 50k (params), flops=20M, ..."),
    ] = None,
    study: Annotated[str, typer.Option(help="Shipped study name or a TOML file.")] = "digits",
    space: Annotated[str | None, typer.Option(help="Space name, TOML file or mod:fn.")] = None,
    trials: Annotated[int | None, typer.Option(help="Finished trials to reach.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs per trial.")] = None,
    sampler: Annotated[str | None, typer.Option(help="tpe, random, grid, gp, nsga2.")] = None,
    scheduler: Annotated[str | None, typer.Option(help="none or asha.")] = None,
    storage: Annotated[
        str | None, typer.Option(help=f"Optuna storage [default: {DEFAULT_STORAGE}].")
    ] = None,
    study_name: Annotated[
        str | None, typer.Option(help="Name in the storage [default: STUDY-METRIC-VALUE].")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the stored study.")] = False,
    pareto: Annotated[
        bool | None, typer.Option("--pareto", help="Accuracy vs FLOPs, budget as ceiling.")
    ] = None,
    address: Annotated[str | None, typer.Option(help="Join this Ray cluster.")] = None,
    cpus_per_trial: Annotated[float | None, typer.Option(help="CPUs per trial.")] = None,
    gpus_per_trial: Annotated[float | None, typer.Option(help="GPUs per trial (0.25 ok).")] = None,
    max_concurrent: Annotated[int | None, typer.Option(help="Trials at once.")] = None,
    seed: Annotated[int | None, typer.Option(help="Sampler and training seed.")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data path (cifar, stl10, npz).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Search the shapes of a space at a fixed budget and store the study.

    Examples:

      nas-width search --budget 50k

      nas-width search --budget flops=2M --study mnist1d --trials 24

      nas-width search --budget 50k --resume

      nas-width search --budget flops=5M --pareto --sampler nsga2
    """
    from nas_width.search.runner import prepare, run_search

    spec = _overrides(
        load_study(study), space=space, trials=trials, epochs=epochs, sampler=sampler,
        scheduler=scheduler, storage=storage, pareto=pareto, cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial, max_concurrent=max_concurrent, seed=seed,
        data_dir=data_dir,
    )  # fmt: skip
    prepared = prepare(spec, budget, study_name)
    echo = (lambda _: None) if as_json else typer.echo
    try:
        outcome = run_search(prepared, resume=resume, address=address, echo=echo)
    except KeyboardInterrupt:
        typer.echo(
            f"interrupted: the study is in {spec.storage}; continue it with "
            f"nas-width search --study {study} --budget {prepared.budget} --resume",
            err=True,
        )
        raise typer.Exit(130) from None
    if as_json:
        typer.echo(json.dumps(outcome.__dict__, indent=2, default=str))
        return
    states = ", ".join(f"{n.lower()} {c}" for n, c in outcome.states.items() if c)
    typer.echo(f"study {outcome.study_name!r}: {states} ({outcome.seconds:.0f}s)")
    if outcome.states.get("RUNNING"):  # Ray stopped on Ctrl-C and returned
        typer.echo(
            f"stopped early: {outcome.states['RUNNING']} trial(s) did not finish; continue with "
            f"nas-width search --study {study} --budget {prepared.budget} --resume",
            err=True,
        )
    if outcome.best is None:
        typer.echo("no trial finished its full recipe")
    else:
        typer.echo(_describe(outcome.best, prepared.budget.metric))
    for row in outcome.front:
        typer.echo(f"  front: flops={row['flops']:,} val_accuracy={row['val_accuracy']:.4f} "
                   f"{row['shape']}")  # fmt: skip
    typer.echo(f"dashboard: nas-width dashboard --storage {spec.storage}")
    typer.echo(
        f"export:    nas-width export --storage {spec.storage} "
        f"--study-name {outcome.study_name} -o best.json"
    )
