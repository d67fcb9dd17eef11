"""The evaluation's data model: sets of songs with their statistics, runs, and the result.

Songs are tone arrays ``[n, 4]`` in raw units (length ticks at 384 per quarter note,
frequency Hz, velocity 0..127, delta ticks). Every statistic is
``crnn_gan.metrics.all_statistics`` of one song; a set is summarised by the mean and the
(population) standard deviation over its songs. `Evaluation` is the one in-memory result
that `crnn_gan.evaluation.report` turns into the JSON, the CSV and the printed table.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from crnn_gan import metrics


class EvaluationError(Exception):
    """Bad input (missing run, empty folder, no readable MIDI file); the message says what."""


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
        """Mean number of tones per song (0 for no songs)."""
        return float(np.mean([s["num_tones"] for s in self.statistics])) if self.statistics else 0.0

    def summary(self) -> dict[str, dict[str, float]]:
        """``name -> {"mean", "std"}`` of the numeric statistics (empty for no songs)."""
        if not self.statistics:
            return {}
        return {name: {"mean": mean, "std": std}
                for name, (mean, std) in metrics.summarise(self.statistics).items()}

    def normalised_repetitions(self, generated_length: float) -> dict[str, float]:
        """Mean and std of ``repetitions * l_g / l_r`` song by song (songs without tones
        count 0); ``l_r`` = the song's number of tones, ``l_g`` = `generated_length`."""
        values = [metrics.normalise_real_repetitions(s["repetitions"], s["num_tones"],
                                                     generated_length)
                  if s["num_tones"] else 0.0 for s in self.statistics]
        return {"mean": float(np.mean(values)), "std": float(np.std(values))}


@dataclasses.dataclass
class Run:
    """A training run and its per-epoch statistics.

    Attributes:
        model_dir: the run's folder.
        label: "GAN", "baseline", "GAN-3", ... (`crnn_gan.evaluation.sources.run_label`).
        info: the run's config.json (``config``, ``model``, ``dataset``, ``seed``).
        epochs: per-epoch `SongSet` of the samples, sorted by epoch number.
        training_log: rows of statistics.csv as train.py wrote them (floats).
        skipped: unreadable sample files.
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
        """The samples of the last epoch (None when the run kept no samples)."""
        return self.epochs[max(self.epochs)] if self.epochs else None


@dataclasses.dataclass
class RealMusic:
    """Real music measured over whole songs and over random windows of `window` tones.

    Attributes:
        source: the TFDS spec or the MIDI folder.
        songs, windows: the two `SongSet`s.
    """

    source: str
    songs: SongSet
    windows: SongSet


@dataclasses.dataclass
class Evaluation:
    """Everything measured, and what was written: the one source of the JSON, CSV and table.

    Attributes:
        compat, repetition_length: the statistics' settings (`crnn_gan.metrics`).
        window: tones per real window; window_from: where that number came from.
        generated_length: ``l_g`` of the repetition normalisation, in tones.
        runs: the train.py runs, in the order given.
        generated: other generated music (MIDI folders, SavedModel).
        real: real music, or None.
        files: kind -> path (or list of paths) of what was written.
        warnings: problems that did not stop the evaluation.
        wav_error: why --wav rendered nothing or not everything, or None.
    """

    compat: str | None
    repetition_length: int
    window: int
    window_from: str
    generated_length: float
    runs: list[Run]
    generated: list[SongSet]
    real: RealMusic | None
    files: dict = dataclasses.field(default_factory=dict)
    warnings: list[str] = dataclasses.field(default_factory=list)
    wav_error: str | None = None

    @property
    def skipped(self) -> int:
        """Unreadable files over all sources."""
        return (sum(len(r.skipped) for r in self.runs)
                + sum(len(g.skipped) for g in self.generated)
                + (len(self.real.songs.skipped) if self.real else 0))

    def real_band(self) -> dict[str, tuple[float, float]] | None:
        """Figure 3's real band: the windows' ``(mean, std)`` of each statistic, with the
        normalised repetitions; None without real music."""
        if self.real is None:
            return None
        band = {n: (v["mean"], v["std"]) for n, v in self.real.windows.summary().items()}
        normalised = self.real.windows.normalised_repetitions(self.generated_length)
        band["repetitions"] = (normalised["mean"], normalised["std"])
        return band
