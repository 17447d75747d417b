"""Bad input to every command, in one table: exit code 2, one line naming the bad value, no
traceback, and every stored study and file left byte for byte as it was.

All cases run in one working directory that holds a real SQLite study (written in the form
``nas-width search`` stores: the study's attributes from ``Prepared.study_attrs`` and each
trial's shape from ``shape_attrs``), a study whose trials all failed, a study not made by
nas-width, an export, a saved model and the malformed files the cases name. Most cases run
in-process (fast); those marked ``REAL`` run the installed console script as a subprocess, to
prove the exit code and the absence of a traceback end to end.
"""

from __future__ import annotations

import json
import os
import re
import resource
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from nas_width import MixerConfig, build_model
from nas_width.errors import NasWidthError
from nas_width.train import CheckpointError, Recipe, load_model, save_trained
from tests.conftest import console_script, invoke, snapshot

STUDY_NAME = "tiny-params-5k"
S_GOOD = "sqlite:///good.db"  # STUDY_NAME: two COMPLETE trials
S_FAILED = "sqlite:///failed.db"  # "unfinished": one FAIL and one PRUNED trial
S_FOREIGN = "sqlite:///foreign.db"  # "foreign": COMPLETE trials of a plain Optuna study
S_NEW = "sqlite:///new.db"  # does not exist, and must not come to exist
POSTGRES = "postgresql://user@127.0.0.1:1/db"  # nothing listens on port 1
BUSY_PORT = "BUSY-PORT"  # replaced by a port that a socket of this module listens on

SPACE = """\
name = "tiny"
mixing = ["mixer", "rp"]
patch = [[2, 2], [4, 4]]
gamma_token = [2.0]
gamma_channel = [2.0]
depth = [1]
"""
STUDY = """\
dataset = { name = "synthetic", options = { n = 64 } }
space = "space.toml"
trials = 2
[recipe]
epochs = 1
batch_size = 32
warmup_epochs = 0
"""
CONFIG = {"input_shape": [1, 8, 8], "patch": [2, 2], "channels": 8, "depth": 1, "num_classes": 4}


def _write_study(path: Path, name: str, states: list[TrialState]) -> None:
    """A study as ``nas-width search`` stores it, with one trial per state, written directly."""
    from nas_width.search.prepare import prepare
    from nas_width.search.searcher import shape_attrs
    from nas_width.search.study import load_spec

    spec = load_spec("tiny.toml").replace(storage=f"sqlite:///{path}")
    prepared = prepare(spec, "5k", name)
    study = optuna.create_study(study_name=name, storage=spec.storage)
    for key, value in prepared.study_attrs().items():
        study.set_user_attr(key, value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_accuracy"])
    shapes = optuna.distributions.CategoricalDistribution(list(prepared.shapes))
    for i, ((key, cfg), state) in enumerate(zip(prepared.shapes.items(), states, strict=False)):
        accuracy = 0.5 + 0.1 * i
        attrs: dict[str, Any] = {**shape_attrs(cfg), "epochs": 1}
        if state == TrialState.FAIL:
            attrs["fail_reason"] = "non-finite loss (nan) at epoch 1, step 1"
        study.add_trial(
            optuna.trial.create_trial(
                state=state, params={"shape": key}, distributions={"shape": shapes},
                value=accuracy if state == TrialState.COMPLETE else None,
                intermediate_values={} if state == TrialState.FAIL else {1: accuracy},
                user_attrs=attrs,
            )
        )  # fmt: skip


def _damaged_storages(directory: Path) -> None:
    """The good study as a journal whose last record a crash cut off, as one with a line that
    is not JSON, and as a SQLite file whose pages were overwritten."""
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    whole = directory / "whole.log"
    journal = JournalStorage(JournalFileBackend(str(whole)))
    optuna.copy_study(from_study_name=STUDY_NAME, from_storage=S_GOOD, to_storage=journal)
    records = whole.read_bytes().splitlines(keepends=True)
    (directory / "cut.log").write_bytes(b"".join(records[:-1]) + records[-1][:-9])
    (directory / "garbled.log").write_bytes(b"".join([*records[:2], b"{not json\n", *records[2:]]))
    whole.unlink()
    damaged = bytearray((directory / "good.db").read_bytes())
    damaged[4096:] = b"\xa5" * (len(damaged) - 4096)  # every page after the first
    (directory / "damaged.db").write_bytes(bytes(damaged))


def _export_variants(directory: Path) -> None:
    """An export of the good study, and exports that are wrong in one way each."""
    from nas_width.search.export import export_trial, write_json_atomic

    good = export_trial(S_GOOD, None)
    write_json_atomic(directory / "best.json", good)

    def variant(name: str, **changes: Any) -> None:
        (directory / name).write_text(json.dumps({**good, **changes}))

    variant("dataset-number.json", dataset=5)
    variant("dataset-key.json", dataset={**good["dataset"], "size": 3})
    variant("dataset-options.json", dataset={**good["dataset"], "options": 5})
    variant("cifar.json", dataset={"name": "cifar10", "path": "data"})
    variant("provenance.json", provenance="mine")
    variant("recipe-key.json", recipe={**good["recipe"], "lr_max": 1.0})
    variant("mismatch.json", config={**good["config"], "input_shape": [1, 16, 16]})
    variant("diverges.json", recipe={**good["recipe"], "lr": 1e30, "weight_decay": 0})
    variant("huge.json", config={**good["config"], "channels": 1_000_000_000})
    latin1 = json.dumps(good).replace("synthetic", "sÿnth").encode("latin-1")  # 0xff: no UTF-8
    (directory / "latin1.json").write_bytes(latin1)
    (directory / "deep.json").write_text('{"config": ' + "[" * 100_000)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working directory of every case, with the studies and files the table names."""
    directory = tmp_path_factory.mktemp("bad-inputs")
    (directory / "space.toml").write_text(SPACE)
    (directory / "tiny.toml").write_text(STUDY)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(directory)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        _write_study(directory / "good.db", STUDY_NAME, [TrialState.COMPLETE] * 2)
        _write_study(directory / "failed.db", "unfinished", [TrialState.FAIL, TrialState.PRUNED])
        foreign = optuna.create_study(study_name="foreign", storage=S_FOREIGN)
        foreign.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
        _export_variants(directory)
        _damaged_storages(directory)
    (directory / "mixer.json").write_text(json.dumps(CONFIG))
    (directory / "adir").mkdir()
    (directory / "space-unclosed.toml").write_text('name = "x"\nmixing = ["mixer"\n')
    (directory / "space-typo.toml").write_text(SPACE.replace("patch =", "patchs ="))
    (directory / "space-huge-gamma.toml").write_text(SPACE.replace("[2.0]", "[1e308]", 1))
    os.mkfifo(directory / "study-fifo.toml")  # reading it would block forever
    (directory / "study-latin1.toml").write_bytes(
        f'description = "\xff"\n{STUDY}'.encode("latin-1")
    )
    (directory / "study-seed.toml").write_text(f"seed = 99999999999\n{STUDY}")
    (directory / "study-cpus-inf.toml").write_text(f"{STUDY}[resources]\ncpus_per_trial = inf\n")
    (directory / "study-newline-key.toml").write_text(STUDY.replace("trials", '"tri\\nals"'))
    config = MixerConfig.from_dict(json.loads((directory / "best.json").read_text())["config"])
    save_trained(directory / "model", build_model(config), config, Recipe(epochs=1), {})
    return directory


@pytest.fixture(scope="module")
def busy_port() -> Iterator[int]:
    """A port that a plain socket listens on, as another server would."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@dataclass(frozen=True)
class Bad:
    """A command line, the regex its one error line must match, and how to run it."""

    args: tuple[str, ...]
    named: str
    real: bool = False  # run the console script as a subprocess (at most 16 GiB of memory)


#: A leading ``unwritable:PATH``: this user may not write PATH (a file or a directory).
UNWRITABLE = "unwritable:"


def _unwritable(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    real = os.access

    def access(target: Any, mode: int, *args: Any, **kwargs: Any) -> bool:
        if mode & os.W_OK and Path(target).resolve() == path.resolve():
            return False
        return real(target, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


def bad(case_id: str, command: str, named: str, *, real: bool = False) -> Any:
    """A case of the table; ``command`` is split at spaces (no argument holds one). A real
    subprocess takes seconds: those cases are marked slow."""
    marks = [pytest.mark.slow] if real else []
    return pytest.param(Bad(tuple(command.split()), named, real), id=case_id, marks=marks)


REAL = True
SEARCH = f"search --study tiny.toml --storage {S_NEW}"
UNREACHABLE = re.escape(repr(POSTGRES))

# fmt: off
TABLE = [
    # search: budgets, options, study and space files, data, storages
    bad("search-budget-negative", f"{SEARCH} --budget -5k", "'-5k'"),
    bad("search-budget-beyond-any-shape", f"{SEARCH} --budget 1e300", r"budget params=\S+ ",
        real=REAL),
    bad("search-trials-not-an-integer", f"{SEARCH} --budget 5k --trials many", "'many'"),
    bad("search-epochs-zero", f"{SEARCH} --budget 5k --epochs 0", "epochs .*got 0$"),
    bad("search-epochs-not-an-integer", f"{SEARCH} --budget 5k --epochs 2.5", r"'2\.5'",
        real=REAL),
    bad("search-seed-beyond-numpy", f"{SEARCH} --budget 5k --seed 99999999999",
        r"seed must be an integer in \[0, 2\*\*32\), got 99999999999"),
    bad("search-cpus-per-trial-infinite", f"{SEARCH} --budget 5k --cpus-per-trial inf",
        "cpus_per_trial must be a finite number > 0, got inf"),
    bad("search-cpus-beyond-the-machine", f"{SEARCH} --budget 5k --cpus-per-trial 1e9",
        r"cpus_per_trial 1e\+09 is more than this machine's \d+ CPUs"),
    bad("search-gpus-beyond-the-machine", f"{SEARCH} --budget 5k --gpus-per-trial 1000",
        r"gpus_per_trial 1000 is more than this machine's \d+ CUDA GPUs"),
    bad("search-study-file-seed-beyond-numpy", f"search --study study-seed.toml --storage "
        f"{S_NEW} --budget 5k", r"seed must be an integer in \[0, 2\*\*32\), got 99999999999"),
    bad("search-study-file-cpus-infinite", f"search --study study-cpus-inf.toml --storage "
        f"{S_NEW} --budget 5k", "cpus_per_trial must be a finite number > 0, got inf"),
    bad("search-max-concurrent-negative", f"{SEARCH} --budget 5k --max-concurrent -1",
        "max_concurrent .*got -1$"),
    bad("search-data-dir-missing",
        f"search --study cifar10 --budget 5k --storage {S_NEW} --data-dir /nonexistent",
        "/nonexistent does not exist"),
    bad("search-space-toml-unclosed", f"{SEARCH} --budget 5k --space space-unclosed.toml",
        r"space-unclosed\.toml: malformed TOML at line 2"),
    bad("search-study-is-a-fifo", f"search --study study-fifo.toml --storage {S_NEW} "
        "--budget 5k", r"cannot read study-fifo\.toml: not a regular file"),
    bad("search-space-gamma-overflows", f"{SEARCH} --budget 5k --space space-huge-gamma.toml",
        r"gamma_token must be a positive number at most 1024, got 1e\+308"),
    bad("search-space-not-a-space", f"{SEARCH} --budget 5k --space os:getcwd",
        r"space 'os:getcwd' does not take \(input_shape, num_classes\)"),
    bad("search-space-returns-numbers", f"{SEARCH} --budget 5k --space operator:mul",
        r"space 'operator:mul' returned int 1, not MixerConfig candidates"),
    bad("search-space-raises", f"{SEARCH} --budget 5k --space os.path:join",
        r"space 'os\.path:join' failed: TypeError: "),
    bad("search-space-unknown-key", f"{SEARCH} --budget 5k --space space-typo.toml",
        r"space-typo\.toml: unknown key\(s\) patchs "),
    bad("search-study-not-utf8", f"search --study study-latin1.toml --storage {S_NEW} "
        "--budget 5k", r"study-latin1\.toml: not UTF-8 text \(byte 15 is 0xff\)"),
    bad("search-study-key-with-newline", f"search --study study-newline-key.toml --storage "
        f"{S_NEW} --budget 5k", r"unknown key\(s\) 'tri\\nals' "),
    bad("search-storage-unreachable", f"search --study tiny.toml --storage {POSTGRES} "
        "--budget 5k", UNREACHABLE, real=REAL),
    bad("search-resume-unknown-study", f"search --study tiny.toml --storage {S_GOOD} "
        "--budget 5k --resume --study-name nosuch", "'nosuch'"),
    bad("search-resume-other-budget", f"search --study tiny.toml --storage {S_GOOD} "
        f"--budget 6k --resume --study-name {STUDY_NAME}", "'params=6k'"),
    # count: budgets, sizes too large to build, config files
    bad("count-budget-nan", "count mixer.json --budget nan", "'nan'"),
    bad("count-budget-beyond-any-shape", "count mixer.json --budget 1e300",
        r"budget params=\S+ cannot be met", real=REAL),
    bad("count-tolerance-nan", "count mixer.json --budget 5k --tolerance nan", "got nan$"),
    bad("count-num-classes-too-large", "count mixer.json --num-classes 100000000000",
        "too large.* num_classes 100000000000", real=REAL),
    bad("count-gamma-too-large", "count mixer.json --gamma-token 1e300",
        r"gamma_token must be a positive number at most 1024, got 1e\+300"),
    bad("count-seed-beyond-64-bits", f"count mixer.json --mixing rp --seed {2**64}",
        f"seed .*got {2**64}$"),
    bad("count-config-not-utf8", "count latin1.json", r"latin1\.json: not UTF-8"),
    bad("count-config-nested-too-deep", "count deep.json",
        r"deep\.json: malformed JSON: .*nested too deeply"),
    # export: outputs, trials, studies without a finished or nas-width trial, storages
    bad("export-output-is-a-directory", f"export --storage {S_GOOD} -o adir",
        "'adir' is a directory"),
    bad("export-output-under-a-file", f"export --storage {S_GOOD} -o best.json/x.json",
        r"'best\.json' is not a directory"),
    bad("export-trial-not-an-integer", f"export --storage {S_GOOD} --trial best", "'best'"),
    bad("export-trial-negative", f"export --storage {S_GOOD} --trial -1", "no trial -1$"),
    bad("export-no-finished-trial", f"export --storage {S_FAILED} -o x.json",
        "'unfinished' has no finished trial"),
    bad("export-failed-trial", f"export --storage {S_FAILED} --trial 0 -o x.json",
        "trial 0 of 'unfinished' is FAIL"),
    bad("export-foreign-study", f"export --storage {S_FOREIGN} -o x.json",
        "of 'foreign' has no stored config"),
    bad("export-storage-unreachable", f"export --storage {POSTGRES} -o x.json", UNREACHABLE),
    bad("export-journal-over-sqlite", "export --storage journal:good.db -o x.json",
        r"'journal:good\.db'"),
    # train: the export file, the data, the device, the output
    bad("train-export-not-utf8", "train latin1.json -o run", r"latin1\.json: not UTF-8",
        real=REAL),
    bad("train-dataset-not-an-object", "train dataset-number.json -o run",
        r"dataset-number\.json: dataset must be an object, got 5$"),
    bad("train-dataset-unknown-key", "train dataset-key.json -o run",
        r"dataset-key\.json: dataset: unknown key\(s\) size "),
    bad("train-dataset-options-not-a-table", "train dataset-options.json -o run",
        "options must be a table, got 5$"),
    bad("train-provenance-not-an-object", "train provenance.json -o run",
        "provenance must be an object, got 'mine'"),
    bad("train-recipe-unknown-key", "train recipe-key.json -o run",
        r"recipe-key\.json: unknown recipe key\(s\): lr_max "),
    bad("train-config-does-not-fit-data", "train mismatch.json -o run",
        r"input_shape \[1, 16, 16\] does not match"),
    bad("train-data-dir-missing", "train cifar.json --data-dir /nonexistent -o run",
        "/nonexistent does not exist"),
    bad("train-device-unknown", "train best.json --device quantum -o run", "'quantum'"),
    bad("train-device-unavailable", "train best.json --device cuda:99 -o run",
        "'cuda:99' is not available"),
    bad("train-config-too-large", "train huge.json -o run",
        r"huge\.json: config too large to build and count .*C=1000000000"),
    bad("train-output-is-a-file", "train best.json -o mixer.json", r"'mixer\.json' is a file"),
    bad("train-epochs-negative", "train best.json --epochs -1 -o run", "epochs .*got -1$"),
    bad("train-epochs-not-an-integer", "train best.json --epochs ten -o run", "'ten'"),
    # report: studies without an analyzable trial, options, storages
    bad("report-foreign-study", f"report --storage {S_FOREIGN} -o r.html",
        "'foreign' has no finished trial with a shape"),
    bad("report-only-failed-trials", f"report --storage {S_FAILED} -o r.html",
        "'unfinished' has no finished trial"),
    bad("report-seed-not-an-integer", f"report --storage {S_GOOD} --seed x -o r.html", "'x'"),
    bad("report-output-under-a-file", f"report --storage {S_GOOD} -o best.json/r.html",
        r"'best\.json' is not a directory"),
    bad("report-storage-unreachable", f"report --storage {POSTGRES} -o r.html", UNREACHABLE),
    # a cluster that cannot be joined: refused at once (Ray retried for ever), nothing stored
    bad("search-address-unreachable", f"{SEARCH} --budget 5k --address 127.0.0.1:1",
        r"cannot join the Ray cluster at '127\.0\.0\.1:1': nothing accepts a connection at "
        r"127\.0\.0\.1:1 \(Connection refused\)", real=REAL),
    bad("search-ray-address-unreachable", f"RAY_ADDRESS=127.0.0.1:1 {SEARCH} --budget 5k",
        r"cannot join the Ray cluster at '127\.0\.0\.1:1': nothing accepts a connection",
        real=REAL),
    bad("search-client-address-unreachable", f"{SEARCH} --budget 5k --address ray://127.0.0.1:1",
        r"'ray://127\.0\.0\.1:1': nothing accepts a connection"),
    # what this user may not write: refused before any work, nothing written
    bad("search-resume-storage-not-writable", f"unwritable:good.db search --study tiny.toml "
        f"--storage {S_GOOD} --budget 5k --resume --study-name {STUDY_NAME}",
        r"'good\.db' is not writable by this user"),
    bad("export-into-a-directory-not-writable", f"unwritable:adir export --storage {S_GOOD} "
        "-o adir/best.json", r"directory 'adir' is not writable"),
    bad("report-into-a-directory-not-writable", f"unwritable:adir report --storage {S_GOOD} "
        "--no-save -o adir/r.html", r"directory 'adir' is not writable"),
    bad("train-into-a-directory-not-writable", "unwritable:adir train best.json -o adir/model",
        r"directory 'adir' is not writable"),
    # damaged storage files: refused before anything is written to them
    bad("search-resume-journal-cut-off", f"search --study tiny.toml --storage journal:cut.log "
        f"--budget 5k --resume --study-name {STUDY_NAME}",
        r"'journal:cut\.log' is damaged: its last record \(line \d+\) is cut off.*head -n \d+ "
        r"cut\.log > fixed\.log", real=REAL),
    bad("search-new-study-in-a-cut-off-journal", "search --study tiny.toml --storage "
        "journal:cut.log --budget 5k --study-name another", r"'journal:cut\.log' is damaged"),
    bad("search-resume-journal-garbled", f"search --study tiny.toml --storage "
        f"journal:garbled.log --budget 5k --resume --study-name {STUDY_NAME}",
        r"'journal:garbled\.log' is damaged: record 3 is not JSON.*head -n 2 "),
    bad("search-resume-sqlite-damaged", f"search --study tiny.toml --storage "
        f"sqlite:///damaged.db --budget 5k --resume --study-name {STUDY_NAME}",
        r"'sqlite:///damaged\.db' (is damaged: SQLite finds .*\.recover|is not an Optuna study)",
        real=REAL),
    bad("report-saving-into-a-cut-off-journal", "report --storage journal:cut.log -o r.html",
        r"'journal:cut\.log' is damaged"),
    bad("report-journal-over-sqlite", "report --storage journal:good.db -o r.html",
        r"'journal:good\.db'"),
    # dashboard: ports, hosts, storages
    bad("dashboard-port-in-use", f"dashboard --storage {S_GOOD} --port {BUSY_PORT}",
        f"port {BUSY_PORT} on 127.0.0.1 is in use", real=REAL),
    bad("dashboard-port-too-large", f"dashboard --storage {S_GOOD} --port 70000", "port 70000"),
    bad("dashboard-port-not-an-integer", f"dashboard --storage {S_GOOD} --port http", "'http'"),
    bad("dashboard-host-malformed", f"dashboard --storage {S_GOOD} --host a..b", "'a..b'"),
    bad("dashboard-host-not-this-machine", f"dashboard --storage {S_GOOD} --host 192.0.2.1",
        r"cannot listen on 192\.0\.2\.1 "),
    bad("dashboard-storage-unreachable", f"dashboard --storage {POSTGRES}", UNREACHABLE),
]
# fmt: on


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, a dashboard that passed its checks would serve forever and a search would
    start Ray: fail instead."""
    import optuna_dashboard
    import ray

    def started(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a dashboard or Ray started on bad input")

    monkeypatch.setattr(optuna_dashboard, "run_server", started)
    monkeypatch.setattr(ray, "init", started)


def _memory_limit() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))


@pytest.mark.parametrize("case", TABLE)
def test_bad_input_exits_2_with_one_line_naming_it_and_changes_nothing(
    case: Bad,
    workdir: Path,
    busy_port: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    no_server: None,
) -> None:
    args = [a.replace(BUSY_PORT, str(busy_port)) for a in case.args]
    while re.fullmatch(r"[A-Z_]+=\S*", args[0]):  # leading NAME=VALUE: the environment, as sh
        name, _, value = args.pop(0).partition("=")
        monkeypatch.setenv(name, value)
    if args[0].startswith(UNWRITABLE):  # root writes anywhere: the permission is stubbed
        _unwritable(monkeypatch, workdir / args.pop(0).removeprefix(UNWRITABLE))
    named = case.named.replace(BUSY_PORT, str(busy_port))
    monkeypatch.chdir(workdir)
    before = snapshot(workdir)
    start = time.monotonic()
    if case.real:
        done = subprocess.run(
            [*console_script(), *args],
            cwd=workdir, capture_output=True, text=True, check=False, timeout=60,
            preexec_fn=_memory_limit,  # a model too large to build fails to allocate
        )  # fmt: skip
        code, out, err = done.returncode, done.stdout, done.stderr
    else:
        code, out, err = invoke(capsys, *args)
    seconds = time.monotonic() - start
    assert (code, out) == (2, ""), err
    assert len(err.splitlines()) == 1, err  # one line, and no traceback
    assert err.startswith("nas-width"), err
    assert " error: " in err, err
    assert re.search(named, err.rstrip("\n")), err
    assert snapshot(workdir) == before  # no study, export, report or model written or changed
    assert seconds < 30, f"bad input took {seconds:.0f} s to be refused"


def test_a_diverging_export_exits_2_after_training_and_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A recipe that makes the loss non-finite is the export's fault: one line, no model."""
    monkeypatch.chdir(workdir)
    before = snapshot(workdir)
    code, out, err = invoke(capsys, "train", "diverges.json", "-o", "run")
    assert code == 2
    assert out.startswith("training ")  # it did start: the header line, then the failure
    assert err.splitlines()[-1].startswith("nas-width: error: diverges.json: training failed: ")
    assert "non-finite loss" in err
    assert "Traceback" not in err
    assert snapshot(workdir) == before


# The saved model: ``load_model(DIR)`` is how a checkpoint is read (no command reads one).
CHECKPOINT = [
    pytest.param("missing-weights", "model.safetensors", "missing", id="weights-missing"),
    pytest.param(
        "other-weights",
        "model.safetensors",
        "do not match the config: unexpected",
        id="weights-of-another-depth",
    ),
    pytest.param("latin1", "config.json", "cannot read", id="config-not-utf8"),
    pytest.param(
        "deep",
        "config.json",
        "malformed JSON: arrays or objects nested too deeply",
        id="config-too-deep",
    ),
    pytest.param("version", "config.json", "unsupported format_version 2", id="config-version"),
]


@pytest.mark.parametrize(("damage", "file", "named"), CHECKPOINT)
def test_a_damaged_checkpoint_is_one_line_naming_the_file(
    workdir: Path, tmp_path: Path, damage: str, file: str, named: str
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for part in (workdir / "model").iterdir():
        (model / part.name).write_bytes(part.read_bytes())
    manifest = json.loads((model / "config.json").read_text())
    if damage == "missing-weights":
        (model / "model.safetensors").unlink()
    elif damage == "other-weights":
        deeper = MixerConfig.from_dict({**manifest["config"], "depth": 2})
        save_trained(tmp_path / "deeper", build_model(deeper), deeper, Recipe(epochs=1), {})
        weights = (tmp_path / "deeper" / "model.safetensors").read_bytes()
        (model / "model.safetensors").write_bytes(weights)
    elif damage == "latin1":
        (model / "config.json").write_bytes(b"\xff" + (model / "config.json").read_bytes())
    elif damage == "deep":
        (model / "config.json").write_text("[" * 100_000)
    else:
        (model / "config.json").write_text(json.dumps({**manifest, "format_version": 2}))
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError) as err:
        load_model(model)
    message = str(err.value)
    assert isinstance(err.value, NasWidthError)
    assert message.splitlines() == [message]
    assert message.startswith(str(model / file)), message
    assert named in message
    assert snapshot(tmp_path) == before


def test_resources_this_machine_cannot_give_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A private local Ray would keep such trials pending forever (the search hung)."""
    import torch

    from nas_width.search.prepare import check_local_resources
    from nas_width.search.study import Resources

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(NasWidthError, match="gpus_per_trial 1 is more than this machine's 0 CUDA"):
        check_local_resources(Resources(gpus_per_trial=1))
    with pytest.raises(NasWidthError, match="cpus_per_trial 1e\\+09"):
        check_local_resources(Resources(cpus_per_trial=1e9))
    check_local_resources(Resources(cpus_per_trial=1))
