"""Listening: MIDI files rendered to audio with the ``fluidsynth`` program.

The one home of FluidSynth rendering: ``evaluate.py --wav`` (its excerpts), ``generate.py
--wav/--ogg`` (its songs) and ``scripts/ship_pretrained.py`` (the samples) call
`render_audio`. The General MIDI soundfont is looked up in `SOUNDFONTS` (Debian's and
Fedora's places) unless one is given. Nothing here raises for a missing program or
soundfont: callers get a message that names what is missing and how to install it
(`FLUIDSYNTH_INSTALL`).
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
#: Audio kinds -> FluidSynth's file type (``-T``): WAV, and Ogg Vorbis through libsndfile.
KINDS = {"wav": "wav", "ogg": "oga"}
#: Seconds FluidSynth may take over one file.
TIMEOUT_S = 600


#: The RIFF forms FluidSynth loads as instruments: SoundFont 2/3 (``sfbk``) and DLS.
SOUNDFONT_FORMS = (b"sfbk", b"DLS ")


def soundfont_problem(soundfont: str) -> str | None:
    """Why the file `soundfont` cannot serve as a soundfont, in words, or None when it can:
    it does not exist, is a folder, cannot be read, or is not a RIFF file of a
    `SOUNDFONT_FORMS` form (FluidSynth given such a file writes silence and exits 0)."""
    if not os.path.exists(soundfont):
        return "does not exist"
    if not os.path.isfile(soundfont):
        return "is not a file"
    try:
        with open(soundfont, "rb") as f:
            header = f.read(12)
    except OSError as error:
        return f"cannot be read ({error.strerror})"
    if header[:4] != b"RIFF" or header[8:12] not in SOUNDFONT_FORMS:
        return "is not a soundfont (an .sf2, .sf3 or .dls file)"
    return None


def soundfont_flag_problem(soundfont: str | None, rendering: bool, needs: str) -> str | None:
    """The bad-input message for a ``--soundfont`` flag, or None: given without the flags
    that render (`rendering` False; `needs` names them, e.g. "--wav or --ogg"), or a file
    with a `soundfont_problem`. One rule for generate.py and evaluate.py."""
    if soundfont is None:
        return None
    if not rendering:
        return f"--soundfont needs {needs}"
    problem = soundfont_problem(soundfont)
    return f"--soundfont={soundfont} {problem}" if problem else None


def find_soundfont(soundfont: str | None = None) -> str | None:
    """`soundfont` if it is a usable soundfont (`soundfont_problem`), else None; without
    one, the first of `SOUNDFONTS` that exists (or None)."""
    if soundfont:
        return None if soundfont_problem(soundfont) else soundfont
    return next((path for path in SOUNDFONTS if os.path.isfile(path)), None)


def render_audio(midi_paths: Sequence[str], kind: str = "wav", soundfont: str | None = None,
                 out_dir: str | None = None) -> tuple[list[str], str | None]:
    """Renders MIDI files to `kind` audio (44.1 kHz, gain 0.8) with FluidSynth.

    Args:
        midi_paths: local ``NAME.mid`` files.
        kind: "wav" or "ogg" (a key of `KINDS`); also names the flag in messages.
        soundfont: a General MIDI ``.sf2``; None: the first of `SOUNDFONTS` there is.
        out_dir: the local folder of the ``NAME.<kind>`` files (made if missing); None:
            beside each MIDI file.

    Returns:
        (written files, None), or ([], a message naming what is missing, the program or a
        soundfont, and the Debian packages to install), or (what was written, a message
        naming the files FluidSynth failed on). Messages start with ``--<kind>:``. Never
        raises for these.
    """
    binary = shutil.which("fluidsynth")
    font = find_soundfont(soundfont)
    missing = []
    if binary is None:
        missing.append("the fluidsynth program (not on PATH)")
    if font is None:
        missing.append(f"a General MIDI soundfont ({soundfont} {soundfont_problem(soundfont)})"
                       if soundfont else
                       f"a General MIDI soundfont (looked for {', '.join(SOUNDFONTS)})")
    if missing:
        return [], (f"--{kind}: missing {' and '.join(missing)}, so no audio was rendered; "
                    f"install the Debian packages fluidsynth and fluid-soundfont-gm: "
                    f"{FLUIDSYNTH_INSTALL}"
                    + (" (or give --soundfont=FILE.sf2)" if font is None and not soundfont
                       else ""))
    if out_dir is not None:
        os.makedirs(out_dir, exist_ok=True)
    written, failures = [], []
    for midi in midi_paths:
        stem = os.path.splitext(midi if out_dir is None else
                                os.path.join(out_dir, os.path.basename(midi)))[0]
        out = f"{stem}.{kind}"
        result = subprocess.run(
            [binary, "-ni", "-g", "0.8", "-r", "44100", "-T", KINDS[kind], "-F", out, font,
             midi], capture_output=True, text=True, timeout=TIMEOUT_S)
        if result.returncode == 0 and os.path.isfile(out) and os.path.getsize(out) > 0:
            written.append(out)
        else:
            failures.append(f"{os.path.basename(midi)}: "
                            f"{(result.stderr or result.stdout).strip()[:200]}")
    return written, (f"--{kind}: fluidsynth failed on " + "; ".join(failures)
                     if failures else None)
