"""``nas-width count`` in-process and as a real subprocess, good and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nas_width import MixerConfig, measure
from tests.conftest import console_script, invoke

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "digits_mixer.json"


def test_count_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = invoke(capsys, "count", EXAMPLE)
    expected = measure(MixerConfig.load(EXAMPLE))
    assert (code, err) == (0, "")
    assert "S=16 tokens x C=32 channels, m = S*C = 512" in out
    assert f"{expected.params:,}" in out
    assert f"{expected.mixing_flops:,}" in out


def test_count_json_holds_the_measure_fields(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "count", EXAMPLE, "--json", "--mixing", "rp", "--channels", "20")
    data = json.loads(out)
    cfg = MixerConfig.load(EXAMPLE).replace(mixing="rp", channels=20)
    assert code == 0
    assert data["config"] == cfg.to_dict()
    assert {k: data[k] for k in measure(cfg).to_dict()} == measure(cfg).to_dict()


def test_count_reads_the_config_of_an_export(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """What ``nas-width export`` writes can be counted directly (its ``config`` object)."""
    cfg = MixerConfig.load(EXAMPLE).replace(channels=24, seed=3)
    export = tmp_path / "best.json"
    export.write_text(json.dumps({"config": cfg.to_dict(), "recipe": {"epochs": 3}}))
    code, out, err = invoke(capsys, "count", export, "--json")
    assert (code, err) == (0, "")
    assert json.loads(out)["params"] == measure(cfg).params
    export.write_text(json.dumps({"config": {**cfg.to_dict(), "depth": -1}}))
    code, out, err = invoke(capsys, "count", export)
    assert code == 2
    assert str(export) in err
    assert "depth" in err


def test_count_with_budget_solves_channels(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "count", EXAMPLE, "--budget", "flops=1M", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["budget"]["metric"] == "flops"
    assert abs(data["flops"] / 1e6 - 1) <= 0.02
    assert abs(data["budget"]["relative_error"]) <= 0.02


def test_count_registered_model_and_options_only(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "count", "--model", "mixer_s32", "--json")
    assert code == 0
    assert json.loads(out)["params"] == pytest.approx(19.1e6, rel=0.01)  # published: 19.1M
    code, out, _ = invoke(
        capsys, "count", "--input-shape", "1,40", "--patch", "4", "--budget", "30k", "--json"
    )
    assert code == 0
    assert json.loads(out)["tokens"] == 10


def test_fewer_epochs_than_the_studys_warmup_scale_the_warmup_down() -> None:
    """--epochs 1 on a study whose warm-up is 2 epochs of 25 keeps the warm-up's share (the
    user never set it); a warm-up that fits is left as the study file has it."""
    from nas_width.cli.search import _overrides
    from nas_width.search import load_spec

    spec = load_spec("digits")
    assert spec.recipe.warmup_epochs > 1
    quick = _overrides(spec, epochs=1).recipe
    assert quick.epochs == 1
    assert quick.warmup_epochs == pytest.approx(spec.recipe.warmup_epochs / spec.recipe.epochs)
    assert _overrides(spec, epochs=10).recipe.warmup_epochs == spec.recipe.warmup_epochs


def test_help_keeps_the_defaults_written_in_brackets(capsys: pytest.CaptureFixture[str]) -> None:
    """Rich markup ate "[default: the best]" ("Trial number ."): the brackets are escaped."""
    code, out, _ = invoke(capsys, "export", "--help")
    assert code == 0
    assert "Trial number [default: the best]." in out
    code, out, _ = invoke(capsys, "train", "--help")
    assert "cpu or cuda [default: best]." in out
    code, out, _ = invoke(capsys, "count", "--help")
    assert "Usage: nas-width count [OPTIONS] [CONFIG.json]" in out  # was [[CONFIG.json]]


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    import nas_width

    code, out, err = invoke(capsys, "--version")
    assert (code, out, err) == (0, f"nas-width {nas_width.__version__}\n", "")


def test_help_lists_examples(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = invoke(capsys, "count", "--help")
    assert code == 0
    assert "--budget" in out
    assert "nas-width count examples/digits_mixer.json" in out


BAD = [
    (["count", EXAMPLE, "--budget", "50x"], "50x"),
    (["count", EXAMPLE, "--budget", "0"], "'0'"),
    (["count", EXAMPLE, "--budget", "-3k"], "-3k"),
    (["count", EXAMPLE, "--budget", "10"], "params=10"),
    (["count", EXAMPLE, "--budget", "weights=5k"], "weights"),
    (["count", EXAMPLE, "--budget", "50k", "--tolerance", "3"], "3"),
    (["count", "missing.json"], "missing.json"),
    (["count", EXAMPLE, "--mixing", "conv"], "conv"),
    (["count", EXAMPLE, "--depth", "0"], "depth"),
    (["count", EXAMPLE, "--depth", "x"], "--depth"),
    (["count", EXAMPLE, "--patch", "3,3"], "patch"),
    (["count", EXAMPLE, "--input-shape", "1,8,a"], "1,8,a"),
    (["count", EXAMPLE, "--chanels", "3"], "--chanels"),
    (["count", "--model", "mixer_zz"], "mixer_zz"),
    (["count", EXAMPLE, "--model", "mixer_s16"], "not both"),
    (["count"], "input_shape"),
    (["frobnicate"], "frobnicate"),
]


@pytest.mark.parametrize(("args", "named"), BAD)
def test_bad_input_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], args: list[str], named: str
) -> None:
    code, out, err = invoke(capsys, *args)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert named in err
    assert "Traceback" not in err


@pytest.mark.parametrize("content", ["{not json", '{"input_shape": [1, 8, 8]}', "[1, 2]"])
def test_corrupt_config_files_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    code, _, err = invoke(capsys, "count", bad)
    assert code == 2
    assert "bad.json" in err
    assert len(err.strip().splitlines()) == 1


def test_console_script_runs_as_a_subprocess() -> None:
    done = subprocess.run(
        [*console_script(), "count", str(EXAMPLE), "--budget", "50k", "--json"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert abs(json.loads(done.stdout)["params"] / 50_000 - 1) <= 0.02
    bad = subprocess.run(
        [*console_script(), "count", str(EXAMPLE), "--budget", "lots"],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert bad.returncode == 2
    expected = "budget 'lots': expected a number like 50k, 2.5M or flops=20M"
    assert bad.stderr.strip() == f"nas-width: error: {expected}"


def test_import_does_not_load_orchestration_or_plotting() -> None:
    code = (
        "import sys, nas_width; "
        "nas_width.build_model(nas_width.get_config('mixer_s32', input_shape=(3, 64, 64))); "
        "print(sorted(m for m in ('ray', 'optuna', 'plotly', 'optuna_dashboard', 'sklearn', "
        "'fvcore', 'typer') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("method", "path", "allow_notes", "passes"),
    [
        ("GET", "/api/studies", False, True),
        ("HEAD", "/", False, True),
        ("DELETE", "/api/studies/1", False, False),
        ("DELETE", "/api/studies/1", True, False),
        ("POST", "/api/trials/3/tell", True, False),
        ("POST", "/api/studies/1/rename", True, False),
        ("PUT", "/api/studies/1/note", False, False),
        ("PUT", "/api/studies/1/note", True, True),
        ("PUT", "/api/studies/1/7/note", True, True),
        ("PUT", "/api/studies/1/note/../../2", True, False),
        ("PUT", "/api/studies/1/preference_feedback_component", True, False),
    ],
)
def test_the_dashboard_refuses_writes_but_notes_when_allowed(
    method: str, path: str, allow_notes: bool, passes: bool
) -> None:
    from nas_width.cli.dashboard import read_only

    reached: list[str] = []
    statuses: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        reached.append(environ["PATH_INFO"])
        start_response("200 OK", [])
        return [b"ok"]

    guarded = read_only(app, allow_notes)
    body = b"".join(guarded(
        {"REQUEST_METHOD": method, "PATH_INFO": path},
        lambda status, headers: statuses.append(status),
    ))  # fmt: skip
    assert (reached == [path]) is passes
    assert statuses == (["200 OK"] if passes else ["403 Forbidden"])
    assert passes or b"read-only" in body
