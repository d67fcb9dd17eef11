"""The training input pipeline: songs -> normalised fixed-length windows, batched.

Models train on normalised features; `FeatureScaler` holds the per-feature mean and standard
deviation of the training split and is saved with every model, so that everything a user sees
(samples, exports) is in raw units: ticks at 384 per quarter note, Hz, velocity 0-127.

Windows: each epoch takes `windows_per_song` windows of `seq_len` consecutive steps from every
song, at a fresh random offset, shuffled and batched. Songs shorter than one window are
skipped (not zero-padded as the original code did: zero tones would teach D that silence is
real music); `songs_for_training` reports how many.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

from tfds_midi import codec

#: How a tone's four raw values become the model's features (before standardisation):
#: "hz": as they are (the paper: ticks, Hz, velocity, ticks); "log": length and delta as
#: log(1 + ticks), frequency as the MIDI pitch number 69 + 12 log2(Hz / 440) (a semitone is
#: one unit; Hz below MIDI pitch 0, 8.18 Hz, including the zeros of absent C-RNN-GAN-3
#: slots, encode as pitch 0), velocity as it is.
REPRESENTATIONS = ("hz", "log")
_PITCH_0_HZ = 440.0 * 2.0 ** (-69.0 / 12.0)


def _math(x):
    """numpy for numpy input, TensorFlow for tensors: one formula serves data and graphs."""
    return np if isinstance(x, (np.ndarray, np.generic, float, int)) else tf.math


def encode_tone_columns(raw, representation: str):
    """Raw tone values ``[..., 4 * k]`` (ticks, Hz, velocity, ticks per tone) -> model units.

    Works on numpy arrays (computed in float64) and on tensors (float32 graph ops that
    TFLite runs as builtins).
    """
    if representation == "hz":
        return raw
    m = _math(raw)
    if m is np:
        raw = np.asarray(raw, np.float64)
    columns = _tone_columns(raw)
    length = m.log(1.0 + columns[0])
    pitch = 69.0 + (12.0 / np.log(2.0)) * m.log(m.maximum(columns[1], _PITCH_0_HZ) / 440.0)
    delta = m.log(1.0 + columns[3])
    return _join_tone_columns([length, pitch, columns[2], delta], raw)


def decode_tone_columns(encoded, representation: str):
    """Model units ``[..., 4 * k]`` -> raw tone values (ticks, Hz, velocity, ticks)."""
    if representation == "hz":
        return encoded
    m = _math(encoded)
    columns = _tone_columns(encoded)
    length = m.exp(columns[0]) - 1.0
    hz = 440.0 * m.exp((columns[1] - 69.0) * (np.log(2.0) / 12.0))
    delta = m.exp(columns[3]) - 1.0
    return _join_tone_columns([length, hz, columns[2], delta], encoded)


def _tone_columns(values):
    """``[..., 4 * k]`` -> 4 arrays ``[..., k]``: each tone column over the k slots."""
    return [values[..., c::4] for c in range(4)]


def _join_tone_columns(columns, like):
    """Inverse of `_tone_columns`."""
    m = _math(like)
    stacked = (np.stack if m is np else tf.stack)(columns, axis=-1)  # [..., k, 4]
    if m is np:
        return stacked.reshape(*stacked.shape[:-2], -1)
    return tf.reshape(stacked, tf.concat([tf.shape(like)[:-1], [-1]], axis=0))


@dataclasses.dataclass(frozen=True)
class FeatureScaler:
    """Raw tones <-> the model's units: a fixed representation, then standardisation.

    ``normalize(raw) = (encode(raw) - mean) / std`` and ``denormalize`` its inverse, where
    `encode` is `encode_tone_columns` of `representation` (see `REPRESENTATIONS`).

    Attributes:
        mean: float32 ``[features]`` (4 per tone, 12 for C-RNN-GAN-3 packed steps), encoded
            units.
        std: float32 ``[features]``; features that never vary get 1, so they stay finite.
        representation: "hz" (the paper's raw values) or "log".
    """

    mean: np.ndarray
    std: np.ndarray
    representation: str = "hz"

    def __post_init__(self):
        if self.representation not in REPRESENTATIONS:
            raise ValueError(f"representation must be one of {REPRESENTATIONS}, "
                             f"got {self.representation!r}")

    @classmethod
    def fit(cls, songs: Iterable[np.ndarray], representation: str = "hz") -> FeatureScaler:
        """Fits mean and std over every step of every song (``[n, features]`` each)."""
        steps = [np.asarray(song, np.float64) for song in songs]
        steps = [s for s in steps if len(s)]
        if not steps:
            raise ValueError("cannot fit a FeatureScaler on no data")
        stacked = encode_tone_columns(np.concatenate(steps, axis=0), representation)
        std = stacked.std(axis=0)
        std[std < 1e-6] = 1.0
        return cls(stacked.mean(axis=0).astype(np.float32), std.astype(np.float32),
                   representation)

    @property
    def num_features(self) -> int:
        return int(self.mean.shape[0])

    def encode(self, raw):
        """Raw units -> encoded units (before standardisation)."""
        return encode_tone_columns(raw, self.representation)

    def normalize(self, raw):
        """Raw units -> normalised; works on numpy arrays and tensors ``[..., features]``."""
        encoded = self.encode(raw)
        if _math(encoded) is np:
            return ((encoded - self.mean) / self.std).astype(np.float32)
        return (encoded - self.mean) / self.std

    def denormalize(self, normalized):
        """Normalised -> raw units; works on numpy arrays and tensors ``[..., features]``."""
        return decode_tone_columns(normalized * self.std + self.mean, self.representation)

    def to_json(self) -> str:
        return json.dumps({"mean": self.mean.tolist(), "std": self.std.tolist(),
                           "representation": self.representation})

    @classmethod
    def from_json(cls, text: str) -> FeatureScaler:
        data = json.loads(text)
        return cls(np.asarray(data["mean"], np.float32), np.asarray(data["std"], np.float32),
                   data.get("representation", "hz"))

    def save(self, path: str) -> None:
        """Writes the scaler as JSON to any `tf.io.gfile` path."""
        with tf.io.gfile.GFile(path, "w") as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, path: str) -> FeatureScaler:
        with tf.io.gfile.GFile(path, "r") as f:
            return cls.from_json(f.read())


def load_songs(split: tf.data.Dataset, tones_per_step: int = 1) -> list[np.ndarray]:
    """Reads the songs of a `crnn_gan_midi` split into memory.

    Args:
        split: examples as `tfds.load` yields them (dicts with a ``tones`` ``[n, 4]``).
        tones_per_step: 1, or 3 for C-RNN-GAN-3 (songs are packed to ``[m, 12]``).

    Returns:
        One float32 array per song, ``[n, 4 * tones_per_step]`` in raw units.
    """
    songs = []
    for example in split.as_numpy_iterator():
        tones = example["tones"]
        songs.append(codec.pack_tones(tones, tones_per_step) if tones_per_step > 1 else tones)
    return songs


def songs_for_training(songs: Sequence[np.ndarray], seq_len: int) -> list[np.ndarray]:
    """The songs that hold at least one window of `seq_len` steps (the others are skipped)."""
    return [song for song in songs if len(song) >= seq_len]


def window_dataset(
    songs: Sequence[np.ndarray],
    scaler: FeatureScaler,
    seq_len: int,
    batch_size: int,
    windows_per_song: int = 1,
    seed: int | None = None,
    drop_remainder: bool = True,
    transpose_semitones: int = 0,
) -> tf.data.Dataset:
    """Batches of random normalised windows; one pass over it is one epoch.

    Args:
        songs: raw songs ``[n_i, features]`` (see `load_songs`).
        scaler: feature scaling fitted on the training split.
        seq_len: window length in steps.
        batch_size: windows per batch.
        windows_per_song: windows drawn from each song per epoch.
        seed: makes the order and offsets reproducible (fresh offsets every epoch all the
            same: the random ops advance from epoch to epoch).
        drop_remainder: drop the last incomplete batch (keeps shapes static for XLA/TPU).
        transpose_semitones: augmentation: each window is transposed by a random whole
            number of semitones in [-n, n] (0: none). Needs the "log" representation (pitch
            in MIDI units); absent C-RNN-GAN-3 slots (velocity < 0.5) stay as they are.

    Returns:
        A dataset of float32 ``[batch_size, seq_len, features]`` normalised windows.

    Raises:
        ValueError: when no song holds a window of `seq_len` steps.
    """
    if transpose_semitones and scaler.representation != "log":
        raise ValueError("transpose_semitones needs the 'log' representation (MIDI pitch), "
                         f"got {scaler.representation!r}")
    usable = songs_for_training(songs, seq_len)
    if not usable:
        longest = max((len(s) for s in songs), default=0)
        raise ValueError(
            f"seq_len={seq_len}: no song holds a window that long (longest: {longest} steps)"
        )
    values = np.concatenate([scaler.normalize(s).astype(np.float32) for s in usable], axis=0)
    lengths = np.asarray([len(s) for s in usable], np.int64)
    ragged = tf.RaggedTensor.from_row_lengths(values, lengths)
    dataset = tf.data.Dataset.from_tensor_slices(ragged)
    if windows_per_song > 1:
        dataset = dataset.flat_map(
            lambda song: tf.data.Dataset.from_tensors(song).repeat(windows_per_song)
        )
    dataset = dataset.shuffle(len(usable) * windows_per_song, seed=seed)

    def random_window(song, random):
        song = song.to_tensor() if isinstance(song, tf.RaggedTensor) else song
        choices = tf.cast(tf.shape(song)[0] - seq_len + 1, tf.int64)
        offset = tf.cast(tf.math.floormod(tf.abs(random), choices), tf.int32)
        window = song[offset : offset + seq_len]
        if transpose_semitones:
            window = _transpose(window, random)
        return tf.ensure_shape(window, [seq_len, scaler.num_features])

    def _transpose(window, random):
        """Adds k semitones (k from the window's random number) to present tones' pitch."""
        k = tf.cast(tf.math.floormod(tf.abs(random) // 7919, 2 * transpose_semitones + 1)
                    - transpose_semitones, tf.float32)
        features = scaler.num_features
        pitch = np.zeros(features, np.float32)
        pitch[1::4] = 1.0 / scaler.std[1::4]  # one semitone in normalised units
        velocity_threshold = (0.5 - scaler.mean[2::4]) / scaler.std[2::4]
        present = tf.cast(window[:, 2::4] >= velocity_threshold, tf.float32)  # [T, k]
        mask = tf.reshape(tf.stack([tf.zeros_like(present), present, tf.zeros_like(present),
                                    tf.zeros_like(present)], axis=-1), [-1, features])
        return window + k * mask * pitch

    # One random number per window, different every epoch, the same for the same seed.
    randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
    dataset = tf.data.Dataset.zip((dataset, randoms))
    dataset = dataset.map(random_window, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    # Multi-worker: the windows come from in-memory tensors, not files, so each worker builds
    # the whole (seeded, hence identical) stream and keeps its share of every global batch.
    # Said explicitly, AUTO would first try FILE sharding and warn when falling back.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def skip_iterations(dataset: tf.data.Dataset, iterations: int) -> None:
    """Opens `iterations` iterators over a `window_dataset` and reads none of them.

    Each iterator opened over the dataset draws its shuffle and random numbers anew (the
    seeded shuffle and random stream advance by one per iterator opened, in the dataset
    object), so a resumed run that opens as many as the epochs it already trained opened
    then reads what an uninterrupted run reads in the epochs that follow.
    """
    for _ in range(iterations):
        iter(dataset)
