"""``nas-width report`` on synthetic stored studies: text, JSON, HTML, the dashboard, bad input.

Studies are built directly with Optuna in a temporary SQLite file, with the user attributes a
nas-width search writes (S, C, m, mixing, seed, flops, params, epochs, config; the ``shape``
parameter; the study's budget, space and data set). Accuracy rises with log m, so the verdict
is "supported". One test starts ``nas-width dashboard`` as a real subprocess and reads the
saved figures and note back through its HTTP API.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any, Literal
from xml.etree import ElementTree

import numpy as np
import optuna
import pytest
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import TrialState, create_trial
from plotly.offline import get_plotlyjs_version

import nas_width
from nas_width.analysis import TrialRecord, analyze
from nas_width.report import (
    FIGURE_IDS,
    best_so_far,
    build_figures,
    pareto_numbers,
    study_info,
    theory_m_star,
)
from nas_width.report.html import BASIC_BUNDLE, plotly_bundle
from tests.conftest import console_script, invoke, snapshot

NAME = "digits-params-50k"
OMEGA = 20_000.0
TOKENS = (4, 8, 16, 32, 64)
KINDS = ("mixer", "rp")
SEEDS = (0, 1)


def solve_c(S: int) -> int:
    """C with S*C*(S+C)/2 = Omega: m = S*C peaks at S = C, as at a real budget."""
    return max(1, round((-S + math.sqrt(S * S + 8 * OMEGA / S)) / 2))


def key(kind: str, S: int) -> str:
    return f"{kind}-S{S}-p2x2-gt2-gc2-d2"


DIST: dict[str, BaseDistribution] = {
    "shape": CategoricalDistribution([key(k, S) for k in KINDS for S in TOKENS])
}


def attrs(kind: str, S: int, seed: int) -> dict[str, Any]:
    C = solve_c(S)
    config = {"channels": C, "depth": 2, "gamma_token": 2.0, "gamma_channel": 2.0,
              "mixing": kind, "seed": seed}  # fmt: skip
    return {"S": S, "C": C, "m": S * C, "mixing": kind, "seed": seed,
            "flops": 40_000 + 7 * S * C, "params": 50_000 - S, "epochs": 10,
            "config": config}  # fmt: skip


def build_study(
    path: Path,
    name: str = NAME,
    *,
    complete: bool = True,
    pareto: bool = False,
    budget: tuple[str, str, int] = ("params=50k", "params", 50_000),
    tuned: bool = False,
) -> str:
    """A stored study like a finished nas-width search: 20 COMPLETE trials (5 shapes x 2
    kinds x 2 seeds, accuracy rising with log m), then one PRUNED and one FAIL trial. With
    ``tuned``, a tuned sweep's: test_accuracy is its primary metric, and it falls with m."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{path}"
    directions: list[Literal["maximize", "minimize"]]
    directions = ["maximize", "minimize"] if pareto else ["maximize"]
    study = optuna.create_study(storage=url, study_name=name, directions=directions)
    spec, metric, value = budget
    study.set_user_attr("budget", spec)
    study.set_user_attr("budget_metric", metric)
    study.set_user_attr("budget_value", value)
    study.set_user_attr("space", "mixer")
    study.set_user_attr("dataset", {"name": "digits", "options": {}})
    study.set_user_attr("pareto", pareto)
    study.set_user_attr("nas_width_version", nas_width.__version__)
    if tuned:
        study.set_user_attr("tune", {"lr": [0.001, 0.003], "eta": 3})
        study.set_user_attr(
            "primary_test",
            {
                "primary_kind": "mixer",
                "primary_statistic": "spearman",
                "primary_metric": "test_accuracy",
            },
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(["val_accuracy", "flops"] if pareto else ["val_accuracy"])
    rng = np.random.default_rng(0)
    if complete:
        for S in TOKENS:
            for kind in KINDS:
                for seed in SEEDS:
                    a = attrs(kind, S, seed)
                    acc = 0.30 + 0.08 * math.log(a["m"]) + float(rng.normal(0, 0.004))
                    acc += 0.01 if kind == "mixer" else 0.0
                    values = [acc, float(a["flops"])] if pareto else [acc]
                    if tuned:
                        a = {**a, "test_accuracy": 1.2 - acc, "test_samples": 359, "lr": 0.003}
                    study.add_trial(
                        create_trial(values=values, params={"shape": key(kind, S)},
                                     distributions=DIST, user_attrs=a)
                    )  # fmt: skip
    study.add_trial(
        create_trial(state=TrialState.PRUNED, params={"shape": key("mixer", 4)},
                     distributions=DIST, user_attrs=attrs("mixer", 4, 2),
                     intermediate_values={1: 0.4})
    )  # fmt: skip
    study.add_trial(
        create_trial(state=TrialState.FAIL, params={"shape": key("rp", 64)},
                     distributions=DIST, user_attrs={"fail_reason": "loss is NaN"})
    )  # fmt: skip
    return url


@pytest.fixture(scope="module")
def study_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of the stored study, built once and copied into each test's directory."""
    path = tmp_path_factory.mktemp("study") / "s.db"
    build_study(path)
    return path.read_bytes()


@pytest.fixture
def db(tmp_path: Path, study_bytes: bytes) -> Path:
    path = tmp_path / "store" / "s.db"
    path.parent.mkdir()
    path.write_bytes(study_bytes)
    return path


def system_attrs(url: str, name: str = NAME) -> dict[str, Any]:
    """The study's system attributes, where optuna-dashboard keeps figures and notes."""
    study = optuna.load_study(study_name=name, storage=url)
    return dict(study._storage.get_study_system_attrs(study._study_id))


@pytest.mark.smoke
def test_a_test_accuracy_study_is_reported_on_its_held_out_split(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A study whose primary metric is test_accuracy (a tuned sweep): the verdict, the kinds,
    the figures and the dashboard note read the held-out accuracy (here falling with m while
    validation rises), with its sample count and the learning rates the shapes chose."""
    url = build_study(tmp_path / "t.db", tuned=True)
    out_html = tmp_path / "r.html"
    code, out, err = invoke(capsys, "report", "--storage", url, "-o", out_html)
    assert (code, err) == (0, ""), err
    assert "verdict: contradicted" in out
    assert "spearman correlation of m with test_accuracy, mixer" in out
    assert re.search(r"Mixer test accuracy +mean 0\.\d{4}", out), out
    assert re.search(r"test samples per trial +359 ", out), out
    assert re.search(
        r"learning rate \(trials\) +0\.003 \(20\); 20 of 20 at the grid's "
        r"largest rate 0\.003: widen the grid",
        out,
    ), out
    html = out_html.read_text()
    assert "held-out test accuracy" in html  # the figures' axis
    footer = html[html.index("<footer>") :]
    assert "None" not in footer  # no Python reprs
    assert "lr_grid 0.001, 0.003" in footer


def test_a_storage_of_several_studies_names_the_flag_and_the_studies(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = build_study(tmp_path / "two.db", name="first")
    build_study(tmp_path / "two.db", name="second")
    code, out, err = invoke(capsys, "report", "--storage", url, "-o", tmp_path / "r.html")
    assert (code, out) == (2, "")
    assert "holds 2 studies (first, second): name one with --study-name" in err


def test_studies_and_trials_list_what_a_storage_holds(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """As Optuna's CLI: studies, trials (table, JSON, CSV) and the best trial, read only."""
    import csv
    import io

    url = build_study(tmp_path / "l.db", tuned=True)
    before = snapshot(tmp_path)
    code, out, err = invoke(capsys, "studies", "--storage", url)
    assert (code, err) == (0, "")
    header, row = out.splitlines()
    assert header.split()[:5] == ["study", "budget", "space", "dataset", "complete"]
    assert row.split()[:8] == [NAME, "params=50k", "mixer", "digits", "20", "1", "1", "0"]

    code, out, _ = invoke(capsys, "trials", "--storage", url, "--format", "json")
    rows = json.loads(out)
    assert code == 0
    assert len(rows) == 22
    first = rows[0]
    assert (first["state"], first["S"], first["m"], first["lr"]) == ("COMPLETE", 4, 4 * solve_c(4),
                                                                      0.003)  # fmt: skip
    assert first["test_accuracy"] == pytest.approx(1.2 - first["val_accuracy"])
    code, out, _ = invoke(capsys, "trials", "--storage", url, "--format", "csv")
    assert [r["number"] for r in csv.DictReader(io.StringIO(out))] == [str(i) for i in range(22)]
    code, out, _ = invoke(capsys, "trials", "--storage", url, "--best", "--format", "json")
    (top,) = json.loads(out)
    done = [r for r in rows if r["state"] == "COMPLETE"]
    assert top["val_accuracy"] == max(r["val_accuracy"] for r in done)
    code, out, _ = invoke(capsys, "trials", "--storage", url)
    assert out.splitlines()[0].split() == ["number", "state", "shape", "mixing", "S", "C", "m",
                                           "seed", "lr", "val_accuracy", "test_accuracy",
                                           "epochs"]  # fmt: skip
    assert len(out.splitlines()) == 23
    code, out, err = invoke(capsys, "trials", "--storage", url, "--format", "xml")
    assert (code, out) == (2, "")
    assert "--format 'xml' is not one of table, json, csv" in err
    assert snapshot(tmp_path) == before


def test_report_prints_the_verdict_and_writes_a_self_contained_html(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    out_html = tmp_path / "new" / "r.html"  # missing directories are created
    code, out, err = invoke(capsys, "report", "--storage", f"sqlite:///{db}", "-o", out_html)
    assert (code, err) == (0, ""), err
    assert "verdict: supported" in out
    assert "Supported: accuracy rises with width m" in out
    lines = out.splitlines()
    assert lines[1].startswith("primary test (the default; the study names none): spearman")
    assert lines[2] == "verdict: supported"
    assert "over 5 shapes (10 trials)" in out
    assert re.search(r"trials used / pruned / failed / other +20 / 1 / 1 / 0", out), out
    assert re.search(r"Spearman rho \(m, accuracy\) +\+0\.\d{3} \(95% CI \+0\.\d{3} to ", out)
    assert "Kendall tau (m, accuracy)" in out
    assert re.search(r"best S/C \(quadratic in log\(S/C\)\) +\d", out), out
    assert "theory: S = C" in out
    assert re.search(r"Mixer validation accuracy +mean 0\.\d{4} ± 0\.\d{4}", out), out
    assert re.search(r"RP-Mixer validation accuracy +mean 0\.\d{4}", out), out
    assert "Mixer - RP-Mixer  " in out
    assert "paired over 10 shape-seed pairs" in out
    assert f"wrote {out_html.resolve()}" in out
    assert f"saved 5 figures and a note into study {NAME!r}" in out

    page = out_html.read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert f"Width study {NAME}" in page
    assert "Verdict: supported" in page
    assert "budget <b>params=50k</b>" in page
    assert "data set <b>digits</b>" in page
    assert "S = C" in page
    # One objective, but FLOPs vary among the trials: the front is drawn too.
    assert page.count('class="plotly-graph-div"') == 5
    for fid in FIGURE_IDS:
        assert f'id="{fid}"' in page
    # plotly.js once, inline: its basic bundle where the installed plotly targets that major
    # version (the lock's plotly does), which keeps the report under 1.5 MB; else the full one.
    bundles = re.findall(r"\* plotly\.js (?:\(basic - minified\) )?v[\d.]+", page)
    assert len(bundles) == 1, bundles
    if get_plotlyjs_version().split(".")[0] == BASIC_BUNDLE[1].split(".")[0]:
        assert bundles == [f"* plotly.js (basic - minified) v{BASIC_BUNDLE[1]}"]
        assert out_html.stat().st_size < 1_500_000
    assert not re.search(r"<script[^>]+src=", page)
    assert '<script src="http' not in page
    assert "<link" not in page
    assert re.search(r"<td>20</td><td>PRUNED</td><td>pruned</td>", page)
    assert re.search(r"<td>21</td><td>FAIL</td><td>failed</td>", page)
    assert f"Generated by nas-width {nas_width.__version__}" in page

    # Static copies for a paper beside it, drawn offline: every figure as SVG and PDF.
    figures = out_html.parent / "r-figures"
    assert f"wrote 10 static figures (svg, pdf) into {figures.resolve()}" in out
    names = [f.removeprefix("nas-width-") for f in FIGURE_IDS]
    assert sorted(p.name for p in figures.iterdir()) == sorted(
        f"{n}.{fmt}" for n in names for fmt in ("svg", "pdf")
    )
    svg = (figures / "accuracy-vs-ratio.svg").read_text()
    assert ElementTree.fromstring(svg).tag.endswith("svg")
    for text in ("Accuracy vs log(S/C) at the fixed budget", "theory: S = C", "best S/C = "):
        assert text in svg  # matplotlib writes each text beside its glyphs
    assert (figures / "history.pdf").read_bytes().startswith(b"%PDF-")


def test_report_json_saves_figures_and_note_and_a_second_run_replaces_them(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    import optuna_dashboard

    url = f"sqlite:///{db}"
    code, out, err = invoke(capsys, "report", "--storage", url, "-o", tmp_path / "r.html",
                            "--json", "--per-kind")  # fmt: skip
    assert (code, err) == (0, ""), err
    data = json.loads(out)  # nothing but the JSON
    assert data["verdict"]["outcome"] == "supported"
    assert data["correlation"]["spearman"]["estimate"] > 0.5
    # The verdict is the primary test's (the Mixer's shapes, by default); every kind beside it.
    assert data["primary"] == {"kind": "mixer", "statistic": "spearman", "metric": "val_accuracy"}
    assert data["counts"] == {"used": 10, "pruned": 1, "failed": 1, "other": 10}
    assert data["all_kinds"]["counts"] == {"used": 20, "pruned": 1, "failed": 1, "other": 0}
    assert data["correlation"]["unit"] == "shape"
    assert data["correlation"]["n"] == 5  # 5 shapes, 2 seeds each
    assert [t["primary"] for t in data["tests"]] == [True, False, False, False]
    assert data["tests"][0]["p_holm"] is None
    assert data["report"] == str((tmp_path / "r.html").resolve())
    assert data["study"] == NAME
    assert data["saved_to_study"] is True
    assert set(data["per_kind"]) == set(KINDS)
    assert data["per_kind"]["mixer"]["counts"]["used"] == 10
    assert data["trend"]["theory"]["m_star_source"] == "observed"

    study = optuna.load_study(study_name=NAME, storage=url)
    note = optuna_dashboard.get_note(study)
    assert note.startswith(f"## nas-width report: {NAME}")
    assert "### Verdict: supported" in note
    assert "primary test (the default; the study names none)" in note
    assert "| spearman, mixer (primary) | +" in note
    assert "(secondary, Holm p = " in note
    assert "### Each mixing kind alone" in note
    # optuna-dashboard has no public call that lists saved figures; its reader is private.
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    saved = get_plotly_graph_objects(system_attrs(url))
    assert set(saved) == set(data["figures"])
    assert set(saved) <= set(FIGURE_IDS)
    titles = {json.loads(g)["layout"]["title"]["text"] for g in saved.values()}
    assert "Accuracy vs log(S/C) at the fixed budget" in titles

    before = system_attrs(url)
    code, _, err = invoke(capsys, "report", "--storage", url, "-o", tmp_path / "r.html")
    assert (code, err) == (0, ""), err
    after = system_attrs(url)
    assert after["dashboard:note_ver"] == before["dashboard:note_ver"] + 1
    assert set(after) == set(before)  # the same keys: replaced, not added
    assert get_plotly_graph_objects(after).keys() == saved.keys()
    replaced = optuna_dashboard.get_note(study)
    assert replaced.count("## nas-width report") == 1
    assert "Each mixing kind alone" not in replaced  # the second run had no --per-kind


def test_no_save_leaves_the_storage_bytes_unchanged_and_the_html_is_reproducible(
    capsys: pytest.CaptureFixture[str], db: Path, tmp_path: Path
) -> None:
    before = snapshot(db.parent)
    pages, statics = [], []
    for name in ("a", "b"):
        code, out, err = invoke(capsys, "report", "--storage", f"sqlite:///{db}", "--no-save",
                                "--seed", "3", "-o", tmp_path / f"{name}.html",
                                "--static", "svg,pdf,png")  # fmt: skip
        assert (code, err) == (0, ""), err
        assert "saved" not in out
        pages.append((tmp_path / f"{name}.html").read_text())
        statics.append(snapshot(tmp_path / f"{name}-figures"))
    assert snapshot(db.parent) == before
    assert pages[0] == pages[1]
    assert statics[0] == statics[1]  # no date in the metadata, fixed SVG ids
    assert len(statics[0]) == 15


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        assert response.status == 200
        return json.loads(response.read())


@pytest.mark.slow
def test_report_subprocess_then_the_dashboard_serves_its_figures_and_note(
    db: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{db}"
    done = subprocess.run(
        [*console_script(), "report", "--storage", url, "-o", "r.html"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    assert "verdict: supported" in done.stdout
    assert f"wrote {tmp_path / 'r.html'}" in done.stdout
    port = free_port()
    log_path = tmp_path / "dashboard.out"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*console_script(), "dashboard", "--storage", url, "--port", str(port)],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}/api/studies"
            summaries = None
            deadline = time.monotonic() + 30
            while summaries is None and time.monotonic() < deadline:
                assert server.poll() is None, log_path.read_text()
                try:
                    summaries = get_json(base)["study_summaries"]
                except (urllib.error.URLError, ConnectionError):
                    time.sleep(0.3)
            assert summaries is not None, "the dashboard did not answer within 30 s"
            (study_id,) = [s["study_id"] for s in summaries if s["study_name"] == NAME]
            detail = get_json(f"{base}/{study_id}?after=0")
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=10)
    assert detail["name"] == NAME
    assert detail["note"]["version"] == 1
    assert "### Verdict: supported" in detail["note"]["body"]
    graphs = {g["id"]: json.loads(g["graph_object"]) for g in detail["plotly_graph_objects"]}
    assert "nas-width-accuracy-vs-ratio" in graphs
    ratio = graphs["nas-width-accuracy-vs-ratio"]
    # The reference lines are legend entries (labels on the plot overlapped in its panel).
    assert not ratio["layout"].get("annotations")
    names = [t.get("name") for t in ratio["data"]]
    assert "theory: S = C" in names
    assert any(str(n).startswith("best S/C = ") for n in names), names
    assert len(graphs) == 5


# Bad input: each exits 2 with one line naming the value, and leaves every file as it was.
BAD = [
    pytest.param(
        ["--storage", "sqlite:///new.db"],
        r"'sqlite:///new\.db' does not exist",
        id="missing-storage",
    ),
    pytest.param(
        ["--storage", "sqlite:///s.db", "--study-name", "nope"], "'nope'", id="unknown-study"
    ),
    pytest.param(
        ["--storage", "sqlite:///empty.db"],
        "study 'unfinished' has no finished trial to analyze",
        id="no-complete-trial",
    ),
    pytest.param(
        ["--storage", "sqlite:///s.db", "-o", "s.db/r.html"],
        "'s.db' is not a directory",
        id="output-under-a-file",
    ),
    pytest.param(
        ["--storage", "sqlite:///s.db", "-o", "."], "is a directory", id="output-is-a-directory"
    ),
    pytest.param(
        ["--storage", "sqlite:///zero.db"],
        r"'sqlite:///zero\.db' is not an Optuna study database",
        id="zero-byte-sqlite",
    ),
    pytest.param(["--storage", "sqlite:///s.db", "--seed", "-1"], "got -1", id="negative-seed"),
    pytest.param(
        ["--storage", "sqlite:///s.db", "--static", "svg,gif"], "'gif' is not one of", id="gif"
    ),
    pytest.param(
        ["--storage", "sqlite:///s.db", "--figures", "s.db"], "'s.db' is a file", id="figures-file"
    ),
]


@pytest.mark.parametrize(("args", "named"), BAD)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    study_bytes: bytes,
    args: list[str],
    named: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.db").write_bytes(study_bytes)
    (tmp_path / "zero.db").write_bytes(b"")
    build_study(tmp_path / "empty.db", "unfinished", complete=False)
    before = snapshot(tmp_path)
    code, out, err = invoke(capsys, "report", *args)
    assert (code, out) == (2, ""), err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("nas-width"), err
    assert re.search(named, err), err
    assert snapshot(tmp_path) == before  # no report, no storage, nothing saved


def test_two_objective_study_draws_the_pareto_front_of_best_trials(tmp_path: Path) -> None:
    url = build_study(tmp_path / "p.db", "pareto", pareto=True)
    study = optuna.load_study(study_name="pareto", storage=url)
    from nas_width.analysis import records_from_study

    records = records_from_study(study)
    a = analyze(records, n_boot=200, n_perm=200)
    info = study_info(study, url, a, records)
    assert info.two_objective
    assert set(info.front) == {t.number for t in study.best_trials}
    figures = build_figures(a, records, info)
    assert list(figures) == list(FIGURE_IDS)
    front = figures["nas-width-pareto"].data[1]
    assert list(front.x) == sorted(front.x)
    assert figures["nas-width-pareto"].layout.xaxis.title.text == "FLOPs per sample (fvcore)"
    assert figures["nas-width-accuracy-vs-m"].layout.xaxis.type == "log"
    ms = sorted({r.m for r in records if r.state == "COMPLETE"})
    axis = figures["nas-width-accuracy-vs-m"].layout.xaxis
    ticks = list(axis.tickvals)  # observed widths, not plotly's "2 3 ... 9 1000 2"
    assert set(ticks) <= set(ms)
    assert (ticks[0], ticks[-1]) == (ms[0], ms[-1])
    assert list(axis.ticktext) == [f"{m:,}" for m in ticks]


def test_width_ticks_stay_apart_on_the_log_axis() -> None:
    """The dashboard's panel printed 176 over 192: ticks are a ninth of the log span apart."""
    from nas_width.report.figures import _width_ticks

    widths = [88, 176, 192, 352, 616, 976, 1248, 1984]
    assert _width_ticks(widths)["tickvals"] == [88, 176, 352, 616, 976, 1984]
    assert _width_ticks([392, 536, 576, 688, 736])["tickvals"] == [392, 536, 576, 736]
    many = _width_ticks(list(range(100, 1000, 10)))["tickvals"]
    assert len(many) <= 9
    assert min(math.log(b / a) for a, b in itertools.pairwise(many)) >= math.log(990 / 100) / 9
    assert _width_ticks([100])["ticktext"] == ["100"]
    assert _width_ticks([]) == {}


def record(n: int, acc: float | None, flops: int | None) -> TrialRecord:
    return TrialRecord(n, "COMPLETE", "mixer", 4, 4, 16, 0, acc, flops=flops)


def test_the_basic_plotly_bundle_only_for_traces_it_draws_and_its_major_version(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import plotly.graph_objects as go
    import plotly.offline

    scatter = {"a": go.Figure(go.Scatter(x=[1], y=[2]))}
    box = {"a": go.Figure(go.Scatter(x=[1], y=[2])), "b": go.Figure(go.Box(y=[1, 2]))}
    basic = f"* plotly.js (basic - minified) v{BASIC_BUNDLE[1]}"
    monkeypatch.setattr(plotly.offline, "get_plotlyjs_version", lambda: BASIC_BUNDLE[1])
    assert basic in plotly_bundle(scatter)[:200]
    assert basic not in plotly_bundle(box)[:200]  # a box needs the full bundle
    monkeypatch.setattr(plotly.offline, "get_plotlyjs_version", lambda: "2.35.2")
    assert basic not in plotly_bundle(scatter)[:200]  # figures written for another major


def test_static_figures_refuse_what_they_cannot_draw() -> None:
    """A trace type or a shape the static copy would leave out raises instead."""
    import plotly.graph_objects as go

    from nas_width.report.static import render

    assert render(go.Figure(go.Scatter(x=[1, 2], y=[3, 4])), "svg").lstrip().startswith(b"<?xml")
    with pytest.raises(ValueError, match="scatter traces only, not 'box'"):
        render(go.Figure(go.Box(y=[1, 2])), "svg")
    with pytest.raises(ValueError, match="shape or annotation"):
        render(go.Figure(go.Scatter(x=[1], y=[1])).add_vline(x=1), "pdf")
    with pytest.raises(ValueError, match="'gif' is not one of svg, pdf, png"):
        render(go.Figure(), "gif")


def test_pareto_numbers_and_best_so_far() -> None:
    recs = [record(0, 0.5, 100), record(1, 0.7, 200), record(2, 0.6, 300), record(3, 0.9, 400),
            record(4, 0.4, 50), record(5, 0.9, 400), record(6, 0.8, None)]  # fmt: skip
    assert pareto_numbers(recs) == (4, 0, 1, 3)
    assert best_so_far(recs[:4]) == [0.5, 0.7, 0.7, 0.9]


@pytest.mark.parametrize(
    ("attrs", "configs", "expected"),
    [
        ({"budget_metric": "mixing_flops", "budget_value": 4 * 2 * 2.0 * 1000**1.5},
         [{"depth": 2, "gamma_token": 2.0, "gamma_channel": 2.0}] * 3, 1000.0),
        ({"budget_metric": "params", "budget_value": 50_000},
         [{"depth": 2, "gamma_token": 2.0, "gamma_channel": 2.0}], None),
        ({"budget_metric": "mixing_flops", "budget_value": 1e6},
         [{"depth": 2, "gamma_token": 2.0, "gamma_channel": 2.0},
          {"depth": 3, "gamma_token": 2.0, "gamma_channel": 2.0}], None),
        ({"budget_metric": "mixing_flops", "budget_value": 1e6},
         [{"depth": 2, "gamma_token": 2.0, "gamma_channel": 4.0}], None),
    ],
    ids=["mixing-flops", "params", "two-depths", "two-gammas"],
)  # fmt: skip
def test_theory_m_star_only_where_the_budget_has_a_closed_form(
    attrs: dict[str, Any], configs: list[dict[str, Any]], expected: float | None
) -> None:
    got = theory_m_star(attrs, configs)
    assert got == (None if expected is None else pytest.approx(expected))


def test_a_mixing_flops_study_reports_the_given_m_star(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    budget = ("mixing_flops=1M", "mixing_flops", 1_000_000)
    url = build_study(tmp_path / "f.db", "flops", budget=budget)
    code, out, err = invoke(capsys, "report", "--storage", url, "--json", "--no-save",
                            "-o", tmp_path / "f.html")  # fmt: skip
    assert (code, err) == (0, ""), err
    theory = json.loads(out)["trend"]["theory"]
    assert theory["m_star_source"] == "given"
    assert theory["m_star"] == pytest.approx((1e6 / (4 * 2 * 2.0)) ** (2 / 3))


def test_import_is_light() -> None:
    code = (
        "import sys, nas_width.report, nas_width.cli; "
        "print(sorted(m for m in ('plotly', 'optuna_dashboard', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
