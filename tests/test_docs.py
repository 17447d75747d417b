"""The runnable examples in public docstrings stay true, and shipped files are found."""

from __future__ import annotations

import doctest
import importlib

import pytest

from nas_width import resources

MODULES = [
    "nas_width.config",
    "nas_width.kinds",
    "nas_width.budget.measure",
    "nas_width.budget.solve",
    "nas_width.data",
    "nas_width.train",
    "nas_width.analysis.hypothesis",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize("kind", ["search_spaces", "studies"])
def test_shipped_directories_are_found(kind: resources.Kind) -> None:
    assert (resources.path(kind) / "README.md").is_file()
