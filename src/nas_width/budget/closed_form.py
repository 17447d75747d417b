"""Closed-form counts of a :class:`MixerConfig`, in fvcore's conventions.

These are the paper's formulas extended to the whole model. Per block, with hidden widths
h_S = round(gamma_S*S) and h_C = round(gamma_C*C):

* connections (non-zeros of the equivalent wide MLP's four matrices, = multiply-adds per
  sample): 2*h_S*S*C + 2*h_C*C*S, i.e. 2*gamma_S*S^2*C + 2*gamma_C*C^2*S;
* stored mixing weights: 2*h_S*S + 2*h_C*C (Mixer, RP-Mixer: shared blocks counted once),
  C times / S times that for Monarch's untied blocks, the connections for SW-MLP.

FLOPs follow fvcore: one multiply-add = one flop, layer norm = 5 per element, and ops that are
not multiply-adds (gelu, add, mean, gathers) = 0. The solver searches with these (microseconds
per shape); :func:`nas_width.measure` counts with fvcore, and tests assert the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass

from nas_width.config import MixerConfig
from nas_width.models.mixer import fan_ins

__all__ = ["Counts", "closed_form"]

_NORM_FLOPS_PER_ELEMENT = 5  # fvcore's layer_norm handle with an affine transform


@dataclass(frozen=True)
class Counts:
    """Whole-model and mixing-only parameters and FLOPs (per sample), and connections."""

    params: int
    flops: int
    mixing_params: int
    mixing_flops: int
    connections: int


def _mixing_per_block(cfg: MixerConfig, C: int, h_s: int, h_c: int) -> tuple[int, int]:
    """(stored parameters, connections) of one block's two mixing layers, biases included."""
    S = cfg.tokens
    m = S * C
    connections = 2 * h_s * S * C + 2 * h_c * C * S
    token_mlp = 2 * h_s * S + h_s + S  # W1 (h_S x S), b1, W2 (S x h_S), b2
    channel_mlp = 2 * h_c * C + h_c + C
    if cfg.mixing in ("mixer", "rp"):
        return token_mlp + channel_mlp, connections
    if cfg.mixing == "monarch":
        return C * token_mlp + S * channel_mlp, connections
    (k1_s, k2_s), (k1_c, k2_c) = fan_ins(S, C, h_s, h_c, cfg.density)
    nonzeros = h_s * C * k1_s + m * k2_s + h_c * S * k1_c + m * k2_c
    biases = h_s * C + m + h_c * S + m
    return nonzeros + biases, nonzeros


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
    block_params, block_connections = _mixing_per_block(cfg, C, token_hidden, channel_hidden)
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
