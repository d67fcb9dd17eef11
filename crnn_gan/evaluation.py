"""Evaluation of C-RNN-GAN runs against real music: the paper's Figure 3 and its numbers.

The library behind ``evaluate.py``. Sources of music:

* real music: a TFDS split (``crnn_gan_midi/<config>:<split>``) or a folder of MIDI files,
  measured over whole songs and over random windows of ``window`` tones;
* generated music: a folder of MIDI files, an exported SavedModel, and the runs of
  ``train.py``, whose ``samples/epoch_NNNN/*.mid`` give one point per epoch.

Every statistic is ``crnn_gan.metrics.all_statistics`` of one song, then the mean and the
(population) standard deviation over songs.

Repetitions of real music are normalised to the length of the generated music as the
paper does (count times ``l_g / l_r``, ``metrics.normalise_real_repetitions``), song by song
(or window by window) with ``l_r`` = that song's number of tones and ``l_g`` = the mean
number of tones of the generated songs (the final epoch of every run plus ``--samples`` and
``--saved_model``; ``window`` when there are none). Both the raw and the normalised values
are reported; the real band of the figure is the windows' statistics with the normalised
repetitions.

Unreadable MIDI files are skipped and counted (``skipped`` in the report); a source with no
readable song at all, or a missing run, raises ``EvaluationError`` with a message naming
what is missing.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable, Sequence

import numpy as np
import tensorflow as tf

from crnn_gan import metrics
from tfds_midi import codec

DEFAULT_WINDOW = 200
MIDI_SUFFIXES = (".mid", ".midi")
SOUNDFONTS = (
    "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/soundfonts/FluidR3_GM.sf2",
    "/usr/share/soundfonts/default.sf2",
)
FLUIDSYNTH_INSTALL = "sudo apt-get install fluidsynth fluid-soundfont-gm"
_EPOCH_DIR = re.compile(r"^epoch_(\d+)/?$")


class EvaluationError(Exception):
    """Bad input (missing run, empty folder, no readable MIDI file); the message says what."""


# --------------------------------------------------------------------------------------
# Sets of songs and their statistics.
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Skipped:
    """A file that could not be read: its path and why."""

    path: str
    reason: str


@dataclasses.dataclass
class SongSet:
    """Songs of one source with their statistics.

    Attributes:
        label: name in tables and legends.
        songs: tone arrays ``[n, 4]`` in raw units (unpacked).
        names: one name per song (file name, title or window position).
        statistics: one ``metrics.all_statistics`` dict per song.
        skipped: unreadable files of this source.
    """

    label: str
    songs: list[np.ndarray]
    names: list[str]
    statistics: list[dict]
    skipped: list[Skipped] = dataclasses.field(default_factory=list)

    @classmethod
    def measure(cls, label, songs, names, compat=None, repetition_length=3, skipped=()):
        stats = [metrics.all_statistics(s, compat=compat, repetition_length=repetition_length)
                 for s in songs]
        return cls(label, list(songs), list(names), stats, list(skipped))

    @property
    def mean_length(self) -> float:
        return float(np.mean([s["num_tones"] for s in self.statistics])) if self.statistics else 0.0

    def summary(self) -> dict[str, dict[str, float]]:
        """``name -> {"mean", "std"}`` of the numeric statistics (empty for no songs)."""
        if not self.statistics:
            return {}
        return {name: {"mean": mean, "std": std}
                for name, (mean, std) in metrics.summarise(self.statistics).items()}

    def normalised_repetitions(self, generated_length: float) -> dict[str, float]:
        """Mean and std of ``repetitions * l_g / l_r`` song by song (songs without tones
        count 0)."""
        values = [metrics.normalise_real_repetitions(s["repetitions"], s["num_tones"],
                                                     generated_length)
                  if s["num_tones"] else 0.0 for s in self.statistics]
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}

    def to_json(self) -> dict:
        return {"label": self.label, "count": len(self.statistics),
                "mean_length": self.mean_length, "summary": self.summary(),
                "scales": _top_scales(self.statistics),
                "skipped": len(self.skipped),
                "skipped_files": [dataclasses.asdict(s) for s in self.skipped]}


def _top_scales(statistics, top=3) -> dict[str, int]:
    names, counts = np.unique([s["scale"] for s in statistics], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    return {str(names[i]): int(counts[i]) for i in order}


# --------------------------------------------------------------------------------------
# Reading MIDI.
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
            with tf.io.gfile.GFile(path, "rb") as f:
                data = f.read()
            tones = codec.midi_to_tones(data, name=os.path.basename(path))
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
# Real music.
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

    import tfds_midi  # noqa: F401  (registers crnn_gan_midi)

    name, split = parse_tfds_spec(spec)
    try:
        dataset = tfds.load(name, split=split, data_dir=data_dir, download=False)
    except Exception as error:  # TFDS raises many kinds: report them as one clear message.
        raise EvaluationError(
            f"cannot load real music {spec!r} (data_dir={data_dir}): {error}. Prepare it "
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
    """`num_windows` random windows of `window` consecutive tones.

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

@dataclasses.dataclass
class Run:
    """A training run and its per-epoch statistics.

    Attributes:
        model_dir: the run's folder.
        label: "GAN", "baseline", "GAN-3", ... (see `run_label`).
        info: the run's config.json (``config``, ``model``, ``dataset``, ``seed``).
        epochs: per-epoch `SongSet` of the samples, sorted by epoch number.
        training_log: rows of statistics.csv as train.py wrote them (floats).
    """

    model_dir: str
    label: str
    info: dict
    epochs: dict[int, SongSet]
    training_log: list[dict[str, float]]
    skipped: list[Skipped] = dataclasses.field(default_factory=list)

    @property
    def config(self) -> dict:
        return self.info.get("config", {})

    def curve(self) -> tuple[list[int], dict[str, list[float]], dict[str, list[float]]]:
        """Epochs, means and stds of each statistic: from the samples, or from
        statistics.csv (std 0) when the run kept no samples."""
        if self.epochs:
            epochs = sorted(self.epochs)
            summaries = [self.epochs[e].summary() for e in epochs]
            means = {n: [s[n]["mean"] for s in summaries] for n in metrics.STATISTICS}
            stds = {n: [s[n]["std"] for s in summaries] for n in metrics.STATISTICS}
            return epochs, means, stds
        epochs = [int(row["epoch"]) for row in self.training_log]
        means = {n: [row.get(n, float("nan")) for row in self.training_log]
                 for n in metrics.STATISTICS}
        return epochs, means, {n: [0.0] * len(epochs) for n in metrics.STATISTICS}

    def final(self) -> SongSet | None:
        return self.epochs[max(self.epochs)] if self.epochs else None

    def to_json(self) -> dict:
        epochs, means, stds = self.curve()
        return {
            "label": self.label, "model_dir": self.model_dir, "model": self.info.get("model"),
            "dataset": self.info.get("dataset"), "seed": self.info.get("seed"),
            "config": self.config,
            "curve_source": "samples" if self.epochs else "statistics.csv",
            "epochs": [
                {"epoch": e, "num_samples": len(self.epochs[e].statistics) if self.epochs else None,
                 "mean_length": self.epochs[e].mean_length if self.epochs else None,
                 **{n: {"mean": means[n][i], "std": stds[n][i]} for n in metrics.STATISTICS}}
                for i, e in enumerate(epochs)],
            "training_log": self.training_log,
            "skipped": len(self.skipped),
            "skipped_files": [dataclasses.asdict(s) for s in self.skipped],
        }


def run_label(info: dict) -> str:
    """GAN / baseline plus ``-3`` for three tones per step and ``(no FM)`` for a GAN
    without feature matching."""
    config = info.get("config", {})
    label = "baseline" if info.get("model") == "baseline" else "GAN"
    if int(config.get("tones_per_step", 1)) > 1:
        label += f"-{int(config['tones_per_step'])}"
    if label.startswith("GAN") and config.get("feature_matching") is False:
        label += " (no FM)"
    return label


def _read_text(path: str) -> str:
    with tf.io.gfile.GFile(path, "r") as f:
        return f.read()


def _read_statistics_csv(path: str) -> list[dict[str, float]]:
    rows = []
    for row in csv.DictReader(io.StringIO(_read_text(path))):
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
        raise EvaluationError(f"run directory not found: {model_dir}")
    config_path = f"{model_dir}/config.json"
    if not tf.io.gfile.exists(config_path):
        raise EvaluationError(f"{model_dir} is not a train.py run: {config_path} is missing")
    try:
        info = json.loads(_read_text(config_path))
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


def _dedupe_labels(runs: Sequence[Run]) -> None:
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.label] = counts.get(run.label, 0) + 1
    for run in runs:
        if counts[run.label] > 1:
            run.label = f"{run.label} ({os.path.basename(run.model_dir)})"


# --------------------------------------------------------------------------------------
# SavedModel.
# --------------------------------------------------------------------------------------

def generate_from_saved_model(path: str, num_samples: int, steps: int, seed: int = 0
                              ) -> list[np.ndarray]:
    """Songs from an exported generator (``path/saved_model`` or `path` itself).

    The ``serving_default`` signature takes ``noise`` float32 ``[batch, steps, noise_dim]``
    (uniform in [0, 1]) and returns ``tones`` ``[batch, steps, tones_per_step, 4]`` in raw
    units; each song is unpacked to its present tones ``[n, 4]``.

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


# --------------------------------------------------------------------------------------
# Listening: excerpts as MIDI and WAV.
# --------------------------------------------------------------------------------------

def find_soundfont(soundfont: str | None = None) -> str | None:
    if soundfont:
        return soundfont if os.path.isfile(soundfont) else None
    return next((path for path in SOUNDFONTS if os.path.isfile(path)), None)


def render_wavs(midi_paths: Sequence[str], out_dir: str, soundfont: str | None = None
                ) -> tuple[list[str], str | None]:
    """Renders MIDI files to WAV with the ``fluidsynth`` binary and a General MIDI soundfont.

    Returns:
        (written WAV paths, None) or ([], a message saying what is missing and how to
        install it). Never raises for a missing synthesiser or soundfont.
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


# --------------------------------------------------------------------------------------
# The whole evaluation.
# --------------------------------------------------------------------------------------

@dataclasses.dataclass
class Request:
    """What to evaluate (see evaluate.py's flags)."""

    output_dir: str
    real: str | None = None
    midi_dir: str | None = None
    data_dir: str | None = None
    samples: Sequence[str] = ()
    saved_model: str | None = None
    num_samples: int = 20
    steps: int | None = None
    model_dirs: Sequence[str] = ()
    window: int | None = None
    real_windows: int = 500
    compat: str | None = None
    repetition_length: int = 3
    figure: str | None = None
    pianoroll: bool = False
    excerpts: int = 3
    wav: bool = False
    soundfont: str | None = None
    seed: int = 0


@dataclasses.dataclass
class Result:
    report: dict
    table: str
    warnings: list[str]


def _default_window(request: Request, runs: Sequence[Run]) -> tuple[int, str]:
    if request.window:
        return request.window, "--window"
    lengths = sorted({int(r.config.get("sample_steps", 0)) for r in runs} - {0})
    if lengths:
        return lengths[0], "sample_steps of the runs' config"
    if request.saved_model and request.steps:
        return request.steps, "--steps"
    return DEFAULT_WINDOW, "default"


def evaluate(request: Request, log=print) -> Result:
    """Runs the whole evaluation and writes JSON, CSV and figures to ``request.output_dir``.

    Raises:
        EvaluationError: for bad input (see the module docstring).
    """
    from crnn_gan import plots

    if request.compat is not None and request.compat not in metrics.COMPAT_MODES:
        raise EvaluationError(f"--compat must be one of {metrics.COMPAT_MODES}")
    kwargs = {"compat": request.compat, "repetition_length": request.repetition_length}
    warnings: list[str] = []

    runs = [load_run(d, **kwargs) for d in request.model_dirs]
    _dedupe_labels(runs)
    for run in runs:
        log(f"run {run.label}: {run.model_dir}, {len(run.epochs) or len(run.training_log)} "
            f"epochs" + (f", {len(run.skipped)} unreadable sample files skipped"
                         if run.skipped else ""))
    window, window_from = _default_window(request, runs)

    generated: list[SongSet] = []
    for folder in request.samples:
        label = f"samples: {os.path.basename(folder.rstrip('/'))}"
        generated.append(read_midi_folder(folder, label, **kwargs))
    if request.saved_model:
        steps = request.steps or window
        songs = generate_from_saved_model(request.saved_model, request.num_samples, steps,
                                          seed=request.seed)
        generated.append(SongSet.measure("SavedModel", songs,
                                         [f"saved_model_{k:03d}" for k in range(len(songs))],
                                         **kwargs))
        log(f"generated {len(songs)} songs of {steps} steps with {request.saved_model}")
    for song_set in generated:
        if song_set.skipped:
            log(f"{song_set.label}: {len(song_set.skipped)} unreadable files skipped")

    finals = [r.final() for r in runs if r.final() is not None] + generated
    lengths = [s["num_tones"] for g in finals for s in g.statistics]
    # l_g of the repetition normalisation: the generated songs' mean length, else the window.
    mean_length = float(np.mean(lengths)) if lengths else 0.0
    generated_length = mean_length if mean_length > 0 else float(window)

    real_songs = real_windows = None
    if request.real or request.midi_dir:
        if request.real:
            songs, names = load_tfds_songs(request.real, request.data_dir)
            real_songs = SongSet.measure(f"real songs: {request.real}", songs, names, **kwargs)
        else:
            real_songs = read_midi_folder(request.midi_dir, f"real songs: {request.midi_dir}",
                                          **kwargs)
        windows, names = random_windows(real_songs.songs, real_songs.names, window,
                                        request.real_windows, seed=request.seed)
        real_windows = SongSet.measure(f"real windows of {window} tones", windows, names,
                                       **kwargs)
        log(f"real music: {len(real_songs.songs)} songs"
            + (f" ({len(real_songs.skipped)} unreadable files skipped)" if real_songs.skipped
               else "") + f", {len(windows)} windows of {window} tones")

    # ---- Report.
    report: dict = {
        "compat": request.compat, "repetition_length": request.repetition_length,
        "statistics": list(metrics.STATISTICS), "units": dict(metrics.UNITS),
        "window": window, "window_from": window_from,
        "generated_length": generated_length,
        "repetition_normalisation": (
            "real repetitions * l_g / l_r per song or window; l_r = its number of tones, "
            "l_g = generated_length (mean number of tones of the generated songs)"),
        "real": None, "runs": [run.to_json() for run in runs],
        "generated": [g.to_json() for g in generated],
        "skipped": sum(len(r.skipped) for r in runs) + sum(len(g.skipped) for g in generated)
        + (len(real_songs.skipped) if real_songs else 0),
        "files": {},
    }
    real_band = None
    if real_songs is not None:
        report["real"] = {"source": request.real or request.midi_dir,
                          "songs": real_songs.to_json(), "windows": real_windows.to_json()}
        for key, song_set in (("songs", real_songs), ("windows", real_windows)):
            report["real"][key]["repetitions_normalised"] = song_set.normalised_repetitions(
                generated_length)
        real_band = {n: (v["mean"], v["std"]) for n, v in real_windows.summary().items()}
        normalised = report["real"]["windows"]["repetitions_normalised"]
        real_band["repetitions"] = (normalised["mean"], normalised["std"])

    # ---- Files.
    out = request.output_dir.rstrip("/")
    tf.io.gfile.makedirs(out)
    rows = _csv_rows(runs, generated, real_songs, real_windows, report)
    table = format_table(rows)

    curves = []
    for run in runs:
        epochs, means, _ = run.curve()
        curves.append(plots.Curve(run.label, epochs, means,
                                  pretrain_epochs=run.config.get("pretrain_epochs")))
    references = [(g.label, {n: v["mean"] for n, v in g.summary().items()}) for g in generated]
    figure_path = request.figure or f"{out}/figure3.png"
    title = ("Statistics of generated music over training" if runs
             else "Statistics of generated and real music") + (
        f" (compat={request.compat})" if request.compat else "")
    note = (f"real: normalised to {generated_length:.0f} tones"
            if real_band is not None else None)
    plots.save(plots.figure3(curves, real_band, references, units=metrics.UNITS, title=title,
                             real_label=f"real music, {window}-tone windows (mean ± std)",
                             repetition_length=request.repetition_length,
                             repetitions_note=note),
               figure_path)
    report["files"]["figure"] = figure_path

    if request.pianoroll or request.wav:
        gen_excerpts = _generated_excerpts(runs, generated, request.excerpts)
        real_excerpts = []
        if real_windows is not None:
            real_excerpts = [(f"real: {os.path.basename(n)}", s) for n, s in
                             zip(real_windows.names[:request.excerpts],
                                 real_windows.songs[:request.excerpts])]
        if not gen_excerpts and not real_excerpts:
            warnings.append("--pianoroll/--wav: no music to show")
        else:
            if request.pianoroll:
                path = f"{out}/pianoroll.png"
                plots.save(plots.pianoroll_figure(gen_excerpts, real_excerpts), path)
                report["files"]["pianoroll"] = path
            midi_paths = _write_excerpts(gen_excerpts, real_excerpts, f"{out}/excerpts")
            report["files"]["excerpts"] = midi_paths
            if request.wav:
                if "://" in out:
                    warnings.append("--wav needs a local --output_dir")
                else:
                    wavs, problem = render_wavs(midi_paths, f"{out}/wav", request.soundfont)
                    report["files"]["wav"] = wavs
                    if problem:
                        warnings.append(problem)
                        report["wav_error"] = problem

    report["warnings"] = warnings
    report["files"]["json"] = f"{out}/evaluation.json"
    report["files"]["csv"] = f"{out}/evaluation.csv"
    _write(report["files"]["csv"], _to_csv(rows))
    _write(report["files"]["json"], json.dumps(report, indent=2, default=_json_default))
    return Result(report, table, warnings)


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def _generated_excerpts(runs, generated, count) -> list[tuple[str, np.ndarray]]:
    """Up to `count` generated songs, taking turns between the sources (final epochs)."""
    sources = []
    for run in runs:
        final = run.final()
        if final is not None:
            epoch = max(run.epochs)
            sources.append([(f"{run.label}, epoch {epoch}: {os.path.basename(n)}", s)
                            for n, s in zip(final.names, final.songs)])
    for g in generated:
        sources.append([(f"{g.label}: {os.path.basename(n)}", s)
                        for n, s in zip(g.names, g.songs)])
    excerpts = []
    for k in range(max((len(s) for s in sources), default=0)):
        for source in sources:
            if k < len(source) and len(excerpts) < count:
                excerpts.append(source[k])
    return excerpts


def _write_excerpts(gen_excerpts, real_excerpts, folder) -> list[str]:
    tf.io.gfile.makedirs(folder)
    paths = []
    for prefix, excerpts in (("generated", gen_excerpts), ("real", real_excerpts)):
        for k, (_, tones) in enumerate(excerpts):
            path = f"{folder}/{prefix}_{k:02d}.mid"
            _write(path, codec.tones_to_midi_bytes(tones), binary=True)
            paths.append(path)
    return paths


def _write(path: str, data, binary: bool = False) -> None:
    with tf.io.gfile.GFile(path, "wb" if binary else "w") as f:
        f.write(data)


# --------------------------------------------------------------------------------------
# CSV and the printed table.
# --------------------------------------------------------------------------------------

CSV_FIELDS = ("group", "label", "epoch", "count", "statistic", "mean", "std")


def _csv_rows(runs, generated, real_songs, real_windows, report) -> list[dict]:
    """Long format: one row per (source, epoch, statistic)."""
    rows = []

    def add(group, label, epoch, count, summary):
        for name in (*metrics.STATISTICS, "num_tones"):
            if name in summary:
                rows.append({"group": group, "label": label, "epoch": epoch, "count": count,
                             "statistic": name, "mean": summary[name]["mean"],
                             "std": summary[name]["std"]})

    if real_songs is not None:
        for key, song_set in (("real_songs", real_songs), ("real_windows", real_windows)):
            summary = dict(song_set.summary())
            add(key, song_set.label, "", len(song_set.statistics), summary)
            rows.append({"group": key, "label": song_set.label, "epoch": "",
                         "count": len(song_set.statistics),
                         "statistic": "repetitions_normalised",
                         **report["real"][key.split("_")[1]]["repetitions_normalised"]})
    for run in runs:
        epochs, means, stds = run.curve()
        count = None
        for i, epoch in enumerate(epochs):
            if run.epochs:
                count = len(run.epochs[epoch].statistics)
            add("run", run.label, epoch, count if count is not None else "",
                {n: {"mean": means[n][i], "std": stds[n][i]} for n in metrics.STATISTICS})
        for row in run.training_log:
            add("run_statistics_csv", run.label, row["epoch"], "",
                {n: {"mean": row[n], "std": ""} for n in metrics.STATISTICS if n in row})
    for g in generated:
        add("generated", g.label, "", len(g.statistics), g.summary())
    return rows


def _to_csv(rows) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


_SHORT = {"polyphony": "polyphony", "scale_consistency": "scale cons.",
          "repetitions": "repetitions", "tone_span": "tone span", "unique_tones": "unique",
          "intensity_span": "intens. span"}


def format_table(rows) -> str:
    """Mean ± std of each statistic: real music, the final epoch of each run, other
    generated music (the real repetitions are the normalised ones)."""
    lines: dict[str, dict[str, str]] = {}
    last_epoch: dict[str, object] = {}
    for row in rows:
        if row["group"] == "run":
            last_epoch[row["label"]] = row["epoch"]
    for row in rows:
        group, name = row["group"], row["statistic"]
        if group == "run_statistics_csv" or (group == "run" and
                                             row["epoch"] != last_epoch[row["label"]]):
            continue
        if group.startswith("real") and name == "repetitions":
            continue
        name = "repetitions" if name == "repetitions_normalised" else name
        if name not in _SHORT:
            continue
        label = row["label"] + (f" (epoch {row['epoch']})" if group == "run" else "")
        std = row["std"]
        cell = f"{row['mean']:.3g}" + (f" ± {std:.2g}" if std != "" else "")
        lines.setdefault(label, {})[name] = cell
    if not lines:
        return ""
    width = max(len(label) for label in lines)
    cols = [max(len(_SHORT[n]), *(len(v.get(n, "")) for v in lines.values()))
            for n in metrics.STATISTICS]
    header = " | ".join([" " * width] + [_SHORT[n].rjust(c)
                                         for n, c in zip(metrics.STATISTICS, cols)])
    out = [header, "-" * len(header)]
    for label, values in lines.items():
        out.append(" | ".join([label.ljust(width)] + [values.get(n, "").rjust(c)
                                                      for n, c in zip(metrics.STATISTICS,
                                                                      cols)]))
    return "\n".join(out)
