"""The Mixer-family classifier built from a :class:`~nas_width.MixerConfig`.

Patch embedding -> depth x [x + token_mix(LN(x)); x + channel_mix(LN(x))] -> LN -> mean over
tokens -> linear head, as in MLP-Mixer (Tolstikhin et al. 2021). The residual stream is
(B, S, C); the ``mixing`` field picks the member of the PK family used for the two mixing
sub-layers of every block: its entry in :mod:`nas_width.kinds` names one of the builders here
(see :func:`mixing_layers`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nas_width.config import MixerConfig
from nas_width.kinds import fan_ins, kind
from nas_width.layers import (
    ChannelMixing,
    MonarchMixing,
    PKMixing,
    SparseWideMLP,
    TokenMixing,
    random_permutation,
)

__all__ = [
    "MixerBlock",
    "MixerModel",
    "PatchEmbed",
    "build_model",
    "mixer_layers",
    "mixing_layers",
    "monarch_layers",
    "rp_layers",
    "sw_fan_ins",
    "sw_mlp_layers",
]


def _generator(config: MixerConfig, block: int, sublayer: int) -> torch.Generator:
    """A generator for one sub-layer's permutation or mask: fixed by (seed, block, sublayer)."""
    return torch.Generator().manual_seed(config.seed * 1_000_003 + 2 * block + sublayer)


def sw_fan_ins(config: MixerConfig) -> tuple[tuple[int, int], tuple[int, int]]:
    """Fan-ins ((fc1, fc2) of the token-like, (fc1, fc2) of the channel-like) SW-MLP layers.

    Token-like: m -> gamma_S*S*C -> m; by default each hidden unit sees S inputs and each output
    gamma_S*S hidden units (density 1/C, the Mixer's). Channel-like: C and gamma_C*C (density
    1/S). A config ``density`` p instead keeps round(p * fan-in space) of each row.
    :func:`nas_width.kinds.fan_ins` does the arithmetic from the widths alone.
    """
    return fan_ins(
        config.tokens, config.channels, config.token_hidden, config.channel_hidden,
        config.density,
    )  # fmt: skip


def mixing_layers(config: MixerConfig, block: int) -> tuple[nn.Module, nn.Module]:
    """The (token-like, channel-like) mixing sub-layers of block ``block``, from the builder
    its kind names (:mod:`nas_width.kinds`); one builder per kind follows."""
    return kind(config.mixing).build_layers(config, block)


def mixer_layers(config: MixerConfig, block: int) -> tuple[nn.Module, nn.Module]:
    """mixer: (W kron I_C) and (I_S kron V), shared blocks, densities 1/C and 1/S."""
    return (
        TokenMixing(config.tokens, config.token_hidden),
        ChannelMixing(config.channels, config.channel_hidden),
    )


def rp_layers(config: MixerConfig, block: int) -> tuple[nn.Module, nn.Module]:
    """rp: the Mixer's shared blocks (size S, then C) between random P_in and
    P_out = P_in^-1, drawn per sub-layer from the config's seed (the RP-Mixer)."""
    S, C = config.tokens, config.channels
    h_s, h_c = config.token_hidden, config.channel_hidden
    m = S * C
    token = PKMixing(S, C, S, h_s, random_permutation(m, _generator(config, block, 0)))
    channel = PKMixing(S, C, C, h_c, random_permutation(m, _generator(config, block, 1)))
    return token, channel


def monarch_layers(config: MixerConfig, block: int) -> tuple[nn.Module, nn.Module]:
    """monarch: untied blocks, one per channel (token mixing) or per token (channel mixing)."""
    S, C = config.tokens, config.channels
    return (
        MonarchMixing(S, C, config.token_hidden, "token"),
        MonarchMixing(S, C, config.channel_hidden, "channel"),
    )


def sw_mlp_layers(config: MixerConfig, block: int) -> tuple[nn.Module, nn.Module]:
    """sw-mlp: dense wide MLPs with random masks; by default the same fan-in, hence the same
    density and number of non-zeros, as the Mixer's sub-layers (:func:`sw_fan_ins`)."""
    S, C = config.tokens, config.channels
    h_s, h_c = config.token_hidden, config.channel_hidden
    (k1_s, k2_s), (k1_c, k2_c) = sw_fan_ins(config)
    token = SparseWideMLP(S, C, h_s * C, k1_s, k2_s, _generator(config, block, 0))
    channel = SparseWideMLP(S, C, h_c * S, k1_c, k2_c, _generator(config, block, 1))
    return token, channel


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> C channels: a reshape plus one linear map.

    (B, C_in, H, W) -> (B, S, C_in*p_h*p_w) -> (B, S, C); 1-D signals (B, C_in, L) likewise.
    Equal to a convolution with kernel = stride = patch.
    """

    def __init__(self, config: MixerConfig) -> None:
        super().__init__()
        self.grid, self.patch = config.grid, config.patch
        self.proj = nn.Linear(config.patch_dim, config.channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c_in = x.shape[:2]
        if len(self.grid) == 2:
            (gh, gw), (ph, pw) = self.grid, self.patch
            # (B, C_in, gh, ph, gw, pw) -> (B, gh, gw, C_in, ph, pw) -> (B, S, C_in*ph*pw)
            x = x.reshape(b, c_in, gh, ph, gw, pw).permute(0, 2, 4, 1, 3, 5)
        else:
            (gl,), (pl,) = self.grid, self.patch
            x = x.reshape(b, c_in, gl, pl).permute(0, 2, 1, 3)  # (B, S, C_in, p)
        return self.proj(x.reshape(b, math.prod(self.grid), -1))


class MixerBlock(nn.Module):
    """x + token_mix(LN(x)), then + channel_mix(LN(x)); LN over C, stream (B, S, C)."""

    def __init__(self, config: MixerConfig, index: int) -> None:
        super().__init__()
        self.token_norm = nn.LayerNorm(config.channels)
        self.channel_norm = nn.LayerNorm(config.channels)
        self.token_mix, self.channel_mix = mixing_layers(config, index)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mix(self.token_norm(x))
        return x + self.channel_mix(self.channel_norm(x))


class MixerModel(nn.Module):
    """Classifier: (B, *input_shape) -> logits (B, num_classes)."""

    def __init__(self, config: MixerConfig) -> None:
        super().__init__()
        self.config = config
        self.stem = PatchEmbed(config)
        self.blocks = nn.Sequential(*(MixerBlock(config, i) for i in range(config.depth)))
        self.norm = nn.LayerNorm(config.channels)
        self.head = nn.Linear(config.channels, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.blocks(self.stem(x)))  # (B, S, C)
        return self.head(x.mean(dim=1))  # (B, classes)


def build_model(config: MixerConfig) -> MixerModel:
    """The ``nn.Module`` described by ``config``; weights from torch's global RNG.

    Permutations and masks come from ``config.seed`` alone, so rebuilding from the same config
    gives the same structure, and ``load_state_dict`` restores the weights.
    """
    return MixerModel(config)
