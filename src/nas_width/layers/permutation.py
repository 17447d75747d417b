"""Permutations of the m = S*C coordinates of vec_r(X), as index vectors.

A permutation is a LongTensor ``perm`` of length m read as a gather: ``(P u)[i] = u[perm[i]]``,
so the matrix is ``P = I[perm]``. Layers hold them as buffers and apply them with
``index_select``; the explicit matrices exist only for the reference twins.
"""

from __future__ import annotations

import torch

__all__ = [
    "commutation",
    "inverse",
    "permutation_matrix",
    "random_permutation",
]


def commutation(rows: int, cols: int) -> torch.Tensor:
    """K, the perfect shuffle: gathers vec_r(X) of X (rows x cols) into vec_r(X^T).

    With X in R^{S x C}, ``u[commutation(S, C)]`` is the row-major vector of the (C, S) transpose,
    which is why token mixing (W kron I_C) equals K^T (I_C kron W) K.
    """
    return torch.arange(rows * cols).view(rows, cols).t().reshape(-1)


def random_permutation(m: int, generator: torch.Generator) -> torch.Tensor:
    """A uniform random permutation of m coordinates, reproducible from ``generator``."""
    return torch.randperm(m, generator=generator)


def inverse(perm: torch.Tensor) -> torch.Tensor:
    """The inverse gather: ``u[perm][inverse(perm)] == u``."""
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(perm.numel(), device=perm.device)
    return inv


def permutation_matrix(perm: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The explicit m x m matrix P with ``P @ u == u[perm]`` (reference twins only)."""
    return torch.eye(perm.numel(), dtype=dtype, device=perm.device)[perm]
