"""How soon ``nas-width search`` and ``nas-width train`` show something, on a terminal and in a
pipe.

What is measured: the real console script as a subprocess, launch to the first visible text
(escape codes stripped) on its terminal (a pseudo-terminal, where the live bar draws) or on its
stdout and stderr when they are pipes (a CI log: plain lines, no bar). For ``search`` also
launch to the bar's first counts (``0/N``: the study is open and Ray has started) and launch to
exit. ``search`` runs the Quick start's study (digits, budget 50k) for one trial of one epoch
into a temporary SQLite storage; ``train`` trains that trial's export for one epoch. Each
measurement is repeated and the median is shown with the range. Interpreter start and imports
are inside every number: they are what a user waits for.

Usage::

    python benchmarks/bench_first_line.py                 # 3 runs of each
    python benchmarks/bench_first_line.py --quick         # 1 run of each (CI)
    python benchmarks/bench_first_line.py --json results.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import cpu_model, load_average

ESCAPES = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def console_script() -> list[str]:
    exe = shutil.which("nas-width", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from nas_width.cli import main; main()"]


def run(args: list[str], cwd: Path, terminal: bool, marks: dict[str, bytes]) -> dict[str, float]:
    """Seconds from launch to the first visible text, to each of ``marks`` (name -> bytes that
    appear in the visible output), and to the exit."""
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "NO_COLOR")}
    env.update(TERM="xterm", COLUMNS="120")
    if terminal:
        master, slave = os.openpty()
        streams = {"stdout": slave, "stderr": slave}
    else:
        read_end, write_end = os.pipe()
        master, slave = read_end, write_end
        streams = {"stdout": write_end, "stderr": write_end}
    start = time.perf_counter()
    proc = subprocess.Popen([*console_script(), *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, **streams)  # fmt: skip
    os.close(slave)
    seen = b""
    found: dict[str, float] = {}
    while True:
        ready, _, _ = select.select([master], [], [], 0.05)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # a pseudo-terminal's master reads EIO once the child is gone
                chunk = b""
            if not chunk:
                break
            seen += ESCAPES.sub(b"", chunk)
            now = time.perf_counter() - start
            if "first" not in found and seen.strip():
                found["first"] = now
            for name, text in marks.items():
                if name not in found and text in seen:
                    found[name] = now
        elif proc.poll() is not None:
            break
    proc.wait()
    os.close(master)
    found["exit"] = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} exited {proc.returncode}: {seen[-2000:]!r}")
    return found


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one run of each (CI)")
    p.add_argument("--runs", type=int, default=3, help="runs of each measurement")
    p.add_argument("--json", type=Path, help="write the measurements here")
    args = p.parse_args(argv)
    runs = 1 if args.quick else args.runs
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="nw-first-line-") as tmp:
        work = Path(tmp)
        search = ["search", "--budget", "50k", "--trials", "1", "--epochs", "1"]
        for i in range(runs):
            for terminal in (True, False):
                key = f"search, {'terminal' if terminal else 'pipe'}"
                db = f"sqlite:///{work / f'{key[8:]}-{i}.db'}"
                marks = {"counts": b"0/1 "} if terminal else {"lines": b"trial(s) to run"}
                results.setdefault(key, []).append(
                    run([*search, "--storage", db], work, terminal, marks)
                )
        exported = work / "best.json"
        source = f"sqlite:///{work / 'terminal-0.db'}"
        subprocess.run([*console_script(), "export", "--storage", source, "-o", str(exported)],
                       check=True, capture_output=True)  # fmt: skip
        for i in range(runs):
            for terminal in (True, False):
                key = f"train, {'terminal' if terminal else 'pipe'}"
                out = work / f"run-{key[7:]}-{i}"
                train = ["train", str(exported), "-o", str(out), "--epochs", "1"]
                marks = {"epoch": b"epoch 1/1"}
                results.setdefault(key, []).append(run(train, work, terminal, marks))
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, load average {load_average()}")
    print(f"seconds from launch, median (min-max) of {runs} run(s)\n")
    print("| command, output | first visible text | first counts or lines | exit |")
    print("|---|---|---|---|")
    for key, rows in results.items():
        second = next((k for k in ("counts", "lines", "epoch") if k in rows[0]), None)
        middle = summary([r[second] for r in rows]) if second else "n/a"
        print(f"| {key} | {summary([r['first'] for r in rows])} | {second}: {middle} | "
              f"{summary([r['exit'] for r in rows])} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
