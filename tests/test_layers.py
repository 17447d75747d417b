"""Every fast PK-family layer equals its slow reference twin (the explicit wide MLP).

Outputs and all gradients (input and every parameter) are compared in float64 over sizes whose
S, C and hidden widths do not divide each other. Densities and singular values are read off
the explicit wide matrices.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas_width.layers import (
    ChannelMixing,
    MonarchMixing,
    PKMixing,
    SparseWideMLP,
    TokenMixing,
    commutation,
    inverse,
    permutation_matrix,
    random_permutation,
    wide_mlp,
)
from nas_width.layers.sparse import random_mask, structure_only
from tests.twins import assert_equals_its_twin

# (S, C, gamma): S and C coprime or uneven, hidden = round(gamma * n) not a multiple of n.
SIZES = [(5, 7, 1.5), (3, 8, 2.0), (9, 4, 0.7), (1, 6, 3.0), (6, 1, 1.0)]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _hidden(n: int, gamma: float) -> int:
    return max(1, round(gamma * n))


def make_layer(kind: str, S: int, C: int, gamma: float) -> nn.Module:
    """One layer of each member of the family, token-like or channel-like."""
    m = S * C
    layers: dict[str, nn.Module] = {
        "token": TokenMixing(S, _hidden(S, gamma)),
        "channel": ChannelMixing(C, _hidden(C, gamma)),
        "pk-commutation": PKMixing(S, C, S, _hidden(S, gamma), commutation(S, C)),
        "rp-token": PKMixing(S, C, S, _hidden(S, gamma), random_permutation(m, _gen(1))),
        "rp-channel": PKMixing(S, C, C, _hidden(C, gamma), random_permutation(m, _gen(2))),
        "pk-two-perms": PKMixing(
            S, C, C, _hidden(C, gamma), *(random_permutation(m, _gen(i)) for i in (3, 4))
        ),
        "monarch-token": MonarchMixing(S, C, _hidden(S, gamma), "token"),
        "monarch-channel": MonarchMixing(S, C, _hidden(C, gamma), "channel"),
        "sw-token": SparseWideMLP(S, C, _hidden(S, gamma) * C, S, _hidden(S, gamma), _gen(5)),
        "sw-channel": SparseWideMLP(S, C, _hidden(C, gamma) * S, C, _hidden(C, gamma), _gen(6)),
    }
    return layers[kind].double()


KINDS = [
    "token", "channel", "pk-commutation", "rp-token", "rp-channel", "pk-two-perms",
    "monarch-token", "monarch-channel", "sw-token", "sw-channel",
]  # fmt: skip


@pytest.mark.parametrize(("S", "C", "gamma"), SIZES)
@pytest.mark.parametrize("kind", KINDS)
def test_fast_layer_matches_reference_outputs_and_gradients(
    kind: str, S: int, C: int, gamma: float
) -> None:
    assert_equals_its_twin(make_layer(kind, S, C, gamma), S, C)


@pytest.mark.parametrize(("S", "C", "gamma"), SIZES)
def test_token_mixing_is_kronecker_with_identity(S: int, C: int, gamma: float) -> None:
    """(W kron I_C) = K^T (I_C kron W) K: the two routes to the same wide matrix."""
    layer = make_layer("token", S, C, gamma)
    assert isinstance(layer, TokenMixing)
    wide = wide_mlp(layer, S, C)
    eye_c = torch.eye(C, dtype=torch.float64)
    torch.testing.assert_close(wide.w1, torch.kron(layer.fc1.weight, eye_c))
    torch.testing.assert_close(wide.w2, torch.kron(layer.fc2.weight, eye_c))


@pytest.mark.parametrize(("S", "C", "gamma"), SIZES)
@pytest.mark.parametrize(
    ("kind", "axis"),
    [
        ("token", "token"), ("channel", "channel"), ("rp-token", "token"),
        ("rp-channel", "channel"), ("monarch-token", "token"),
        ("monarch-channel", "channel"), ("sw-token", "token"), ("sw-channel", "channel"),
    ],
)  # fmt: skip
def test_wide_matrix_density(kind: str, axis: str, S: int, C: int, gamma: float) -> None:
    """Token mixing's wide matrices have density 1/C, channel mixing's 1/S."""
    wide = wide_mlp(make_layer(kind, S, C, gamma), S, C)
    expected = 1 / C if axis == "token" else 1 / S
    assert wide.density == pytest.approx((expected, expected))


@pytest.mark.parametrize(("S", "C", "gamma"), SIZES)
@pytest.mark.parametrize("block", ["token", "channel"])
def test_random_permutation_keeps_singular_values(S: int, C: int, gamma: float, block: str) -> None:
    """The RP layer's wide matrices have the unpermuted layer's singular values."""
    m = S * C
    b = S if block == "token" else C
    h = _hidden(b, gamma)
    plain = PKMixing(S, C, b, h, torch.arange(m)).double()
    rp = PKMixing(S, C, b, h, random_permutation(m, _gen(7))).double()
    rp.load_state_dict({**plain.state_dict(), "perm_in": rp.perm_in, "perm_out": rp.perm_out})
    w_plain, w_rp = wide_mlp(plain, S, C), wide_mlp(rp, S, C)
    assert not torch.equal(w_plain.w1, w_rp.w1) or m == 1
    for a, b_ in ((w_plain.w1, w_rp.w1), (w_plain.w2, w_rp.w2)):
        torch.testing.assert_close(torch.linalg.svdvals(a), torch.linalg.svdvals(b_))


def test_permutation_helpers() -> None:
    perm = random_permutation(12, _gen(0))
    u = torch.randn(12, dtype=torch.float64)
    assert torch.equal(u[perm][inverse(perm)], u)
    torch.testing.assert_close(permutation_matrix(perm) @ u, u[perm])
    x = torch.arange(12.0).view(3, 4)
    assert torch.equal(x.reshape(-1)[commutation(3, 4)], x.t().reshape(-1))


def test_sw_mlp_masked_weights_and_gradients_stay_zero() -> None:
    S, C = 4, 5
    layer = SparseWideMLP(S, C, 2 * S * C, S, 2 * S, _gen(0))
    opt = torch.optim.AdamW(layer.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        layer(torch.randn(8, S, C)).square().mean().backward()
        for fc in (layer.fc1, layer.fc2):
            assert fc.weight.grad is not None
            assert torch.all(fc.weight.grad[fc.mask == 0] == 0)
        opt.step()
    for fc in (layer.fc1, layer.fc2):
        assert torch.all(fc.weight[fc.mask == 0] == 0)
        assert torch.all(fc.weight[fc.mask == 1] != 0)
        assert torch.equal(fc.mask.sum(dim=1), torch.full((fc.out_features,), float(fc.fan_in)))


def test_pk_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="does not divide"):
        PKMixing(3, 5, 4, 2, torch.arange(15))
    with pytest.raises(ValueError, match="perm_in must have shape"):
        PKMixing(3, 5, 5, 2, torch.arange(14))


def test_structure_only_masks_keep_the_fan_in_without_a_random_draw() -> None:
    """Counting builds a fixed mask with the same fan-in; training builds a random one."""
    gen = torch.Generator().manual_seed(0)
    with structure_only():
        fixed = random_mask(12, 30, 4, gen)
        assert torch.equal(fixed, random_mask(12, 30, 4, torch.Generator().manual_seed(1)))
    drawn = random_mask(12, 30, 4, torch.Generator().manual_seed(0))
    other = random_mask(12, 30, 4, torch.Generator().manual_seed(1))
    for mask in (fixed, drawn, other):
        assert torch.equal(mask.sum(dim=1), torch.full((12,), 4.0))
        assert set(torch.unique(mask).tolist()) == {0.0, 1.0}
    assert not torch.equal(drawn, other)
    assert not torch.equal(fixed, drawn)
