"""The exported generator (export/): SavedModel, TFLite, quantized TFLite, the two consumers.

A tiny untrained generator is saved as a run folder, exported once per module (through the
`python -m export` command), and every artefact is checked against the Keras model and
against each other. Consumers run in fresh subprocesses, as users run them.
"""

import dataclasses
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import config as config_lib
from crnn_gan import training
from export import convert, verify
from export import export as export_lib
from tfds_midi import codec, pipeline

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXPORT_DIR = os.path.join(ROOT, "export")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
# Normalised units: raw error divided by the feature's training std.
KERAS_TOL = 1e-5
TFLITE_TOL = 1e-4
# A plausible scaler (raw units) per tone slot; slot 3 of C-RNN-GAN-3 is often silent
# (velocity around 0), so that absent slots and their carried deltas are exercised.
MEANS = ([400.0, 370.0, 80.0, 150.0], [300.0, 440.0, 60.0, 0.0], [200.0, 500.0, 0.0, 0.0])
STDS = ([300.0, 150.0, 20.0, 200.0], [200.0, 100.0, 30.0, 1.0], [100.0, 100.0, 40.0, 1.0])


def make_run(model_dir, tones_per_step=1, seed=0):
    """A run folder that `crnn_gan.training.load_generator` reads (random weights)."""
    # 32 units: weight matrices large enough for the converter to quantize them.
    config = config_lib.preset("tiny", tones_per_step=tones_per_step, units=32)
    keras.utils.set_random_seed(seed)
    generator = training.build_generator(config)
    generator.build()
    # Larger weights than the initialiser's, for outputs that move away from the mean.
    for variable in generator.weights:
        variable.assign(variable.numpy() * 2.0)
    os.makedirs(model_dir, exist_ok=True)
    generator.save_weights(os.path.join(model_dir, "generator.weights.h5"))
    with open(os.path.join(model_dir, "config.json"), "w") as f:
        json.dump({"config": dataclasses.asdict(config), "model": "gan", "seed": seed}, f)
    mean = np.asarray(sum(MEANS[:tones_per_step], []), np.float32)
    std = np.asarray(sum(STDS[:tones_per_step], []), np.float32)
    if tones_per_step == 3:
        # Centre the third slot's velocity on the presence threshold (0.5) for the noise of
        # `test_three_tones_per_step`, so that about half of those slots are silent.
        velocity = np.asarray(generator(uniform((1, 30, 12), seed=3)))[0, :, 10]
        mean[10] = 0.5 - np.median(velocity) * std[10]
    scaler = pipeline.FeatureScaler(mean, std)
    scaler.save(os.path.join(model_dir, "scaler.json"))
    return model_dir


def run_python(*args, timeout=120):
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=ENV,
                            cwd=ROOT, timeout=timeout)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(run dir, export dir) of a tiny C-RNN-GAN, exported with `python -m export`."""
    base = tmp_path_factory.mktemp("export")
    run = make_run(str(base / "run"))
    out = str(base / "out")
    run_python("-m", "export", f"--model_dir={run}", f"--output={out}")
    return run, out


@pytest.fixture(scope="module")
def keras_model(exported):
    generator, _, scaler = training.load_generator(exported[0])
    return generator, scaler


@pytest.fixture(scope="module")
def saved_model(exported):
    return tf.saved_model.load(os.path.join(exported[1], "saved_model"))


def tflite_runner(path, signature):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=path).get_signature_runner(signature)


def normalized(raw, scaler):
    """Raw tones ``[..., tones_per_step, 4]`` -> normalised ``[..., features]``."""
    raw = np.asarray(raw)
    flat = raw.reshape(*raw.shape[:-2], -1)
    return (flat - scaler.mean) / scaler.std


def uniform(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype(np.float32)


def stream_tflite(path, noise):
    """The TFLite `step` signature chained over the steps of ``noise [1, T, F]``."""
    runner = tflite_runner(path, "step")
    inputs = runner.get_input_details()
    state = {k: np.zeros(inputs[k]["shape"], np.float32) for k in ("h", "c", "previous")}
    tones = []
    for t in range(noise.shape[1]):
        out = runner(noise=noise[:, t], **state)
        state = {k: out[k] for k in ("h", "c", "previous")}
        tones.append(out["tones"])
    return np.stack(tones, axis=1)


def test_export_writes_the_artefacts_and_readme(exported):
    out = exported[1]
    for name in ("saved_model/saved_model.pb", "generator.tflite", "generator_float16.tflite",
                 "generator_dynamic_range.tflite", "README.md", "export.json"):
        assert os.path.exists(os.path.join(out, name)), name
    readme = open(os.path.join(out, "README.md")).read()
    for text in ("serving_default", "step", "uniform in [0, 1)", "384 ticks per quarter",
                 "saved_model_cli show --dir saved_model --all", "float16"):
        assert text in readme, text


def test_saved_model_matches_keras(saved_model, keras_model):
    generator, scaler = keras_model
    for shape in ((2, 30, 4), (1, 7, 4)):  # batch and steps are free
        noise = uniform(shape)
        tones = saved_model.signatures["serving_default"](noise=tf.constant(noise))["tones"]
        assert tones.shape == (shape[0], shape[1], 1, 4)
        expected = np.asarray(generator(noise))
        np.testing.assert_allclose(normalized(tones.numpy(), scaler), expected, rtol=0,
                                   atol=KERAS_TOL)


def test_step_chained_equals_serving_default(saved_model, keras_model):
    _, scaler = keras_model
    noise = uniform((2, 20, 4), seed=1)
    whole = saved_model.signatures["serving_default"](noise=tf.constant(noise))["tones"]
    step = saved_model.signatures["step"]
    state = {"h": tf.zeros([2, 2, 32]), "c": tf.zeros([2, 2, 32]), "previous": tf.zeros([2, 4])}
    tones = []
    for t in range(noise.shape[1]):
        out = step(noise=tf.constant(noise[:, t]), **state)
        state = {k: out[k] for k in ("h", "c", "previous")}
        tones.append(out["tones"].numpy())
    np.testing.assert_allclose(normalized(np.stack(tones, axis=1), scaler),
                               normalized(whole.numpy(), scaler), rtol=0, atol=KERAS_TOL)


def test_tflite_whole_sequence_and_streaming_match_saved_model(exported, saved_model,
                                                                keras_model):
    _, scaler = keras_model
    path = os.path.join(exported[1], "generator.tflite")
    runner = tflite_runner(path, "serving_default")
    for steps in (200, 37):  # the length is chosen at run time
        noise = uniform((1, steps, 4), seed=steps)
        expected = saved_model.signatures["serving_default"](noise=tf.constant(noise))["tones"]
        expected = normalized(expected.numpy(), scaler)
        whole = runner(noise=noise)["tones"]
        assert whole.shape == (1, steps, 1, 4)
        np.testing.assert_allclose(normalized(whole, scaler), expected, rtol=0, atol=TFLITE_TOL)
        if steps == 37:
            np.testing.assert_allclose(normalized(stream_tflite(path, noise), scaler), expected,
                                       rtol=0, atol=TFLITE_TOL)


def test_tflite_has_builtin_ops_only(exported):
    for name in ("generator.tflite", "generator_float16.tflite",
                 "generator_dynamic_range.tflite"):
        with open(os.path.join(exported[1], name), "rb") as f:
            ops = convert.tflite_ops(f.read())
        assert ops["custom"] == set(), name  # no Flex / custom ops
        allowed = {"WHILE", "LESS", "FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "ADD", "SPLIT",
                   "PACK", "UNPACK", "CONCATENATION", "FILL", "RESHAPE", "SHAPE", "SLICE",
                   "STRIDED_SLICE", "TRANSPOSE", "GATHER", "DEQUANTIZE", "LOGICAL_AND",
                   "SUB", "DIV"}  # SUB, DIV: prime's normalisation of the raw primer
        assert ops["builtin"] <= allowed, (name, ops["builtin"] - allowed)
        assert {"WHILE", "FULLY_CONNECTED", "LOGISTIC", "TANH"} <= ops["builtin"]
        signatures = tflite_runner(os.path.join(exported[1], name), "step")._interpreter
        assert set(signatures.get_signature_list()) == {"serving_default", "step", "prime"}


@pytest.mark.parametrize("quantization", ["dynamic_range", "float16"])
def test_quantized_error_within_stated_bound(exported, keras_model, quantization):
    _, scaler = keras_model
    summary = json.load(open(os.path.join(exported[1], "export.json")))
    noise = uniform((1, verify.CHECK_STEPS, 4), seed=5)  # not the export's own check

    def read(name):
        with open(os.path.join(exported[1], name), "rb") as f:
            return f.read()

    error = verify.one_step_error(read("generator.tflite"),
                                  read(f"generator_{quantization}.tflite"), noise, scaler)
    bound = verify.QUANTIZED_ERROR_BOUNDS[quantization]
    assert 0 < error <= bound
    key = f"tflite_{quantization}_step_vs_tflite"
    assert summary["bounds"][key] == bound and 0 < summary["errors"][key] <= bound
    # Free running: measured and stated (it grows with the generator's chaos, no bound).
    free = summary["errors"][f"tflite_{quantization}_vs_tflite"]
    readme = open(os.path.join(exported[1], "README.md")).read()
    assert f"one step **{summary['errors'][key]:.3g}** (bound {bound})" in readme
    assert f"free running 200 steps **{free:.3g}**" in readme
    sizes = summary["sizes"]
    assert sizes[f"tflite_{quantization}"] < sizes["tflite"]


def test_categorical_quantized_check_judges_the_changed_draws(tmp_path):
    """A categorical head's output is a draw: a quantized file changes a few draws by whole
    values, so its one-step check is the fraction of changed draws, not the max error."""
    from tests.test_heads import random_songs, randomize_conditioning

    config = config_lib.preset("tiny", units=32, representation="log",
                               output_head="categorical", autoregressive_head=True,
                               sampling_temperature=0.8)
    keras.utils.set_random_seed(0)
    generator = training.build_generator(config)
    generator.build()
    songs = random_songs()
    scaler = pipeline.FeatureScaler.fit(songs, "log")
    generator.set_output_range(songs, scaler)
    randomize_conditioning(generator)
    out = str(tmp_path / "out")
    summary = export_lib.export_loaded(generator, scaler, out, quantizations=("dynamic_range",))
    key = "tflite_dynamic_range_step"
    bound = verify.QUANTIZED_DRAW_CHANGE_BOUNDS["dynamic_range"]
    assert summary["bounds"][f"{key}_changed_draws"] == bound
    assert f"{key}_vs_tflite" not in summary["bounds"]  # reported, not judged
    changed = summary["errors"][f"{key}_changed_draws"]
    assert 0 < changed <= bound
    # A changed draw is whole values: the largest one-step change is far above the tolerance.
    assert summary["errors"][f"{key}_vs_tflite"] > 20 * verify.DRAW_CHANGE_TOLERANCE

    def read(name):
        with open(os.path.join(out, name), "rb") as f:
            return f.read()

    float32, int8 = read("generator.tflite"), read("generator_dynamic_range.tflite")
    noise = uniform((1, verify.CHECK_STEPS, generator.noise_dim), seed=5)
    assert 0 < verify.changed_draws(verify.one_step_differences(float32, int8, noise,
                                                                scaler)) <= bound
    assert verify.changed_draws(verify.one_step_differences(float32, float32, noise,
                                                            scaler)) == 0
    readme = open(os.path.join(out, "README.md")).read()
    assert (f"one step **{changed:.1%}** of the drawn values change (bound {bound:.0%}; the "
            f"largest change {summary['errors'][key + '_vs_tflite']:.3g})") in readme
    assert "the fraction of draws that change is judged" in readme
    assert f"| {changed:.1%} of draws / " in readme


def primer_tones(length, tones_per_step=1, seed=0):
    """Valid raw tones ``[1, length, tones_per_step, 4]`` (every slot present)."""
    rng = np.random.default_rng(seed)
    tones = np.stack([rng.choice([96.0, 192.0, 384.0], (length, tones_per_step)),
                      codec.pitch_to_hz(rng.integers(48, 84, (length, tones_per_step))),
                      rng.integers(40, 110, (length, tones_per_step)).astype(np.float64),
                      rng.choice([0.0, 192.0, 384.0], (length, tones_per_step))], axis=-1)
    return tones[None].astype(np.float32)


def keras_continuation(generator, scaler, primer, noise):
    """Keras: `Generator.prime` on a raw primer, then free running: normalised outputs."""
    flat = primer.reshape(*primer.shape[:2], -1)
    states, previous = generator.prime(scaler.normalize(tf.constant(flat)))
    return np.asarray(generator.free_run(tf.constant(noise), initial=(states, previous)))


def chain_steps(step, state, noise, tensors=False):
    """`step` chained from `state` over ``noise [1, T, F]``: raw tones ``[1, T, tps, 4]``."""
    tones = []
    for t in range(noise.shape[1]):
        out = step(noise=tf.constant(noise[:, t]) if tensors else noise[:, t], **state)
        state = {k: out[k] for k in ("h", "c", "previous")}
        tones.append(np.asarray(out["tones"]))
    return np.stack(tones, axis=1)


def test_prime_then_step_matches_keras(exported, saved_model, keras_model):
    """SavedModel and TFLite `prime` + `step` continue a primer as the Keras model does; the
    primer's length is free in both; `previous` is the primer's last step, normalised."""
    generator, scaler = keras_model
    noise = uniform((1, 20, 4), seed=7)
    runner = tflite_runner(os.path.join(exported[1], "generator.tflite"), "prime")
    step = tflite_runner(os.path.join(exported[1], "generator.tflite"), "step")
    for length in (30, 5):
        primer = primer_tones(length, seed=length)
        expected = keras_continuation(generator, scaler, primer, noise)
        saved_state = saved_model.signatures["prime"](tones=tf.constant(primer))
        assert set(saved_state) == {"h", "c", "previous"}
        np.testing.assert_allclose(saved_state["previous"].numpy(),
                                   normalized(primer[:, -1], scaler), rtol=0, atol=1e-5)
        saved = chain_steps(saved_model.signatures["step"], dict(saved_state), noise, True)
        np.testing.assert_allclose(normalized(saved, scaler), expected, rtol=0, atol=KERAS_TOL)
        tflite_state = runner(tones=primer)
        assert tflite_state["h"].shape == (2, 1, 32)
        tflite = chain_steps(step, tflite_state, noise)
        np.testing.assert_allclose(normalized(tflite, scaler), expected, rtol=0,
                                   atol=TFLITE_TOL)
    # Priming moves the state: the continuation differs from a song started from zeros.
    unprimed = np.asarray(generator(noise))
    assert np.abs(unprimed - expected).max() > 0.1
    summary = json.load(open(os.path.join(exported[1], "export.json")))
    for key in ("prime_saved_model_vs_keras", "tflite_prime_vs_saved_model"):
        assert summary["errors"][key] <= summary["bounds"][key], key
    assert "tflite_prime_long_vs_saved_model" in summary["errors"]


def test_prime_of_three_tones_per_step(tmp_path):
    """C-RNN-GAN-3: the SavedModel's `prime` takes [1, n, 3, 4] primers (absent slots)."""
    run = make_run(str(tmp_path / "run3"), tones_per_step=3, seed=1)
    generator, _, scaler = training.load_generator(run)
    module = convert.GeneratorModule(generator, scaler)
    primer = primer_tones(12, tones_per_step=3)
    primer[0, ::2, 2] = 0.0  # the third slot of every other step is absent
    noise = uniform((1, 10, 12), seed=2)
    expected = keras_continuation(generator, scaler, primer, noise)
    state = module.prime(tf.constant(primer))
    tones = chain_steps(lambda **kw: module.step(**kw), state, noise, True)
    np.testing.assert_allclose(normalized(tones, scaler), expected, rtol=0, atol=KERAS_TOL)


def test_export_passes_with_chaotic_weights(tmp_path):
    """Large recurrent weights make the LSTM chaotic: float32 rounding differences between
    runtimes grow into different songs. The export judges TFLite one step (and a short
    primer) from the same state, so it passes, and reports the free-running difference."""
    run = make_run(str(tmp_path / "chaotic"))
    generator, _, scaler = training.load_generator(run)
    for lstm in generator.lstms:
        for variable in lstm.weights:
            if "recurrent" in variable.path:
                variable.assign(variable.numpy() * 10.0)
    summary = export_lib.export_loaded(generator, scaler, str(tmp_path / "out"),
                                       quantizations=())
    errors, bounds = summary["errors"], summary["bounds"]
    for key, bound in bounds.items():
        assert errors[key] <= bound, (key, errors[key])
    # Chaos indeed: the free-running (and long-primed) runtimes part ways, reported only.
    assert errors["tflite_vs_saved_model"] > 100 * verify.TFLITE_ERROR_BOUND
    assert errors["tflite_prime_long_vs_saved_model"] > 100 * verify.TFLITE_ERROR_BOUND


def test_saved_model_rejects_wrong_shapes_clearly(saved_model):
    generate = saved_model.signatures["serving_default"]
    for shape in ((5, 4), (1, 5, 3), (1, 5, 4, 1)):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"expected shape \[\?,\?,4\]"):
            generate(noise=tf.zeros(shape))
    with pytest.raises(TypeError, match=r"shape=\(None, None, 4\)"):
        saved_model.serving_default(tf.zeros([1, 5, 3]))
    step = saved_model.signatures["step"]
    good = {"noise": tf.zeros([1, 4]), "h": tf.zeros([2, 1, 32]), "c": tf.zeros([2, 1, 32]),
            "previous": tf.zeros([1, 4])}
    step(**good)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected shape \[2,\?,32\]"):
        step(**{**good, "h": tf.zeros([1, 32])})
    with pytest.raises(tf.errors.InvalidArgumentError, match="must equal the batch of noise"):
        step(**{**good, "c": tf.zeros([2, 3, 32])})
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"expected shape \[\?,\?,1,4\]"):
        saved_model.signatures["prime"](tones=tf.zeros([1, 5, 4]))


def test_tflite_rejects_wrong_shapes(exported):
    """The interpreter fails (no builtin op can word the message: the README states shapes)."""
    runner = tflite_runner(os.path.join(exported[1], "generator.tflite"), "serving_default")
    for shape in ((1, 5, 3), (5, 4)):
        with pytest.raises((ValueError, RuntimeError)):
            runner(noise=np.zeros(shape, np.float32))


@pytest.mark.parametrize("consumer", ["savedmodel", "tflite"])
def test_consumer_writes_midi_of_its_tones(exported, saved_model, keras_model, tmp_path,
                                           consumer):
    """Whole sequence and streaming; decoded MIDI == the codec's round trip of the tones."""
    _, scaler = keras_model
    model = os.path.join(exported[1], "saved_model" if consumer == "savedmodel"
                         else "generator.tflite")
    script = os.path.join(EXPORT_DIR, f"generate_{consumer}.py")
    noise = uniform((1, 40, 4), seed=3)  # the consumers' noise convention for seed 3
    expected = saved_model.signatures["serving_default"](noise=tf.constant(noise))["tones"]
    expected = normalized(expected.numpy()[0], scaler)
    forbidden = ("crnn_gan", "tfds_midi", "export") + (("tensorflow",) if consumer == "tflite"
                                                       else ())
    files = {}
    for mode in ("whole", "stream", "whole_again"):
        midi, tones = str(tmp_path / f"{mode}.mid"), str(tmp_path / f"{mode}.npy")
        argv = [script, "--model", model, "--output", midi, "--seed", "3", "--steps", "40",
                "--tones_out", tones] + (["--stream"] if mode == "stream" else [])
        # Runs the script as __main__, then checks what it imported.
        run_python("-c", f"""
import runpy, sys
sys.argv = {argv!r}
runpy.run_path(sys.argv[0], run_name="__main__")
bad = sorted(m for m in sys.modules if m.split(".")[0] in {forbidden!r})
assert not bad, f"imported {{bad[:5]}}"
""")
        steps = np.load(tones)
        np.testing.assert_allclose(normalized(steps, scaler), expected, rtol=0, atol=TFLITE_TOL)
        round_trip = codec.midi_to_tones(codec.tones_to_midi_bytes(
            codec.unpack_tones(steps.reshape(len(steps), -1))))
        np.testing.assert_array_equal(codec.midi_to_tones(midi), round_trip)
        files[mode] = open(midi, "rb").read()
    assert files["whole"] == files["whole_again"]  # same seed, same file


def test_saved_model_cli_lists_signatures(exported):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    if not os.path.exists(cli):
        pytest.skip("saved_model_cli not installed next to the interpreter")
    result = subprocess.run([cli, "show", "--dir", os.path.join(exported[1], "saved_model"),
                             "--all"], capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    for text in ("signature_def['serving_default']", "signature_def['step']",
                 "signature_def['prime']", "shape: (-1, -1, 1, 4)",
                 "shape: (-1, -1, 4)", "shape: (-1, -1, 1, 4)", "shape: (2, -1, 32)"):
        assert text in result.stdout, text


def test_three_tones_per_step(tmp_path):
    run = make_run(str(tmp_path / "run3"), tones_per_step=3, seed=1)
    generator, _, scaler = training.load_generator(run)
    out = str(tmp_path / "out3")
    summary = export_lib.export_loaded(generator, scaler, out, quantizations=())
    assert summary["noise_dim"] == 12 and set(summary["files"]) == {"saved_model", "tflite"}
    noise = uniform((1, 30, 12), seed=3)
    saved = tf.saved_model.load(os.path.join(out, "saved_model"))
    tones = saved.signatures["serving_default"](noise=tf.constant(noise))["tones"].numpy()
    assert tones.shape == (1, 30, 3, 4)
    np.testing.assert_allclose(normalized(tones, scaler), np.asarray(generator(noise)), rtol=0,
                               atol=KERAS_TOL)
    path = os.path.join(out, "generator.tflite")
    whole = tflite_runner(path, "serving_default")(noise=noise)["tones"]
    for result in (whole, stream_tflite(path, noise)):
        np.testing.assert_allclose(normalized(result, scaler), normalized(tones, scaler), rtol=0,
                                   atol=TFLITE_TOL)
    midi, npy = str(tmp_path / "song3.mid"), str(tmp_path / "song3.npy")
    run_python(os.path.join(EXPORT_DIR, "generate_tflite.py"), "--model", path, "--output",
               midi, "--seed", "3", "--steps", "30", "--tones_out", npy)
    steps = np.load(npy)
    present = steps[..., 2] >= 0.5
    assert present.any() and not present.all()  # absent slots are exercised
    round_trip = codec.midi_to_tones(codec.tones_to_midi_bytes(codec.unpack_tones(
        steps.reshape(len(steps), -1))))
    np.testing.assert_array_equal(codec.midi_to_tones(midi), round_trip)


def test_fixed_length_tflite(tmp_path, keras_model):
    generator, scaler = keras_model
    model = convert.convert_tflite(generator, scaler, steps=16)
    path = str(tmp_path / "fixed.tflite")
    with open(path, "wb") as f:
        f.write(model)
    runner = tflite_runner(path, "serving_default")
    assert list(runner.get_input_details()["noise"]["shape_signature"]) == [1, 16, 4]
    noise = uniform((1, 16, 4))
    np.testing.assert_allclose(normalized(runner(noise=noise)["tones"], scaler),
                               np.asarray(generator(noise)), rtol=0, atol=TFLITE_TOL)
    result = subprocess.run(
        [sys.executable, os.path.join(EXPORT_DIR, "generate_tflite.py"), "--model", path,
         "--output", str(tmp_path / "x.mid"), "--steps", "20"],
        capture_output=True, text=True, env=ENV, timeout=120)
    assert result.returncode != 0 and "fixed length of 16 steps" in result.stderr
