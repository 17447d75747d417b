"""Save and load a trained model as a directory of three files.

Layout of ``directory``:

- ``model.safetensors``: the full state dict, buffers included (the RP-Mixer's permutations
  and the SW-MLP's masks are buffers), every tensor contiguous and on CPU.
- ``config.json``: ``{"format": "nas-width-trained", "format_version": 1, "config":
  MixerConfig.to_dict(), "recipe": Recipe.to_dict(), "provenance": {"nas_width": ...,
  "torch": ..., "saved_at": ISO-8601 UTC, **caller's provenance}}``.
- ``metrics.json``: the caller's metrics as strict JSON (NaN and infinities become ``null``).

The three files are written into a temporary sibling directory, fsync'd, and the directory is
renamed into place (an existing model there is moved aside first and removed after), so a
model is never half-saved and never pairs new weights with an old config: a kill leaves the
old model or the new one (at worst both, beside each other as hidden ``.NAME.*`` directories).
Loading rebuilds the model with ``build_model(config)`` (which redraws the
same permutations and masks from ``config.seed``) and loads the weights strictly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from torch import nn

from nas_width.config import MixerConfig
from nas_width.errors import NasWidthError
from nas_width.fileio import dumps_json, read_json, replace_directory_atomic
from nas_width.models import build_model
from nas_width.models.normalize import Normalize
from nas_width.train.loop import FitResult
from nas_width.train.recipe import Recipe

__all__ = [
    "CONFIG_FILE",
    "FORMAT",
    "METRICS_FILE",
    "WEIGHTS_FILE",
    "CheckpointError",
    "is_checkpoint",
    "load_input_contract",
    "load_model",
    "load_trained",
    "save_trained",
]

FORMAT = "nas-width-trained"
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"


class CheckpointError(NasWidthError):
    """A saved model cannot be written or read; the message names the path and the problem."""


def _json_bytes(path: Path, what: str, value: Any) -> bytes:
    try:
        return dumps_json(value).encode()
    except TypeError as err:
        raise CheckpointError(f"{path}: {what} are not JSON-serializable: {err}") from None


def save_trained(
    directory: str | Path,
    result_or_model: FitResult | nn.Module,
    config: MixerConfig,
    recipe: Recipe,
    metrics: dict[str, Any],
    provenance: dict[str, Any] | None = None,
    input_contract: dict[str, Any] | None = None,
) -> Path:
    """Write the model, its config and recipe, and its metrics into ``directory`` (created).

    Args:
        directory: destination; existing files of the same names are replaced.
        result_or_model: a :class:`~nas_width.train.FitResult` or the trained module.
        config: the architecture the model was built from.
        recipe: how it was trained.
        metrics: JSON-serializable results (e.g. ``FitResult.metrics()``).
        provenance: extra JSON-serializable facts (study, trial, data set, git commit ...),
            merged over the automatic ``nas_width``/``torch`` versions and ``saved_at``.
        input_contract: what the model expects, timm's ``pretrained_cfg`` habit: ``mean``
            and ``std`` per input channel (the normalization of its training data),
            ``input_shape``, ``num_classes``, ``dataset`` and, where known, ``class_names``.
            :func:`load_model` with ``raw_inputs=True`` applies it.

    Returns:
        The directory as a :class:`~pathlib.Path`.
    """
    directory = Path(directory)
    model = result_or_model.model if isinstance(result_or_model, FitResult) else result_or_model
    built_from = getattr(model, "config", None)
    if isinstance(built_from, MixerConfig) and built_from != config:
        raise CheckpointError(f"{directory}: the model was built from another config than given")
    from nas_width._version import __version__

    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "recipe": recipe.to_dict(),
        "provenance": {
            "nas_width": __version__,
            "torch": torch.__version__,
            "saved_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **(provenance or {}),
        },
    }
    if input_contract is not None:
        manifest["input"] = input_contract
    config_bytes = _json_bytes(directory / CONFIG_FILE, "config and provenance", manifest)
    metrics_bytes = _json_bytes(directory / METRICS_FILE, "metrics", metrics)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    files = {WEIGHTS_FILE: safetensors.torch.save(tensors), METRICS_FILE: metrics_bytes,
             CONFIG_FILE: config_bytes}  # fmt: skip
    try:
        replace_directory_atomic(directory, files)
    except OSError as err:
        raise CheckpointError(f"{directory}: cannot write checkpoint: {err.strerror}") from None
    return directory


def is_checkpoint(directory: Path) -> bool:
    """Whether ``directory`` holds a model saved by :func:`save_trained` (and nothing else)."""
    if not directory.is_dir():
        return False
    names = {p.name for p in directory.iterdir()}
    if not names or not names <= {WEIGHTS_FILE, METRICS_FILE, CONFIG_FILE}:
        return False
    try:
        manifest = read_json(directory / CONFIG_FILE, CheckpointError)
    except CheckpointError:
        return False
    return isinstance(manifest, dict) and manifest.get("format") == FORMAT


def _read_manifest(directory: Path) -> tuple[MixerConfig, Recipe]:
    config, recipe, _ = _read_all(directory)
    return config, recipe


def _read_all(directory: Path) -> tuple[MixerConfig, Recipe, dict[str, Any] | None]:
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: no such checkpoint directory")
    path = directory / CONFIG_FILE
    manifest = read_json(path, CheckpointError, "not a nas-width checkpoint?")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a nas-width checkpoint config (no format {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        version = manifest.get("format_version")
        raise CheckpointError(f"{path}: unsupported format_version {version!r}")
    for key in ("config", "recipe"):
        if key not in manifest:
            raise CheckpointError(f"{path}: no {key!r} entry")
    try:
        config = MixerConfig.from_dict(manifest["config"])
        recipe = Recipe.from_dict(manifest["recipe"])
    except (NasWidthError, TypeError) as err:
        raise CheckpointError(f"{path}: {err}") from None
    contract = manifest.get("input")
    if contract is not None and not isinstance(contract, dict):
        raise CheckpointError(f"{path}: 'input' must be an object, got {contract!r}")
    return config, recipe, contract


def _mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str:
    """One line describing how ``found`` differs from ``expected`` (names and shapes)."""
    parts = []
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    shapes = [
        f"{k} {list(found[k].shape)} != {list(expected[k].shape)}"
        for k in expected
        if k in found and found[k].shape != expected[k].shape
    ]
    for label, names in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if names:
            more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
            parts.append(f"{label} {', '.join(names[:3])}{more}")
    return "; ".join(parts)


def _load(directory: Path, config: MixerConfig, device: str | torch.device) -> nn.Module:
    path = directory / WEIGHTS_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing (not a nas-width checkpoint?)")
    try:
        state = safetensors.torch.load_file(path)
    except Exception as err:  # safetensors raises its own Rust-side error types
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise CheckpointError(f"{path}: unreadable weights: {first}") from None
    model = build_model(config)
    problem = _mismatch(model.state_dict(), state)
    if problem:
        raise CheckpointError(f"{path}: weights do not match the config: {problem}")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def load_model(
    directory: str | Path, *, device: str | torch.device = "cpu", raw_inputs: bool = False
) -> nn.Module:
    """The saved model, rebuilt from its config, weights restored, in eval mode on ``device``.

    The model takes inputs normalized as its training data was. With ``raw_inputs=True`` it
    takes the data set's raw inputs (e.g. scikit-learn's ``load_digits().images[:, None]``,
    pixel values 0..16): the saved input contract's per-channel ``(x - mean) / std`` comes
    first (:func:`load_input_contract` gives the contract itself).

    Raises:
        CheckpointError: one line naming the path: missing directory or file, corrupt JSON,
            invalid config, weights that do not match the config, or ``raw_inputs`` for a
            model saved without an input contract.
    """
    directory = Path(directory)
    config, _, contract = _read_all(directory)
    model = _load(directory, config, device)
    if not raw_inputs:
        return model
    if not contract or "mean" not in contract or "std" not in contract:
        raise CheckpointError(f"{directory}: saved without an input contract (mean, std)")
    try:
        first = Normalize(contract["mean"], contract["std"], len(config.input_shape) - 1)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{directory / CONFIG_FILE}: bad input contract: {err}") from None
    return nn.Sequential(first.to(device), model).eval()


def load_input_contract(directory: str | Path) -> dict[str, Any] | None:
    """What the saved model expects (see :func:`save_trained`), None if saved without."""
    return _read_all(Path(directory))[2]


def load_trained(
    directory: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, MixerConfig, Recipe, dict[str, Any]]:
    """``(model, config, recipe, metrics)`` of a directory written by :func:`save_trained`.

    Raises:
        CheckpointError: as :func:`load_model`, and when ``metrics.json`` is missing or corrupt.
    """
    directory = Path(directory)
    config, recipe = _read_manifest(directory)
    metrics = read_json(directory / METRICS_FILE, CheckpointError, "not a nas-width checkpoint?")
    if not isinstance(metrics, dict):
        raise CheckpointError(f"{directory / METRICS_FILE}: expected a JSON object")
    return _load(directory, config, device), config, recipe, metrics
