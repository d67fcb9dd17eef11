"""What the absl entry points share: an expected failure is one line and exit status 2.

`train.py`, `generate.py`, `evaluate.py`, `python -m export`, `python -m tfds_midi` and the
benchmarks run ``app.run(main, flags_parser=cli.parse_flags)`` and answer bad input with
``return cli.fail(message)``; unexpected errors keep their traceback. This module imports
absl alone, so an entry point that starts without TensorFlow stays so.
"""

from __future__ import annotations

import sys

from absl import flags

BAD_INPUT = 2  # exit status of an expected failure (bad flag, file or folder)
#: Refused above these, by every entry point that generates or measures songs (generate.py,
#: evaluate.py, python -m export's --tflite_steps): 100,000 steps are ~3.5 hours of music at
#: a typical tempo, and the tones of a song are held in memory (and measured) at once.
MAX_STEPS = 100_000
MAX_SONGS = 1000
#: The largest --seed of train.py and generate.py (Keras' and numpy's seeds are uint32).
MAX_SEED = 2**32 - 1


def fail(message: str) -> int:
    """Prints ``error: <message>`` to stderr and returns `BAD_INPUT` (for `main`)."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    return BAD_INPUT


#: absl's help flags: each prints the usage and ends the program before `main`.
HELP_FLAGS = ("-?", "--help", "--helpshort", "--helpfull", "--helpxml")


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing for `app.run`, but a bad flag is one line and exit status 2
    (absl prints its usage and exits with 1), and help asked for exits with 0 (absl: 1)."""
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        sys.exit(fail(f"{error} (--helpshort lists the flags)"))
    except SystemExit as done:
        if done.code == 1 and any(arg in HELP_FLAGS for arg in argv[1:]):
            sys.exit(0)
        raise
