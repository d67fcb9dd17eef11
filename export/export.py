"""Exports a trained C-RNN-GAN generator as a SavedModel and as TFLite, for other apps.

What `export_generator` (and ``python -m export``) writes into the output folder:

    saved_model/                    signatures `serving_default` (whole sequence), `step`
                                    and `prime` (G's state warmed on a primer, for `step`
                                    to continue)
    generator.tflite                float32, builtin ops only, the same three signatures
    generator_dynamic_range.tflite  int8 weights (dynamic-range quantized), same signatures
    generator_float16.tflite        weights stored as float16 (half the size), same
                                    signatures
    export.json                     the summary: source, shapes, sizes, measured errors and
                                    their bounds, TFLite latency, the scaler's mean and std
    README.md                       signatures, shapes, units, noise, measured errors

(the two quantized files as asked: both by default, `quantizations`). Both formats return
tones in raw units (the `FeatureScaler` denormalisation is baked into the graphs as
constants): ``[..., tones_per_step, 4]`` with columns length in ticks at 384 per quarter
note, frequency in Hz, velocity, delta in ticks.

The jobs live in their own modules: `export.convert` (the SavedModel module and the TFLite
conversion), `export.verify` (parity checks and timing), `export.readme_template` (the
README); this one writes the files and the summary.
"""

from __future__ import annotations

import datetime
import json
import os

import tensorflow as tf

from crnn_gan import gfile
from export import readme_template
from export.convert import (
    DEFAULT_QUANTIZATIONS,
    FLOAT_TFLITE,
    QUANTIZED_FILES,
    Shapes,
    convert_tflite,
    save_saved_model,
    tflite_ops,
)
from export.verify import CHECK_PRIMER_STEPS, CHECK_STEPS, verify


def load(model_dir: str):
    """``(generator, config, scaler)`` of a training run (`crnn_gan.training.load_generator`)."""
    from crnn_gan.training import load_generator
    return load_generator(model_dir)


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


def export_loaded(generator, scaler, output: str, *, tflite_steps: int | None = None,
                  quantizations=DEFAULT_QUANTIZATIONS, source: str = "") -> dict:
    """`export_generator` for an already-loaded generator and scaler."""
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
        gfile.write_bytes(files[key], model)

    # Parity on seeded noise, and TFLite latency (raises on a float32 parity error).
    steps = tflite_steps or CHECK_STEPS
    checked = verify(generator, scaler, module, models, quantizations, steps)

    summary = {
        "source": source,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tensorflow": tf.__version__,
        "tones_per_step": shapes.tones_per_step, "units": shapes.units,
        "num_layers": shapes.num_layers, "noise_dim": shapes.noise_dim,
        "output_head": generator.output_head,
        "sampling_temperature": float(generator.sampling_temperature),
        "velocity_temperature": float(generator.velocity_temperature),
        "autoregressive_head": bool(generator.autoregressive_head),
        "tflite_steps": tflite_steps, "quantizations": list(quantizations),
        "check_steps": steps, "check_primer_steps": CHECK_PRIMER_STEPS,
        "errors": checked.errors, "bounds": checked.bounds, "raw_errors": checked.raw_errors,
        "tflite_latency_ms": checked.latency_ms,
        "sizes": {key: _size(path) for key, path in files.items()},
        "files": {key: os.path.relpath(path, output) for key, path in files.items()},
        "tflite_ops": sorted(tflite_ops(models["tflite"])["builtin"]),
        "mean": [float(x) for x in scaler.mean], "std": [float(x) for x in scaler.std],
    }
    gfile.write_text(os.path.join(output, "export.json"), json.dumps(summary, indent=2))
    gfile.write_text(os.path.join(output, "README.md"), readme_template.readme(summary))
    return summary


def _size(path: str) -> int:
    """Bytes of a file, or of every file under a folder."""
    if not tf.io.gfile.isdir(path):
        return tf.io.gfile.stat(path).length
    return sum(tf.io.gfile.stat(os.path.join(root, name)).length
               for root, _, names in tf.io.gfile.walk(path) for name in names)

