"""Every entry point answers bad input with one line naming it and exit status 2, never a
traceback: train.py, evaluate.py, python -m export, python -m tfds_midi, both stand-alone
scripts and generate.py.

Table-driven: each entry point runs all its rows in one subprocess
(tests/entry_point_runner.py runs the entry point afresh as __main__ for every row, reusing
only the imports), the subprocesses two at a time.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import mido
import numpy as np
import pytest

from crnn_gan import config as config_lib
from crnn_gan import training
from tests import midi_fixtures

ROOT = pathlib.Path(__file__).resolve().parents[1]
TINY = config_lib.preset("tiny").replace(epochs=1)


def _snapshot(folder) -> dict:
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(),
                                         p.stat().st_mtime_ns)
            for p in sorted(pathlib.Path(folder).rglob("*")) if p.is_file()}


def _rows(tmp: pathlib.Path, run: pathlib.Path) -> dict:
    """entry -> [(id, args, expected status, [texts the last stderr line must hold])].

    Status 0 rows (the positive controls) check stdout instead.
    """
    data = f"--data_dir={tmp / 'tfds'}"
    out = tmp / "out"
    other = tmp / "an_export"
    empty = tmp / "empty"
    broken_midi = tmp / "broken_midi"
    readme = str(ROOT / "README.md")
    runs = {name: tmp / name
            for name in ("not_json", "unfinished", "mismatch", "bad_scaler", "scaler_shape")}
    tiny = ["--preset=tiny", "--epochs=1"]
    small_corpus = ["--dataset=crnn_gan_midi/manual", f"--manual_dir={tmp / 'corpus'}",
                    f"--data_dir={tmp / 'tfds_manual'}"]
    rows = {
        "train.py": [
            ("bad_flag_value", [*tiny, "--units=abc", f"--model_dir={out}"], 2,
             ["flag --units=abc"]),
            ("bad_config_value", [*tiny, "--units=0", f"--model_dir={out}"], 2,
             ["--units must be an integer >= 1, got 0"]),
            ("no_model_dir", tiny, 2, ["--model_dir is required"]),
            ("negative_seed", [*tiny, "--seed=-1", f"--model_dir={out}"], 2,
             ["flag --seed=-1: -1 is not an integer in the range [0, 4294967295]"]),
            ("extra_argument", [*tiny, f"--model_dir={out}", "extra"], 2,
             ["unexpected arguments: extra"]),
            ("manual_dir_missing", [*tiny, f"--model_dir={out}", "--dataset=crnn_gan_midi/manual",
                                    "--manual_dir=/nonexistent", data], 2,
             ["--manual_dir=/nonexistent does not exist", "folder of your MIDI files"]),
            ("unknown_config", [*tiny, f"--model_dir={out}", "--dataset=crnn_gan_midi/nope",
                                data], 2,
             ["--dataset=crnn_gan_midi/nope", "no config 'nope'", "default, music21_full"]),
            ("not_crnn_gan_midi", [*tiny, f"--model_dir={out}", "--dataset=mnist", data], 2,
             ["--dataset=mnist: train on crnn_gan_midi/<config>"]),
            ("bad_threads", [*tiny, f"--model_dir={out}", "--intra_op_threads=-2", data], 2,
             ["--intra_op_threads/--inter_op_threads"]),
            ("other_config", [*tiny, "--units=16", "--seq_len=4", f"--model_dir={run}", data], 2,
             [f"--model_dir={run} holds a run of another config",
              "--units: 8 in the run, 16 in this command", "--seq_len: 8 in the run, 4",
              "new --model_dir", "--overwrite"]),
            ("other_model", [*tiny, "--model=baseline", f"--model_dir={run}", data], 2,
             ["--model: 'gan' in the run, 'baseline' in this command", "--overwrite"]),
            ("model_dir_is_a_file", [*tiny, f"--model_dir={readme}", data], 2,
             ["is a file, not a folder"]),
            ("model_dir_not_a_run", [*tiny, f"--model_dir={other}", data], 2,
             ["holds files that are not a train.py run's", "give a new or empty folder"]),
            ("overwrite_never_deletes_other_files", [*tiny, "--overwrite",
                                                     f"--model_dir={other}", data], 2,
             ["holds files that are not a train.py run's (export.json, saved_model)"]),
            # These two read songs: a small manual corpus (the default one would be rendered).
            ("model_dir_cannot_be_made", [*tiny, f"--model_dir={readme}/run", *small_corpus], 2,
             [f"--model_dir={readme}/run cannot be made"]),
            ("fewer_windows_than_a_batch", [*tiny, "--batch_size=100000",
                                            f"--model_dir={tmp / 'few'}", *small_corpus], 2,
             ["--batch_size=100000: an epoch has", "fewer than one batch"]),
            ("data_dir_is_a_file", [*tiny, f"--model_dir={out}", f"--data_dir={readme}"], 2,
             [f"--data_dir={readme} is a file: give a folder"]),
            ("finished_run", [*tiny, f"--model_dir={run}", data], 0,
             [f"{run} has finished: 1 epoch trained", "raise --epochs above 1"]),
            ("help", ["--help"], 0, ["Try --helpfull", "--model_dir"]),
            ("units_beyond_memory", [*tiny, "--units=200000", f"--model_dir={tmp / 'huge'}",
                                     data], 2,
             ["--units=200000 with --num_layers=2", "give a smaller --units"]),
            ("tpu_without_a_tpu", [*tiny, f"--model_dir={tmp / 'tpu'}", "--strategy=tpu", data],
             2, ["--strategy=tpu: no TPU found", "give --tpu="]),
        ],
        "evaluate.py": [
            ("missing_run", ["--model_dir=/nonexistent", f"--output_dir={out}"], 2,
             ["run directory not found: /nonexistent"]),
            ("no_output_dir", [f"--model_dir={run}"], 2, ["--output_dir is required"]),
            ("bad_count", ["--samples=x", f"--output_dir={out}", "--num_samples=0"], 2,
             ["--num_samples must be >= 1 and at most 1000, got 0"]),
            ("too_long_window", ["--samples=x", f"--output_dir={out}", "--window=100000000"], 2,
             ["--window must be >= 1 and at most 100000, got 100000000"]),
            ("unknown_flag", ["--bogus"], 2, ["Unknown command line flag 'bogus'"]),
            ("help", ["--helpshort"], 0, ["Try --helpfull", "--output_dir"]),
        ],
        "-m export": [
            ("help", ["-?"], 0, ["Try --helpfull", "--tflite_steps"]),
            ("output_is_a_file", [f"--model_dir={run}", f"--output={readme}"], 2,
             [f"--output={readme} is a file: give a folder for the export"]),
            ("missing_run", ["--model_dir=/nonexistent", f"--output={out}"], 2,
             ["--model_dir=/nonexistent does not exist", "train.py run"]),
            ("an_export", [f"--model_dir={other}", f"--output={out}"], 2,
             ["is an export, not a training run", "(runs/demo/run)"]),
            ("config_not_json", [f"--model_dir={runs['not_json']}", f"--output={out}"], 2,
             [f"{runs['not_json']}/config.json is not valid JSON"]),
            ("unfinished_run", [f"--model_dir={runs['unfinished']}", f"--output={out}"], 2,
             ["has no generator.weights.h5: the run has not finished",
              "run its train.py command again".capitalize()]),
            ("weights_do_not_fit", [f"--model_dir={runs['mismatch']}", f"--output={out}"], 2,
             ["generator.weights.h5 does not fit", "config.json"]),
            ("scaler_of_one_feature", [f"--model_dir={runs['scaler_shape']}",
                                       f"--output={tmp / 'never'}"], 2,
             ["scaler.json is damaged: it scales 1 features, the generator of config.json "
              "writes 4"]),
            ("scaler_damaged", [f"--model_dir={runs['bad_scaler']}", f"--output={out}"], 2,
             ["scaler.json is damaged"]),
            ("output_is_a_file", [f"--model_dir={run}", f"--output={readme}"], 2,
             [f"--output={readme} is a file"]),
            ("output_is_the_run", [f"--model_dir={run}", f"--output={run}"], 2,
             ["is the run folder"]),
            ("no_model_dir", [f"--output={out}"], 2, ["--model_dir must have a value"]),
            ("bad_steps", [f"--model_dir={run}", f"--output={out}", "--tflite_steps=-1"], 2,
             ["flag --tflite_steps=-1"]),
            ("too_many_steps", [f"--model_dir={run}", f"--output={out}",
                                "--tflite_steps=100000000"], 2, ["flag --tflite_steps=100000000"]),
        ],
        "-m tfds_midi": [
            ("help", ["--help"], 0, ["Try --helpfull", "--manual_dir"]),
            ("unknown_config", ["--config=nope", data], 2,
             ["--config=nope: crnn_gan_midi has no config 'nope'", "manual"]),
            ("manual_without_dir", ["--config=manual", data], 2,
             ["crnn_gan_midi/manual needs --manual_dir=FOLDER"]),
            ("manual_dir_missing", ["--config=manual", "--manual_dir=/nonexistent", data], 2,
             ["--manual_dir=/nonexistent does not exist"]),
            ("manual_dir_empty", ["--config=manual", f"--manual_dir={empty}", data], 2,
             [f"--manual_dir={empty} holds no MIDI file"]),
            ("manual_dir_unreadable", ["--config=manual", f"--manual_dir={broken_midi}", data],
             2, ["No usable MIDI file for crnn_gan_midi/manual: 1 files, all skipped",
                 "bach/broken.mid"]),
            ("bad_flag_value", ["--show_tones=-1", data], 2, ["flag --show_tones=-1"]),
            ("data_dir_is_a_file", [f"--data_dir={readme}"], 2,
             [f"--data_dir={readme} is a file: give a folder"]),
            ("manual_dir_for_another_config", ["--config=default", f"--manual_dir={empty}",
                                               data], 2,
             [f"--manual_dir={empty}: only crnn_gan_midi/manual reads MIDI files"]),
        ],
        "export/generate_tflite.py": [
            ("missing_model", ["--model", "/nonexistent.tflite", "--output", str(tmp / "a.mid")],
             2, ["--model /nonexistent.tflite: no such file"]),
            ("not_a_model", ["--model", readme, "--output", str(tmp / "a.mid")], 2,
             [f"--model {readme} is not a TFLite model", "generator.tflite"]),
            ("output_folder_missing", ["--model", readme, "--output", "/nonexistent/dir/a.mid"],
             2, ["--output /nonexistent/dir/a.mid: the folder /nonexistent/dir does not exist"]),
            ("output_is_a_folder", ["--model", readme, "--output", str(tmp)], 2,
             [f"--output {tmp} is a folder"]),
            ("zero_steps", ["--model", readme, "--output", str(tmp / "a.mid"), "--steps", "0"], 2,
             ["--steps must be >= 1 and at most 100000, got 0"]),
            ("zero_threads", ["--model", readme, "--output", str(tmp / "a.mid"), "--threads",
                              "0"], 2, ["--threads must be >= 1 and at most 256, got 0"]),
            ("too_many_threads", ["--model", readme, "--output", str(tmp / "a.mid"), "--threads",
                                  "100000"], 2, ["--threads must be >= 1 and at most 256"]),
            ("too_many_steps", ["--model", readme, "--output", str(tmp / "a.mid"), "--steps",
                                "999999999999"], 2, ["at most 100000, got 999999999999"]),
            ("negative_seed", ["--model", readme, "--output", str(tmp / "a.mid"), "--seed",
                               "-1"], 2, ["--seed must be >= 0, got -1"]),
            ("steps_not_a_number", ["--model", readme, "--output", "a.mid", "--steps", "x"], 2,
             ["argument --steps: invalid int value: 'x'"]),
            ("no_model", ["--output", "a.mid"], 2,
             ["the following arguments are required: --model"]),
            ("primer_not_midi", ["--model", readme, "--output", str(tmp / "a.mid"), "--primer",
                                 readme], 2, [f"--primer {readme} is not a readable MIDI file"]),
            ("primer_without_tones", ["--model", readme, "--output", str(tmp / "a.mid"),
                                      "--primer", str(tmp / "silent.mid")], 2,
             ["silent.mid holds no notes"]),
        ],
        "export/generate_savedmodel.py": [
            ("not_a_saved_model", ["--model", str(empty), "--output", str(tmp / "a.mid")], 2,
             [f"--model {empty} is not a SavedModel folder (no saved_model.pb)"]),
            ("missing_model", ["--model", "/nonexistent", "--output", str(tmp / "a.mid")], 2,
             ["--model /nonexistent does not exist"]),
            ("an_export_folder", ["--model", str(other), "--output", str(tmp / "a.mid")], 2,
             [f"is an export folder: give its SavedModel, {other}/saved_model"]),
            ("output_folder_missing", ["--model", str(empty), "--output",
                                       "/nonexistent/dir/a.mid"], 2,
             ["--output /nonexistent/dir/a.mid: the folder /nonexistent/dir does not exist"]),
            ("zero_steps", ["--model", str(empty), "--output", "a.mid", "--steps", "0"], 2,
             ["--steps must be >= 1 and at most 100000, got 0"]),
            ("too_many_steps", ["--model", str(empty), "--output", "a.mid", "--steps",
                                "100001"], 2, ["at most 100000, got 100001"]),
            ("negative_seed", ["--model", str(empty), "--output", "a.mid", "--seed", "-1"], 2,
             ["--seed must be >= 0, got -1"]),
            ("primer_empty", ["--model", str(empty), "--output", str(tmp / "a.mid"), "--primer",
                              str(tmp / "empty.mid")], 2,
             ["empty.mid is empty (0 bytes)"]),
        ],
    }
    if (ROOT / "generate.py").exists():
        songs = [f"--output_dir={out / 'songs'}"]
        model = [f"--model_dir={run}", *songs]
        rows["generate.py"] = [
            ("unknown_flag", ["--no_such_flag_for_the_test"], 2,
             ["Unknown command line flag 'no_such_flag_for_the_test'"]),
            ("primer_not_midi", [*model, f"--primer_midi={readme}"], 2,
             [f"--primer_midi={readme}: README.md: not a MIDI file (no MThd header)"]),
            ("primer_empty", [*model, f"--primer_midi={tmp / 'empty.mid'}"], 2,
             ["empty.mid: empty file (0 bytes)"]),
            ("primer_without_tones", [*model, f"--primer_midi={tmp / 'silent.mid'}"], 2,
             ["silent.mid: no notes (the drum channel 10 is excluded)"]),
            ("primer_missing", [*model, "--primer_midi=/nonexistent.mid"], 2,
             ["--primer_midi=/nonexistent.mid: nonexistent.mid: file not found"]),
            ("neither_run_nor_export", [f"--model_dir={empty}", *songs], 2,
             [f"--model_dir={empty} holds neither a train.py run nor an export: looked for "
              "config.json, scaler.json and generator.weights.h5 (a run) and for "
              "saved_model/saved_model.pb or saved_model.pb"]),
            ("model_dir_missing", ["--model_dir=/nonexistent", *songs], 2,
             ["--model_dir=/nonexistent does not exist"]),
            ("not_an_export", [f"--export={empty}", *songs], 2,
             [f"--export={empty} is not an export: it has neither saved_model/saved_model.pb"]),
            ("damaged_export", [f"--export={other}", *songs], 2,
             [f"{other}/saved_model cannot be loaded as a SavedModel"]),
            ("zero_steps", [*model, "--steps=0"], 2,
             ["--steps must be >= 1 and at most 100000 (the limit), got 0"]),
            ("absurd_steps", [*model, "--steps=1000000000"], 2,
             ["at most 100000 (the limit), got 1000000000"]),
            ("negative_seed", [*model, "--seed=-1"], 2,
             ["flag --seed=-1: -1 is not an integer in the range [0, 4294967295]"]),
            ("steps_and_seconds", [*model, "--steps=5", "--seconds=3"], 2,
             ["give --steps or --seconds, not both"]),
            ("no_best_checkpoint", [*model, "--checkpoint=best"], 2,
             [f"{run} has no checkpoints/best.weights.h5", "--samples_per_epoch > 0"]),
            ("unfinished_run", [f"--model_dir={runs['unfinished']}", *songs], 2,
             ["has no generator.weights.h5: the run has not finished", "--checkpoint=latest"]),
            ("primer_from_not_prepared", [*model, "--primer_from=crnn_gan_midi/default:test",
                                          data], 2,
             ["--primer_from=crnn_gan_midi/default:test: crnn_gan_midi/default is not "
              f"prepared in {tmp / 'tfds'}: python -m tfds_midi --config=default"]),
            ("two_primers", [*model, f"--primer_midi={readme}",
                             "--primer_from=crnn_gan_midi/default:test"], 2,
             ["give --primer_midi or --primer_from, not both"]),
            ("writes_songs", [*model, "--steps=5", "--num_songs=2"], 0,
             [f"wrote {out / 'songs' / 'song_001.mid'}: ", "polyphony"]),
        ]
    return rows


def _make_inputs(tmp: pathlib.Path) -> pathlib.Path:
    """A finished tiny run and the broken folders and files the rows point at."""
    run = tmp / "run"
    rng = np.random.default_rng(0)
    songs = [midi_fixtures.random_song(rng, 40) for _ in range(4)]
    training.train(TINY, training.RunSpec(model_dir=str(run), samples_per_epoch=0),
                   songs=songs)
    (tmp / "empty").mkdir()
    (tmp / "empty.mid").write_bytes(b"")
    silent = mido.MidiFile()
    silent.tracks.append(mido.MidiTrack([mido.MetaMessage("end_of_track", time=0)]))
    silent.save(str(tmp / "silent.mid"))
    midi_fixtures.write_corpus(tmp / "corpus",
                               midi_fixtures.sources_covering_splits(per_split=(6, 1, 1)))
    (tmp / "broken_midi" / "bach").mkdir(parents=True)
    (tmp / "broken_midi" / "bach" / "broken.mid").write_bytes(b"MThd not really")
    other = tmp / "an_export"
    (other / "saved_model").mkdir(parents=True)
    (other / "saved_model" / "saved_model.pb").write_bytes(b"")
    (other / "export.json").write_text(json.dumps({"source": "runs/demo/run"}))
    for name in ("not_json", "unfinished", "mismatch", "bad_scaler", "scaler_shape"):
        shutil.copytree(run, tmp / name)
    (tmp / "not_json" / "config.json").write_text("{not json")
    (tmp / "unfinished" / "generator.weights.h5").unlink()
    record = json.loads((run / "config.json").read_text())
    record["config"]["units"] = 16
    (tmp / "mismatch" / "config.json").write_text(json.dumps(record))
    (tmp / "bad_scaler" / "scaler.json").write_text("[1, 2")
    scaler = json.loads((run / "scaler.json").read_text())
    (tmp / "scaler_shape" / "scaler.json").write_text(json.dumps(
        {**scaler, "mean": scaler["mean"][:1], "std": scaler["std"][:1]}))
    return run


def _run_entry(entry: str, rows) -> list[dict]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "entry_point_runner.py"), entry,
         json.dumps([args for _, args, _, _ in rows])],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """(entry, row id) -> (expected status, texts, result), and the run's snapshots."""
    tmp = tmp_path_factory.mktemp("entry_points")
    run = _make_inputs(tmp)
    kept = (run, tmp / "an_export")  # refused (train.py) or only read (export)
    before = [_snapshot(folder) for folder in kept]
    table = _rows(tmp, run)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {entry: pool.submit(_run_entry, entry, rows) for entry, rows in table.items()}
        found = {}
        for entry, rows in table.items():
            for (row_id, _, status, texts), result in zip(rows, futures[entry].result()):
                found[entry, row_id] = (status, texts, result)
    return found, before, [_snapshot(folder) for folder in kept]


def _ids():
    fake = pathlib.Path("/fake")
    table = _rows(fake, fake / "run")
    table.setdefault("generate.py", [("unknown_flag", [], 2, [])])
    return [(entry, row[0]) for entry, rows in table.items() for row in rows]


@pytest.mark.parametrize("entry, row_id", _ids(), ids=lambda v: str(v))
def test_entry_point_answers_bad_input_with_one_line(results, entry, row_id):
    found, _, _ = results
    if (entry, row_id) not in found:
        pytest.skip(f"{entry} does not exist")
    status, texts, result = found[entry, row_id]
    stderr, stdout = result["stderr"], result["stdout"]
    context = f"stdout:\n{stdout[-2000:]}\nstderr:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, context
    assert result["status"] == status, context
    if status == 0:
        for text in texts:
            assert text in stdout, (text, context)
        return
    last = [line for line in stderr.splitlines() if line.strip()][-1]
    assert "error:" in last, context
    for text in texts:
        assert text in last, (text, context)


def test_refused_commands_left_the_run_untouched(results):
    _, before, after = results
    assert after == before
