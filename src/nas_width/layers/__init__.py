"""Permuted-Kronecker (PK) family mixing layers and their slow reference twins.

Every layer maps the residual stream (B, S, C) to (B, S, C) and equals a wide MLP on
vec_r(X) in R^m, m = S*C; :func:`wide_mlp` builds that MLP explicitly for tests.
"""

from nas_width.layers.kronecker import ChannelMixing, PKMixing, TokenMixing
from nas_width.layers.monarch import MonarchMixing
from nas_width.layers.permutation import (
    commutation,
    inverse,
    permutation_matrix,
    random_permutation,
)
from nas_width.layers.reference import WideMLP, wide_mlp
from nas_width.layers.sparse import MaskedLinear, SparseWideMLP, random_mask

__all__ = [
    "ChannelMixing",
    "MaskedLinear",
    "MonarchMixing",
    "PKMixing",
    "SparseWideMLP",
    "TokenMixing",
    "WideMLP",
    "commutation",
    "inverse",
    "permutation_matrix",
    "random_mask",
    "random_permutation",
    "wide_mlp",
]
