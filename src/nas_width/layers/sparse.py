"""The sparse-weight MLP (SW-MLP) baseline of Golubeva, Neyshabur & Gur-Ari (2021).

A dense wide MLP of width m = S*C whose weights carry a static random mask fixed at init.
Each output unit keeps exactly ``fan_in`` random inputs, so density = fan_in / in_features and
the init scale matches a Mixer block with the same fan-in. Masked weights are zero and, because
the forward multiplies by the mask, their gradients are exactly zero too: any optimizer that
leaves zero-gradient zero weights alone (SGD, Adam, AdamW) keeps them at zero.

Dense m x gamma*m weights: only feasible at small widths, which is all the baseline needs.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MaskedLinear", "SparseWideMLP", "random_mask", "structure_only"]

_STRUCTURE_ONLY = contextvars.ContextVar("structure_only", default=False)


@contextlib.contextmanager
def structure_only() -> Iterator[None]:
    """Build masks by a cheap fixed rule instead of at random, for counting only.

    A mask's counts (FLOPs, non-zeros) depend only on its shape and fan-in, so fvcore counts a
    model built this way exactly as the real one. Drawing the random mask costs a uniform draw
    and a top-k over the whole m x gamma*m matrix (16 ms at m = 960), most of the time of
    enumerating an SW-MLP space; the fixed rule writes only its m * fan_in ones.
    """
    token = _STRUCTURE_ONLY.set(True)
    try:
        yield
    finally:
        _STRUCTURE_ONLY.reset(token)


def random_mask(
    out_features: int, in_features: int, fan_in: int, generator: torch.Generator
) -> torch.Tensor:
    """(out, in) 0/1 float mask with exactly ``fan_in`` ones per row, uniform at random.

    Inside :func:`structure_only`, row r keeps the ``fan_in`` columns from r onwards (mod in):
    the same counts, no random draw.
    """
    if _STRUCTURE_ONLY.get():
        rows = torch.arange(out_features)[:, None]
        keep = (rows + torch.arange(fan_in)[None, :]) % in_features
    else:
        scores = torch.rand(out_features, in_features, generator=generator)
        keep = scores.topk(fan_in, dim=1).indices
    return torch.zeros(out_features, in_features).scatter_(1, keep, 1.0)


class MaskedLinear(nn.Linear):
    """nn.Linear with a fixed 0/1 mask buffer; y = x (W * M)^T + b."""

    mask: torch.Tensor

    def __init__(
        self, in_features: int, out_features: int, fan_in: int, generator: torch.Generator
    ) -> None:
        if not 1 <= fan_in <= in_features:
            raise ValueError(f"fan_in must be in [1, {in_features}], got {fan_in}")
        super().__init__(in_features, out_features)
        self.fan_in = fan_in
        self.register_buffer("mask", random_mask(out_features, in_features, fan_in, generator))
        bound = 1.0 / math.sqrt(fan_in)
        with torch.no_grad():
            nn.init.uniform_(self.weight, -bound, bound).mul_(self.mask)
            nn.init.uniform_(self.bias, -bound, bound)

    @property
    def density(self) -> float:
        return self.fan_in / self.in_features

    @property
    def nonzeros(self) -> int:
        """Stored non-zero weights (the budget's parameter count)."""
        return self.fan_in * self.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class SparseWideMLP(nn.Module):
    """u -> (W2*M2) phi((W1*M1) u), u = vec_r(X) in R^m, hidden width ``hidden``.

    Args:
        tokens: S.
        channels: C.
        hidden: hidden width of the wide MLP (gamma*m).
        fan_in1: inputs kept per hidden unit (density fan_in1 / m).
        fan_in2: hidden units kept per output (density fan_in2 / hidden).
        generator: draws both masks.
    """

    def __init__(
        self,
        tokens: int,
        channels: int,
        hidden: int,
        fan_in1: int,
        fan_in2: int,
        generator: torch.Generator,
    ) -> None:
        super().__init__()
        m = tokens * channels
        self.fc1 = MaskedLinear(m, hidden, fan_in1, generator)
        self.fc2 = MaskedLinear(hidden, m, fan_in2, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, S, C) -> (B, m) -> (B, hidden) -> (B, m) -> (B, S, C)
        u = x.reshape(x.shape[0], -1)
        return self.fc2(F.gelu(self.fc1(u))).view_as(x)
