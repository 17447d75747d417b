"""Every Python block of README.md runs on its own, in a fresh interpreter, quietly.

The blocks are taken from README as a user copies them; only their sizes are cut (epochs,
trials) so that the suite stays quick, and ``runs/best``, which README's first block loads, is
a model trained and saved the way ``nas-width train`` saves one.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from nas_width import MixerConfig, build_model
from nas_width.data import CLASS_NAMES, load_dataset
from nas_width.train import Recipe, save_trained

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
#: What the test shrinks, and nothing else: the code path stays the user's.
SMALLER = {"epochs=10": "epochs=1", "n_trials=8": "n_trials=2", "num_samples=8": "num_samples=2"}
#: "Quietly": a block prints what it means to print, not pages of library logs.
MOST_LINES = 12


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with ``runs/best``: a digits model saved with its input contract."""
    directory = tmp_path_factory.mktemp("readme")
    data = load_dataset("digits")
    config = MixerConfig(input_shape=(1, 8, 8), patch=(2, 2), channels=8, depth=1,
                         num_classes=10)  # fmt: skip
    contract = {"mean": list(data.mean), "std": list(data.std), "input_shape": [1, 8, 8],
                "num_classes": 10, "dataset": "digits",
                "class_names": CLASS_NAMES.get("digits")}  # fmt: skip
    save_trained(directory / "runs" / "best", build_model(config), config, Recipe(), {},
                 input_contract=contract)  # fmt: skip
    return directory


def test_readme_has_python_blocks() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("number", range(len(BLOCKS)), ids=lambda n: f"block-{n + 1}")
def test_a_readme_block_runs_on_its_own_quietly(number: int, workdir: Path) -> None:
    code = BLOCKS[number]
    for long, short in SMALLER.items():
        code = code.replace(long, short)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = (done.stdout + done.stderr).splitlines()
    assert len(lines) <= MOST_LINES, "\n".join(lines[:40])
