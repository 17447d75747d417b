"""The twin check shared by the layer and kind tests: a fast layer against its explicit wide
MLP (layers/reference.py), in float64, outputs and every gradient."""

from __future__ import annotations

import torch

from nas_width.layers.reference import wide_mlp


def assert_equals_its_twin(layer: torch.nn.Module, S: int, C: int) -> None:
    """``layer`` (float64) on (3, S, C) inputs equals its reference twin: the output, and the
    gradients of the input and of every parameter for one upstream gradient."""
    x = torch.randn(3, S, C, dtype=torch.float64, requires_grad=True)
    params = list(layer.parameters())
    fast, ref = layer(x), wide_mlp(layer, S, C)(x)
    assert fast.shape == (3, S, C)
    torch.testing.assert_close(fast, ref)
    upstream = torch.randn_like(fast)
    fast_grads = torch.autograd.grad(fast, [x, *params], upstream)
    ref_grads = torch.autograd.grad(ref, [x, *params], upstream)
    for got, want in zip(fast_grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)
