"""AdamW with decay only on weight matrices, and the per-step warm-up + cosine schedule.

Kept apart from the loop so the two choices a reader most often wants to check (which
parameters are decayed, what the learning rate is at step t) are plain functions with tests.
"""

from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn

__all__ = ["lr_at", "make_optimizer", "no_weight_decay", "parameter_groups"]

_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.modules.batchnorm._NormBase)
# "bias", and the b1/b2 biases of MonarchMixing, which are 3-D (a, 1, h): one bias per block.
_BIAS_NAME = re.compile(r"bias\w*|b\d*")


def lr_at(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier (of the peak ``Recipe.lr``) at 0-based optimizer step ``step``.

    Linear warm-up ``(step + 1) / (warmup + 1)`` for ``step < warmup`` (so the first step is not
    wasted at lr 0), reaching 1 at ``step == warmup``; then a cosine
    ``0.5 * (1 + cos(pi * (step - warmup) / (total - warmup)))`` that is 0 at ``step == total``.

    Args:
        step: optimizer steps taken so far (``LambdaLR``'s ``last_epoch``).
        total: steps of the whole run, epochs * steps_per_epoch.
        warmup: warm-up steps, round(warmup_epochs * steps_per_epoch), at most ``total``.

    Example:
        >>> [round(lr_at(s, total=6, warmup=2), 3) for s in range(7)]
        [0.333, 0.667, 1.0, 0.854, 0.5, 0.146, 0.0]
    """
    if total < 1 or not 0 <= warmup <= total:
        raise ValueError(f"need total >= 1 and 0 <= warmup <= total, got {total=}, {warmup=}")
    if step < warmup:
        return (step + 1) / (warmup + 1)
    if step >= total:
        return 0.0
    progress = (step - warmup) / (total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def no_weight_decay(model: nn.Module) -> set[str]:
    """Names of the parameters that AdamW must not decay.

    Biases (``bias``, Monarch's ``b1``/``b2``), the affine weights of normalization layers and
    every parameter with at most one dimension: decaying them only shifts activations or undoes
    the normalization, it does not regularize the width the study is about.
    """
    names: set[str] = set()
    for module_name, module in model.named_modules():
        for local, param in module.named_parameters(recurse=False):
            full = f"{module_name}.{local}" if module_name else local
            if param.ndim <= 1 or isinstance(module, _NORMS) or _BIAS_NAME.fullmatch(local):
                names.add(full)
    return names


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Two AdamW groups: ``weight_decay`` on weight matrices, 0 on :func:`no_weight_decay`."""
    skip = no_weight_decay(model)
    decay: list[nn.Parameter] = []
    plain: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (plain if name in skip else decay).append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def make_optimizer(
    model: nn.Module,
    *,
    lr: float,
    weight_decay: float,
    total_steps: int,
    warmup_steps: int,
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over :func:`parameter_groups` and a ``LambdaLR`` of :func:`lr_at`, stepped per batch.

    On CPU and CUDA the fused AdamW kernel is used: one kernel per step instead of about ten
    small ops per parameter tensor. On the 2-core CPU, one thread, a 50k-parameter Mixer's
    epoch ran 7.5% (digits) and 4.2% (MNIST-1D) faster than with the for-loop AdamW.
    """
    fused = all(p.device.type in ("cpu", "cuda") for p in model.parameters())
    groups = parameter_groups(model, weight_decay)
    optimizer = torch.optim.AdamW(groups, lr=lr, fused=fused or None)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_at(step, total_steps, warmup_steps)
    )
    return optimizer, schedule
