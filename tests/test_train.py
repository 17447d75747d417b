"""Training: the recipe, the schedule, the loop's contract with trial code, checkpoints."""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from nas_width import ConfigError, MixerConfig, NasWidthError, build_model
from nas_width.data.splits import Splits
from nas_width.train import (
    CheckpointError,
    EpochReport,
    Recipe,
    TrialFailed,
    evaluate,
    fit,
    load_input_contract,
    load_model,
    load_trained,
    lr_at,
    make_optimizer,
    no_weight_decay,
    parameter_groups,
    save_trained,
)
from nas_width.train.checkpoint import is_checkpoint


def tiny_config(mixing: str = "mixer", **overrides: Any) -> MixerConfig:
    """S = 16 tokens of C = 16 channels, one block: a few thousand parameters."""
    fields: dict[str, Any] = {
        "input_shape": (1, 8, 8),
        "patch": (2, 2),
        "channels": 16,
        "depth": 1,
        "num_classes": 4,
        "mixing": mixing,
    }
    fields.update(overrides)
    return MixerConfig(**fields)


def separable(
    n_train: int = 256, n_val: int = 128, n_test: int = 128, shape: tuple[int, ...] = (1, 8, 8)
) -> Splits:
    """Four classes, each a fixed random pattern plus small noise: linearly separable."""
    g = torch.Generator().manual_seed(1234)
    prototypes = torch.randn(4, *shape, generator=g)
    n = n_train + n_val + n_test
    y = torch.randint(0, 4, (n,), generator=g)
    x = prototypes[y] + 0.5 * torch.randn(n, *shape, generator=g)
    a, b = n_train, n_train + n_val
    return Splits("separable", x[:a], y[:a], x[a:b], y[a:b], x[b:], y[b:], num_classes=4)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads and lose a lot on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


FAST = Recipe(epochs=3, batch_size=32, lr=3e-3, warmup_epochs=0.5, seed=0)


def history_values(history: list[EpochReport]) -> list[tuple[float, float, float]]:
    """The seed-determined part of a history (timings vary run to run)."""
    return [(r.train_loss, r.val_loss, r.val_accuracy) for r in history]


# --- Recipe -----------------------------------------------------------------------------------
def test_recipe_round_trips_through_json_and_toml() -> None:
    recipe = Recipe(epochs=7, lr=1e-3, warmup_epochs=0.5, augment="crop-flip", seed=3)
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    toml = "\n".join(f"{k} = {json.dumps(v)}" for k, v in recipe.to_dict().items())
    assert Recipe.from_dict(tomllib.loads(toml)) == recipe
    assert Recipe.from_dict({"lr": 1, "warmup_epochs": 0}).to_dict()["lr"] == 1.0  # TOML ints


@pytest.mark.parametrize(
    ("data", "named"),
    [
        ({"momentum": 0.9}, "momentum"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 1.5}, "batch_size"),
        ({"lr": -1.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": True}, "lr"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"warmup_epochs": 30}, "warmup_epochs"),
        ({"label_smoothing": 1.0}, "label_smoothing"),
        ({"augment": "rotate"}, "rotate"),
        ({"seed": -1}, "seed"),
    ],
)
def test_recipe_rejects_unknown_keys_and_bad_values_by_name(
    data: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError, match=named) as info:
        Recipe.from_dict(data)
    assert "\n" not in str(info.value)


def test_recipe_replace_validates_and_names_unknown_fields() -> None:
    assert Recipe().replace(epochs=3).epochs == 3
    with pytest.raises(ConfigError, match="epochz"):
        Recipe().replace(epochz=3)
    with pytest.raises(ConfigError, match="batch_size"):
        Recipe().replace(batch_size=0)


# --- schedule and optimizer -------------------------------------------------------------------
def test_lr_warms_up_linearly_then_follows_a_cosine_to_zero() -> None:
    total, warmup = 100, 10
    lrs = [lr_at(s, total, warmup) for s in range(total + 1)]
    assert lrs[: warmup + 1] == pytest.approx([(s + 1) / (warmup + 1) for s in range(warmup + 1)])
    assert lrs[warmup] == 1.0
    assert all(a > b for a, b in zip(lrs[warmup:], lrs[warmup + 1 :], strict=False))
    assert lrs[55] == pytest.approx(0.5)  # half way through the cosine
    assert lrs[total] == 0.0
    assert lr_at(0, total, 0) == 1.0
    with pytest.raises(ValueError, match="warmup"):
        lr_at(0, 10, 11)


def test_scheduler_steps_the_optimizer_lr_per_batch() -> None:
    model = build_model(tiny_config())
    optimizer, schedule = make_optimizer(
        model, lr=0.1, weight_decay=0.0, total_steps=8, warmup_steps=2
    )
    seen = []
    for _ in range(8):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    assert seen == pytest.approx([0.1 * lr_at(s, 8, 2) for s in range(8)])


def test_no_weight_decay_on_biases_norms_and_vectors(kind: str) -> None:
    model = build_model(tiny_config(kind))
    skip = no_weight_decay(model)
    for name, param in model.named_parameters():
        local = name.rsplit(".", 1)[-1]
        is_bias = local in ("bias", "b1", "b2")
        is_norm = "norm" in name
        assert (name in skip) == (is_bias or is_norm or param.ndim <= 1), name
    groups = parameter_groups(model, weight_decay=0.05)
    assert [g["weight_decay"] for g in groups] == [0.05, 0.0]
    grouped = [id(p) for g in groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())
    assert all(p.ndim >= 2 for p in groups[0]["params"])


# --- the loop ---------------------------------------------------------------------------------
def test_fit_learns_a_separable_set_and_reports_every_epoch() -> None:
    reports: list[EpochReport] = []
    result = fit(tiny_config(), FAST, separable(), report=reports.append)
    assert [r.epoch for r in reports] == [1, 2, 3]
    assert result.history == reports
    assert reports[-1].val_accuracy > 0.9
    assert reports[-1].train_accuracy > 0.9
    for r in reports:
        assert 0.0 <= r.train_accuracy <= 1.0
        values = (r.train_loss, r.val_loss, r.val_accuracy, r.images_per_sec, r.seconds)
        assert all(math.isfinite(v) and v >= 0 for v in values), r
        assert 0.0 <= r.val_accuracy <= 1.0
        assert set(r.to_dict()) == {
            "epoch",
            "train_loss",
            "val_loss",
            "val_accuracy",
            "images_per_sec",
            "seconds",
            "train_accuracy",
        }
    assert result.test_accuracy is None
    assert result.device == "cpu"
    assert not result.model.training


def test_report_exceptions_propagate_unchanged() -> None:
    class StopTrialError(Exception):
        pass

    calls = []

    def report(r: EpochReport) -> None:
        calls.append(r.epoch)
        if r.epoch == 2:
            raise StopTrialError("stopped by the scheduler")

    with pytest.raises(StopTrialError, match="stopped by the scheduler"):
        fit(tiny_config(), FAST, separable(), report=report)
    assert calls == [1, 2]


def test_inf_in_the_data_fails_the_trial_at_the_first_step() -> None:
    data = separable()
    x = data.x_train.clone()
    x[0, 0, 0, 0] = math.inf
    bad = Splits("bad", x, data.y_train, data.x_val, data.y_val, data.x_test, data.y_test, 4)
    recipe = FAST.replace(batch_size=len(x))  # the one batch holds the inf
    with pytest.raises(TrialFailed, match=r"^non-finite loss \(nan\) at epoch 1, step 1$") as info:
        fit(tiny_config(), recipe, bad)
    assert info.value.reason == str(info.value)


def test_a_diverging_learning_rate_fails_the_trial() -> None:
    with pytest.raises(TrialFailed, match=r"non-finite loss \((nan|inf)\) at epoch 1, step \d+"):
        fit(tiny_config(), FAST.replace(lr=1e30, warmup_epochs=0), separable())


def test_same_seed_gives_identical_history_and_weights_on_cpu() -> None:
    data = separable()
    a = fit(tiny_config("rp"), FAST.replace(epochs=2), data)
    b = fit(tiny_config("rp"), FAST.replace(epochs=2), data)
    c = fit(tiny_config("rp"), FAST.replace(epochs=2, seed=1), data)
    assert history_values(a.history) == history_values(b.history)
    weights_b = b.model.state_dict()
    for name, tensor in a.model.state_dict().items():
        assert torch.equal(tensor, weights_b[name]), name
    assert history_values(a.history) != history_values(c.history)


def test_final_trains_on_train_and_val_then_evaluates_test(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []
    original = Splits.train_and_val

    def spy(self: Splits) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(self.x_train.shape[0] + self.x_val.shape[0])
        return original(self)

    monkeypatch.setattr(Splits, "train_and_val", spy)
    data = separable()
    result = fit(tiny_config(), FAST, data, final=True)
    assert calls == [384]
    assert result.test_accuracy is not None
    assert result.test_accuracy > 0.9
    assert result.test_loss is not None
    assert math.isfinite(result.test_loss)
    assert all(math.isnan(r.val_loss) and math.isnan(r.val_accuracy) for r in result.history)
    assert all(math.isfinite(r.train_loss) for r in result.history)
    loss, acc = evaluate(result.model, data.x_test, data.y_test)
    assert (loss, acc) == (result.test_loss, result.test_accuracy)


def test_augmentation_is_applied_per_batch_to_images_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import nas_width.data

    calls: list[tuple[tuple[int, ...], int, bool, bool]] = []

    def fake(x: torch.Tensor, *, pad: int, flip: bool, generator: Any = None) -> torch.Tensor:
        calls.append((tuple(x.shape), pad, flip, isinstance(generator, torch.Generator)))
        return x

    monkeypatch.setattr(nas_width.data, "random_crop_flip", fake, raising=False)
    recipe = FAST.replace(epochs=1, batch_size=100, augment="crop-flip")
    fit(tiny_config(), recipe, separable())
    assert calls == [((100, 1, 8, 8), 1, True, True)] * 2 + [((56, 1, 8, 8), 1, True, True)]

    calls.clear()
    signal = tiny_config(input_shape=(2, 16), patch=(2,))
    fit(signal, recipe, separable(shape=(2, 16)))
    assert calls == []


@pytest.mark.slow
def test_learns_real_digits() -> None:
    """scikit-learn's 1,797 8x8 digits: a small Mixer passes 90% test accuracy in 8 epochs."""
    from nas_width.data import load_dataset

    data = load_dataset("digits")
    config = tiny_config(channels=32, depth=2, num_classes=10)
    result = fit(config, Recipe(epochs=8, batch_size=64), data, final=True)
    assert result.test_accuracy is not None
    assert result.test_accuracy > 0.9


def test_real_augmentation_is_seeded() -> None:
    recipe = FAST.replace(epochs=1, augment="crop-flip")
    a = fit(tiny_config(), recipe, separable())
    b = fit(tiny_config(), recipe, separable())
    plain = fit(tiny_config(), recipe.replace(augment="none"), separable())
    assert history_values(a.history) == history_values(b.history)
    assert history_values(a.history) != history_values(plain.history)


def test_progress_prints_one_line_per_epoch(capsys: pytest.CaptureFixture[str]) -> None:
    fit(tiny_config(), FAST.replace(epochs=2), separable(), progress=True)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1/2"], ["epoch", "2/2"]]
    assert all("val_acc" in line and "img/s" in line for line in lines)


def test_fit_names_a_config_that_does_not_fit_the_data() -> None:
    with pytest.raises(ConfigError, match="input_shape"):
        fit(tiny_config(input_shape=(3, 8, 8)), FAST, separable())
    with pytest.raises(ConfigError, match="num_classes"):
        fit(tiny_config(num_classes=2), FAST, separable())


def test_evaluate_counts_accuracy_and_restores_the_mode() -> None:
    model = build_model(tiny_config()).train()
    x = torch.randn(10, 1, 8, 8)
    y = model.eval()(x).argmax(dim=1)
    model.train()
    loss, acc = evaluate(model, x, y, batch_size=3)
    assert acc == 1.0
    assert math.isfinite(loss)
    assert model.training
    assert all(math.isnan(v) for v in evaluate(model, x[:0], y[:0]))


# --- checkpoints ------------------------------------------------------------------------------
def test_save_load_round_trip_reproduces_the_test_accuracy(kind: str, tmp_path: Path) -> None:
    config = tiny_config(kind)
    recipe = FAST.replace(epochs=1)
    data = separable()
    result = fit(config, recipe, data, final=True)
    out = save_trained(
        tmp_path / "best", result, config, recipe, result.metrics(), {"trial": "t-1"}
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "metrics.json",
        "model.safetensors",
    ]
    model, config2, recipe2, metrics = load_trained(out)
    assert (config2, recipe2) == (config, recipe)
    assert metrics["test_accuracy"] == result.test_accuracy
    assert metrics["history"][0]["val_loss"] is None  # NaN is written as null
    assert not model.training
    for name, tensor in result.model.state_dict().items():  # buffers too
        assert torch.equal(model.state_dict()[name], tensor), name
    loss, acc = evaluate(model, data.x_test, data.y_test)
    assert (loss, acc) == (result.test_loss, result.test_accuracy)
    assert evaluate(load_model(out), data.x_test, data.y_test) == (loss, acc)
    provenance = json.loads((out / "config.json").read_text())["provenance"]
    assert provenance["trial"] == "t-1"
    assert "torch" in provenance


def test_save_refuses_a_model_built_from_another_config(tmp_path: Path) -> None:
    model = build_model(tiny_config())
    with pytest.raises(CheckpointError, match="another config"):
        save_trained(tmp_path, model, tiny_config(channels=8), Recipe(), {})


def one_line_naming(err: pytest.ExceptionInfo[NasWidthError], path: Path) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message


def test_load_errors_are_one_line_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(NasWidthError) as err:
        load_model(missing)
    one_line_naming(err, missing)

    out = save_trained(tmp_path / "a", build_model(tiny_config()), tiny_config(), Recipe(), {})
    config_file = out / "config.json"
    good = config_file.read_text()

    config_file.write_text(good[: len(good) // 2])  # truncated: malformed JSON
    with pytest.raises(CheckpointError, match="malformed JSON at line") as err:
        load_trained(out)
    one_line_naming(err, config_file)

    manifest = json.loads(good)
    manifest["config"]["channels"] = 8  # weights saved for C = 16
    config_file.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="do not match the config") as err:
        load_model(out)
    one_line_naming(err, out / "model.safetensors")

    manifest["config"]["channels"] = "wide"
    config_file.write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="channels") as err:
        load_model(out)
    one_line_naming(err, config_file)

    config_file.write_text(good)
    (out / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="unreadable weights") as err:
        load_model(out)
    one_line_naming(err, out / "model.safetensors")

    (out / "metrics.json").unlink()
    with pytest.raises(CheckpointError, match="missing") as err:
        load_trained(out)
    one_line_naming(err, out / "metrics.json")


def test_a_trained_model_takes_raw_scikit_learn_digits_as_its_contract_says(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """nas-width train saves the input contract (timm's pretrained_cfg habit); load_model with
    raw_inputs=True scores on scikit-learn's raw digits what train printed, within half a
    point, where the bare model (normalized inputs expected) does not."""
    import re

    import numpy as np
    from sklearn.datasets import load_digits

    from nas_width.data.builtin import _DIGITS_TEST_FRACTION, _DIGITS_TEST_SEED
    from nas_width.data.prepare import stratified_split
    from tests.conftest import invoke

    cfg = MixerConfig(input_shape=(1, 8, 8), num_classes=10, patch=(2, 2), channels=16, depth=1)
    export = {"config": cfg.to_dict(), "recipe": Recipe(epochs=4, lr=0.01).to_dict(),
              "dataset": {"name": "digits"},
              "provenance": {"study": "raw", "trial": 0}}  # fmt: skip
    (tmp_path / "best.json").write_text(json.dumps(export))
    code, out, err = invoke(capsys, "train", tmp_path / "best.json", "-o", tmp_path / "run")
    assert code == 0, err
    found = re.search(r"test_accuracy=([0-9.]+)", out)
    assert found is not None, out
    printed = float(found[1])
    assert "raw_inputs=True" in out

    contract = load_input_contract(tmp_path / "run")
    assert contract is not None
    assert contract["dataset"] == "digits"
    assert contract["class_names"] == [str(i) for i in range(10)]
    assert contract["input_shape"] == [1, 8, 8]
    assert len(contract["mean"]) == len(contract["std"]) == 1

    bunch = load_digits()
    _, test = stratified_split(bunch.target, _DIGITS_TEST_FRACTION, _DIGITS_TEST_SEED)
    raw = torch.tensor(np.asarray(bunch.images, dtype=np.float32)[test][:, None])  # 0..16
    labels = torch.tensor(bunch.target[test])
    model = load_model(tmp_path / "run", raw_inputs=True)
    with torch.no_grad():
        accuracy = float((model(raw).argmax(1) == labels).float().mean())
    assert abs(accuracy - printed) <= 0.005
    bare = load_model(tmp_path / "run")
    with torch.no_grad():
        assert float((bare(raw).argmax(1) == labels).float().mean()) < printed - 0.05

    # A model already there is replaced only when asked, and as a whole.
    code, out, err = invoke(capsys, "train", tmp_path / "best.json", "-o", tmp_path / "run")
    assert (code, out) == (2, "")
    assert "holds a trained model; --overwrite replaces it" in err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    code, _, err = invoke(capsys, "train", tmp_path / "best.json", "-o", tmp_path / "other")
    assert code == 2
    assert "holds other files" in err
    assert (tmp_path / "other" / "notes.txt").read_text() == "mine"


def test_raw_inputs_need_a_saved_contract(tmp_path: Path) -> None:
    cfg = MixerConfig(input_shape=(1, 8, 8), num_classes=10, patch=(2, 2), channels=8, depth=1)
    save_trained(tmp_path / "m", build_model(cfg), cfg, Recipe(epochs=1), {})
    assert load_input_contract(tmp_path / "m") is None
    with pytest.raises(CheckpointError, match="saved without an input contract"):
        load_model(tmp_path / "m", raw_inputs=True)


def test_a_study_name_from_an_export_never_leaves_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from tests.conftest import invoke

    cfg = MixerConfig(input_shape=(1, 8, 8), num_classes=10, patch=(4, 4), channels=4, depth=1)
    export = {"config": cfg.to_dict(), "recipe": Recipe(epochs=1).to_dict(),
              "dataset": {"name": "digits"},
              "provenance": {"study": "../../escaped", "trial": 3}}  # fmt: skip
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    (work / "best.json").write_text(json.dumps(export))
    monkeypatch.chdir(work)
    code, _, err = invoke(capsys, "train", "best.json")
    assert code == 0, err
    (made,) = (work / "runs").iterdir()
    assert is_checkpoint(made)
    assert {p.name for p in tmp_path.rglob("*") if p.is_dir()} == {"a", "b", "runs", made.name}
    code, _, err = invoke(capsys, "train", "best.json", "--overwrite")
    assert code == 0, err
    assert [p.name for p in (work / "runs").iterdir()] == [made.name]  # replaced, no leftovers
