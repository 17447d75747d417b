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
from dataclasses import asdict, dataclass
from typing import Any

import torch

from nas_width.config import MixerConfig
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

    The seed draws the RP-Mixer's permutations and the SW-MLP's masks, which change no count,
    so configs that differ only in their seed share one fvcore trace (a sweep's replicates
    cost one count, not three).

    Example:
        >>> from nas_width import MixerConfig, measure
        >>> cfg = MixerConfig(input_shape=(1, 8, 8), patch=(2, 2), channels=16, depth=1,
        ...                   gamma_token=2, gamma_channel=2)
        >>> r = measure(cfg)
        >>> r.width, r.density_token, r.density_channel, r.mixing_flops == r.connections
        (256, 0.0625, 0.0625, True)
    """
    return _measure(config.replace(seed=0))


def clear_cache() -> None:
    """Forget every count (benchmarks time cold counts)."""
    _measure.cache_clear()


@functools.lru_cache(maxsize=4096)
def _measure(config: MixerConfig) -> Measurement:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    S, C = config.tokens, config.channels
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
    # parameters of the non-zero weights.
    sparse_flops = sparse_params = 0
    for name, module in model.named_modules():
        if isinstance(module, MaskedLinear):
            sparse_flops += round(flops_by_module[name] * (1 - module.density))
            sparse_params += module.weight.numel() - module.nonzeros

    mixing_names = [f"blocks.{i}.{part}" for i in range(config.depth) for part in _PARTS]
    m = S * C
    connections = 0
    fan_in = dict.fromkeys(_PARTS, 0)
    for block in model.blocks:
        for part in _PARTS:
            fan_in[part], c = _fan_in_and_connections(getattr(block, part), m)
            connections += c
    return Measurement(
        params=params_by_module[""] - sparse_params,
        flops=int(flops_by_module[""]) - sparse_flops,
        mixing_params=sum(params_by_module[n] for n in mixing_names) - sparse_params,
        mixing_flops=int(sum(flops_by_module[n] for n in mixing_names)) - sparse_flops,
        tokens=S,
        channels=C,
        width=S * C,
        density_token=fan_in["token_mix"] / m,
        density_channel=fan_in["channel_mix"] / m,
        connections=connections,
        depth=config.depth,
        mixing=config.mixing,
    )
