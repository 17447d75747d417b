"""The registry of mixing kinds: every entry is complete and consistent, and a new kind is one
:func:`register_kind` entry plus its layer.

Counts against fvcore and whole blocks against their wide MLPs are checked per registered kind
by the ``kind`` fixture's tests (test_budget.py, test_models.py); here each kind's own builder
is held to the reference twins, gradients included.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch

from nas_width import ConfigError, build_model, measure
from nas_width.budget import closed_form
from nas_width.kinds import KINDS, MixingKindSpec, kind, register_kind
from nas_width.layers import TokenMixing
from nas_width.report.text import kind_label
from tests.conftest import small_config
from tests.twins import assert_equals_its_twin

REGISTERED = list(KINDS)
# Uneven shapes: S = 16, C = 5 with hidden widths 11 and 12; a 1-D signal with S = 3, C = 4.
SHAPES: list[dict[str, object]] = [
    {"channels": 5, "gamma_token": 0.7, "gamma_channel": 2.5},
    {"input_shape": (2, 21), "patch": (7,), "channels": 4, "gamma_token": 1.5},
]
# (S, C, h_S, h_C) at which a kind and the kind it is counted as must count alike.
WIDTHS = [(16, 12, 24, 36), (5, 7, 8, 17), (1, 6, 3, 1), (9, 4, 6, 2)]

TOY = MixingKindSpec(
    name="toy",
    label="Toy-Mixer",
    summary="the Mixer's layers under a fifth name",
    counts=KINDS["mixer"].counts,
    layers="nas_width.models.mixer:mixer_layers",
)


@pytest.fixture
def toy() -> Iterator[MixingKindSpec]:
    """TOY registered for one test through the public API, and removed after it."""
    spec = register_kind(TOY)
    try:
        yield spec
    finally:
        del KINDS[spec.name]


@pytest.mark.parametrize("name", REGISTERED)
def test_every_kind_is_complete(name: str) -> None:
    """A label of its own, a builder that resolves, and a density only where it takes one."""
    spec = kind(name)
    assert spec.name == name
    assert spec.label
    assert spec.summary
    assert [s.label for s in KINDS.values()].count(spec.label) == 1
    assert small_config(name).mixing == name
    if spec.takes_density:
        assert small_config(name, density=0.5).density == 0.5
    else:
        with pytest.raises(ConfigError, match="density"):
            small_config(name, density=0.5)


@pytest.mark.parametrize("name", [n for n in REGISTERED if KINDS[n].counted_as is not None])
def test_a_kind_counted_as_another_counts_alike(name: str) -> None:
    """measure traces ``counted_as`` in this kind's place: exact only if their counts agree."""
    spec = kind(name)
    assert spec.counted_as is not None
    other = kind(spec.counted_as)
    for S, C, h_s, h_c in WIDTHS:
        assert spec.counts(S, C, h_s, h_c, None) == other.counts(S, C, h_s, h_c, None)
    cfg = small_config(name, **SHAPES[0])
    assert closed_form(cfg) == closed_form(cfg.replace(mixing=spec.counted_as))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", REGISTERED)
def test_builder_layers_equal_their_twins(name: str, shape: dict[str, object]) -> None:
    """Each sub-layer a kind builds equals its explicit wide MLP in float64: outputs, and the
    gradients of the input and of every parameter."""
    cfg = small_config(name, **shape)
    S, C = cfg.tokens, cfg.channels
    for layer in kind(name).build_layers(cfg, 1):
        assert_equals_its_twin(layer.double(), S, C)


def test_a_fifth_kind_is_one_entry(toy: MixingKindSpec) -> None:
    """Registered, the toy kind is a valid config, counted, built and labelled."""
    cfg = small_config("toy", **SHAPES[0])
    assert cfg.mixing == "toy"
    assert closed_form(cfg) == closed_form(cfg.replace(mixing="mixer"))
    got, want = measure(cfg), closed_form(cfg)  # fvcore traces the toy model itself
    for field in ("params", "flops", "mixing_params", "mixing_flops", "connections"):
        assert getattr(got, field) == getattr(want, field), field
    model = build_model(cfg)
    assert all(isinstance(b.token_mix, TokenMixing) for b in model.blocks)
    assert model(torch.randn(2, *cfg.input_shape)).shape == (2, cfg.num_classes)
    assert kind_label("toy") == "Toy-Mixer"
    with pytest.raises(ConfigError, match="density"):
        small_config("toy", density=0.5)


def test_an_unregistered_kind_is_refused() -> None:
    assert "toy" not in KINDS
    with pytest.raises(ConfigError, match=r"mixing must be one of .*'toy'"):
        small_config("toy")
    assert kind_label("toy") == "toy"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (replace(TOY, name="mixer"), "already registered"),
        (replace(TOY, name=""), "empty"),
        (replace(TOY, layers="nas_width.models.mixer.mixer_layers"), "module:function"),
        (replace(TOY, counted_as="nothing"), "not a kind traced as itself"),
        (replace(TOY, counted_as="rp"), "not a kind traced as itself"),  # rp is counted as mixer
    ],
)
def test_register_kind_refuses_a_bad_entry(bad: MixingKindSpec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        register_kind(bad)
    assert "toy" not in KINDS
