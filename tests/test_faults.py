"""Faulty trials: an exception, a NaN loss, out of memory, and a search whose trials keep failing.

The failures are real: the trainable's test hook (``NAS_WIDTH_FAIL_SHAPE``) makes chosen shapes
raise inside the Ray worker, train on NaN inputs (the loss check fails), or raise the
``torch.OutOfMemoryError`` that CUDA raises. The CLI runs in-process on one Ray cluster that
starts with the hook in its environment (workers inherit it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from nas_width.search.study import load_spec
from nas_width.search.trainable import FAIL_HOOK_ENV
from tests.conftest import invoke, snapshot

pytestmark = pytest.mark.slow

BUDGET = "10k"
FAULTS = """\
name = "faults"
mixing = ["mixer"]
patch = [[2, 2], [2, 4]]
gamma_token = [2.0]
gamma_channel = [2.0, 4.0]
depth = [1]
"""
FAILING = FAULTS.replace('"faults"', '"failing"').replace("depth = [1]", "depth = [3]")
# One way to fail per shape of FAULTS (mixer-S16-p2x2-gt2-gc2-d1 trains); every FAILING shape
# (depth 3) raises.
RULES = "p2x2-gt2-gc4-d1=error,p2x4-gt2-gc2-d1=nan,p2x4-gt2-gc4-d1=oom,-d3=error"
REASONS = {
    "mixer-S16-p2x2-gt2-gc4-d1": r"RuntimeError: failure injected by a test hook",
    "mixer-S8-p2x4-gt2-gc2-d1": r"TrialFailed: non-finite loss \(nan\) at epoch 1, step 1",
    "mixer-S8-p2x4-gt2-gc4-d1": r"OutOfMemoryError: CUDA out of memory",
}


@pytest.fixture(scope="module", autouse=True)
def ray_cluster() -> Iterator[None]:
    import ray

    before = os.environ.get(FAIL_HOOK_ENV)
    os.environ[FAIL_HOOK_ENV] = RULES
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()
        if before is None:
            del os.environ[FAIL_HOOK_ENV]
        else:
            os.environ[FAIL_HOOK_ENV] = before


def space(directory: Path, text: str) -> Path:
    path = directory / "space.toml"
    path.write_text(text)
    return path


def stored(url: str) -> list[optuna.trial.FrozenTrial]:
    (name,) = optuna.get_all_study_names(url)
    return optuna.load_study(study_name=name, storage=url).trials


def test_failing_trials_end_fail_with_their_reason_and_the_search_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'faults.db'}"
    code, out, err = invoke(
        capsys, "search", "--study", "digits", "--space", space(tmp_path, FAULTS),
        "--budget", BUDGET, "--epochs", "2", "--trials", "4", "--sampler", "grid",
        "--storage", url,
    )  # fmt: skip
    assert code == 0, err
    trials = {t.params["shape"]: t for t in stored(url)}
    assert len(trials) == 4
    assert trials["mixer-S16-p2x2-gt2-gc2-d1"].state == TrialState.COMPLETE
    for shape, reason in REASONS.items():
        t = trials[shape]
        assert t.state == TrialState.FAIL, shape
        assert re.match(reason, t.user_attrs["fail_reason"]), t.user_attrs["fail_reason"]
        line = rf"^\[\d/4\] failed +{shape} .*{reason}"
        assert re.search(line, out, re.MULTILINE), out
    assert "complete 1, fail 3" in out


def failing_study(directory: Path, max_failures: int | None) -> Path:
    """A study file on digits whose every shape fails; ``max_failures`` set in the file."""
    path = directory / "failing.toml"
    key = "" if max_failures is None else f"max_failures = {max_failures}\n"
    path.write_text(
        f'dataset = "digits"\nspace = "{space(directory, FAILING)}"\ntrials = 4\n'
        f'sampler = "grid"\n{key}[recipe]\nepochs = 2\n[resources]\nmax_concurrent = 1\n'
    )
    return path


@pytest.mark.parametrize(
    ("in_file", "option", "ran"),
    [
        pytest.param(None, ["--max-failures", "2"], 2, id="option-stops-after-2"),
        pytest.param(2, [], 2, id="study-file-stops-after-2"),
        pytest.param(9, ["--max-failures", "3"], 3, id="option-over-file"),
        pytest.param(None, ["--max-failures", "0"], 4, id="zero-never-stops"),
    ],
)
def test_max_failures_stops_a_search_whose_trials_keep_failing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    in_file: int | None,
    option: list[str],
    ran: int,
) -> None:
    url = f"sqlite:///{tmp_path / 'failing.db'}"
    study = failing_study(tmp_path, in_file)
    code, out, err = invoke(
        capsys, "search", "--study", study, "--budget", BUDGET, "--storage", url, *option
    )
    trials = stored(url)
    assert [t.state for t in trials] == [TrialState.FAIL] * ran
    for t in trials:
        assert t.user_attrs["fail_reason"] == "RuntimeError: failure injected by a test hook"
    if ran == 4:  # the target reached: failures are results, not a reason to stop
        assert code == 0, err
        assert "fail 4" in out
        return
    assert code == 3, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith(
        f"nas-width: error: stopped: {ran} trials in a row failed (last: trial {ran - 1}: "
        "RuntimeError: failure injected by a test hook); fix the cause or raise --max-failures"
    ), err
    assert err.rstrip().endswith(
        f"continue with: nas-width search --study {study} --budget {BUDGET} --storage {url} "
        f"{' '.join(option)} --resume".replace("  ", " ")
    ), err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("option", "in_file", "named"),
    [
        pytest.param(["--max-failures", "-1"], "", r"max_failures must be .*got -1", id="negative"),
        pytest.param(["--max-failures", "two"], "", r"'two'", id="not-a-number"),
        pytest.param([], "max_failures = -3\n", r"max_failures must be .*got -3", id="toml"),
        pytest.param([], 'max_failures = "5"\n', r"max_failures must be .*got '5'", id="string"),
        pytest.param([], "max_failures = true\n", r"max_failures must be .*got True", id="bool"),
    ],
)
def test_a_bad_max_failures_exits_2_naming_it_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    option: list[str],
    in_file: str,
    named: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.toml").write_text(f'dataset = "digits"\n{in_file}')
    before = snapshot(tmp_path)
    code, out, err = invoke(
        capsys, "search", "--study", "study.toml", "--budget", BUDGET,
        "--storage", "sqlite:///new.db", *option,
    )  # fmt: skip
    assert (code, out) == (2, ""), err
    assert len(err.splitlines()) == 1, err
    assert re.search(named, err), err
    assert snapshot(tmp_path) == before


def test_help_gives_the_max_failures_default_and_the_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = invoke(capsys, "search", "--help")
    assert code == 0
    text = " ".join(out.replace("│", " ").split())  # rich's box, wrapped
    assert "--max-failures <int> Stop the search once this many trials in a row failed" in text
    assert "[default: (5, or the study's max_failures)]" in text
    assert "3 stopped by --max-failures" in text
    assert "130 interrupted (Ctrl-C)" in text


def test_an_error_out_of_ray_tune_leaves_the_study_consistent_and_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ray Tune raising out of ``fit`` (seen for real when Ray's memory monitor killed a trial's
    worker while it started) cannot be provoked on cue, so Ray's part is replaced here: it
    starts a trial, finishes one, then raises. What is tested is the search around it: the
    study stays consistent, the error is one clean stop, and --resume completes the study."""
    from nas_width.search import runner

    url = f"sqlite:///{tmp_path / 'ray.db'}"
    healthy = FAULTS.replace("gamma_channel = [2.0, 4.0]", "gamma_channel = [2.0]").replace(
        "[2, 4]]", "[4, 2]]"
    )  # two shapes that no rule of the hook touches
    spec = load_spec("digits").replace(
        space=str(space(tmp_path, healthy)), trials=2, storage=url, sampler="grid"
    )
    prepared = runner.prepare(spec.replace(recipe=spec.recipe.replace(epochs=2)), BUDGET)
    real_tune = runner._tune

    def failing_tune(prepared: Any, study: optuna.Study, *args: Any) -> list[tuple[int, str]]:
        shapes = sorted(prepared.shapes)
        done = study.ask({"shape": optuna.distributions.CategoricalDistribution(shapes)})
        study.tell(done, 0.5)
        study.ask({"shape": optuna.distributions.CategoricalDistribution(shapes)})  # running
        raise RuntimeError("Caught unexpected exception: 1 worker(s) were killed (OOM)")

    monkeypatch.setattr(runner, "_tune", failing_tune)
    with pytest.raises(runner.RayFailed, match=r"^Ray stopped the search: Caught unexpected"):
        runner.run_search(prepared, echo=lambda _: None)
    trials = stored(url)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.WAITING]
    assert trials[1].user_attrs["fail_reason"].startswith("interrupted")
    assert trials[2].system_attrs["fixed_params"] == trials[1].params  # queued again

    monkeypatch.setattr(runner, "_tune", real_tune)
    outcome = runner.run_search(prepared, resume=True, echo=lambda _: None)
    assert outcome.states["COMPLETE"] == 2
    assert TrialState.RUNNING not in {t.state for t in stored(url)}
