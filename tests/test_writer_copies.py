"""The stand-alone scripts' MIDI writers are byte-for-byte copies of tfds_midi.codec's.

`export/generate_tflite.py` and `export/generate_savedmodel.py` must stay single files (apps
copy them), so each holds its own copy of `codec.unpack_tones` (`steps_to_tones`) and of
`codec.tones_to_midi` (`tones_to_midi`). These tests compare the bytes that the copies write
with the codec's for generated model outputs, so that a change of the codec's rules that is
not made in the copies too fails here.
"""

from __future__ import annotations

import importlib.util
import io
import pathlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfds_midi import codec

EXPORT_DIR = pathlib.Path(__file__).resolve().parents[1] / "export"
SCRIPT_NAMES = ("generate_tflite", "generate_savedmodel")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_{name}_copy", EXPORT_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scripts():
    return {name: _load(name) for name in SCRIPT_NAMES}


def _script_bytes(module, tones) -> bytes:
    buffer = io.BytesIO()
    module.tones_to_midi(tones).save(file=buffer)
    return buffer.getvalue()


def _assert_same_as_codec(scripts, steps: np.ndarray) -> None:
    """``steps [m, tones_per_step, 4]`` (raw model output) -> the same tones and bytes."""
    expected_tones = codec.unpack_tones(steps.reshape(len(steps), 4 * steps.shape[1]))
    expected = codec.tones_to_midi_bytes(expected_tones)
    for name, module in scripts.items():
        tones = module.steps_to_tones(steps)
        np.testing.assert_array_equal(tones, expected_tones, err_msg=name)
        assert _script_bytes(module, tones) == expected, name


def _f32(low, high):
    return st.floats(low, high, width=32, allow_nan=False, allow_infinity=False)


@st.composite
def model_outputs(draw, max_steps=60):
    """Raw model outputs ``[m, tones_per_step, 4]`` float32, as a generator emits them.

    Many same-pitch notes that overlap, nest, touch or start together (few distinct
    frequencies, deltas often 0 or tiny, short and long lengths), fractional and negative
    ticks, sub-audio and negative frequencies, velocities around the presence threshold and
    beyond 127.
    """
    tones_per_step = draw(st.sampled_from((1, 3)))
    m = draw(st.integers(0, max_steps))
    n = m * tones_per_step
    pool = draw(st.lists(_f32(-50.0, 5000.0), min_size=1, max_size=3))
    column = {
        "length": st.one_of(st.integers(0, 4).map(float), _f32(-20.0, 3000.0)),
        "frequency": st.one_of(st.sampled_from(pool), _f32(-100.0, 5000.0)),
        "velocity": st.one_of(_f32(0.0, 1.0), _f32(-10.0, 200.0), st.just(64.0)),
        "delta": st.one_of(st.just(0.0), st.integers(0, 3).map(float), _f32(-20.0, 800.0)),
    }
    rows = [[draw(column[name]) for name in ("length", "frequency", "velocity", "delta")]
            for _ in range(n)]
    return np.asarray(rows, np.float32).reshape(m, tones_per_step, 4)


@settings(max_examples=200, deadline=None)
@given(model_outputs())
def test_scripts_write_the_same_bytes_as_the_codec(scripts, steps):
    _assert_same_as_codec(scripts, steps)


def test_scripts_write_the_same_bytes_for_many_nested_same_pitch_notes(scripts):
    """40 notes of one pitch at once, in every length order: beyond the writer's 15
    channels, where the fallback rule decides (the codec's found case included)."""
    rng = np.random.default_rng(0)
    hz = float(codec.pitch_to_hz(58))
    lengths = [np.arange(40, 0, -1), np.arange(40), rng.integers(0, 5, 40),
               np.r_[np.zeros(10), np.full(15, 2), [0] * 15]]
    for length in lengths:
        tones = np.stack([length, np.full(40, hz), np.full(40, 80.0),
                          np.r_[np.zeros(39), 1.0]], axis=1).astype(np.float32)
        _assert_same_as_codec(scripts, tones[:, None, :])


def test_both_scripts_hold_one_text_of_the_copies():
    """The copies (reader, packer, unpacker, writer: from the "MIDI -> tones" marker to
    ``main``) are the same text in both scripts, so the tests above cover both alike and the
    `duplicates` tool's pair of the two files is this deliberate copy."""
    def copies(name):
        text = (EXPORT_DIR / f"{name}.py").read_text()
        start = text.index("# --- MIDI -> tones, for --primer.")
        return text[start:text.index("\ndef main(", start)]

    first, second = (copies(name) for name in SCRIPT_NAMES)
    assert "def midi_to_tones(" in first and "def tones_to_midi(" in first
    assert first == second


def test_scripts_refuse_the_step_count_generate_py_refuses():
    """The stand-alone scripts keep generate.py's limit on steps as their own constant."""
    from crnn_gan.generation import request

    for name in ("generate_tflite", "generate_savedmodel"):
        text = (EXPORT_DIR / f"{name}.py").read_text()
        assert f"MAX_STEPS = {request.MAX_STEPS:_}\n" in text, name
