"""The import graph points down: a module imports only from its own package or lower ones,
never from the root package (``nas_width/__init__``), so that the layers can be read, tested
and changed bottom-up (CONTRIBUTING.md, "The layering rule")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "nas_width"

#: Lowest first; a module may import from its own entry and the entries before it.
ORDER = [
    {"errors", "_version", "fileio", "tomlfile", "resources", "kinds", "schema"},
    {"config"}, {"layers"}, {"models"}, {"budget"}, {"data"}, {"train"},
    {"analysis"}, {"search"}, {"report"}, {"cli"},
]  # fmt: skip
RANK = {name: i for i, names in enumerate(ORDER) for name in names}


def imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) of every absolute nas_width import in ``path``, lazy ones too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name, []) for a in node.names]
    return [f for f in found if f[1] == "nas_width" or f[1].startswith("nas_width.")]


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name not in {"__init__.py", "__main__.py"}
                 or p.parent != PACKAGE)  # fmt: skip


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    mine = RANK[path.relative_to(PACKAGE).parts[0].removesuffix(".py")]
    for line, module, names in imports(path):
        if module == "nas_width":
            # Only submodules of the lowest layer may be named through the root package.
            assert all(RANK.get(n) == 0 for n in names), f"{path.name}:{line} imports the root"
            continue
        target = module.split(".")[1]
        assert RANK[target] <= mine, f"{path.name}:{line} imports {module} from above"
