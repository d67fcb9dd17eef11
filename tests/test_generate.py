"""generate.py and `crnn_gan.generation`: songs from a run, a checkpoint or an export, primers
(the primer kept at the start, priming that changes the continuation and repeats exactly),
--seconds, audio, and the stand-alone scripts' --primer with their copy of the MIDI reader.

One tiny untrained run (tests/test_export.py's make_run) with a best checkpoint beside its
final generator, and its export, per module. Bad input of generate.py: test_entry_points.py.
"""

import dataclasses
import importlib.util
import io
import json
import math
import os
import subprocess
import sys

import keras
import mido
import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import config as config_lib
from crnn_gan import generation, rendering, training
from crnn_gan.generator import PRIMING_NOISE, Generator, shift_right
from export import export as export_lib
from tests import midi_fixtures
from tests.test_export import make_run
from tfds_midi import codec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
TFLITE_TOL = 1e-4  # normalised units, as tests/test_export.py


def quiet(_):
    pass


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A run (final generator + a best checkpoint of other weights), its export, a primer."""
    base = tmp_path_factory.mktemp("generate")
    run = make_run(str(base / "run"))
    generator, _, scaler = training.load_generator(run)
    # The best checkpoint holds the whole GAN, as train.py writes it; G's weights halved so
    # that it differs from the final generator.
    record = json.load(open(os.path.join(run, "config.json")))
    gan = training.build_model(config_lib.Config(**record["config"]), "gan")
    gan.build_for_training()
    for target, source in zip(gan.generator.weights, generator.weights):
        target.assign(source.numpy() * 0.5)
    os.makedirs(os.path.join(run, "checkpoints"))
    gan.save_weights(os.path.join(run, "checkpoints", "best.weights.h5"))
    export = str(base / "export")
    export_lib.export_loaded(generator, scaler, export, quantizations=())
    primer = midi_fixtures.random_song(np.random.default_rng(1), 40)  # chords included
    primer_path = str(base / "primer.mid")
    with open(primer_path, "wb") as f:
        f.write(codec.tones_to_midi_bytes(primer))
    return {"run": run, "export": export, "primer": primer_path, "primer_tones": primer,
            "best_weights": [w.numpy() for w in gan.generator.weights], "scaler": scaler,
            "base": base}


def request(out, **kwargs):
    return generation.Request(output_dir=str(out), **kwargs)


def normalized(raw, scaler):
    raw = np.asarray(raw, np.float64)
    return (raw.reshape(*raw.shape[:-2], -1) - scaler.mean) / scaler.std


def read(path):
    with open(path, "rb") as f:
        return f.read()


def test_generate_py_from_a_run_same_seed_same_bytes(models, tmp_path):
    """The command end to end, twice with one seed: the same files, which decode."""
    outputs = []
    for name in ("a", "b"):
        result = subprocess.run(
            [sys.executable, os.path.join(ROOT, "generate.py"), f"--model_dir={models['run']}",
             "--num_songs=2", "--steps=40", "--seed=5", f"--output_dir={tmp_path / name}"],
            capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        outputs.append(result.stdout)
    for k in range(2):
        path = f"song_{k:03d}.mid"
        assert read(tmp_path / "a" / path) == read(tmp_path / "b" / path)
        tones = codec.midi_to_tones(str(tmp_path / "a" / path))
        assert len(tones) > 20
        line = next(line for line in outputs[0].splitlines() if path in line)
        assert f"{len(tones)} tones" in line
        for text in ("s, pitch ", "polyphony", "scale consistency", "repetitions", "tone span",
                     "unique tones", "intensity span"):
            assert text in line, (text, line)
    assert read(tmp_path / "a" / "song_000.mid") != read(tmp_path / "a" / "song_001.mid")


def test_export_gives_the_runs_songs(models, tmp_path):
    """--export: the same seed the same bytes; the songs are the run's (float rounding)."""
    files = {}
    for name, seed in (("export", 7), ("again", 7), ("other_seed", 8)):
        written = generation.generate(request(tmp_path / name, export=models["export"],
                                              steps=30, seed=seed), log=quiet)
        files[name] = read(written[0])
        assert len(codec.midi_to_tones(written[0])) > 10
    assert files["export"] == files["again"]
    assert files["export"] != files["other_seed"]
    keras_model = generation.load_model(models["run"])
    export_model = generation.load_model(export=models["export"])
    # --model_dir also takes an export folder.
    assert isinstance(generation.load_model(models["export"]), generation.ExportModel)
    np.testing.assert_allclose(
        normalized(generation.generate_steps(export_model, [7], 30), models["scaler"]),
        normalized(generation.generate_steps(keras_model, [7], 30), models["scaler"]),
        rtol=0, atol=1e-5)


def start_rows(tones):
    """Tones as (start tick, length, pitch, velocity) rows."""
    return np.stack([codec.tone_start_ticks(tones), tones[:, 0],
                     codec.hz_to_pitch(tones[:, 1]), tones[:, 2]], axis=1)


@pytest.mark.parametrize("source", ["run", "export"])
def test_primer_is_kept_and_continued(models, tmp_path, source):
    kwargs = ({"model_dir": models["run"]} if source == "run" else
              {"export": models["export"]})
    model = generation.load_model(**kwargs)
    primer = models["primer_tones"]
    common = dict(steps=30, seed=2, **kwargs)
    full = generation.generate(request(tmp_path / "full", primer_midi=models["primer"],
                                       **common), log=quiet)[0]
    again = generation.generate(request(tmp_path / "again", primer_midi=models["primer"],
                                        **common), log=quiet)[0]
    alone = generation.generate(request(tmp_path / "alone", primer_midi=models["primer"],
                                        primer_only_continuation=True, **common), log=quiet)[0]
    unprimed = generation.generate(request(tmp_path / "unprimed", **common), log=quiet)[0]
    assert read(full) == read(again)  # the same primer and seed: the same continuation

    # The primer's tones, unchanged, at the start (tones of the continuation that start
    # with the primer's last tones may sort among them: compared as a set there).
    out = start_rows(codec.midi_to_tones(full))
    ours = start_rows(primer)
    before = ours[:, 0] < ours[-1, 0]
    np.testing.assert_array_equal(out[: before.sum()], ours[before])
    last = {tuple(row) for row in out[out[:, 0] == ours[-1, 0]]}
    assert {tuple(row) for row in ours[~before]} <= last
    assert len(out) > len(ours)

    # The file is the primer, then the continuation's tones; alone, the continuation.
    steps = generation.generate_steps(model, [2], 30,
                                      generation.primer_steps(primer, model.tones_per_step))
    continuation = codec.unpack_tones(steps[0].reshape(30, -1))
    assert read(full) == codec.tones_to_midi_bytes(np.concatenate([primer, continuation]))
    assert read(alone) == codec.tones_to_midi_bytes(continuation)
    # Priming changes the continuation (same noise without the primer).
    unprimed_steps = generation.generate_steps(model, [2], 30)
    assert read(unprimed) == codec.tones_to_midi_bytes(
        codec.unpack_tones(unprimed_steps[0].reshape(30, -1)))
    assert np.abs(normalized(steps, models["scaler"])
                  - normalized(unprimed_steps, models["scaler"])).max() > 0.1


@pytest.mark.parametrize("head, pitch_class_input", [("linear", False), ("categorical", True)])
def test_prime_is_teacher_forcing(head, pitch_class_input):
    """`Generator.prime` then free running = the teacher-forced sequence kernels over the
    primer and the continuation: each primer step fed as the previous output, noise 0.5."""
    keras.utils.set_random_seed(3)
    generator = Generator(units=16, num_layers=2, output_head=head,
                          pitch_class_input=pitch_class_input)
    generator.build()
    rng = np.random.default_rng(0)
    if head == "categorical":
        generator.output_range.assign(np.sort(rng.normal(size=(4, 88)), -1).astype(np.float32))
    primer = rng.normal(size=(2, 12, 4)).astype(np.float32)
    noise = rng.uniform(size=(2, 6, 4)).astype(np.float32)
    states, previous = generator.prime(primer)
    np.testing.assert_array_equal(previous, primer[:, -1])
    outputs = np.asarray(generator.free_run(noise, initial=(states, previous)))
    steps = np.concatenate([primer, outputs], axis=1)
    all_noise = np.concatenate([np.full((2, 12, 4), PRIMING_NOISE, np.float32), noise], axis=1)
    forced = np.asarray(generator.teacher_forced(all_noise, shift_right(steps)))
    np.testing.assert_allclose(forced[:, 12:], outputs, rtol=0, atol=1e-5)
    # An empty primer is the zero state.
    states, previous = generator.prime(primer[:, :0])
    np.testing.assert_array_equal(generator.free_run(noise, initial=(states, previous)),
                                  generator.free_run(noise))


def test_long_primer_primes_with_its_last_tones(models):
    primer = models["primer_tones"]
    np.testing.assert_array_equal(generation.primer_steps(primer, 1, 10)[:, 0], primer[-10:])
    model = generation.load_model(models["run"])
    cut = generation.generate_steps(model, [0], 20, generation.primer_steps(primer, 1, 10))
    last = generation.generate_steps(model, [0], 20, generation.primer_steps(primer[-10:], 1))
    whole = generation.generate_steps(model, [0], 20, generation.primer_steps(primer, 1))
    np.testing.assert_array_equal(cut, last)
    assert np.abs(cut - whole).max() > 0


def test_three_tones_per_step_packs_the_primers_chords(models, tmp_path):
    run = make_run(str(tmp_path / "run3"), tones_per_step=3, seed=1)
    primer = models["primer_tones"]
    steps = generation.primer_steps(primer, 3)
    packed = codec.pack_tones(primer, 3)
    assert steps.shape == (len(packed), 3, 4) and len(packed) < len(primer)
    np.testing.assert_array_equal(steps.reshape(len(steps), -1), packed)
    model = generation.load_model(run)
    generator, scaler = model.generator, model.scaler
    expected_state = generator.prime(scaler.normalize(tf.constant(packed[None])))
    state = model.prime(steps[None])
    np.testing.assert_allclose(state["previous"], np.asarray(expected_state[1]), atol=1e-6)
    path = generation.generate(request(tmp_path / "out", model_dir=run, steps=20,
                                       primer_midi=models["primer"]), log=quiet)[0]
    out = start_rows(codec.midi_to_tones(path))
    ours = start_rows(primer)
    before = ours[:, 0] < ours[-1, 0]
    np.testing.assert_array_equal(out[: before.sum()], ours[before])


def test_primer_from_a_prepared_split(models, tmp_path):
    """--primer_from: song k of a split of the dataset (a tiny manual config here)."""
    import tensorflow_datasets as tfds

    from tfds_midi import prepare

    sources = midi_fixtures.sources_covering_splits(per_split=(1, 1, 2))
    midi_fixtures.write_corpus(tmp_path / "midi", sources, num_tones=30)
    data_dir = str(tmp_path / "tfds")
    prepare.prepare(prepare.get_builder("crnn_gan_midi/manual", data_dir),
                    str(tmp_path / "midi"))
    test_split = list(tfds.load("crnn_gan_midi/manual", split="test", data_dir=data_dir)
                      .as_numpy_iterator())
    lines = []
    path = generation.generate(request(tmp_path / "out", model_dir=models["run"], steps=10,
                                       primer_from="crnn_gan_midi/manual:test", primer_index=1,
                                       data_dir=data_dir), lines.append)[0]
    primer = test_split[1]["tones"]
    source = test_split[1]["source"].decode()
    assert any(f"primer crnn_gan_midi/manual:test[1] ({source}): {len(primer)} tones" in line
               for line in lines), lines
    out = start_rows(codec.midi_to_tones(path))
    ours = start_rows(primer)
    before = ours[:, 0] < ours[-1, 0]
    np.testing.assert_array_equal(out[: before.sum()], ours[before])
    for kwargs, message in (
            ({"primer_index": 2}, r"--primer_index=2: crnn_gan_midi/manual:test has 2 songs"),
            ({"primer_from": "crnn_gan_midi/manual:dev"}, "has no split 'dev'"),
            ({"data_dir": str(tmp_path / "elsewhere")}, "is not prepared in"),
            ({"primer_from": "mnist:test"}, "must look like crnn_gan_midi/<config>:<split>")):
        arguments = {"primer_from": "crnn_gan_midi/manual:test", "data_dir": data_dir,
                     **kwargs}
        with pytest.raises(generation.GenerationError, match=message):
            generation.generate(request(tmp_path / "never", model_dir=models["run"],
                                        **arguments), log=quiet)


def test_checkpoints(models):
    best = generation.load_model(models["run"], checkpoint="best")
    for loaded, saved in zip(best.generator.weights, models["best_weights"]):
        np.testing.assert_array_equal(loaded.numpy(), saved)
    final = generation.load_model(models["run"])
    assert not np.array_equal(final.generator.weights[0].numpy(), models["best_weights"][0])
    with pytest.raises(generation.GenerationError,
                       match="has no checkpoints/latest.weights.h5: give another --checkpoint"):
        generation.load_model(models["run"], checkpoint="latest")


def test_seconds_at_the_models_typical_tempo(models, tmp_path):
    model = generation.load_model(models["run"])
    # The probe, computed here with the Keras model itself.
    noise = np.stack([np.random.default_rng(k).uniform(size=(256, 4)) for k in range(4)])
    raw = model.scaler.denormalize(np.asarray(model.generator(noise.astype(np.float32))))
    ticks = np.mean([np.maximum(np.rint(codec.unpack_tones(song)[:, 3]), 0).sum()
                     for song in raw]) / 256
    steps, measured = generation.steps_for_seconds(model, 5.0)
    assert measured == pytest.approx(ticks, rel=1e-6)
    assert steps == math.ceil(5.0 * 768 / ticks)
    lines = []
    generation.generate(request(tmp_path, model_dir=models["run"], seconds=5.0), lines.append)
    assert any(f"--seconds=5: {steps} steps at the model's typical tempo" in line
               for line in lines), lines
    with pytest.raises(generation.GenerationError, match="above the limit of 100000 steps"):
        generation.steps_for_seconds(model, 1e9)


def test_bad_requests_and_missing_models(models, tmp_path):
    not_a_soundfont = tmp_path / "passwd"
    not_a_soundfont.write_text("root:x:0:0:root:/root:/bin/bash\n")
    for kwargs, message in (
            ({"steps": 0}, "--steps must be >= 1 and at most 100000"),
            ({"steps": 100_001}, r"at most 100000 \(the limit\), got 100001"),
            ({"steps": 5, "seconds": 2.0}, "give --steps or --seconds, not both"),
            ({"seconds": -1.0}, "--seconds must be > 0"),
            ({"num_songs": 0}, "--num_songs must be >= 1"),
            ({"seed": -1}, "--seed must be >= 0, got -1"),
            ({"primer_only_continuation": True}, "needs --primer_midi"),
            ({"soundfont": str(not_a_soundfont)}, "--soundfont needs --wav or --ogg"),
            ({"soundfont": str(not_a_soundfont), "ogg": True},
             "--soundfont=.*passwd is not a soundfont"),
            ({"soundfont": str(tmp_path / "gm.sf2"), "wav": True},
             "--soundfont=.*gm.sf2 does not exist")):
        with pytest.raises(generation.GenerationError, match=message):
            generation.generate(request(tmp_path / "never", **kwargs), log=quiet)
    assert not (tmp_path / "never").exists()
    # An output folder that is a file: refused by the request's check, before loading.
    with pytest.raises(generation.GenerationError,
                       match="--output_dir=.*passwd is a file: give a folder"):
        request(not_a_soundfont).check()
    # An output folder that cannot be made (a file in its path), a checkpoint of an export.
    with pytest.raises(generation.GenerationError,
                       match="--output_dir=.*passwd/songs cannot be made"):
        generation.generate(request(not_a_soundfont / "songs", model_dir=models["run"],
                                    steps=4), log=quiet)
    with pytest.raises(generation.GenerationError, match="--checkpoint=best picks the weights "
                       "of a train.py run, and export .* holds one generator"):
        generation.load_model(export=models["export"], checkpoint="best")
    with pytest.raises(generation.GenerationError,
                       match="the shipped generator .*nowhere is not there: give --model_dir"):
        generation.load_model(pretrained=str(tmp_path / "nowhere"))
    with pytest.raises(generation.GenerationError, match="holds neither a train.py run nor an "
                       "export: looked for config.json, scaler.json and generator.weights.h5"):
        generation.load_model(str(tmp_path))
    with pytest.raises(generation.GenerationError, match="it is a train.py run: give it as "
                       "--model_dir"):
        generation.load_model(export=models["run"])
    # An export older than primers: no prime signature.
    old = tmp_path / "old_export"
    module = tf.Module()
    module.f = tf.function(lambda noise: {"tones": noise}, input_signature=[
        tf.TensorSpec([None, None, 4], tf.float32, name="noise")])
    module.g = tf.function(lambda noise, h, c, previous: {"tones": noise, "h": h, "c": c,
                                                          "previous": previous},
                           input_signature=[tf.TensorSpec([None, 4], tf.float32, name="noise"),
                                            tf.TensorSpec([2, None, 8], tf.float32, name="h"),
                                            tf.TensorSpec([2, None, 8], tf.float32, name="c"),
                                            tf.TensorSpec([None, 4], tf.float32,
                                                          name="previous")])
    tf.saved_model.save(module, str(old / "saved_model"), signatures={
        "serving_default": module.f.get_concrete_function(),
        "step": module.g.get_concrete_function()})
    with pytest.raises(generation.GenerationError, match="has no prime signature"):
        generation.load_model(export=str(old)).prime(np.zeros([1, 3, 1, 4], np.float32))


def test_audio_or_a_message_naming_the_packages(models, tmp_path, monkeypatch):
    lines = []
    real_which = rendering.shutil.which
    monkeypatch.setattr(rendering.shutil, "which", lambda name: None)
    written = generation.generate(request(tmp_path / "none", model_dir=models["run"], steps=20,
                                          wav=True, ogg=True), lines.append)
    assert os.path.exists(written[0])  # the MIDI is written all the same
    for kind in ("wav", "ogg"):
        message = next(line for line in lines if line.startswith(f"--{kind}:"))
        assert "missing the fluidsynth program" in message
        assert "fluidsynth and fluid-soundfont-gm" in message
    monkeypatch.setattr(rendering.shutil, "which", real_which)
    if not (real_which("fluidsynth") and rendering.find_soundfont()):
        pytest.skip("FluidSynth or a General MIDI soundfont is not installed")
    audio, message = rendering.render_audio(written, "wav")
    assert message is None and read(audio[0])[:4] == b"RIFF"
    audio, message = rendering.render_audio(written, "ogg")
    assert message is None and read(audio[0])[:4] == b"OggS"


def test_soundfont_problems(tmp_path):
    """What FluidSynth would load silently as a soundfont (and render silence with) is
    refused by name; a RIFF file of form sfbk passes."""
    good = tmp_path / "gm.sf2"
    good.write_bytes(b"RIFF\x10\x00\x00\x00sfbkLIST")
    dls = tmp_path / "gm.dls"
    dls.write_bytes(b"RIFF\x10\x00\x00\x00DLS LIST")
    wave = tmp_path / "a.wav"
    wave.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt ")
    for path, problem in ((good, None), (dls, None), (wave, "is not a soundfont"),
                          (tmp_path / "none.sf2", "does not exist"),
                          (tmp_path, "is not a file")):
        found = rendering.soundfont_problem(str(path))
        assert found is None if problem is None else found.startswith(problem), (path, found)
        assert rendering.find_soundfont(str(path)) == (None if problem else str(path))
    audio, message = rendering.render_audio([str(tmp_path / "x.mid")], "wav", str(wave))
    assert audio == [] and f"({wave} is not a soundfont" in message


def test_progress_bar():
    stream = io.StringIO()
    progress = generation.Progress(1000, stream=stream, width=10)
    progress.update(500)
    progress.update(500)
    text = stream.getvalue()
    assert "\rgenerating [#####.....] 500/1000 steps" in text
    assert "[##########] 1000/1000 steps" in text and text.endswith("\n")


# --- The stand-alone scripts ----------------------------------------------------------------

def load_script(name):
    spec = importlib.util.spec_from_file_location(
        f"script_{name}", os.path.join(ROOT, "export", f"generate_{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def tricky_midi_files(folder):
    """MIDI files for the readers: chords, overlapping same-pitch notes, two tracks at 480
    ticks a beat, drums, an unended note."""
    rng = np.random.default_rng(4)
    paths = []
    for k in range(3):
        path = os.path.join(folder, f"random_{k}.mid")
        with open(path, "wb") as f:
            f.write(codec.tones_to_midi_bytes(midi_fixtures.random_song(rng, 50)))
        paths.append(path)
    midi = mido.MidiFile(type=1, ticks_per_beat=480)
    for channel in (0, 9):
        track = mido.MidiTrack()
        track.append(mido.Message("note_on", channel=channel, note=60, velocity=70, time=0))
        track.append(mido.Message("note_on", channel=channel, note=60, velocity=80, time=100))
        track.append(mido.Message("note_on", channel=channel, note=64, velocity=90, time=0))
        track.append(mido.Message("note_off", channel=channel, note=60, time=333))
        track.append(mido.Message("note_on", channel=channel, note=60, velocity=0, time=7))
        track.append(mido.Message("note_on", channel=channel, note=67, velocity=50, time=1))
        track.append(mido.Message("note_off", channel=channel, note=64, time=250))
        midi.tracks.append(track)
    path = os.path.join(folder, "two_tracks.mid")
    midi.save(path)
    return paths + [path]


def test_scripts_read_midi_and_pack_as_the_codec(tmp_path):
    scripts = [load_script("savedmodel"), load_script("tflite")]
    import inspect

    for function in ("midi_to_tones", "pack_steps"):
        assert (inspect.getsource(getattr(scripts[0], function))
                == inspect.getsource(getattr(scripts[1], function))), function
    script = scripts[0]
    for path in tricky_midi_files(str(tmp_path)):
        tones = codec.midi_to_tones(path)
        np.testing.assert_array_equal(script.midi_to_tones(path), tones)
        for tones_per_step in (1, 2, 3):
            np.testing.assert_array_equal(
                script.pack_steps(tones, tones_per_step).reshape(-1, 4 * tones_per_step),
                codec.pack_tones(tones, tones_per_step))
    empty = tmp_path / "empty.mid"
    empty.write_bytes(b"")
    silent = tmp_path / "silent.mid"
    mido.MidiFile(tracks=[mido.MidiTrack()]).save(str(silent))
    for path, message in ((str(empty), r"is empty \(0 bytes\)"),
                          (os.path.join(ROOT, "README.md"), "is not a readable MIDI file"),
                          (str(silent), "holds no notes"),
                          (str(tmp_path / "missing.mid"), "no such file")):
        with pytest.raises(script.BadInput, match=message):
            script.midi_to_tones(path)


def test_scripts_continue_a_primer_as_generate_py(models, tmp_path):
    """Both scripts with --primer (one process): the continuation of generate.py's export
    model, after the primer's tones."""
    runs = []
    for name, model in (("savedmodel", os.path.join(models["export"], "saved_model")),
                        ("tflite", os.path.join(models["export"], "generator.tflite"))):
        runs.append([os.path.join(ROOT, "export", f"generate_{name}.py"), "--model", model,
                     "--output", str(tmp_path / f"{name}.mid"), "--seed", "4", "--steps", "25",
                     "--primer", models["primer"], "--primer_max_tones", "30",
                     "--tones_out", str(tmp_path / f"{name}.npy")])
    code = f"""
import runpy, sys
for argv in {runs!r}:
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=ENV, cwd=str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "continuing 40 primer tones" in result.stdout
    model = generation.load_model(export=models["export"])
    primer = models["primer_tones"]
    expected = generation.generate_steps(model, [4], 25,
                                         generation.primer_steps(primer, 1, 30))[0]
    for name, tolerance in (("savedmodel", 1e-5), ("tflite", TFLITE_TOL)):
        steps = np.load(tmp_path / f"{name}.npy")
        np.testing.assert_allclose(normalized(steps, models["scaler"]),
                                   normalized(expected, models["scaler"]), rtol=0,
                                   atol=tolerance)
        continuation = codec.unpack_tones(steps.reshape(len(steps), -1))
        assert read(tmp_path / f"{name}.mid") == codec.tones_to_midi_bytes(
            np.concatenate([primer, continuation]))


def test_request_fields_match_the_flags():
    """Every Request field but the test hooks has its generate.py flag."""
    text = open(os.path.join(ROOT, "generate.py")).read()
    for field in dataclasses.fields(generation.Request):
        if field.name not in ("pretrained", "progress"):
            assert f'"{field.name}"' in text, field.name
