"""Generating music with a trained generator: what `generate.py` runs.

The model is a train.py run (its final generator, or its best or latest checkpoint), an
export of ``python -m export`` (its SavedModel's ``prime`` and ``step`` signatures: what an
app sees), or the generator the repository ships (`PRETRAINED`). Both kinds answer the same
three calls (`KerasModel`, `ExportModel`): ``zero_state``, ``prime`` (G's state warmed on a
primer, `crnn_gan.generator.Generator.prime`) and ``run`` (free running from a state, in
chunks, so that long songs show progress and never hold more than one chunk's graph).

Noise: song k of a request draws ``numpy.random.default_rng(seed + k).uniform`` step after
step (the stand-alone scripts' convention: song 0 of ``--seed=S`` uses their ``--seed S``
numbers), so the same seed and flags give the same files. Priming uses no random numbers
(noise 0.5), so the same primer and seed always give the same continuation.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf

from crnn_gan import gfile, metrics, rendering
from tfds_midi import codec

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: The generator the repository ships (an export), used when no model is given.
PRETRAINED = ROOT / "pretrained" / "gan"
#: Refused above these: 100,000 steps are ~3.5 hours of music at a typical tempo, and the
#: tones of a song are held in memory (and measured) at once.
MAX_STEPS = 100_000
MAX_SONGS = 1000
DEFAULT_STEPS = 200
DEFAULT_PRIMER_MAX_TONES = 256
#: Steps generated per call of the model; the progress bar moves once per chunk.
CHUNK_STEPS = 500
#: Songs generated side by side (one batch).
SONG_BATCH = 16
#: A progress bar is drawn when a request generates at least this many steps in all.
PROGRESS_MIN_STEPS = 2000
#: The MIDI files' tempo (the codec's 120 bpm) in ticks per second: 384 * 120 / 60.
TICKS_PER_SECOND = codec.TICKS_PER_QUARTER * codec.DEFAULT_BPM / 60.0
#: `--seconds`: the model's typical tempo is measured on this many songs of this many steps
#: from zero state, noise seeds PROBE_SEED + k (the same for every --seed).
PROBE_SONGS, PROBE_STEPS, PROBE_SEED = 4, 256, 0
#: `--checkpoint` -> the weights file in a run folder.
CHECKPOINTS = {"final": "generator.weights.h5", "best": "checkpoints/best.weights.h5",
               "latest": "checkpoints/latest.weights.h5"}
STATE_NAMES = ("h", "c", "previous")
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


class GenerationError(Exception):
    """Bad input (a model, a primer, a count); the message names it and what to do."""


# --------------------------------------------------------------------------------------
# Models.
# --------------------------------------------------------------------------------------

class _Model:
    """What generation needs of a model. ``state``: ``{"h", "c": [L, B, U], "previous":
    [B, F]}`` (the exports' `step` state); tones in raw units ``[B, T, tones_per_step, 4]``."""

    description: str
    tones_per_step: int
    num_layers: int
    units: int

    @property
    def num_features(self) -> int:
        return 4 * self.tones_per_step

    def zero_state(self, batch: int) -> dict:
        zeros = np.zeros([self.num_layers, batch, self.units], np.float32)
        return {"h": zeros, "c": zeros, "previous": np.zeros([batch, self.num_features],
                                                             np.float32)}

    def _specs(self):
        return [tf.TensorSpec([None, None, self.num_features], tf.float32),
                tf.TensorSpec([self.num_layers, None, self.units], tf.float32),
                tf.TensorSpec([self.num_layers, None, self.units], tf.float32),
                tf.TensorSpec([None, self.num_features], tf.float32)]

    def prime(self, primer: np.ndarray) -> dict:
        """State after priming on raw tones ``[B, n, tones_per_step, 4]``."""
        raise NotImplementedError

    def run(self, noise: np.ndarray, state: dict) -> tuple[np.ndarray, dict]:
        """Free running over ``noise [B, T, F]`` from `state`: (raw tones, next state)."""
        raw, h, c, previous = self._run(tf.constant(noise, tf.float32),
                                        *(tf.constant(state[k]) for k in STATE_NAMES))
        return raw.numpy(), {"h": h.numpy(), "c": c.numpy(), "previous": previous.numpy()}


class KerasModel(_Model):
    """A generator of a train.py run (`crnn_gan.generator.Generator` and its scaler)."""

    def __init__(self, generator, scaler, description: str):
        self.generator, self.scaler, self.description = generator, scaler, description
        self.tones_per_step = generator.tones_per_step
        self.num_layers, self.units = generator.num_layers, generator.units
        self._run = tf.function(self._run_graph, input_signature=self._specs())
        self._prime = tf.function(self._prime_graph, input_signature=[
            tf.TensorSpec([None, None, self.tones_per_step, 4], tf.float32)])

    def _raw(self, normalized):
        raw = self.scaler.denormalize(normalized)
        return tf.reshape(raw, tf.concat([tf.shape(raw)[:-1], [self.tones_per_step, 4]], 0))

    def _run_graph(self, noise, h, c, previous):
        states = list(zip(tf.unstack(h, num=self.num_layers), tf.unstack(c, num=self.num_layers)))
        outputs, states, previous = self.generator.free_run(
            noise, initial=(states, previous), return_state=True)
        return (self._raw(outputs), tf.stack([s[0] for s in states]),
                tf.stack([s[1] for s in states]), previous)

    def _prime_graph(self, tones):
        steps = tf.reshape(tones, tf.concat([tf.shape(tones)[:2], [self.num_features]], 0))
        # The scaler's normalisation as a graph op, as in the exports' `prime`.
        states, previous = self.generator.prime(self.scaler.normalize(steps))
        return {"h": tf.stack([s[0] for s in states]), "c": tf.stack([s[1] for s in states]),
                "previous": previous}

    def prime(self, primer):
        return {k: v.numpy() for k, v in self._prime(tf.constant(primer, tf.float32)).items()}


class ExportModel(_Model):
    """An export's SavedModel, through its ``step`` and ``prime`` signatures only."""

    def __init__(self, path: str, description: str):
        try:
            loaded = tf.saved_model.load(path)
        except (ValueError, OSError, tf.errors.OpError) as error:
            raise GenerationError(f"{path} cannot be loaded as a SavedModel "
                                  f"({str(error).splitlines()[0][:200]}): export the run again"
                                  ) from None
        missing = [name for name in ("serving_default", "step") if name not in loaded.signatures]
        if missing:
            raise GenerationError(f"{path} has no {' or '.join(missing)} signature: it is not "
                                  "a generator exported by `python -m export`")
        self._loaded, self.path, self.description = loaded, path, description
        self._step = loaded.signatures["step"]
        specs = self._step.structured_input_signature[1]
        self.num_layers, _, self.units = specs["h"].shape.as_list()
        self.tones_per_step = specs["noise"].shape[-1] // 4
        self._run = tf.function(self._run_graph, input_signature=self._specs())

    def _run_graph(self, noise, h, c, previous):
        steps = tf.shape(noise)[1]
        tones = tf.TensorArray(tf.float32, size=steps)

        def body(t, h, c, previous, tones):
            out = self._step(noise=noise[:, t], h=h, c=c, previous=previous)
            return t + 1, out["h"], out["c"], out["previous"], tones.write(t, out["tones"])

        _, h, c, previous, tones = tf.while_loop(
            lambda t, *_: t < steps, body, (tf.constant(0), h, c, previous, tones),
            maximum_iterations=steps)
        return tf.transpose(tones.stack(), [1, 0, 2, 3]), h, c, previous

    def prime(self, primer):
        if "prime" not in self._loaded.signatures:
            raise GenerationError(
                f"{self.path} has no prime signature (exported before primers were "
                "supported): export its run again with `python -m export` to continue a "
                "primer, or leave --primer_midi out")
        out = self._loaded.signatures["prime"](tones=tf.constant(primer, tf.float32))
        return {k: out[k].numpy() for k in STATE_NAMES}


def _is_export(folder: str) -> str | None:
    """The SavedModel folder of an export (``folder/saved_model`` or `folder`), or None."""
    for candidate in (f"{folder}/saved_model", folder):
        if tf.io.gfile.exists(f"{candidate}/saved_model.pb"):
            return candidate
    return None


def load_run(model_dir: str, checkpoint: str = "final") -> KerasModel:
    """The generator of a train.py run at `checkpoint` ("final", "best" or "latest").

    "final" is the run's ``generator.weights.h5``; "best" and "latest" are checkpoints of
    the whole model (GAN or baseline), from which G is taken.

    Raises:
        GenerationError: naming the missing or damaged file.
    """
    from crnn_gan import run_dir, training
    from tfds_midi import pipeline

    if checkpoint not in CHECKPOINTS:
        raise GenerationError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}, "
                              f"got {checkpoint!r}")
    try:
        record = run_dir.read_record(model_dir)
    except run_dir.RunDirError as error:
        raise GenerationError(str(error)) from None
    weights = f"{model_dir}/{CHECKPOINTS[checkpoint]}"
    if not tf.io.gfile.exists(weights):
        if checkpoint == "final":
            try:
                progress = run_dir.read_progress(model_dir)
            except run_dir.RunDirError:
                progress = None
            done = f" ({progress['epochs_done']} of its epochs done)" if progress else ""
            raise GenerationError(
                f"{model_dir} has no generator.weights.h5: the run has not finished{done}. "
                "Give --checkpoint=latest (or best), or run its train.py command again to "
                "finish it")
        why = (" (written only by runs that generate samples: --samples_per_epoch > 0)"
               if checkpoint == "best" else "")
        raise GenerationError(f"{model_dir} has no {CHECKPOINTS[checkpoint]}{why}: give "
                              "another --checkpoint")
    scaler_path = f"{model_dir}/scaler.json"
    if not tf.io.gfile.exists(scaler_path):
        raise GenerationError(f"{model_dir} has no scaler.json (the feature scaling the run "
                              "was trained with): it is not a complete train.py run")
    try:
        scaler = pipeline.FeatureScaler.load(scaler_path)
    except (ValueError, KeyError, TypeError) as error:
        raise GenerationError(f"{scaler_path} is damaged: {error}") from None
    from crnn_gan.config import Config

    config = Config(**record["config"])
    try:
        if checkpoint == "final":
            generator = training.build_generator(config)
            generator.build()
            generator.load_weights(weights)
        else:
            model = training.build_model(config, record.get("model", "gan"))
            model.build_for_training()  # the checkpoint holds the optimisers' state too
            model.load_weights(weights)
            generator = model.generator
    except (ValueError, OSError, KeyError) as error:  # Keras: mismatch; h5py: not HDF5
        raise GenerationError(f"{weights} does not fit {model_dir}/config.json or is damaged: "
                              f"{str(error).splitlines()[0].rstrip(':')}") from None
    return KerasModel(generator, scaler, f"{model_dir} ({checkpoint} weights)")


def load_model(model_dir: str | None = None, export: str | None = None,
               checkpoint: str = "final", pretrained: str | os.PathLike = PRETRAINED):
    """The model of generate.py's flags: `model_dir` (a run, or an export), `export`, or
    with neither the shipped `pretrained` export.

    Raises:
        GenerationError: both given, a folder that does not exist or holds neither a run
            nor an export (the message lists the files looked for), no shipped model.
    """
    if model_dir and export:
        raise GenerationError("give --model_dir or --export, not both")
    if export:
        export = export.rstrip("/")
        if not tf.io.gfile.exists(export):
            raise GenerationError(f"--export={export} does not exist: give a folder written "
                                  "by `python -m export`")
        found = _is_export(export)
        if found is None:
            raise GenerationError(
                f"--export={export} is not an export: it has neither saved_model/saved_model.pb"
                " nor saved_model.pb" + (" (it is a train.py run: give it as --model_dir)"
                                         if tf.io.gfile.exists(f"{export}/config.json") else ""))
        return ExportModel(found, f"export {export}")
    if not model_dir:
        pretrained = str(pretrained)
        found = _is_export(pretrained)
        if found is None:
            raise GenerationError(
                f"no --model_dir or --export given, and the shipped generator {pretrained} is "
                "not there: give --model_dir=RUN (a train.py run) or --export=DIR (a folder "
                "written by `python -m export`)")
        return ExportModel(found, f"the shipped generator {pretrained}")
    model_dir = model_dir.rstrip("/")
    flag = f"--model_dir={model_dir}"
    if not tf.io.gfile.isdir(model_dir):
        what = "is a file" if tf.io.gfile.exists(model_dir) else "does not exist"
        raise GenerationError(f"{flag} {what}: give the folder of a train.py run or of an "
                              "export")
    if tf.io.gfile.exists(f"{model_dir}/config.json"):
        return load_run(model_dir, checkpoint)
    found = _is_export(model_dir)
    if found is not None:
        return ExportModel(found, f"export {model_dir}")
    raise GenerationError(
        f"{flag} holds neither a train.py run nor an export: looked for config.json, "
        "scaler.json and generator.weights.h5 (a run) and for saved_model/saved_model.pb or "
        "saved_model.pb (an export of `python -m export`)")


# --------------------------------------------------------------------------------------
# Primers, lengths, generation.
# --------------------------------------------------------------------------------------

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


# --------------------------------------------------------------------------------------
# Songs: MIDI, summaries, audio.
# --------------------------------------------------------------------------------------

def pitch_name(pitch: int) -> str:
    """MIDI pitch -> name with octave (60 -> C4)."""
    return f"{_NOTE_NAMES[pitch % 12]}{pitch // 12 - 1}"


def song_seconds(tones: np.ndarray) -> float:
    """Seconds from the start to the end of the last tone, at the files' 120 bpm."""
    if not len(tones):
        return 0.0
    start = codec.tone_start_ticks(tones)
    return float((start + tones[:, codec.LENGTH]).max() / TICKS_PER_SECOND)


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


def render_audio(midi_paths: Sequence[str], kind: str, soundfont: str | None = None
                 ) -> tuple[list[str], str | None]:
    """Renders MIDI files to ``kind`` ("wav" or "ogg") beside them with FluidSynth.

    Returns:
        (written files, None), or (what was written, a message): FluidSynth or a soundfont
        missing (naming the Debian packages), or a file it failed on. Never raises for that.
    """
    binary, font = shutil.which("fluidsynth"), rendering.find_soundfont(soundfont)
    if binary is None or font is None:
        what = ("FluidSynth is not installed" if binary is None else
                f"the soundfont {soundfont} does not exist" if soundfont else
                "no General MIDI soundfont was found (looked for "
                f"{', '.join(rendering.SOUNDFONTS)})")
        return [], (f"--{kind}: {what}, so no audio was rendered (the MIDI files are "
                    "written). Install the Debian packages fluidsynth and fluid-soundfont-gm: "
                    f"{rendering.FLUIDSYNTH_INSTALL}" + ("" if binary is None or soundfont
                                                        else " (or give --soundfont=FILE.sf2)"))
    written, failures = [], []
    for midi in midi_paths:
        out = os.path.splitext(midi)[0] + "." + kind
        result = subprocess.run(
            [binary, "-ni", "-g", "0.8", "-r", "44100", "-T", "oga" if kind == "ogg" else "wav",
             "-F", out, font, midi], capture_output=True, text=True, timeout=600)
        if result.returncode == 0 and os.path.isfile(out) and os.path.getsize(out) > 0:
            written.append(out)
        else:
            failures.append(f"{os.path.basename(midi)}: "
                            f"{(result.stderr or result.stdout).strip()[:200]}")
    return written, (f"--{kind}: fluidsynth failed on " + "; ".join(failures)
                     if failures else None)


# --------------------------------------------------------------------------------------
# The whole request.
# --------------------------------------------------------------------------------------

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
        """Raises `GenerationError` for counts out of range (before anything is loaded)."""
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
        if self.primer_max_tones < 1:
            raise GenerationError(f"--primer_max_tones must be >= 1, got "
                                  f"{self.primer_max_tones}")
        if self.primer_midi and self.primer_from:
            raise GenerationError("give --primer_midi or --primer_from, not both")
        if self.primer_only_continuation and not (self.primer_midi or self.primer_from):
            raise GenerationError("--primer_only_continuation needs --primer_midi or "
                                  "--primer_from")
        if tf.io.gfile.exists(self.output_dir) and not tf.io.gfile.isdir(self.output_dir):
            raise GenerationError(f"--output_dir={self.output_dir} is a file: give a folder")


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
        primer_tones, source = tfds_primer(request.primer_from, request.primer_index,
                                           request.data_dir)
        primer_name = f"{request.primer_from}[{request.primer_index}] ({source})"
    model = load_model(request.model_dir, request.export, request.checkpoint,
                       request.pretrained)
    primer = None
    if primer_tones is not None:
        primer = primer_steps(primer_tones, model.tones_per_step, request.primer_max_tones)
    log(f"model: {model.description} ({model.tones_per_step} tone(s) a step, "
        f"{model.num_layers} x {model.units} units)")
    if request.seconds is not None:
        steps, ticks = steps_for_seconds(model, request.seconds)
        log(f"--seconds={request.seconds:g}: {steps} steps at the model's typical tempo, "
            f"{ticks:.1f} ticks ({ticks / TICKS_PER_SECOND:.3f} s at 120 bpm) a step on "
            f"average over {PROBE_SONGS} x {PROBE_STEPS} probe steps")
    else:
        steps = request.steps or DEFAULT_STEPS
    if primer is not None:
        used = min(len(primer_tones), request.primer_max_tones)
        log(f"primer {primer_name}: {len(primer_tones)} tones"
            + (f", the last {used} prime the model" if used < len(primer_tones) else "")
            + f" ({len(primer)} steps)")
    tf.io.gfile.makedirs(request.output_dir)
    total = request.num_songs * steps
    show = request.progress if request.progress is not None else total >= PROGRESS_MIN_STEPS
    progress = Progress(total) if show else None
    written = []
    for first in range(0, request.num_songs, SONG_BATCH):
        seeds = [request.seed + k for k in range(first, min(first + SONG_BATCH,
                                                            request.num_songs))]
        raw = generate_steps(model, seeds, steps, primer, progress)
        if not np.isfinite(raw).all():
            raise GenerationError(f"{model.description} produced NaN or Inf: it diverged")
        for k, song in zip(range(first, first + len(seeds)), raw):
            tones = codec.unpack_tones(song.reshape(steps, -1))
            if primer_tones is not None and not request.primer_only_continuation:
                tones = np.concatenate([primer_tones, tones])
            path = os.path.join(request.output_dir, f"song_{k:03d}.mid")
            gfile.write_bytes(path, codec.tones_to_midi_bytes(tones))
            written.append(path)
            try:
                heard = codec.midi_to_tones(path)  # what a listener gets: rounded tones
            except codec.MidiFormatError:
                heard = np.zeros((0, 4), np.float32)  # every tone silent
            log(f"wrote {path}: {summary_line(heard)}")
    for kind in ("wav", "ogg"):
        if getattr(request, kind):
            audio, message = render_audio(written, kind, request.soundfont)
            for path in audio:
                log(f"wrote {path}")
            if message:
                log(message)
    return written

