"""Measure a config with fvcore: parameters and FLOPs, whole model and mixing layers alone.

fvcore counts one multiply-add as one flop, which makes the mixing layers' FLOPs per sample equal
to the connections of the equivalent wide MLP: an fvcore FLOP budget is the paper's budget of
weights, while a parameter budget counts shared weights once. For the SW-MLP, fvcore sees the
dense masked matmul; its count is scaled by the mask density (the multiply-adds a sparse kernel
does) and masked-out weights are not counted as parameters.
"""

from __future__ import annotations

import functools
import logging
import warnings
from dataclasses import asdict, astuple, dataclass, replace
from typing import Any

import torch

from nas_width.config import MixerConfig
from nas_width.kinds import kind
from nas_width.layers import MaskedLinear, MonarchMixing, SparseWideMLP
from nas_width.layers.sparse import structure_only
from nas_width.models.mixer import build_model

__all__ = ["Measurement", "clear_cache", "measure"]

_PARTS = ("token_mix", "channel_mix")


@dataclass(frozen=True)
class Measurement:
    """What a budget can hold a shape to, per sample, plus the shape in the paper's letters.

    Attributes:
        params / flops: whole model (stem, blocks, norms, head).
        mixing_params / mixing_flops: the token- and channel-mixing layers of all blocks.
        tokens, channels, width: S, C and m = S*C.
        density_token / density_channel: non-zero fraction of the first wide matrix of the
            token-mixing (1/C for the Mixer) and channel-mixing (1/S) layers.
        connections: non-zeros of the wide MLP's matrices over all blocks.
    """

    params: int
    flops: int
    mixing_params: int
    mixing_flops: int
    tokens: int
    channels: int
    width: int
    density_token: float
    density_channel: float
    connections: int
    depth: int
    mixing: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _baddbmm_flops(inputs: list[Any], outputs: list[Any]) -> int:
    """fvcore handle for aten::baddbmm (bias + batch1 @ batch2), which fvcore lacks.

    Counted like fvcore's bmm: (n, c, t) @ (n, t, d) is n*c*t*d multiply-adds; the bias add is
    not a multiply-add.
    """
    from fvcore.nn.jit_handles import get_shape

    n, c, t = get_shape(inputs[1])
    d = get_shape(inputs[2])[-1]
    return int(n * c * t * d)


def _fan_in_and_connections(layer: torch.nn.Module, width: int) -> tuple[int, int]:
    """(inputs per first-layer unit, non-zeros of both wide matrices) of one mixing layer.

    The first wide matrix's density is fan_in / m: S/m = 1/C for token mixing, 1/S for channel
    mixing. Shared-block layers repeat their block m / b times in the wide matrix.
    """
    if isinstance(layer, SparseWideMLP):
        return layer.fc1.fan_in, layer.fc1.nonzeros + layer.fc2.nonzeros
    if isinstance(layer, MonarchMixing):
        return layer.w1.shape[1], layer.w1.numel() + layer.w2.numel()
    fc1, fc2 = layer.fc1, layer.fc2
    assert isinstance(fc1, torch.nn.Linear)
    assert isinstance(fc2, torch.nn.Linear)
    copies = width // fc1.in_features
    return fc1.in_features, copies * (fc1.weight.numel() + fc2.weight.numel())


def measure(config: MixerConfig) -> Measurement:
    """Count ``build_model(config)`` with fvcore (cached per config: configs are frozen).

    Three things that change no count are factored out, so an enumeration traces far fewer
    models than it has candidates:

    * the seed (it draws the RP-Mixer's permutations and the SW-MLP's masks): a sweep's
      replicates share one count;
    * the RP-Mixer's permutations: its layers are the Mixer's shared blocks between two
      gathers, which are neither parameters nor multiply-adds, so ``rp`` is counted as
      ``mixer`` at the same shape (its kind's ``counted_as``, :mod:`nas_width.kinds`);
    * depth: the d blocks are identical, so fvcore counts a depth-1 model (stem, one block,
      norm, head) and the whole model is that plus (d - 1) times its ``blocks.0``.

    ``tests/test_measure.py`` checks every shortcut against a full trace of the real model.

    Example:
        >>> from nas_width import MixerConfig, measure
        >>> cfg = MixerConfig(input_shape=(1, 8, 8), patch=(2, 2), channels=16, depth=1,
        ...                   gamma_token=2, gamma_channel=2)
        >>> r = measure(cfg)
        >>> r.width, r.density_token, r.density_channel, r.mixing_flops == r.connections
        (256, 0.0625, 0.0625, True)
    """
    return _measured(config.replace(seed=0))


def clear_cache() -> None:
    """Forget every count (benchmarks time cold counts)."""
    _measured.cache_clear()
    _measure.cache_clear()


@functools.lru_cache(maxsize=4096)
def _measured(config: MixerConfig) -> Measurement:
    counted_as = kind(config.mixing).counted_as
    counted = config if counted_as is None else config.replace(mixing=counted_as)
    return replace(_measure(counted), mixing=config.mixing)


@dataclass(frozen=True)
class _Part:
    """fvcore's counts of one part of a model (the whole model less its blocks, or one block)."""

    params: int = 0
    flops: int = 0
    mixing_params: int = 0
    mixing_flops: int = 0
    connections: int = 0

    def __add__(self, other: _Part) -> _Part:
        return _Part(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def __mul__(self, k: int) -> _Part:
        return _Part(*(k * a for a in astuple(self)))


@functools.lru_cache(maxsize=4096)
def _measure(config: MixerConfig) -> Measurement:
    rest, block, fan_in = trace_parts(config.replace(depth=1))
    total = rest + block * config.depth
    S, C = config.tokens, config.channels
    return Measurement(
        params=total.params,
        flops=total.flops,
        mixing_params=total.mixing_params,
        mixing_flops=total.mixing_flops,
        tokens=S,
        channels=C,
        width=S * C,
        density_token=fan_in["token_mix"] / (S * C),
        density_channel=fan_in["channel_mix"] / (S * C),
        connections=total.connections,
        depth=config.depth,
        mixing=config.mixing,
    )


def trace_parts(config: MixerConfig) -> tuple[_Part, _Part, dict[str, int]]:
    """One fvcore trace of ``build_model(config)``, split into (rest, mean block, fan-ins).

    ``rest`` is the stem, final norm and head; ``block`` the blocks' counts divided by the depth
    (exact: the blocks are identical in shape); fan-ins are the first wide matrices' inputs per
    unit of the token- and channel-mixing layers. Tests call it at full depth to check
    :func:`measure`'s shortcuts.
    """
    from fvcore.nn import FlopCountAnalysis, parameter_count

    fvcore_logger = logging.getLogger("fvcore")
    previous = fvcore_logger.level, torch.get_num_threads()
    fvcore_logger.setLevel(logging.ERROR)
    # Building and tracing one sample is op-dispatch bound: a second intra-op thread only adds
    # contention (measured 2.1 s vs 17.7 s for 120 shapes on a busy 2-core machine).
    torch.set_num_threads(1)
    try:
        with torch.random.fork_rng(devices=[]), structure_only():
            torch.manual_seed(0)
            model = build_model(config).eval()
        x = torch.zeros(1, *config.input_shape)
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            analysis = FlopCountAnalysis(model, x).set_op_handle("aten::baddbmm", _baddbmm_flops)
            analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            flops_by_module = analysis.by_module()
    finally:
        fvcore_logger.setLevel(previous[0])
        torch.set_num_threads(previous[1])
    params_by_module = parameter_count(model)

    # SW-MLP: fvcore counts the dense masked matmul; keep only the multiply-adds and
    # parameters of the non-zero weights (masks live in the blocks only).
    sparse_flops = sparse_params = 0
    for name, module in model.named_modules():
        if isinstance(module, MaskedLinear):
            sparse_flops += round(flops_by_module[name] * (1 - module.density))
            sparse_params += module.weight.numel() - module.nonzeros

    width, depth = config.tokens * config.channels, config.depth
    blocks = _Part(
        params=params_by_module["blocks"] - sparse_params,
        flops=int(flops_by_module["blocks"]) - sparse_flops,
        mixing_params=sum(
            params_by_module[f"blocks.{i}.{part}"] for i in range(depth) for part in _PARTS
        )
        - sparse_params,
        mixing_flops=int(
            sum(flops_by_module[f"blocks.{i}.{part}"] for i in range(depth) for part in _PARTS)
        )
        - sparse_flops,
    )
    fan_in = dict.fromkeys(_PARTS, 0)
    for block in model.blocks:
        for part in _PARTS:
            fan_in[part], c = _fan_in_and_connections(getattr(block, part), width)
            blocks += _Part(connections=c)
    rest = _Part(
        params=params_by_module[""] - params_by_module["blocks"],
        flops=int(flops_by_module[""] - flops_by_module["blocks"]),
    )
    per_block = _Part(*(v // depth for v in astuple(blocks)))
    if per_block * depth != blocks:
        raise RuntimeError(f"the {depth} blocks of {config} do not count alike")
    return rest, per_block, fan_in
