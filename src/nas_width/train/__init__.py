"""Train one candidate architecture: the recipe, the loop and trained-model checkpoints.

Everything a trial needs and nothing of the orchestration: :func:`fit` trains a
:class:`~nas_width.MixerConfig` on in-memory :class:`~nas_width.data.splits.Splits` under a
:class:`Recipe` and reports each epoch through a callback (Ray Tune's or Optuna's);
:func:`save_trained` / :func:`load_trained` keep the result with its config as JSON.

Example:
    >>> from nas_width.train import Recipe, lr_at
    >>> Recipe(epochs=3).to_dict()["warmup_epochs"]
    1.0
    >>> lr_at(0, total=10, warmup=0)
    1.0
"""

from nas_width.train.checkpoint import (
    CheckpointError,
    load_input_contract,
    load_model,
    load_trained,
    save_trained,
)
from nas_width.train.loop import (
    EpochReport,
    FitResult,
    Training,
    TrialFailed,
    check_data,
    evaluate,
    fit,
    resolve_device,
)
from nas_width.train.optim import lr_at, make_optimizer, no_weight_decay, parameter_groups
from nas_width.train.recipe import AUGMENTATIONS, Recipe
from nas_width.train.tuning import Candidate, Tuning, successive_halving

__all__ = [
    "AUGMENTATIONS",
    "Candidate",
    "CheckpointError",
    "EpochReport",
    "FitResult",
    "Recipe",
    "Training",
    "TrialFailed",
    "Tuning",
    "check_data",
    "evaluate",
    "fit",
    "load_input_contract",
    "load_model",
    "load_trained",
    "lr_at",
    "make_optimizer",
    "no_weight_decay",
    "parameter_groups",
    "resolve_device",
    "save_trained",
    "successive_halving",
]
