"""Exports a trained C-RNN-GAN generator as a SavedModel and as TFLite, for other apps.

What `export_generator` (and ``python -m export``) writes into the output folder:

    saved_model/              signatures `serving_default` (whole sequence), `step` and
                              `prime` (G's state warmed on a primer, for `step` to continue)
    generator.tflite          float32, builtin ops only, the same three signatures
    generator_float16.tflite  weights stored as float16 (half the size), same signatures
    README.md                 signatures, shapes, units, noise, measured errors

Both formats return tones in raw units (the `FeatureScaler` denormalisation is baked into
the graphs as constants): ``[..., tones_per_step, 4]`` with columns length in ticks at 384
per quarter note, frequency in Hz, velocity, delta in ticks.

How the TFLite file is made (TF 2.16.2 and newer): the generator's weights are frozen to
constants while tracing (a `keras.StatelessScope` maps every variable to a constant), the
whole-sequence loop writes to a `TensorArray` with a static element shape ``[1, features]``
(batch 1), the traced functions are saved as a variable-free SavedModel and converted with
`TFLITE_BUILTINS` only. The TensorArray then lowers to builtin ops and the sequence length
stays free: the app picks it at run time (a signature runner resizes the input). Converting
the Keras model or a SavedModel with variables does not work (see issue 6).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

FEATURES_PER_TONE = 4
TICKS_PER_QUARTER = 384
SIGNATURES = ("serving_default", "step", "prime")
STATE_NAMES = ("h", "c", "previous")
QUANTIZATIONS = ("none", "dynamic_range", "float16")
DEFAULT_QUANTIZATIONS = ("dynamic_range", "float16")
FLOAT_TFLITE = "generator.tflite"
QUANTIZED_FILES = {"dynamic_range": "generator_dynamic_range.tflite",
                   "float16": "generator_float16.tflite"}
# Stated max one-step error of each quantized model against the float32 one: both get the
# same state (the float32 trajectory's h, c, previous) and noise at each of `CHECK_STEPS`
# steps; normalised units (raw error / the feature's training std). Measured on 32 and 350
# units, random weights at 1x and 2x the initialiser's scale: float16 8e-6..6e-4, dynamic
# range (int8 weights) 6e-4..2.6e-2. Free running, the difference feeds back; how much it
# grows depends on the trained dynamics (up to a different song after ~100 steps for a
# chaotic generator), so that error is measured and stated, not bounded.
QUANTIZED_ERROR_BOUNDS = {"dynamic_range": 0.05, "float16": 2e-3}
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


@dataclasses.dataclass(frozen=True)
class Shapes:
    """The sizes an app needs: ``noise_dim = 4 * tones_per_step`` = features per step."""

    tones_per_step: int
    units: int
    num_layers: int

    @property
    def noise_dim(self) -> int:
        return FEATURES_PER_TONE * self.tones_per_step

    @property
    def num_features(self) -> int:
        return FEATURES_PER_TONE * self.tones_per_step

    @classmethod
    def of(cls, generator) -> Shapes:
        return cls(generator.tones_per_step, generator.units, generator.num_layers)


class GeneratorModule(tf.Module):
    """The generator's three signatures, in raw units, as a `tf.Module` to save.

    Signatures (``B`` = batch, ``T`` = steps, ``L`` = layers, ``U`` = units,
    ``F = 4 * tones_per_step``):

    - ``serving_default(noise [B, T, F]) -> {"tones": [B, T, tones_per_step, 4]}``: free-runs
      the feedback loop over T steps from zero state.
    - ``step(noise [B, F], h [L, B, U], c [L, B, U], previous [B, F])
      -> {"tones": [B, tones_per_step, 4], "h", "c", "previous"}``: one step; feed the
      returned h, c and previous back in (start from zeros) to stream endlessly.
      ``previous`` is the model's own last output in normalised units.
    - ``prime(tones [B, n, tones_per_step, 4]) -> {"h", "c", "previous"}``: G's state warmed
      on a primer in raw units (`crnn_gan.generator.Generator.prime`: teacher forcing with
      noise 0.5; the scaler's normalisation inside the graph); chain `step` from it to
      continue the primer. ``previous`` is the primer's last step in normalised units.

    Args:
        generator: a built `crnn_gan.generator.Generator`.
        scaler: its `FeatureScaler` (mean/std become constants of the graphs).
        freeze: trace the weights as constants instead of variables (for TFLite).
        batch_size: a static batch size (TFLite: 1), or None for any.
        steps: a static length of `serving_default`, or None for any.
        checks: add shape assertions with clear messages (not TFLite builtins: off there).
    """

    def __init__(self, generator, scaler, *, freeze: bool = False, batch_size: int | None = None,
                 steps: int | None = None, checks: bool = True):
        super().__init__(name="crnn_gan_generator")
        self.shapes = Shapes.of(generator)
        self._scaler = scaler
        if np.shape(scaler.mean) != (self.shapes.num_features,):
            raise ValueError(f"the scaler has {np.shape(scaler.mean)[0]} features, the "
                             f"generator {self.shapes.num_features}")
        self._checks = checks
        # Not tracked: only the weights (below) belong in the SavedModel, not Keras objects.
        self._generator = self._no_dependency(generator)
        if freeze:  # Not tracked: a frozen module saves no variables.
            self._frozen = [(v, np.asarray(v.numpy())) for v in generator.weights]
        else:
            self._frozen = None
            self.generator_variables = [v.value for v in generator.weights]
        s, b = self.shapes, batch_size
        self.serving_default = tf.function(self._serving_default, input_signature=[
            tf.TensorSpec([b, steps, s.noise_dim], tf.float32, name="noise")])
        self.step = tf.function(self._step, input_signature=[
            tf.TensorSpec([b, s.noise_dim], tf.float32, name="noise"),
            tf.TensorSpec([s.num_layers, b, s.units], tf.float32, name="h"),
            tf.TensorSpec([s.num_layers, b, s.units], tf.float32, name="c"),
            tf.TensorSpec([b, s.num_features], tf.float32, name="previous")])
        self.prime = tf.function(self._prime, input_signature=[
            tf.TensorSpec([b, None, s.tones_per_step, FEATURES_PER_TONE], tf.float32,
                          name="tones")])

    def signatures(self) -> dict:
        return {"serving_default": self.serving_default.get_concrete_function(),
                "step": self.step.get_concrete_function(),
                "prime": self.prime.get_concrete_function()}

    @contextlib.contextmanager
    def _weights(self):
        if self._frozen is None:
            yield
        else:
            mapping = [(v, tf.constant(value)) for v, value in self._frozen]
            with keras.StatelessScope(state_mapping=mapping):
                yield

    def _to_raw(self, normalized):
        """``[..., F]`` normalised -> ``[..., tones_per_step, 4]`` raw units (the scaler's
        representation inverted, `tfds_midi.pipeline.FeatureScaler.denormalize`)."""
        raw = self._scaler.denormalize(normalized)
        shape = tf.concat([tf.shape(raw)[:-1],
                           [self.shapes.tones_per_step, FEATURES_PER_TONE]], axis=0)
        return tf.reshape(raw, shape)

    def _ensure_shape(self, tensor, shape):
        """Fails at run time with "Shape of tensor NAME [..] is not compatible with expected
        shape [..]" on a wrong rank or dimension. Signature functions called from Python or
        C++ do not check shapes against their TensorSpecs, and static shape inference would
        fold a `tf.rank` check away, hence the EnsureShape op."""
        return tf.ensure_shape(tensor, shape) if self._checks else tensor

    def _serving_default(self, noise):
        noise = self._ensure_shape(noise, [None, None, self.shapes.noise_dim])
        with self._weights():
            return {"tones": self._to_raw(self._free_run(noise))}

    def _free_run(self, noise):
        """`Generator.free_run`, with a static TensorArray element shape when the batch is
        static (TFLite)."""
        return self._generator.free_run(noise, static_batch=noise.shape[0])

    def _step(self, noise, h, c, previous):
        s = self.shapes
        noise = self._ensure_shape(noise, [None, s.noise_dim])
        h = self._ensure_shape(h, [s.num_layers, None, s.units])
        c = self._ensure_shape(c, [s.num_layers, None, s.units])
        previous = self._ensure_shape(previous, [None, s.num_features])
        if self._checks:
            batch = tf.shape(noise)[0]
            message = (f"step: the batch of h [{s.num_layers}, batch, {s.units}], c and "
                       f"previous [batch, {s.num_features}] must equal the batch of noise "
                       f"[batch, {s.noise_dim}]")
            with tf.control_dependencies([
                    tf.debugging.assert_equal(tf.shape(tensor)[axis], batch, message=message)
                    for tensor, axis in ((h, 1), (c, 1), (previous, 0))]):
                noise = tf.identity(noise)
        with self._weights():
            states = list(zip(tf.unstack(h, num=s.num_layers), tf.unstack(c, num=s.num_layers)))
            output, states = self._generator.step(noise, states, previous)
        return {"tones": self._to_raw(output),
                "h": tf.stack([state[0] for state in states]),
                "c": tf.stack([state[1] for state in states]),
                "previous": output}


    def _prime(self, tones):
        s = self.shapes
        tones = self._ensure_shape(tones, [None, None, s.tones_per_step, FEATURES_PER_TONE])
        steps = tf.reshape(tones, tf.concat([tf.shape(tones)[:2], [s.num_features]], axis=0))
        with self._weights():
            states, previous = self._generator.prime(self._scaler.normalize(steps))
        return {"h": tf.stack([state[0] for state in states]),
                "c": tf.stack([state[1] for state in states]),
                "previous": previous}


def load(model_dir: str):
    """``(generator, config, scaler)`` of a training run (`crnn_gan.training.load_generator`)."""
    from crnn_gan.training import load_generator
    return load_generator(model_dir)


def save_saved_model(generator, scaler, path: str) -> GeneratorModule:
    """Writes the SavedModel (weights as variables) with its signatures (`SIGNATURES`)."""
    module = GeneratorModule(generator, scaler)
    tf.saved_model.save(module, path, signatures=module.signatures())
    return module


def convert_tflite(generator, scaler, *, steps: int | None = None,
                   quantization: str = "none") -> bytes:
    """The TFLite flatbuffer: builtin ops only, batch 1, signatures `serving_default`, `step`,
    `prime`.

    Args:
        generator, scaler: as for `GeneratorModule`.
        steps: length of `serving_default`; None = chosen at run time (resize the input).
        quantization: "none" (float32), "float16" (weights stored as float16, computed in
            float32) or "dynamic_range" (int8 weights).
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    module = GeneratorModule(generator, scaler, freeze=True, batch_size=1, steps=steps,
                             checks=False)
    with tempfile.TemporaryDirectory() as tmp:
        tf.saved_model.save(module, tmp, signatures=module.signatures())
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(SIGNATURES))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        if quantization != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()


def tflite_ops(model: bytes) -> dict[str, set[str]]:
    """Ops of every subgraph of a TFLite flatbuffer: ``{"builtin": names, "custom": codes}``.

    Flex (SELECT_TF_OPS) and other non-builtin ops appear under "custom".
    """
    from ai_edge_litert import schema_py_generated as schema

    names = {value: name for name, value in vars(schema.BuiltinOperator).items()
             if not name.startswith("_")}
    root = schema.Model.GetRootAs(model, 0)
    ops = {"builtin": set(), "custom": set()}
    for g in range(root.SubgraphsLength()):
        subgraph = root.Subgraphs(g)
        for k in range(subgraph.OperatorsLength()):
            code = root.OperatorCodes(subgraph.Operators(k).OpcodeIndex())
            builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            if builtin == schema.BuiltinOperator.CUSTOM:
                ops["custom"].add(code.CustomCode().decode())
            else:
                ops["builtin"].add(names[builtin])
    return ops


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


def one_step_error(reference, other, noise: np.ndarray, scaler) -> float:
    """Max normalised error of `other`'s step fed `reference`'s own states at every step.

    Both get the same state (h, c and the previous output of the reference's trajectory)
    and the same noise at each step, so float32 rounding cannot accumulate: a correct
    runtime always passes a tight bound, a wrong one fails at the first step it differs.

    Args:
        reference, other: step functions (`tflite_step`, `saved_model_step`, or TFLite
            model bytes) taking ``noise, h, c, previous`` and returning a dict.
        noise: ``[1, T, noise_dim]``.
    """
    reference = tflite_step(reference) if isinstance(reference, bytes) else reference
    other = tflite_step(other) if isinstance(other, bytes) else other
    state = _zero_state(reference, other)
    error = 0.0
    for t in range(noise.shape[1]):
        expected = reference(noise=noise[:, t], **state)
        error = max(error, normalized_error(other(noise=noise[:, t], **state)["tones"],
                                            expected["tones"], scaler))
        state = {k: np.asarray(expected[k]) for k in STATE_NAMES}
    return error


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
    def normalized(x):
        x = np.asarray(x, np.float64)
        return np.asarray(scaler.normalize(x.reshape(*x.shape[:-2], -1)), np.float64)
    return float(np.abs(normalized(a) - normalized(b)).max())


def export_generator(model_dir: str, output: str, *, tflite_steps: int | None = None,
                     quantizations=DEFAULT_QUANTIZATIONS) -> dict:
    """Loads a run's generator and writes SavedModel, TFLite (+ quantized) and README.md.

    Also checks the artefacts against each other on `CHECK_STEPS` steps of seeded noise
    (SavedModel vs Keras, TFLite vs SavedModel, quantized vs float32 TFLite), raises if an
    error exceeds its bound, and times each TFLite file (stated in the README).

    Args:
        model_dir: a training run (`config.json`, `scaler.json`, `generator.weights.h5`).
        output: the folder to write.
        tflite_steps: None/0: the TFLite length is chosen at run time; N: fixed at N.
        quantizations: quantized TFLite variants to write besides float32: any of
            "dynamic_range" (int8 weights) and "float16"; () for none.

    Returns:
        A summary dict (paths, sizes, errors, shapes), also written as `export.json`.
    """
    generator, _, scaler = load(model_dir)
    return export_loaded(generator, scaler, output, tflite_steps=tflite_steps,
                         quantizations=quantizations, source=model_dir)


def _median_ms(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        begin = time.perf_counter()
        fn()
        times.append(time.perf_counter() - begin)
    return float(np.median(times) * 1e3)


def export_loaded(generator, scaler, output: str, *, tflite_steps: int | None = None,
                  quantizations=DEFAULT_QUANTIZATIONS, source: str = "") -> dict:
    """`export_generator` for an already-loaded generator and scaler."""
    from ai_edge_litert.interpreter import Interpreter

    tflite_steps = tflite_steps or None
    if tflite_steps is not None and tflite_steps < 1:
        raise ValueError(f"tflite_steps must be >= 1 (or 0/None: free), got {tflite_steps}")
    quantizations = tuple(q for q in quantizations if q != "none")
    for q in quantizations:
        if q not in QUANTIZED_FILES:
            raise ValueError(f"quantization must be among {sorted(QUANTIZED_FILES)}, got {q!r}")
    tf.io.gfile.makedirs(output)
    shapes = Shapes.of(generator)
    saved_model_dir = os.path.join(output, "saved_model")
    module = save_saved_model(generator, scaler, saved_model_dir)

    # TFLite files: "tflite" (float32) and "tflite_<quantization>".
    files = {"saved_model": saved_model_dir, "tflite": os.path.join(output, FLOAT_TFLITE)}
    models = {"tflite": convert_tflite(generator, scaler, steps=tflite_steps)}
    for q in quantizations:
        files[f"tflite_{q}"] = os.path.join(output, QUANTIZED_FILES[q])
        models[f"tflite_{q}"] = convert_tflite(generator, scaler, steps=tflite_steps,
                                               quantization=q)
    for key, model in models.items():
        ops = tflite_ops(model)
        if ops["custom"]:
            raise RuntimeError(f"{files[key]} has non-builtin ops {sorted(ops['custom'])}")
        with tf.io.gfile.GFile(files[key], "wb") as f:
            f.write(model)

    # Parity on seeded noise, and TFLite latency.
    steps = tflite_steps or CHECK_STEPS
    noise = check_noise(steps, shapes.noise_dim)
    keras_raw = np.asarray(scaler.denormalize(np.asarray(generator(noise))))
    keras_raw = keras_raw.reshape(1, steps, shapes.tones_per_step, FEATURES_PER_TONE)
    saved = module.serving_default(tf.constant(noise))["tones"].numpy()
    outputs, latency_ms = {}, {}
    for key, model in models.items():
        runner = Interpreter(model_content=model).get_signature_runner("serving_default")
        outputs[key] = runner(noise=noise)["tones"]
        latency_ms[key] = _median_ms(lambda runner=runner: runner(noise=noise))
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
    for q in quantizations:
        errors[f"tflite_{q}_step_vs_tflite"] = one_step_error(
            models["tflite"], models[f"tflite_{q}"], noise, scaler)
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

    summary = {
        "source": source,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "tones_per_step": shapes.tones_per_step, "units": shapes.units,
        "num_layers": shapes.num_layers, "noise_dim": shapes.noise_dim,
        "tflite_steps": tflite_steps, "quantizations": list(quantizations),
        "check_steps": steps, "check_primer_steps": CHECK_PRIMER_STEPS, "errors": errors, "bounds": bounds, "raw_errors": raw_errors,
        "tflite_latency_ms": latency_ms,
        "sizes": {key: _size(path) for key, path in files.items()},
        "files": {key: os.path.relpath(path, output) for key, path in files.items()},
        "tflite_ops": sorted(tflite_ops(models["tflite"])["builtin"]),
        "mean": [float(x) for x in scaler.mean], "std": [float(x) for x in scaler.std],
    }
    with tf.io.gfile.GFile(os.path.join(output, "export.json"), "w") as f:
        f.write(json.dumps(summary, indent=2))
    with tf.io.gfile.GFile(os.path.join(output, "README.md"), "w") as f:
        f.write(readme(summary))
    return summary


def _size(path: str) -> int:
    """Bytes of a file, or of every file under a folder."""
    if not tf.io.gfile.isdir(path):
        return tf.io.gfile.stat(path).length
    return sum(tf.io.gfile.stat(os.path.join(root, name)).length
               for root, _, names in tf.io.gfile.walk(path) for name in names)


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


_DESCRIPTIONS = {"tflite": "TFLite / LiteRT, float32, builtin ops only",
                 "tflite_dynamic_range": "TFLite, int8 weights (dynamic-range quantized)",
                 "tflite_float16": "TFLite, float16 weights (computed in float32)"}


def readme(summary: dict) -> str:
    """The README.md of an export folder."""
    s = summary
    tps, nd, L, U = s["tones_per_step"], s["noise_dim"], s["num_layers"], s["units"]
    length = ("chosen at run time (a signature runner resizes the input; or "
              "`resize_tensor_input` + `allocate_tensors`)" if s["tflite_steps"] is None
              else f"fixed at {s['tflite_steps']} steps at export")
    errors, sizes, files, latency = s["errors"], s["sizes"], s["files"], s["tflite_latency_ms"]
    rows = [f"| `saved_model/` | TensorFlow SavedModel | {_mb(sizes['saved_model'])} | | |"]
    for key in [k for k in files if k.startswith("tflite")]:
        error = ("" if key == "tflite" else f"{errors[key + '_step_vs_tflite']:.2g} / "
                 f"{errors[key + '_vs_tflite']:.2g}")
        rows.append(f"| `{files[key]}` | {_DESCRIPTIONS[key]} | {_mb(sizes[key])} | "
                    f"{latency[key]:.1f} ms | {error} |")
    quantized = ""
    for q in s["quantizations"]:
        key = f"tflite_{q}"
        raw = ", ".join(f"{name} {e:.3g}" for name, e in zip(
            ("length ticks", "Hz", "velocity", "delta ticks"), s["raw_errors"][key + "_vs_tflite"]))
        step, bound = errors[key + "_step_vs_tflite"], s["bounds"][key + "_step_vs_tflite"]
        verdict = "" if step <= bound else " **exceeds the bound: prefer float32**"
        if errors[key + "_vs_tflite"] == 0:
            verdict += (" (nothing was quantized: the converter keeps weight tensors of fewer "
                        "than 1024 values in float32)")
        quantized += (f"- `{files[key]}`: one step **{step:.3g}** (bound {bound}){verdict}; "
                      f"free running {s['check_steps']} steps **{errors[key + '_vs_tflite']:.3g}**"
                      f", raw: {raw}.\n")
    if quantized:
        quantized = (
            "\n### Quantized variants\n\nMax errors against the float32 TFLite model "
            f"(batch 1, noise seed {CHECK_SEED}) in normalised units (raw error / the "
            "feature's std in the training data): *one step* gives both models the same state "
            f"at each of {s['check_steps']} steps (the error quantization adds per step); *free "
            "running* lets each model feed back its own output, so differences can grow with "
            "the length: a large value means the quantized model plays a different (equally "
            "likely) song for the same seed, not a broken one. Use float32 when the exact "
            "song of a seed matters.\n\n" + quantized)
    return f"""# Exported C-RNN-GAN generator

Exported from `{s['source']}` on {s['exported']} with TensorFlow {s['tensorflow']}.
C-RNN-GAN{'-3' if tps == 3 else ''}: an LSTM ({L} layers x {U} units) that turns uniform
noise into music, {tps} tone(s) per step, each step fed its own previous output.

| file | what | size | {s['check_steps']} steps (TFLite, 1 thread, here) | error vs float32: one step / free running |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

## Inputs: noise

`noise` is float32, **uniform in [0, 1)**, {nd} values per step (noise_dim = 4 x
tones_per_step). Any source of uniform noise works; the example scripts use
`numpy.random.default_rng(seed).uniform(size=(1, steps, {nd}))` (for streaming, one
`uniform(size=(1, {nd}))` per step from the same generator: the same numbers), so a seed
always gives the same music in both formats.

## Outputs: tones, in raw units

`tones` is float32 `[..., {tps}, 4]`, {tps} tone slot(s) per step, columns:

| column | meaning |
| --- | --- |
| 0 | length in ticks, 384 ticks per quarter note |
| 1 | frequency in Hz (MIDI pitch = round(69 + 12 log2(f / 440))) |
| 2 | velocity (MIDI 1..127 after rounding; a slot whose velocity rounds to 0 is no tone) |
| 3 | delta: ticks from the previous tone's start to this one's (0 = together) |

To write MIDI: round lengths and deltas to integer ticks (clip at 0), round and clip
velocities to 0..127, skip tones of velocity 0 (but add their delta to the next tone's),
start time = running sum of the deltas. Feature scaling is inside the models: no scaler needed.

## SavedModel signatures

- `serving_default`: `noise` float32 `[batch, steps, {nd}]` -> `tones` float32
  `[batch, steps, {tps}, 4]`. Batch and steps are free. Starts from zero state.
- `step`: one step for endless generation in constant memory. Inputs `noise`
  `[batch, {nd}]`, `h` and `c` `[{L}, batch, {U}]` (LSTM states per layer), `previous`
  `[batch, {nd}]` (the model's previous output, normalised units); outputs `tones`
  `[batch, {tps}, 4]` and the next `h`, `c`, `previous`. Start with zeros for `h`, `c` and
  `previous`; feed the returned three back. Chaining `step` gives `serving_default`'s output (to float rounding).
- `prime`: continue a primer (music to start from). Input `tones` float32
  `[batch, n, {tps}, 4]`, raw units as in the outputs above (for one tone per step: a
  MIDI file's notes in order of start time; n is free); outputs `h`, `c`, `previous`:
  the state to start `step` from, whose first output continues the primer. The model
  "listens" to the primer: step t of the LSTM is fed tone t - 1 as its previous output
  (teacher forcing; noise 0.5, the mean of the uniform noise, at every primer step, so the
  state depends on the primer alone), and `previous` is the primer's last step in
  normalised units. Long primers cost n LSTM steps: the last few hundred tones are enough.

Shapes are checked: a wrong rank or last dimension fails with an error naming the expected
shape. List the signatures with their shapes:

```sh
saved_model_cli show --dir saved_model --all
```

## TFLite signatures

The same three, named `serving_default`, `step` and `prime`, at **batch 1**; the
whole-sequence length is {length}; the primer's length n is free (the runner resizes it). Ops ({', '.join(s['tflite_ops'])}) are all TFLite builtins: the plain LiteRT
runtime (`pip install ai-edge-litert`) runs it, no Flex delegate. TFLite cannot word shape
errors: a wrong shape fails in `allocate_tensors`/the runner; use the shapes above. The
quantized files have the same signatures; the int8 (dynamic-range) one is the smallest and,
on CPUs, usually the fastest (see the table).
Max error against the SavedModel, one step at a time from the same state:
{errors['tflite_step_vs_saved_model']:.2g} (normalised units, {s['check_steps']} steps; the
export fails above {s['bounds']['tflite_step_vs_saved_model']:g}); free running, where
float32 rounding feeds back: {errors['tflite_vs_saved_model']:.2g} (reported, not judged).
The SavedModel against the Keras model: {errors['saved_model_vs_keras']:.2g}.
`prime`, then one `step` (primer: the model's own first {s['check_primer_steps']} steps):
TFLite against the SavedModel {errors['tflite_prime_vs_saved_model']:.2g} (the export fails
above {s['bounds']['tflite_prime_vs_saved_model']:g}), the SavedModel against the Keras model
{errors['prime_saved_model_vs_keras']:.2g}; with the whole {s['check_steps']} steps as the
primer, TFLite against the SavedModel: {errors['tflite_prime_long_vs_saved_model']:.2g}
(reported, not judged: a lively LSTM amplifies float32 rounding even while primed).
{quantized}
## Example

```python
import numpy as np
from ai_edge_litert.interpreter import Interpreter

interpreter = Interpreter(model_path="{files['tflite']}", num_threads=2)  # default: 1
generate = interpreter.get_signature_runner("serving_default")
noise = np.random.default_rng(0).uniform(size=(1, 200, {nd})).astype(np.float32)
tones = generate(noise=noise)["tones"][0]          # [200, {tps}, 4], raw units

step = interpreter.get_signature_runner("step")
state = {{"h": np.zeros([{L}, 1, {U}], np.float32), "c": np.zeros([{L}, 1, {U}], np.float32),
         "previous": np.zeros([1, {nd}], np.float32)}}
rng = np.random.default_rng(0)
for _ in range(200):
    out = step(noise=rng.uniform(size=(1, {nd})).astype(np.float32), **state)
    state = {{name: out[name] for name in ("h", "c", "previous")}}
    tones_of_this_step = out["tones"][0]          # [{tps}, 4]

# Continue a primer, in raw units: tones (length, Hz, velocity, delta) one per step here
# (with several slots per step, a chord's tones may share a step; empty slots are zeros).
tones = np.array([[192, 261.63, 80, 0], [192, 329.63, 80, 192], [384, 392.0, 80, 192]])
primer = np.zeros([1, len(tones), {tps}, 4], np.float32)
primer[0, :, 0] = tones
state = interpreter.get_signature_runner("prime")(tones=primer)  # h, c, previous
# ... then chain `step` from `state` as above.
```

`generate_savedmodel.py` and `generate_tflite.py` in the project's `export/` folder are
complete stand-alone scripts that write MIDI files (`--primer song.mid` continues a song).
"""
