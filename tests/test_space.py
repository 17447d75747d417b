"""Search spaces, studies, the untried-shapes sampler and the searcher's trial states.

No Ray workers run here: the searcher is driven by hand, the sampler through plain Optuna.
Solving a whole shipped space traces every candidate with fvcore, so the shapes of a (space,
budget) pair are computed once per session; the SW-MLP's dense masked layers at FLOP budgets
are the slow pairs.
"""

from __future__ import annotations

import functools
import math
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import TrialState

from nas_width import BudgetError, ConfigError, MixerConfig, measure, parse_budget
from nas_width.resources import path as shipped
from nas_width.search import divisor_patches, load_space, load_spec, shape_key
from nas_width.search.recovery import INTERRUPTED
from nas_width.search.sampler import UntriedShapes
from nas_width.search.searcher import WidthSearch

DIGITS = ((1, 8, 8), 10)
SPACES = sorted(p.stem for p in shipped("search_spaces").glob("*.toml"))
STUDIES = sorted(p.stem for p in shipped("studies").glob("*.toml"))
SLOW = {("sw-mlp", "flops=200k"), ("sw-mlp", "flops=1M")}
PAIRS = [
    pytest.param(s, b, marks=pytest.mark.slow if (s, b) in SLOW else (), id=f"{s}-{b}")
    for s in SPACES
    if s != "sweep"  # three seeds of the sw-mlp space again: covered by the sw-mlp rows
    for b in ("50k", "flops=200k", "flops=1M")
]


@functools.cache
def digits_shapes(space: str, budget: str) -> dict[str, MixerConfig]:
    return load_space(space).shapes(parse_budget(budget), *DIGITS)


def write(tmp_path: Path, text: str, name: str = "space.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


# --- shipped spaces and studies -------------------------------------------------------------


def test_shipped_files_are_found() -> None:
    assert {"mixer", "monarch", "sw-mlp"} <= set(SPACES)
    assert "digits" in STUDIES


@pytest.mark.parametrize("name", SPACES)
def test_shipped_space_loads(name: str) -> None:
    space = load_space(name)
    assert space.name == name
    assert len(space.hash) == 12
    candidates = list(space.candidates(*DIGITS))
    assert candidates
    with_seed = len({c.seed for c in candidates}) > 1
    keys = [shape_key(c, with_seed) for c in candidates]
    assert len(set(keys)) == len(keys)  # no two candidates collapse onto one key


@pytest.mark.parametrize("name", STUDIES)
def test_shipped_study_loads_and_names_a_shipped_space(name: str) -> None:
    spec = load_spec(name)
    assert spec.name == name
    assert spec.trials == "all" or int(spec.trials) >= 1
    load_space(spec.space)


@pytest.mark.parametrize(("space", "budget"), PAIRS)
def test_every_feasible_shape_meets_the_budget(space: str, budget: str) -> None:
    shapes = digits_shapes(space, budget)
    spec = parse_budget(budget)
    definition = load_space(space).definition
    with_seed = len(definition.get("seeds", [0])) > 1
    assert shapes
    for key, cfg in shapes.items():
        assert key == shape_key(cfg, with_seed)
        assert key.startswith(f"{cfg.mixing}-S{cfg.tokens}-")
        assert cfg.input_shape == DIGITS[0]
        assert cfg.num_classes == DIGITS[1]
        got = getattr(measure(cfg), spec.metric)
        assert abs(got / spec.value - 1) <= spec.tolerance, (key, got)
    tokens = {c.tokens for c in shapes.values()}
    assert min(tokens) >= definition.get("min_tokens", 2)
    assert max(tokens) <= definition.get("max_tokens", 64)
    assert {c.mixing for c in shapes.values()} <= set(definition["mixing"])


def test_shapes_are_deterministic() -> None:
    first = digits_shapes("mixer", "50k")
    again = load_space("mixer").shapes(parse_budget("50k"), *DIGITS)
    assert again == first
    assert list(again) == sorted(again)
    assert len({c.tokens for c in first.values()}) >= 4  # S really varies with the patch
    assert {c.mixing for c in first.values()} == {"mixer", "rp"}


def test_monarch_has_fewer_channels_than_the_mixer_at_a_parameter_budget() -> None:
    """Monarch stores every connection (untied blocks): at equal parameters C is smaller. Its
    count steps coarsely in C; the solver's hidden widths hold the budget there, so every S
    that a FLOP budget admits is feasible at the parameter budget too."""
    monarch, mixer = digits_shapes("monarch", "50k"), digits_shapes("mixer", "50k")
    for key, cfg in monarch.items():
        twin = mixer.get(key.replace("monarch-", "mixer-", 1))
        if twin is not None:
            assert cfg.channels < twin.channels, key
    at_flops = {c.tokens for c in digits_shapes("monarch", "flops=1M").values()}
    assert {c.tokens for c in monarch.values()} == at_flops


def test_infeasible_budget_names_the_space() -> None:
    with pytest.raises(BudgetError, match=r"infeasible.*'sw-mlp'"):
        load_space("sw-mlp").shapes(parse_budget("10"), *DIGITS)


# --- divisor patches ------------------------------------------------------------------------


def test_divisor_patches() -> None:
    patches = divisor_patches((1, 8, 8))
    assert len(patches) == 16
    assert len(set(patches)) == 16
    assert (2, 4) in patches
    assert (4, 2) in patches
    assert divisor_patches((1, 8, 8), square=True) == [(1, 1), (2, 2), (4, 4), (8, 8)]
    assert divisor_patches((1, 40)) == [(1,), (2,), (4,), (5,), (8,), (10,), (20,), (40,)]


# --- TOML errors ----------------------------------------------------------------------------


def test_malformed_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'mixing = ["mixer"\npatch = "all"\n')
    with pytest.raises(ConfigError, match="line") as err:
        load_space(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_key_is_named_with_the_allowed_keys(tmp_path: Path) -> None:
    path = write(tmp_path, 'mixng = ["mixer"]\n')
    with pytest.raises(ConfigError, match="mixng") as err:
        load_space(path)
    assert "allowed" in str(err.value)
    assert "mixing" in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ('mixing = ["mixer", "mlp"]', "'mlp'"),
        ("gamma_token = []", "gamma_token"),
        ("depth = []", "depth"),
        ('depth = ["two"]', "depth"),
        ("gamma_channel = [true]", "gamma_channel"),
    ],
)
def test_bad_values_are_named(tmp_path: Path, body: str, named: str) -> None:
    path = write(tmp_path, body + "\n")
    with pytest.raises(ConfigError, match=named):
        load_space(path)


def test_patch_that_does_not_divide_the_input_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "patch = [[2, 2], [3, 3]]\n")
    with pytest.raises(ConfigError, match=r"patch \[3, 3\]"):
        load_space(path).shapes(parse_budget("20k"), *DIGITS)


def test_unknown_shipped_space_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="'nope'") as err:
        load_space("nope")
    for name in SPACES:
        assert name in str(err.value)


def test_missing_space_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_space(tmp_path / "absent.toml")


# --- Python callable spaces -----------------------------------------------------------------

MODULE = """
from nas_width import MixerConfig

def three(input_shape, num_classes):
    return [
        MixerConfig(input_shape=input_shape, patch=p, channels=1, num_classes=num_classes)
        for p in [(2, 2), (4, 4), (2, 4)]
    ]

not_callable = 3
"""


def test_callable_space(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, MODULE, "nas_width_user_space.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    space = load_space("nas_width_user_space:three")
    assert space.definition == {"callable": "nas_width_user_space:three"}
    shapes = space.shapes(parse_budget("20k"), *DIGITS)
    assert len(shapes) == 3
    assert sorted(c.tokens for c in shapes.values()) == [4, 8, 16]
    for cfg in shapes.values():
        assert cfg.channels > 1  # solved, not the candidate's placeholder
        assert abs(measure(cfg).params / 20_000 - 1) <= 0.02


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ("nas_width_no_such_module:three", "nas_width_no_such_module"),
        ("nas_width_user_space:absent", "absent"),
        ("nas_width_user_space:not_callable", "not callable"),
    ],
)
def test_bad_callable_space_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, named: str
) -> None:
    write(tmp_path, MODULE, "nas_width_user_space.py")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=named) as err:
        load_space(spec)
    assert "\n" not in str(err.value)


# --- the space hash -------------------------------------------------------------------------


def test_space_hash_is_stable_and_tracks_values(tmp_path: Path) -> None:
    body = 'mixing = ["mixer"]\npatch = "square"\ngamma_token = [GT]\n'
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "c").mkdir()
    same = write(tmp_path / "a", body.replace("GT", "2.0"), "tiny.toml")
    moved = write(tmp_path / "b", body.replace("GT", "2.0"), "tiny.toml")
    changed = write(tmp_path / "c", body.replace("GT", "3.0"), "tiny.toml")
    h = load_space(same).hash
    assert len(h) == 12
    assert int(h, 16) >= 0
    assert load_space(same).hash == h
    assert load_space(moved).hash == h  # the definition, not the path, is hashed
    assert load_space(changed).hash != h
    assert load_space("mixer").hash == load_space("mixer").hash
    assert load_space("mixer").hash != load_space("monarch").hash


# --- studies --------------------------------------------------------------------------------


def test_digits_study() -> None:
    spec = load_spec("digits")
    assert spec.dataset.name == "digits"
    assert spec.space == "mixer"
    assert isinstance(spec.trials, int)  # not "all"
    assert spec.trials >= 12
    assert spec.sampler in ("tpe", "random", "grid", "gp", "nsga2")
    assert spec.recipe.epochs >= 1
    assert not spec.pareto


STUDY = """
space = "mixer"
trials = 4
[recipe]
epochs = 2
"""


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("trails = 3", "trails"),
        ('sampler = "cmaes"', "'cmaes'"),
        ('scheduler = "pbt"', "'pbt'"),
        ("trials = 0", "trials"),
        ("trials = true", "trials"),
        ('pareto = true\nscheduler = "asha"', "asha"),
        ("[recipe]\nlr = -1.0", r"\[recipe\].*lr"),
        ("[recipe]\nbatch_size = 0", r"\[recipe\].*batch_size"),
        ('[recipe]\naugment = "rotate"', r"\[recipe\].*augment"),
        ("[recipe]\nepochz = 3", r"\[recipe\].*epochz"),
        ("[dataset]\nnme = 'digits'", r"\[dataset\].*nme"),
        ("[resources]\ncpus_per_trial = 0", "resources"),
        ('[resources]\ncpus_per_trial = "two"', r"\[resources\].*'two'"),
        ('pareto = "yes"', "pareto.*'yes'"),
        ("tolerance = 5", "tolerance.*5"),
        ("seed = -1", "seed.*-1"),
        ("storage = 3", "storage.*3"),
        ("[asha]\ngrace_period = 0", r"\[asha\].*grace_period"),
        ("[dataset]\nval_fraction = 2", r"\[dataset\].*val_fraction"),
    ],
)
def test_bad_study_is_named(tmp_path: Path, change: str, named: str) -> None:
    if change.startswith("[recipe]"):
        text = STUDY.replace("epochs = 2", "epochs = 2\n" + change.removeprefix("[recipe]\n"))
    elif change.startswith("["):
        text = STUDY + change + "\n"
    else:
        text = change + "\n" + STUDY
    path = write(tmp_path, text, "study.toml")
    with pytest.raises(ConfigError, match=named) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert "\n" not in str(err.value)


def test_study_files_write_cleanly(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, STUDY, "mine.toml"))
    assert spec.name == "mine"
    assert spec.trials == 4
    assert spec.recipe.epochs == 2


def test_unknown_shipped_study_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"'nope'.*digits"):
        load_spec("nope")


def test_load_study_still_reads_a_study_file_with_a_deprecation_warning() -> None:
    from nas_width.search import load_study

    with pytest.warns(DeprecationWarning, match="use load_spec"):
        spec = load_study("digits")
    assert spec == load_spec("digits")


# --- the untried-shapes sampler -------------------------------------------------------------

CHOICES = [f"shape-{i}" for i in range(10)]
BEST = "shape-3"


def untried_study(multivariate: bool = False) -> optuna.Study:
    base = optuna.samplers.TPESampler(n_startup_trials=2, multivariate=multivariate, seed=0)
    return optuna.create_study(direction="maximize", sampler=UntriedShapes(base, seed=0))


def objective(trial: optuna.Trial) -> float:
    """Prefers ``BEST``: TPE alone would sample it again and again."""
    return 1.0 if trial.suggest_categorical("shape", CHOICES) == BEST else 0.0


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
@pytest.mark.parametrize("multivariate", [False, True])
def test_untried_shapes_tries_every_shape_once_first(multivariate: bool) -> None:
    study = untried_study(multivariate)
    study.optimize(objective, n_trials=15)  # once every shape was tried, repeats are allowed
    trials = study.trials
    assert len(trials) == 15
    assert all(t.state == TrialState.COMPLETE for t in trials)
    assert sorted(t.params["shape"] for t in trials[:10]) == sorted(CHOICES)
    assert {t.params["shape"] for t in trials[10:]} <= set(CHOICES)


def test_untried_shapes_ignores_interrupted_trials_only() -> None:
    study = untried_study()
    dist = optuna.distributions.CategoricalDistribution(CHOICES)

    def failed(shape: str, reason: str) -> optuna.trial.FrozenTrial:
        return optuna.trial.create_trial(
            state=TrialState.FAIL,
            params={"shape": shape},
            distributions={"shape": dist},
            user_attrs={"fail_reason": reason},
        )

    study.add_trial(failed("shape-0", INTERRUPTED))  # never ran to an end: not tried
    study.add_trial(failed("shape-1", "RuntimeError: boom"))  # a real failure: tried
    study.enqueue_trial({"shape": "shape-2"})
    running = study.ask()
    assert running.suggest_categorical("shape", CHOICES) == "shape-2"  # left RUNNING
    study.optimize(objective, n_trials=8)
    new = [t.params["shape"] for t in study.trials[3:]]
    assert sorted(new) == sorted(set(CHOICES) - {"shape-1", "shape-2"})


# --- the searcher's trial states (no Ray workers) -------------------------------------------


@pytest.fixture(scope="module")
def searcher_shapes() -> dict[str, MixerConfig]:
    cfgs = [
        MixerConfig(input_shape=(1, 8, 8), patch=p, channels=12, depth=1) for p in [(2, 2), (4, 4)]
    ]
    return {shape_key(c): c for c in cfgs}


def width_search(shapes: dict[str, MixerConfig], **options: Any) -> WidthSearch:
    """Ray's OptunaSearch is a plain object: no ``ray.init`` and no workers are needed."""
    options = {"metric": "val_accuracy", "mode": "max", **options}
    storage = optuna.storages.InMemoryStorage()
    return WidthSearch(shapes, epochs=4, storage=storage, study_name="s", **options)


def test_searcher_maps_early_stops_failures_and_completions(
    searcher_shapes: dict[str, MixerConfig],
) -> None:
    search = width_search(searcher_shapes)
    for t in ("t1", "t2", "t3", "t4"):
        params = search.suggest(t)
        assert params is not None
        assert params["shape"] in searcher_shapes

    search.on_trial_result("t1", {"val_accuracy": 0.5, "epoch": 1})
    search.on_trial_result("t1", {"val_accuracy": 0.9, "epoch": 1})  # an epoch counts once
    search.on_trial_complete("t1", {"val_accuracy": 0.6, "epoch": 2})  # ASHA stopped it
    search.on_trial_complete("t1", {"val_accuracy": 0.7, "epoch": 4})  # told once only

    error = {"error": "TrialFailed: non-finite loss", "val_accuracy": math.nan}
    search.on_trial_result("t2", error)
    search.on_trial_complete("t2", error)

    result: dict[str, Any] = {}
    for epoch in range(1, 5):
        result = {"val_accuracy": 0.1 * epoch, "epoch": epoch, "images_per_sec": 100.0}
        search.on_trial_result("t3", result)
    search.on_trial_complete("t3", result)

    search.on_trial_complete("t4", None, error=True)

    t1, t2, t3, t4 = search.study.trials
    assert t1.state == TrialState.PRUNED  # stopped early: not a width result
    assert t1.intermediate_values == {1: 0.5, 2: 0.6}
    assert t1.user_attrs["epochs"] == 2
    cfg = searcher_shapes[t1.params["shape"]]
    m = measure(cfg)
    assert t1.user_attrs["S"] == cfg.tokens
    assert t1.user_attrs["C"] == 12
    assert t1.user_attrs["m"] == cfg.tokens * 12
    assert t1.user_attrs["params"] == m.params
    assert t1.user_attrs["flops"] == m.flops
    assert t1.user_attrs["mixing"] == "mixer"
    assert MixerConfig.from_dict(t1.user_attrs["config"]) == cfg

    assert t2.state == TrialState.FAIL
    assert t2.user_attrs["fail_reason"] == "TrialFailed: non-finite loss"
    assert t2.intermediate_values == {}

    assert t3.state == TrialState.COMPLETE
    assert t3.values == [pytest.approx(0.4)]
    assert t3.intermediate_values == pytest.approx({e: 0.1 * e for e in range(1, 5)})
    assert t3.user_attrs["epochs"] == 4
    assert t3.user_attrs["images_per_sec"] == 100.0

    assert t4.state == TrialState.FAIL
    assert "worker failed" in t4.user_attrs["fail_reason"]


def test_searcher_pareto_completes_with_both_objectives(
    searcher_shapes: dict[str, MixerConfig],
) -> None:
    search = width_search(searcher_shapes, metric=["val_accuracy", "flops"], mode=["max", "min"])
    params = search.suggest("t1")
    assert params is not None
    flops = measure(searcher_shapes[params["shape"]]).flops
    result = {"val_accuracy": 0.8, "flops": flops, "epoch": 4}
    search.on_trial_result("t1", result)
    search.on_trial_complete("t1", result)
    (trial,) = search.study.trials
    assert trial.state == TrialState.COMPLETE
    assert trial.values == [0.8, flops]
