"""The width search end to end: Ray Tune trials, the Optuna study, resume, export, train.

Searches here use the synthetic data set, a small budget and a few epochs; Ray starts once per
module (searches join it instead of starting their own).
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from nas_width.errors import NasWidthError
from nas_width.schema import StudySettings, TrialAttrs
from nas_width.search import load_spec
from nas_width.search.errors import StorageError
from nas_width.search.prepare import prepare
from nas_width.search.recovery import INTERRUPTED
from nas_width.search.runner import run_search
from nas_width.search.space import shapes_hash
from nas_width.search.study import SAMPLERS
from nas_width.search.trainable import FAIL_HOOK_ENV
from tests.conftest import small_config

pytestmark = pytest.mark.slow

SPACE = """
name = "tiny"
mixing = ["mixer", "rp"]
patch = [[2, 2], [4, 2], [2, 4], [4, 4], [1, 2]]
gamma_token = [GT]
gamma_channel = [2.0]
depth = [1]
"""


def write_study(
    tmp_path: Path, name: str = "tiny", gamma_token: float = 2.0, **fields: Any
) -> Path:
    """A study TOML on the synthetic set, with its own space file and storage in tmp_path."""
    space = tmp_path / f"space-{name}.toml"
    space.write_text(SPACE.replace("GT", str(gamma_token)))
    table = {
        "dataset": '{ name = "synthetic", options = { n = 256 } }',
        "space": f'"{space}"',
        "trials": 3,
        "storage": f'"sqlite:///{tmp_path / "study.db"}"',
        "sampler": '"tpe"',
        **{k: (f'"{v}"' if isinstance(v, str) else str(v).lower()) for k, v in fields.items()},
    }
    lines = [f"{k} = {v}" for k, v in table.items()]
    lines += ["[recipe]", "epochs = 3", "batch_size = 64", "lr = 0.01", "warmup_epochs = 0.5"]
    lines += ["[resources]", "cpus_per_trial = 1", "max_concurrent = 2"]
    path = tmp_path / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module", autouse=True)
def ray_cluster() -> Iterator[None]:
    import ray

    os.environ[FAIL_HOOK_ENV] = "gt3"  # only the failure test's space has gamma_token 3
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    del os.environ[FAIL_HOOK_ENV]


def search(
    path: Path,
    budget: str = "5k",
    resume: bool = False,
    study_name: str | None = None,
    **changes: Any,
) -> Any:
    spec = load_spec(path).replace(**changes)
    return run_search(prepare(spec, budget, study_name), resume=resume, echo=lambda _: None)


def stored(path: Path) -> optuna.Study:
    spec = load_spec(path)
    names = optuna.get_all_study_names(spec.storage)
    return optuna.load_study(study_name=names[0], storage=spec.storage)


def test_search_stores_trials_with_shapes_and_metric_names(tmp_path: Path) -> None:
    path = write_study(tmp_path, trials=4)
    outcome = search(path)
    study = stored(path)
    trials = study.get_trials()
    assert outcome.states["COMPLETE"] == 4
    assert study.metric_names == ["val_accuracy"]
    assert len({t.params["shape"] for t in trials}) == 4  # no shape trained twice
    spec = prepare(load_spec(path), "5k")
    for t in trials:
        attrs = t.user_attrs
        assert attrs["S"] * attrs["C"] == attrs["m"]
        assert attrs["density_token"] == pytest.approx(1 / attrs["C"])
        assert attrs["density_channel"] == pytest.approx(1 / attrs["S"])
        assert abs(attrs["params"] / 5000 - 1) <= 0.005  # every trial within the precision
        assert (attrs["hidden_token"], attrs["hidden_channel"]) == (
            spec.shapes[t.params["shape"]].token_hidden,
            spec.shapes[t.params["shape"]].channel_hidden,
        )
        assert attrs["val_samples"] == len(spec.data.y_val)
        assert attrs["test_samples"] == len(spec.data.y_test)
        assert 0 <= attrs["test_accuracy"] <= 1
        assert attrs["test_loss"] > 0
        assert attrs["lr"] == 0.01
        assert attrs["tuning"] is None
        history = attrs["history"]
        assert len(history["train_loss"]) == len(history["train_accuracy"]) == 3
        assert all(0 <= a <= 1 for a in history["train_accuracy"])
        assert attrs["train_accuracy"] == history["train_accuracy"][-1]
        assert attrs["epochs"] == 3
        assert attrs["images_per_sec"] > 0
        assert attrs["device"] == "cpu"
        assert sorted(t.intermediate_values) == [1, 2, 3]
        assert t.values[0] == t.intermediate_values[3]
        assert t.params["shape"] in spec.shapes
        assert set(attrs) <= set(TrialAttrs.__annotations__)  # the stored schema, written down
        # The shape's features as Optuna parameters, for optuna-dashboard's own plots.
        assert t.params["mixing"] == attrs["mixing"]
        assert t.params["log2_S"] == pytest.approx(math.log2(attrs["S"]))
        assert (t.params["depth"], t.params["gamma_token"]) == (attrs["depth"], 2.0)
        assert t.params["patch"] == "x".join(map(str, attrs["patch"]))
        assert isinstance(t.distributions["log2_S"], optuna.distributions.FloatDistribution)
    attrs = study.user_attrs
    assert set(attrs) == set(StudySettings.__annotations__)  # every setting, none unlisted
    assert attrs["budget"] == "params=5k"
    assert attrs["space"] == "tiny"
    assert len(attrs["space_hash"]) == 12
    assert attrs["dataset"]["name"] == "synthetic"
    assert attrs["nas_width_version"]
    assert attrs["shapes_hash"] == shapes_hash(spec.shapes)
    assert attrs["primary_test"]["primary_kind"] == "mixer"
    assert attrs["tune"] is None
    assert outcome.best["val_accuracy"] == max(t.values[0] for t in trials)


def test_resume_continues_without_losing_or_rerunning(tmp_path: Path) -> None:
    path = write_study(tmp_path, trials=2)
    search(path)
    before = {t.number: (t.params, t.values, t.datetime_complete) for t in stored(path).trials}
    with pytest.raises(StorageError, match=r"already exists.*--resume"):
        search(path)
    outcome = search(path, resume=True, trials=4)
    after = stored(path).trials
    assert outcome.states["COMPLETE"] == 4
    for t in after:
        if t.number in before:
            assert (t.params, t.values, t.datetime_complete) == before[t.number]
    with pytest.raises(StorageError, match=r"budget 'params=5k'.*'params=6k'"):
        search(path, budget="6k", resume=True, study_name="tiny-params-5k")


def test_resume_fails_interrupted_trials_and_retries_them_once(tmp_path: Path) -> None:
    path = write_study(tmp_path, trials=2)
    search(path)
    study = stored(path)
    shapes = list(prepare(load_spec(path), "5k").shapes)
    shape = next(s for s in shapes if s not in {t.params["shape"] for t in study.trials})
    study.enqueue_trial({"shape": shape})
    stale = study.ask({"shape": optuna.distributions.CategoricalDistribution(shapes)})
    assert study.trials[stale.number].state == TrialState.RUNNING  # as left by a SIGKILL
    outcome = search(path, resume=True, trials=3)
    trials = stored(path).trials
    assert outcome.recovered == [stale.number]
    assert trials[stale.number].state == TrialState.FAIL
    assert trials[stale.number].user_attrs["fail_reason"] == INTERRUPTED
    retry = [t for t in trials if t.user_attrs.get("retry_of") == stale.number]
    assert len(retry) == 1
    assert retry[0].state == TrialState.COMPLETE
    assert retry[0].params["shape"] == shape  # (its features are set beside it)
    assert all(t.state != TrialState.RUNNING for t in trials)


def test_scheduler_stopped_trials_end_pruned(tmp_path: Path) -> None:
    path = write_study(tmp_path, trials=8, scheduler="asha", sampler="random")
    spec = load_spec(path)
    spec = spec.replace(
        recipe=spec.recipe.replace(epochs=4, lr=0.002),
        asha=type(spec.asha)(grace_period=1, reduction_factor=2),
        resources=type(spec.resources)(max_concurrent=1),
    )
    outcome = run_search(prepare(spec, "5k"), echo=lambda _: None)
    trials = stored(path).trials
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned, outcome.states
    for t in pruned:
        assert t.user_attrs["epochs"] < 4
        assert len(t.intermediate_values) == t.user_attrs["epochs"]
        # Optuna keeps a pruned trial's last intermediate value as its value; the state says
        # that it was not trained to the end.
        assert t.values in (None, [t.intermediate_values[t.user_attrs["epochs"]]])
    for t in trials:
        if t.state == TrialState.COMPLETE:
            assert t.user_attrs["epochs"] == 4


def test_failing_trials_end_fail_with_reason_and_search_goes_on(tmp_path: Path) -> None:
    path = write_study(tmp_path, trials=4, gamma_token=3.0)  # every shape matches the hook
    outcome = search(path)
    trials = stored(path).trials
    assert outcome.states["FAIL"] == 4
    assert outcome.best is None
    for t in trials:
        assert "failure injected by a test hook" in t.user_attrs["fail_reason"]


@pytest.mark.smoke
def test_pareto_search_reports_a_front(tmp_path: Path) -> None:
    path = write_study(tmp_path, trials=4, pareto=True, sampler="nsga2")
    outcome = search(path, budget="flops=200k")
    study = stored(path)
    assert study.metric_names == ["val_accuracy", "flops"]
    assert outcome.front
    for row in outcome.front:
        assert row["flops"] <= 200_000 * 1.02
    flops = [row["flops"] for row in outcome.front]
    accs = [row["val_accuracy"] for row in outcome.front]
    assert flops == sorted(flops)
    assert all(a <= b for a, b in itertools.pairwise(accs))  # a front rises with cost


@pytest.mark.smoke
@pytest.mark.parametrize("sampler", SAMPLERS)
def test_every_sampler_runs_a_search_under_ray(tmp_path: Path, sampler: str) -> None:
    """Each sampler the CLI offers, on today's Optuna and Ray: two trials run and complete, on
    two different shapes (tpe is the shape TPE)."""
    path = write_study(tmp_path, trials=2, sampler=sampler)
    outcome = search(path)
    trials = stored(path).trials
    assert outcome.states["COMPLETE"] == len(trials) == 2
    assert len({t.params["shape"] for t in trials}) == 2
    assert outcome.best is not None


@pytest.mark.smoke
def test_searcher_pickles_without_its_driver_objects() -> None:
    """Ray pickles the search algorithm (tuner.pkl, its checkpoints); the sampler, which may
    hold a lock (NSGA-II), and the live study stay on the driver."""
    import pickle

    from nas_width.search.searcher import DRIVER_ONLY, WidthSearch

    searcher = WidthSearch(
        {"a": small_config()}, epochs=1, metric="val_accuracy", mode="max",
        sampler=optuna.samplers.NSGAIISampler(seed=0),
    )  # fmt: skip
    assert searcher.study is not None
    copy = pickle.loads(pickle.dumps(searcher))
    assert all(getattr(copy, name) is None for name in DRIVER_ONLY)
    with pytest.raises(RuntimeError, match="no live study"):
        _ = copy.study
    assert searcher.study is not None  # the driver's searcher keeps its study


def test_bad_search_input_touches_no_storage(tmp_path: Path) -> None:
    path = write_study(tmp_path)
    db = tmp_path / "study.db"
    with pytest.raises(NasWidthError, match="'5q'"):
        search(path, budget="5q")
    with pytest.raises(NasWidthError, match="infeasible"):
        search(path, budget="10")
    with pytest.raises(NasWidthError, match="does not exist"):
        search(path, resume=True)
    assert not db.exists()


def test_grid_sweep_runs_every_shape_once_with_replicate_seeds(tmp_path: Path) -> None:
    """trials = "all" with the grid sampler: one trial per feasible shape, seeds as replicates."""
    path = write_study(tmp_path, sampler="grid", trials="all")
    space = tmp_path / "space-tiny.toml"
    text = space.read_text().replace('["mixer", "rp"]', '["mixer"]')
    space.write_text(text.replace("[[2, 2], [4, 2], [2, 4], [4, 4], [1, 2]]", "[[2, 2], [2, 4]]")
                     + "seeds = [0, 1]\n")  # fmt: skip
    expected = prepare(load_spec(path), "5k").shapes
    assert len(expected) == 4
    outcome = search(path)
    trials = stored(path).trials
    shapes = {t.params["shape"] for t in trials}
    assert outcome.states["COMPLETE"] == len(trials) == 4
    assert shapes == set(expected)
    assert {key.rsplit("-", 1)[1] for key in shapes} == {"s0", "s1"}
    assert {(t.user_attrs["S"], t.user_attrs["seed"]) for t in trials} == {
        (16, 0),
        (16, 1),
        (8, 0),
        (8, 1),
    }


def test_tuned_search_keeps_each_shapes_best_learning_rate_on_validation(tmp_path: Path) -> None:
    """[tune]: every shape trains each rate to the first rung (epoch 1 of 3), the best on
    validation goes on; the trial stores the winner's epochs, rate and held-out test metrics."""
    path = write_study(tmp_path, trials=2)
    path.write_text(path.read_text() + "[tune]\nlr = [0.001, 0.01, 0.1]\n")
    lines: list[str] = []
    outcome = run_search(prepare(load_spec(path), "5k"), resume=False, echo=lines.append)
    study = stored(path)
    kept = {f"lr={t.user_attrs['lr']:g}" for t in study.trials}
    assert {w for line in lines for w in line.split() if w.startswith("lr=")} == kept
    assert any(line.startswith("training: the first trials started") for line in lines)
    done = [line for line in lines if line.startswith("[")]
    best = max(t.values[0] for t in study.trials)
    assert done[-1].endswith("s]")
    assert f"best {best:.4f}" in done[-1]
    assert "s left]" in done[0]  # the first of two: the second's time is estimated
    assert outcome.states["COMPLETE"] == 2
    assert study.user_attrs["tune"] == {"lr": [0.001, 0.01, 0.1], "eta": 3}
    for t in study.trials:
        attrs = t.user_attrs
        tried = attrs["tuning"]
        assert [c["lr"] for c in tried] == [0.001, 0.01, 0.1]
        (winner,) = [c for c in tried if c["stopped_at"] is None]
        assert attrs["lr"] == winner["lr"]
        losers = [c for c in tried if c is not winner]
        assert all(c["stopped_at"] == 1 for c in losers)
        assert all(c["epochs"] == 1 for c in tried)  # where the choice was made
        assert winner["val_accuracy"] == t.intermediate_values[1]  # its epoch 1, replayed
        assert all(winner["val_accuracy"] >= c["val_accuracy"] for c in losers)
        assert sorted(t.intermediate_values) == [1, 2, 3]
        assert attrs["epochs"] == 3
        assert 0 <= attrs["test_accuracy"] <= 1
    untuned = path.with_name("untuned.toml")
    untuned.write_text(path.read_text().split("[tune]")[0])
    with pytest.raises(StorageError, match="tune"):  # resuming it without tuning is refused
        search(untuned, resume=True, study_name=study.study_name)


def test_a_study_name_with_dots_keeps_rays_files_in_its_temporary_directory(
    tmp_path: Path,
) -> None:
    import tempfile
    import uuid

    escape = f"nas-width-escape-{uuid.uuid4().hex[:8]}"
    path = write_study(tmp_path, trials=1)
    outcome = search(path, study_name=f"../{escape}")
    assert outcome.states["COMPLETE"] == 1
    assert not (Path(tempfile.gettempdir()) / escape).exists()
    assert stored(path).study_name == f"../{escape}"  # the study keeps the name it was given
