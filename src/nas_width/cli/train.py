"""``nas-width train``: train an exported shape on train+validation, test it, save it."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from nas_width.cli._output import check_output
from nas_width.config import MixerConfig
from nas_width.errors import ConfigError, NasWidthError
from nas_width.fileio import loads_json, safe_name
from nas_width.search.study import DatasetSpec
from nas_width.tomlfile import check_keys, read_text
from nas_width.train.recipe import Recipe

__all__ = ["Exported", "read_export", "train"]


@dataclass(frozen=True)
class Exported:
    """A file written by ``nas-width export``, validated: everything training needs."""

    config: MixerConfig
    recipe: Recipe
    dataset: DatasetSpec
    provenance: dict[str, Any]


def _dataset(value: Any) -> DatasetSpec:
    if value is None:
        return DatasetSpec()
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise ConfigError(f"dataset must be an object, got {value!r}")
    check_keys("dataset", value, [f.name for f in dataclasses.fields(DatasetSpec)])
    return DatasetSpec(**value)


def read_export(path: Path) -> Exported:
    """Read and validate an export; whatever the file holds, errors are one-line ConfigErrors
    that name ``path``."""
    text = read_text(path)
    try:
        payload = loads_json(text)
        if not isinstance(payload, dict) or not isinstance(payload.get("config"), dict):
            raise ConfigError("not a nas-width export (no 'config' object)")
        provenance = payload.get("provenance", {})
        if not isinstance(provenance, dict):
            raise ConfigError(f"provenance must be an object, got {provenance!r}")
        return Exported(
            config=MixerConfig.from_dict(payload["config"]),
            recipe=Recipe.from_dict(payload.get("recipe", {})),
            dataset=_dataset(payload.get("dataset")),
            provenance=provenance,
        )
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


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

    Writes model.safetensors, config.json and metrics.json; load the model back with
    nas_width.load_model(DIR).

    Example:

      nas-width train best.json -o runs/best
    """
    from nas_width.data import CLASS_NAMES, load_dataset
    from nas_width.train import TrialFailed, check_data, fit, resolve_device, save_trained
    from nas_width.train.checkpoint import is_checkpoint

    export = read_export(exported)
    config, recipe, ds, provenance = export.config, export.recipe, export.dataset, export.provenance
    from nas_width.cli.count import check_size

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
        result = fit(config, recipe, data, device=dev, final=True, progress=True)
    except TrialFailed as err:
        raise NasWidthError(f"{exported}: training failed: {err.reason}") from None
    contract = {"mean": list(data.mean), "std": list(data.std),
                "input_shape": list(data.input_shape), "num_classes": data.num_classes,
                "dataset": data.name, "class_names": CLASS_NAMES.get(data.name)}  # fmt: skip
    save_trained(output, result, config, recipe, result.metrics(),
                 {"export": str(exported), "dataset": dataclasses.asdict(ds),
                  **provenance}, input_contract=contract)  # fmt: skip
    typer.echo(f"test_accuracy={result.test_accuracy:.4f}; saved to {output} "
               f"(nas_width.load_model({str(output)!r}, raw_inputs=True) takes raw "
               f"{data.name} inputs)")  # fmt: skip
