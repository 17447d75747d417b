"""nas-width: search the width of MLP-Mixer mixing layers at a fixed fvcore-counted budget.

An MLP-Mixer's mixing layers are one wide MLP of width m = S*C whose weights are permuted
Kronecker products (Hayase & Karakida, ICML 2024). nas-width builds that family of layers,
holds every candidate shape to the same budget and searches it.

Only torch is imported here; Optuna, Ray, plotly and the dashboard load where they are used.
"""

from nas_width._version import __version__
from nas_width.budget import Budget, Measurement, measure, parse_budget, solve
from nas_width.config import MIXING_KINDS, MixerConfig, MixingKind
from nas_width.errors import BudgetError, ConfigError, NasWidthError
from nas_width.models import build_model, create_model, get_config, list_models
from nas_width.train import load_model

__all__ = [
    "MIXING_KINDS",
    "Budget",
    "BudgetError",
    "ConfigError",
    "Measurement",
    "MixerConfig",
    "MixingKind",
    "NasWidthError",
    "__version__",
    "build_model",
    "create_model",
    "get_config",
    "list_models",
    "load_model",
    "measure",
    "parse_budget",
    "solve",
]
