"""The paper's ImageNet widening as a search space: Mixer-B/16 against Mixer-B-W.

Hayase & Karakida (2024) widen Mixer-B/16 (S = 196, C = 768) to Mixer-B-W (S = 256, C = 588)
at the same number of connections, keeping the hidden widths D_S = 384 and D_C = 3072 (so
gamma differs between the two shapes, which a TOML space with one gamma list cannot say). Used
as ``space = "nas_width.search.paper:imagenet_widening"`` by ``studies/imagenet-bw.toml``: the
budget solves C back to exactly 768 and 588, and the study trains both.
"""

from __future__ import annotations

from collections.abc import Sequence

from nas_width.config import MixerConfig
from nas_width.models.registry import get_config

__all__ = ["imagenet_widening"]


def imagenet_widening(input_shape: Sequence[int], num_classes: int) -> list[MixerConfig]:
    """Mixer-B/16 and Mixer-B-W for ``input_shape`` (3, 224, 224) and ``num_classes``."""
    return [
        get_config(name, input_shape=tuple(input_shape), num_classes=num_classes)
        for name in ("mixer_b16", "mixer_b16w")
    ]
