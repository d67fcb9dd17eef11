"""evaluate.py and crnn_gan.evaluation: end to end on a tiny run, MIDI folders, a SavedModel,
TFDS real music, and bad input."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from crnn_gan import metrics, plots, training
from crnn_gan.config import preset
from crnn_gan.evaluation import orchestration, sources
from crnn_gan.evaluation import report as report_lib
from crnn_gan.evaluation import request as request_lib
from crnn_gan.evaluation import songs as songs_lib
from crnn_gan.evaluation.songs import EvaluationError
from tests import midi_fixtures
from tfds_midi import codec
from tfds_midi.pipeline import FeatureScaler

REPO = pathlib.Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_evaluate(*args, path_env: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if path_env is not None:
        env["PATH"] = path_env
    return subprocess.run([sys.executable, str(REPO / "evaluate.py"), *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def assert_png(path: pathlib.Path) -> None:
    data = path.read_bytes()
    assert len(data) > 10_000 and data.startswith(PNG_MAGIC), path


def write_songs(folder: pathlib.Path, count: int, seed: int = 0, num_tones: int = 60) -> list:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    songs = [midi_fixtures.random_song(rng, num_tones) for _ in range(count)]
    for k, song in enumerate(songs):
        (folder / f"song_{k}.mid").write_bytes(codec.tones_to_midi_bytes(song))
    return songs


def write_broken(folder: pathlib.Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        (folder / f"broken_{k}.mid").write_bytes(b"MThd not really a midi file" * (k + 1))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> pathlib.Path:
    """A real 2-epoch tiny training run on synthetic songs (about 10 s)."""
    model_dir = tmp_path_factory.mktemp("run") / "gan"
    rng = np.random.default_rng(0)
    songs = [midi_fixtures.random_song(rng, 80) for _ in range(8)]
    training.train(preset("tiny"), training.RunSpec(model_dir=str(model_dir),
                                                    samples_per_epoch=2), songs=songs)
    return model_dir


@pytest.fixture(scope="module")
def tfds_real(tmp_path_factory) -> pathlib.Path:
    """A prepared crnn_gan_midi/manual dataset of synthetic songs; returns its data_dir."""
    root = tmp_path_factory.mktemp("tfds")
    midi_fixtures.write_corpus(root / "manual", midi_fixtures.sources_covering_splits(),
                               num_tones=60)
    import tfds_midi.crnn_gan_midi  # noqa: F401  (registers crnn_gan_midi)

    builder = tfds.builder("crnn_gan_midi/manual", data_dir=str(root / "data"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(root / "manual")))
    return root / "data"


# --------------------------------------------------------------------------------------
# End to end.
# --------------------------------------------------------------------------------------

def test_end_to_end_on_a_tiny_run_with_tfds_real_music(tiny_run, tfds_real, tmp_path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    synth = fake_bin / "fluidsynth"
    # A stand-in for fluidsynth: writes the -F file.
    synth.write_text('#!/bin/sh\nwhile [ $# -gt 0 ]; do\n  if [ "$1" = "-F" ]; then shift; '
                     'printf RIFF > "$1"; fi\n  shift\ndone\n')
    synth.chmod(0o755)
    soundfont = tmp_path / "gm.sf2"
    soundfont.write_bytes(b"RIFF\x04\x00\x00\x00sfbk")  # a soundfont's header
    out = tmp_path / "out"
    result = run_evaluate(f"--model_dir={tiny_run}", "--real=crnn_gan_midi/manual:train",
                          f"--data_dir={tfds_real}", f"--output_dir={out}", "--pianoroll",
                          "--wav", f"--soundfont={soundfont}", "--real_windows=50",
                          path_env=f"{fake_bin}:{os.environ.get('PATH', '')}")
    assert result.returncode == 0, result.stderr
    assert "GAN (epoch 2)" in result.stdout and "real windows of 16 tones" in result.stdout
    assert "Traceback" not in result.stderr
    assert_png(out / "figure3.png")
    assert_png(out / "pianoroll.png")
    report = json.loads((out / "evaluation.json").read_text())

    # Per-epoch values: the training log is statistics.csv verbatim, and the statistics
    # recomputed from the run's MIDI samples agree with it up to MIDI's integer rounding.
    with open(tiny_run / "statistics.csv") as f:
        logged = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    (run,) = report["runs"]
    assert run["label"] == "GAN" and run["curve_source"] == "samples"
    assert [e["epoch"] for e in run["epochs"]] == [1, 2]
    for row, log, epoch in zip(run["training_log"], logged, run["epochs"]):
        for name in metrics.STATISTICS:
            assert row[name] == pytest.approx(log[name], abs=1e-12)
            tolerance = 0.5 if name == "intensity_span" else 1e-6  # velocities are rounded
            assert epoch[name]["mean"] == pytest.approx(log[name], abs=tolerance), name
        assert epoch["num_samples"] == 2

    real = report["real"]
    assert real["songs"]["count"] == 3 and real["windows"]["count"] == 50
    assert report["window"] == 16 and report["window_from"].startswith("sample_steps")
    assert set(real["windows"]["summary"]) >= set(metrics.STATISTICS)
    assert real["windows"]["repetitions_normalised"]["mean"] >= 0
    # Excerpts: the final epoch's 2 samples and 3 (--excerpts) real windows, as MIDI and WAV.
    assert len(report["files"]["excerpts"]) == 5
    assert len(report["files"]["wav"]) == 5
    assert all(pathlib.Path(p).read_bytes() == b"RIFF" for p in report["files"]["wav"])

    with open(out / "evaluation.csv") as f:
        rows = list(csv.DictReader(f))
    groups = {row["group"] for row in rows}
    assert groups == {"real_songs", "real_windows", "run", "run_statistics_csv"}
    polyphony_2 = [r for r in rows if r["group"] == "run_statistics_csv" and r["epoch"] == "2"
                   and r["statistic"] == "polyphony"]
    assert float(polyphony_2[0]["mean"]) == pytest.approx(logged[1]["polyphony"])


def test_midi_folders_with_broken_files_and_missing_fluidsynth(tmp_path):
    generated, real = tmp_path / "generated", tmp_path / "real"
    write_songs(generated, 3, seed=1)
    write_broken(generated, 2)
    write_songs(real / "bach", 4, seed=2, num_tones=120)
    out = tmp_path / "out"
    empty_path = tmp_path / "nothing_on_path"
    empty_path.mkdir()
    result = run_evaluate(f"--samples={generated}", f"--midi_dir={real}", f"--output_dir={out}",
                          "--window=50", "--real_windows=20", "--wav", path_env=str(empty_path))
    assert result.returncode == 0, result.stderr
    # --wav without fluidsynth: a clear message with the install line; everything else done.
    assert "fluidsynth" in result.stderr and "apt-get install fluidsynth fluid-soundfont-gm" \
        in result.stderr
    assert "2 unreadable MIDI files skipped" in result.stdout
    assert_png(out / "figure3.png")
    report = json.loads((out / "evaluation.json").read_text())
    (samples,) = report["generated"]
    assert samples["count"] == 3 and samples["skipped"] == 2
    assert {pathlib.Path(s["path"]).name for s in samples["skipped_files"]} == {
        "broken_0.mid", "broken_1.mid"}
    assert report["skipped"] == 2
    assert report["real"]["songs"]["count"] == 4
    assert report["wav_error"].startswith("--wav: missing the fluidsynth program")
    # The generated songs' statistics are exactly those of the files.
    songs, _, _ = sources.read_midi_files(sorted(str(p) for p in generated.glob("song_*")))
    expected = metrics.summarise([metrics.all_statistics(s) for s in songs])
    for name in metrics.STATISTICS:
        assert samples["summary"][name]["mean"] == pytest.approx(expected[name][0])
    # l_g: mean length of the generated songs; real counts scaled by l_g / l_r per window.
    assert report["generated_length"] == pytest.approx(60.0)
    windows = sources.random_windows(
        *sources.read_midi_files(sorted(str(p) for p in (real / "bach").glob("*.mid")))[:2],
        window=50, num_windows=20, seed=0)[0]
    normalised = [metrics.all_statistics(w)["repetitions"] * 60.0 / len(w) for w in windows]
    assert report["real"]["windows"]["repetitions_normalised"]["mean"] == pytest.approx(
        np.mean(normalised))


def test_saved_model_generates_and_is_evaluated(tmp_path):
    config = preset("tiny", tones_per_step=3)
    generator = training.build_generator(config)
    generator.build()
    scaler = FeatureScaler(np.array([192, 440, 80, 96] * 3, np.float32),
                           np.array([50, 100, 20, 50] * 3, np.float32))
    module = tf.Module()
    module.generator = generator
    module.mean, module.std = tf.constant(scaler.mean), tf.constant(scaler.std)

    @tf.function(input_signature=[tf.TensorSpec([None, None, 12], tf.float32, name="noise")])
    def serve(noise):
        raw = module.generator(noise) * module.std + module.mean
        shape = tf.shape(raw)
        return {"tones": tf.reshape(raw, [shape[0], shape[1], 3, 4])}

    tf.saved_model.save(module, str(tmp_path / "export" / "saved_model"),
                        signatures={"serving_default": serve})
    songs = sources.generate_from_saved_model(str(tmp_path / "export"), 3, 10)
    assert len(songs) == 3 and all(s.ndim == 2 and s.shape[1] == 4 for s in songs)
    assert all(len(s) <= 30 for s in songs)

    result = orchestration.evaluate(request_lib.Request(
        output_dir=str(tmp_path / "out"), saved_model=str(tmp_path / "export" / "saved_model"),
        num_samples=4, steps=10, pianoroll=True), log=lambda _: None)
    (generated,) = result.report["generated"]
    assert generated["label"] == "SavedModel" and generated["count"] == 4
    assert_png(tmp_path / "out" / "figure3.png")
    assert_png(tmp_path / "out" / "pianoroll.png")
    assert "SavedModel" in result.table


# --------------------------------------------------------------------------------------
# Bad input.
# --------------------------------------------------------------------------------------

def test_empty_directory_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_evaluate(f"--samples={tmp_path / 'empty'}", f"--output_dir={tmp_path / 'o'}")
    assert result.returncode == 2
    assert f"no MIDI files (*.mid, *.midi) in {tmp_path / 'empty'}" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_run_is_a_clear_error(tmp_path):
    result = run_evaluate(f"--model_dir={tmp_path / 'nope'}", f"--output_dir={tmp_path / 'o'}")
    assert result.returncode == 2
    assert f"run directory not found: {tmp_path / 'nope'}" in result.stderr
    assert "Traceback" not in result.stderr
    a_file = tmp_path / "song.mid"
    a_file.write_bytes(b"MThd")
    with pytest.raises(EvaluationError, match="song.mid is a file, not the folder of a train"):
        sources.load_run(str(a_file))
    with pytest.raises(EvaluationError, match="song.mid is a file: give the folder of MIDI"):
        sources.list_midi_files(str(a_file))


def test_only_broken_files_is_a_clear_error(tmp_path):
    write_broken(tmp_path / "broken", 3)
    with pytest.raises(EvaluationError,
                       match=r"none of the 3 MIDI files in .*broken could be read"):
        sources.read_midi_folder(str(tmp_path / "broken"), "x")


def test_run_without_config_or_statistics(tmp_path, tiny_run):
    (tmp_path / "noconfig").mkdir()
    with pytest.raises(EvaluationError, match=r"config\.json is missing"):
        sources.load_run(str(tmp_path / "noconfig"))
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((tiny_run / "config.json").read_text())
    with pytest.raises(EvaluationError, match=r"no statistics.*statistics\.csv"):
        sources.load_run(str(bare))
    # statistics.csv alone is enough: the curve then comes from it.
    (bare / "statistics.csv").write_text((tiny_run / "statistics.csv").read_text())
    run = sources.load_run(str(bare))
    epochs, means, _ = run.curve()
    assert epochs == [1, 2] and report_lib.run_json(run)["curve_source"] == "statistics.csv"
    assert means["tone_span"] == [row["tone_span"] for row in run.training_log]


def test_broken_samples_in_a_run_are_skipped_and_counted(tmp_path, tiny_run):
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)
    write_broken(run_dir / "samples" / "epoch_0002", 1)
    write_broken(run_dir / "samples" / "epoch_0003", 2)  # an epoch with nothing readable
    run = sources.load_run(str(run_dir))
    assert sorted(run.epochs) == [1, 2] and len(run.skipped) == 3
    assert len(run.epochs[2].statistics) == 2


def test_unprepared_tfds_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(EvaluationError, match="cannot load real music"):
        sources.load_tfds_songs("crnn_gan_midi/default:train", str(tmp_path))
    # An unknown dataset: one line (TFDS's message goes on to list every dataset it has).
    with pytest.raises(EvaluationError) as error:
        sources.load_tfds_songs("no_such_dataset:train", str(tmp_path))
    assert "Dataset no_such_dataset not found. Prepare it first" in str(error.value)
    assert "\n" not in str(error.value)


def test_outputs_that_cannot_be_written_are_clear_errors(tmp_path):
    """Checked before anything is measured (a figure path: when it is written), each naming
    its flag; nothing of a good folder is lost."""
    write_songs(tmp_path / "songs", 2)
    a_file = tmp_path / "a_file"
    a_file.write_text("kept")
    base = {"output_dir": str(tmp_path / "out"), "samples": [str(tmp_path / "songs")],
            "midi_dir": str(tmp_path / "songs"), "real_windows": 5, "window": 20}
    for changes, message in (
            ({"output_dir": str(a_file)}, "--output_dir=.*a_file is a file: give a folder"),
            ({"output_dir": str(a_file / "out")}, "--output_dir=.*a_file/out cannot be made"),
            ({"figure": str(tmp_path)}, "--figure=.* is a folder: give a .png path"),
            ({"figure": str(a_file / "f.png")}, "--figure=.*a_file/f.png: cannot write"),
            ({"seed": -1}, "--seed must be >= 0, got -1"),
            ({"soundfont": str(a_file)}, "--soundfont needs --wav"),
            ({"soundfont": str(a_file), "wav": True}, "--soundfont=.*a_file is not a "
             "soundfont")):
        with pytest.raises(EvaluationError, match=message):
            orchestration.evaluate(request_lib.Request(**{**base, **changes}),
                                   log=lambda *_: None)
    assert a_file.read_text() == "kept"


# --------------------------------------------------------------------------------------
# Pieces.
# --------------------------------------------------------------------------------------

@pytest.mark.parametrize("info, label", [
    ({"model": "gan", "config": {"tones_per_step": 1, "feature_matching": True}}, "GAN"),
    ({"model": "baseline", "config": {"tones_per_step": 1}}, "baseline"),
    ({"model": "gan", "config": {"tones_per_step": 3, "feature_matching": True}}, "GAN-3"),
    ({"model": "gan", "config": {"tones_per_step": 1, "feature_matching": False}},
     "GAN (no FM)"),
    ({"model": "gan", "config": {"tones_per_step": 1, "feature_matching": False,
                                 "gradient_estimator": "score_function"}}, "GAN"),
])
def test_run_labels(info, label):
    assert sources.run_label(info) == label


def test_parse_tfds_spec():
    assert sources.parse_tfds_spec("crnn_gan_midi/default:test") == (
        "crnn_gan_midi/default", "test")
    assert sources.parse_tfds_spec("crnn_gan_midi/default") == ("crnn_gan_midi/default",
                                                                "train")


def test_request_flags():
    """evaluate.py's flags come from Request: one per field, compat's choices are the
    statistics' modes, --model_dir's values may be comma-separated."""
    flags = {flag.name or field: (flag, default) for field, flag, default in request_lib.flags()}
    assert len(flags) == len(dataclasses.fields(request_lib.Request))
    assert flags["compat"][0].choices == metrics.COMPAT_MODES
    assert flags["model_dir"][1] == [] and flags["num_samples"][1] == 20
    assert request_lib.split_commas(["a,b", "c", ",d,"]) == ["a", "b", "c", "d"]


def test_table_json_and_csv_come_from_one_evaluation():
    """The table: real songs and windows with normalised repetitions, each run's last epoch."""
    song = np.array([[96, 261.63, 80, 96]] * 12, np.float32)
    real = songs_lib.RealMusic("r", songs_lib.SongSet.measure("real songs", [song], ["r"]),
                               songs_lib.SongSet.measure("real windows", [song], ["r@0"]))
    run = songs_lib.Run("runs/gan", "GAN", {"config": {}}, {}, [
        {"epoch": 1, **{n: 1.0 for n in metrics.STATISTICS}},
        {"epoch": 2, **{n: 2.0 for n in metrics.STATISTICS}}])
    evaluation = songs_lib.Evaluation(None, 3, 12, "--window", 6.0, [run], [], real)
    lines = report_lib.format_table(evaluation).splitlines()
    labels = [line.split(" | ")[0].strip() for line in lines[2:]]
    assert labels == ["real songs", "real windows", "GAN (epoch 2)"]
    assert lines[4].count("2 ± 0") == len(metrics.STATISTICS)
    normalised = report_lib.to_json(evaluation)["real"]["windows"]["repetitions_normalised"]
    assert normalised["mean"] == metrics.all_statistics(song)["repetitions"] * 6.0 / 12
    assert f"{normalised['mean']:.3g} ± {normalised['std']:.2g}" in lines[3]
    rows = report_lib.csv_rows(evaluation)
    assert {r["group"] for r in rows} == {"real_songs", "real_windows", "run",
                                          "run_statistics_csv"}


def test_random_windows_have_the_window_length():
    songs = [np.ones((n, 4), np.float32) for n in (10, 30, 50)]
    windows, names = sources.random_windows(songs, ["a", "b", "c"], 20, 40, seed=1)
    assert len(windows) == 40 and all(len(w) == 20 for w in windows)
    assert all(n.split("@")[0] in ("b", "c") for n in names)


def test_figure3_without_runs_and_without_real(tmp_path):
    fig = plots.figure3([], None, [("samples", {n: 1.0 for n in metrics.STATISTICS})])
    assert len(fig.axes) == 6
    assert [ax.get_title() for ax in fig.axes][:2] == ["Polyphony", "Scale consistency"]
    plots.save(fig, str(tmp_path / "f.png"))
    assert_png(tmp_path / "f.png")
