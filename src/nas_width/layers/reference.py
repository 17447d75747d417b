"""Slow reference twins: every mixing layer as its explicit wide MLP.

``wide_mlp(layer, S, C)`` builds the layer's equivalent dense weights of the wide MLP on
u = vec_r(X) in R^m, m = S*C, from Kronecker products and explicit permutation matrices, e.g.
token mixing as K_h^T (I_C kron W1) K. The matrices are built from the layer's own parameters
with differentiable ops, so tests can compare outputs *and* gradients of the fast layer with
the reference, and read densities and singular values off the wide matrices.
O(m^2) memory: for tests on small S, C only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nas_width.layers.kronecker import ChannelMixing, PKMixing, TokenMixing
from nas_width.layers.monarch import MonarchMixing
from nas_width.layers.permutation import commutation, permutation_matrix
from nas_width.layers.sparse import SparseWideMLP

__all__ = ["WideMLP", "wide_mlp"]


@dataclass(frozen=True)
class WideMLP:
    """u -> w2 phi(w1 u + b1) + b2 with dense w1 (H, m) and w2 (m, H)."""

    w1: torch.Tensor
    b1: torch.Tensor
    w2: torch.Tensor
    b2: torch.Tensor

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to a (B, S, C) batch through its row-major vectors (B, m)."""
        u = x.reshape(x.shape[0], -1).to(self.w1.dtype)
        return F.linear(F.gelu(F.linear(u, self.w1, self.b1)), self.w2, self.b2).view(x.shape)

    @property
    def density(self) -> tuple[float, float]:
        """Fraction of non-zero entries of w1 and w2."""
        return tuple(float((w != 0).double().mean()) for w in (self.w1, self.w2))  # type: ignore[return-value]


def _kron_eye(copies: int, block: torch.Tensor) -> torch.Tensor:
    """I_copies kron block, in float64."""
    eye = torch.eye(copies, dtype=torch.float64, device=block.device)
    return torch.kron(eye, block.double())


def _block_diag(blocks: torch.Tensor) -> torch.Tensor:
    """blockdiag(blocks[0], ..., blocks[a-1]) of an (a, r, c) stack."""
    a, r, c = blocks.shape
    eye = torch.eye(a, dtype=blocks.dtype, device=blocks.device)
    # (a, r, a, c) with block i at [i, :, i, :] -> (a*r, a*c)
    return torch.einsum("arc,ab->arbc", blocks, eye).reshape(a * r, a * c)


def _shuffle(rows: int, cols: int) -> torch.Tensor:
    """The commutation matrix K with K vec_r(X) = vec_r(X^T), X of shape (rows, cols)."""
    return permutation_matrix(commutation(rows, cols))


def wide_mlp(layer: torch.nn.Module, tokens: int, channels: int) -> WideMLP:
    """The explicit wide MLP (float64) equal to ``layer`` on (B, S, C) inputs."""
    S, C = tokens, channels
    if isinstance(layer, ChannelMixing):
        f1, f2 = layer.fc1, layer.fc2
        return WideMLP(
            _kron_eye(S, f1.weight), f1.bias.double().repeat(S),
            _kron_eye(S, f2.weight), f2.bias.double().repeat(S),
        )  # fmt: skip
    if isinstance(layer, TokenMixing):
        f1, f2 = layer.fc1, layer.fc2
        h = f1.out_features
        k_in, k_hid = _shuffle(S, C), _shuffle(h, C)
        return WideMLP(
            k_hid.T @ _kron_eye(C, f1.weight) @ k_in, f1.bias.double().repeat_interleave(C),
            k_in.T @ _kron_eye(C, f2.weight) @ k_hid, f2.bias.double().repeat_interleave(C),
        )  # fmt: skip
    if isinstance(layer, PKMixing):
        f1, f2 = layer.fc1, layer.fc2
        a = layer.copies
        p_in, p_out = permutation_matrix(layer.perm_in), permutation_matrix(layer.perm_out)
        return WideMLP(
            _kron_eye(a, f1.weight) @ p_in, f1.bias.double().repeat(a),
            p_out @ _kron_eye(a, f2.weight), p_out @ f2.bias.double().repeat(a),
        )  # fmt: skip
    if isinstance(layer, MonarchMixing):
        w1 = _block_diag(layer.w1.double().transpose(1, 2))
        w2 = _block_diag(layer.w2.double().transpose(1, 2))
        b1, b2 = layer.b1.double().reshape(-1), layer.b2.double().reshape(-1)
        if layer.axis == "channel":
            return WideMLP(w1, b1, w2, b2)
        h = layer.w1.shape[2]
        k_in, k_hid = _shuffle(S, C), _shuffle(h, C)
        # blocks index channels: hidden unit (c, j) sits at c*h + j before K_h^T.
        return WideMLP(k_hid.T @ w1 @ k_in, k_hid.T @ b1, k_in.T @ w2 @ k_hid, k_in.T @ b2)
    if isinstance(layer, SparseWideMLP):
        f1, f2 = layer.fc1, layer.fc2
        return WideMLP(
            (f1.weight * f1.mask).double(), f1.bias.double(),
            (f2.weight * f2.mask).double(), f2.bias.double(),
        )  # fmt: skip
    raise TypeError(f"no reference twin for {type(layer).__name__}")
