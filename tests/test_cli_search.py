"""``nas-width search``, ``export``, ``train`` and ``dashboard`` end to end, and their bad input.

The happy path runs as real subprocesses of the console script on a tiny study (the synthetic
data set, depth 1, budget 5k, two trials of two epochs), so Ray starts in its own process. Bad
input runs in-process: it must be refused before Ray starts and before any storage is written.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest

import nas_width
from nas_width import MixerConfig, measure
from tests.conftest import console_script, invoke, snapshot

pytestmark = pytest.mark.slow

BUDGET = "5k"
TRIALS = 2
EPOCHS = 2
STUDY_NAME = "tiny-params-5k"  # the default name: study file stem, metric, value

SPACE = """\
name = "tiny"
mixing = ["mixer", "rp"]
patch = [[2, 2], [4, 2], [2, 4], [4, 4], [1, 2]]
gamma_token = [2.0]
gamma_channel = [2.0]
depth = [1]
"""


def write_study(directory: Path, name: str = "tiny", extra: str = "") -> Path:
    """A study TOML on the synthetic set with its own space file (storage comes from the CLI)."""
    space = directory / "space-tiny.toml"
    space.write_text(SPACE)
    path = directory / f"{name}.toml"
    path.write_text(
        f'dataset = {{ name = "synthetic", options = {{ n = 256 }} }}\n'
        f'space = "{space}"\n'
        f"trials = {TRIALS}\n"
        f'sampler = "tpe"\n'
        f"{extra}"
        f"[recipe]\nepochs = {EPOCHS}\nbatch_size = 64\nlr = 0.01\nwarmup_epochs = 0.5\n"
        f"[resources]\ncpus_per_trial = 1\nmax_concurrent = 2\n"
    )
    return path


def cli(
    cwd: Path, *args: str | Path, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*console_script(), *map(str, args)],
        cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )  # fmt: skip


@dataclass
class Searched:
    """A finished subprocess search: where it ran and what it printed."""

    directory: Path
    study: Path
    db: Path
    done: subprocess.CompletedProcess[str]

    @property
    def storage(self) -> str:
        return f"sqlite:///{self.db}"

    def stored(self) -> optuna.Study:
        return optuna.load_study(study_name=STUDY_NAME, storage=self.storage)


@pytest.fixture(scope="module")
def searched(tmp_path_factory: pytest.TempPathFactory) -> Searched:
    directory = tmp_path_factory.mktemp("search")
    study = write_study(directory)
    db = directory / "x.db"
    done = cli(directory, "search", "--study", study, "--budget", BUDGET, "--storage",
               f"sqlite:///{db}")  # fmt: skip
    return Searched(directory, study, db, done)


@pytest.mark.smoke
def test_search_subprocess_prints_trials_best_budget_and_next_commands(searched: Searched) -> None:
    done = searched.done
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^shapes: S/C from \S+ to \S+(, both sides of S = C|: every shape)", out,
                     re.MULTILINE), out  # fmt: skip
    for n in range(1, TRIALS + 1):
        line = rf"^\[{n}/{TRIALS}\] done +\S+ val_accuracy=[01]\.\d{{4}} \({EPOCHS} epochs\)"
        assert re.search(line, out, re.MULTILINE), out
    trials = searched.stored().trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * TRIALS
    best = max(trials, key=lambda t: t.values[0])
    head = re.search(r"^best: trial (\d+) (\S+)$", out, re.MULTILINE)
    assert head, out
    assert best.values[0] == trials[int(head[1])].values[0]
    assert head[2] == trials[int(head[1])].params["shape"]
    shape = re.search(r"^  S=(\d+) x C=(\d+)  m=([\d,]+)  mixing=(\S+)  depth=1 ", out, re.M)
    assert shape, out
    S, C, m = int(shape[1]), int(shape[2]), int(shape[3].replace(",", ""))
    assert m == S * C
    attrs = trials[int(head[1])].user_attrs
    assert (S, C, m, shape[4]) == (attrs["S"], attrs["C"], attrs["m"], attrs["mixing"])
    used = re.search(
        r"^  val_accuracy=(\d\.\d{4})  params=([\d,]+) \(([+-]\d+\.\d\d)% of the budget\)$",
        out, re.MULTILINE,
    )  # fmt: skip
    assert used, out
    assert float(used[1]) == pytest.approx(best.values[0], abs=5e-5)
    params = int(used[2].replace(",", ""))
    assert params == attrs["params"]
    assert abs(params / 5000 - 1) <= 0.005
    hidden = re.search(r"  D_S=(\d+)  D_C=(\d+)$", out, re.MULTILINE)
    assert hidden, out
    assert (int(hidden[1]), int(hidden[2])) == (attrs["hidden_token"], attrs["hidden_channel"])
    assert float(used[3]) == pytest.approx((params / 5000 - 1) * 100, abs=0.005)
    assert f"dashboard: nas-width dashboard --storage {searched.storage}\n" in out
    assert "\x1b[" not in out + done.stderr  # not a terminal: plain lines, no live bar
    assert (
        f"export:    nas-width export --storage {searched.storage} "
        f"--study-name {STUDY_NAME} -o best.json\n"
    ) in out
    # Nothing but the storage is written where the search ran (Ray's results go to a temp dir).
    assert sorted(p.name for p in searched.directory.iterdir()) == sorted(
        ["space-tiny.toml", "tiny.toml", "x.db"]
    )


@pytest.mark.smoke
def test_export_then_train_subprocesses_reproduce_the_test_accuracy(
    searched: Searched, tmp_path: Path
) -> None:
    assert searched.done.returncode == 0, searched.done.stderr
    best = tmp_path / "best.json"
    done = cli(tmp_path, "export", "--storage", searched.storage, "-o", best)
    assert done.returncode == 0, done.stderr
    assert f"wrote {best}" in done.stdout
    payload = json.loads(best.read_text())
    trials = searched.stored().trials
    top = max(trials, key=lambda t: t.values[0])
    config = MixerConfig.from_dict(payload["config"])
    assert payload["config"] == top.user_attrs["config"]
    assert payload["recipe"]["epochs"] == EPOCHS
    assert payload["dataset"]["name"] == "synthetic"
    assert payload["dataset"]["options"] == {"n": 256}
    measured = payload["budget"]["measured"]
    assert payload["budget"]["spec"] == "params=5k"
    assert measured["params"] == measure(config).params
    assert measured["S"] * measured["C"] == measured["m"]
    provenance = payload["provenance"]
    assert provenance["study"] == STUDY_NAME
    assert provenance["trial"] == top.number
    assert provenance["val_accuracy"] == top.values[0]
    assert provenance["nas_width_version"] == nas_width.__version__

    out_dir = tmp_path / "run"
    done = cli(tmp_path, "train", best, "-o", out_dir)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "config.json", "metrics.json", "model.safetensors",
    ]  # fmt: skip
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert json.loads((out_dir / "config.json").read_text())["config"] == payload["config"]
    assert len(metrics["history"]) == EPOCHS

    from nas_width.data import load_dataset
    from nas_width.train import evaluate

    model = nas_width.load_model(out_dir)
    data = load_dataset("synthetic", n=256)
    loss, accuracy = evaluate(model, data.x_test, data.y_test)
    assert accuracy == metrics["test_accuracy"]
    assert loss == pytest.approx(metrics["test_loss"], rel=1e-6)

    # Every file the CLI writes is readable as a normal file is (0666 less the umask).
    report = tmp_path / "report.html"
    done = cli(tmp_path, "report", "--storage", searched.storage, "-o", report, "--no-save")
    assert done.returncode == 0, done.stderr
    mask = os.umask(0)
    os.umask(mask)
    written = [best, report, *out_dir.iterdir(), *(tmp_path / "report-figures").iterdir()]
    assert {p.name: p.stat().st_mode & 0o777 for p in written} == {
        p.name: 0o666 & ~mask for p in written
    }


def test_on_a_terminal_search_and_train_draw_a_live_bar_under_their_lines(
    tmp_path: Path,
) -> None:
    """rich draws on what it takes for a terminal (FORCE_COLOR): the counts from the start
    (nothing running, every trial queued), then done / running / queued and the best so far;
    the finished trials' lines and the summary are printed as without a terminal."""
    terminal = {"FORCE_COLOR": "1", "TERM": "xterm", "COLUMNS": "160"}
    study = write_study(tmp_path)
    done = cli(tmp_path, "search", "--study", study, "--budget", BUDGET, "--storage",
               f"sqlite:///{tmp_path / 't.db'}", env=terminal)  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", done.stdout)
    assert "preparing: synthetic" in shown
    assert f"0/{TRIALS} 0 running, {TRIALS} queued" in shown
    assert re.search(rf"1/{TRIALS} \d running, \d queued · best 0\.\d{{4}}", shown), shown
    assert re.search(rf"\[{TRIALS}/{TRIALS}\] done ", shown), shown
    assert "best: trial " in shown

    best = tmp_path / "best.json"
    assert cli(tmp_path, "export", "--storage", f"sqlite:///{tmp_path / 't.db'}", "-o",
               best).returncode == 0  # fmt: skip
    done = cli(tmp_path, "train", best, "-o", tmp_path / "run", env=terminal)
    assert done.returncode == 0, done.stderr
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", done.stderr)
    assert re.search(rf"{EPOCHS}/{EPOCHS} train_loss \d\.\d{{4}}", shown), shown
    assert f"epoch {EPOCHS}/{EPOCHS}  train_loss" in shown
    assert "test acc" in shown


def test_search_json_is_the_only_output_and_has_states_and_best(tmp_path: Path) -> None:
    study = write_study(tmp_path)
    db = tmp_path / "j.db"
    done = cli(tmp_path, "search", "--study", study, "--budget", BUDGET, "--storage",
               f"sqlite:///{db}", "--study-name", "json-run", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)  # no progress lines around the JSON
    assert outcome["study_name"] == "json-run"
    assert outcome["storage"] == f"sqlite:///{db}"
    assert outcome["states"]["COMPLETE"] == TRIALS
    assert sum(outcome["states"].values()) == TRIALS
    best = outcome["best"]
    assert best["S"] * best["C"] == best["m"]
    assert abs(best["budget_used"] / 5000 - 1) <= 0.02
    trials = optuna.load_study(study_name="json-run", storage=f"sqlite:///{db}").trials
    assert best["val_accuracy"] == max(t.values[0] for t in trials)
    assert best["shape"] == trials[best["trial"]].params["shape"]


def test_export_a_chosen_trial_to_stdout(
    searched: Searched, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert searched.done.returncode == 0, searched.done.stderr
    monkeypatch.chdir(searched.directory)
    before = snapshot(searched.directory)
    for trial in searched.stored().trials:
        code, out, err = invoke(
            capsys, "export", "--storage", searched.storage, "--study-name", STUDY_NAME,
            "--trial", str(trial.number), "-o", "-",
        )  # fmt: skip
        assert (code, err) == (0, ""), err
        payload = json.loads(out)
        assert payload["provenance"]["trial"] == trial.number
        assert payload["provenance"]["shape"] == trial.params["shape"]
        assert payload["provenance"]["val_accuracy"] == trial.values[0]
        assert payload["config"] == trial.user_attrs["config"]
        assert payload["budget"]["measured"]["params"] == trial.user_attrs["params"]
    assert snapshot(searched.directory) == before  # no best.json, the storage untouched


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return response.status, json.loads(response.read())


@pytest.mark.smoke
def test_dashboard_serves_the_stored_study(searched: Searched, tmp_path: Path) -> None:
    assert searched.done.returncode == 0, searched.done.stderr
    port = free_port()
    log = (tmp_path / "dashboard.out").open("w")
    server = subprocess.Popen(
        [*console_script(), "dashboard", "--storage", searched.storage, "--port", str(port)],
        cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        answer: tuple[int, Any] | None = None
        while answer is None and time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "dashboard.out").read_text()
            try:
                answer = get_json(f"http://127.0.0.1:{port}/api/studies")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.3)
        assert answer is not None, "the dashboard did not answer within 30 s"
        status, body = answer
        assert status == 200
        assert [s["study_name"] for s in body["study_summaries"]] == [STUDY_NAME]
        study_id = body["study_summaries"][0]["study_id"]
        delete = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/studies/{study_id}", method="DELETE"
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(delete, timeout=10)
        assert refused.value.code == 403
        assert "read-only" in refused.value.read().decode()
        assert searched.stored().study_name == STUDY_NAME  # still there
        second = cli(
            tmp_path, "dashboard", "--storage", searched.storage, "--port", str(port), timeout=60
        )
        assert (second.returncode, second.stdout) == (2, ""), second.stderr
        assert second.stderr.count("\n") == 1, second.stderr
        assert f"port {port} on 127.0.0.1 is in use" in second.stderr
        assert server.poll() is None  # the first one still serves
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
        log.close()
    banner = (tmp_path / "dashboard.out").read_text()
    assert f"optuna-dashboard on http://127.0.0.1:{port}/ for {searched.storage}, read-only" in (
        banner
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port that a plain socket listens on, as another server would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_dashboard_on_a_port_in_use_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    busy_port: int,
    empty_db: bytes,
) -> None:
    import importlib

    dashboard = importlib.import_module("nas_width.cli.dashboard")  # the module, not the command

    def started(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the dashboard started on a port in use")

    monkeypatch.setattr(dashboard, "_serve", started)
    (tmp_path / "d.db").write_bytes(empty_db)
    before = snapshot(tmp_path)
    code, out, err = invoke(
        capsys, "dashboard", "--storage", f"sqlite:///{tmp_path / 'd.db'}", "--port", str(busy_port)
    )
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert f"port {busy_port}" in err
    assert "in use" in err
    assert snapshot(tmp_path) == before


# Bad input: (argv, the text the one-line error must contain). In argv, "new.db" is a storage
# that does not exist, "empty.db" holds the study "empty" with no trial (see bad_inputs).
S_NEW = "sqlite:///new.db"
S_EMPTY = "sqlite:///empty.db"
SEARCH = ["search", "--study", "tiny.toml", "--budget", BUDGET]
BAD = [
    pytest.param([*SEARCH[:-1], "5q", "--storage", S_NEW], "'5q'", id="search-budget-malformed"),
    pytest.param([*SEARCH[:-1], "0", "--storage", S_NEW], "'0'", id="search-budget-zero"),
    pytest.param([*SEARCH[:-1], "10", "--storage", S_NEW], "params=10", id="search-infeasible"),
    pytest.param(
        ["search", "--study", "nosuch", "--budget", BUDGET, "--storage", S_NEW],
        "'nosuch'",
        id="search-unknown-study",
    ),
    pytest.param(
        ["search", "--study", "missing.toml", "--budget", BUDGET, "--storage", S_NEW],
        "missing.toml",
        id="search-missing-study-file",
    ),
    pytest.param(
        ["search", "--study", "malformed.toml", "--budget", BUDGET, "--storage", S_NEW],
        r"malformed\.toml: .*line 2",
        id="search-malformed-toml",
    ),
    pytest.param(
        ["search", "--study", "typo.toml", "--budget", BUDGET, "--storage", S_NEW],
        r"typo\.toml: unknown key\(s\) trails",
        id="search-unknown-key",
    ),
    pytest.param(
        [*SEARCH, "--storage", S_NEW, "--sampler", "cmaes"], "'cmaes'", id="search-unknown-sampler"
    ),
    pytest.param(
        [*SEARCH, "--storage", S_NEW, "--scheduler", "hyperband"],
        "'hyperband'",
        id="search-unknown-scheduler",
    ),
    pytest.param(
        [*SEARCH, "--storage", S_NEW, "--space", "nospace"], "'nospace'", id="search-unknown-space"
    ),
    pytest.param(
        [*SEARCH, "--storage", S_NEW, "--trials", "0"],
        "trials must be a positive integer.*got 0",
        id="search-zero-trials",
    ),
    pytest.param(
        [*SEARCH, "--storage", S_NEW, "--resume"],
        r"'sqlite:///new\.db' does not exist",
        id="search-resume-missing-storage",
    ),
    pytest.param([*SEARCH, "--storage", "nowhere"], "'nowhere'", id="search-storage-not-a-url"),
    pytest.param(
        [*SEARCH, "--storage", "sqlite:///nodir/x.db"],
        "'nodir'",
        id="search-storage-directory-missing",
    ),
    pytest.param(
        [*SEARCH, "--storage", S_EMPTY, "--study-name", "empty"],
        "'empty' already exists",
        id="search-study-exists",
    ),
    pytest.param(
        [
            "search",
            "--study",
            "cifar.toml",
            "--budget",
            BUDGET,
            "--storage",
            S_NEW,
            "--data-dir",
            "nodata",
        ],
        "nodata does not exist",
        id="search-data-dir-missing",
    ),
    pytest.param(
        ["export", "--storage", S_NEW, "-o", "best.json"],
        r"'sqlite:///new\.db' does not exist",
        id="export-missing-storage",
    ),
    pytest.param(
        ["export", "--storage", "nowhere", "-o", "best.json"],
        "'nowhere'",
        id="export-storage-not-a-url",
    ),
    pytest.param(
        ["export", "--storage", S_EMPTY, "--study-name", "nope", "-o", "best.json"],
        "'nope'",
        id="export-unknown-study",
    ),
    pytest.param(
        ["export", "--storage", S_EMPTY, "--trial", "99", "-o", "best.json"],
        "no trial 99",
        id="export-unknown-trial",
    ),
    pytest.param(
        ["export", "--storage", S_EMPTY, "-o", "best.json"],
        "'empty' has no finished trial",
        id="export-no-finished-trial",
    ),
    pytest.param(
        ["export", "--storage", "sqlite:///zero.db", "-o", "best.json"],
        r"'sqlite:///zero\.db' is not an Optuna study database",
        id="export-zero-byte-sqlite",
    ),
    pytest.param(
        ["dashboard", "--storage", "sqlite:///zero.db", "--port", "8080"],
        r"'sqlite:///zero\.db' is not an Optuna study database",
        id="dashboard-zero-byte-sqlite",
    ),
    pytest.param(
        [*SEARCH, "--storage", "sqlite:///zero.db", "--resume"],
        r"'sqlite:///zero\.db' is not an Optuna study database",
        id="search-resume-zero-byte-sqlite",
    ),
    pytest.param(["train", "missing.json", "-o", "run"], "missing.json", id="train-missing-file"),
    pytest.param(
        ["train", "corrupt.json", "-o", "run"],
        r"corrupt\.json: malformed JSON",
        id="train-corrupt-json",
    ),
    pytest.param(
        ["train", "noconfig.json", "-o", "run"], r"noconfig\.json: .*'config'", id="train-no-config"
    ),
    pytest.param(
        ["dashboard", "--storage", S_NEW, "--port", "8080"],
        r"'sqlite:///new\.db' does not exist",
        id="dashboard-missing-storage",
    ),
    pytest.param(
        ["dashboard", "--storage", S_EMPTY, "--port", "0"], "port 0", id="dashboard-bad-port"
    ),
]


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a SQLite storage holding the study "empty", with no trial."""
    path = tmp_path_factory.mktemp("empty") / "empty.db"
    optuna.create_study(storage=f"sqlite:///{path}", study_name="empty")
    return path.read_bytes()


@pytest.fixture
def bad_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, empty_db: bytes) -> Path:
    """A directory (the working directory) with the files the BAD cases refer to."""
    import optuna_dashboard

    def started(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the dashboard started on bad input")

    monkeypatch.setattr(optuna_dashboard, "run_server", started)
    monkeypatch.chdir(tmp_path)
    study = write_study(tmp_path)
    (tmp_path / "malformed.toml").write_text('dataset = "synthetic"\ntrials = = 3\n')
    (tmp_path / "typo.toml").write_text(study.read_text().replace("trials =", "trails ="))
    (tmp_path / "cifar.toml").write_text('trials = 2\n[dataset]\nname = "cifar10"\n')
    (tmp_path / "corrupt.json").write_text('{"config": ')
    (tmp_path / "noconfig.json").write_text('{"recipe": {"epochs": 1}}')
    (tmp_path / "empty.db").write_bytes(empty_db)
    (tmp_path / "zero.db").write_bytes(b"")  # an existing file that is no Optuna storage
    return tmp_path


@pytest.mark.parametrize(("args", "named"), BAD)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], bad_inputs: Path, args: list[str], named: str
) -> None:
    before = snapshot(bad_inputs)
    code, out, err = invoke(capsys, *args)
    assert code == 2, err
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("nas-width"), err
    assert re.search(named, err), err
    assert "Traceback" not in err
    assert snapshot(bad_inputs) == before  # no storage, export or run directory written


def test_resume_with_another_recipe_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Trials trained for another number of epochs are not comparable: --resume --epochs N with
    a different N exits 2 with one line, before Ray starts and without touching the study."""
    from nas_width.search.opening import open_search_study
    from nas_width.search.prepare import prepare
    from nas_width.search.study import load_spec

    study_file, stored = write_study(tmp_path), tmp_path / "stored"
    stored.mkdir()
    spec = load_spec(str(study_file)).replace(storage=f"sqlite:///{stored / 'study.db'}")
    _, lease = open_search_study(prepare(spec, BUDGET), resume=False)  # the stored study
    lease.release()
    _, lease = open_search_study(prepare(spec, BUDGET), resume=True)  # same recipe: accepted
    lease.release()
    before = snapshot(stored)
    args: list[str | Path] = ["search", "--study", study_file, "--budget", BUDGET]
    args += ["--storage", spec.storage]
    code, _, err = invoke(capsys, *args, "--resume", "--epochs", str(EPOCHS + 3))
    assert code == 2, err
    assert err.count("\n") == 1, err
    assert f"recipe epochs {EPOCHS}; this search asks for {EPOCHS + 3}" in err
    assert snapshot(stored) == before
