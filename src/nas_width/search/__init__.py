"""Width search: spaces, studies, the Ray Tune trainable and the Optuna-backed runner.

Importing this package loads no Ray or Optuna; they load in the modules that use them
(:mod:`nas_width.search.runner`, :mod:`~nas_width.search.searcher`, ...).
"""

from nas_width.search.space import SearchSpace, divisor_patches, load_space, shape_key
from nas_width.search.study import DatasetSpec, Resources, StudySpec, load_study

__all__ = [
    "DatasetSpec",
    "Resources",
    "SearchSpace",
    "StudySpec",
    "divisor_patches",
    "load_space",
    "load_study",
    "shape_key",
]
