"""The throughput benchmark of issue #2 runs end to end (``--quick``); no timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_throughput.py"


def test_quick_throughput_benchmark_runs_and_compares_with_the_peer(tmp_path: Path) -> None:
    pytest.importorskip("mlp_mixer_pytorch")
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert any("mlp-mixer-pytorch" in line for line in table), done.stdout
    assert any("nas_width rp" in line for line in table), done.stdout
    assert out.is_file()
