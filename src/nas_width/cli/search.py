"""``nas-width search``: the main job. Ray Tune runs trials, Optuna stores the study."""

from __future__ import annotations

import json
import shlex
from typing import Annotated, Any

import typer

from nas_width.cli._progress import LiveProgress
from nas_width.search.study import (
    DEFAULT_MAX_FAILURES,
    DEFAULT_STORAGE,
    DatasetSpec,
    Resources,
    StudySpec,
    load_spec,
)

__all__ = ["search"]

#: Exit code of a search stopped by ``--max-failures`` (2 is bad input, 130 Ctrl-C).
EXIT_FAILURES = 3
#: Exit code of a search that Ray Tune gave up on (its study is consistent: resume it).
EXIT_RAY = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, as a shell reports it


def _overrides(spec: StudySpec, **options: Any) -> StudySpec:
    """Command-line options over the study file (``None`` = keep the file's value)."""
    changes = {k: v for k, v in options.items() if v is not None}
    recipe = spec.recipe
    if "epochs" in changes:
        epochs = changes.pop("epochs")
        warmup = recipe.warmup_epochs
        if isinstance(epochs, int) and 0 < epochs < warmup:  # the file's warm-up, scaled down
            warmup = warmup * epochs / recipe.epochs  # keeps its share of the schedule
        recipe = recipe.replace(epochs=epochs, warmup_epochs=warmup)
    if "seed" in changes:
        recipe = recipe.replace(seed=changes["seed"])
    dataset: DatasetSpec = spec.dataset
    if "data_dir" in changes:
        dataset = DatasetSpec(**{**dataset.__dict__, "path": changes.pop("data_dir")})
    names = ("cpus_per_trial", "gpus_per_trial", "max_concurrent")
    res: dict[str, Any] = {k: changes.pop(k) for k in names if k in changes}
    resources = Resources(**{**spec.resources.__dict__, **res})
    return spec.replace(recipe=recipe, dataset=dataset, resources=resources, **changes)


def _resume_command(options: dict[str, Any], resume: bool = True) -> str:
    """The command that continues this search: the options it was given, plus ``--resume``
    (without it: the same command, for a search stopped before its study existed)."""
    words = ["nas-width", "search"]
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if value is None or value is False:
            continue
        words += [flag] if value is True else [flag, str(value)]
    return shlex.join([*words, "--resume"] if resume else words)


def _describe(best: dict[str, Any], metric: str) -> str:
    hidden = (
        f"  D_S={best['hidden_token']}  D_C={best['hidden_channel']}"
        if best.get("hidden_token") is not None
        else ""
    )  # stored since the solver may move the hidden widths
    return (
        f"best: trial {best['trial']} {best['shape']}\n"
        f"  S={best['S']} x C={best['C']}  m={best['m']:,}  mixing={best['mixing']}  "
        f"depth={best['depth']}  gamma_token={best['gamma_token']:g}  "
        f"gamma_channel={best['gamma_channel']:g}{hidden}\n"
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
        str | None, typer.Option(help="Optuna storage.", show_default=DEFAULT_STORAGE)
    ] = None,
    study_name: Annotated[
        str | None, typer.Option(help="Name in the storage.", show_default="STUDY-METRIC-VALUE")
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
    max_failures: Annotated[
        int | None,
        typer.Option(
            help="Stop the search once this many trials in a row failed; 0 never stops.",
            show_default=f"{DEFAULT_MAX_FAILURES}, or the study's max_failures",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Search the shapes of a space at a fixed budget and store the study.

    A trial that fails (an exception, a NaN loss, out of memory) ends FAIL
    with its reason and the search goes on; Ctrl-C stops it cleanly and prints
    the command that continues it. Only one search runs a study at a time: a
    second one is refused while the first is alive.

    Exit codes: 0 done, 2 bad input (or the study is in use), 3 stopped by
    --max-failures, 4 Ray failed (the study is kept consistent), 130
    interrupted (Ctrl-C), 143 terminated (SIGTERM: stopped as Ctrl-C does).

    Examples:

      nas-width search --budget 50k

      nas-width search --budget flops=2M --study mnist1d --trials 24

      nas-width search --budget 50k --resume

      nas-width search --budget flops=5M --pareto --sampler nsga2
    """
    from nas_width.search.runner import (
        RayFailed,
        SearchInterrupted,
        Terminated,
        TooManyFailures,
        prepare,
        run_search,
    )

    given = {
        "study": study, "budget": budget, "space": space, "trials": trials, "epochs": epochs,
        "sampler": sampler, "scheduler": scheduler, "storage": storage, "study_name": study_name,
        "pareto": pareto, "address": address, "cpus_per_trial": cpus_per_trial,
        "gpus_per_trial": gpus_per_trial, "max_concurrent": max_concurrent, "seed": seed,
        "data_dir": data_dir, "max_failures": max_failures,
    }  # fmt: skip
    spec = _overrides(
        load_spec(study), space=space, trials=trials, epochs=epochs, sampler=sampler,
        scheduler=scheduler, storage=storage, pareto=pareto, cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial, max_concurrent=max_concurrent, seed=seed,
        data_dir=data_dir, max_failures=max_failures,
    )  # fmt: skip
    again = _resume_command(given)
    live = LiveProgress("search", live=False if as_json else None)
    echo = (lambda _: None) if as_json else live.echo
    try:
        with live:  # on a terminal a bar from the start; elsewhere the lines only
            live.stage(f"preparing: {spec.dataset.name}, C solved for each shape (fvcore)")
            try:
                prepared = prepare(spec, budget, study_name)
            except KeyboardInterrupt as stop:  # no study yet: the plain command runs it again
                stop.study_opened = False  # type: ignore[attr-defined]
                raise
            live.stage("starting: the study and Ray")
            outcome = run_search(prepared, resume=resume, address=address, echo=echo,
                                 watch=live.search)  # fmt: skip
    except SearchInterrupted as stop:
        typer.echo(f"{stop}\ncontinue with: {again}", err=True)
        raise typer.Exit(128 + stop.signum) from None
    except TooManyFailures as stop:
        typer.echo(
            f"nas-width: error: {stop}; fix the cause or raise --max-failures (0: never stop), "
            f"then continue with: {again}",
            err=True,
        )
        raise typer.Exit(EXIT_FAILURES) from None
    except RayFailed as stop:
        typer.echo(f"nas-width: error: {stop}; continue with: {again}", err=True)
        raise typer.Exit(EXIT_RAY) from None
    except KeyboardInterrupt as stop:  # before any trial started
        if not resume and not getattr(stop, "study_opened", True):  # no study yet: run it again
            again = _resume_command(given, resume=False)
        typer.echo(f"interrupted; continue with: {again}", err=True)
        code = EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
        raise typer.Exit(code) from None
    if as_json:
        typer.echo(json.dumps(outcome.__dict__, indent=2, default=str))
        return
    states = ", ".join(f"{n.lower()} {c}" for n, c in outcome.states.items() if c)
    typer.echo(f"study {outcome.study_name!r}: {states} ({outcome.seconds:.0f}s)")
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
