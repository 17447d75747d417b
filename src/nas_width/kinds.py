"""The mixing kinds in one place: a small registry in the spirit of timm's model registry.

A kind is a value of :attr:`MixerConfig.mixing <nas_width.MixerConfig>`: one member of the
permuted-Kronecker family of Hayase & Karakida (2024), i.e. one way to build a block's two mixing
sub-layers, both equal to a wide MLP on vec_r(X) in R^m, m = S*C. Everything that differs
between kinds reads its :class:`MixingKindSpec`: the config's validation (``takes_density``),
the closed-form counts (``counts``), fvcore's measurement (``counted_as``), the model
(``layers``), the size guard of ``nas-width count`` (``extra_elements``) and the reports
(``label``). A fifth kind is therefore its layer in ``layers/`` (with a reference twin in
``layers/reference.py``), a builder in ``models/mixer.py`` and one :func:`register_kind` entry.

Shapes use the paper's letters: S tokens, C channels, hidden widths h_S = D_S ~ gamma_S*S and
h_C = D_C ~ gamma_C*C. This module imports neither torch nor the config (it sits below both):
``layers`` names its builder as ``"module:function"``, imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nas_width.errors import ConfigError

__all__ = ["KINDS", "MixingKindSpec", "fan_ins", "kind", "register_kind"]

#: (S, C, h_S, h_C, density) -> (stored parameters, connections) of one block's two mixing
#: sub-layers, biases included in the parameters.
BlockCounts = Callable[[int, int, int, int, float | None], tuple[int, int]]
#: (S, C, h_S, h_C, density) -> numbers one built block holds beyond its counted parameters.
BlockExtra = Callable[[int, int, int, int, float | None], int]


def _nothing_extra(S: int, C: int, h_s: int, h_c: int, density: float | None) -> int:
    return 0


@dataclass(frozen=True)
class MixingKindSpec:
    """What one mixing kind is, for every module that treats kinds differently.

    Args:
        name: the config's ``mixing`` value, e.g. ``"rp"``.
        label: the paper's name, shown in reports and figures, e.g. ``"RP-Mixer"``.
        summary: one line on what the two sub-layers are.
        counts: (stored parameters, connections) of one block's two mixing sub-layers from
            (S, C, h_S, h_C, density) alone, in fvcore's conventions: the solver calls it for
            thousands of trial widths without making a config, and tests hold it to fvcore.
        layers: ``"module:function"`` of the builder ``(config, block) -> (token-like,
            channel-like)`` ``nn.Module`` pair, each mapping (B, S, C) to (B, S, C).
        counted_as: a kind fvcore may trace in this one's place at the same shape because it
            has the same parameters and multiply-adds (the RP-Mixer: the Mixer's shared blocks
            between two gathers, which count as neither); ``None`` traces the kind itself.
        takes_density: whether the config's ``density`` applies (the SW-MLP's masks).
        extra_elements: numbers one built block holds beyond its counted parameters (the
            SW-MLP's dense weights and masks), so ``nas-width count`` can refuse a model too
            large to build before building it.
    """

    name: str
    label: str
    summary: str
    counts: BlockCounts
    layers: str
    counted_as: str | None = None
    takes_density: bool = False
    extra_elements: BlockExtra = _nothing_extra

    def build_layers(self, config: Any, block: int) -> tuple[Any, Any]:
        """The (token-like, channel-like) sub-layers of block ``block`` of ``config``."""
        module, _, function = self.layers.partition(":")
        builder = getattr(importlib.import_module(module), function)
        return builder(config, block)


#: Every registered kind by name, in registration order (the order of reports and figures).
KINDS: dict[str, MixingKindSpec] = {}


def register_kind(spec: MixingKindSpec) -> MixingKindSpec:
    """Add ``spec`` to :data:`KINDS` and return it. An empty or taken name, ``layers`` not of
    the form ``"module:function"``, or a ``counted_as`` that is not an already registered kind
    traced as itself is a programming error (``ValueError``); the builder itself is imported
    only when a model is built, so registering never imports torch."""
    if not spec.name or spec.name in KINDS:
        raise ValueError(f"mixing kind {spec.name!r} is empty or already registered")
    module, colon, function = spec.layers.partition(":")
    if not (module and colon and function):
        raise ValueError(f"{spec.name}: layers must be 'module:function', got {spec.layers!r}")
    if spec.counted_as is not None:
        target = KINDS.get(spec.counted_as)
        if target is None or target.counted_as is not None:
            raise ValueError(
                f"{spec.name}: counted_as {spec.counted_as!r} is not a kind traced as itself"
            )
    KINDS[spec.name] = spec
    return spec


def kind(name: str) -> MixingKindSpec:
    """The registered kind ``name``; anything else is a one-line :class:`ConfigError`.

    Example:
        >>> spec = kind("rp")
        >>> spec.label, spec.counted_as, spec.counts(16, 12, 24, 36, None)
        ('RP-Mixer', 'mixer', (1720, 23040))
    """
    spec = KINDS.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ConfigError(f"mixing must be one of {list(KINDS)}, got {name!r}")
    return spec


# --- the four kinds of the paper ----------------------------------------------------------


def fan_ins(
    S: int, C: int, h_s: int, h_c: int, density: float | None
) -> tuple[tuple[int, int], tuple[int, int]]:
    """SW-MLP fan-ins ((fc1, fc2) of the token-like, (fc1, fc2) of the channel-like layer).

    Token-like: m -> h_S*C -> m; by default each hidden unit sees S inputs and each output h_S
    hidden units (density 1/C, the Mixer's). Channel-like: C and h_C (density 1/S). A
    ``density`` p instead keeps round(p * fan-in space) of each row.
    """

    def keep(n_in: int, mixer_fan_in: int) -> int:
        return mixer_fan_in if density is None else min(n_in, max(1, round(density * n_in)))

    m = S * C
    return (keep(m, S), keep(h_s * C, h_s)), (keep(m, C), keep(h_c * S, h_c))


def _connections(S: int, C: int, h_s: int, h_c: int) -> int:
    """Non-zeros of the wide MLP's four matrices: 2*h_S*S*C + 2*h_C*C*S (the Mixer's)."""
    return 2 * h_s * S * C + 2 * h_c * C * S


def _mlps(S: int, C: int, h_s: int, h_c: int) -> tuple[int, int]:
    """Parameters of one token MLP (W1 h_S x S, b1, W2 S x h_S, b2) and one channel MLP."""
    return 2 * h_s * S + h_s + S, 2 * h_c * C + h_c + C


def _shared_counts(S: int, C: int, h_s: int, h_c: int, density: float | None) -> tuple[int, int]:
    """Mixer and RP-Mixer: each block is stored once and shared by all C (or S) copies."""
    token_mlp, channel_mlp = _mlps(S, C, h_s, h_c)
    return token_mlp + channel_mlp, _connections(S, C, h_s, h_c)


def _monarch_counts(S: int, C: int, h_s: int, h_c: int, density: float | None) -> tuple[int, int]:
    """Monarch: untied blocks, C token MLPs and S channel MLPs."""
    token_mlp, channel_mlp = _mlps(S, C, h_s, h_c)
    return C * token_mlp + S * channel_mlp, _connections(S, C, h_s, h_c)


def _sw_mlp_counts(S: int, C: int, h_s: int, h_c: int, density: float | None) -> tuple[int, int]:
    """SW-MLP: the mask's non-zeros are both the stored weights and the connections, plus the
    wide biases (h_S*C + m + h_C*S + m)."""
    m = S * C
    (k1_s, k2_s), (k1_c, k2_c) = fan_ins(S, C, h_s, h_c, density)
    nonzeros = h_s * C * k1_s + m * k2_s + h_c * S * k1_c + m * k2_c
    biases = h_s * C + m + h_c * S + m
    return nonzeros + biases, nonzeros


def _sw_mlp_extra(S: int, C: int, h_s: int, h_c: int, density: float | None) -> int:
    """The dense m x (h_S*C + h_C*S) weights of W1 and W2, each with a mask of its size."""
    return 4 * S * C * (h_s * C + h_c * S)


_BUILDERS = "nas_width.models.mixer"

register_kind(
    MixingKindSpec(
        name="mixer",
        label="Mixer",
        summary="(W kron I_C) and (I_S kron V): shared blocks, densities 1/C and 1/S",
        counts=_shared_counts,
        layers=f"{_BUILDERS}:mixer_layers",
    )
)
register_kind(
    MixingKindSpec(
        name="rp",
        label="RP-Mixer",
        summary="the Mixer's shared blocks between random permutations drawn from the seed",
        counts=_shared_counts,
        layers=f"{_BUILDERS}:rp_layers",
        counted_as="mixer",
    )
)
register_kind(
    MixingKindSpec(
        name="monarch",
        label="Monarch",
        summary="untied blocks, one per channel (token mixing) or per token (channel mixing)",
        counts=_monarch_counts,
        layers=f"{_BUILDERS}:monarch_layers",
    )
)
register_kind(
    MixingKindSpec(
        name="sw-mlp",
        label="SW-MLP",
        summary="dense wide MLPs with static random masks, by default of the Mixer's density",
        counts=_sw_mlp_counts,
        layers=f"{_BUILDERS}:sw_mlp_layers",
        takes_density=True,
        extra_elements=_sw_mlp_extra,
    )
)
