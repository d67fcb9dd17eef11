"""What to evaluate: `Request`, whose fields are also evaluate.py's flags.

Each field carries its flag (`Flag`: the absl ``DEFINE_<kind>``, the help text, and the
flag's name where it differs from the field's), so evaluate.py defines its flags from this
one list, as train.py does from `crnn_gan.config.Config`. This module imports nothing
heavy: evaluate.py reads it before parsing its flags.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence


@dataclasses.dataclass(frozen=True)
class Flag:
    """evaluate.py's flag of a `Request` field.

    Attributes:
        kind: the absl definer, ``flags.DEFINE_<kind>`` ("string", "integer", "bool",
            "enum", "multi_string").
        help: the flag's help text.
        name: the flag's name, when not the field's.
        choices: the values of an "enum" flag.
    """

    kind: str
    help: str
    name: str | None = None
    choices: tuple[str, ...] = ()


def _option(default, kind: str, help: str, **flag):
    return dataclasses.field(default=default, metadata={"flag": Flag(kind, help, **flag)})


@dataclasses.dataclass
class Request:
    """What to evaluate; each field is the evaluate.py flag named in its metadata."""

    output_dir: str = dataclasses.field(metadata={"flag": Flag(
        "string", "Where JSON, CSV and PNGs go (required).")})
    real: str | None = _option(
        None, "string", "Real music from TFDS: crnn_gan_midi/<config>:<split>.")
    midi_dir: str | None = _option(
        None, "string", "Real music from a folder of MIDI files (recursive).")
    data_dir: str | None = _option(
        None, "string", "TFDS data dir for --real (default: TFDS's).")
    samples: Sequence[str] = _option(
        (), "multi_string", "Folder(s) of generated MIDI files.")
    saved_model: str | None = _option(
        None, "string",
        "Exported generator (DIR/saved_model or DIR) to sample --num_samples from.")
    num_samples: int = _option(20, "integer", "Songs generated with --saved_model.")
    steps: int | None = _option(
        None, "integer", "Steps per song generated with --saved_model (default: --window).")
    model_dirs: Sequence[str] = _option(
        (), "multi_string", "train.py run folder(s); repeat the flag or separate with commas.",
        name="model_dir")
    window: int | None = _option(
        None, "integer", "Real music is also measured over random windows of this many tones "
        "(default: the runs' sample_steps, else --steps, else 200).")
    real_windows: int = _option(500, "integer", "Number of random real windows.")
    # The choices are crnn_gan.metrics.COMPAT_MODES (a test checks), written out here so that
    # evaluate.py defines its flags without importing the statistics.
    compat: str | None = _option(
        None, "enum", "Use the original code's formulas (see crnn_gan/metrics.py).",
        choices=("mogren2016",))
    repetition_length: int = _option(
        3, "integer", "Pattern length of the repetitions statistic.")
    figure: str | None = _option(
        None, "string", "Path of the Figure-3 PNG (default: output_dir/figure3.png).")
    pianoroll: bool = _option(
        False, "bool", "Write pianoroll.png of generated and real excerpts.")
    excerpts: int = _option(
        3, "integer", "Excerpts per column of the piano roll / WAV rendering.")
    wav: bool = _option(False, "bool", "Render the excerpts to WAV with fluidsynth.")
    soundfont: str | None = _option(
        None, "string", "General MIDI .sf2 for --wav (default: FluidR3_GM).")
    seed: int = _option(0, "integer", "Seeds real windows and SavedModel noise.")


def flags() -> list[tuple[str, Flag, object]]:
    """``(field name, Flag, flag default)`` of every `Request` field, in field order; the
    default of a flag without one in `Request` is None, a tuple default becomes a list."""
    out = []
    for field in dataclasses.fields(Request):
        default = None if field.default is dataclasses.MISSING else field.default
        out.append((field.name, field.metadata["flag"],
                    list(default) if isinstance(default, tuple) else default))
    return out


def split_commas(values: Sequence[str]) -> list[str]:
    """Repeated flag values, each possibly comma-separated, as one list (empty parts
    dropped): ``["a,b", "c"]`` -> ``["a", "b", "c"]``."""
    return [item for value in values for item in value.split(",") if item]
