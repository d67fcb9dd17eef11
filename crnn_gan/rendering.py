"""Listening: MIDI files rendered to audio with the ``fluidsynth`` program.

The General MIDI soundfont is looked up in `SOUNDFONTS` (Debian's and Fedora's places)
unless one is given. Nothing here raises for a missing program or soundfont: callers get a
message that names what is missing and how to install it (`FLUIDSYNTH_INSTALL`).
Used by ``evaluate.py --wav`` (`render_wavs`) and by ``generate.py --wav/--ogg``
(`crnn_gan.generation.render_audio`, which shares `find_soundfont`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
FLUIDSYNTH_INSTALL = "sudo apt-get install fluidsynth fluid-soundfont-gm"


def find_soundfont(soundfont: str | None = None) -> str | None:
    """`soundfont` if that file exists, else None; without one, the first of `SOUNDFONTS`
    that exists (or None)."""
    if soundfont:
        return soundfont if os.path.isfile(soundfont) else None
    return next((path for path in SOUNDFONTS if os.path.isfile(path)), None)


def render_wavs(midi_paths: Sequence[str], out_dir: str, soundfont: str | None = None
                ) -> tuple[list[str], str | None]:
    """Renders MIDI files to WAV (44.1 kHz, gain 0.8) in the local folder `out_dir`, one
    ``NAME.wav`` per ``NAME.mid``.

    Returns:
        (written WAV paths, None), or ([], a message saying what is missing and how to
        install it), or (what was written, a message naming the files fluidsynth failed
        on). Never raises for a missing synthesiser or soundfont.
    """
    binary = shutil.which("fluidsynth")
    font = find_soundfont(soundfont)
    missing = []
    if binary is None:
        missing.append("the fluidsynth program (not on PATH)")
    if font is None:
        missing.append(f"a General MIDI soundfont ({soundfont} does not exist)" if soundfont
                       else f"a General MIDI soundfont (looked for {', '.join(SOUNDFONTS)})")
    if missing:
        return [], (f"--wav: missing {' and '.join(missing)}; install with: "
                    f"{FLUIDSYNTH_INSTALL} (or pass --soundfont=FILE.sf2)")
    os.makedirs(out_dir, exist_ok=True)
    written, failures = [], []
    for midi in midi_paths:
        wav = os.path.join(out_dir, os.path.splitext(os.path.basename(midi))[0] + ".wav")
        result = subprocess.run([binary, "-ni", "-g", "0.8", "-r", "44100", "-F", wav, font,
                                 midi], capture_output=True, text=True, timeout=300)
        if result.returncode == 0 and os.path.isfile(wav):
            written.append(wav)
        else:
            failures.append(f"{os.path.basename(midi)}: {result.stderr.strip()[:200]}")
    return written, ("fluidsynth failed on " + "; ".join(failures)) if failures else None
