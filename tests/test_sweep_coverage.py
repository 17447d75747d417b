"""No candidate shape is dropped silently: at the shipped studies' budgets every patch-grid S
is in the sweep or listed with its reason, and the budget is held within PRECISION where whole
numbers of channels and hidden widths allow it (within the tolerance always)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nas_width.budget import PRECISION, closed_form, parse_budget
from nas_width.search import load_spec
from nas_width.search.prepare import describe_shapes, prepare
from nas_width.search.space import SolvedShapes, load_space, shapes_hash
from tests.conftest import invoke

INPUTS = {  # data set -> (input shape, classes), without loading the data
    "digits": ((1, 8, 8), 10),
    "mnist1d": ((1, 40), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
    "npz": ((3, 224, 224), 1000),  # imagenet-bw
}
# The budgets each shipped study is run at (its own, else those its comments and README give).
BUDGETS = [
    ("digits", "50k"), ("digits-sweep", "mixing_flops=200k"), ("digits-sweep", "flops=1M"),
    ("mnist1d", "50k"), ("mnist1d-sweep", "mixing_flops=100k"),
    ("mnist1d-sweep", "mixing_flops=200k"), ("mnist1d-sweep", "mixing_flops=400k"),
    ("mnist1d-sweep", "mixing_flops=800k"), ("mnist1d-sweep", "mixing_params=20k"),
    ("mnist1d-sweep", "flops=250k"), ("cifar10", "flops=20M"), ("cifar100", "flops=20M"),
    ("cifar10-widen", None), ("cifar100-widen", None), ("imagenet-bw", None),
]  # fmt: skip
OVER_AT_ONE = "even C = 1 is over the budget"
COARSE = "one channel steps over the budget"


def solved(study: str, budget: str | None) -> tuple[SolvedShapes, float]:
    spec = load_spec(study)
    shape, classes = INPUTS[spec.dataset.name]
    target = parse_budget(budget or spec.budget or "", spec.tolerance)
    return load_space(spec.space).solve(target, shape, classes), target.tolerance


@pytest.mark.slow
@pytest.mark.parametrize(("study", "budget"), BUDGETS)
def test_every_candidate_is_in_the_sweep_or_listed_with_its_reason(
    study: str, budget: str | None
) -> None:
    shapes, tolerance = solved(study, budget)
    spec = load_spec(study)
    target = parse_budget(budget or spec.budget or "", spec.tolerance)
    assert len(shapes.feasible) + len(shapes.infeasible) == shapes.candidates
    errors = {k: target.error(closed_form(c)) for k, c in shapes.feasible.items()}
    assert all(abs(e) <= tolerance for e in errors.values())
    # Where C is a few channels a step of one is coarse: outside those, PRECISION holds.
    loose = {k for k, e in errors.items() if abs(e) > PRECISION}
    assert all(shapes.feasible[k].channels <= 4 for k in loose), loose
    for left in shapes.infeasible:
        assert OVER_AT_ONE in left.reason or COARSE in left.reason, left
        assert "nearest is C=" in left.reason
    reachable = {c.tokens for c in shapes.feasible.values()}
    for left in shapes.infeasible:  # an S is left out only where C = 1 or 2 cannot hold it
        assert left.tokens not in reachable or COARSE in left.reason


@pytest.mark.parametrize(("study", "budget"), [
    ("mnist1d-sweep", "mixing_flops=100k"), ("mnist1d-sweep", "mixing_flops=200k"),
    ("mnist1d-sweep", "mixing_flops=400k"), ("mnist1d-sweep", "mixing_flops=800k"),
    ("mnist1d-sweep", "mixing_params=20k"), ("digits-sweep", "mixing_flops=200k"),
])  # fmt: skip
def test_the_sweeps_reach_both_sides_of_s_equals_c_within_precision(
    study: str, budget: str
) -> None:
    """At the budgets EXPERIMENTS.md runs, every S of the patch grid is in (the shapes that
    integer steps of C used to drop, S = 20 and 40 on MNIST-1D, S = 64 on digits, included)
    and S/C spans 1."""
    shapes, _ = solved(study, budget)
    ratios = [c.tokens / c.channels for c in shapes.feasible.values()]
    assert min(ratios) < 1 < max(ratios)
    assert "both sides of S = C" in shapes.ratio_note()
    assert not shapes.infeasible
    tokens = {c.tokens for c in shapes.feasible.values()}
    assert {20, 40} <= tokens if study.startswith("mnist1d") else 64 in tokens


def test_count_space_lists_the_shapes_and_those_left_out(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ("count", "--space", "sw-mlp", "--input-shape", "1,8,8", "--budget", "flops=40k")
    code, out, err = invoke(capsys, *args)
    assert code == 0, err
    assert "both sides of S = C" in out
    assert "left out: 2 shape(s) no C can hold:" in out
    assert "mixer-S64-p1x1-gt2-gc2-d2: budget flops=40k cannot be met" in out
    assert "nearest is C=1 with" in out
    assert "; C=2 gives +" in out
    code, out, _ = invoke(capsys, *args, "--json")
    payload = json.loads(out)
    assert code == 0
    assert set(payload["left_out"]) == {"mixer-S64-p1x1-gt2-gc2-d2", "sw-mlp-S64-p1x1-gt2-gc2-d2"}
    assert all(abs(row["error"]) <= PRECISION for row in payload["shapes"])
    code, _, err = invoke(capsys, "count", "--space", "sw-mlp", "--budget", "flops=40k")
    assert code == 2
    assert "--input-shape" in err


def test_search_names_the_shapes_it_leaves_out_before_any_trial(tmp_path: Path) -> None:
    """prepare() (no storage, no Ray) keeps the left-out shapes; the runner prints them and
    stores them in the study's attributes."""
    space = tmp_path / "space.toml"
    space.write_text('name = "tiny"\nmixing = ["mixer"]\npatch = [[1, 1], [2, 2], [1, 8]]\n'
                     "gamma_token = [2.0]\ngamma_channel = [2.0]\ndepth = [1]\n")  # fmt: skip
    study = tmp_path / "study.toml"
    study.write_text('dataset = { name = "synthetic", options = { n = 256 } }\n'
                     f'space = "{space}"\ntrials = 2\n')  # fmt: skip
    prepared = prepare(load_spec(study), "5k")
    assert sorted(c.tokens for c in prepared.shapes.values()) == [8, 16]
    lines = describe_shapes(prepared)
    assert lines[0].startswith("shapes: S/C from 0.25 to 0.552: every shape lies below S = C")
    assert lines[1] == "left out: 1 shape(s) no C can hold:"
    assert lines[2].startswith("  mixer-S64-p1x1-gt2-gc2-d1: budget params=5k cannot be met")
    assert "even C = 1 is over the budget" in lines[2]
    attrs = prepared.study_attrs()
    assert list(attrs["infeasible"]) == ["mixer-S64-p1x1-gt2-gc2-d1"]
    assert attrs["shapes_hash"] == shapes_hash(prepared.shapes)
