"""`generate`: runs a `Request`, writes its songs as MIDI files (and audio,
`crnn_gan.rendering`) and says in one line what each song is.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import tensorflow as tf

from crnn_gan import gfile, metrics, rendering
from crnn_gan.generation import sampling
from crnn_gan.generation.models import load_model
from crnn_gan.generation.request import (
    DEFAULT_STEPS,
    PROGRESS_MIN_STEPS,
    GenerationError,
    Request,
)
from tfds_midi import codec

_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(pitch: int) -> str:
    """MIDI pitch -> name with octave (60 -> C4)."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def song_seconds(tones: np.ndarray) -> float:
    """Seconds from the start to the end of the last tone, at the files' 120 bpm."""
    if not len(tones):
        return 0.0
    start = codec.tone_start_ticks(tones)
    return float((start + tones[:, codec.LENGTH]).max() / sampling.TICKS_PER_SECOND)


def summary_line(tones: np.ndarray) -> str:
    """Tones, length in seconds, pitch range and the paper's six statistics, in one line."""
    if not len(tones):
        return "0 tones"
    pitch = codec.hz_to_pitch(tones[:, codec.FREQUENCY])
    s = metrics.all_statistics(tones)
    return (f"{len(tones)} tones, {song_seconds(tones):.1f} s, pitch "
            f"{pitch_name(int(pitch.min()))}-{pitch_name(int(pitch.max()))}; polyphony "
            f"{s['polyphony']:.2f}, scale consistency {s['scale_consistency']:.2f} "
            f"({s['scale']}), repetitions {s['repetitions']}, tone span {s['tone_span']}, "
            f"unique tones {s['unique_tones']}, intensity span {s['intensity_span']:.0f}")


def generate(request: Request, log: Callable[[str], None] = print) -> list[str]:
    """Runs a request: writes ``song_NNN.mid`` (and audio) into `request.output_dir`.

    Returns:
        The MIDI files written.

    Raises:
        GenerationError, codec.MidiFormatError: bad input (nothing written).
    """
    request.check()
    primer_tones = None
    # The primer is read before the model loads: a bad primer fails fast.
    if request.primer_midi:
        primer_tones, primer_name = codec.midi_to_tones(request.primer_midi), request.primer_midi
    elif request.primer_from:
        primer_tones, source = sampling.tfds_primer(request.primer_from, request.primer_index,
                                           request.data_dir)
        primer_name = f"{request.primer_from}[{request.primer_index}] ({source})"
    model = load_model(request.model_dir, request.export, request.checkpoint,
                       request.pretrained)
    primer = None
    if primer_tones is not None:
        primer = sampling.primer_steps(primer_tones, model.tones_per_step,
                                       request.primer_max_tones)
    log(f"model: {model.description} ({model.tones_per_step} tone(s) a step, "
        f"{model.num_layers} x {model.units} units)")
    if request.seconds is not None:
        steps, ticks = sampling.steps_for_seconds(model, request.seconds)
        log(f"--seconds={request.seconds:g}: {steps} steps at the model's typical tempo, "
            f"{ticks:.1f} ticks ({ticks / sampling.TICKS_PER_SECOND:.3f} s at 120 bpm) a step "
            f"on average over {sampling.PROBE_SONGS} x {sampling.PROBE_STEPS} probe steps")
    else:
        steps = request.steps or DEFAULT_STEPS
    if primer is not None:
        used = min(len(primer_tones), request.primer_max_tones)
        log(f"primer {primer_name}: {len(primer_tones)} tones"
            + (f", the last {used} prime the model" if used < len(primer_tones) else "")
            + f" ({len(primer)} steps)")
    problem = gfile.make_folder(request.output_dir, "--output_dir")
    if problem:
        raise GenerationError(problem)
    total = request.num_songs * steps
    show = request.progress if request.progress is not None else total >= PROGRESS_MIN_STEPS
    progress = sampling.Progress(total) if show else None
    written = []
    for first in range(0, request.num_songs, sampling.SONG_BATCH):
        seeds = [request.seed + k for k in range(first, min(first + sampling.SONG_BATCH,
                                                            request.num_songs))]
        raw = sampling.generate_steps(model, seeds, steps, primer, progress)
        if not np.isfinite(raw).all():
            raise GenerationError(f"{model.description} produced NaN or Inf: it diverged")
        for k, song in zip(range(first, first + len(seeds)), raw):
            tones = codec.unpack_tones(song.reshape(steps, -1))
            if primer_tones is not None and not request.primer_only_continuation:
                tones = np.concatenate([primer_tones, tones])
            path = os.path.join(request.output_dir, f"song_{k:03d}.mid")
            try:
                gfile.write_bytes(path, codec.tones_to_midi_bytes(tones))
            except (OSError, tf.errors.OpError) as error:
                raise GenerationError(f"--output_dir={request.output_dir}: cannot write "
                                      f"{path}: {getattr(error, 'message', error)}") from None
            written.append(path)
            try:
                heard = codec.midi_to_tones(path)  # what a listener gets: rounded tones
            except codec.MidiFormatError:
                heard = np.zeros((0, 4), np.float32)  # every tone silent
            log(f"wrote {path}: {summary_line(heard)}")
    for kind in ("wav", "ogg"):
        if getattr(request, kind):
            audio, message = rendering.render_audio(written, kind, request.soundfont)
            for path in audio:
                log(f"wrote {path}")
            if message:
                log(message)
    return written
