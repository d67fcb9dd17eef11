"""What gives a generator away: the post-hoc discriminative score with the classifier
restricted to one aspect of the tones, or to the bag of tones without their order.

The protocol's discriminative score (`bench_quality.py`) says how well a small classifier
tells a generator's songs from real test windows, not by what. This script scores the
protocol's saved raw songs again (``WORK/NAME/{model}_seedS/quality_generated.npy``,
against the test windows each run was measured against, with the classifier and seed it
was measured with; `crnn_gan.quality.discriminative_score`) in these views:

* ``all``: every column, the protocol's score (recomputed here: the classifier's numbers
  can differ slightly by machine);
* ``pitch``, ``rhythm`` (length and delta), ``velocity``: one aspect's columns alone
  (`crnn_gan.quality.ASPECT_COLUMNS`), the others constant;
* ``pitch+rhythm``: both;
* ``bag``: every column, each window's steps shuffled: the tones without their order;
* ``canonical``: every column, both sets' tones put in the format's canonical order
  (`tfds_midi.codec.canonical_order`: tones that start together sorted by pitch, as a MIDI
  file gives them back; values untouched). A generator writes the tones of a chord in any
  order and a listener cannot tell; the classifier can. C-RNN-GAN (one tone per step) only.

Beside the views, per set, the joint of pitch and onset that the ``pitch+rhythm`` view
sees (`onset_and_chord_pitches`): the mean MIDI pitch of the tones that start a new onset
(delta > 0) and of the tones that join a chord (delta 0), and the fraction of chord tones
lower than the tone before them (out of canonical order; 0 in real music).

A view near the real-music row (real train-split windows scored as if generated,
``--real_as_generated``) does not tell the songs apart; one near ``all`` holds what does.
Printed per run and as mean ± std over seeds (`crnn_gan.quality.over_seeds`).

Usage::

    python benchmarks/bench_disc_aspects.py --work_dir=runs/quality \\
        --names=small_seeds678_preset --models=gan,baseline \\
        --real_as_generated='runs/quality/reference/*_train_k1_steps100_n64_*.npz' \\
        --output=docs/disc_aspects.json
"""

from __future__ import annotations

import concurrent.futures
import glob
import multiprocessing
import pathlib
import sys

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import protocol_runs  # noqa: E402
from crnn_gan import cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("work_dir", None, "bench_quality.py's --work_dir.", required=True)
flags.DEFINE_list("names", ["small_seeds678_preset"], "bench_quality.py --name entries.")
flags.DEFINE_list("models", ["gan", "baseline"], "Models of each entry to score.")
flags.DEFINE_string("real_as_generated", None, "Real windows (.npz, a glob matching one "
                    "file) scored as if generated: the row a view cannot go below.")
flags.DEFINE_integer("jobs", 2, "Sets scored side by side (one process each).")
flags.DEFINE_integer("threads", 1, "TensorFlow intra- and inter-op threads per process.")
flags.DEFINE_string("output", None, "Also write the results as JSON here.")

def views() -> dict[str, dict]:
    """The views, in the table's order: keyword arguments of
    `quality.discriminative_score` for each."""
    from crnn_gan.quality import ASPECT_COLUMNS

    out = {"all": {}}
    out.update({aspect: {"columns": ASPECT_COLUMNS[aspect]}
                for aspect in ("pitch", "rhythm", "velocity")})
    out["pitch+rhythm"] = {"columns": ASPECT_COLUMNS["pitch"] + ASPECT_COLUMNS["rhythm"]}
    out["bag"] = {"shuffle_steps": True}
    out["canonical"] = {}  # on canonical_songs (score_set)
    return out


def load_songs(path: str):
    """Raw songs from a protocol run's .npy, or the ``windows`` of a reference .npz."""
    import numpy as np

    return np.load(path)["windows"] if path.endswith(".npz") else np.load(path)


def onset_and_chord_pitches(songs) -> dict[str, float]:
    """Mean MIDI pitch of the tones that start a new onset (delta > 0) and of those that
    join a chord (delta 0), and the fraction of chord tones more than half a semitone
    below the tone before them; steps 1.. of each song (the first step's delta reaches
    outside the window), tones with a frequency > 0. One tone per step only (else {})."""
    import numpy as np

    from crnn_gan.quality import as_steps
    from tfds_midi import codec

    steps = as_steps(songs)
    if steps.shape[2] != 1:
        return {}
    tones = steps[:, :, 0]
    pitch = codec.hz_to_fractional_pitch(tones[..., codec.FREQUENCY])  # NaN: hz <= 0
    delta = tones[:, 1:, codec.DELTA]
    current, previous = pitch[:, 1:], pitch[:, :-1]
    chord, onset = (delta == 0) & np.isfinite(current), (delta > 0) & np.isfinite(current)
    below = current < previous - 0.5  # False where either pitch is NaN
    return {"onset_pitch": float(current[onset].mean()),
            "chord_pitch": float(current[chord].mean()),
            "chord_tones_out_of_order": float(below[chord].mean())}


def canonical_songs(songs):
    """``[N, T, 1, 4]`` songs (or ``[N, T, 4]`` windows) with each one's tones in canonical
    order; None for more than one tone per step."""
    import numpy as np

    from crnn_gan.quality import as_steps
    from tfds_midi import codec

    steps = as_steps(songs)
    if steps.shape[2] != 1:
        return None
    return np.stack([codec.canonical_order(song[:, 0]) for song in steps])[:, :, None]


def score_set(generated_path: str, reference: str, disc: dict, disc_seed: int, threads: int
              ) -> tuple[dict[str, float | None], dict[str, float]]:
    """Every view's score of one set of raw songs (`load_songs`), by the classifier `disc`
    (`quality.DiscriminatorSpec`'s fields) seeded with `disc_seed`, and the set's
    `onset_and_chord_pitches`."""
    import tensorflow as tf

    from crnn_gan import quality

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    generated = load_songs(generated_path)
    real = load_songs(reference)
    spec = quality.DiscriminatorSpec(**disc)
    scores = {}
    for view, kwargs in views().items():
        pair = (real, generated)
        if view == "canonical":
            pair = (canonical_songs(real), canonical_songs(generated))
            if pair[1] is None:
                scores[view] = None
                continue
        scores[view] = quality.discriminative_score(*pair, seed=disc_seed, spec=spec,
                                                    **kwargs)["score"]
    return scores, onset_and_chord_pitches(generated)


def sets() -> tuple[dict[str, str], str, dict, int]:
    """``{row: raw songs' path}``, the real test windows they are scored against, and the
    classifier and seed that measured them (the same for every run, else an error)."""
    found, run_dirs = {}, []
    for name in FLAGS.names:
        for model in FLAGS.models:
            for seed, run_dir in protocol_runs.runs(FLAGS.work_dir, name, model):
                found[f"{name}/{model}/{seed}"] = protocol_runs.measured_songs(run_dir)
                run_dirs.append(run_dir)
    reference = protocol_runs.common_reference(FLAGS.work_dir, run_dirs)
    measurement = protocol_runs.common_measurement(run_dirs)
    disc, disc_seed = measurement["disc"], measurement["disc_seed"]
    if FLAGS.real_as_generated:
        matches = glob.glob(FLAGS.real_as_generated)
        if len(matches) != 1:
            raise protocol_runs.MissingRun(
                f"--real_as_generated={FLAGS.real_as_generated} matches {len(matches)} files, "
                f"not one")
        found["real/train/-"] = matches[0]
    return found, reference, disc, disc_seed


JOINT = ("onset_pitch", "chord_pitch", "chord_tones_out_of_order")


def table(results: dict) -> str:
    """Per set and as mean ± std over each entry's seeds: every view's score, then the
    pitches of onset and chord tones; the real test windows last (no score)."""
    from crnn_gan import quality

    def cell(value):
        if value is None:
            return "–"
        if isinstance(value, dict):
            return f"{value['mean']:.3f} ± {value['std']:.3f}"
        return f"{value:.3f}"

    columns = tuple(views()) + JOINT
    header = ["| set | seed | " + " | ".join(columns) + " |",
              "|" + " --- |" * (2 + len(columns))]
    rows, groups = [], {}
    for key, joint in results["joint"].items():
        name, model, seed = key.split("/")
        values = {**results["scores"].get(key, {}), **joint}
        rows.append(f"| {name} {model} | {seed} | "
                    + " | ".join(cell(values.get(c)) for c in columns) + " |")
        if name != "real":
            groups.setdefault(f"{name} {model}", []).append(values)
    means = []
    for group, members in groups.items():
        cells = [quality.over_seeds([m.get(c) for m in members]) for c in columns]
        means.append(f"| {group} | mean ± std ({len(members)}) | "
                     + " | ".join(cell(c) for c in cells) + " |")
    return "\n".join(header + rows + means)


def main(argv):
    del argv
    found_sets, status = protocol_runs.run_or_report("bench_disc_aspects.py", sets)
    if status:
        return status
    found, reference, disc, disc_seed = found_sets
    context = multiprocessing.get_context("spawn")  # TensorFlow in each, nothing forked
    with concurrent.futures.ProcessPoolExecutor(max(1, FLAGS.jobs), mp_context=context) as pool:
        futures = {key: pool.submit(score_set, path, reference, disc, disc_seed,
                                    FLAGS.threads) for key, path in found.items()}
        scores, joint = {}, {}
        for key, future in futures.items():
            scores[key], joint[key] = future.result()
            print(key, scores[key], flush=True)
    joint["real/test/-"] = onset_and_chord_pitches(load_songs(reference))
    results = {"work_dir": FLAGS.work_dir, "reference": reference, "sets": found,
               "disc": disc, "disc_seed": disc_seed, "scores": scores, "joint": joint}
    results["table"] = table(results)
    print(results["table"])
    if FLAGS.output:
        protocol_runs.write_json(FLAGS.output, results)
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
