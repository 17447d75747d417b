"""Named variants: the published MLP-Mixer shapes and the paper's widened shape.

Tolstikhin et al. (2021), Table 1, give per variant the patch size, C (hidden size), D_S (token
MLP width) and D_C (channel MLP width) at 224 x 224. MixerConfig states the hidden widths as
expansions of S and C, so gamma_token = D_S / S and gamma_channel = D_C / C.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from nas_width.config import MixerConfig
from nas_width.errors import ConfigError
from nas_width.models.mixer import MixerModel, build_model

__all__ = ["create_model", "get_config", "list_models"]

_IMAGENET = (3, 224, 224)


def _published(patch: int, channels: int, depth: int, d_s: int, d_c: int) -> MixerConfig:
    tokens = (224 // patch) ** 2
    return MixerConfig(
        input_shape=_IMAGENET,
        patch=(patch, patch),
        channels=channels,
        depth=depth,
        gamma_token=d_s / tokens,
        gamma_channel=d_c / channels,
        num_classes=1000,
    )


_VARIANTS: dict[str, MixerConfig] = {
    "mixer_s32": _published(32, 512, 8, 256, 2048),
    "mixer_s16": _published(16, 512, 8, 256, 2048),
    "mixer_b32": _published(32, 768, 12, 384, 3072),
    "mixer_b16": _published(16, 768, 12, 384, 3072),
    "mixer_l32": _published(32, 1024, 24, 512, 4096),
    "mixer_l16": _published(16, 1024, 24, 512, 4096),
    "mixer_h14": _published(14, 1280, 32, 640, 5120),
    # Hayase & Karakida (2024): Mixer-B-W, B/16 widened to S = 256 (patch 14), C = 588. S*C
    # stays 150,528 and the hidden widths stay D_S = 384, D_C = 3072, so the block's connections
    # 2*S*C*(D_S + D_C) equal B/16's exactly (the paper's fixed budget) while the channel MLP's
    # effective hidden width S*D_C grows by 31%.
    "mixer_b16w": _published(14, 588, 12, 384, 3072),
    # Mixer-SS/8 on 32 x 32 CIFAR (S = 16): the paper's small CIFAR baseline, whose exact sizes
    # our sources do not give. Ours: C = 256, depth 8, gamma_S = 2, gamma_C = 4; its widened
    # shape at the same connections is solved by the cifar10-widen study (S = 64, C = 115).
    "mixer_ss8": MixerConfig(
        input_shape=(3, 32, 32), patch=(8, 8), channels=256, depth=8, num_classes=10
    ).replace(gamma_token=2.0, gamma_channel=4.0),
}


def list_models(pattern: str = "*") -> list[str]:
    """Names accepted by :func:`create_model` that match the shell-style ``pattern``, sorted
    (timm's habit: ``list_models("mixer_b*")``)."""
    return sorted(fnmatch.filter(_VARIANTS, pattern))


def get_config(name: str, **overrides: Any) -> MixerConfig:
    """The registered config ``name`` with ``overrides`` applied (e.g. a smaller input)."""
    try:
        base = _VARIANTS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; known: {', '.join(list_models())}") from None
    return base.replace(**overrides) if overrides else base


def create_model(name: str, **overrides: Any) -> MixerModel:
    """Build a registered variant, timm-style: ``create_model("mixer_b16", num_classes=10)``."""
    return build_model(get_config(name, **overrides))
