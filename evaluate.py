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
from crnn_gan.evaluation import request as request_lib

FLAGS = flags.FLAGS
# One flag per field of Request (crnn_gan/evaluation/request.py), with its help text there.
for _field, _flag, _default in request_lib.flags():
    _extra = {"enum_values": list(_flag.choices)} if _flag.kind == "enum" else {}
    getattr(flags, f"DEFINE_{_flag.kind}")(_flag.name or _field, _default, help=_flag.help,
                                           **_extra)


def request_from_flags() -> request_lib.Request:
    values = {field: getattr(FLAGS, flag.name or field)
              for field, flag, _ in request_lib.flags()}
    values["model_dirs"] = request_lib.split_commas(values["model_dirs"])
    return request_lib.Request(**values)


#: The counts' upper limits. Songs and steps: every entry point's (`crnn_gan.cli`).
#: Excerpts: each is a MIDI file, a piano-roll panel and a FluidSynth rendering.
LIMITS = {"num_samples": cli.MAX_SONGS, "real_windows": 100_000, "excerpts": 100,
          "repetition_length": 100, "steps": cli.MAX_STEPS, "window": cli.MAX_STEPS}


def main(argv):
    if len(argv) > 1:
        return cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    request = request_from_flags()
    if not request.output_dir:
        return cli.fail("--output_dir is required: the folder for the JSON, CSV and figures")
    if request.real and request.midi_dir:
        return cli.fail("give --real or --midi_dir, not both")
    if not (request.real or request.midi_dir or request.samples or request.saved_model
            or request.model_dirs):
        return cli.fail(
            "nothing to evaluate: give --model_dir, --samples, --saved_model, --real or "
            "--midi_dir")
    for name, limit in LIMITS.items():
        value = getattr(request, name)
        if value is not None and not 1 <= value <= limit:
            return cli.fail(f"--{name} must be >= 1 and at most {limit}, got {value}")

    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # TFDS logs every dataset it opens
    from crnn_gan.evaluation import orchestration, songs

    try:
        result = orchestration.evaluate(request, log=lambda text: print(text, flush=True))
    except songs.EvaluationError as error:
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
