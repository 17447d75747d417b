"""Width search: spaces, study files, the Ray Tune trainable and the Optuna-backed runner.

One job per module:

- ``space``: the search space, and C solved for every candidate shape at the budget;
- ``study``: study files (TOML) read into a :class:`StudySpec`;
- ``prepare``: a search validated and its shapes solved, before anything is stored;
- ``storage``: storage strings opened, and the studies in them;
- ``opening``: a study created with all its settings, or reopened for ``--resume``;
- ``lease``: one search at a time per study;
- ``recovery``: trials of a stopped search failed and queued again;
- ``runner``: the orchestration (Ray, signals, the end of a search);
- ``summary``: what a search left in its study, as plain data;
- ``errors``: every way a search refuses or stops;
- ``export``: a trial written as a file to train from, and read back;
- ``sampler``, ``shape_tpe``, ``searcher``, ``trainable``, ``progress``, ``ray_session``:
  the parts Optuna and Ray Tune run; ``internals``: every private Optuna/Ray attribute used.

Importing this package loads no Ray or Optuna; they load in the modules that use them.
"""

from nas_width.search.space import SearchSpace, divisor_patches, load_space, shape_key
from nas_width.search.study import DatasetSpec, Resources, StudySpec, load_spec, load_study

__all__ = [
    "DatasetSpec",
    "Resources",
    "SearchSpace",
    "StudySpec",
    "divisor_patches",
    "load_space",
    "load_spec",
    "load_study",
    "shape_key",
]
