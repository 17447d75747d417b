"""The training recipe shared by every trial of a study: :class:`Recipe`.

A width study compares architectures, so everything else (optimizer, schedule, augmentation,
seed) is held fixed in one frozen, validated, JSON/TOML round-trippable record. It travels with
the study file and with every saved model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from nas_width.errors import ConfigError
from nas_width.tomlfile import key_names

__all__ = ["AUGMENTATIONS", "Augment", "Recipe"]

Augment = Literal["none", "crop", "crop-flip"]
AUGMENTATIONS: tuple[str, ...] = get_args(Augment)


def _number(name: str, value: Any, *, low: float, low_ok: bool, high: float = math.inf) -> float:
    """``value`` as a float in the interval (low, high) or [low, high); ConfigError otherwise."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = math.isfinite(value) and (value >= low if low_ok else value > low) and value < high
    if not ok:
        upper = f" and < {high:g}" if high < math.inf else ""
        bound = f"{'>=' if low_ok else '>'} {low:g}{upper}"
        raise ConfigError(f"recipe {name} must be a finite number {bound}, got {value!r}")
    return float(value)


def _integer(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"recipe {name} must be an integer >= {minimum}, got {value!r}")
    return value


@dataclass(frozen=True)
class Recipe:
    """How every candidate of a study is trained (AdamW, warm-up then cosine, cross-entropy).

    Args:
        epochs: passes over the training data.
        batch_size: images per optimizer step; the last partial batch of an epoch is kept.
        lr: AdamW peak learning rate.
        weight_decay: AdamW decoupled weight decay; biases, norm weights and 1-D parameters
            are never decayed.
        warmup_epochs: linear warm-up length in epochs (fractional allowed, at most ``epochs``);
            the learning rate then follows a cosine to 0 at the last step.
        label_smoothing: cross-entropy label smoothing of the training loss (evaluation uses 0).
        augment: ``"none"``, ``"crop"`` (random crop after zero padding of max(1, H // 8)) or
            ``"crop-flip"`` (plus horizontal flips). A no-op for 1-D signals, so one recipe
            serves image and signal data sets.
        seed: seeds the weights, the batch order and the augmentation.

    Example:
        >>> r = Recipe(epochs=5, lr=1e-3)
        >>> Recipe.from_dict(r.to_dict()) == r
        True
        >>> r.replace(augment="crop").augment
        'crop'
    """

    epochs: int = 20
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.1
    augment: Augment = "none"
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "epochs", _integer("epochs", self.epochs, 1))
        set_(self, "batch_size", _integer("batch_size", self.batch_size, 1))
        set_(self, "lr", _number("lr", self.lr, low=0, low_ok=False))
        set_(self, "weight_decay", _number("weight_decay", self.weight_decay, low=0, low_ok=True))
        warmup = _number("warmup_epochs", self.warmup_epochs, low=0, low_ok=True)
        if warmup > self.epochs:
            raise ConfigError(
                f"recipe warmup_epochs must not exceed epochs ({self.epochs}), got {warmup:g}"
            )
        set_(self, "warmup_epochs", warmup)
        smoothing = _number("label_smoothing", self.label_smoothing, low=0, low_ok=True, high=1)
        set_(self, "label_smoothing", smoothing)
        if self.augment not in AUGMENTATIONS:
            raise ConfigError(
                f"recipe augment must be one of {list(AUGMENTATIONS)}, got {self.augment!r}"
            )
        set_(self, "seed", _integer("seed", self.seed, 0))

    def replace(self, **changes: Any) -> Recipe:
        """A validated copy with ``changes`` applied; an unknown name is a ConfigError."""
        return Recipe.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """Plain ``str``/``int``/``float`` fields, ready for JSON or TOML."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        """Validate and build from a mapping; missing keys take their defaults.

        Raises:
            ConfigError: one line naming an unknown key or the bad value.
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"a recipe must be a mapping, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names, key=str)
        if unknown:
            raise ConfigError(
                f"unknown recipe key(s): {key_names(unknown)} (known: {', '.join(sorted(names))})"
            )
        return cls(**data)
