"""The one description of an architecture: :class:`MixerConfig`.

The search space produces it, the budget measures it, :func:`~nas_width.build_model` consumes
it and checkpoints store it as JSON. Shapes use the paper's letters (Hayase & Karakida 2024):
S tokens (patches), C channels, effective width m = S*C, expansion factors gamma.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from nas_width.errors import ConfigError
from nas_width.fileio import loads_json
from nas_width.kinds import KINDS, kind
from nas_width.tomlfile import key_names, read_text

__all__ = ["MIXING_KINDS", "MixerConfig", "MixingKind"]

#: A mixing kind's name, a key of :data:`nas_width.kinds.KINDS`. A ``str``, not a ``Literal``:
#: kinds are registered at run time (:func:`nas_width.kinds.register_kind`), which a type
#: checker cannot see; ``MixerConfig`` checks the name against the registry instead.
MixingKind: TypeAlias = str
#: The kinds registered when nas_width was imported, in order (kept for the public API; code
#: that must see kinds registered later reads :data:`nas_width.kinds.KINDS`).
MIXING_KINDS: tuple[str, ...] = tuple(KINDS)
SEED_LIMIT = 1 << 32


def _as_int_tuple(name: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,)
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{name} must be a non-empty list of integers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{name} must hold positive integers, got {value!r}")
        out.append(v)
    return tuple(out)


def _positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


#: The largest expansion factor gamma accepted: Mixers use 0.5 to 4; far beyond, round(gamma*S)
#: overflows long before a model could be built.
MAX_GAMMA = 1024.0


def _positive_float(name: str, value: Any, high: float = math.inf) -> float:
    what = f"a positive number{f' at most {high:g}' if high < math.inf else ''}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be {what}, got {value!r}")
    if not math.isfinite(value) or value <= 0 or value > high:
        raise ConfigError(f"{name} must be {what}, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class MixerConfig:
    """A Mixer-family classifier, frozen, hashable and JSON round-trippable.

    Args:
        input_shape: ``(C_in, H, W)`` for images or ``(C_in, L)`` for 1-D signals.
        patch: patch size per spatial axis, ``(p_h, p_w)`` (rectangular allowed) or ``(p,)``.
            Every spatial size must be divisible by its patch size.
        channels: C, the channels of the residual stream (the solver's free variable).
        depth: number of Mixer blocks.
        gamma_token: expansion of the token-mixing MLP; its hidden width is round(gamma*S).
        gamma_channel: expansion of the channel-mixing MLP; hidden width round(gamma*C).
        mixing: member of the permuted-Kronecker family, a registered kind
            (:mod:`nas_width.kinds`): ``"mixer"`` (identity and commutation permutations),
            ``"rp"`` (random permutations, the RP-Mixer), ``"monarch"`` (untied blocks) or
            ``"sw-mlp"`` (the dense wide MLP with a static random mask).
        num_classes: outputs of the linear head.
        seed: seeds the RP-Mixer's permutations and the SW-MLP's masks (not the weights);
            0 <= seed < 2**32.
        density: SW-MLP only: mask density of both sub-layers. ``None`` matches the Mixer's
            densities, 1/C for the token-like and 1/S for the channel-like sub-layer.
        hidden_token: the token-mixing MLP's hidden width D_S when it is not round(gamma*S).
            The budget solver sets it (within 10% of gamma*S) where whole numbers of channels
            alone step over the budget; ``None`` otherwise.
        hidden_channel: likewise D_C for the channel-mixing MLP (``None``: round(gamma*C)).

    Derived: ``tokens`` (S), ``width`` (m = S*C) and the two hidden widths.

    Example:
        >>> cfg = MixerConfig(input_shape=(1, 8, 8), patch=(2, 2), channels=16, num_classes=10)
        >>> cfg.tokens, cfg.width
        (16, 256)
    """

    input_shape: tuple[int, ...]
    patch: tuple[int, ...]
    channels: int
    depth: int = 2
    gamma_token: float = 2.0
    gamma_channel: float = 2.0
    mixing: MixingKind = "mixer"
    num_classes: int = 10
    seed: int = 0
    density: float | None = field(default=None)
    hidden_token: int | None = None
    hidden_channel: int | None = None

    def __post_init__(self) -> None:
        shape = _as_int_tuple("input_shape", self.input_shape)
        if len(shape) not in (2, 3):
            raise ConfigError(
                f"input_shape must be (C, H, W) or (C, L), got {list(self.input_shape)!r}"
            )
        patch = _as_int_tuple("patch", self.patch)
        spatial = shape[1:]
        if len(patch) == 1 and len(spatial) == 2:
            patch = (patch[0], patch[0])
        if len(patch) != len(spatial):
            raise ConfigError(
                f"patch {list(patch)!r} does not match the {len(spatial)} spatial axes "
                f"of input_shape {list(shape)!r}"
            )
        for size, p in zip(spatial, patch, strict=True):
            if size % p:
                raise ConfigError(
                    f"patch {list(patch)!r} does not divide input_shape {list(shape)!r}"
                )
        spec = kind(self.mixing)
        set_ = object.__setattr__
        set_(self, "input_shape", shape)
        set_(self, "patch", patch)
        set_(self, "channels", _positive_int("channels", self.channels))
        set_(self, "depth", _positive_int("depth", self.depth))
        set_(self, "gamma_token", _positive_float("gamma_token", self.gamma_token, MAX_GAMMA))
        set_(self, "gamma_channel", _positive_float("gamma_channel", self.gamma_channel, MAX_GAMMA))
        set_(self, "num_classes", _positive_int("num_classes", self.num_classes))
        set_(self, "seed", _positive_int("seed", self.seed, minimum=0))
        if self.seed >= SEED_LIMIT:  # permutation generators are seeded with seed * 1_000_003
            raise ConfigError(f"seed must be an integer in [0, 2**32), got {self.seed}")
        if self.density is not None:
            density = _positive_float("density", self.density)
            if density > 1 or not spec.takes_density:
                takers = " or ".join(k.name for k in KINDS.values() if k.takes_density)
                raise ConfigError(
                    f"density must be in (0, 1] and only with {takers}, got {density}"
                )
            set_(self, "density", density)
        for name in ("hidden_token", "hidden_channel"):
            if getattr(self, name) is not None:
                set_(self, name, _positive_int(name, getattr(self, name)))

    # --- derived shape --------------------------------------------------------------------
    @property
    def grid(self) -> tuple[int, ...]:
        """Patch grid per spatial axis; S is its product."""
        return tuple(n // p for n, p in zip(self.input_shape[1:], self.patch, strict=True))

    @property
    def tokens(self) -> int:
        """S, the number of tokens (patches)."""
        return math.prod(self.grid)

    @property
    def width(self) -> int:
        """m = S*C, the effective width of the equivalent wide MLP."""
        return self.tokens * self.channels

    @property
    def patch_dim(self) -> int:
        """Inputs of the patch embedding: C_in times the patch area."""
        return self.input_shape[0] * math.prod(self.patch)

    @property
    def token_hidden(self) -> int:
        """Hidden width D_S of the token-mixing MLP: ``hidden_token``, else round(gamma_S*S)."""
        if self.hidden_token is not None:
            return self.hidden_token
        return max(1, round(self.gamma_token * self.tokens))

    @property
    def channel_hidden(self) -> int:
        """Hidden width D_C of the channel-mixing MLP: ``hidden_channel``, else
        round(gamma_C*C)."""
        return self.channel_hidden_at(self.channels)

    def channel_hidden_at(self, channels: int) -> int:
        """D_C this config would have with ``channels`` channels (the solver's trial C)."""
        if self.hidden_channel is not None:
            return self.hidden_channel
        return max(1, round(self.gamma_channel * channels))

    # --- (de)serialisation ------------------------------------------------------------------
    def replace(self, **changes: Any) -> MixerConfig:
        """A copy with ``changes`` applied and validated."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready fields (tuples become lists); hidden widths only where set, so a
        config that never needed them reads as it did before they existed."""
        out = dataclasses.asdict(self)
        for name in ("hidden_token", "hidden_channel"):
            if out[name] is None:
                del out[name]
        out["input_shape"] = list(self.input_shape)
        out["patch"] = list(self.patch)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MixerConfig:
        """Validate and build from a mapping; unknown or missing keys are named in the error."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"a config must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names, key=str)
        if unknown:
            raise ConfigError(f"unknown config key(s): {key_names(unknown)}")
        required = {
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        }
        missing = sorted(required - set(data))
        if missing:
            raise ConfigError(f"missing config key(s): {', '.join(missing)}")
        return cls(**data)

    def to_json(self, **kwargs: Any) -> str:
        return json.dumps(self.to_dict(), **kwargs)

    @classmethod
    def from_json(cls, text: str) -> MixerConfig:
        """Validate and build from JSON text; any malformed text is a one-line ConfigError."""
        return cls.from_dict(loads_json(text))

    @classmethod
    def load(cls, path: str | Path) -> MixerConfig:
        """Read a JSON file of MixerConfig fields."""
        path = Path(path)
        text = read_text(path)
        try:
            return cls.from_json(text)
        except ConfigError as err:
            raise ConfigError(f"{path}: {err}") from None
