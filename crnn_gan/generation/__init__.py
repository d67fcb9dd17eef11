"""Generating music with a trained generator: what `generate.py` runs.

One module per job; this file re-exports their public names, so that ``from crnn_gan import
generation`` and ``generation.generate`` work (its users: generate.py,
``benchmarks/bench_generate.py``, ``tests/test_generate.py``):

* `request`: `Request` (what to generate; its fields are generate.py's flags), its limits and
  `GenerationError`, the one exception for bad input.
* `models`: the model, a train.py run (`KerasModel`) or an export's SavedModel
  (`ExportModel`), behind one interface, and `load_model`, which picks one from the flags.
* `sampling`: primers (`primer_steps`, `tfds_primer`), ``--seconds`` as steps at the model's
  typical tempo (`steps_for_seconds`), and the raw steps of a batch of songs
  (`generate_steps`, seeded noise, in chunks, with a `Progress` bar).
* `orchestration`: `generate`, which runs a request and writes the songs as MIDI files, with
  one summary line each (`summary_line`) and audio (`crnn_gan.rendering`).
"""

from crnn_gan.generation.models import (
    CHECKPOINTS,
    STATE_NAMES,
    ExportModel,
    KerasModel,
    load_model,
    load_run,
)
from crnn_gan.generation.orchestration import generate, pitch_name, song_seconds, summary_line
from crnn_gan.generation.request import (
    DEFAULT_PRIMER_MAX_TONES,
    DEFAULT_STEPS,
    MAX_SONGS,
    MAX_STEPS,
    PRETRAINED,
    PROGRESS_MIN_STEPS,
    GenerationError,
    Request,
)
from crnn_gan.generation.sampling import (
    CHUNK_STEPS,
    PROBE_SEED,
    PROBE_SONGS,
    PROBE_STEPS,
    SONG_BATCH,
    TICKS_PER_SECOND,
    Progress,
    generate_steps,
    primer_steps,
    steps_for_seconds,
    tfds_primer,
    typical_ticks_per_step,
)

__all__ = [
    "CHECKPOINTS",
    "CHUNK_STEPS",
    "DEFAULT_PRIMER_MAX_TONES",
    "DEFAULT_STEPS",
    "MAX_SONGS",
    "MAX_STEPS",
    "PRETRAINED",
    "PROBE_SEED",
    "PROBE_SONGS",
    "PROBE_STEPS",
    "PROGRESS_MIN_STEPS",
    "SONG_BATCH",
    "STATE_NAMES",
    "TICKS_PER_SECOND",
    "ExportModel",
    "GenerationError",
    "KerasModel",
    "Progress",
    "Request",
    "generate",
    "generate_steps",
    "load_model",
    "load_run",
    "pitch_name",
    "primer_steps",
    "song_seconds",
    "steps_for_seconds",
    "summary_line",
    "tfds_primer",
    "typical_ticks_per_step",
]
