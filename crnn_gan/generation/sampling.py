"""Sampling the model: primers, ``--seconds`` as steps, and the raw steps of a batch of songs.

Noise: song k of a request draws ``numpy.random.default_rng(seed + k).uniform`` step after
step (the stand-alone scripts' convention: song 0 of ``--seed=S`` uses their ``--seed S``
numbers), so the same seed and flags give the same files. Priming uses no random numbers
(noise 0.5), so the same primer and seed always give the same continuation.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence

import numpy as np

from crnn_gan.generation.request import DEFAULT_PRIMER_MAX_TONES, MAX_STEPS, GenerationError
from tfds_midi import codec

#: Steps generated per call of the model; the progress bar moves once per chunk.
CHUNK_STEPS = 500
#: Songs generated side by side (one batch).
SONG_BATCH = 16
#: The MIDI files' tempo (the codec's 120 bpm) in ticks per second: 384 * 120 / 60.
TICKS_PER_SECOND = codec.TICKS_PER_QUARTER * codec.DEFAULT_BPM / 60.0
#: `--seconds`: the model's typical tempo is measured on this many songs of this many steps
#: from zero state, noise seeds PROBE_SEED + k (the same for every --seed).
PROBE_SONGS, PROBE_STEPS, PROBE_SEED = 4, 256, 0


def primer_steps(tones: np.ndarray, tones_per_step: int,
                 max_tones: int = DEFAULT_PRIMER_MAX_TONES) -> np.ndarray:
    """The priming steps ``[m, tones_per_step, 4]`` of a primer's tones ``[n, 4]`` (raw, as
    `codec.midi_to_tones` reads them): its last `max_tones` tones, packed with
    `codec.pack_tones` for C-RNN-GAN-3 (a chord's tones share a step)."""
    if max_tones < 1:
        raise GenerationError(f"--primer_max_tones must be >= 1, got {max_tones}")
    steps = codec.pack_tones(np.asarray(tones, np.float32)[-max_tones:], tones_per_step)
    return steps.reshape(len(steps), tones_per_step, 4)


def tfds_primer(spec: str, index: int = 0, data_dir: str | None = None
                ) -> tuple[np.ndarray, str]:
    """Song `index` of a prepared split, ``crnn_gan_midi/<config>:<split>``, as a primer:
    ``(tones [n, 4], its source file name)``.

    Raises:
        GenerationError: a bad spec, an unknown config, a split that is not prepared or
            does not exist, or an index past its last song.
    """
    from tfds_midi import prepare

    flag = f"--primer_from={spec}"
    name, _, split = spec.partition(":")
    if not name.startswith("crnn_gan_midi/") or not split:
        raise GenerationError(f"--primer_from must look like crnn_gan_midi/<config>:<split> "
                              f"(e.g. crnn_gan_midi/default:test), got {spec!r}")
    try:
        builder = prepare.get_builder(name, data_dir)
    except prepare.PrepareError as error:
        raise GenerationError(f"{flag}: {error}") from None
    if not builder.is_prepared():
        raise GenerationError(
            f"{flag}: {name} is not prepared in {data_dir or 'the default TFDS data dir'}: "
            f"python -m tfds_midi --config={name.partition('/')[2]}"
            + (f" --data_dir={data_dir}" if data_dir else "") + ", or give its --data_dir")
    splits = builder.info.splits
    if split not in splits:
        raise GenerationError(f"{flag}: {name} has no split {split!r} (it has "
                              f"{', '.join(sorted(splits))})")
    count = splits[split].num_examples
    if not 0 <= index < count:
        raise GenerationError(f"--primer_index={index}: {spec} has {count} songs, numbered "
                              f"0 to {count - 1}")
    example = next(builder.as_dataset(split=f"{split}[{index}:{index + 1}]")
                   .as_numpy_iterator())
    source = example.get("source", b"")
    return (np.asarray(example["tones"], np.float32),
            source.decode() if isinstance(source, bytes) else str(source))


def _advance_ticks(steps: np.ndarray) -> float:
    """Ticks a song of raw steps ``[T, tones_per_step, 4]`` moves on, as the MIDI writer
    places its tones (present tones, absent slots' deltas carried, rounded, >= 0)."""
    tones = codec.unpack_tones(steps.reshape(len(steps), -1))
    return float(np.maximum(np.rint(tones[:, codec.DELTA]), 0).sum()) if len(tones) else 0.0


def typical_ticks_per_step(model) -> float:
    """The model's typical tempo: the mean ticks its songs advance per step, measured on
    `PROBE_SONGS` songs of `PROBE_STEPS` steps from zero state (seeds `PROBE_SEED` + k)."""
    noise = np.stack([np.random.default_rng(PROBE_SEED + k).uniform(
        size=(PROBE_STEPS, model.num_features)) for k in range(PROBE_SONGS)]).astype(np.float32)
    raw, _ = model.run(noise, model.zero_state(PROBE_SONGS))
    return float(np.mean([_advance_ticks(song) for song in raw])) / PROBE_STEPS


def steps_for_seconds(model, seconds: float) -> tuple[int, float]:
    """``(steps, ticks_per_step)``: ``ceil(seconds * TICKS_PER_SECOND / ticks_per_step)`` at
    the model's typical tempo (`typical_ticks_per_step`; 768 ticks a second at 120 bpm).

    Raises:
        GenerationError: a model whose tones do not advance, or more than `MAX_STEPS`.
    """
    ticks = typical_ticks_per_step(model)
    if not ticks > 1e-6:
        raise GenerationError(f"--seconds: the model's songs do not move on in time ({ticks:.3g} "
                              "ticks a step on average), so seconds cannot become steps: give "
                              "--steps")
    steps = math.ceil(seconds * TICKS_PER_SECOND / ticks)
    if steps > MAX_STEPS:
        raise GenerationError(f"--seconds={seconds:g} needs {steps} steps at the model's tempo "
                              f"({ticks:.1f} ticks a step), above the limit of {MAX_STEPS} steps")
    return steps, ticks


class Progress:
    """A one-line progress bar on `stream` (redrawn with a carriage return)."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stderr
        self.begin = time.perf_counter()

    def update(self, steps: int) -> None:
        self.done += steps
        filled = round(self.width * self.done / self.total)
        elapsed = time.perf_counter() - self.begin
        self.stream.write(f"\rgenerating [{'#' * filled}{'.' * (self.width - filled)}] "
                          f"{self.done}/{self.total} steps, {elapsed:.1f} s")
        if self.done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


def generate_steps(model, seeds: Sequence[int], steps: int, primer=None,
                   progress: Progress | None = None) -> np.ndarray:
    """Songs of `steps` steps side by side, one per seed: raw ``[len(seeds), steps, tps, 4]``.

    Args:
        model: a `KerasModel` or `ExportModel`.
        seeds: song k's noise is ``default_rng(seeds[k]).uniform``, step after step.
        steps: steps per song.
        primer: raw priming steps ``[m, tones_per_step, 4]`` (`primer_steps`) that every song
            continues, or None: songs start from zero state.
        progress: advanced by the steps of each chunk.
    """
    rngs = [np.random.default_rng(seed) for seed in seeds]
    batch = len(rngs)
    state = (model.zero_state(batch) if primer is None
             else model.prime(np.repeat(np.asarray(primer, np.float32)[None], batch, axis=0)))
    chunks = []
    for start in range(0, steps, CHUNK_STEPS):
        length = min(CHUNK_STEPS, steps - start)
        noise = np.stack([rng.uniform(size=(length, model.num_features)) for rng in rngs])
        raw, state = model.run(noise.astype(np.float32), state)
        chunks.append(raw)
        if progress is not None:
            progress.update(batch * length)
    return np.concatenate(chunks, axis=1)
