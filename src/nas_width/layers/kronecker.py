"""The Mixer's two mixing layers and the general permuted-Kronecker (PK) layer.

On the row-major vector u = vec_r(X) of a feature matrix X in R^{S x C} (Hayase & Karakida 2024,
section 3):

* channel mixing  X -> phi(X V1^T) V2^T  is  (I_S kron V) u: S copies of V, density 1/S;
* token mixing    X -> W2 phi(W1 X)      is  (W kron I_C) u = K^T (I_C kron W) K u, density 1/C;
* a PK layer      u -> P_out (I_a kron W2) phi((I_a kron W1) P_in u)  for any permutations.

Each is a reshape or a precomputed index gather plus dense matmuls over the stored shared
blocks; the SC x SC wide matrix is never built (see :mod:`nas_width.layers.reference`).
All layers map the residual stream (B, S, C) to (B, S, C).

All three apply their shared block through :func:`_block_mlp`. On CPU its matmuls run as 1x1
convolutions over zero-copy views: the same fp32 products and multiply-adds as ``nn.Linear``
(fvcore counts both), but in oneDNN instead of the BLAS behind ``nn.Linear``. On the AMD EPYC
CPU of BENCHMARKS.md, where MKL reaches half of oneDNN's fp32 matmul rate, this made the
channel-mixing MLP train 1.7-2x faster. Other devices keep ``F.linear``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nas_width.layers.permutation import inverse

__all__ = ["ChannelMixing", "PKMixing", "TokenMixing"]


def _conv_weight(fc: nn.Linear) -> torch.Tensor:
    """fc's (out, in) weight as an (out, in, 1, 1) kernel: a view, so gradients reach fc."""
    return fc.weight[:, :, None, None]


def _block_mlp(u: torch.Tensor, fc1: nn.Linear, fc2: nn.Linear) -> torch.Tensor:
    """fc2(gelu(fc1(u))) over the last axis of a contiguous (N, R, b) tensor: rows of size b.

    On CPU, (N, R, b) is already the channels-last memory of an (N, b, R, 1) image, so the two
    linears are 1x1 convolutions on permuted views with no copy, the output (N, gamma*b, R, 1)
    is channels-last again and permutes back to (N, R, b) as a view.
    """
    if u.device.type != "cpu":
        return fc2(F.gelu(fc1(u)))
    n, r, b = u.shape
    v = u.view(n, r, 1, b).permute(0, 3, 1, 2)  # (N, b, R, 1), channels-last
    h = F.gelu(F.conv2d(v, _conv_weight(fc1), fc1.bias))  # (N, gamma*b, R, 1)
    y = F.conv2d(h, _conv_weight(fc2), fc2.bias)  # (N, b, R, 1)
    return y.permute(0, 2, 3, 1).reshape(n, r, b)


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
        # x: (B, S, C) -> (B, S, gamma*C) -> (B, S, C): S rows of C per sample
        return _block_mlp(x.contiguous(), self.fc1, self.fc2)


class TokenMixing(nn.Module):
    """(W kron I_C): one S -> gamma*S -> S MLP shared by all C channels.

    The commutation K is one transpose copy, X -> X^T in R^{C x S}; then the block acts on the
    C rows like channel mixing's, and the output is handed back as a transposed view (K^T).
    This trained faster than W acting from the left on the (S, C) view, whether as a
    broadcast ``matmul``, a ``bmm`` over expanded weights or a kernel-size-1 ``conv1d``.

    Args:
        tokens: S.
        hidden: gamma_S * S.
    """

    def __init__(self, tokens: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(tokens, hidden)
        self.fc2 = nn.Linear(hidden, tokens)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, S, C) -> K: (B, C, S) -> rows of S: (B, C, gamma*S) -> (B, C, S) -> (B, S, C)
        return _block_mlp(x.transpose(1, 2).contiguous(), self.fc1, self.fc2).transpose(1, 2)


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
        y = _block_mlp(u.view(batch, self.copies, self.block), self.fc1, self.fc2)  # (B, a, b)
        return y.reshape(batch, -1).index_select(1, self.perm_out).view_as(x)  # (B, m)
