"""``python -m export --model_dir=RUN --output=DIR``: SavedModel + TFLite + README of a run.

See `export.export` for what is written and `DIR/README.md` for how to use it. Bad input (no
such run, an export instead of a run, an unfinished run, a damaged config.json, scaler.json or
generator.weights.h5, an --output that cannot be a folder) stops with one line naming it,
exit status 2.
"""

from __future__ import annotations

import json
import posixpath

from absl import app, flags, logging

from crnn_gan import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A training run (config.json, scaler.json, "
                    "generator.weights.h5).", required=True)
flags.DEFINE_string("output", None, "Folder to write the export into.", required=True)
flags.DEFINE_integer("tflite_steps", 0, "Length of the TFLite whole-sequence signature: "
                     "0 = chosen at run time by the app (default), N = fixed at N steps "
                     f"(at most {cli.MAX_STEPS}, generate.py's limit).", lower_bound=0,
                     upper_bound=cli.MAX_STEPS)
flags.DEFINE_multi_enum("quantization", ["dynamic_range", "float16"],
                        ["dynamic_range", "float16", "none"],
                        "Quantized TFLite variants to write besides the float32 one "
                        "(repeat the flag for several; none: no variant).")


class BadRun(Exception):
    """--model_dir is not a finished training run; the message says why and what to do."""


def load_run(model_dir: str):
    """``(generator, scaler)`` of a finished train.py run.

    Raises:
        BadRun: naming the folder or file that is missing or damaged.
    """
    import tensorflow as tf

    from crnn_gan import gfile, run_dir
    from export import convert
    from export import export as export_lib
    from tfds_midi import pipeline

    flag = f"--model_dir={model_dir}"
    if not tf.io.gfile.isdir(model_dir):
        what = "is a file" if tf.io.gfile.exists(model_dir) else "does not exist"
        raise BadRun(f"{flag} {what}: give the folder of a train.py run")
    if tf.io.gfile.exists(f"{model_dir}/export.json") or tf.io.gfile.exists(
            f"{model_dir}/saved_model"):
        source = ""
        try:
            source = json.loads(gfile.read_text(f"{model_dir}/export.json")).get("source", "")
        except (tf.errors.OpError, ValueError, AttributeError):
            pass
        raise BadRun(f"{flag} is an export, not a training run: give the train.py run it "
                     "was exported from" + (f" ({source})" if source else ""))
    try:
        run_dir.read_record(model_dir)
    except run_dir.RunDirError as error:
        raise BadRun(str(error)) from None
    weights = f"{model_dir}/generator.weights.h5"
    if not tf.io.gfile.exists(weights):
        try:
            progress = run_dir.read_progress(model_dir)
        except run_dir.RunDirError:
            progress = None
        done = (f" ({progress['epochs_done']} of its epochs done)" if progress else "")
        raise BadRun(f"{model_dir} has no generator.weights.h5: the run has not finished"
                     f"{done}. Run its train.py command again to finish it, then export")
    scaler_path = f"{model_dir}/scaler.json"
    if not tf.io.gfile.exists(scaler_path):
        raise BadRun(f"{model_dir} has no scaler.json (the feature scaling the run was "
                     "trained with): it is not a complete train.py run")
    try:
        pipeline.FeatureScaler.load(scaler_path)
    except (ValueError, KeyError, TypeError) as error:
        raise BadRun(f"{scaler_path} is damaged: {error}") from None
    try:
        generator, _, scaler = export_lib.load(model_dir)
    except (ValueError, OSError) as error:  # Keras: mismatched variables; h5py: not HDF5
        raise BadRun(f"{weights} does not fit {model_dir}/config.json or is damaged: "
                     f"{str(error).splitlines()[0].rstrip(':')}") from None
    mismatch = convert.scaler_mismatch(generator, scaler)
    if mismatch:  # before anything is written (GeneratorModule would refuse it later)
        scaled, written = mismatch
        raise BadRun(f"{scaler_path} is damaged: it scales {scaled} features, the generator "
                     f"of config.json writes {written}")
    return generator, scaler


def main(argv):
    if len(argv) > 1:
        return cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)
    from crnn_gan import gfile
    from export.export import export_loaded

    model_dir, output = FLAGS.model_dir.rstrip("/"), FLAGS.output.rstrip("/")
    if posixpath.normpath(model_dir) == posixpath.normpath(output):
        return cli.fail(f"--output={FLAGS.output} is the run folder: give a folder of its own "
                        "for the export")
    try:
        generator, scaler = load_run(model_dir)
    except BadRun as error:
        return cli.fail(str(error))
    problem = gfile.make_folder(output, "--output", give="a folder for the export")
    if problem:
        return cli.fail(problem)

    summary = export_loaded(generator, scaler, output, tflite_steps=FLAGS.tflite_steps,
                            quantizations=FLAGS.quantization, source=FLAGS.model_dir)
    print(f"exported {FLAGS.model_dir} -> {FLAGS.output}")
    for key, path in summary["files"].items():
        print(f"  {path}: {summary['sizes'][key]} bytes")
    print("  max errors (normalised units): " + json.dumps(summary["errors"]))
    print("  TFLite latency, ms: " + json.dumps(
        {k: round(v, 2) for k, v in summary["tflite_latency_ms"].items()}))
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
