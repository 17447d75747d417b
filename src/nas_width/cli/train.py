"""``nas-width train``: train an exported shape on train+validation, test it, save it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from nas_width.errors import ConfigError

__all__ = ["train"]


def _read_export(path: Path) -> dict[str, Any]:
    try:
        payload = json.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: malformed JSON at line {err.lineno}: {err.msg}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict):
        raise ConfigError(f"{path}: not a nas-width export (no 'config' object)")
    return payload


def train(
    exported: Annotated[Path, typer.Argument(metavar="BEST.json", help="From nas-width export.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Directory [default: runs/STUDY-tN].")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda [default: best].")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data path (cifar, stl10, npz).")] = None,
) -> None:
    """Train the exported shape on train+validation, evaluate on test, save safetensors.

    Writes model.safetensors, config.json and metrics.json; load the model back with
    nas_width.load_model(DIR).

    Example:

      nas-width train best.json -o runs/best
    """
    from nas_width.config import MixerConfig
    from nas_width.data import load_dataset
    from nas_width.train import Recipe, fit, save_trained

    payload = _read_export(exported)
    try:
        config = MixerConfig.from_dict(payload["config"])
        recipe = Recipe.from_dict(payload.get("recipe", {}))
    except ConfigError as err:
        raise ConfigError(f"{exported}: {err}") from None
    if epochs is not None:
        recipe = recipe.replace(epochs=epochs)
    ds = dict(payload.get("dataset") or {"name": "digits"})
    data = load_dataset(
        ds.get("name", "digits"), path=data_dir or ds.get("path"),
        val_fraction=ds.get("val_fraction", 0.2), split_seed=ds.get("split_seed", 0),
        **ds.get("options", {}),
    )  # fmt: skip
    provenance = payload.get("provenance", {})
    if output is None:
        output = Path("runs") / f"{provenance.get('study', 'model')}-t{provenance.get('trial', 0)}"
    typer.echo(f"training {config.mixing} S={config.tokens} C={config.channels} on "
               f"{data.name} train+val ({len(data.train_and_val()[1])} samples), "
               f"{recipe.epochs} epochs")  # fmt: skip
    result = fit(config, recipe, data, device=device, final=True, progress=True)
    save_trained(output, result, config, recipe, result.metrics(),
                 {"export": str(exported), "dataset": ds, **provenance})  # fmt: skip
    typer.echo(f"test_accuracy={result.test_accuracy:.4f}; saved to {output} "
               f"(nas_width.load_model({str(output)!r}))")  # fmt: skip
