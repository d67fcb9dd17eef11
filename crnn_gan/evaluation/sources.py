"""Where the evaluated music comes from: MIDI folders, a TFDS split, a SavedModel, runs.

Each adapter returns songs as tone arrays ``[n, 4]`` in raw units (length ticks at 384 per
quarter note, Hz, velocity, delta ticks), or measured `SongSet`/`Run`s. Paths are any
``tf.io.gfile`` path. Unreadable MIDI files are skipped and returned as `Skipped`; a
source with no readable song at all, or a missing run, raises `EvaluationError` naming what
is missing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

from crnn_gan import gfile
from crnn_gan.evaluation.songs import EvaluationError, Run, Skipped, SongSet
from tfds_midi import codec

MIDI_SUFFIXES = (".mid", ".midi")
_EPOCH_DIR = re.compile(r"^epoch_(\d+)/?$")


# --------------------------------------------------------------------------------------
# MIDI files.
# --------------------------------------------------------------------------------------

def _is_midi(path: str) -> bool:
    return path.lower().endswith(MIDI_SUFFIXES)


def list_midi_files(folder: str, recursive: bool = True) -> list[str]:
    """Sorted paths of the ``.mid``/``.midi`` files under `folder` (any tf.io.gfile path).

    Raises:
        EvaluationError: the folder does not exist or holds no MIDI file.
    """
    folder = folder.rstrip("/") or "/"
    if not tf.io.gfile.isdir(folder):
        if tf.io.gfile.exists(folder):
            raise EvaluationError(f"{folder} is a file: give the folder of MIDI files it is in")
        raise EvaluationError(f"MIDI folder not found: {folder}")
    if recursive:
        paths = [os.path.join(root, name) for root, _, files in tf.io.gfile.walk(folder)
                 for name in files if _is_midi(name)]
    else:
        paths = [f"{folder}/{name}" for name in tf.io.gfile.listdir(folder) if _is_midi(name)]
    if not paths:
        raise EvaluationError(f"no MIDI files (*.mid, *.midi) in {folder}")
    return sorted(paths)


def read_midi_files(paths: Iterable[str]) -> tuple[list[np.ndarray], list[str], list[Skipped]]:
    """Reads MIDI files into tones; unreadable ones are returned as `Skipped`, not raised."""
    songs, names, skipped = [], [], []
    for path in paths:
        try:
            tones = codec.midi_to_tones(gfile.read_bytes(path), name=os.path.basename(path))
        except codec.MidiFormatError as error:
            skipped.append(Skipped(path, error.reason))
            continue
        except (OSError, tf.errors.OpError) as error:
            skipped.append(Skipped(path, f"cannot read: {error}"))
            continue
        songs.append(tones)
        names.append(path)
    return songs, names, skipped


def read_midi_folder(folder: str, label: str, compat=None, repetition_length=3) -> SongSet:
    """Statistics of every readable MIDI file under `folder`.

    Raises:
        EvaluationError: no MIDI file, or none of them readable.
    """
    paths = list_midi_files(folder)
    songs, names, skipped = read_midi_files(paths)
    if not songs:
        reasons = "; ".join(f"{os.path.basename(s.path)}: {s.reason}" for s in skipped[:3])
        raise EvaluationError(
            f"none of the {len(paths)} MIDI files in {folder} could be read ({reasons}"
            f"{', ...' if len(skipped) > 3 else ''})")
    return SongSet.measure(label, songs, names, compat, repetition_length, skipped)


# --------------------------------------------------------------------------------------
# Real music from TFDS, and random windows of it.
# --------------------------------------------------------------------------------------

def parse_tfds_spec(spec: str) -> tuple[str, str]:
    """``"crnn_gan_midi/default:train"`` -> ``("crnn_gan_midi/default", "train")``;
    the split defaults to ``train``."""
    name, _, split = spec.partition(":")
    if not name:
        raise EvaluationError(f"--real must look like crnn_gan_midi/<config>:<split>, got {spec!r}")
    return name, split or "train"


def load_tfds_songs(spec: str, data_dir: str | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Tones and titles of a TFDS split such as ``crnn_gan_midi/default:train``.

    Raises:
        EvaluationError: unknown dataset or split, or the dataset is not prepared.
    """
    import tensorflow_datasets as tfds

    import tfds_midi.crnn_gan_midi  # noqa: F401  (registers crnn_gan_midi)

    name, split = parse_tfds_spec(spec)
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except Exception as error:  # TFDS raises many kinds: report them as one clear message.
        # Its first line: a missing dataset's message goes on to list every dataset TFDS has.
        reason = str(error).strip().splitlines()[0].rstrip(".") if str(error).strip() \
            else type(error).__name__
        raise EvaluationError(
            f"cannot load real music {spec!r} (data_dir={data_dir}): {reason}. Prepare it "
            f"first, e.g. python -m tfds_midi --config={name.partition('/')[2] or 'default'}"
            f"{' --data_dir=' + data_dir if data_dir else ''}") from None
    songs, names = [], []
    for example in dataset.as_numpy_iterator():
        songs.append(np.asarray(example["tones"], np.float32))
        names.append(example["source"].decode() if "source" in example else str(len(names)))
    del dataset
    if not songs:
        raise EvaluationError(f"real music {spec!r} has no songs")
    return songs, names


def random_windows(songs: Sequence[np.ndarray], names: Sequence[str], window: int,
                   num_windows: int, seed: int = 0) -> tuple[list[np.ndarray], list[str]]:
    """`num_windows` random windows of `window` consecutive tones, named ``song@start``.

    Songs are drawn uniformly among those holding a whole window (all songs, cut to their
    length, when none does), then a uniform offset.
    """
    rng = np.random.default_rng(seed)
    usable = [i for i, s in enumerate(songs) if len(s) >= window] or list(range(len(songs)))
    windows, window_names = [], []
    for _ in range(num_windows):
        i = usable[rng.integers(len(usable))]
        start = int(rng.integers(0, max(len(songs[i]) - window, 0) + 1))
        windows.append(songs[i][start:start + window])
        window_names.append(f"{names[i]}@{start}")
    return windows, window_names


# --------------------------------------------------------------------------------------
# Runs of train.py.
# --------------------------------------------------------------------------------------

def run_label(info: dict) -> str:
    """GAN / baseline plus ``-3`` for three tones per step and ``(no FM)`` for a GAN
    without feature matching trained with the straight-through gradient (the paper's
    game without its G loss; a score-function GAN has no feature matching by design)."""
    config = info.get("config", {})
    label = "baseline" if info.get("model") == "baseline" else "GAN"
    if int(config.get("tones_per_step", 1)) > 1:
        label += f"-{int(config['tones_per_step'])}"
    if (label.startswith("GAN") and config.get("feature_matching") is False
            and config.get("gradient_estimator", "straight_through") == "straight_through"):
        label += " (no FM)"
    return label


def _read_statistics_csv(path: str) -> list[dict[str, float]]:
    rows = []
    for row in csv.DictReader(io.StringIO(gfile.read_text(path))):
        parsed = {}
        for key, value in row.items():
            try:
                parsed[key] = float(value)
            except (TypeError, ValueError):
                continue
        if "epoch" in parsed:
            parsed["epoch"] = int(parsed["epoch"])
            rows.append(parsed)
    return rows


def load_run(model_dir: str, compat=None, repetition_length=3) -> Run:
    """Reads a run folder of train.py: config.json, samples/epoch_NNNN/*.mid, statistics.csv.

    Raises:
        EvaluationError: the folder or its config.json is missing, or it holds neither
            samples nor statistics.csv.
    """
    model_dir = model_dir.rstrip("/")
    if not tf.io.gfile.isdir(model_dir):
        if tf.io.gfile.exists(model_dir):
            raise EvaluationError(f"{model_dir} is a file, not the folder of a train.py run")
        raise EvaluationError(f"run directory not found: {model_dir}")
    config_path = f"{model_dir}/config.json"
    if not tf.io.gfile.exists(config_path):
        raise EvaluationError(f"{model_dir} is not a train.py run: {config_path} is missing")
    try:
        info = json.loads(gfile.read_text(config_path))
    except json.JSONDecodeError as error:
        raise EvaluationError(f"{config_path} is not valid JSON: {error}") from None
    epochs, skipped = {}, []
    samples_dir = f"{model_dir}/samples"
    if tf.io.gfile.isdir(samples_dir):
        for entry in sorted(tf.io.gfile.listdir(samples_dir)):
            match = _EPOCH_DIR.match(entry)
            if not match:
                continue
            folder = f"{samples_dir}/{entry.rstrip('/')}"
            paths = [f"{folder}/{n}" for n in sorted(tf.io.gfile.listdir(folder)) if _is_midi(n)]
            songs, names, bad = read_midi_files(paths)
            skipped.extend(bad)
            if songs:
                epochs[int(match.group(1))] = SongSet.measure(
                    f"epoch {int(match.group(1))}", songs, names, compat, repetition_length, bad)
    csv_path = f"{model_dir}/statistics.csv"
    training_log = _read_statistics_csv(csv_path) if tf.io.gfile.exists(csv_path) else []
    if not epochs and not training_log:
        raise EvaluationError(
            f"{model_dir} has no statistics: no readable samples/epoch_NNNN/*.mid and no "
            f"statistics.csv (train.py writes them when --samples_per_epoch > 0 and at least "
            f"one epoch has finished)")
    return Run(model_dir, run_label(info), info, epochs, training_log, skipped)


def dedupe_labels(runs: Sequence[Run]) -> None:
    """Labels shared by several runs get the run folder's name appended, in place."""
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
    for run in runs:
        if counts[run.label] > 1:
            run.label = f"{run.label} ({os.path.basename(run.model_dir)})"


# --------------------------------------------------------------------------------------
# An exported generator.
# --------------------------------------------------------------------------------------

def generate_from_saved_model(path: str, num_samples: int, steps: int, seed: int = 0
                              ) -> list[np.ndarray]:
    """Songs from an exported generator (``path/saved_model`` or `path` itself).

    The ``serving_default`` signature takes ``noise`` float32 ``[batch, steps, noise_dim]``
    (uniform in [0, 1], seeded by `seed`) and returns ``tones``
    ``[batch, steps, tones_per_step, 4]`` in raw units; each song is unpacked to its present
    tones ``[n, 4]`` (`tfds_midi.codec.unpack_tones`).

    Raises:
        EvaluationError: no SavedModel there, or no such signature.
    """
    path = path.rstrip("/")
    candidates = [f"{path}/saved_model", path]
    found = next((c for c in candidates if tf.io.gfile.exists(f"{c}/saved_model.pb")), None)
    if found is None:
        raise EvaluationError(f"no SavedModel (saved_model.pb) in {path} or {path}/saved_model")
    loaded = tf.saved_model.load(found)
    if "serving_default" not in loaded.signatures:
        raise EvaluationError(f"{found} has no serving_default signature "
                              f"(has: {sorted(loaded.signatures)})")
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    if "noise" not in inputs:
        raise EvaluationError(f"{found}: serving_default takes {sorted(inputs)}, not 'noise'")
    noise_dim = inputs["noise"].shape[-1]
    if noise_dim is None:
        raise EvaluationError(f"{found}: the noise input has no static last dimension")
    noise = np.random.default_rng(seed).uniform(
        size=(num_samples, steps, int(noise_dim))).astype(np.float32)
    tones = np.asarray(signature(noise=tf.constant(noise))["tones"])
    if tones.ndim != 4 or tones.shape[-1] != codec.FEATURES_PER_TONE:
        raise EvaluationError(f"{found}: expected tones [batch, steps, tones_per_step, 4], "
                              f"got shape {list(tones.shape)}")
    return [codec.unpack_tones(song.reshape(song.shape[0], -1)) for song in tones]
