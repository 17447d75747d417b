"""Closed-form counts of a :class:`MixerConfig`, in fvcore's conventions.

These are the paper's formulas extended to the whole model. Per block, with hidden widths
h_S = round(gamma_S*S) and h_C = round(gamma_C*C):

* connections (non-zeros of the equivalent wide MLP's four matrices, = multiply-adds per
  sample): 2*h_S*S*C + 2*h_C*C*S, i.e. 2*gamma_S*S^2*C + 2*gamma_C*C^2*S;
* stored mixing weights: 2*h_S*S + 2*h_C*C (Mixer, RP-Mixer: shared blocks counted once),
  C times / S times that for Monarch's untied blocks, the connections for SW-MLP.

Those per-block counts are each kind's ``counts`` in :mod:`nas_width.kinds`; this module adds
the stem, the norms and the head.

FLOPs follow fvcore: one multiply-add = one flop, layer norm = 5 per element, and ops that are
not multiply-adds (gelu, add, mean, gathers) = 0. The solver searches with these (microseconds
per shape); :func:`nas_width.measure` counts with fvcore, and tests assert the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas_width.config import MixerConfig
from nas_width.errors import ConfigError
from nas_width.kinds import kind

__all__ = ["MAX_ELEMENTS", "Counts", "check_size", "closed_form", "stored_elements"]

_NORM_FLOPS_PER_ELEMENT = 5  # fvcore's layer_norm handle with an affine transform
#: The most numbers a model may hold to be built (and traced by fvcore): 8 GiB of float32.
MAX_ELEMENTS = 1 << 31


@dataclass(frozen=True)
class Counts:
    """Whole-model and mixing-only parameters and FLOPs (per sample), and connections."""

    params: int
    flops: int
    mixing_params: int
    mixing_flops: int
    connections: int


def closed_form(
    cfg: MixerConfig,
    *,
    channels: int | None = None,
    token_hidden: int | None = None,
    channel_hidden: int | None = None,
) -> Counts:
    """Exact counts of ``build_model(cfg)`` without building it; the keyword widths, where
    given, stand in for C, D_S and D_C (the solver tries thousands without making configs)."""
    S = cfg.tokens
    C = cfg.channels if channels is None else channels
    if token_hidden is None:
        token_hidden = cfg.token_hidden  # D_S does not depend on C
    if channel_hidden is None:
        channel_hidden = cfg.channel_hidden if channels is None else cfg.channel_hidden_at(C)
    block_params, block_connections = kind(cfg.mixing).counts(
        S, C, token_hidden, channel_hidden, cfg.density
    )
    mixing_params = cfg.depth * block_params
    connections = cfg.depth * block_connections
    norms = 2 * cfg.depth + 1
    stem = cfg.patch_dim * C + C
    head = C * cfg.num_classes + cfg.num_classes
    params = stem + mixing_params + norms * 2 * C + head
    flops = (
        S * cfg.patch_dim * C  # patch embedding
        + connections
        + norms * _NORM_FLOPS_PER_ELEMENT * S * C
        + C * cfg.num_classes  # head
    )
    return Counts(params, flops, mixing_params, connections, connections)


def stored_elements(config: MixerConfig) -> int:
    """Numbers ``build_model(config)`` holds: its parameters (closed form) and what its kind
    holds beyond them (for SW-MLP, the dense m x gamma*m weights and masks of its layers)."""
    extra = kind(config.mixing).extra_elements(
        config.tokens, config.channels, config.token_hidden, config.channel_hidden,
        config.density,
    )  # fmt: skip
    return closed_form(config).params + config.depth * extra


def check_size(config: MixerConfig) -> None:
    """Refuse a config too large to build: fvcore counts a built model."""
    elements = stored_elements(config)
    if elements > MAX_ELEMENTS:
        raise ConfigError(
            f"config too large to build and count ({elements:.3g} numbers, at most "
            f"{MAX_ELEMENTS:.3g}): S={config.tokens}, C={config.channels}, depth {config.depth}, "
            f"gamma_token {config.gamma_token:g}, gamma_channel {config.gamma_channel:g}, "
            f"num_classes {config.num_classes}, patch_dim {config.patch_dim}"
        )
