"""The input contract as a module: the per-channel affine map a data set was normalized with."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["Normalize"]


class Normalize(nn.Module):
    """``(x - mean) / std`` per input channel: raw inputs (N, C_in, ...) in, what the model was
    trained on out. ``mean`` and ``std`` have one entry per input channel (C_in)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float], spatial_dims: int) -> None:
        super().__init__()
        if len(mean) != len(std) or not mean:
            raise ValueError(f"one mean and std per channel, got {len(mean)} and {len(std)}")
        shape = (1, len(mean), *([1] * spatial_dims))  # broadcasts over (N, C_in, ...)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(shape))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.to(self.mean.dtype) - self.mean) / self.std
