"""The throughput benchmark of issue #2 runs end to end (``--quick``); no timing is asserted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_throughput.py"


def test_quick_throughput_benchmark_runs_and_compares_with_the_peer(tmp_path: Path) -> None:
    pytest.importorskip("mlp_mixer_pytorch")
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert any("mlp-mixer-pytorch" in line for line in table), done.stdout
    assert any("nas_width rp" in line for line in table), done.stdout
    assert out.is_file()


def _synthetic_sweeps(path: Path) -> None:
    """A tiny sweeps db: 4 shapes x 3 seeds with per-epoch accuracies, and a running study."""
    import optuna
    from optuna.distributions import BaseDistribution, CategoricalDistribution
    from optuna.trial import TrialState, create_trial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{path}"
    shapes = [f"mixer-S{s}-p{16 // s}-gt2-gc2-d2" for s in (2, 4, 8, 16)]
    keys = [f"{shape}-s{seed}" for shape in shapes for seed in range(3)]
    grid = optuna.create_study(study_name="toy-sweep-flops-50k", storage=storage)
    grid.set_user_attr("recipe", {"epochs": 9})
    grid.set_user_attr("dataset", {"name": "toy"})
    grid.set_user_attr("budget", "flops=50k")
    grid.set_user_attr("feasible", {"shapes": len(keys)})
    distributions: dict[str, BaseDistribution] = {"shape": CategoricalDistribution(keys)}
    for i, key in enumerate(keys):
        final = 0.5 + 0.1 * (i // 3) + 0.002 * (i % 3)  # shapes 0.1 apart, seeds 0.002
        grid.add_trial(
            create_trial(
                params={"shape": key},
                distributions=distributions,
                value=final,
                intermediate_values={e: final * e / 9 for e in range(1, 10)},
                user_attrs={"seed": i % 3, "epochs": 9},
            )
        )
    partial = optuna.create_study(study_name="toy-partial", storage=storage)
    partial.add_trial(
        create_trial(
            state=TrialState.RUNNING, params={"shape": keys[0]}, distributions=distributions
        )
    )


def test_quick_search_efficiency_replays_a_synthetic_grid(tmp_path: Path) -> None:
    import json

    db, out = tmp_path / "sweeps.db", tmp_path / "efficiency.json"
    _synthetic_sweeps(db)
    script = SCRIPT.parent / "bench_search_efficiency.py"
    args = ["--quick", "--db", str(db), "--json", str(out), "--grace", "3", "5"]
    done = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "skipped study 'toy-partial'" in done.stdout
    table = [line for line in done.stdout.splitlines() if line.startswith("|")]
    assert "trials to target" in table[0]
    rows = [line.split("|")[1:3] for line in table[2:]]
    assert [(s.strip(), a.strip()) for s, a in rows] == [
        (s, a) for s in ("tpe", "random", "grid") for a in ("no", "grace 3", "grace 5")
    ]
    result = json.loads(out.read_text())
    assert result["settings"]["seeds"] == 2
    (grid,) = result["grids"]
    assert grid["best_shape"] == "mixer-S16-p1-gt2-gc2-d2"
    assert grid["shapes"] == 4
    assert grid["asha_rungs"] == {"3": [3, 9], "5": [5]}  # Ray's rungs within 9 epochs
    for row in grid["rows"]:  # the best shape leads at every epoch: always found, never pruned
        assert row["trials"]["reached"] == 2
        assert 1 <= row["trials"]["median"] <= 4


def _run_quick(script: str, out: Path, *extra: str) -> list[str]:
    """Run ``benchmarks/<script> --quick --json out``; returns its markdown table lines."""
    done = subprocess.run(
        [sys.executable, str(SCRIPT.parent / script), "--quick", "--json", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert out.is_file()
    return [line for line in done.stdout.splitlines() if line.startswith("|")]


@pytest.mark.slow
def test_quick_orchestration_benchmark_compares_search_and_plain_optuna(tmp_path: Path) -> None:
    import json

    out = tmp_path / "orchestration.json"
    table = _run_quick("bench_orchestration.py", out, "--running-ray")
    runs: tuple[str, ...] = ("plain Optuna", "search, 2 at once", "search, 1 at once")
    runs += ("search, 1 at once, Ray running",)  # joins a head the benchmark started
    for run in runs:
        assert any(line.startswith(f"| {run} |") for line in table), table
    for row in ("start-up: launch to the first trial's ask", "teardown: last tell to exit"):
        assert any(line.startswith(f"| {row} |") for line in table), table
    result = json.loads(out.read_text())
    assert [r["name"] for r in result["runs"]] == list(runs)
    for run in result["runs"]:
        assert len(run["trials"]) == 2, run
        assert {"wall", "train", "overhead_wall", "overhead_cpu", "idle"} <= set(run)
    assert result["runs"][0]["same_shapes_as_first_search"]
    assert {"prepare_s", "ray_init_s", "put_s", "get_s"} <= set(result["probe"])


@pytest.mark.slow
def test_quick_trial_benchmark_compares_fit_with_a_dataloader_loop(tmp_path: Path) -> None:
    import json

    out = tmp_path / "trial.json"
    table = _run_quick("bench_trial.py", out)
    rows = [[cell.strip() for cell in line.split("|")[1:8]] for line in table[2:]]
    assert [(r[0], r[6]) for r in rows] == [
        (w, loop)
        for w in ("digits", "MNIST-1D", "CIFAR-shaped")
        for loop in ("nas-width fit", "DataLoader loop")
    ]
    result = json.loads(out.read_text())
    assert result["machine"]["torch_threads"] == 1
    assert set(result["workloads"]) == {"digits", "MNIST-1D", "CIFAR-shaped"}
    for row in result["rows"]:
        assert {"epochs_per_s", "epochs_per_s_with_val", "vs_dataloader"} <= set(row)
        assert len(row["train_seconds"]) == 1  # 2 epochs, the first is warm-up


def test_quick_tuning_benchmark_times_a_tuned_shape_against_one_rate(tmp_path: Path) -> None:
    import json

    out = tmp_path / "tuning.json"
    _run_quick("bench_tuning.py", out)
    result = json.loads(out.read_text())
    assert result["rungs"] == [1, 3]
    assert result["theory"] == pytest.approx(5 / 3)  # 3 rates to epoch 1, the winner to 3
    assert result["tuned_s"] > result["single_s"] > 0


@pytest.mark.slow
def test_quick_gpu_benchmark_runs_on_the_cpu(tmp_path: Path) -> None:
    """The GPU benchmark's logic (MFU rows, packed processes) at tiny sizes, without CUDA."""
    import json

    out = tmp_path / "gpu.json"
    table = _run_quick("bench_gpu.py", out, "--device", "cpu")
    assert any(line.startswith("| nas-width mixer_b16 |") for line in table), table
    result = json.loads(out.read_text())
    (row,) = [r for r in result["mfu"] if r["model"] == "nas-width mixer_b16"]
    assert row["params"] > 50_000_000  # Mixer-B/16's 59M at a 32 x 32 input
    assert row["tflops"] > 0
    assert row["mfu"] is None  # no peak is known for a CPU
    assert [r["at_once"] for r in result["packing"]] == [1, 2]
    assert result["packing"][0]["speedup"] == 1.0
    assert all(r["trials_per_hour"] > 0 for r in result["packing"])


@pytest.mark.slow
def test_quick_first_line_benchmark_times_search_and_train_on_a_terminal_and_a_pipe(
    tmp_path: Path,
) -> None:
    import json

    out = tmp_path / "first_line.json"
    table = _run_quick("bench_first_line.py", out)
    keys = ["search, terminal", "search, pipe", "train, terminal", "train, pipe"]
    for key in keys:
        assert any(line.startswith(f"| {key} |") for line in table), table
    results = json.loads(out.read_text())["results"]
    assert list(results) == keys
    for key in keys:
        (run,) = results[key]
        assert 0 < run["first"] <= run["exit"], (key, run)
    assert "counts" in results["search, terminal"][0]  # the bar drew its first counts
    assert "lines" in results["search, pipe"][0]
    assert "epoch" in results["train, terminal"][0]


def test_run_all_runs_the_chosen_benchmarks_and_skips_what_cannot_run(tmp_path: Path) -> None:
    out = tmp_path / "results"
    only = ["--only", "budget", "search_efficiency", "--db", str(tmp_path / "missing.db")]
    done = subprocess.run(
        [sys.executable, str(SCRIPT.parent / "run_all.py"), "--quick", "--out", str(out), *only],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "budget: done" in done.stdout
    assert "search_efficiency: skipped (no sweeps database" in done.stdout
    assert "| work | cold (ms) |" in (out / "budget.md").read_text()
    assert not (out / "search_efficiency.md").exists()
