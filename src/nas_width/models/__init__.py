"""Mixer-family models and the registry of named variants."""

from nas_width.models.mixer import MixerBlock, MixerModel, PatchEmbed, build_model, mixing_layers
from nas_width.models.registry import create_model, get_config, list_models

__all__ = [
    "MixerBlock",
    "MixerModel",
    "PatchEmbed",
    "build_model",
    "create_model",
    "get_config",
    "list_models",
    "mixing_layers",
]
