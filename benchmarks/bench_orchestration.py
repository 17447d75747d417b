"""Orchestration overhead of ``nas-width search`` (Ray Tune + Optuna) against plain Optuna.

What is measured: the shipped ``digits`` study (16 trials, budget 50k, a fixed seed) is run by
the real console script, ``nas-width search``, as a subprocess into a temporary SQLite storage,
once with its default ``--max-concurrent 2`` (two trials at once, one CPU each) and once with
``--max-concurrent 1``. The same shapes, read back from the first study in trial order, are then
trained one after another by a plain Optuna script (a subprocess of this one): one
``optuna.create_study`` (SQLite, the shapes enqueued in order) and ``study.optimize`` with an
objective that calls :func:`nas_width.train.fit`, the function the search's trainable calls,
with the study's recipe (as the search stored it), the same data, seed offset and threads.

Per run:

* *wall*: launch of the process to its exit (interpreter start and imports included);
* *training*: the sum over trials of the epochs' own seconds (``EpochReport.seconds``: training
  plus validation; what :func:`fit` measures), read from each trial's ``train_seconds`` user
  attribute (the trainable reports it, the plain objective records it the same way);
* *overhead* = wall / training - 1 (wall-clock view), and, since the search keeps ``slots``
  trials running at once on as many cores, wall x slots / training - 1 (CPU-seconds view:
  core-seconds held against core-seconds trained; the same as wall-clock for one slot).

Where the search's time goes: start-up (launch to the first trial's ``datetime_start``; of it,
``prepare``, i.e. loading the data and enumerating the feasible shapes, and ``ray.init`` are
timed in a separate cold process), then per trial: queued to the trial's code running (a new Ray
worker process for the first trial on each worker, a reused actor after that; with the data
fetched from the object store), the fvcore count, ``fit`` outside the epochs (model build, the
per-epoch reports; in the first trial of a process also torch's one-time imports, e.g. the
first optimizer imports ``torch._dynamo``) and after ``fit`` until Optuna's ``tell``; slot time
left idle between trials; and the teardown (last ``tell`` to exit). The per-trial stages come
from the timing attributes the trainable reports (``nas_width.search.trainable``) and the plain
objective records alike; first trials of a process and later ones are shown apart. The probe
process also times ``ray.put`` of the data and its ``ray.get`` in a warm worker (the per-trial
data transfer).

Caveats: concurrent trials contend for memory bandwidth and any other load on the machine, so
the 2-at-once search's per-trial training time is larger; Ray's own processes (driver, raylet,
GCS) use CPU outside the trial slots, which the CPU-seconds view does not charge; the
1-at-once search chooses its own shapes (same seed; TPE's later picks may differ) and is
compared through its own trials' training time. ``RAY_ADDRESS`` is removed from the
subprocesses' environment, so each search starts a private local Ray, except with
``--running-ray``: one more 1-at-once search then joins a Ray head that the benchmark started
beforehand (``ray start --head``, outside the timed wall), the way a user who runs many searches
keeps Ray up and pays its start and stop once.

Usage::

    python benchmarks/bench_orchestration.py                    # 16 trials, 25 epochs each
    python benchmarks/bench_orchestration.py --quick            # 2 trials, 2 epochs (CI)
    python benchmarks/bench_orchestration.py --json results.json
    python benchmarks/bench_orchestration.py --running-ray      # + a search on a running Ray
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch

from _machine import cpu_model, load_average
from nas_width.config import MixerConfig
from nas_width.data import load_dataset
from nas_width.search.study import load_spec
from nas_width.train import EpochReport, Recipe, fit

PLAIN = "plain Optuna"


@dataclass
class TrialTiming:
    """One finished trial, in seconds."""

    number: int
    shape: str
    span: float  # Optuna's datetime_start (ask) to datetime_complete (tell)
    to_code: float  # datetime_start to the trial's code running (worker start/reuse, data)
    setup: float  # the trial's code running to fit() called (the fvcore count in the search)
    fit_extra: float  # in fit() outside the epochs: model build, reports, 1st-call imports
    train: float  # the epochs' own seconds: training and validation
    to_tell: float  # fit() done to datetime_complete: last report, user attributes, tell
    first_in_process: bool  # the first trial of its process (in the search: an actor started)


@dataclass
class Run:
    """One way of running the trials: the plain Optuna script or a search."""

    name: str
    slots: int  # trials at once
    wall: float  # process launch to exit
    startup: float  # launch to the first trial's datetime_start
    teardown: float  # the last datetime_complete to exit
    trials: list[TrialTiming] = field(default_factory=list)
    inner_seconds: float | None = None  # the search's own run_search time (its --json output)
    joined: bool = False  # the search joined a running Ray (no ray.init of its own)
    failed: int = 0  # trials that did not finish COMPLETE (left out of the sums)

    @property
    def train(self) -> float:
        return sum(t.train for t in self.trials)

    @property
    def spans(self) -> float:
        return sum(t.span for t in self.trials)

    @property
    def overhead_wall(self) -> float:
        return self.wall / self.train - 1

    @property
    def overhead_cpu(self) -> float:
        return self.wall * self.slots / self.train - 1

    @property
    def idle(self) -> float:
        """Slot-seconds between start-up and teardown in which no trial of this run was open."""
        return self.slots * (self.wall - self.startup - self.teardown) - self.spans

    def summary(self) -> dict[str, Any]:
        return asdict(self) | {
            "train": self.train,
            "spans": self.spans,
            "overhead_wall": self.overhead_wall,
            "overhead_cpu": self.overhead_cpu,
            "idle": self.idle,
        }


# --- reading a study back --------------------------------------------------------------------


def trial_timings(storage: str, study_name: str) -> tuple[list[TrialTiming], int]:
    """Every COMPLETE trial's timing (trial order) from its datetimes and timing attributes."""
    study = optuna.load_study(study_name=study_name, storage=storage)
    rows: list[TrialTiming] = []
    seen_pids: set[int] = set()
    failed = 0
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        if t.state != optuna.trial.TrialState.COMPLETE:
            failed += 1
            continue
        assert t.datetime_start is not None
        assert t.datetime_complete is not None
        a = t.user_attrs
        asked, told = t.datetime_start.timestamp(), t.datetime_complete.timestamp()
        fit_done = a["fit_started_at"] + a["fit_seconds"]
        pid = a.get("pid")
        rows.append(
            TrialTiming(
                number=t.number,
                shape=str(t.params["shape"]),
                span=told - asked,
                to_code=a["started_at"] - asked,
                setup=a["fit_started_at"] - a["started_at"],
                fit_extra=a["fit_seconds"] - a["train_seconds"],
                train=a["train_seconds"],
                to_tell=told - fit_done,
                first_in_process=pid is not None and pid not in seen_pids,
            )
        )
        if pid is not None:
            seen_pids.add(pid)
    if not rows:
        raise SystemExit(f"study {study_name!r}: no trial completed ({failed} did not)")
    return rows, failed


def first_and_last(storage: str, study_name: str) -> tuple[float, float]:
    """Unix times of the first trial's ask and the last trial's tell."""
    trials = optuna.load_study(study_name=study_name, storage=storage).get_trials(deepcopy=False)
    starts = [t.datetime_start.timestamp() for t in trials if t.datetime_start is not None]
    ends = [t.datetime_complete.timestamp() for t in trials if t.datetime_complete is not None]
    return min(starts), max(ends)


def subprocess_env() -> dict[str, str]:
    """This environment without RAY_ADDRESS: every search starts a private local Ray."""
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}


def timed_process(
    command: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Run ``command``; returns its launch time (Unix), its exit time and its stdout."""
    launched, clock = time.time(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env or subprocess_env())
    exited = launched + (time.perf_counter() - clock)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(command[:3])} ... exited {done.returncode}:\n{done.stderr[-3000:]}"
        )
    return launched, exited, done.stdout


# --- the runs --------------------------------------------------------------------------------


def warm_page_cache() -> None:
    """Import what every run imports once, untimed, so that no run pays for a cold disk."""
    modules = "nas_width.search.runner, nas_width.cli, ray.tune, optuna, torch, sklearn.datasets"
    subprocess.run([sys.executable, "-c", f"import {modules}"], check=True, env=subprocess_env())


def nas_width_command() -> list[str]:
    """The installed console script next to this interpreter (else on PATH)."""
    script = Path(sys.executable).with_name("nas-width")
    if script.is_file():
        return [str(script)]
    found = shutil.which("nas-width")
    if found is None:
        raise SystemExit("the nas-width console script is not installed (pip install -e .)")
    return [found]


def run_search(
    args: argparse.Namespace,
    storage: str,
    name: str,
    slots: int,
    cluster: tuple[str, dict[str, str]] | None = None,
) -> Run:
    """``nas-width search`` as a subprocess with ``slots`` trials at once.

    ``cluster`` (address, environment): join that running Ray with ``--address`` instead of
    starting a private one.
    """
    command = [
        *nas_width_command(), "search", "--study", args.study, "--budget", args.budget,
        "--trials", str(args.trials), "--seed", str(args.seed), "--storage", storage,
        "--study-name", name, "--max-concurrent", str(slots), "--json",
    ]  # fmt: skip
    if args.epochs is not None:
        command += ["--epochs", str(args.epochs)]
    if cluster is not None:
        command += ["--address", cluster[0]]
    launched, exited, stdout = timed_process(command, cluster[1] if cluster else None)
    first, last = first_and_last(storage, name)
    trials, failed = trial_timings(storage, name)
    try:
        inner = float(json.loads(stdout[stdout.index("{") :])["seconds"])
    except (ValueError, KeyError):
        inner = None
    return Run(
        name=f"search, {slots} at once" + (", Ray running" if cluster else ""),
        joined=cluster is not None,
        slots=slots,
        wall=exited - launched,
        startup=first - launched,
        teardown=exited - last,
        trials=trials,
        inner_seconds=inner,
        failed=failed,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def running_ray(workdir: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A Ray head on loopback (``ray start --head --block``), as a user keeps one running.

    It gets this machine's CPUs, a temp dir and token of its own, and a session of its own:
    at the end exactly that session's processes are killed (never ``ray stop``, which stops
    every Ray of the machine). Yields (address, the environment that joins it).
    """
    temp_dir = Path(tempfile.mkdtemp(prefix="bor-", dir="/tmp"))  # short: Ray's unix sockets
    token = temp_dir / "token"
    token.write_text(secrets.token_hex(32))
    env = subprocess_env() | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    port = _free_port()
    ray_cli = Path(sys.executable).with_name("ray")
    log = workdir / "ray-head.log"
    with log.open("wb") as out:
        head = subprocess.Popen(
            [str(ray_cli), "start", "--head", "--block", f"--port={port}",
             f"--num-cpus={os.cpu_count() or 1}", "--num-gpus=0", f"--temp-dir={temp_dir}",
             "--include-dashboard=false", "--disable-usage-stats"],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while b"Ray runtime started" not in log.read_bytes():
            if head.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"ray start --head failed:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", env
    finally:
        for entry in Path("/proc").iterdir():  # every process of the head's session (Linux)
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                if int(stat[stat.rindex(")") + 2 :].split()[3]) == head.pid:
                    os.kill(int(entry.name), signal.SIGKILL)
        head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def run_plain(args: argparse.Namespace, storage: str, source: str, workdir: Path) -> Run:
    """The plain Optuna script (``--plain-child``) over the shapes of study ``source``."""
    name = "plain-optuna"
    job = {"study": args.study, "storage": storage, "source": source, "name": name}
    job_file, out_file = workdir / "plain-job.json", workdir / "plain-out.json"
    job_file.write_text(json.dumps(job))
    command = [sys.executable, __file__, "--plain-child", str(job_file), str(out_file)]
    launched, exited, _ = timed_process(command)
    first, last = first_and_last(storage, name)
    trials, failed = trial_timings(storage, name)
    return Run(
        name=PLAIN,
        slots=1,
        wall=exited - launched,
        startup=first - launched,
        teardown=exited - last,
        trials=trials,
        failed=failed,
    )


def plain_child(job_file: Path, out_file: Path) -> None:
    """The plain Optuna script: train the source study's shapes one after another, in order.

    Recipe, data set and shapes are read from the search's study (its user attributes), the
    threads from the study file (``cpus_per_trial``), as the search's trainable gets them.
    """
    job = json.loads(job_file.read_text())
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    source = optuna.load_study(study_name=job["source"], storage=job["storage"])
    recipe = Recipe.from_dict(source.user_attrs["recipe"])
    ds = source.user_attrs["dataset"]
    threads = max(1, int(load_spec(job["study"]).resources.cpus_per_trial))
    done = [
        t
        for t in sorted(source.get_trials(deepcopy=False), key=lambda t: t.number)
        if t.state == optuna.trial.TrialState.COMPLETE
    ]
    configs = {str(t.params["shape"]): MixerConfig.from_dict(t.user_attrs["config"]) for t in done}
    order = [str(t.params["shape"]) for t in done]
    torch.set_num_threads(threads)
    loaded = time.perf_counter()
    data = load_dataset(
        ds["name"], path=ds["path"], val_fraction=ds["val_fraction"],
        split_seed=ds["split_seed"], **ds["options"],
    )  # fmt: skip
    load_seconds = time.perf_counter() - loaded

    def objective(trial: optuna.Trial) -> float:
        started_at = time.time()
        key = str(trial.suggest_categorical("shape", list(configs)))
        cfg = configs[key]
        plan = recipe.replace(seed=recipe.seed + cfg.seed)
        train_seconds = 0.0

        def report(epoch: EpochReport) -> None:
            nonlocal train_seconds
            train_seconds += epoch.seconds
            trial.report(epoch.val_accuracy, epoch.epoch)

        fit_started_at = time.time()
        result = fit(cfg, plan, data, device="cpu", report=report)
        timing = {
            "started_at": started_at,
            "fit_started_at": fit_started_at,
            "fit_seconds": time.time() - fit_started_at,
            "train_seconds": train_seconds,
            "pid": os.getpid(),
        }
        for k, v in timing.items():
            trial.set_user_attr(k, v)
        return result.history[-1].val_accuracy

    study = optuna.create_study(
        study_name=job["name"],
        storage=job["storage"],
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=recipe.seed),
    )
    for key in order:
        study.enqueue_trial({"shape": key})
    study.optimize(objective, n_trials=len(order))
    out_file.write_text(json.dumps({"load_seconds": load_seconds}))


def ray_probe(study: str, budget: str, out_file: Path) -> None:
    """A cold process: ``prepare`` (data + feasible shapes), ``ray.init``, data put/get, shutdown.

    Ray is started by the search's own ``init_ray`` (a private local Ray, no dashboard).
    """
    import ray

    from nas_width.search.prepare import prepare
    from nas_width.search.ray_session import init_ray

    clock = time.perf_counter()
    prepared = prepare(load_spec(study), budget)
    prepare_s = time.perf_counter() - clock
    data = prepared.data
    tensors = (data.x_train, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test)
    data_mb = sum(t.numel() * t.element_size() for t in tensors) / 2**20

    clock = time.perf_counter()
    init_ray(None)
    init_s = time.perf_counter() - clock
    clock = time.perf_counter()
    ref = ray.put(data)
    put_s = time.perf_counter() - clock

    @ray.remote(num_cpus=1)
    def fetch(refs: list[Any]) -> float:
        """Seconds to get the data in a worker (the list keeps Ray from resolving the ref)."""
        start = time.perf_counter()
        ray.get(refs[0])
        return time.perf_counter() - start

    clock = time.perf_counter()
    ray.get(fetch.remote([ref]))
    first_task_s = time.perf_counter() - clock
    get_s = statistics.median(ray.get(fetch.remote([ref])) for _ in range(5))
    clock = time.perf_counter()
    ray.shutdown()
    shutdown_s = time.perf_counter() - clock
    probe = {
        "prepare_s": prepare_s,
        "feasible_shapes": len(prepared.shapes),
        "data_mb": data_mb,
        "ray_init_s": init_s,
        "put_s": put_s,
        "first_task_s": first_task_s,
        "get_s": get_s,
        "shutdown_s": shutdown_s,
    }
    out_file.write_text(json.dumps(probe))


def run_probe(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    out_file = workdir / "probe.json"
    command = [sys.executable, __file__, "--ray-probe", args.study, args.budget, str(out_file)]
    timed_process(command)
    probe: dict[str, Any] = json.loads(out_file.read_text())
    return probe


# --- report ----------------------------------------------------------------------------------


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def seconds(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{value:.2f}"


def markdown_runs(runs: list[Run]) -> str:
    lines = [
        "| run | trials at once | trials | wall (s) | training (s) | trial spans (s) "
        "| overhead, wall-clock | core-seconds held | overhead, CPU-seconds |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r.name} | {r.slots} | {len(r.trials)} | {r.wall:.1f} | {r.train:.1f} "
            f"| {r.spans:.1f} | {r.overhead_wall:+.1%} | {r.wall * r.slots:.1f} "
            f"| {r.overhead_cpu:+.1%} |"
        )
    return "\n".join(lines)


def breakdown_rows(run: Run, probe: dict[str, Any], load_seconds: float) -> dict[str, str]:
    """One column of the breakdown table (seconds; per-trial rows are means)."""
    search = run.name != PLAIN

    def per(attr: str) -> float:
        return mean([getattr(t, attr) for t in run.trials])

    def split(attr: str) -> tuple[str, str]:
        """Mean of ``attr`` over first trials in a process and over later ones, with counts."""
        first = [getattr(t, attr) for t in run.trials if t.first_in_process]
        later = [getattr(t, attr) for t in run.trials if not t.first_in_process]
        return f"{seconds(mean(first))} (x{len(first)})", f"{seconds(mean(later))} (x{len(later)})"

    to_code, fit_extra = split("to_code"), split("fit_extra")

    prepare = probe["prepare_s"] if search else load_seconds
    ray_init = probe["ray_init_s"] if search and not run.joined else 0.0
    return {
        "wall: launch to exit": seconds(run.wall),
        "start-up: launch to the first trial's ask": seconds(run.startup),
        "  of which prepare: data + feasible shapes (cold process)": (
            seconds(prepare) if search else f"{load_seconds:.2f} (data only)"
        ),
        "  of which ray.init (cold process)": seconds(ray_init) if ray_init else "-",
        "  of which the rest: interpreter, imports, study creation, Tuner set-up": seconds(
            run.startup - prepare - ray_init
        ),
        "per trial: ask to the trial's code, 1st in its process (search: actor start, data)": (
            to_code[0]
        ),
        "per trial: ask to the trial's code, later (search: actor reuse, data)": to_code[1],
        "per trial: the trial's code to fit() (search: fvcore count)": seconds(per("setup")),
        "per trial: in fit() outside the epochs, 1st in its process (+ torch imports)": (
            fit_extra[0]
        ),
        "per trial: in fit() outside the epochs, later (model build, reports)": fit_extra[1],
        "per trial: the epochs (training + validation)": seconds(per("train")),
        "per trial: fit() done to tell (last report, attributes, tell)": seconds(per("to_tell")),
        "slot-seconds idle between trials (total)": seconds(run.idle),
        "teardown: last tell to exit": seconds(run.teardown),
    }


def markdown_breakdown(runs: list[Run], probe: dict[str, Any], load_seconds: float) -> str:
    columns = [breakdown_rows(r, probe, load_seconds) for r in runs]
    lines = ["| seconds | " + " | ".join(r.name for r in runs) + " |"]
    lines.append("|---|" + "---:|" * len(runs))
    for label in columns[0]:
        lines.append(f"| {label} | " + " | ".join(c[label] for c in columns) + " |")
    return "\n".join(lines)


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="2 trials of 2 epochs (CI smoke run)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    p.add_argument("--study", default="digits", help="shipped study or TOML (default digits)")
    p.add_argument("--budget", default="50k", help="the search's --budget (default 50k)")
    p.add_argument("--trials", type=int, default=16, help="trials per run (default 16)")
    p.add_argument("--epochs", type=int, help="epochs per trial (default: the study's)")
    p.add_argument("--seed", type=int, default=0, help="the search's --seed (default 0)")
    p.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[2, 1],
        help="search --max-concurrent values; the plain run trains the first one's shapes",
    )
    p.add_argument(
        "--running-ray",
        action="store_true",
        help="also run 1 at once on a Ray head started beforehand (ray start --head; Linux)",
    )
    p.add_argument("--plain-child", nargs=2, type=Path, help=argparse.SUPPRESS)
    p.add_argument("--ray-probe", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        # 2 epochs, not 1: the digits recipe warms up for 2 epochs and refuses fewer.
        args.trials, args.epochs = 2, 2
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.plain_child:
        plain_child(*args.plain_child)
        return 0
    if args.ray_probe:
        study, budget, out = args.ray_probe
        ray_probe(study, budget, Path(out))
        return 0

    import ray

    started, load_before = time.perf_counter(), load_average()
    machine = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "ray": ray.__version__,
        "optuna": optuna.__version__,
    }
    print(
        f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, Python "
        f"{machine['python']}, torch {machine['torch']}, ray {machine['ray']}, "
        f"optuna {machine['optuna']}"
    )
    print(f"Load average before: {load_before}")
    epochs = "the study's" if args.epochs is None else str(args.epochs)
    print(
        f"Setup: study {args.study!r}, budget {args.budget}, {args.trials} trials of {epochs} "
        f"epochs, seed {args.seed}; nas-width search with --max-concurrent "
        f"{', '.join(map(str, args.concurrency))}; then {PLAIN} over the shapes of the "
        f"{args.concurrency[0]}-at-once study, in its order. SQLite storages in a temp dir.\n"
    )
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-orchestration-") as tmp:
        workdir = Path(tmp)
        storage = f"sqlite:///{workdir / 'studies.db'}"
        warm_page_cache()
        searches = [run_search(args, storage, f"search-c{k}", k) for k in args.concurrency]
        if args.running_ray:
            with running_ray(workdir) as cluster:
                searches.append(run_search(args, storage, "search-joined", 1, cluster))
        plain = run_plain(args, storage, f"search-c{args.concurrency[0]}", workdir)
        plain_out = json.loads((workdir / "plain-out.json").read_text())
        probe = run_probe(args, workdir)
    runs = [plain, *searches]
    reference = [t.shape for t in searches[0].trials]
    same = {r.name: [t.shape for t in r.trials] == reference for r in runs}

    print(markdown_runs(runs))
    print(
        "\ntraining: the sum of the trials' epoch seconds (training + validation). overhead, "
        "wall-clock = wall / training - 1 (below 0: trials ran side by side); overhead, "
        "CPU-seconds = wall x trials at once / training - 1. trial spans: Optuna's "
        "datetime_start to datetime_complete, summed."
    )
    print("\nWhere the time goes (seconds; per-trial rows are means over trials):\n")
    print(markdown_breakdown(runs, probe, plain_out["load_seconds"]))
    print(
        f"\nRay probe (a cold process): ray.put of the data ({probe['data_mb']:.2f} MiB) "
        f"{1e3 * probe['put_s']:.1f} ms, ray.get in a warm worker {1e3 * probe['get_s']:.1f} ms "
        f"(median of 5), first task on a new worker {probe['first_task_s']:.2f} s, "
        f"ray.shutdown {probe['shutdown_s']:.2f} s; prepare enumerated "
        f"{probe['feasible_shapes']} feasible shapes."
    )
    for r in runs:
        if r.failed:
            print(f"WARNING: {r.name}: {r.failed} trial(s) did not complete (left out)")
        if not same[r.name]:
            print(f"note: {r.name} trained other shapes than the first search (its own TPE picks)")
    elapsed = time.perf_counter() - started
    load_after = load_average()
    print(f"\nLoad average after: {load_after}; benchmark wall time {elapsed:.0f} s")

    if args.json:
        settings = {
            k: (str(v) if isinstance(v, Path) else v)
            for k, v in vars(args).items()
            if k not in ("plain_child", "ray_probe")
        }
        payload: dict[str, Any] = {
            "machine": machine,
            "settings": settings,
            "load_average": {"before": load_before, "after": load_after},
            "runs": [r.summary() | {"same_shapes_as_first_search": same[r.name]} for r in runs],
            "plain_load_seconds": plain_out["load_seconds"],
            "probe": probe,
        }
        args.json.write_text(json.dumps(payload, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
