r"""Generates music with a trained C-RNN-GAN generator and writes it as MIDI (and audio).

    python generate.py                                   # the shipped generator, pretrained/gan
    python generate.py --model_dir=runs/gan --num_songs=4 --seconds=60 --output_dir=out
    python generate.py --model_dir=runs/gan --checkpoint=best --steps=2000
    python generate.py --export=runs/demo/export --primer_midi=song.mid --ogg
    python generate.py --model_dir=runs/gan --primer_from=crnn_gan_midi/default:test --data_dir=data

The model: --model_dir (a train.py run: its final generator, or --checkpoint=best|latest; an
export folder works too), --export (a folder written by `python -m export`), or neither: the
generator the repository ships in pretrained/gan. With --primer_midi (or --primer_from, a song
of a prepared dataset split) each song continues the primer: the generator's state is warmed
on the primer's last --primer_max_tones tones (teacher forcing), then it runs free; the file
holds the primer, then the continuation. The same seed gives the same files. Bad input (a
primer that is not MIDI or holds no tones, a folder that is neither a run nor an export,
--steps out of range, a --primer_from split that is not prepared, an --output_dir that
cannot be made, a --soundfont that is not one) stops with one line naming it, exit status 2.
"""

from absl import app, flags, logging

from crnn_gan import cli

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A train.py run (or an export folder). Default: the "
                    "shipped generator pretrained/gan.")
flags.DEFINE_string("export", None, "A folder written by `python -m export` (its SavedModel).")
flags.DEFINE_enum("checkpoint", "final", ["final", "best", "latest"],
                  "Which weights of a --model_dir run: final (generator.weights.h5), best "
                  "(checkpoints/best.weights.h5, the epoch closest to real music by its "
                  "statistics) or latest (checkpoints/latest.weights.h5, also of unfinished runs).")
flags.DEFINE_integer("num_songs", 1, "Songs to generate (song k uses the noise of seed + k).")
flags.DEFINE_integer("steps", None, "Steps per song (one tone a step; C-RNN-GAN-3: up to "
                     "three). Default 200; at most 100000.")
flags.DEFINE_float("seconds", None, "Length per song instead of --steps: seconds x 768 ticks "
                   "(120 bpm) / the model's mean ticks per step, measured on 4 probe songs.")
flags.DEFINE_integer("seed", 0, "Noise seed: the same seed gives the same files.",
                     lower_bound=0, upper_bound=cli.MAX_SEED)
flags.DEFINE_string("output_dir", "generated", "Where song_NNN.mid (and audio) go.")
flags.DEFINE_string("primer_midi", None, "A MIDI file for every song to continue.")
flags.DEFINE_string("primer_from", None, "Instead of --primer_midi: a song of a prepared "
                    "dataset split, crnn_gan_midi/<config>:<split> (e.g. "
                    "crnn_gan_midi/default:test), number --primer_index.")
flags.DEFINE_integer("primer_index", 0, "Which song of --primer_from (from 0).")
flags.DEFINE_string("data_dir", None, "TFDS data dir of --primer_from (default: TFDS's).")
flags.DEFINE_integer("primer_max_tones", 256, "A longer primer primes with its last tones "
                     "(the whole primer is still written before the continuation).")
flags.DEFINE_bool("primer_only_continuation", False, "Leave the primer out of the files.")
flags.DEFINE_bool("wav", False, "Also render each song to WAV with FluidSynth.")
flags.DEFINE_bool("ogg", False, "Also render each song to OGG Vorbis with FluidSynth.")
flags.DEFINE_string("soundfont", None, "General MIDI .sf2 for --wav/--ogg (default: FluidR3_GM).")


def main(argv):
    if len(argv) > 1:
        return cli.fail(f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    from crnn_gan import generation
    from tfds_midi import codec

    request = generation.Request(
        output_dir=FLAGS.output_dir, model_dir=FLAGS.model_dir, export=FLAGS.export,
        checkpoint=FLAGS.checkpoint, num_songs=FLAGS.num_songs, steps=FLAGS.steps,
        seconds=FLAGS.seconds, seed=FLAGS.seed, primer_midi=FLAGS.primer_midi,
        primer_from=FLAGS.primer_from, primer_index=FLAGS.primer_index, data_dir=FLAGS.data_dir,
        primer_max_tones=FLAGS.primer_max_tones,
        primer_only_continuation=FLAGS.primer_only_continuation, wav=FLAGS.wav, ogg=FLAGS.ogg,
        soundfont=FLAGS.soundfont)
    try:
        generation.generate(request, log=lambda text: print(text, flush=True))
    except generation.GenerationError as error:
        return cli.fail(str(error))
    except codec.MidiFormatError as error:
        return cli.fail(f"--primer_midi={FLAGS.primer_midi}: {error}")
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
