"""``nas-width scaling``: how the best S/C and the best accuracy move with the budget."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from nas_width.errors import NasWidthError
from nas_width.schema import study_settings
from nas_width.search.study import DEFAULT_STORAGE

if TYPE_CHECKING:
    from nas_width.analysis.scaling import BudgetPoint, Scaling

__all__ = ["scaling"]


def _ci(value: float, ci: tuple[float, float], fmt: str) -> str:
    return f"{value:{fmt}} ({ci[0]:{fmt}} to {ci[1]:{fmt}})"


def _row(p: BudgetPoint) -> str:
    from nas_width.budget.solve import _human

    ratio = _ci(p.best_ratio, p.best_ratio_ci, ".3g")
    accuracy = _ci(p.best_accuracy, p.best_accuracy_ci, ".4f")
    if p.accuracy_source != "fitted peak":
        accuracy += " *"
    shape = f"{p.best_shape} (S={p.best_tokens}, C={p.best_channels}) {p.best_shape_mean:.4f}"
    return f"  {_human(int(p.budget)):>6}  {p.trials:>6}  {ratio:<28}{accuracy:<30}{shape}"


def _lines(result: Scaling, metric: str, predict: str | None, accuracy: str) -> list[str]:
    kind = result.mixing or "all kinds pooled"
    level = f"{float(result.settings['level'] or 0.95):.0%}"
    out = [
        f"scaling over {len(result.points)} {metric} budgets, mixing: {kind}, {accuracy} "
        f"({level} bootstrap intervals: within-budget noise)",
        f"  {'budget':>6}  {'trials':>6}  {'best S/C':<28}{'best accuracy (fitted peak)':<30}"
        "best shape, its mean",
        *(_row(p) for p in result.points),
        f"fit: log2(best S/C) = {result.ratio_intercept:+.3f} {result.ratio_slope:+.3f} "
        f"* log2(budget)  (S/C x{2**result.ratio_slope:.3g} per doubling; theory: S/C = 1 "
        "at every budget)",
        f"fit: best accuracy = {result.accuracy_intercept:+.4f} {result.accuracy_slope:+.4f} "
        "* log2(budget)  (per doubling of the budget)",
    ]
    pred = result.prediction
    if pred is None or predict is None:
        return out
    if any(p.accuracy_source != "fitted peak" for p in result.points):
        out.append("  * fewer than three S/C values: the best shape's mean (biased upward)")
    pi = "prediction interval"
    out.append(
        f"prediction at {predict}: best S/C {_ci(pred.best_ratio, pred.best_ratio_pi, '.3g')} "
        f"({level} {pi}; bootstrap {pred.best_ratio_ci[0]:.3g} to {pred.best_ratio_ci[1]:.3g}), "
        f"best accuracy {_ci(pred.best_accuracy, pred.best_accuracy_pi, '.4f')} ({pi}; "
        f"bootstrap {pred.best_accuracy_ci[0]:.4f} to {pred.best_accuracy_ci[1]:.4f})"
    )
    obs = pred.observed
    if obs is None:
        out.append(
            "  no study at that budget was given: run it and pass it to check the prediction"
        )
    else:
        inside = {True: "inside", False: "outside", None: "n/a"}
        out.append(
            f"check against {obs.study!r}: observed best S/C {obs.best_ratio:.3g} "
            f"(error x{2 ** (pred.ratio_error_log2 or 0.0):.3g}, {inside[pred.ratio_in_pi]} the "
            f"{pi}), best accuracy {obs.best_accuracy:.4f} (error "
            f"{pred.accuracy_error or 0.0:+.4f}, {inside[pred.accuracy_in_pi]} the {pi})"
        )
    return out


def scaling(
    studies: Annotated[
        list[str],
        typer.Argument(
            metavar="STUDY",
            help="Studies of one space at three budgets or more (+ the held-out one).",
        ),
    ],
    storage: Annotated[str, typer.Option(help="Optuna storage of the studies.")] = DEFAULT_STORAGE,
    predict: Annotated[
        str | None,
        typer.Option(help="Predict at this budget (e.g. flops=2M); a study there is the check."),
    ] = None,
    mixing: Annotated[
        str | None, typer.Option(help="One mixing kind (mixer, rp, sw-mlp, ...); default all.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Fit how the best S/C and the best accuracy move with the budget, and predict.

    Each study is one width sweep at one budget (nas-width search --study
    mnist1d-sweep --budget mixing_flops=100k, ...); three budgets or more are
    fitted. A study at the --predict budget is held out of the fit and checked
    against the prediction interval. Accuracy is each study's primary metric
    (held-out test accuracy for the shipped sweeps).

    Examples:

      nas-width scaling A B C D --predict mixing_flops=800k

      nas-width scaling --storage sqlite:///s.db A B C --mixing mixer --json
    """
    from nas_width.analysis import records_from_study
    from nas_width.analysis.scaling import scaling as fit_scaling
    from nas_width.budget import parse_budget
    from nas_width.kinds import KINDS
    from nas_width.search.storage import open_study

    if seed < 0:
        raise NasWidthError(f"--seed must be a non-negative integer, got {seed}")
    if mixing is not None and mixing not in KINDS:
        raise NasWidthError(f"--mixing {mixing!r} is not one of {', '.join(KINDS)}")
    metrics: dict[str, str] = {}
    accuracy: dict[str, str] = {}
    notes: list[str] = []
    data: dict[str, tuple[float, Any]] = {}
    for name in dict.fromkeys(studies):
        study = open_study(storage, name)
        attrs = study_settings(study.user_attrs)
        if "budget_metric" not in attrs or "budget_value" not in attrs:
            raise NasWidthError(f"study {name!r} records no budget: is it a nas-width study?")
        metrics[name] = str(attrs["budget_metric"])
        accuracy[name] = str(
            (attrs.get("primary_test") or {}).get("primary_metric", "val_accuracy")
        )
        records = [r.with_metric(accuracy[name]) for r in records_from_study(study)]
        data[name] = (float(attrs["budget_value"]), records)
        shapes = (attrs.get("feasible") or {}).get("shapes")
        done = sum(r.state == "COMPLETE" for r in records)
        if isinstance(shapes, int) and done < shapes:
            notes.append(f"note: study {name!r} finished {done} of its {shapes} shapes")
    for label, found in (("budget metrics", metrics), ("primary metrics", accuracy)):
        if len(set(found.values())) > 1:
            listed = ", ".join(f"{n}: {m}" for n, m in found.items())
            raise NasWidthError(f"the studies hold different {label} ({listed})")
    metric = next(iter(metrics.values()))
    at = None
    if predict is not None:
        target = parse_budget(predict)
        if target.metric != metric:
            raise NasWidthError(
                f"--predict {predict!r} is a {target.metric} budget; the studies hold {metric}"
            )
        at = float(target.value)
    try:
        result = fit_scaling(data, predict_at=at, mixing=mixing, seed=seed)
    except ValueError as err:
        raise NasWidthError(str(err)) from None
    if as_json:
        payload = {"storage": storage, "metric": metric, **dataclasses.asdict(result)}
        typer.echo(json.dumps(payload, indent=2))
        return
    for line in [*_lines(result, metric, predict, next(iter(accuracy.values()))), *notes]:
        typer.echo(line)
