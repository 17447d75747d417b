"""Run every benchmark of BENCHMARKS.md, one after another, and keep each one's output.

Each benchmark runs as its own process (so none inherits another's imports, threads or Ray)
with the arguments BENCHMARKS.md gives; its printed tables go to ``OUT/<name>.md`` and, where
it writes one, its JSON to ``OUT/<name>.json``. Benchmarks that cannot run here are skipped
with the reason: the GPU one without CUDA, the search-efficiency replay without a sweeps
database (``--db``). Run them on an otherwise idle machine: every timing is wall-clock.

Usage::

    python benchmarks/run_all.py --out bench-results                # full sizes (~10 minutes)
    python benchmarks/run_all.py --quick --out /tmp/b               # tiny sizes, as CI does
    python benchmarks/run_all.py --only budget trial --out /tmp/b   # some of them
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name -> (script, extra arguments, whether it takes --json)
BENCHMARKS: dict[str, tuple[str, list[str], bool]] = {
    "budget": ("bench_budget.py", [], False),
    "throughput": ("bench_throughput.py", [], True),
    "trial": ("bench_trial.py", [], True),
    "orchestration": ("bench_orchestration.py", ["--running-ray"], True),
    "search_efficiency": ("bench_search_efficiency.py", ["--grace", "3", "5", "10"], True),
    "gpu": ("bench_gpu.py", [], True),
    "first_line": ("bench_first_line.py", [], True),
}


def skip_reason(name: str, args: argparse.Namespace) -> str | None:
    if name == "gpu":
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device here"
    if name == "search_efficiency" and (args.db is None or not args.db.is_file()):
        return "no sweeps database (pass --db PATH, a study database of exhaustive sweeps)"
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    p.add_argument("--quick", action="store_true", help="tiny sizes (CI smoke run)")
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run only these")
    p.add_argument("--db", type=Path, help="sweeps database for the search-efficiency replay")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in args.only or list(BENCHMARKS):
        script, extra, takes_json = BENCHMARKS[name]
        reason = skip_reason(name, args)
        if reason is not None:
            print(f"{name}: skipped ({reason})")
            continue
        command = [sys.executable, str(HERE / script), *extra]
        command += ["--quick"] if args.quick else []
        command += ["--json", str(args.out / f"{name}.json")] if takes_json else []
        command += ["--db", str(args.db)] if name == "search_efficiency" else []
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        (args.out / f"{name}.md").write_text(done.stdout)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            failed.append(name)
            print(
                f"{name}: FAILED (exit {done.returncode}, {seconds:.0f} s)\n{done.stderr[-2000:]}"
            )
        else:
            print(f"{name}: done in {seconds:.0f} s -> {args.out / (name + '.md')}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
