"""Shared fixtures: deterministic torch, small configs for every mixing kind."""

from __future__ import annotations

import pytest
import torch

from nas_width import MIXING_KINDS, MixerConfig


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(params=MIXING_KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def small_config(mixing: str = "mixer", **overrides: object) -> MixerConfig:
    """An 8x8 single-channel image config with S=16 that builds in milliseconds."""
    fields: dict[str, object] = {
        "input_shape": (1, 8, 8),
        "patch": (2, 2),
        "channels": 12,
        "depth": 2,
        "gamma_token": 1.5,
        "gamma_channel": 3.0,
        "mixing": mixing,
    }
    fields.update(overrides)
    return MixerConfig(**fields)  # type: ignore[arg-type]
