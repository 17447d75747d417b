"""``nas-width search`` on a Ray cluster of two nodes, and losing a node in the middle of a trial.

The cluster is real and private to this module: a head and a worker, each ``ray start --block``
in a session of its own on this machine (two raylets are two Ray nodes), one CPU each, so that
two trials at once must run on both. They have their own temp dir, ports and token: nothing else
on the machine joins them and they join nothing. Teardown SIGKILLs exactly the processes of their
sessions, never ``ray stop`` (which stops every Ray on the machine).

What Ray 2.60 needs for this, encoded below: ``ray start --head`` turns token authentication on,
and a process that joins by an explicit address (a worker's ``ray start --address``, the driver
of ``nas-width search --address``) sends the token only with ``RAY_AUTH_MODE=token``
(``RAY_AUTH_TOKEN_PATH`` names the token file). A raylet's workers run in process groups of
their own but stay in its session, and a worker process's parent is its node's raylet: that is
how the test sees on which node a trial runs (Linux: it reads /proc).

Besides the search on two nodes and the loss of one, the module checks ``RAY_ADDRESS`` (what
``ray job submit`` sets) in place of ``--address``, the one-line error when the token is missing,
and the ``node_id`` that the trainable reports, in a user's own Tuner.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from nas_width.search.errors import StorageError
from nas_width.search.recovery import INTERRUPTED
from tests.conftest import console_script
from tests.servers import read_trials

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
]

#: Generous: the machine may be busy with other searches.
PATIENCE_S = 240.0
TRIAL = "ray::ImplicitFunc.train"  # the title of a Ray worker that is running a trial


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    sid: int
    cmdline: str


def processes() -> list[Proc]:
    """Every process of the machine that can be read, from /proc."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            raw = Path(entry.path, "cmdline").read_bytes()
        except OSError:  # it ended while being read
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        cmdline = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        found.append(Proc(int(entry.name), int(fields[1]), int(fields[3]), cmdline))
    return found


def kill_session(sid: int) -> None:
    """SIGKILL every process of the session ``sid`` (one this module started)."""
    for proc in processes():
        if proc.sid == sid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ray_command() -> list[str]:
    exe = shutil.which("ray", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from ray.scripts.scripts import main; main()"]


@dataclass
class Node:
    """One ``ray start --block`` and everything it started (its session)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def sid(self) -> int:
        return self.process.pid  # started with start_new_session

    def raylet(self) -> Proc:
        (raylet,) = [p for p in processes() if p.sid == self.sid and "raylet/raylet " in p.cmdline]
        return raylet

    def node_id(self) -> str:
        (flag,) = [w for w in self.raylet().cmdline.split() if w.startswith("--node_id=")]
        return flag.removeprefix("--node_id=")

    def alive(self) -> bool:
        return any(p.sid == self.sid for p in processes())

    def kill(self) -> None:
        kill_session(self.sid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)


@dataclass
class Cluster:
    address: str
    temp_dir: Path
    #: The environment that joins it: its token, no other cluster's address.
    env: dict[str, str]
    nodes: list[Node] = field(default_factory=list)

    def start_node(self, name: str, *args: str) -> Node:
        """``ray start`` one node of one CPU on free ports; returns once it runs."""
        log = self.temp_dir / f"{name}.log"
        ports = ["node-manager", "object-manager", "dashboard-agent-listen",
                 "dashboard-agent-grpc", "runtime-env-agent", "metrics-export"]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*ray_command(), "start", *args, "--block", "--num-cpus=1", "--num-gpus=0",
                 "--object-store-memory=100000000", "--min-worker-port=0",
                 "--max-worker-port=0", "--disable-usage-stats",
                 *(f"--{p}-port={free_port()}" for p in ports)],
                stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
            )  # fmt: skip
        node = Node(name, process, log)
        self.nodes.append(node)
        deadline = time.monotonic() + 120
        while b"Ray runtime started" not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"{name} did not start:\n{log.read_text()}"
            time.sleep(0.5)
        return node

    def head(self) -> Node:
        return self.nodes[0]

    def training(self) -> dict[str, int]:
        """Node name -> how many of its Ray workers are running a trial now."""
        raylets = {n.raylet().pid: n.name for n in self.nodes if n.process.poll() is None}
        counts: dict[str, int] = {}
        for proc in processes():
            if proc.ppid in raylets and proc.cmdline.startswith(TRIAL):
                counts[raylets[proc.ppid]] = counts.get(raylets[proc.ppid], 0) + 1
        return counts


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A Ray head of one CPU; tests add workers. Everything of it is killed at the end."""
    # A short path: Ray's unix sockets live under it (at most 107 bytes).
    temp_dir = Path(tempfile.mkdtemp(prefix="nwray-", dir="/tmp"))
    token = temp_dir / "token"
    token.write_text(secrets.token_hex(32))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_ADDRESS", "RAY_AUTH"))}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    port = free_port()
    cluster = Cluster(f"127.0.0.1:{port}", temp_dir, env)
    try:
        cluster.start_node(
            "head", "--head", f"--port={port}", f"--temp-dir={temp_dir}",
            "--include-dashboard=false", f"--dashboard-port={free_port()}",
        )  # fmt: skip
        yield cluster
    finally:
        for node in cluster.nodes:
            node.kill()
        # Anything of this cluster that left its session (none is expected) names its temp dir.
        for proc in processes():
            if str(temp_dir) in proc.cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def worker(cluster: Cluster) -> Iterator[Node]:
    node = cluster.start_node("worker", f"--address={cluster.address}")
    yield node
    node.kill()
    cluster.nodes.remove(node)


def start_search(
    cluster: Cluster, directory: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """``nas-width search`` on the digits study, its output in ``directory``."""
    with (directory / "out").open("wb") as out, (directory / "err").open("wb") as err:
        return subprocess.Popen(
            [*console_script(), "search", "--study", "digits", "--budget", "5k",
             "--sampler", "random", "--cpus-per-trial", "1",
             "--storage", f"sqlite:///{directory / 'study.db'}", "--study-name", "c", *args],
            cwd=directory, stdout=out, stderr=err, env=env or cluster.env,
            start_new_session=True,
        )  # fmt: skip


@contextlib.contextmanager
def killed_at_exit(search: subprocess.Popen[bytes]) -> Iterator[subprocess.Popen[bytes]]:
    """The search process, and all it started, is killed if the test ends before it does."""
    try:
        yield search
    finally:
        if search.poll() is None:
            kill_session(search.pid)
        search.wait(timeout=30)


def stored_trials(directory: Path) -> list[optuna.trial.FrozenTrial]:
    """The trials of the search's study (none if it has no storage or no study yet).

    Read without creating anything: while the search sets the new database up, a reader that
    writes Optuna's tables or schema version too clashes with it.
    """
    try:
        return read_trials(f"sqlite:///{directory / 'study.db'}", "c")
    except (StorageError, KeyError):  # no file, tables or study yet
        return []


def test_search_runs_trials_on_both_nodes_and_survives_losing_one(
    cluster: Cluster, worker: Node, tmp_path: Path
) -> None:
    trials = 6
    search = start_search(
        cluster, tmp_path, "--address", cluster.address, "--trials", str(trials),
        "--epochs", "6", "--max-concurrent", "2",
    )  # fmt: skip
    seen: set[str] = set()
    both_at_once = False
    running_at_kill: list[int] = []
    with killed_at_exit(search):
        deadline = time.monotonic() + PATIENCE_S
        while search.poll() is None:
            assert time.monotonic() < deadline, f"no end within {PATIENCE_S:.0f} s"
            training = cluster.training() if worker.process.poll() is None else {}
            seen |= set(training)
            if training == {"head": 1, "worker": 1}:
                both_at_once = True
                running = [t.number for t in stored_trials(tmp_path)
                           if t.state == TrialState.RUNNING]  # fmt: skip
                if not running_at_kill and len(running) == 2:
                    worker.kill()  # SIGKILL the node: raylet, agents and the trial's worker
                    running_at_kill = running
            time.sleep(0.1)
    out, err = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
    assert search.returncode == 0, err
    # One trial ran on each node at the same time: both nodes' CPUs were used.
    assert seen == {"head", "worker"}
    assert both_at_once
    assert running_at_kill, "the worker was never killed in the middle of a trial"
    assert not worker.alive()
    # The trial on the lost node failed, every other one ran to the end, none is left RUNNING.
    stored = stored_trials(tmp_path)
    states = [t.state for t in stored]
    assert len(stored) == trials, out
    assert states.count(TrialState.FAIL) == 1, out
    assert states.count(TrialState.COMPLETE) == trials - 1, out
    (lost,) = [t for t in stored if t.state == TrialState.FAIL]
    assert lost.number in running_at_kill
    assert "failed" in lost.user_attrs["fail_reason"]
    assert out.count("] error ") == 1, out
    assert cluster.head().alive()


def test_search_joins_the_cluster_named_by_ray_address(cluster: Cluster, tmp_path: Path) -> None:
    """``ray job submit`` runs its entrypoint with RAY_ADDRESS set, and no ``--address``.

    Ray takes RAY_ADDRESS as an explicit address: the token is sent only with RAY_AUTH_MODE=token.
    """
    search = start_search(
        cluster, tmp_path, "--trials", "2", "--epochs", "4", "--max-concurrent", "1",
        env={**cluster.env, "RAY_ADDRESS": cluster.address},
    )  # fmt: skip
    seen: set[str] = set()
    with killed_at_exit(search):
        deadline = time.monotonic() + PATIENCE_S
        while search.poll() is None:
            assert time.monotonic() < deadline, f"no end within {PATIENCE_S:.0f} s"
            seen |= set(cluster.training())
            time.sleep(0.1)
    assert search.returncode == 0, (tmp_path / "err").read_text()
    assert seen == {"head"}  # the trials ran on the cluster, not on a Ray of the search's own
    assert [t.state for t in stored_trials(tmp_path)] == [TrialState.COMPLETE] * 2


def test_sigterm_stops_a_search_on_a_cluster_as_ctrl_c_does(
    cluster: Cluster, tmp_path: Path
) -> None:
    """``kill PID`` mid-trial (a batch scheduler's time limit) on a joined cluster: the running
    trial ends interrupted and the resume command is printed, as on a private Ray. Joining in
    the main thread, ``ray.init`` replaces the process's SIGTERM handler with one that exits
    (status 15, the trial left RUNNING) unless the search puts its own back."""
    search = start_search(
        cluster, tmp_path, "--address", cluster.address, "--trials", "2", "--epochs", "40",
        "--max-concurrent", "1",
    )  # fmt: skip
    with killed_at_exit(search):
        deadline = time.monotonic() + PATIENCE_S
        while not [t for t in stored_trials(tmp_path) if t.intermediate_values]:
            assert search.poll() is None, (tmp_path / "err").read_text()
            assert time.monotonic() < deadline, "no trial trained"
            time.sleep(0.2)
        search.send_signal(signal.SIGTERM)  # the search process alone, as kill does
        search.wait(timeout=PATIENCE_S)
    err = (tmp_path / "err").read_text()
    assert search.returncode == 143, err
    assert "Traceback" not in err, err
    assert "received at time=" not in err, err  # Ray's own handler and its stack dump
    assert re.search(r"^continue with: nas-width search .*--resume$", err, re.M), err
    stored = stored_trials(tmp_path)
    assert not [t.number for t in stored if t.state == TrialState.RUNNING]
    assert any(t.user_attrs.get("fail_reason") == INTERRUPTED for t in stored), stored
    assert cluster.head().alive()


def test_search_without_the_token_names_the_cluster_and_what_to_set(
    cluster: Cluster, tmp_path: Path
) -> None:
    env = {k: v for k, v in cluster.env.items() if not k.startswith("RAY_AUTH")}
    env["RAY_gcs_server_port_wait_time_s"] = "2"  # Ray tries 20 times, a second apart
    search = start_search(
        cluster, tmp_path, "--address", cluster.address, "--trials", "1", "--epochs", "2",
        env=env,
    )  # fmt: skip
    with killed_at_exit(search):
        search.wait(timeout=PATIENCE_S)
    err = (tmp_path / "err").read_text()
    assert search.returncode == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"nas-width: error: cannot join the Ray cluster at '{cluster.address}'")
    assert "RAY_AUTH_MODE=token" in last
    assert "Traceback" not in err
    assert stored_trials(tmp_path) == []


def test_search_refuses_resources_no_node_of_the_cluster_has(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Ray would keep such trials pending for ever; the search asks the cluster first."""
    search = start_search(
        cluster, tmp_path, "--address", cluster.address, "--trials", "1", "--gpus-per-trial", "1"
    )
    with killed_at_exit(search):
        search.wait(timeout=PATIENCE_S)
    err = (tmp_path / "err").read_text()
    assert search.returncode == 2, err
    assert err.count("\n") == 1, err
    assert "gpus_per_trial 1 is more than any node of the Ray cluster has (the most on one " in err
    assert not (tmp_path / "study.db").exists() or stored_trials(tmp_path) == []


PLUGIN = """
import json, sys
import ray
from ray import tune
from nas_width import parse_budget
from nas_width.data import load_dataset
from nas_width.search.space import load_space
from nas_width.search.trainable import make_trainable
from nas_width.train import Recipe

ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False)
data = load_dataset("digits")
shapes = load_space("mixer").shapes(parse_budget("5k"), data.input_shape, data.num_classes)
keys = sorted(shapes)[:2]
tuner = tune.Tuner(
    make_trainable({k: shapes[k] for k in keys}, Recipe(epochs=6, warmup_epochs=1), data),
    param_space={"shape": tune.grid_search(keys)},
    tune_config=tune.TuneConfig(max_concurrent_trials=2),
    run_config=tune.RunConfig(storage_path=sys.argv[2], verbose=0),
)
print(json.dumps([r.metrics["node_id"] for r in tuner.fit()]))
"""


def test_plugin_trainable_reports_the_node_of_each_trial(
    cluster: Cluster, worker: Node, tmp_path: Path
) -> None:
    """``make_trainable`` in a user's own Tuner: each result names the Ray node it ran on."""
    script = tmp_path / "plugin.py"
    script.write_text(PLUGIN)
    done = subprocess.run(
        [sys.executable, script, cluster.address, tmp_path / "results"],
        cwd=tmp_path, env=cluster.env, capture_output=True, text=True, timeout=PATIENCE_S,
        check=False, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    nodes = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(nodes) == sorted([cluster.head().node_id(), worker.node_id()])
