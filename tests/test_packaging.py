"""The dependency ranges mean something: CI installs both of their ends.

``constraints/oldest.txt`` pins every ranged dependency at its lower bound (CI's oldest-versions
smoke run), ``constraints/lock.txt`` pins what the main CI run installs, and each fast-moving
dependency is bounded above at the newest minor release that was tested.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
FAST_MOVING = (
    "optuna", "optuna-dashboard", "ray", "plotly", "typer", "scikit-learn", "scipy", "numpy",
    "fvcore",
)  # fmt: skip


def requirements() -> dict[str, Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = (Requirement(line) for line in project["dependencies"])
    return {canonicalize_name(r.name): r for r in reqs}


def pins(name: str) -> dict[str, Version]:
    lines = (ROOT / "constraints" / name).read_text().splitlines()
    pairs = (line.split("==") for line in lines if line and not line.startswith("#"))
    return {canonicalize_name(k): Version(v) for k, v in pairs}


def lower(req: Requirement) -> Version | None:
    found = [Version(s.version) for s in req.specifier if s.operator == ">="]
    return found[0] if found else None


def test_oldest_pins_every_lower_bound_and_nothing_else() -> None:
    bounds = {name: lower(req) for name, req in requirements().items()}
    assert all(bounds.values()), f"dependencies without a lower bound: {bounds}"
    assert pins("oldest.txt") == bounds


@pytest.mark.parametrize("name", FAST_MOVING)
def test_fast_moving_dependencies_are_bounded_above(name: str) -> None:
    req = requirements()[name]
    assert any(s.operator == "<" for s in req.specifier), f"{name} has no upper bound: {req}"


@pytest.mark.parametrize("name", sorted(requirements()))
def test_lock_and_oldest_lie_inside_each_range(name: str) -> None:
    req = requirements()[name]
    for pinned in ("lock.txt", "oldest.txt"):
        version = pins(pinned).get(name)
        if name == "torch" and pinned == "lock.txt":
            continue  # installed before the lock, as README's setup does
        assert version is not None, f"{pinned} does not pin {name}"
        assert req.specifier.contains(version, prereleases=True), (pinned, name, version)


def test_one_version_source_and_typed_marker() -> None:
    """The build reads the version from nas_width.__version__ (no second copy in pyproject),
    and the package says it ships type hints (PEP 561)."""
    import importlib.metadata

    import nas_width

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    assert importlib.metadata.version("nas-width") == nas_width.__version__
    assert (Path(nas_width.__file__).parent / "py.typed").is_file()
