"""Property-based fuzzing of the file readers: whatever a file holds, the result is data or a
one-line :class:`~nas_width.errors.NasWidthError`, never another exception.

Under test: the TOML readers (``read_toml``, study files through ``load_spec``, space files
through ``load_space``) and the JSON readers (``MixerConfig.load``/``from_json``/``from_dict``
and the export that ``nas-width train`` reads). Inputs are arbitrary bytes and text, documents
built from the valid keys with values of random types, and shipped files with random edits.
Deterministic (``derandomize``), so CI sees the same examples every run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from nas_width import MixerConfig
from nas_width.errors import NasWidthError
from nas_width.search.export import Exported, read_export
from nas_width.search.space import SearchSpace, load_space
from nas_width.search.study import StudySpec, load_spec
from nas_width.tomlfile import read_toml
from nas_width.train import Recipe

ROOT = Path(__file__).resolve().parents[1]
FUZZ = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

DEEP_JSON = b"[" * 100_000
DEEP_TOML = b"a = " + b"[" * 5_000
HUGE_INT = b"1" * 5_000


def clean(call: Callable[[], Any]) -> Any:
    """Run ``call``: its result, or the NasWidthError it raised after checking it is one
    non-empty line. Any other exception fails the test as it is."""
    try:
        return call()
    except NasWidthError as err:
        error = err
    message = str(error)
    assert message.strip(), f"empty message from {type(error).__name__}"
    assert message.splitlines() == [message], f"not one line: {message!r}"
    return error


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def read_all(directory: Path, data: bytes) -> None:
    """Every reader on ``data``: TOML readers on a .toml file, JSON readers on a .json file."""
    toml, config = directory / "any.toml", directory / "any.json"
    toml.write_bytes(data)
    config.write_bytes(data)
    assert isinstance(clean(lambda: read_toml(toml)), (dict, NasWidthError))
    assert isinstance(clean(lambda: load_spec(toml)), (StudySpec, NasWidthError))
    space = clean(lambda: load_space(toml))
    if isinstance(space, SearchSpace):
        assert len(space.hash) == 12  # the definition is plain JSON
    assert isinstance(clean(lambda: MixerConfig.load(config)), (MixerConfig, NasWidthError))
    assert isinstance(clean(lambda: read_export(config)), (Exported, NasWidthError))


@FUZZ
@given(data=st.binary(max_size=600))
@example(data=DEEP_JSON)
@example(data=DEEP_TOML)
@example(data=HUGE_INT)
@example(data=b'{"config": ' + HUGE_INT + b"}")
@example(data=b"a = " + HUGE_INT)
@example(data=b"\xef\xbb\xbfname = 'bom'\n")
@example(data=b'description = "\xff"\n')
@example(data=b"\x00")
def test_any_bytes_are_data_or_one_clean_error(files: Path, data: bytes) -> None:
    read_all(files, data)


@FUZZ
@given(text=st.text(max_size=300))
@example(text='"a\\nb" = 1\n')
@example(text='{"input_shape": [1, 8, 8], "patch": [2, 2], "channels": 1, "a\\u2028b": 0}')
@example(text='name = "x"\nmixing = ["mixer"\n')
def test_any_text_is_data_or_one_clean_error(files: Path, text: str) -> None:
    read_all(files, text.encode("utf-8"))


# --- documents built from the valid keys, values of any type ------------------------------

WORDS = ("mixer", "rp", "monarch", "sw-mlp", "all", "square", "tpe", "nsga2", "asha", "none",
         "digits", "synthetic", "cifar10", "crop-flip", "50k", "flops=2M")  # fmt: skip
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-3, max_value=64),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.sampled_from(WORDS),
    st.text(max_size=12),
    st.dates(),
    st.datetimes(),
    st.times(),
)


def containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=3)


VALUES = st.recursive(SCALARS, containers, max_leaves=8)


def _string(text: str) -> str:
    """A TOML basic string: JSON's escapes, plus DEL, which TOML requires escaped."""
    return json.dumps(text).replace("\x7f", "\\u007f")


def toml_value(value: Any) -> str:
    """``value`` as a TOML inline value (arrays and inline tables for containers)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (dt.date, dt.time)):  # datetimes are dates
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{" + ", ".join(f"{_string(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def toml_document(table: dict[str, Any]) -> bytes:
    return "".join(f"{_string(k)} = {toml_value(v)}\n" for k, v in table.items()).encode()


def tables(keys: tuple[str, ...], values: st.SearchStrategy[Any] = VALUES) -> Any:
    """Tables whose keys are mostly ``keys`` (now and then an unknown one)."""
    key = st.sampled_from(keys) | st.text(max_size=8)
    return st.dictionaries(key, values, max_size=len(keys) + 1)


SECTIONS = {
    "dataset": ("name", "path", "val_fraction", "split_seed", "options"),
    "recipe": tuple(f.name for f in dataclasses.fields(Recipe)),
    "resources": ("cpus_per_trial", "gpus_per_trial", "max_concurrent"),
    "asha": ("grace_period", "reduction_factor"),
}
STUDY_KEYS = (
    "name", "description", "budget", "tolerance", "space", "sampler", "trials", "seed",
    "scheduler", "storage", "pareto", *SECTIONS,
)  # fmt: skip
SPACE_KEYS = (
    "name", "description", "mixing", "patch", "gamma_token", "gamma_channel", "depth",
    "seeds", "min_tokens", "max_tokens", "density",
)  # fmt: skip
STUDY_VALUES = VALUES | st.one_of(*(tables(keys) for keys in SECTIONS.values()))


@FUZZ
@given(table=tables(STUDY_KEYS, STUDY_VALUES))
def test_study_files_of_known_keys_load_or_fail_cleanly(files: Path, table: dict[str, Any]) -> None:
    path = files / "study.toml"
    path.write_bytes(toml_document(table))
    assert isinstance(clean(lambda: load_spec(path)), (StudySpec, NasWidthError))


@FUZZ
@given(table=tables(SPACE_KEYS))
@example(table={"description": dt.date(1979, 5, 27)})  # TOML dates are not JSON
def test_space_files_of_known_keys_load_or_fail_cleanly(files: Path, table: dict[str, Any]) -> None:
    path = files / "space.toml"
    path.write_bytes(toml_document(table))
    space = clean(lambda: load_space(path))
    if isinstance(space, SearchSpace):
        assert len(space.hash) == 12


JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.sampled_from(WORDS),
    st.text(max_size=12),
)
JSON_VALUES = st.recursive(JSON_SCALARS, containers, max_leaves=8)
CONFIG_KEYS = ("input_shape", "patch", "channels", "depth", "gamma_token", "gamma_channel",
               "mixing", "num_classes", "seed", "density")  # fmt: skip
SHAPES = st.lists(st.integers(min_value=-1, max_value=12), max_size=4)
CONFIGS = tables(CONFIG_KEYS, JSON_VALUES | SHAPES)
EXPORT_VALUES = (
    JSON_VALUES | CONFIGS | tables(SECTIONS["recipe"], JSON_VALUES)
    | tables(SECTIONS["dataset"], JSON_VALUES)
)  # fmt: skip


@FUZZ
@given(config=CONFIGS)
def test_configs_of_known_keys_build_or_fail_cleanly(config: dict[str, Any]) -> None:
    assert isinstance(clean(lambda: MixerConfig.from_dict(config)), (MixerConfig, NasWidthError))
    text = json.dumps(config)  # NaN and Infinity included, as Python writes them
    assert isinstance(clean(lambda: MixerConfig.from_json(text)), (MixerConfig, NasWidthError))


@FUZZ
@given(export=tables(("config", "recipe", "dataset", "budget", "provenance"), EXPORT_VALUES))
def test_exports_of_known_keys_read_or_fail_cleanly(files: Path, export: dict[str, Any]) -> None:
    path = files / "export.json"
    path.write_text(json.dumps(export))
    assert isinstance(clean(lambda: read_export(path)), (Exported, NasWidthError))


# --- shipped files with random edits ------------------------------------------------------

EXPORT = {
    "config": json.loads((ROOT / "examples" / "digits_mixer.json").read_text()),
    "recipe": {"epochs": 2, "batch_size": 64, "lr": 0.01, "warmup_epochs": 0.5},
    "dataset": {"name": "synthetic", "val_fraction": 0.2, "split_seed": 0, "options": {"n": 64}},
    "budget": {"spec": "params=5k", "tolerance": 0.02, "measured": {"params": 5012}},
    "provenance": {"study": "tiny-params-5k", "trial": 1, "shape": "rp-S16-p2x2-gt2-gc2-d1"},
}
VALID = sorted(
    [p.read_bytes() for p in (ROOT / "studies").glob("*.toml")]
    + [p.read_bytes() for p in (ROOT / "search_spaces").glob("*.toml")]
    + [(ROOT / "examples" / "digits_mixer.json").read_bytes(), json.dumps(EXPORT).encode()]
)


TOKENS = (b"[", b"]", b"{", b'"', b"=", b"\n", b",", b"0", b"-1", b"1e999", b"nan", b"true")


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid file with one to four edits: a span deleted, bytes inserted or a byte replaced,
    a line repeated or two lines swapped."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(data)))
        edit = draw(st.sampled_from(("delete", "insert", "replace", "repeat", "swap")))
        if edit == "delete":
            del data[at : at + draw(st.integers(min_value=1, max_value=20))]
        elif edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from(TOKENS))
        elif edit == "replace":
            data[min(at, len(data) - 1) : at + 1] = bytes([draw(st.integers(0, 255))])
        else:
            lines = bytes(data).splitlines(keepends=True) or [b""]
            i, j = (draw(st.integers(min_value=0, max_value=len(lines) - 1)) for _ in range(2))
            if edit == "repeat":
                lines.insert(i, lines[i])
            else:
                lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"".join(lines))
    return bytes(data)


@FUZZ
@given(data=mutated())
def test_edited_shipped_files_are_data_or_one_clean_error(files: Path, data: bytes) -> None:
    read_all(files, data)


@FUZZ
@given(name=st.text(alphabet=st.characters(blacklist_characters="/\\.:"), max_size=20))
@example(name="\x00")
def test_any_name_is_a_shipped_file_or_one_clean_error(name: str) -> None:
    assert isinstance(clean(lambda: load_spec(name)), (StudySpec, NasWidthError))
    assert isinstance(clean(lambda: load_space(name)), (SearchSpace, NasWidthError))
