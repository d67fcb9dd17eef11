"""What to generate: `Request`, whose fields are generate.py's flags, its limits, and
`GenerationError`, the one exception for bad input. Imports nothing heavy (TensorFlow only
inside `Request.check`).
"""

from __future__ import annotations

import dataclasses
import math
import pathlib

from crnn_gan.cli import MAX_SONGS, MAX_STEPS  # the limits of every entry point

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: The generator the repository ships (an export), used when no model is given.
PRETRAINED = ROOT / "pretrained" / "gan"
DEFAULT_STEPS = 200
DEFAULT_PRIMER_MAX_TONES = 256
#: A progress bar is drawn when a request generates at least this many steps in all.
PROGRESS_MIN_STEPS = 2000


class GenerationError(Exception):
    """Bad input (a model, a primer, a count); the message names it and what to do."""


@dataclasses.dataclass
class Request:
    """What to generate (see generate.py's flags)."""

    output_dir: str
    model_dir: str | None = None
    export: str | None = None
    checkpoint: str = "final"
    num_songs: int = 1
    steps: int | None = None
    seconds: float | None = None
    seed: int = 0
    primer_midi: str | None = None
    primer_from: str | None = None
    primer_index: int = 0
    data_dir: str | None = None
    primer_max_tones: int = DEFAULT_PRIMER_MAX_TONES
    primer_only_continuation: bool = False
    wav: bool = False
    ogg: bool = False
    soundfont: str | None = None
    pretrained: str = str(PRETRAINED)
    progress: bool | None = None  # None: when the request is long (`PROGRESS_MIN_STEPS`)

    def check(self) -> None:
        """Raises `GenerationError` for counts out of range, a flag that needs another, a
        --soundfont that is not one, an --output_dir that is a file (before anything is
        loaded)."""
        if self.steps is not None and self.seconds is not None:
            raise GenerationError("give --steps or --seconds, not both")
        if self.steps is not None and not 1 <= self.steps <= MAX_STEPS:
            raise GenerationError(f"--steps must be >= 1 and at most {MAX_STEPS} (the limit), "
                                  f"got {self.steps}")
        if self.seconds is not None and not (self.seconds > 0 and math.isfinite(self.seconds)):
            raise GenerationError(f"--seconds must be > 0, got {self.seconds:g}")
        if not 1 <= self.num_songs <= MAX_SONGS:
            raise GenerationError(f"--num_songs must be >= 1 and at most {MAX_SONGS}, got "
                                  f"{self.num_songs}")
        if self.seed < 0:
            raise GenerationError(f"--seed must be >= 0, got {self.seed}")
        if self.primer_max_tones < 1:
            raise GenerationError(f"--primer_max_tones must be >= 1, got "
                                  f"{self.primer_max_tones}")
        if self.primer_midi and self.primer_from:
            raise GenerationError("give --primer_midi or --primer_from, not both")
        if self.primer_only_continuation and not (self.primer_midi or self.primer_from):
            raise GenerationError("--primer_only_continuation needs --primer_midi or "
                                  "--primer_from")
        from crnn_gan import rendering

        problem = rendering.soundfont_flag_problem(self.soundfont, self.wav or self.ogg,
                                                   "--wav or --ogg")
        if problem:
            raise GenerationError(problem)
        from crnn_gan import gfile

        problem = gfile.file_in_place_of_folder(self.output_dir, "--output_dir")
        if problem:
            raise GenerationError(problem)
