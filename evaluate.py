r"""Evaluates C-RNN-GAN runs with the paper's six statistics and draws its Figure 3.

    python evaluate.py --model_dir=runs/gan,runs/baseline,runs/gan3 \
        --real=crnn_gan_midi/default:train --data_dir=data --output_dir=runs/eval
    python evaluate.py --samples=my_midis --midi_dir=real_midis --output_dir=out --pianoroll
    python evaluate.py --saved_model=export/gan --num_samples=20 --steps=200 \
        --real=crnn_gan_midi/default:train --output_dir=out --wav

Writes evaluation.json, evaluation.csv and figure3.png (plus pianoroll.png, excerpts/*.mid
and wav/*.wav when asked) to --output_dir and prints a table of the final statistics.
Exit status 2 on bad input (missing run, empty folder, no readable MIDI), with a message.
"""

import sys

from absl import app, flags, logging

from crnn_gan import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("real", None, "Real music from TFDS: crnn_gan_midi/<config>:<split>.")
flags.DEFINE_string("midi_dir", None, "Real music from a folder of MIDI files (recursive).")
flags.DEFINE_string("data_dir", None, "TFDS data dir for --real (default: TFDS's).")
flags.DEFINE_multi_string("samples", [], "Folder(s) of generated MIDI files.")
flags.DEFINE_string("saved_model", None,
                    "Exported generator (DIR/saved_model or DIR) to sample --num_samples from.")
flags.DEFINE_integer("num_samples", 20, "Songs generated with --saved_model.")
flags.DEFINE_integer("steps", None,
                     "Steps per song generated with --saved_model (default: --window).")
flags.DEFINE_multi_string("model_dir", [],
                          "train.py run folder(s); repeat the flag or separate with commas.")
flags.DEFINE_string("output_dir", None, "Where JSON, CSV and PNGs go (required).")
flags.DEFINE_string("figure", None, "Path of the Figure-3 PNG (default: output_dir/figure3.png).")
flags.DEFINE_integer("window", None,
                     "Real music is also measured over random windows of this many tones "
                     "(default: the runs' sample_steps, else --steps, else 200).")
flags.DEFINE_integer("real_windows", 500, "Number of random real windows.")
flags.DEFINE_enum("compat", None, ["mogren2016"],
                  "Use the original code's formulas (see crnn_gan/metrics.py).")
flags.DEFINE_integer("repetition_length", 3, "Pattern length of the repetitions statistic.")
flags.DEFINE_bool("pianoroll", False, "Write pianoroll.png of generated and real excerpts.")
flags.DEFINE_integer("excerpts", 3, "Excerpts per column of the piano roll / WAV rendering.")
flags.DEFINE_bool("wav", False, "Render the excerpts to WAV with fluidsynth.")
flags.DEFINE_string("soundfont", None, "General MIDI .sf2 for --wav (default: FluidR3_GM).")
flags.DEFINE_integer("seed", 0, "Seeds real windows and SavedModel noise.")


def main(argv):
    if len(argv) > 1:
        return cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.output_dir:
        return cli.fail("--output_dir is required: the folder for the JSON, CSV and figures")
    if FLAGS.real and FLAGS.midi_dir:
        return cli.fail("give --real or --midi_dir, not both")
    model_dirs = [d for value in FLAGS.model_dir for d in value.split(",") if d]
    if not (FLAGS.real or FLAGS.midi_dir or FLAGS.samples or FLAGS.saved_model or model_dirs):
        return cli.fail(
            "nothing to evaluate: give --model_dir, --samples, --saved_model, --real or "
            "--midi_dir")
    for name in ("num_samples", "real_windows", "excerpts", "repetition_length"):
        if getattr(FLAGS, name) < 1:
            return cli.fail(f"--{name} must be >= 1")
    for name in ("steps", "window"):
        if getattr(FLAGS, name) is not None and getattr(FLAGS, name) < 1:
            return cli.fail(f"--{name} must be >= 1")

    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TFDS logs every dataset it opens
    from crnn_gan import evaluation

    request = evaluation.Request(
        output_dir=FLAGS.output_dir, real=FLAGS.real, midi_dir=FLAGS.midi_dir,
        data_dir=FLAGS.data_dir, samples=FLAGS.samples, saved_model=FLAGS.saved_model,
        num_samples=FLAGS.num_samples, steps=FLAGS.steps, model_dirs=model_dirs,
        window=FLAGS.window, real_windows=FLAGS.real_windows, compat=FLAGS.compat,
        repetition_length=FLAGS.repetition_length, figure=FLAGS.figure,
        pianoroll=FLAGS.pianoroll, excerpts=FLAGS.excerpts, wav=FLAGS.wav,
        soundfont=FLAGS.soundfont, seed=FLAGS.seed)
    try:
        result = evaluation.evaluate(request, log=lambda text: print(text, flush=True))
    except evaluation.EvaluationError as error:
        return cli.fail(str(error))
    print()
    print(result.table)
    report = result.report
    if report["real"]:
        print(f"\n(real repetitions normalised to the generated length: "
              f"x {report['generated_length']:.1f} / tones of each window)")
    if report["skipped"]:
        print(f"\n{report['skipped']} unreadable MIDI files skipped (listed in the JSON)")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    print("\nwrote " + ", ".join(
        v for k, v in report["files"].items() if isinstance(v, str)), flush=True)
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
