"""Verification of an export: parity of SavedModel and TFLite with the Keras model, timing.

`verify` runs every artefact on `CHECK_STEPS` steps of seeded noise (`check_noise`) and
measures the max error in normalised units (raw error / the feature's training std, the
scaler's representation) of: the SavedModel against Keras, TFLite against the SavedModel
one step at a time from the same state, `prime` then one `step` in each runtime, and each
quantized TFLite file against the float32 one (for a categorical head, whose outputs are
draws: the fraction of draws it changes, `changed_draws`). Float32 parity above its
bound raises (a bug); a quantized file above its bound is a warning (a precision trade-off).
It also times each TFLite file's whole-sequence run (median ms, batch 1, one thread).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import numpy as np
import tensorflow as tf

from export.convert import STATE_NAMES, GeneratorModule, Shapes
from tfds_midi.codec import FEATURES_PER_TONE

# Stated max one-step error of each quantized model against the float32 one: both get the
# same state (the float32 trajectory's h, c, previous) and noise at each of `CHECK_STEPS`
# steps; normalised units (raw error / the feature's training std). Measured on 32 and 350
# units, random weights at 1x and 2x the initialiser's scale: float16 8e-6..6e-4, dynamic
# range (int8 weights) 6e-4..2.6e-2. Free running, the difference feeds back; how much it
# grows depends on the trained dynamics (up to a different song after ~100 steps for a
# chaotic generator), so that error is measured and stated, not bounded.
QUANTIZED_ERROR_BOUNDS = {"dynamic_range": 0.05, "float16": 2e-3}
# A categorical head (`Config.output_head`) outputs draws: its noise picks one of fixed values
# by inverse CDF, and quantization moves the probabilities a little, so a draw whose noise
# lies near a boundary of the cumulative distribution takes the neighbouring value (or, for
# pitch, a key the LSTM state made almost as likely). Such a change is whole values (about 2
# normalised units), however slightly the distribution moved, so the max error above says
# nothing; judged instead is the fraction of drawn values that change in one step from the
# same state and noise, which grows with how far the distributions moved. Measured: the
# shipped generators' int8 files change 2.5 % (C-RNN-GAN) and 1.6 % (C-RNN-GAN-3) of their
# draws, at 100 % valid tones and the float32 file's scale consistency within 0.006
# (tests/test_pretrained.py). Random weights of an autoregressive head (16-64 units, the
# conditioning at 0.5 x N(0, 1)): int8 2.4-5.9 %, float16 0.1-0.8 %.
QUANTIZED_DRAW_CHANGE_BOUNDS = {"dynamic_range": 0.1, "float16": 0.02}
# A value counts as a changed draw above this normalised difference: a twentieth of the
# feature's std, above the rounding of a value stored in float16 (measured up to 4e-3) and
# below one semitone of pitch (about 0.1) or one step of velocity (about 0.075); lengths and
# deltas a few ticks apart stay uncounted.
DRAW_CHANGE_TOLERANCE = 0.05
# Float32 TFLite vs the SavedModel, normalised units (measured: ~1e-6).
TFLITE_ERROR_BOUND = 1e-4
CHECK_STEPS = 200
CHECK_SEED = 0
# The `prime` checks: each runtime primes the first steps of the Keras model's own output on
# the check noise (tones in the model's range) and takes one step from its primed state.
# Judged on a primer of CHECK_PRIMER_STEPS steps: priming is teacher forced, yet a chaotic
# LSTM (large recurrent weights) still amplifies float32 rounding from step to step (measured
# at 6x the initialiser's recurrent scale: 6e-7 after 8 steps, 0.7 after 100), so the whole
# check song as a primer is reported, not judged, like free running.
CHECK_PRIMER_STEPS = 8


def check_noise(steps: int, noise_dim: int, seed: int = CHECK_SEED) -> np.ndarray:
    """The consumers' noise convention: ``default_rng(seed).uniform`` ``[1, steps, noise_dim]``."""
    return np.random.default_rng(seed).uniform(size=(1, steps, noise_dim)).astype(np.float32)


def run_tflite(model: bytes, noise: np.ndarray) -> np.ndarray:
    """Whole-sequence TFLite run (batch 1, any length): ``[1, T, tones_per_step, 4]``."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_content=model).get_signature_runner("serving_default")
    return runner(noise=np.asarray(noise, np.float32))["tones"]


def tflite_step(model: bytes):
    """The `step` signature of a TFLite model as a function of numpy arrays."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=model).get_signature_runner("step")


def saved_model_step(module: GeneratorModule):
    """The `step` signature of a `GeneratorModule` as a function of numpy arrays."""
    def step(**inputs):
        outputs = module.step(**{k: tf.constant(v) for k, v in inputs.items()})
        return {k: v.numpy() for k, v in outputs.items()}
    return step


def tflite_prime(model: bytes):
    """The `prime` signature of a TFLite model as a function of numpy arrays."""
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_content=model).get_signature_runner("prime")


def saved_model_prime(module: GeneratorModule):
    """The `prime` signature of a `GeneratorModule` as a function of numpy arrays."""
    def prime(tones):
        return {k: v.numpy() for k, v in module.prime(tf.constant(tones)).items()}
    return prime


def primed_step(prime, step, primer: np.ndarray, noise_t: np.ndarray):
    """`prime` on ``primer [1, n, tones_per_step, 4]`` (raw units), then one `step` with
    ``noise_t [1, noise_dim]`` from the primed state: ``(tones [1, tones_per_step, 4],
    previous [1, F])``, previous as `prime` returned it (normalised units)."""
    state = {k: np.asarray(v) for k, v in prime(tones=np.asarray(primer, np.float32)).items()}
    out = step(noise=np.asarray(noise_t, np.float32), **{k: state[k] for k in STATE_NAMES})
    return np.asarray(out["tones"]), state["previous"]


def keras_primed_step(generator, scaler, primer: np.ndarray, noise_t: np.ndarray):
    """`primed_step` of the Keras model (`Generator.prime`, then `Generator.step`)."""
    primer = np.asarray(primer, np.float32)
    flat = primer.reshape(*primer.shape[:2], -1)
    states, previous = generator.prime(scaler.normalize(tf.constant(flat)))  # as the graphs do
    output, _ = generator.step(tf.constant(noise_t, tf.float32), states, previous)
    raw = np.asarray(scaler.denormalize(np.asarray(output)), np.float32)
    return raw.reshape(primer.shape[0], *primer.shape[2:]), np.asarray(previous)


def primed_step_error(reference, other, scaler) -> float:
    """Max normalised error between two `primed_step` results: the step's tones and the
    previous output that priming returned."""
    return max(normalized_error(other[0][:, None], reference[0][:, None], scaler),
               float(np.abs(np.asarray(other[1], np.float64) - reference[1]).max()))


def one_step_differences(reference, other, noise: np.ndarray, scaler) -> np.ndarray:
    """|Normalised difference| ``[T, features]`` of `other`'s step fed `reference`'s own
    states at every step.

    Both get the same state (h, c and the previous output of the reference's trajectory)
    and the same noise at each step, so float32 rounding cannot accumulate: a correct
    runtime always passes a tight bound, a wrong one fails at the first step it differs.

    Args:
        reference, other: step functions (`tflite_step`, `saved_model_step`, or TFLite
            model bytes) taking ``noise, h, c, previous`` and returning a dict.
        noise: ``[1, T, noise_dim]``.
    """
    return np.concatenate([np.abs(_normalized(got, scaler) - _normalized(expected, scaler))
                           for expected, got in _same_state_steps(reference, other, noise)])


def one_step_error(reference, other, noise: np.ndarray, scaler) -> float:
    """The max of `one_step_differences`: the one-step check of a linear or bounded head."""
    return float(one_step_differences(reference, other, noise, scaler).max())


def changed_draws(differences: np.ndarray) -> float:
    """Fraction of `one_step_differences` above `DRAW_CHANGE_TOLERANCE`: for a categorical
    head, the draws that quantization changes."""
    return float(np.mean(differences > DRAW_CHANGE_TOLERANCE))


def _same_state_steps(reference, other, noise: np.ndarray):
    """Yields ``(reference tones, other tones)`` of each step of ``noise [1, T, noise_dim]``,
    both fed `reference`'s state (zero at first, then its own trajectory's)."""
    reference = tflite_step(reference) if isinstance(reference, bytes) else reference
    other = tflite_step(other) if isinstance(other, bytes) else other
    state = _zero_state(reference, other)
    for t in range(noise.shape[1]):
        expected = reference(noise=noise[:, t], **state)
        yield expected["tones"], other(noise=noise[:, t], **state)["tones"]
        state = {k: np.asarray(expected[k]) for k in STATE_NAMES}


def _zero_state(*functions):
    """Zero h, c, previous for batch 1, shaped from the first TFLite runner's inputs."""
    for function in functions:
        if hasattr(function, "get_input_details"):
            details = function.get_input_details()
            return {k: np.zeros(details[k]["shape"], np.float32) for k in STATE_NAMES}
    raise ValueError("one_step_error needs a TFLite step runner among its models")


def normalized_error(a, b, scaler) -> float:
    """Max |normalize(a) - normalize(b)| over raw tones ``[..., tones_per_step, 4]``: the
    error in the model's normalised units (the scaler's representation and std)."""
    return float(np.abs(_normalized(a, scaler) - _normalized(b, scaler)).max())


def _normalized(tones, scaler) -> np.ndarray:
    """Raw tones ``[..., tones_per_step, 4]`` -> float64 ``[..., features]``, normalised."""
    tones = np.asarray(tones, np.float64)
    return np.asarray(scaler.normalize(tones.reshape(*tones.shape[:-2], -1)), np.float64)


def median_ms(fn, repeats: int = 5) -> float:
    """Median milliseconds of `repeats` calls of ``fn()`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return float(np.median(times) * 1e3)


@dataclasses.dataclass
class Verification:
    """What `verify` measured (the export's README and export.json state it).

    Attributes:
        errors: check name -> max error, normalised units.
        bounds: check name -> the bound it is judged by (checks without one are reported).
        raw_errors: ``tflite_<q>_vs_tflite`` -> max free-running error per column in raw
            units (length ticks, Hz, velocity, delta ticks).
        latency_ms: TFLite file key -> median ms of a whole-sequence run.
    """

    errors: dict[str, float]
    bounds: dict[str, float]
    raw_errors: dict[str, list[float]]
    latency_ms: dict[str, float]


def verify(generator, scaler, module: GeneratorModule, models: dict[str, bytes],
           quantizations, steps: int) -> Verification:
    """Checks the artefacts against each other on `steps` steps of seeded noise.

    Args:
        generator, scaler: the Keras generator and its `FeatureScaler`.
        module: the `GeneratorModule` saved as the SavedModel.
        models: TFLite bytes: ``"tflite"`` (float32) and ``"tflite_<q>"`` for each of
            `quantizations`.
        steps: the check's length (the TFLite files' fixed length, if they have one).

    Raises:
        RuntimeError: a float32 error above its bound.
    """
    from ai_edge_litert.interpreter import Interpreter

    shapes = Shapes.of(generator)
    noise = check_noise(steps, shapes.noise_dim)
    keras_raw = np.asarray(scaler.denormalize(np.asarray(generator(noise))))
    keras_raw = keras_raw.reshape(1, steps, shapes.tones_per_step, FEATURES_PER_TONE)
    saved = module.serving_default(tf.constant(noise))["tones"].numpy()
    outputs, latency_ms = {}, {}
    for key, model in models.items():
        runner = Interpreter(model_content=model).get_signature_runner("serving_default")
        outputs[key] = runner(noise=noise)["tones"]
        latency_ms[key] = median_ms(lambda runner=runner: runner(noise=noise))
    # Judged: the SavedModel against Keras (the same TensorFlow kernels: free running), and
    # TFLite against the SavedModel one step at a time from the same state. Reported, not
    # judged: TFLite free running, whose float32 rounding differences a lively generator's
    # feedback amplifies (two correct runtimes differ by 1e-4 after 200 steps of a trained
    # GAN, by whole tones for a chaotic one).
    errors = {"saved_model_vs_keras": normalized_error(saved, keras_raw, scaler),
              "tflite_step_vs_saved_model": one_step_error(
                  saved_model_step(module), tflite_step(models["tflite"]), noise, scaler),
              "tflite_vs_saved_model": normalized_error(outputs["tflite"], saved, scaler)}
    bounds = {"saved_model_vs_keras": 1e-5, "tflite_step_vs_saved_model": TFLITE_ERROR_BOUND}
    # `prime`: each runtime primes G's own first steps and takes one step from there.
    runtimes = {"saved_model": (saved_model_prime(module), saved_model_step(module)),
                "tflite": (tflite_prime(models["tflite"]), tflite_step(models["tflite"]))}
    primed = {}
    for length in (CHECK_PRIMER_STEPS, steps):
        primer = keras_raw[:, :length]
        primed[length] = {"keras": keras_primed_step(generator, scaler, primer, noise[:, 0])}
        for name, (prime, step) in runtimes.items():
            primed[length][name] = primed_step(prime, step, primer, noise[:, 0])
    short, long = primed[CHECK_PRIMER_STEPS], primed[steps]
    errors["prime_saved_model_vs_keras"] = primed_step_error(short["keras"],
                                                             short["saved_model"], scaler)
    errors["tflite_prime_vs_saved_model"] = primed_step_error(short["saved_model"],
                                                              short["tflite"], scaler)
    errors["tflite_prime_long_vs_saved_model"] = primed_step_error(long["saved_model"],
                                                                   long["tflite"], scaler)
    bounds["prime_saved_model_vs_keras"] = 1e-5
    bounds["tflite_prime_vs_saved_model"] = TFLITE_ERROR_BOUND
    raw_errors = {}
    draws = generator.output_head == "categorical"
    for q in quantizations:
        differences = one_step_differences(models["tflite"], models[f"tflite_{q}"], noise,
                                           scaler)
        errors[f"tflite_{q}_step_vs_tflite"] = float(differences.max())
        if draws:  # the max error is reported, the changed draws judged
            errors[f"tflite_{q}_step_changed_draws"] = changed_draws(differences)
            bounds[f"tflite_{q}_step_changed_draws"] = QUANTIZED_DRAW_CHANGE_BOUNDS[q]
        else:
            bounds[f"tflite_{q}_step_vs_tflite"] = QUANTIZED_ERROR_BOUNDS[q]
        errors[f"tflite_{q}_vs_tflite"] = normalized_error(outputs[f"tflite_{q}"],
                                                           outputs["tflite"], scaler)
        raw_errors[f"tflite_{q}_vs_tflite"] = [float(e) for e in np.abs(
            outputs[f"tflite_{q}"] - outputs["tflite"]).reshape(-1, FEATURES_PER_TONE).max(0)]
    for key, bound in bounds.items():
        if errors[key] <= bound:
            continue
        message = f"export check: {key} error {errors[key]:.3g} > {bound}"
        if any(key.startswith(f"tflite_{q}_") for q in quantizations):
            logging.warning("%s (quantized file written anyway; see its README)", message)
        else:  # float32 parity: a bug, not a precision trade-off
            raise RuntimeError(message)
    return Verification(errors, bounds, raw_errors, latency_ms)
