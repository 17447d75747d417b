"""GPU: bf16 model FLOP utilization of a Mixer-B/16 training step, timm's MlpMixer beside it,
and trials per hour with several trials packed on one GPU.

1. **MFU.** One training step of ``create_model("mixer_b16")`` (S = 196, C = 768, D_S = 384,
   D_C = 3072, depth 12; 224 x 224 inputs, 1000 classes): bf16 autocast forward and loss,
   backward, fused AdamW. FLOPs per step are counted by torch's ``FlopCounterMode`` over one
   forward and backward (2 per multiply-add; the optimizer's elementwise work is not counted),
   the step time is the median of ``--windows`` timed windows after a warm-up, and MFU is
   FLOPs / time / the card's dense bf16 peak (``--peak-tflops``, else from the device name:
   H100 SXM and H200 989, H100 PCIe 756, A100 312). ``--compile`` adds a ``torch.compile`` row
   with its compile time.
2. **timm.** ``timm.create_model("mixer_b16_224")`` (random weights, nothing downloaded) in the
   same step, when timm imports.
3. **Packing.** The trials of a CIFAR-sized study (``mixer_ss8``: S = 16, C = 256, depth 8, on
   synthetic 3 x 32 x 32 data held on the GPU, the ``cifar10`` study's recipe for ``--epochs``
   epochs) through nas-width's ``fit``, K at once as K processes on one GPU, as a search with
   ``--gpus-per-trial 1/K`` runs them (one Ray worker process per trial). Each process trains
   ``--trials`` trials one after another; the first is warm-up (CUDA context, kernels) and left
   out. Trials per hour = the sum over processes of steady trials / their seconds x 3600; the
   speed-up is against K = 1. Ray is not used here: it cannot be installed on the lent GPU
   machines (no network, and its wheel is larger than what a call can carry), so this
   measures what one GPU gives packed trials, not Ray's scheduling of them.

Needs only torch (and timm for row 2): nas_width is imported from ``src/``. On a machine
without CUDA, ``--quick --device cpu`` runs tiny sizes so that CI checks the script.

Usage::

    PYTHONPATH=src python benchmarks/bench_gpu.py --json gpu.json          # on the GPU machine
    python benchmarks/bench_gpu.py --quick --device cpu                     # CI smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from _machine import cpu_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from nas_width.data import load_dataset
from nas_width.models import create_model, get_config
from nas_width.search.study import load_spec
from nas_width.train import fit

#: Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) by a substring of the device name.
PEAKS = (("H100 PCIe", 756.0), ("H100", 989.4), ("H200", 989.4), ("A100", 312.0))


def peak_tflops(device: torch.device, given: float | None) -> float | None:
    if given is not None or device.type != "cuda":
        return given
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAKS if key in name), None)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> Callable[[], None]:
    """One training step: bf16 autocast on CUDA (fp32 on CPU), backward, fused AdamW."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    cuda = x.device.type == "cuda"

    def step() -> None:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(x).float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        optimizer.step()

    return step


def step_flops(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """FLOPs (2 per multiply-add) of one forward and backward, counted by torch."""
    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(x).float(), y).backward()  # type: ignore[no-untyped-call]
    model.zero_grad(set_to_none=True)
    return int(counter.get_total_flops())


def time_step(step: Callable[[], None], device: torch.device, steps: int, windows: int) -> float:
    """Median seconds per step over ``windows`` windows of ``steps`` steps, after warm-up."""
    for _ in range(3):
        step()
    sync(device)
    times = []
    for _ in range(windows):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync(device)
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def mfu_rows(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """Mixer-B/16 (nas-width, eager and optionally compiled) and timm's, one row each."""
    overrides: dict[str, Any] = {"input_shape": (3, 32, 32)} if args.quick else {}
    shape = (3, 32, 32) if args.quick else (3, 224, 224)
    x = torch.randn(args.batch, *shape, device=device)
    y = torch.randint(0, 1000, (args.batch,), device=device)
    peak = peak_tflops(device, args.peak_tflops)
    models: dict[str, Callable[[], nn.Module]] = {
        "nas-width mixer_b16": lambda: create_model("mixer_b16", **overrides)
    }
    try:
        import timm

        models["timm mixer_b16_224"] = lambda: timm.create_model(
            "mixer_b16_224", pretrained=False, img_size=shape[1:]
        )
    except Exception as err:  # timm missing (or torchvision not importable beside torch)
        print(f"timm: not used ({type(err).__name__}: {str(err).splitlines()[0]})")
    rows = []
    variants = [(name, False) for name in models]
    if args.compile:
        variants.insert(1, ("nas-width mixer_b16", True))
    for name, compiled in variants:
        torch.manual_seed(0)
        model = models[name]().to(device).train()
        flops = step_flops(model, x, y)
        compile_s = 0.0
        if compiled:
            start = time.perf_counter()
            model = torch.compile(model)  # type: ignore[assignment]
            make_step(model, x, y)()  # compiles forward and backward
            sync(device)
            compile_s = time.perf_counter() - start
        seconds = time_step(make_step(model, x, y), device, args.steps, args.windows)
        achieved = flops / seconds / 1e12
        rows.append(
            {
                "model": name + (" (torch.compile)" if compiled else ""),
                "params": sum(p.numel() for p in model.parameters()),
                "batch": args.batch,
                "step_ms": 1e3 * seconds,
                "images_per_s": args.batch / seconds,
                "tflops": achieved,
                "mfu": None if peak is None else achieved / peak,
                "compile_s": compile_s,
            }
        )
        del model
    return rows


def pack_child(args: argparse.Namespace) -> None:
    """One process of the packing run: ``--trials`` trials of the CIFAR-sized study."""
    device = torch.device(args.device)
    n = 256 if args.quick else 10_000
    data = load_dataset("synthetic", n=n, input_shape=(3, 32, 32), num_classes=10, seed=0)
    config = get_config("mixer_ss8")
    if args.quick:
        config = config.replace(channels=32, depth=2)
    recipe = load_spec("cifar10").recipe.replace(
        epochs=args.epochs, warmup_epochs=min(1, args.epochs - 1)
    )
    seconds = []
    for trial in range(args.trials):
        start = time.perf_counter()
        fit(config.replace(seed=trial), recipe, data, device=device)
        sync(device)
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds}))


def packing_rows(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Trials per hour with K processes at once, for each K of ``--pack``."""
    rows = []
    for k in args.pack:
        command = [sys.executable, __file__, "--pack-child", "--device", args.device]
        command += ["--trials", str(args.trials), "--epochs", str(args.epochs)]
        command += ["--quick"] if args.quick else []
        start = time.perf_counter()
        children = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(k)]
        outputs = [c.communicate()[0] for c in children]
        wall = time.perf_counter() - start
        if any(c.returncode for c in children):
            raise SystemExit(f"a packing process failed (K = {k})")
        steady = [json.loads(out.strip().splitlines()[-1])["seconds"][1:] for out in outputs]
        per_hour = sum(len(s) / sum(s) * 3600 for s in steady)
        rows.append(
            {
                "at_once": k,
                "trial_s": statistics.median(t for s in steady for t in s),
                "trials_per_hour": per_hour,
                "wall_s": wall,
            }
        )
    for row in rows:
        row["speedup"] = row["trials_per_hour"] / rows[0]["trials_per_hour"]
    return rows


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu with --quick")
    p.add_argument("--batch", type=int, default=256, help="Mixer-B/16 batch (default 256)")
    p.add_argument("--steps", type=int, default=10, help="steps per timed window (10)")
    p.add_argument("--windows", type=int, default=5, help="timed windows (5)")
    p.add_argument("--peak-tflops", type=float, help="dense bf16 peak of the card")
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--pack", type=int, nargs="+", default=[1, 2, 4, 8], help="K trials at once")
    p.add_argument("--trials", type=int, default=3, help="trials per packing process (3)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per packed trial (3)")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--pack-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.batch, args.steps, args.windows = 2, 1, 2
        args.pack, args.trials, args.epochs = [1, 2], 2, 2
    if args.trials < 2 or args.epochs < 2:
        p.error("--trials and --epochs must be at least 2 (the first trial is warm-up)")
    if args.device != "cpu" and not torch.cuda.is_available():
        p.error(f"--device {args.device}: CUDA is not available here (use --quick --device cpu)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.pack_child:
        pack_child(args)
        return 0
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    print(f"device: {name}; torch {torch.__version__}; Python {platform.python_version()}")
    mfu = mfu_rows(args, device)
    print("\n| model | params | batch | step (ms) | images/s | TFLOP/s | MFU | compile (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in mfu:
        share = "n/a" if r["mfu"] is None else f"{r['mfu']:.1%}"
        print(
            f"| {r['model']} | {r['params']:,} | {r['batch']} | {r['step_ms']:.1f} "
            f"| {r['images_per_s']:,.0f} | {r['tflops']:.1f} | {share} | {r['compile_s']:.0f} |"
        )
    packing = packing_rows(args)
    print("\n| trials at once | trial (s, median) | trials per hour | vs 1 at once |")
    print("|---:|---:|---:|---:|")
    for r in packing:
        print(
            f"| {r['at_once']} | {r['trial_s']:.1f} | {r['trials_per_hour']:,.0f} "
            f"| {r['speedup']:.2f}x |"
        )
    if args.json:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        payload = {"device": name, "torch": torch.__version__, "settings": settings}
        payload |= {"mfu": mfu, "packing": packing, "cpus": os.cpu_count()}
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
