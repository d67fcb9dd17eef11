"""``python -m export --model_dir=RUN --output=DIR``: SavedModel + TFLite + README of a run.

See `export.export` for what is written and `DIR/README.md` for how to use it.
"""

from __future__ import annotations

import json

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A training run (config.json, scaler.json, "
                    "generator.weights.h5).", required=True)
flags.DEFINE_string("output", None, "Folder to write the export into.", required=True)
flags.DEFINE_integer("tflite_steps", 0, "Length of the TFLite whole-sequence signature: "
                     "0 = chosen at run time by the app (default), N = fixed at N steps.",
                     lower_bound=0)
flags.DEFINE_multi_enum("quantization", ["dynamic_range", "float16"],
                        ["dynamic_range", "float16", "none"],
                        "Quantized TFLite variants to write besides the float32 one "
                        "(repeat the flag for several; none: no variant).")


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from export.export import export_generator

    summary = export_generator(FLAGS.model_dir, FLAGS.output, tflite_steps=FLAGS.tflite_steps,
                               quantizations=FLAGS.quantization)
    print(f"exported {FLAGS.model_dir} -> {FLAGS.output}")
    for key, path in summary["files"].items():
        print(f"  {path}: {summary['sizes'][key]} bytes")
    print("  max errors (normalised units): " + json.dumps(summary["errors"]))
    print("  TFLite latency, ms: " + json.dumps(
        {k: round(v, 2) for k, v in summary["tflite_latency_ms"].items()}))


if __name__ == "__main__":
    app.run(main)
