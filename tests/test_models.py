"""Models built from MixerConfig: registry variants, rebuilds, state dicts, config JSON."""

from __future__ import annotations

import json

import pytest
import torch

from nas_width import (
    ConfigError,
    MixerConfig,
    build_model,
    create_model,
    get_config,
    list_models,
)
from nas_width.layers import PKMixing, wide_mlp
from nas_width.models import MixerBlock
from tests.conftest import small_config

PUBLISHED = {  # Tolstikhin et al. 2021, Table 1: (S at 224, C, depth, D_S, D_C)
    "mixer_s32": (49, 512, 8, 256, 2048),
    "mixer_s16": (196, 512, 8, 256, 2048),
    "mixer_b32": (49, 768, 12, 384, 3072),
    "mixer_b16": (196, 768, 12, 384, 3072),
    "mixer_l32": (49, 1024, 24, 512, 4096),
    "mixer_l16": (196, 1024, 24, 512, 4096),
    "mixer_h14": (256, 1280, 32, 640, 5120),
    "mixer_b16w": (256, 588, 12, 384, 3072),
    "mixer_ss8": (16, 256, 8, 32, 1024),
}


def test_registry_lists_the_published_shapes() -> None:
    assert list_models() == sorted(PUBLISHED)
    assert list_models("mixer_b*") == ["mixer_b16", "mixer_b16w", "mixer_b32"]
    assert list_models("nothing*") == []
    for name, (S, C, depth, d_s, d_c) in PUBLISHED.items():
        cfg = get_config(name)
        assert (cfg.tokens, cfg.channels, cfg.depth) == (S, C, depth), name
        assert (cfg.token_hidden, cfg.channel_hidden) == (d_s, d_c), name


def test_b16_parameter_count_matches_published() -> None:
    """Mixer-B/16 has 59.9M parameters (Tolstikhin et al. 2021, Table 1; 1000 classes)."""
    from nas_width.budget import closed_form

    assert closed_form(get_config("mixer_b16")).params == pytest.approx(59.9e6, rel=0.005)


def test_b16w_holds_b16s_connections_at_the_same_m() -> None:
    """The paper's widening keeps the budget of connections: B-W's equal B/16's exactly."""
    from nas_width.budget import closed_form

    b16, b16w = get_config("mixer_b16"), get_config("mixer_b16w")
    assert b16.tokens * b16.channels == b16w.tokens * b16w.channels == 150_528
    assert closed_form(b16w).connections == closed_form(b16).connections
    assert closed_form(b16w).params < closed_form(b16).params


@pytest.mark.parametrize("name", list_models())
def test_every_variant_trains_a_step_at_reduced_resolution(name: str) -> None:
    cfg = get_config(name)
    small = cfg.replace(input_shape=(3, 2 * cfg.patch[0], 2 * cfg.patch[1]), num_classes=7)
    model = create_model(name, input_shape=small.input_shape, num_classes=7)
    assert model.config == small
    x = torch.randn(2, *small.input_shape)
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 6]))
    torch.autograd.backward(loss)  # loss.backward(), which torch leaves untyped
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_unknown_variant_is_named() -> None:
    with pytest.raises(ConfigError, match="mixer_zz"):
        create_model("mixer_zz")


def test_model_forward_shapes_for_images_and_signals(kind: str) -> None:
    image = small_config(kind)
    signal = small_config(kind, input_shape=(2, 40), patch=(5,), channels=6)
    assert signal.tokens == 8
    assert build_model(image)(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert build_model(signal)(torch.randn(4, 2, 40)).shape == (4, 10)


def test_rectangular_patches_give_other_token_counts() -> None:
    cfg = small_config(input_shape=(3, 8, 12), patch=(4, 2))
    assert cfg.grid == (2, 6)
    assert cfg.tokens == 12
    assert build_model(cfg)(torch.randn(2, 3, 8, 12)).shape == (2, 10)


def test_patch_embedding_is_a_strided_convolution() -> None:
    cfg = small_config(input_shape=(3, 8, 12), patch=(4, 2), channels=5)
    stem = build_model(cfg).stem
    conv = torch.nn.Conv2d(3, 5, kernel_size=(4, 2), stride=(4, 2))
    with torch.no_grad():
        conv.weight.copy_(stem.proj.weight.view(5, 3, 4, 2))
        assert conv.bias is not None
        conv.bias.copy_(stem.proj.bias)
    x = torch.randn(2, 3, 8, 12)
    torch.testing.assert_close(stem(x), conv(x).flatten(2).transpose(1, 2))


def test_block_equals_wide_mlp_with_layer_norms(kind: str) -> None:
    """A whole block is x + P(LN x) then + Q(LN x) with P, Q the explicit wide MLPs."""
    cfg = small_config(kind, channels=5, depth=1)
    block = build_model(cfg).blocks[0]
    assert isinstance(block, MixerBlock)
    block = block.double()
    x = torch.randn(3, cfg.tokens, cfg.channels, dtype=torch.float64)
    token = wide_mlp(block.token_mix, cfg.tokens, cfg.channels)
    channel = wide_mlp(block.channel_mix, cfg.tokens, cfg.channels)
    h = x + token(block.token_norm(x))
    torch.testing.assert_close(block(x), h + channel(block.channel_norm(h)))


def test_rp_permutations_are_seeded_buffers_saved_with_the_model() -> None:
    cfg = small_config("rp")
    a, b = build_model(cfg), build_model(cfg)
    other = build_model(cfg.replace(seed=1))
    perms = {k: v for k, v in a.state_dict().items() if k.endswith(("perm_in", "perm_out"))}
    assert len(perms) == 4 * cfg.depth
    for key, value in perms.items():
        assert torch.equal(value, b.state_dict()[key]), key
    assert not torch.equal(perms["blocks.0.token_mix.perm_in"],
                           other.state_dict()["blocks.0.token_mix.perm_in"])  # fmt: skip
    layers = [m for m in a.modules() if isinstance(m, PKMixing)]
    assert len({tuple(layer.perm_in.tolist()) for layer in layers}) == len(layers)


def test_state_dict_round_trip_reproduces_outputs(kind: str) -> None:
    cfg = small_config(kind)
    model = build_model(cfg).eval()
    torch.manual_seed(123)  # a rebuild draws different weights ...
    clone = build_model(MixerConfig.from_json(cfg.to_json())).eval()
    clone.load_state_dict(model.state_dict())  # ... until the state dict is loaded
    x = torch.randn(3, *cfg.input_shape)
    torch.testing.assert_close(clone(x), model(x))


def test_config_json_round_trip_and_derived_fields() -> None:
    cfg = small_config("sw-mlp", density=0.25, seed=3)
    data = json.loads(cfg.to_json())
    assert data["input_shape"] == [1, 8, 8]
    assert "tokens" not in data
    again = MixerConfig.from_dict(data)
    assert again == cfg
    assert hash(again) == hash(cfg)
    assert (cfg.tokens, cfg.width, cfg.token_hidden, cfg.channel_hidden) == (16, 192, 24, 36)


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"channels": 0}, "channels"),
        ({"channels": 2.5}, "channels"),
        ({"depth": -1}, "depth"),
        ({"gamma_token": 0}, "gamma_token"),
        ({"gamma_channel": float("nan")}, "gamma_channel"),
        ({"mixing": "conv"}, "conv"),
        ({"patch": (3, 3)}, "patch"),
        ({"patch": (2, 2, 2)}, "patch"),
        ({"input_shape": (8,)}, "input_shape"),
        ({"input_shape": (1, 8, 8, 8)}, "input_shape"),
        ({"num_classes": 0}, "num_classes"),
        ({"density": 0.5}, "density"),
        ({"mixing": "sw-mlp", "density": 1.5}, "density"),
    ],
)
def test_bad_config_fields_are_named(fields: dict[str, object], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        small_config(**fields)  # type: ignore[arg-type]  # deliberately invalid fields


def test_config_dict_errors_name_the_keys() -> None:
    with pytest.raises(ConfigError, match="colour"):
        MixerConfig.from_dict({"input_shape": [1, 8, 8], "patch": [2, 2], "channels": 4,
                               "colour": "red"})  # fmt: skip
    with pytest.raises(ConfigError, match="channels"):
        MixerConfig.from_dict({"input_shape": [1, 8, 8], "patch": [2, 2]})
    with pytest.raises(ConfigError, match="line 1"):
        MixerConfig.from_json("{not json")
