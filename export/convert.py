"""Conversion of a trained generator: the SavedModel and the TFLite flatbuffers.

`GeneratorModule` wraps a `crnn_gan.generator.Generator` and its `FeatureScaler` in three
signatures (`SIGNATURES`) that take and return raw units: tones ``[..., tones_per_step, 4]``
with columns length in ticks at `tfds_midi.codec.TICKS_PER_QUARTER` (384) per quarter note,
frequency in Hz, velocity, delta in ticks (the scaler's denormalisation is baked into the
graphs as constants). `save_saved_model` writes the SavedModel (weights as variables),
`convert_tflite` returns TFLite bytes (float32, or quantized: `QUANTIZATIONS`).

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
import tempfile

import keras
import numpy as np
import tensorflow as tf

from tfds_midi.codec import FEATURES_PER_TONE

SIGNATURES = ("serving_default", "step", "prime")
STATE_NAMES = ("h", "c", "previous")
QUANTIZATIONS = ("none", "dynamic_range", "float16")
DEFAULT_QUANTIZATIONS = ("dynamic_range", "float16")
FLOAT_TFLITE = "generator.tflite"
QUANTIZED_FILES = {"dynamic_range": "generator_dynamic_range.tflite",
                   "float16": "generator_float16.tflite"}


def scaler_mismatch(generator, scaler) -> tuple[int, int] | None:
    """(the scaler's features, the generator's) when `scaler` (a `FeatureScaler`) cannot
    scale `generator`'s steps, else None."""
    features = Shapes.of(generator).num_features
    if np.shape(scaler.mean) != (features,):
        return int(np.size(scaler.mean)), features
    return None


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
        mismatch = scaler_mismatch(generator, scaler)
        if mismatch:
            raise ValueError("the scaler has %d features, the generator %d" % mismatch)
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

