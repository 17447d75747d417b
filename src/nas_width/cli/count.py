"""``nas-width count``: measure a config with fvcore, optionally solving C for a budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from nas_width.budget import DEFAULT_TOLERANCE, Budget, Measurement, measure, parse_budget, solve
from nas_width.budget.closed_form import check_size
from nas_width.config import MIXING_KINDS, MixerConfig
from nas_width.errors import ConfigError
from nas_width.models import get_config

__all__ = ["count"]

_SHAPE_HELP = "comma-separated integers, e.g. 3,32,32"
_KIND_NAMES = " or ".join([", ".join(MIXING_KINDS[:-1]), MIXING_KINDS[-1]])  # "a, b or c"


def _int_tuple(option: str, text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ConfigError(f"{option} must be {_SHAPE_HELP}, got {text!r}") from None
    return values


def _read_config(path: Path) -> MixerConfig:
    """A MixerConfig JSON file, or the config inside a ``nas-width export`` file."""
    from nas_width.fileio import loads_json
    from nas_width.search.export import read_export
    from nas_width.tomlfile import read_text

    try:
        payload = loads_json(read_text(path))
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    if isinstance(payload, dict) and isinstance(payload.get("config"), dict):
        return read_export(path).config
    return MixerConfig.load(path)


def _base_config(path: Path | None, model: str | None, fields: dict[str, Any]) -> MixerConfig:
    if path is not None and model is not None:
        raise ConfigError("give a CONFIG file or --model, not both")
    if path is not None:
        base = _read_config(path).to_dict()
    elif model is not None:
        base = get_config(model).to_dict()
    else:
        base = {"channels": 1}
    base.update({k: v for k, v in fields.items() if v is not None})
    return MixerConfig.from_dict(base)


def _row(label: str, whole: str, mixing: str = "") -> str:
    return f"  {label:<22}{whole:>16}{mixing:>16}"


def render(config: MixerConfig, result: Measurement, budget: Budget | None) -> str:
    """The human-readable table."""
    S, C = result.tokens, result.channels
    lines = [
        f"{config.mixing}: S={S} tokens x C={C} channels, m = S*C = {result.width:,}, "
        f"depth {config.depth}, gamma_token {config.gamma_token:g} (h={config.token_hidden}), "
        f"gamma_channel {config.gamma_channel:g} (h={config.channel_hidden})",
        _row("", "whole model", "mixing layers"),
        _row("parameters", f"{result.params:,}", f"{result.mixing_params:,}"),
        _row("FLOPs/sample (fvcore)", f"{result.flops:,}", f"{result.mixing_flops:,}"),
        _row("wide-MLP connections", "", f"{result.connections:,}"),
        f"  density: token {result.density_token:.4g} (1/C = {1 / C:.4g}), "
        f"channel {result.density_channel:.4g} (1/S = {1 / S:.4g})",
    ]
    if budget is not None:
        used = getattr(result, budget.metric)
        lines.append(
            f"  budget {budget} (+/-{budget.tolerance:.0%}): {used:,} used "
            f"({budget.error(result):+.2%}), C solved = {C}"
        )
    return "\n".join(lines)


def count(
    config_file: Annotated[
        Path | None,
        typer.Argument(
            metavar="CONFIG.json", help="JSON file of MixerConfig fields, or a nas-width export."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="A registered variant instead of a file, e.g. mixer_b16.")
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(help="Solve C for this budget: 50k (params), flops=20M, mixing_flops=1G."),
    ] = None,
    tolerance: Annotated[
        float, typer.Option(help="Relative tolerance of the budget.")
    ] = DEFAULT_TOLERANCE,
    input_shape: Annotated[str | None, typer.Option(help=f"C,H,W or C,L; {_SHAPE_HELP}.")] = None,
    patch: Annotated[str | None, typer.Option(help="Patch size, e.g. 4,4 or 4,2 or 5.")] = None,
    channels: Annotated[int | None, typer.Option(help="C (ignored with --budget).")] = None,
    depth: Annotated[int | None, typer.Option(help="Number of Mixer blocks.")] = None,
    gamma_token: Annotated[float | None, typer.Option(help="Token-MLP expansion.")] = None,
    gamma_channel: Annotated[float | None, typer.Option(help="Channel-MLP expansion.")] = None,
    mixing: Annotated[str | None, typer.Option(help=f"{_KIND_NAMES}.")] = None,
    num_classes: Annotated[int | None, typer.Option(help="Outputs of the head.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of permutations and masks.")] = None,
    density: Annotated[float | None, typer.Option(help="SW-MLP mask density.")] = None,
    space: Annotated[
        str | None,
        typer.Option(
            help="Count every shape of this search space at --budget instead (a shipped name, "
            "a TOML file or module:function); needs --input-shape."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Count parameters and FLOPs (fvcore) of a Mixer config; with --budget, solve C first.

    Examples:

      nas-width count examples/digits_mixer.json

      nas-width count examples/digits_mixer.json --budget 50k --mixing rp

      nas-width count --model mixer_b16 --json

      nas-width count --input-shape 3,32,32 --patch 4,4 --budget flops=20M

      nas-width count --space mixer --input-shape 1,8,8 --budget 50k
    """
    if space is not None:
        _count_space(space, budget, tolerance, input_shape, num_classes, as_json)
        return
    fields: dict[str, Any] = {
        "input_shape": _int_tuple("--input-shape", input_shape) if input_shape else None,
        "patch": _int_tuple("--patch", patch) if patch else None,
        "channels": channels,
        "depth": depth,
        "gamma_token": gamma_token,
        "gamma_channel": gamma_channel,
        "mixing": mixing,
        "num_classes": num_classes,
        "seed": seed,
        "density": density,
    }
    config = _base_config(config_file, model, fields)
    spec = parse_budget(budget, tolerance) if budget is not None else None
    if spec is not None:
        config = solve(config, spec)
    check_size(config)
    result = measure(config)
    if as_json:
        payload: dict[str, Any] = {**result.to_dict(), "config": config.to_dict()}
        if spec is not None:
            payload["budget"] = {
                "metric": spec.metric,
                "value": spec.value,
                "tolerance": spec.tolerance,
                "relative_error": spec.error(result),
            }
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(render(config, result, spec))


def _count_space(
    name: str,
    budget: str | None,
    tolerance: float,
    input_shape: str | None,
    num_classes: int | None,
    as_json: bool,
) -> None:
    """Every candidate of a space at a budget: the solved shapes, then those left out with the
    solver's reason (the same list ``nas-width search`` prints before its trials)."""
    from nas_width.budget.closed_form import closed_form
    from nas_width.search.space import load_space

    if budget is None or input_shape is None:
        raise ConfigError("--space needs --budget and --input-shape")
    spec = parse_budget(budget, tolerance)
    shape = _int_tuple("--input-shape", input_shape)
    solved = load_space(name).solve(spec, shape, num_classes or 10)
    rows = []
    for key, cfg in solved.feasible.items():
        counts = closed_form(cfg)
        rows.append({
            "shape": key, "S": cfg.tokens, "C": cfg.channels, "D_S": cfg.token_hidden,
            "D_C": cfg.channel_hidden, "m": cfg.width, "S_over_C": cfg.tokens / cfg.channels,
            spec.metric: getattr(counts, spec.metric), "error": spec.error(counts),
        })  # fmt: skip
    left_out = {i.key: i.reason for i in solved.infeasible}
    if as_json:
        payload = {"budget": str(spec), "tolerance": spec.tolerance, "shapes": rows,
                   "left_out": left_out, "note": solved.ratio_note()}  # fmt: skip
        typer.echo(json.dumps(payload, indent=2))
        return
    typer.echo(f"{len(rows)} shape(s) at budget {spec} (+/-{spec.tolerance:.0%}); "
               f"{solved.ratio_note()}")  # fmt: skip
    typer.echo(f"  {'shape':<36}{'S':>5}{'C':>6}{'D_S':>6}{'D_C':>6}{'S/C':>8}{'error':>9}")
    for r in rows:
        typer.echo(
            f"  {r['shape']:<36}{r['S']:>5}{r['C']:>6}{r['D_S']:>6}{r['D_C']:>6}"
            f"{r['S_over_C']:>8.3g}{r['error']:>+9.2%}"
        )
    if left_out:
        typer.echo(f"left out: {len(left_out)} shape(s) no C can hold:")
        for key, reason in left_out.items():
            typer.echo(f"  {key}: {reason}")
