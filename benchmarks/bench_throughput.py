"""Training throughput of nas_width's Mixer and RP-Mixer against mlp-mixer-pytorch (issue #2).

Why: nas_width claims that its structured layers (a reshape or a precomputed gather plus dense
matmuls over the shared blocks, never the wide S*C x S*C matrix) train at least as fast as the
standard implementation of the same network. This script measures that claim on the machine it
runs on, in one run:

* images/s of a full training step (forward, cross-entropy backward, AdamW step; fp32) of
  ``build_model(MixerConfig(..., mixing="mixer"))``, of ``mixing="rp"`` (the RP-Mixer) and of
  ``mlp_mixer_pytorch.MLPMixer`` at identical shapes (parameter counts and fvcore FLOPs are
  asserted equal before timing);
* at a small width (m = S*C of a few thousand) also the dense reference twin: the same network
  whose mixing layers apply the explicit wide m x gamma*m matrices of
  :func:`nas_width.layers.wide_mlp` densely, i.e. what the structure saves;
* each model's achieved FLOP/s as a fraction of the machine's fp32 matmul FLOP/s, measured in
  the same run on 2048 x 2048 x 2048 products by both CPU backends (the BLAS behind
  ``torch.mm`` and oneDNN), taking the faster.

Convention: fvcore counts one multiply-add as one flop, so a training step costs
3 (forward, input gradient, weight gradient) x 2 (flops per multiply-add) x the forward
multiply-adds of ``nas_width.measure(config).flops`` per image.

Shapes: CIFAR's (3, 32, 32) with patch 4, so S = 64 tokens; gamma_token = 2 (token hidden 128)
and gamma_channel = 4 (channel hidden 4C), the ratios of Mixer-B/16 (D_S = 384 for S = 196,
D_C = 4C). Timing: warm-up steps, then ``--rounds`` rounds in which every model of a size and
the matmul probes run one window of about ``--window`` seconds each, the order rotating each
round so that machine noise hits all alike. The table gives medians over windows, and against
the peer the median of per-round ratios. The machine may be shared: each window records the
share of its threads' CPU time the process got, and windows that other load slowed are left out
of the medians.

Usage::

    python benchmarks/bench_throughput.py            # full run, a few minutes
    python benchmarks/bench_throughput.py --quick    # tiny sizes, seconds (CI)
    python benchmarks/bench_throughput.py --json results.json
"""

from __future__ import annotations

import argparse
import copy
import ctypes
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from _machine import cpu_model, load_average, matmul_probes
from nas_width import MixerConfig, build_model, measure
from nas_width.layers import WideMLP, wide_mlp

PEER = "mlp-mixer-pytorch"
INPUT_SHAPE = (3, 32, 32)
PATCH = 4
GAMMA_TOKEN = 2.0
GAMMA_CHANNEL = 4.0
MATMUL_N = 2048
UNDISTURBED = 0.85  # a window whose CPU share is below this was slowed by other load


@dataclass(frozen=True)
class Size:
    """One row group: C channels (S = 64 fixed by the input), with or without the dense twin."""

    channels: int
    dense_twin: bool = False


@dataclass
class Row:
    """One model at one size: what was timed and what it achieved."""

    channels: int
    width: int
    model: str
    params: int
    forward_macs: int  # per image, fvcore (one multiply-add = one flop)
    images_per_s: float = 0.0  # median over undisturbed windows
    images_per_s_min: float = 0.0
    images_per_s_max: float = 0.0
    vs_peer: float = float("nan")  # median over rounds of this / mlp-mixer-pytorch, same round
    of_matmul: float = float("nan")  # median over rounds of FLOP/s / matmul FLOP/s, same round
    cpu_share: float = 0.0  # median share of its threads' CPU time the process got
    windows: list[float] = field(default_factory=list)  # img/s of every window, round order
    undisturbed: list[bool] = field(default_factory=list)  # CPU share >= UNDISTURBED

    @property
    def train_flops(self) -> int:
        """3 x forward multiply-adds x 2 flops, per image."""
        return 6 * self.forward_macs

    @property
    def gflops(self) -> float:
        return self.images_per_s * self.train_flops / 1e9


# --- models ----------------------------------------------------------------------------------


def config_for(channels: int, depth: int) -> MixerConfig:
    """The Mixer at C channels; ``.replace(mixing="rp")`` gives the RP-Mixer of the same shape."""
    return MixerConfig(
        input_shape=INPUT_SHAPE,
        patch=(PATCH, PATCH),
        channels=channels,
        depth=depth,
        gamma_token=GAMMA_TOKEN,
        gamma_channel=GAMMA_CHANNEL,
    )


def peer_model(config: MixerConfig) -> nn.Module:
    """mlp-mixer-pytorch's MLPMixer with nas_width's hidden widths.

    Its token MLP (``expansion_factor``) has hidden width int(factor * dim) with dim = C, not
    relative to S; its channel MLP (``expansion_factor_token``) int(factor * C). int() floors,
    so the factors aim at the middle of the integer to survive rounding.
    """
    from mlp_mixer_pytorch import MLPMixer

    C = config.channels
    token_factor = (config.token_hidden + 0.5) / C
    channel_factor = (config.channel_hidden + 0.5) / C
    assert int(token_factor * C) == config.token_hidden
    assert int(channel_factor * C) == config.channel_hidden
    model: nn.Module = MLPMixer(
        image_size=config.input_shape[1:],
        channels=config.input_shape[0],
        patch_size=config.patch[0],
        dim=C,
        depth=config.depth,
        num_classes=config.num_classes,
        expansion_factor=token_factor,
        expansion_factor_token=channel_factor,
    )
    return model


class DenseMixing(nn.Module):
    """A mixing layer as its explicit wide MLP: u -> W2 gelu(W1 u + b1) + b2, u = vec_r(X)."""

    def __init__(self, wide: WideMLP) -> None:
        super().__init__()
        self.w1, self.b1, self.w2, self.b2 = (
            nn.Parameter(t.detach().float().contiguous())
            for t in (wide.w1, wide.b1, wide.w2, wide.b2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.reshape(x.shape[0], -1)  # (B, m)
        return F.linear(F.gelu(F.linear(u, self.w1, self.b1)), self.w2, self.b2).view_as(x)


def dense_twin(model: nn.Module, config: MixerConfig) -> nn.Module:
    """``model`` with every mixing layer replaced by its dense wide-MLP twin (same function)."""
    twin = copy.deepcopy(model)
    S, C = config.tokens, config.channels
    with torch.no_grad():
        for block in twin.blocks:  # type: ignore[union-attr]
            block.token_mix = DenseMixing(wide_mlp(block.token_mix, S, C))
            block.channel_mix = DenseMixing(wide_mlp(block.channel_mix, S, C))
        x = torch.randn(4, *config.input_shape)
        torch.testing.assert_close(twin(x), model(x), rtol=1e-4, atol=1e-4)
    return twin


def fvcore_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Forward multiply-adds per image as fvcore counts them."""
    from fvcore.nn import FlopCountAnalysis

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model.eval(), torch.zeros(1, *input_shape))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        total = int(analysis.total())
    model.train()
    return total


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# --- timing ----------------------------------------------------------------------------------


def kept_median(values: list[float], *masks: list[bool]) -> tuple[float, list[float]]:
    """Median over the windows no other load disturbed (all masks true), if at least 3 are.

    Returns the median and the values it was taken over (all of them when fewer than 3 are
    undisturbed: the table then says how few were).
    """
    kept = [v for v, *ok in zip(values, *masks, strict=True) if all(ok)]
    use = kept if len(kept) >= 3 else values
    return statistics.median(use), use


def train_step(model: nn.Module, batch: int, input_shape: tuple[int, ...]) -> Callable[[], None]:
    """One fp32 training step on a fixed random batch: forward, CE backward, AdamW step."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.randn(batch, *input_shape)
    y = torch.randint(0, 10, (batch,))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()  # type: ignore[no-untyped-call]
        opt.step()

    return step


def calibrate(fn: Callable[[], None], warmup: int, window_s: float) -> int:
    """Run ``warmup`` calls, then return how many calls fill a window of ``window_s``."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    fn()
    return max(1, round(window_s / (time.perf_counter() - t0)))


def run_rounds(
    fns: dict[str, Callable[[], None]], calls: dict[str, int], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Calls per second of every fn, one window per fn per round, order rotated each round.

    Also returns, per window, the share of its threads' CPU time the process got (process CPU
    time / (wall time x torch threads)): about 1.0 on an idle machine, lower when other load
    took the cores.
    """
    names = list(fns)
    threads = torch.get_num_threads()
    rates: dict[str, list[float]] = {n: [] for n in names}
    shares: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            fn, k = fns[name], calls[name]
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(k):
                fn()
            wall = time.perf_counter() - t0
            rates[name].append(k / wall)
            shares[name].append((time.process_time() - c0) / (wall * threads))
    return rates, shares


# --- machine ---------------------------------------------------------------------------------


def disable_mmap_allocations() -> bool:
    """glibc: serve every allocation from the heap and never trim it (mallopt).

    By default glibc hands allocations above its mmap threshold (at most 32 MiB) straight to
    mmap and returns them on free, so each step's large activations page-fault afresh.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_max = -1, -4
    return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**30))


# --- report ----------------------------------------------------------------------------------


def markdown(rows: list[Row]) -> str:
    head = (
        "| C | m = S*C | model | params | fwd MACs/img | img/s (median) | img/s min-max "
        f"| vs {PEER} | GFLOP/s | % of matmul | CPU share | undisturbed windows |"
    )
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(
            f"| {r.channels} | {r.width} | {r.model} | {r.params:,} | {r.forward_macs / 1e6:.1f} M "
            f"| {r.images_per_s:.0f} | {r.images_per_s_min:.0f}-{r.images_per_s_max:.0f} "
            f"| {r.vs_peer:.2f}x | {r.gflops:.0f} | {100 * r.of_matmul:.0f}% "
            f"| {r.cpu_share:.2f} | {sum(r.undisturbed)}/{len(r.undisturbed)} |"
        )
    return "\n".join(lines)


def target_lines(rows: list[Row]) -> list[str]:
    """Issue #2's targets, read off the measured rows (information only, never an exit code)."""
    by = {(r.channels, r.model): r for r in rows}
    out = []
    for C in sorted({r.channels for r in rows}):
        mixer, rp = by.get((C, "nas_width mixer")), by.get((C, "nas_width rp"))
        if mixer is None or rp is None:
            continue
        ratios = [a / b for a, b in zip(rp.windows, mixer.windows, strict=True)]
        rp_ratio = kept_median(ratios, rp.undisturbed, mixer.undisturbed)[0]
        frac = mixer.of_matmul
        out.append(
            f"- C={C}: mixer / {PEER} = {mixer.vs_peer:.2f}x (target >= 1.25x at C >= 128); "
            f"rp / mixer = {rp_ratio:.2f} (target >= 0.85); "
            f"mixer at {100 * frac:.0f}% of the matmul rate (target >= 50%)"
        )
    return out


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="tiny sizes, few windows (CI smoke run)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--batch", type=int, default=128, help="images per step (default 128)")
    p.add_argument("--depth", type=int, default=4, help="Mixer blocks (default 4)")
    p.add_argument("--channels", type=int, nargs="+", default=[128, 256], help="C values")
    p.add_argument(
        "--dense-channels", type=int, default=32, help="C of the dense-twin size (default 32)"
    )
    p.add_argument("--rounds", type=int, default=9, help="timed windows per model (default 9)")
    p.add_argument("--window", type=float, default=0.6, help="seconds per window (default 0.6)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps per model (default 3)")
    p.add_argument(
        "--no-mmap",
        action="store_true",
        help="glibc: keep large allocations on the heap (see disable_mmap_allocations)",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.depth, args.channels, args.dense_channels = 16, 2, [16], 8
        args.rounds, args.window, args.warmup = 2, 0.05, 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mmap_off = disable_mmap_allocations() if args.no_mmap else False
    torch.manual_seed(0)
    started, load_before = time.perf_counter(), load_average()
    machine = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "glibc_mmap_disabled": mmap_off,
    }
    print(
        f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, "
        f"torch {machine['torch']}, torch.get_num_threads() = {machine['torch_threads']}, "
        f"Python {machine['python']}, glibc mmap {'off' if mmap_off else 'default'}"
    )
    print(f"Load average before: {load_before}")
    print(
        f"Setup: input {INPUT_SHAPE}, patch {PATCH} (S = 64), depth {args.depth}, "
        f"gamma_token {GAMMA_TOKEN} (hidden 128), gamma_channel {GAMMA_CHANNEL} (hidden 4C), "
        f"batch {args.batch}, fp32, AdamW; {args.rounds} interleaved windows of ~{args.window}s "
        f"per model after {args.warmup} warm-up steps."
    )
    print(
        "FLOPs: fvcore forward multiply-adds per image (one multiply-add = one flop); "
        "training FLOPs per image = 3 x 2 x forward multiply-adds.\n"
    )

    sizes = [Size(args.dense_channels, dense_twin=True)]
    sizes += [Size(c) for c in args.channels if c != args.dense_channels]
    probes = matmul_probes(MATMUL_N)
    probe_calls = {name: calibrate(fn, 3, args.window) for name, fn in probes.items()}
    probe_rates: dict[str, list[float]] = {name: [] for name in probes}
    probe_oks: list[bool] = []
    rows: list[Row] = []
    for size in sizes:
        cfg = config_for(size.channels, args.depth)
        macs = measure(cfg).flops
        models: dict[str, nn.Module] = {}
        torch.manual_seed(0)
        models["nas_width mixer"] = build_model(cfg)
        models["nas_width rp"] = build_model(cfg.replace(mixing="rp"))
        models[PEER] = peer_model(cfg)
        if size.dense_twin:
            models["dense twin"] = dense_twin(models["nas_width mixer"], cfg)
        assert n_params(models[PEER]) == n_params(models["nas_width mixer"]), "params differ"
        assert n_params(models["nas_width rp"]) == n_params(models["nas_width mixer"])
        assert measure(cfg.replace(mixing="rp")).flops == macs
        assert fvcore_macs(models[PEER], cfg.input_shape) == macs, "fvcore FLOPs differ"

        group: dict[str, Row] = {}
        fns, calls = dict(probes), dict(probe_calls)
        for name, model in models.items():
            model.train()
            fwd = macs if name != "dense twin" else fvcore_macs(model, cfg.input_shape)
            group[name] = Row(size.channels, cfg.width, name, n_params(model), fwd)
            fns[name] = train_step(model, args.batch, cfg.input_shape)
            calls[name] = calibrate(fns[name], args.warmup, args.window)
        rates, shares = run_rounds(fns, calls, args.rounds)
        for name in probes:
            probe_rates[name] += rates.pop(name)
        # the machine's matmul rate in each round: the faster backend's
        best = [
            2 * MATMUL_N**3 * max(per_probe) / 1e9
            for per_probe in zip(*(r[-args.rounds :] for r in probe_rates.values()), strict=True)
        ]
        probe_ok = [
            min(per_probe) >= UNDISTURBED
            for per_probe in zip(*(shares[n] for n in probes), strict=True)
        ]
        probe_oks += probe_ok
        peer_ok = [v >= UNDISTURBED for v in shares[PEER]]
        for name in models:
            row = group[name]
            row.windows = [args.batch * v for v in rates[name]]
            row.undisturbed = [v >= UNDISTURBED for v in shares[name]]
            row.images_per_s, kept = kept_median(row.windows, row.undisturbed)
            row.images_per_s_min, row.images_per_s_max = min(kept), max(kept)
            ratios = [a / b for a, b in zip(rates[name], rates[PEER], strict=True)]
            row.vs_peer = kept_median(ratios, row.undisturbed, peer_ok)[0]
            fractions = [
                w * row.train_flops / 1e9 / g for w, g in zip(row.windows, best, strict=True)
            ]
            row.of_matmul = kept_median(fractions, row.undisturbed, probe_ok)[0]
            row.cpu_share = statistics.median(shares[name])
            rows.append(row)
        del models, fns

    matmul = {
        n: 2 * MATMUL_N**3 * kept_median(r, probe_oks)[0] / 1e9 for n, r in probe_rates.items()
    }
    print(markdown(rows))
    rates_text = ", ".join(f"{n} {v:.0f} GFLOP/s" for n, v in matmul.items())
    print(
        f"\nfp32 matmul {MATMUL_N}^3, median of {len(next(iter(probe_rates.values())))} windows "
        f"interleaved with the models: {rates_text}. '% of matmul' and 'vs {PEER}' are "
        "medians over rounds of ratios within a round ('% of matmul' against the faster "
        "backend). 'CPU share' is the median share of its threads' CPU time the process got "
        f"(1.00: no other load); windows with a share below {UNDISTURBED} were slowed by "
        "other load and are left out of every median when at least 3 others remain."
    )
    disturbed = sorted({r.channels for r in rows if sum(r.undisturbed) < min(3, args.rounds)})
    if disturbed:
        print(
            f"WARNING: other load took the CPUs during C = {', '.join(map(str, disturbed))} "
            "(fewer than 3 undisturbed windows): rerun when the machine is idle."
        )
    print("\nTargets (issue #2):")
    for line in target_lines(rows):
        print(line)
    elapsed = time.perf_counter() - started
    load_after = load_average()
    print(f"\nLoad average after: {load_after}; wall time {elapsed:.0f} s")

    if args.json:
        payload: dict[str, Any] = {
            "machine": machine,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "matmul_gflops": matmul,
            "load_average": {"before": load_before, "after": load_after},
            "rows": [asdict(r) | {"train_gflops": r.gflops} for r in rows],
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
