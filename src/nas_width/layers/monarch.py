"""Monarch mixing: the Mixer's layers with untied blocks (Dao et al. 2022).

In the linear case a Mixer block is a Monarch matrix P L P^T R whose block-diagonal factors L, R
repeat one block (Hayase & Karakida 2024, section 3.3). Untying the blocks gives the Monarch
member of the PK family: channel mixing becomes blockdiag(V_1, ..., V_S) and token mixing
K^T blockdiag(W_1, ..., W_C) K. Stored parameters then equal the wide MLP's connections.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MonarchMixing"]


def _uniform_(t: torch.Tensor, fan_in: int) -> None:
    bound = 1.0 / math.sqrt(fan_in)
    nn.init.uniform_(t, -bound, bound)


class MonarchMixing(nn.Module):
    """a untied MLP blocks b -> h -> b, one per token (channel axis) or per channel (token axis).

    Args:
        tokens: S.
        channels: C.
        hidden: h, the hidden width of each block (gamma_C*C or gamma_S*S).
        axis: ``"channel"`` (a = S blocks over C) or ``"token"`` (a = C blocks over S).

    Weights: ``w1`` (a, b, h), ``w2`` (a, h, b), stored transposed for ``baddbmm``.
    """

    def __init__(
        self, tokens: int, channels: int, hidden: int, axis: Literal["token", "channel"]
    ) -> None:
        super().__init__()
        if axis not in ("token", "channel"):
            raise ValueError(f"axis must be 'token' or 'channel', got {axis!r}")
        self.axis = axis
        a, b = (tokens, channels) if axis == "channel" else (channels, tokens)
        self.w1 = nn.Parameter(torch.empty(a, b, hidden))
        self.b1 = nn.Parameter(torch.empty(a, 1, hidden))
        self.w2 = nn.Parameter(torch.empty(a, hidden, b))
        self.b2 = nn.Parameter(torch.empty(a, 1, b))
        for t in (self.w1, self.b1):
            _uniform_(t, b)
        for t in (self.w2, self.b2):
            _uniform_(t, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # channel: (B, S, C) -> (S, B, C); token: (B, S, C) -> (C, B, S). Then a batched
        # matmul over the a untied blocks: (a, B, b) @ (a, b, h) -> (a, B, h) -> (a, B, b).
        u = x.transpose(0, 1) if self.axis == "channel" else x.permute(2, 0, 1)
        h = F.gelu(torch.baddbmm(self.b1, u, self.w1))
        y = torch.baddbmm(self.b2, h, self.w2)
        return y.transpose(0, 1) if self.axis == "channel" else y.permute(1, 2, 0)
