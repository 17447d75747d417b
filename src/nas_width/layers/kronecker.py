"""The Mixer's two mixing layers and the general permuted-Kronecker (PK) layer.

On the row-major vector u = vec_r(X) of a feature matrix X in R^{S x C} (Hayase & Karakida 2024,
section 3):

* channel mixing  X -> phi(X V1^T) V2^T  is  (I_S kron V) u: S copies of V, density 1/S;
* token mixing    X -> W2 phi(W1 X)      is  (W kron I_C) u = K^T (I_C kron W) K u, density 1/C;
* a PK layer      u -> P_out (I_a kron W2) phi((I_a kron W1) P_in u)  for any permutations.

Each is a reshape or a precomputed index gather plus dense matmuls over the stored shared
blocks; the SC x SC wide matrix is never built (see :mod:`nas_width.layers.reference`).
All layers map the residual stream (B, S, C) to (B, S, C).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas_width.layers.permutation import inverse

__all__ = ["ChannelMixing", "PKMixing", "TokenMixing"]


class ChannelMixing(nn.Module):
    """(I_S kron V): one C -> gamma*C -> C MLP shared by all S tokens.

    Args:
        channels: C.
        hidden: gamma_C * C, the hidden width of the shared block.
    """

    def __init__(self, channels: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, hidden)
        self.fc2 = nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, S, C) -> (B, S, gamma*C) -> (B, S, C)
        return self.fc2(F.gelu(self.fc1(x)))


class TokenMixing(nn.Module):
    """(W kron I_C): one S -> gamma*S -> S MLP shared by all C channels.

    The commutation K is never applied: W acts from the left on the (S, C) view, which is the
    same matrix (W kron I_C) without a transpose copy.

    Args:
        tokens: S.
        hidden: gamma_S * S.
    """

    def __init__(self, tokens: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(tokens, hidden)
        self.fc2 = nn.Linear(hidden, tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, S, C); W1 @ x: (B, gamma*S, C); W2 @ h: (B, S, C). Biases broadcast over C.
        h = F.gelu(torch.matmul(self.fc1.weight, x) + self.fc1.bias[:, None])
        return torch.matmul(self.fc2.weight, h) + self.fc2.bias[:, None]


class PKMixing(nn.Module):
    """u -> P_out (I_a kron W2) phi((I_a kron W1) P_in u), u = vec_r(X), m = a*b = S*C.

    The general member of the family: ``perm_in`` and ``perm_out`` are index buffers (saved in
    the state dict). With ``perm_in = commutation(S, C)`` and ``block = S`` it is token mixing;
    with random ``perm_in`` it is the RP-Mixer's layer. ``perm_out`` defaults to the inverse of
    ``perm_in`` so that the residual stream keeps its (S, C) layout.

    Args:
        tokens: S.
        channels: C.
        block: b, the size of the shared block W1 in R^{h x b}; must divide m.
        hidden: h = gamma * b.
        perm_in: gather of length m applied before the blocks.
        perm_out: gather of length m applied after them (default: inverse of ``perm_in``).
    """

    perm_in: torch.Tensor
    perm_out: torch.Tensor

    def __init__(
        self,
        tokens: int,
        channels: int,
        block: int,
        hidden: int,
        perm_in: torch.Tensor,
        perm_out: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        m = tokens * channels
        if m % block:
            raise ValueError(f"block {block} does not divide m = S*C = {m}")
        if perm_in.shape != (m,):
            raise ValueError(f"perm_in must have shape ({m},), got {tuple(perm_in.shape)}")
        self.tokens, self.channels, self.block = tokens, channels, block
        self.fc1 = nn.Linear(block, hidden)
        self.fc2 = nn.Linear(hidden, block)
        self.register_buffer("perm_in", perm_in.clone().long())
        out = inverse(perm_in) if perm_out is None else perm_out
        self.register_buffer("perm_out", out.clone().long())

    @property
    def copies(self) -> int:
        """a = m / b, the number of copies of the shared block."""
        return self.tokens * self.channels // self.block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        u = x.reshape(batch, -1).index_select(1, self.perm_in)  # (B, m), permuted
        h = F.gelu(self.fc1(u.view(batch, self.copies, self.block)))  # (B, a, gamma*b)
        y = self.fc2(h).view(batch, -1).index_select(1, self.perm_out)  # (B, m)
        return y.view_as(x)
