"""The whole evaluation: measure every source of a `Request`, draw, write, report.

`evaluate` reads the runs, generated and real music (`crnn_gan.evaluation.sources`) into
one `Evaluation`, draws Figure 3 (and the piano roll), writes the excerpts as MIDI (and WAV,
`crnn_gan.rendering`), then evaluation.csv and evaluation.json and the printed table, all
three from that `Evaluation` (`crnn_gan.evaluation.report`).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from crnn_gan import gfile, metrics, rendering
from crnn_gan.evaluation import report as report_lib
from crnn_gan.evaluation import sources
from crnn_gan.evaluation.request import Request
from crnn_gan.evaluation.songs import Evaluation, EvaluationError, RealMusic, Run, SongSet
from tfds_midi import codec

DEFAULT_WINDOW = 200


@dataclasses.dataclass
class Result:
    """What `evaluate` returns: the report (evaluation.json's content), the printed table
    and the warnings (problems that did not stop the evaluation)."""

    report: dict
    table: str
    warnings: list[str]


def _default_window(request: Request, runs: Sequence[Run]) -> tuple[int, str]:
    """Tones per real window, and where that number came from."""
    if request.window:
        return request.window, "--window"
    lengths = sorted({int(r.config.get("sample_steps", 0)) for r in runs} - {0})
    if lengths:
        return lengths[0], "sample_steps of the runs' config"
    if request.saved_model and request.steps:
        return request.steps, "--steps"
    return DEFAULT_WINDOW, "default"


def _measure(request: Request, log) -> Evaluation:
    """Reads and measures every source of `request`; nothing is written."""
    kwargs = {"compat": request.compat, "repetition_length": request.repetition_length}
    runs = [sources.load_run(d, **kwargs) for d in request.model_dirs]
    sources.dedupe_labels(runs)
    for run in runs:
        log(f"run {run.label}: {run.model_dir}, {len(run.epochs) or len(run.training_log)} "
            f"epochs" + (f", {len(run.skipped)} unreadable sample files skipped"
                         if run.skipped else ""))
    window, window_from = _default_window(request, runs)

    generated: list[SongSet] = []
    for folder in request.samples:
        label = f"samples: {os.path.basename(folder.rstrip('/'))}"
        generated.append(sources.read_midi_folder(folder, label, **kwargs))
    if request.saved_model:
        steps = request.steps or window
        songs = sources.generate_from_saved_model(request.saved_model, request.num_samples,
                                                  steps, seed=request.seed)
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

    real = None
    if request.real or request.midi_dir:
        if request.real:
            songs, names = sources.load_tfds_songs(request.real, request.data_dir)
            real_songs = SongSet.measure(f"real songs: {request.real}", songs, names, **kwargs)
        else:
            real_songs = sources.read_midi_folder(
                request.midi_dir, f"real songs: {request.midi_dir}", **kwargs)
        windows, names = sources.random_windows(real_songs.songs, real_songs.names, window,
                                                request.real_windows, seed=request.seed)
        real_windows = SongSet.measure(f"real windows of {window} tones", windows, names,
                                       **kwargs)
        log(f"real music: {len(real_songs.songs)} songs"
            + (f" ({len(real_songs.skipped)} unreadable files skipped)" if real_songs.skipped
               else "") + f", {len(windows)} windows of {window} tones")
        real = RealMusic(request.real or request.midi_dir, real_songs, real_windows)
    return Evaluation(request.compat, request.repetition_length, window, window_from,
                      generated_length, runs, generated, real)


def _draw_figure3(evaluation: Evaluation, path: str) -> None:
    from crnn_gan import plots

    e = evaluation
    curves = []
    for run in e.runs:
        epochs, means, _ = run.curve()
        curves.append(plots.Curve(run.label, epochs, means,
                                  pretrain_epochs=run.config.get("pretrain_epochs")))
    references = [(g.label, {n: v["mean"] for n, v in g.summary().items()})
                  for g in e.generated]
    title = ("Statistics of generated music over training" if e.runs
             else "Statistics of generated and real music") + (
        f" (compat={e.compat})" if e.compat else "")
    note = (f"real: normalised to {e.generated_length:.0f} tones"
            if e.real is not None else None)
    plots.save(plots.figure3(curves, e.real_band(), references, units=metrics.UNITS,
                             title=title,
                             real_label=f"real music, {e.window}-tone windows (mean ± std)",
                             repetition_length=e.repetition_length,
                             repetitions_note=note),
               path)


def _generated_excerpts(runs, generated, count) -> list[tuple[str, np.ndarray]]:
    """Up to `count` ``(title, tones [n, 4])``, taking turns between the sources (the runs'
    final epochs, then the other generated music)."""
    groups = []
    for run in runs:
        final = run.final()
        if final is not None:
            epoch = max(run.epochs)
            groups.append([(f"{run.label}, epoch {epoch}: {os.path.basename(n)}", s)
                           for n, s in zip(final.names, final.songs)])
    for g in generated:
        groups.append([(f"{g.label}: {os.path.basename(n)}", s)
                       for n, s in zip(g.names, g.songs)])
    excerpts = []
    for k in range(max((len(s) for s in groups), default=0)):
        for group in groups:
            if k < len(group) and len(excerpts) < count:
                excerpts.append(group[k])
    return excerpts


def _write_excerpts(gen_excerpts, real_excerpts, folder) -> list[str]:
    """``folder/generated_NN.mid`` and ``folder/real_NN.mid``; returns their paths."""
    tf.io.gfile.makedirs(folder)
    paths = []
    for prefix, excerpts in (("generated", gen_excerpts), ("real", real_excerpts)):
        for k, (_, tones) in enumerate(excerpts):
            path = f"{folder}/{prefix}_{k:02d}.mid"
            gfile.write_bytes(path, codec.tones_to_midi_bytes(tones))
            paths.append(path)
    return paths


def _listen(evaluation: Evaluation, request: Request, out: str) -> None:
    """--pianoroll and --wav: the excerpts drawn, written as MIDI, rendered to WAV."""
    from crnn_gan import plots

    e = evaluation
    gen_excerpts = _generated_excerpts(e.runs, e.generated, request.excerpts)
    real_excerpts = []
    if e.real is not None:
        real_excerpts = [(f"real: {os.path.basename(n)}", s) for n, s in
                         zip(e.real.windows.names[:request.excerpts],
                             e.real.windows.songs[:request.excerpts])]
    if not gen_excerpts and not real_excerpts:
        e.warnings.append("--pianoroll/--wav: no music to show")
        return
    if request.pianoroll:
        path = f"{out}/pianoroll.png"
        plots.save(plots.pianoroll_figure(gen_excerpts, real_excerpts), path)
        e.files["pianoroll"] = path
    midi_paths = _write_excerpts(gen_excerpts, real_excerpts, f"{out}/excerpts")
    e.files["excerpts"] = midi_paths
    if request.wav:
        if "://" in out:
            e.warnings.append("--wav needs a local --output_dir")
        else:
            wavs, problem = rendering.render_audio(midi_paths, "wav", request.soundfont,
                                                   out_dir=f"{out}/wav")
            e.files["wav"] = wavs
            if problem:
                e.warnings.append(problem)
                e.wav_error = problem


def evaluate(request: Request, log=print) -> Result:
    """Runs the whole evaluation and writes JSON, CSV and figures to ``request.output_dir``.

    Raises:
        EvaluationError: for bad input (see `crnn_gan.evaluation.sources`).
    """
    if request.compat is not None and request.compat not in metrics.COMPAT_MODES:
        raise EvaluationError(f"--compat must be one of {metrics.COMPAT_MODES}")
    problem = rendering.soundfont_flag_problem(request.soundfont, request.wav, "--wav")
    if problem:
        raise EvaluationError(problem)
    if request.seed < 0:
        raise EvaluationError(f"--seed must be >= 0, got {request.seed}")
    if request.figure and tf.io.gfile.isdir(request.figure):
        raise EvaluationError(f"--figure={request.figure} is a folder: give a .png path")
    out = request.output_dir.rstrip("/")
    problem = gfile.make_folder(out, "--output_dir")  # before measuring: fails fast
    if problem:
        raise EvaluationError(problem)
    evaluation = _measure(request, log)

    figure_path = request.figure or f"{out}/figure3.png"
    try:
        _draw_figure3(evaluation, figure_path)
    except (OSError, tf.errors.OpError) as error:
        flag = f"--figure={figure_path}" if request.figure else f"--output_dir={out}"
        raise EvaluationError(f"{flag}: cannot write {figure_path} "
                              f"({getattr(error, 'strerror', None) or error})") from None
    evaluation.files["figure"] = figure_path
    if request.pianoroll or request.wav:
        _listen(evaluation, request, out)

    evaluation.files["json"] = f"{out}/evaluation.json"
    evaluation.files["csv"] = f"{out}/evaluation.csv"
    report = report_lib.to_json(evaluation)
    gfile.write_text(evaluation.files["csv"],
                     report_lib.to_csv(report_lib.csv_rows(evaluation)))
    gfile.write_text(evaluation.files["json"],
                     json.dumps(report, indent=2, default=report_lib.json_default))
    return Result(report, report_lib.format_table(evaluation), evaluation.warnings)
