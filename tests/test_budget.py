"""The budget: fvcore measurement against FlopCounterMode and the closed forms, and the solver."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from nas_width import Budget, BudgetError, MixerConfig, build_model, measure, parse_budget, solve
from nas_width.budget import MAX_HIDDEN_SHIFT, PRECISION, closed_form
from nas_width.budget.measure import trace_parts
from tests.conftest import small_config

# Uneven shapes: S and C coprime, non-integer gammas, 1-D input, rectangular patches.
SHAPES = [
    {},
    {"channels": 7, "gamma_token": 0.7, "gamma_channel": 2.5, "depth": 3},
    {"input_shape": (3, 12, 8), "patch": (4, 2), "channels": 9, "num_classes": 4},
    {"input_shape": (2, 40), "patch": (8,), "channels": 11, "depth": 1},
]


@pytest.mark.parametrize("shape", SHAPES)
def test_fvcore_equals_closed_form_exactly(kind: str, shape: dict[str, object]) -> None:
    cfg = small_config(kind, **shape)
    got, want = measure(cfg), closed_form(cfg)
    for field in ("params", "flops", "mixing_params", "mixing_flops", "connections"):
        assert getattr(got, field) == getattr(want, field), field


@pytest.mark.parametrize("shape", SHAPES)
def test_parameters_match_the_model(kind: str, shape: dict[str, object]) -> None:
    """params = trainable parameters, minus the SW-MLP's masked-out (always zero) weights."""
    cfg = small_config(kind, **shape)
    model = build_model(cfg)
    masked = sum(int((b == 0).sum()) for n, b in model.named_buffers() if n.endswith("mask"))
    assert measure(cfg).params == sum(p.numel() for p in model.parameters()) - masked


@pytest.mark.parametrize("shape", SHAPES)
def test_fvcore_agrees_with_torch_flop_counter(kind: str, shape: dict[str, object]) -> None:
    """FlopCounterMode counts 2 per multiply-add and skips layer norms; fvcore counts 1 and 5."""
    cfg = small_config(kind, **shape)
    model = build_model(cfg).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *cfg.input_shape))
    macs = counter.get_total_flops() // 2
    norms = (2 * cfg.depth + 1) * 5 * cfg.tokens * cfg.channels
    got = measure(cfg)
    if kind == "sw-mlp":  # torch counts the dense masked matmuls; the budget keeps non-zeros
        dense = sum(
            m.weight.numel() for n, m in model.named_modules() if n.endswith(("fc1", "fc2"))
        )
        macs -= dense - got.connections
    assert got.flops - norms == macs


@pytest.mark.parametrize("gamma", [1.0, 2.0, 4.0])
@pytest.mark.parametrize(("grid", "channels"), [((4, 4), 16), ((2, 4), 24), ((8, 8), 12)])
def test_paper_closed_forms(kind: str, gamma: float, grid: tuple[int, int], channels: int) -> None:
    """Per block: 2 gamma S^2 + 2 gamma C^2 stored weights, 2 gamma S^2 C + 2 gamma C^2 S
    connections (= mixing FLOPs), densities 1/C and 1/S; Monarch stores every connection."""
    cfg = MixerConfig(
        input_shape=(1, 2 * grid[0], 2 * grid[1]), patch=(2, 2), channels=channels,
        depth=2, gamma_token=gamma, gamma_channel=gamma, mixing=kind,
    )  # fmt: skip
    S, C, d = cfg.tokens, channels, cfg.depth
    got = measure(cfg)
    biases = d * (gamma * S + S + gamma * C + C)
    connections = d * (2 * gamma * S**2 * C + 2 * gamma * C**2 * S)
    stored = {
        "mixer": d * (2 * gamma * S**2 + 2 * gamma * C**2),
        "rp": d * (2 * gamma * S**2 + 2 * gamma * C**2),
        "monarch": connections,
        "sw-mlp": connections,
    }[kind]
    bias_copies = {"mixer": 1, "rp": 1, "monarch": None, "sw-mlp": None}[kind]
    if bias_copies is None:  # untied or wide biases: gamma*S*C + S*C + gamma*C*S + S*C
        biases = d * (2 * gamma * S * C + 2 * S * C)
    assert got.connections == connections
    assert got.mixing_flops == pytest.approx(connections, rel=0.01)
    assert got.mixing_params == stored + biases
    assert got.density_token == pytest.approx(1 / C)
    assert got.density_channel == pytest.approx(1 / S)
    assert (got.tokens, got.channels, got.width) == (S, C, S * C)


def test_sw_mlp_density_option() -> None:
    cfg = small_config("sw-mlp", density=0.25, channels=8)
    got = measure(cfg)
    assert got.density_token == got.density_channel == pytest.approx(0.25)
    assert got == measure(MixerConfig.from_json(cfg.to_json()))
    rest, block, _ = trace_parts(cfg.replace(depth=3))
    assert measure(cfg.replace(depth=3)).flops == (rest + block * 3).flops


def test_measure_is_cached_per_config() -> None:
    cfg = small_config("rp")
    assert measure(cfg) is measure(cfg.replace())


@pytest.mark.parametrize("kind", ["rp", "sw-mlp"])
def test_seeds_share_one_count_and_it_is_the_seeded_models(kind: str) -> None:
    """A seed redraws permutations or masks, never a count: replicates share one trace."""
    cfg = small_config(kind, seed=7)
    assert measure(cfg) is measure(cfg.replace(seed=0))
    model = build_model(cfg)  # the real, randomly masked model of seed 7
    masked = sum(int((b == 0).sum()) for n, b in model.named_buffers() if n.endswith("mask"))
    assert measure(cfg).params == sum(p.numel() for p in model.parameters()) - masked


@pytest.mark.parametrize("shape", [*SHAPES, {"depth": 4, "seed": 3}])
def test_shortcuts_equal_a_full_trace(kind: str, shape: dict[str, object]) -> None:
    """measure traces depth 1 and counts rp as mixer; one trace of the whole seeded model,
    with its own permutations, gives the same counts (and its blocks count alike)."""
    cfg = small_config(kind, **shape)
    rest, block, fan_in = trace_parts(cfg)
    whole = rest + block * cfg.depth
    got = measure(cfg)
    for field in ("params", "flops", "mixing_params", "mixing_flops", "connections"):
        assert getattr(got, field) == getattr(whole, field), field
    assert got.density_token == fan_in["token_mix"] / got.width
    assert got.density_channel == fan_in["channel_mix"] / got.width
    assert (got.mixing, got.depth) == (kind, cfg.depth)


@pytest.mark.parametrize(
    ("text", "metric", "value"),
    [
        ("50k", "params", 50_000),
        ("params=100k", "params", 100_000),
        ("flops=20M", "flops", 20_000_000),
        ("FLOPS = 1.5g", "flops", 1_500_000_000),
        ("mixing-flops=2e6", "mixing_flops", 2_000_000),
        ("mixing_params=12_500", "mixing_params", 12_500),
        ("3", "params", 3),
    ],
)
def test_parse_budget(text: str, metric: str, value: int) -> None:
    spec = parse_budget(text)
    assert (spec.metric, spec.value, spec.tolerance) == (metric, value, 0.02)
    assert parse_budget(str(spec)).value == pytest.approx(value, rel=1e-3)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "''"),
        ("50x", "50x"),
        ("k", "'k'"),
        ("-5k", "-5k"),
        ("0", "'0'"),
        ("0.2", "0.2"),
        ("weights=50k", "weights"),
        ("params=", "params="),
        ("nan", "nan"),
        ("1e400", "1e400"),
    ],
)
def test_malformed_budgets_are_named(text: str, named: str) -> None:
    with pytest.raises(BudgetError, match=named.replace("(", r"\(")) as info:
        parse_budget(text)
    assert "\n" not in str(info.value)


def test_bad_tolerance_is_named() -> None:
    with pytest.raises(BudgetError, match=r"1\.5"):
        parse_budget("50k", tolerance=1.5)


def _plain(cfg: MixerConfig) -> MixerConfig:
    return cfg.replace(hidden_token=None, hidden_channel=None)


@pytest.mark.parametrize("budget", ["20k", "50k", "200k", "flops=2M", "mixing_flops=500k"])
def test_solve_holds_the_budget_within_precision_or_refuses(kind: str, budget: str) -> None:
    """C alone where it lands within PRECISION (then it is the nearest C); otherwise hidden
    widths moved by at most MAX_HIDDEN_SHIFT as well; a refusal names the nearest count."""
    base = small_config(kind, channels=1)
    spec = parse_budget(budget)
    message = ""
    try:
        solved = solve(base, spec)
    except BudgetError as err:
        message = str(err)
    if message:
        assert str(spec) in message
        assert "nearest is C=" in message
        return
    assert _plain(solved).replace(channels=1) == base  # S, gammas, depth, kind kept
    error = abs(spec.error(measure(solved)))
    plain = _plain(solved)
    if solved == plain:
        for neighbour in (solved.channels - 1, solved.channels + 1):
            if neighbour >= 1:
                assert abs(spec.error(closed_form(plain.replace(channels=neighbour)))) >= error
    else:  # C alone missed PRECISION at the nearest C
        nearest = solve(base, Budget(spec.metric, spec.value, 0.99))
        if nearest == _plain(nearest):
            assert abs(spec.error(closed_form(nearest))) > PRECISION
        for got, nominal in ((solved.token_hidden, plain.token_hidden),
                             (solved.channel_hidden, plain.channel_hidden)):  # fmt: skip
            assert abs(got - nominal) <= MAX_HIDDEN_SHIFT * nominal
    assert error <= PRECISION or error <= spec.tolerance


def test_the_shape_integer_steps_dropped_near_s_equals_c_is_held_within_precision() -> None:
    """MNIST-1D at flops=250k, S = 20 (patch 2 of 40): C = 29 and C = 30 miss the budget by
    more than 2% either side, which used to drop the shape nearest S = C from the sweep."""
    cfg = MixerConfig(input_shape=(1, 40), patch=(2,), channels=1, gamma_token=2.0,
                      gamma_channel=2.0, depth=2, num_classes=10)  # fmt: skip
    spec = parse_budget("flops=250k")
    misses = [spec.error(closed_form(cfg.replace(channels=c))) for c in (29, 30)]
    assert misses[0] < -0.02 < 0.02 < misses[1]
    solved = solve(cfg, spec)
    assert solved.tokens == 20
    assert solved.channels in (29, 30)
    assert abs(spec.error(measure(solved))) <= PRECISION
    assert (solved.hidden_token, solved.hidden_channel) != (None, None)


@pytest.mark.parametrize("hidden", [{"hidden_token": 5}, {"hidden_channel": 7},
                                    {"hidden_token": 3, "hidden_channel": 40}])  # fmt: skip
def test_explicit_hidden_widths_build_count_and_round_trip(
    kind: str, hidden: dict[str, int]
) -> None:
    cfg = small_config(kind, **hidden)
    assert cfg.token_hidden == hidden.get("hidden_token", round(cfg.gamma_token * cfg.tokens))
    assert cfg.channel_hidden == hidden.get(
        "hidden_channel", round(cfg.gamma_channel * cfg.channels)
    )
    assert MixerConfig.from_json(cfg.to_json()) == cfg
    model = build_model(cfg)  # the model has the hidden widths the counts assume
    masked = sum(int((b == 0).sum()) for n, b in model.named_buffers() if n.endswith("mask"))
    assert closed_form(cfg).params == sum(p.numel() for p in model.parameters()) - masked
    assert measure(cfg).params == closed_form(cfg).params
    assert measure(cfg).flops == closed_form(cfg).flops
    assert "hidden_token" not in small_config(kind).to_dict()  # old JSON stays as it was


def test_infeasible_budgets_are_refused_with_the_value() -> None:
    with pytest.raises(BudgetError, match=r"params=100 .*C=1"):
        solve(small_config(), "100")
    # A tolerance of zero is met only by an exact count.
    with pytest.raises(BudgetError, match="within 0%"):
        solve(small_config(), Budget("params", 20_001, 0.0))


def test_width_is_largest_near_s_equals_c_at_a_fixed_connection_budget() -> None:
    """AM-GM: at fixed connections per block, m = S*C peaks where S = C = (Omega/gamma)^(1/3)."""
    gamma, depth = 2.0, 1
    omega = 40_000  # the paper's Omega: connections averaged over the block's four matrices
    budget = f"mixing_flops={4 * omega * depth}"
    widths = {}
    for grid in (2, 4, 8):  # S = 4, 16, 64; at S = 256 even C = 1 is over budget
        cfg = MixerConfig(input_shape=(1, 2 * grid, 2 * grid), patch=(2, 2), channels=1,
                          depth=depth, gamma_token=gamma, gamma_channel=gamma)  # fmt: skip
        solved = solve(cfg, budget, tolerance=0.1)
        widths[solved.tokens] = (solved.channels, solved.width)
    best_s = max(widths, key=lambda s: widths[s][1])
    s_star = (omega / gamma) ** (1 / 3)  # 27.1, between the feasible S = 16 and S = 64
    assert best_s == 16
    assert abs(math.log(best_s / widths[best_s][0])) < abs(math.log(4 / widths[4][0]))
    assert widths[best_s][1] == pytest.approx((omega / gamma) ** (2 / 3), rel=0.15)
    assert s_star == pytest.approx(27.14, abs=0.01)


def test_measure_emits_no_warnings() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        measure(small_config("monarch", channels=5))
