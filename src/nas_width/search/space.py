"""Search spaces over PK-family mixing-layer shapes at a fixed budget.

A space says what varies (mixing kind, patch grid and hence S, gamma_token, gamma_channel,
depth, seeds) and the budget fixes C: every candidate's channels are solved so that it meets the
budget within its tolerance. The feasible shapes are computed once, before any trial, so that
Optuna always sees the same distribution: one categorical parameter ``shape`` whose choices are
readable keys such as ``mixer-S16-p2x2-gt2-gc4-d2``.

Spaces come from TOML files (``search_spaces/*.toml``) or from a Python callable
``module:function`` that takes ``(input_shape, num_classes)`` and returns candidate
:class:`~nas_width.MixerConfig` objects (their ``channels`` is ignored: C is solved).
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import itertools
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nas_width import resources
from nas_width.budget import Budget, solve
from nas_width.config import MixerConfig
from nas_width.errors import BudgetError, ConfigError
from nas_width.kinds import KINDS
from nas_width.tomlfile import check_keys, expect, read_toml

if TYPE_CHECKING:
    import optuna

__all__ = [
    "Infeasible",
    "SearchSpace",
    "SolvedShapes",
    "divisor_patches",
    "load_space",
    "shape_key",
    "shapes_hash",
]

Candidates = Callable[[tuple[int, ...], int], Iterable[MixerConfig]]
_KEYS = (
    "name", "description", "mixing", "patch", "gamma_token", "gamma_channel", "depth",
    "seeds", "min_tokens", "max_tokens", "density",
)  # fmt: skip


def divisor_patches(input_shape: Sequence[int], square: bool = False) -> list[tuple[int, ...]]:
    """Every patch shape that tiles the input: per axis, each divisor of its size."""
    spatial = list(input_shape[1:])
    per_axis = [[d for d in range(1, n + 1) if n % d == 0] for n in spatial]
    patches = [tuple(p) for p in itertools.product(*per_axis)]
    return [p for p in patches if not square or len(set(p)) == 1]


def shape_key(cfg: MixerConfig, with_seed: bool = False) -> str:
    """A readable, unique name of a shape; C is not part of it (the budget solves C)."""
    patch = "x".join(map(str, cfg.patch))
    key = (
        f"{cfg.mixing}-S{cfg.tokens}-p{patch}-gt{cfg.gamma_token:g}"
        f"-gc{cfg.gamma_channel:g}-d{cfg.depth}"
    )
    return f"{key}-s{cfg.seed}" if with_seed else key


@dataclass(frozen=True)
class Infeasible:
    """A candidate shape that no C holds at the budget: its key, S, and the solver's reason
    (which names the nearest C, its count and its error)."""

    key: str
    tokens: int
    reason: str


@dataclass(frozen=True)
class SolvedShapes:
    """A space at one budget: the feasible shapes by key, the infeasible ones, and how many
    candidates there were (seeds of one shape count once each)."""

    feasible: dict[str, MixerConfig]
    infeasible: list[Infeasible]
    candidates: int

    def ratio_note(self) -> str:
        """Where the feasible shapes lie against S = C, in words."""
        if not self.feasible:
            return "no feasible shape"
        ratios = [c.tokens / c.channels for c in self.feasible.values()]
        lo, hi = min(ratios), max(ratios)
        span = f"S/C from {lo:.3g} to {hi:.3g}"
        if lo <= 1 <= hi:
            return f"{span}, both sides of S = C"
        side = "below" if hi < 1 else "above"
        return f"{span}: every shape lies {side} S = C (no patch grid of the space reaches it)"


@dataclass(frozen=True)
class SearchSpace:
    """What varies in a width search; ``shapes`` gives the budget-feasible configs.

    Attributes:
        name: the space's name (its file stem for shipped spaces).
        definition: the space as plain data (TOML table, or ``{"callable": "mod:fn"}``);
            its hash identifies the space in a stored study.
    """

    name: str
    definition: dict[str, Any]
    candidates: Candidates = field(compare=False, repr=False)

    @property
    def hash(self) -> str:
        """Content hash of the definition (12 hex digits)."""
        text = json.dumps(self.definition, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def solve(self, budget: Budget, input_shape: tuple[int, ...], num_classes: int) -> SolvedShapes:
        """Every candidate at ``budget``: the feasible ones with C (and, where needed, the hidden
        widths) solved, and the ones no C can hold, each with the solver's reason."""
        configs = list(self.candidates(tuple(input_shape), num_classes))
        with_seed = len({c.seed for c in configs}) > 1
        shapes: dict[str, MixerConfig] = {}
        infeasible: dict[str, Infeasible] = {}
        for cfg in configs:
            try:
                solved = solve(cfg, budget)
            except BudgetError as err:
                key = shape_key(cfg, with_seed)
                infeasible.setdefault(key, Infeasible(key, cfg.tokens, str(err)))
                continue
            shapes.setdefault(shape_key(solved, with_seed), solved)
        return SolvedShapes(
            dict(sorted(shapes.items())), sorted(infeasible.values(), key=lambda i: i.key),
            len(configs),
        )  # fmt: skip

    def shapes(
        self, budget: Budget, input_shape: tuple[int, ...], num_classes: int
    ) -> dict[str, MixerConfig]:
        """The feasible shapes, C solved for ``budget``, keyed by :func:`shape_key`.

        Candidates that cannot meet the budget within its tolerance are left out
        (:meth:`solve` lists them with the reason); if none is left,
        :class:`~nas_width.BudgetError` says so.
        """
        solved = self.solve(budget, input_shape, num_classes)
        if not solved.feasible:
            raise BudgetError(
                f"budget {budget} is infeasible for every one of the {solved.candidates} shapes "
                f"of space {self.name!r} (input {list(input_shape)})"
            )
        return solved.feasible

    def suggest(self, trial: optuna.Trial, shapes: dict[str, MixerConfig]) -> MixerConfig:
        """Plugin use in an Optuna objective: sample one of the feasible ``shapes``."""
        return shapes[str(trial.suggest_categorical("shape", list(shapes)))]


def _list(where: str, value: Any, kind: type | tuple[type, ...]) -> list[Any]:
    values = value if isinstance(value, list) else [value]
    if not values or not all(isinstance(v, kind) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{where} must be a non-empty list, got {value!r}")
    return values


def _from_table(name: str, table: dict[str, Any], where: str) -> SearchSpace:
    check_keys(where, table, _KEYS)
    for key in ("name", "description"):  # strings, so that the definition is plain JSON
        if key in table:
            expect(f"{where}: {key}", table[key], str, "a string")
    mixing = _list(f"{where}: mixing", table.get("mixing", ["mixer"]), str)
    bad = [m for m in mixing if m not in KINDS]
    if bad:
        raise ConfigError(f"{where}: mixing {bad[0]!r} is not one of {list(KINDS)}")
    gammas_t = _list(f"{where}: gamma_token", table.get("gamma_token", [2.0]), (int, float))
    gammas_c = _list(f"{where}: gamma_channel", table.get("gamma_channel", [4.0]), (int, float))
    depths = _list(f"{where}: depth", table.get("depth", [2]), int)
    seeds = _list(f"{where}: seeds", table.get("seeds", [0]), int)
    patch = table.get("patch", "all")
    if patch not in ("all", "square"):
        patch = [_list(f"{where}: patch", p, int) for p in _list(f"{where}: patch", patch, list)]
    min_tokens, max_tokens = table.get("min_tokens", 2), table.get("max_tokens", 1 << 30)
    for key, value in (("min_tokens", min_tokens), ("max_tokens", max_tokens)):
        expect(f"{where}: {key}", value, int, "an integer >= 1", lambda v: v >= 1)
    density = table.get("density")
    if density is not None:
        expect(f"{where}: density", density, (int, float), "in (0, 1]", lambda v: 0 < v <= 1)

    def candidates(input_shape: tuple[int, ...], num_classes: int) -> Iterable[MixerConfig]:
        patches = (
            divisor_patches(input_shape, square=patch == "square")
            if isinstance(patch, str)
            else [tuple(p) for p in patch]
        )
        for mix, p, gt, gc, d, seed in itertools.product(
            mixing, patches, gammas_t, gammas_c, depths, seeds
        ):
            cfg = MixerConfig(
                input_shape=input_shape, patch=p, channels=1, depth=d, gamma_token=gt,
                gamma_channel=gc, mixing=mix, num_classes=num_classes, seed=seed,
                density=density if mix == "sw-mlp" else None,
            )  # fmt: skip
            if min_tokens <= cfg.tokens <= max_tokens:
                yield cfg

    definition = {"name": name, **table}
    return SearchSpace(str(table.get("name", name)), definition, candidates)


def _from_callable(spec: str) -> SearchSpace:
    module_name, _, attr = spec.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(
            f"space {spec!r}: cannot import {attr!r} from {module_name!r}: {err}"
        ) from None
    if not callable(func):
        raise ConfigError(f"space {spec!r} is not callable")
    try:
        inspect.signature(func).bind((1, 8, 8), 10)
    except TypeError:
        raise ConfigError(f"space {spec!r} does not take (input_shape, num_classes)") from None
    except ValueError:
        pass  # a builtin without a signature: its call says

    def candidates(input_shape: tuple[int, ...], num_classes: int) -> list[MixerConfig]:
        try:
            made = func(input_shape, num_classes)
        except (ConfigError, BudgetError):
            raise
        except Exception as err:  # the user's function failed: one line naming it
            reason = " ".join(f"{type(err).__name__}: {err}".split())[:300]
            raise ConfigError(f"space {spec!r} failed: {reason}") from None
        configs = list(made) if isinstance(made, Iterable) else [made]
        for c in configs:
            if not isinstance(c, MixerConfig):
                raise ConfigError(
                    f"space {spec!r} returned {type(c).__name__} {c!r:.60}, not MixerConfig "
                    "candidates"
                )
        return configs

    return SearchSpace(spec, {"callable": spec}, candidates)


def load_space(spec: str | Path) -> SearchSpace:
    """A space by shipped name (``mixer``), TOML path, or ``module:function``."""
    text = str(spec)
    if ":" in text and not Path(text).exists() and not text.endswith(".toml"):
        return _from_callable(text)
    path = resources.find("search_spaces", text, "search space")
    return _from_table(path.stem, read_toml(path), str(path))


def shapes_hash(shapes: dict[str, MixerConfig]) -> str:
    """Content hash of the feasible shapes, their solved configs included (12 hex digits): a
    study resumed with shapes solved differently (another budget solver) is refused."""
    text = json.dumps({k: c.to_dict() for k, c in shapes.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def space_size(shapes: dict[str, MixerConfig]) -> dict[str, Any]:
    """A short summary of the feasible shapes (for the study's user attributes)."""
    tokens = sorted({c.tokens for c in shapes.values()})
    ratio = [math.log2(c.tokens / c.channels) for c in shapes.values()]
    return {"shapes": len(shapes), "tokens": tokens, "log2_s_over_c": [min(ratio), max(ratio)]}
