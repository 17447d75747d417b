"""What every benchmark says about the machine: CPU model, load average, fp32 matmul rate."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

__all__ = ["cpu_model", "load_average", "matmul_gflops", "matmul_probes"]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    """The 1, 5 and 15 minute load averages: a busy machine makes every timing suspect."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def matmul_probes(n: int = 2048) -> dict[str, Callable[[], None]]:
    """One fp32 n x n x n matmul per call by each of the two CPU backends.

    ``torch.mm`` runs the BLAS (MKL), which is what ``nn.Linear`` uses; a 1x1 convolution runs
    oneDNN, which nas_width's layers use on CPU. The faster one is the machine's matmul rate.
    """
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    x, w = a.view(1, n, n), b.view(n, n, 1)

    def mm() -> None:
        torch.mm(a, b, out=out)

    def conv() -> None:
        F.conv1d(x, w)  # (1, n, n) -> (1, n, n): W (n x n) @ X (n x n)

    return {"torch.mm (BLAS)": mm, "1x1 conv (oneDNN)": conv}


def matmul_gflops(n: int = 2048, seconds: float = 1.0) -> dict[str, float]:
    """GFLOP/s (2 per multiply-add) of each :func:`matmul_probes` backend, at the current
    ``torch.get_num_threads()``: the best of ``seconds``' worth of calls, after one warm-up."""
    rates = {}
    for name, fn in matmul_probes(n).items():
        fn()
        best, deadline = float("inf"), time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t0)
        rates[name] = 2 * n**3 / best / 1e9
    return rates
