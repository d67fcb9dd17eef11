"""Synthetic MIDI corpora for the tests, written in code with the codec (no binary blobs)."""

from __future__ import annotations

import pathlib

import numpy as np

from tfds_midi import codec
from tfds_midi.crnn_gan_midi import crnn_gan_midi_dataset_builder as builder_module


def random_song(rng: np.random.Generator, num_tones: int) -> np.ndarray:
    """A canonical tone array ``[num_tones, 4]`` with integer ticks on the pitch grid."""
    pitches = rng.integers(48, 84, num_tones)
    tones = np.stack(
        [
            rng.integers(1, 400, num_tones),
            codec.pitch_to_hz(pitches),
            rng.integers(30, 110, num_tones),
            rng.choice([0, 96, 192, 384], num_tones),
        ],
        axis=1,
    ).astype(np.float32)
    # Round trip through MIDI to get the codec's canonical order.
    return codec.midi_to_tones(codec.tones_to_midi_bytes(tones))


def sources_covering_splits(composers=("bach", "mozart"), per_split=(3, 1, 1)) -> list[str]:
    """Source names ``composer/piece_i.mid`` with at least `per_split` in each split."""
    wanted = dict(zip(("train", "validation", "test"), per_split))
    chosen, i = [], 0
    while any(count > 0 for count in wanted.values()):
        source = f"{composers[i % len(composers)]}/piece_{i}.mid"
        split = builder_module.split_of(source)
        if wanted[split] > 0:
            wanted[split] -= 1
            chosen.append(source)
        i += 1
    return chosen


def write_corpus(root: pathlib.Path, sources, seed: int = 0, num_tones: int = 60) -> dict:
    """Writes one random song per source under `root`; returns source -> tones."""
    rng = np.random.default_rng(seed)
    songs = {}
    for source in sources:
        path = root / source
        path.parent.mkdir(parents=True, exist_ok=True)
        songs[source] = random_song(rng, num_tones)
        path.write_bytes(codec.tones_to_midi_bytes(songs[source]))
    return songs


def expected_splits(sources) -> dict[str, int]:
    counts = {"train": 0, "validation": 0, "test": 0}
    for source in sources:
        counts[builder_module.split_of(source)] += 1
    return counts
