"""``nas-width train``: train an exported shape on train+validation, test it, save it."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from nas_width.cli._output import check_output
from nas_width.cli._progress import LiveProgress
from nas_width.errors import ConfigError, NasWidthError
from nas_width.fileio import safe_name
from nas_width.search.export import read_export

__all__ = ["train"]


def train(
    exported: Annotated[Path, typer.Argument(metavar="BEST.json", help="From nas-width export.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Directory \\[default: runs/STUDY-tN].")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override the recipe's epochs.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda \\[default: best].")] = None,
    data_dir: Annotated[str | None, typer.Option(help="Data path (cifar, stl10, npz).")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a model already in the output.")
    ] = False,
) -> None:
    """Train the exported shape on train+validation, evaluate on test, save safetensors.

    Writes model.safetensors, config.json and metrics.json; load the model
    back with nas_width.load_model(DIR).

    Examples:

      nas-width train best.json -o runs/best

      nas-width train best.json -o runs/quick --epochs 5 --device cpu
    """
    from nas_width.data import CLASS_NAMES, load_dataset
    from nas_width.train import TrialFailed, check_data, fit, resolve_device, save_trained
    from nas_width.train.checkpoint import is_checkpoint

    export = read_export(exported)
    config, recipe, ds, provenance = export.config, export.recipe, export.dataset, export.provenance
    from nas_width.budget.closed_form import check_size

    try:
        check_size(config)  # before any data is read: an allocator error is no message
    except ConfigError as err:
        raise ConfigError(f"{exported}: {err}") from None
    if epochs is not None:  # a shorter run keeps at most its own length of warm-up
        recipe = recipe.replace(epochs=epochs, warmup_epochs=min(recipe.warmup_epochs, epochs))
    if output is None:  # the name comes from a file: never a path out of runs/
        name = f"{provenance.get('study', 'model')}-t{provenance.get('trial', 0)}"
        output = Path("runs") / safe_name(name, "model")
    check_output(output, directory=True)
    if output.is_dir() and any(output.iterdir()):
        if not is_checkpoint(output):
            raise NasWidthError(
                f"output {str(output)!r} holds other files; give a new or empty directory"
            )
        if not overwrite:
            raise NasWidthError(
                f"output {str(output)!r} holds a trained model; --overwrite replaces it"
            )
    dev = resolve_device(device)
    data = load_dataset(
        ds.name, path=data_dir or ds.path, val_fraction=ds.val_fraction,
        split_seed=ds.split_seed, **ds.options,
    )  # fmt: skip
    check_data(config, data)
    typer.echo(f"training {config.mixing} S={config.tokens} C={config.channels} on "
               f"{data.name} train+val ({len(data.train_and_val()[1])} samples), "
               f"{recipe.epochs} epochs")  # fmt: skip
    try:
        with LiveProgress("training", stderr=True) as live:
            result = fit(config, recipe, data, device=dev, final=True,
                         report=lambda r: live.epoch(r, recipe.epochs))  # fmt: skip
    except TrialFailed as err:
        raise NasWidthError(f"{exported}: training failed: {err.reason}") from None
    typer.echo(f"test loss {result.test_loss:.4f}  test acc {result.test_accuracy:.2%}",
               err=True)  # fmt: skip
    contract = {"mean": list(data.mean), "std": list(data.std),
                "input_shape": list(data.input_shape), "num_classes": data.num_classes,
                "dataset": data.name, "class_names": CLASS_NAMES.get(data.name)}  # fmt: skip
    save_trained(output, result, config, recipe, result.metrics(),
                 {"export": str(exported), "dataset": dataclasses.asdict(ds),
                  **provenance}, input_contract=contract)  # fmt: skip
    typer.echo(f"test_accuracy={result.test_accuracy:.4f}; saved to {output} "
               f"(nas_width.load_model({str(output)!r}, raw_inputs=True) takes raw "
               f"{data.name} inputs)")  # fmt: skip
