"""Generation latency of the Keras generator and its exports, side by side in one run.

Usage: ``python benchmarks/bench_generate.py [--preset paper] [--steps 200] [--repeats 20]``

Builds the generator of a preset (``paper``: 2 x 350 LSTM units; random weights, which cost
the same as trained ones), exports it with `export.export.export_loaded` into a temporary
folder and times, for batch 1 and ``--steps`` steps of uniform noise:

- Keras, eager call (`Generator.call`: its `tf.while_loop` runs op by op in Python);
- Keras, the same call in a `tf.function` (traced once);
- the SavedModel's ``serving_default`` signature, and its ``step`` signature chained;
- TFLite (ai-edge-litert) whole sequence: float32, float16 and int8 (dynamic-range) weights;
- TFLite streaming: the ``step`` signature chained (a Python call per step);
- priming: the ``prime`` signature on a primer of ``--primer_tones`` tones (the model's own
  output), alone, and followed by ``--steps`` steps of the ``step`` signature chained, in the
  SavedModel and in TFLite (printed as a ratio), and the same through generate.py's models
  (`crnn_gan.generation`: the Keras generator, and the export's SavedModel with its ``step``
  in one graph loop).

Each is warmed up, then timed ``--repeats`` times (``--eager_repeats`` for the eager call),
round robin so that load from other processes affects all alike;
the median and the best are printed in ms, with the ratios to the SavedModel, and the size
of each file. Both runtimes get the same threads: all cores unless ``--threads`` (TensorFlow
uses all cores by default, the TFLite interpreter one thread unless told).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crnn_gan import distribute  # noqa: E402
from crnn_gan.config import preset  # noqa: E402
from crnn_gan.training import build_generator  # noqa: E402
from export import export as export_lib  # noqa: E402
from tfds_midi.pipeline import FeatureScaler  # noqa: E402


def tflite_stream(runner, noise: np.ndarray, state: dict | None = None):
    inputs = runner.get_input_details()
    if state is None:
        state = {k: np.zeros(inputs[k]["shape"], np.float32) for k in ("h", "c", "previous")}
    for t in range(noise.shape[1]):
        out = runner(noise=noise[:, t], **state)
        state = {k: out[k] for k in ("h", "c", "previous")}
    return out["tones"]


def saved_model_stream(step, noise: np.ndarray, num_layers: int, units: int,
                       state: dict | None = None):
    if state is None:
        state = {"h": tf.zeros([num_layers, 1, units]), "c": tf.zeros([num_layers, 1, units]),
                 "previous": tf.zeros([1, noise.shape[-1]])}
    for t in range(noise.shape[1]):
        out = step(noise=tf.constant(noise[:, t]), **state)
        state = {k: out[k] for k in ("h", "c", "previous")}
    return out["tones"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="paper", help="config preset (paper, small, tiny)")
    parser.add_argument("--steps", type=int, default=200, help="steps generated per call")
    parser.add_argument("--repeats", type=int, default=20, help="timed calls per variant")
    parser.add_argument("--eager_repeats", type=int, default=3, help="timed eager Keras calls")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads of both runtimes (default: all cores)")
    parser.add_argument("--seed", type=int, default=0, help="weights and noise seed")
    parser.add_argument("--primer_tones", type=int, default=256,
                        help="primer length of the priming variants (steps of the model)")
    args = parser.parse_args(argv)
    if args.threads:
        distribute.configure_cpu_threads(args.threads, args.threads)
    import keras
    from ai_edge_litert.interpreter import Interpreter

    from crnn_gan import generation

    keras.utils.set_random_seed(args.seed)
    config = preset(args.preset)
    generator = build_generator(config)
    generator.build()
    features = config.num_features
    scaler = FeatureScaler(np.tile(np.float32([400, 370, 80, 150]), config.tones_per_step),
                           np.tile(np.float32([300, 150, 20, 200]), config.tones_per_step))
    noise = np.random.default_rng(args.seed).uniform(
        size=(1, args.steps, features)).astype(np.float32)
    # The primer: the model's own output (tones in its range), raw units.
    primer_noise = np.random.default_rng(args.seed + 1).uniform(
        size=(1, args.primer_tones, features)).astype(np.float32)
    primer = np.asarray(scaler.denormalize(np.asarray(generator(primer_noise))), np.float32)
    primer = primer.reshape(1, args.primer_tones, config.tones_per_step, 4)

    with tempfile.TemporaryDirectory() as tmp:
        begin = time.perf_counter()
        summary = export_lib.export_loaded(generator, scaler, tmp, source=f"preset {args.preset}")
        export_seconds = time.perf_counter() - begin
        weights = os.path.join(tmp, "generator.weights.h5")
        generator.save_weights(weights)
        sizes = {"Keras weights (.weights.h5)": os.path.getsize(weights),
                 "SavedModel (folder)": summary["sizes"]["saved_model"],
                 "TFLite float32": summary["sizes"]["tflite"],
                 "TFLite float16": summary["sizes"]["tflite_float16"],
                 "TFLite dynamic range (int8 weights)": summary["sizes"]["tflite_dynamic_range"]}

        traced = tf.function(generator, input_signature=[
            tf.TensorSpec([None, None, features], tf.float32)])
        loaded = tf.saved_model.load(os.path.join(tmp, "saved_model"))
        serving, step = loaded.signatures["serving_default"], loaded.signatures["step"]
        noise_tensor = tf.constant(noise)

        def interpreter(name):
            return Interpreter(model_path=os.path.join(tmp, name), num_threads=args.threads)

        whole = interpreter("generator.tflite").get_signature_runner("serving_default")
        whole16 = interpreter("generator_float16.tflite").get_signature_runner("serving_default")
        whole8 = interpreter("generator_dynamic_range.tflite").get_signature_runner(
            "serving_default")
        streamer = interpreter("generator.tflite").get_signature_runner("step")
        tflite_prime = interpreter("generator.tflite").get_signature_runner("prime")
        saved_prime = loaded.signatures["prime"]
        primer_tensor = tf.constant(primer)
        keras_model = generation.KerasModel(generator, scaler, "Keras")
        export_model = generation.ExportModel(os.path.join(tmp, "saved_model"), "export")

        def saved_model_primed():
            state = saved_prime(tones=primer_tensor)
            return saved_model_stream(step, noise, config.num_layers, config.units,
                                      {k: state[k] for k in ("h", "c", "previous")})

        def tflite_primed():
            return tflite_stream(streamer, noise, tflite_prime(tones=primer))

        def generation_primed(model):
            return model.run(noise, model.prime(primer))

        variants = [
            ("Keras eager call", lambda: generator(noise_tensor), args.eager_repeats),
            ("Keras tf.function", lambda: traced(noise_tensor), args.repeats),
            ("SavedModel serving_default", lambda: serving(noise=noise_tensor), args.repeats),
            ("SavedModel step x steps", lambda: saved_model_stream(
                step, noise, config.num_layers, config.units), max(3, args.repeats // 4)),
            ("TFLite whole sequence", lambda: whole(noise=noise), args.repeats),
            ("TFLite float16 whole sequence", lambda: whole16(noise=noise), args.repeats),
            ("TFLite int8-weights whole sequence", lambda: whole8(noise=noise), args.repeats),
            ("TFLite streaming (step x steps)", lambda: tflite_stream(streamer, noise),
             args.repeats),
            ("SavedModel prime", lambda: saved_prime(tones=primer_tensor), args.repeats),
            ("TFLite prime", lambda: tflite_prime(tones=primer), args.repeats),
            ("SavedModel prime + step x steps", saved_model_primed, max(3, args.repeats // 4)),
            ("TFLite prime + step x steps", tflite_primed, args.repeats),
            ("generate.py Keras prime + steps", lambda: generation_primed(keras_model),
             args.repeats),
            ("generate.py export prime + steps", lambda: generation_primed(export_model),
             args.repeats),
        ]
        # Round robin, so that load from other processes hits every variant alike.
        times = {name: [] for name, _, _ in variants}
        for name, fn, _ in variants:
            for _ in range(1 if "eager" in name else 2):
                fn()  # warm-up (tracing, allocation)
        for round_ in range(max(repeats for _, _, repeats in variants)):
            for name, fn, repeats in variants:
                if round_ < repeats:
                    begin = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - begin)
        results = {name: (statistics.median(t) * 1e3, min(t) * 1e3) for name, t in times.items()}

    print(f"preset {args.preset}: {config.num_layers} x {config.units} units, "
          f"{config.tones_per_step} tone(s)/step; batch 1, {args.steps} steps; "
          f"TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, threads "
          f"{args.threads or 'default'}; export took {export_seconds:.1f} s")
    reference = results["SavedModel serving_default"][0]
    print(f"{'variant':36s} {'median ms':>10s} {'best ms':>9s} {'/ SavedModel':>13s}")
    for name, (median, best) in results.items():
        print(f"{name:36s} {median:10.2f} {best:9.2f} {median / reference:12.2f}x")
    print(f"{'file':36s} {'size':>10s}")
    for name, size in sizes.items():
        print(f"{name:36s} {size / 1e6:8.2f} MB")
    errors = summary["errors"]
    print(f"max error, normalised units, {summary['check_steps']} steps: SavedModel vs Keras "
          f"{errors['saved_model_vs_keras']:.2g}, TFLite vs SavedModel "
          f"{errors['tflite_vs_saved_model']:.2g}; vs float32 TFLite, one step / free running: "
          f"float16 {errors['tflite_float16_step_vs_tflite']:.2g} / "
          f"{errors['tflite_float16_vs_tflite']:.2g}, int8 weights "
          f"{errors['tflite_dynamic_range_step_vs_tflite']:.2g} / "
          f"{errors['tflite_dynamic_range_vs_tflite']:.2g}")
    tflite = results["TFLite whole sequence"][0]
    print(f"goal TFLite no slower than the SavedModel: whole sequence {tflite / reference:.2f}x "
          f"-> {'met' if tflite <= reference else 'NOT met'}")
    primed_saved = results["SavedModel prime + step x steps"][0]
    primed_tflite = results["TFLite prime + step x steps"][0]
    print(f"priming {args.primer_tones} tones, then {args.steps} steps (step signature chained): "
          f"SavedModel {primed_saved:.1f} ms, TFLite {primed_tflite:.1f} ms, TFLite / SavedModel "
          f"{primed_tflite / primed_saved:.2f}x; prime alone: SavedModel "
          f"{results['SavedModel prime'][0]:.1f} ms, TFLite {results['TFLite prime'][0]:.1f} ms "
          f"({results['TFLite prime'][0] / results['SavedModel prime'][0]:.2f}x)")


if __name__ == "__main__":
    main()
