r"""How much of a GAN-against-baseline verdict is the quality protocol's own noise.

The protocol (`bench_quality.py`) measures each generator once: 64 songs from one noise
seed, one post-hoc classifier seed. Its two comparative targets (the GAN closer to real than
the baseline on >= 5 of the 6 statistics; the GAN's discriminative score below the
baseline's) compare two such measurements. This script holds one pair of generators fixed
and measures them exactly as the protocol does (songs through the SavedModel, raw
outputs, against the same real windows, `crnn_gan.quality.evaluate_set`'s classifier),
under several generation-noise seeds and classifier seeds, so that the spread of each
verdict is measured rather than guessed. Nothing is trained.

Usage::

    python benchmarks/bench_protocol_noise.py --gan=pretrained/gan \
        --baseline=runs/q/small/baseline_seed2/export \
        --reference=runs/q/reference/crnn_gan_midi_default_test_k1_steps100_n500_HASH.npz \
        [--noise_seeds=0,1,2,3,4] [--disc_seeds=0,1,2] [--num_songs=64] \
        [--output=docs/protocol_noise.json]

``--gan`` and ``--baseline`` are export folders (``python -m export``'s output: a
``saved_model/`` inside). Printed and written: per generator, the discriminative score
for every (noise seed, classifier seed) and its spread over each; per noise seed, the six
statistics' means and on how many of them the GAN is closer to real (both generators
drawn from the same noise seed, as in the protocol); and how often each verdict holds.
"""

from __future__ import annotations

import itertools
import os
import pathlib
import sys
import time

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from crnn_gan import cli, metrics, quality  # noqa: E402
from crnn_gan.quality import protocol  # noqa: E402
from benchmarks import protocol_runs  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("gan", None, "The GAN's export folder (holds saved_model/).")
flags.DEFINE_string("baseline", None, "The baseline's export folder (holds saved_model/).")
flags.DEFINE_string("reference", None, "Real windows (.npz of bench_quality.py).")
flags.DEFINE_list("noise_seeds", ["0", "1", "2", "3", "4"], "Generation-noise seeds.")
flags.DEFINE_list("disc_seeds", ["0", "1", "2"], "Classifier seeds.")
flags.DEFINE_integer("num_songs", 64, "Generated songs per measurement.", lower_bound=8)
flags.DEFINE_integer("steps", 100, "Steps per song; must equal the real windows'.",
                     lower_bound=2)
flags.DEFINE_integer("disc_epochs", quality.DiscriminatorSpec.epochs, "Classifier epochs.")
flags.DEFINE_integer("disc_folds", quality.DiscriminatorSpec.folds, "Classifier folds.")
flags.DEFINE_string("output", None, "Also write the results here (JSON).")


class UsageError(Exception):
    """A flag names something that cannot be used; the message names it."""


def _seeds(values: list[str], name: str) -> list[int]:
    try:
        seeds = [int(v) for v in values]
    except ValueError:
        raise UsageError(f"--{name}={','.join(values)}: not a list of integers") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--{name}: give at least one seed, each once")
    return seeds


def _signature(export_dir: str | None, name: str):
    import tensorflow as tf

    if not export_dir:
        raise UsageError(f"--{name} is required")
    path = os.path.join(export_dir, "saved_model")
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise UsageError(f"--{name}={export_dir}: no saved_model/saved_model.pb in it")
    return tf.saved_model.load(path).signatures["serving_default"]


def measure(gan_dir: str, baseline_dir: str, reference_path: str, noise_seeds: list[int],
            disc_seeds: list[int], num_songs: int, steps: int,
            spec: quality.DiscriminatorSpec) -> dict:
    """Both generators under every noise seed and classifier seed; see the module doc."""
    import numpy as np

    if not reference_path or not os.path.isfile(reference_path):
        raise UsageError(f"--reference={reference_path}: no such file")
    windows = np.load(reference_path)["windows"]
    if windows.shape[1] != steps:
        raise UsageError(f"--steps={steps}: the real windows in {reference_path} have "
                         f"{windows.shape[1]} steps")
    models = {"gan": _signature(gan_dir, "gan"), "baseline": _signature(baseline_dir,
                                                                         "baseline")}
    results = {}
    for model, signature in models.items():
        per_noise = {}
        for noise_seed in noise_seeds:
            tones = quality.protocol_songs(signature, num_songs=num_songs, steps=steps,
                                           noise_seed=noise_seed)
            if windows.shape[-1] != 4 * tones.shape[2]:
                raise UsageError(f"--{model} generates {tones.shape[2]} tone(s) per step, "
                                 f"the real windows hold {windows.shape[-1] // 4}")
            start = time.perf_counter()
            result = quality.evaluate_set(tones, windows, discriminator=False)
            scores = {str(s): quality.discriminative_score(
                windows, tones, seed=s, spec=spec)["score"] for s in disc_seeds}
            real = {n: result["statistics"]["real"][n]["mean"] for n in metrics.STATISTICS}
            per_noise[str(noise_seed)] = {
                "statistics": {n: result["statistics"]["generated"][n]["mean"]
                               for n in metrics.STATISTICS},
                "gaps": quality.statistic_gaps(result).tolist(),
                "discriminative": scores,
                "seconds": time.perf_counter() - start}
            print(f"{model} noise {noise_seed}: discriminative "
                  + ", ".join(f"{v:.3f}" for v in scores.values())
                  + f" ({per_noise[str(noise_seed)]['seconds']:.0f} s)", flush=True)
        results[model] = per_noise
    return {"runs": results, "real": real, "summary": summarise(results)}


def summarise(results: dict) -> dict:
    """The spread of each discriminative score and how often each verdict holds."""
    import numpy as np

    summary = {}
    for model, per_noise in results.items():
        grid = np.array([list(r["discriminative"].values()) for r in per_noise.values()])
        summary[model] = {
            "discriminative": quality.over_seeds(grid.ravel().tolist()),
            # Spread over classifier seeds at one noise seed, averaged over noise seeds;
            # spread over noise seeds at one classifier seed, averaged over those.
            "std_over_classifier_seeds": float(np.mean(grid.std(axis=1, ddof=1)))
            if grid.shape[1] > 1 else 0.0,
            "std_over_noise_seeds": float(np.mean(grid.std(axis=0, ddof=1)))
            if grid.shape[0] > 1 else 0.0}
    gan, base = results["gan"], results["baseline"]
    pairs = []
    for noise in gan:  # both from the same noise seed, as in the protocol
        closer = protocol.closer_count(gan[noise]["gaps"], base[noise]["gaps"])
        for disc in gan[noise]["discriminative"]:
            pairs.append({"noise_seed": int(noise), "disc_seed": int(disc), "closer": closer,
                          "disc_minus_baseline": gan[noise]["discriminative"][disc]
                          - base[noise]["discriminative"][disc]})
    closers = [protocol.closer_count(gan[n]["gaps"], base[n]["gaps"]) for n in gan]
    crossed = [protocol.closer_count(gan[a]["gaps"], base[b]["gaps"])
               for a, b in itertools.product(gan, base)]
    diffs = np.array([p["disc_minus_baseline"] for p in pairs])
    summary["pair"] = {
        "closer_per_noise_seed": dict(zip(gan, closers)),
        "closer_at_least_5": float(np.mean(np.array(closers) >= protocol.CLOSER_TARGET)),
        "closer_at_least_5_any_noise_pair": float(
            np.mean(np.array(crossed) >= protocol.CLOSER_TARGET)),
        "disc_minus_baseline": quality.over_seeds(diffs),
        "disc_below_baseline": float(np.mean(diffs < 0)),
        "pairs": pairs}
    return summary


def report(result: dict) -> str:
    s = result["summary"]
    lines = ["| generator | discriminative score (mean ± std) | std over classifier seeds "
             "| std over noise seeds |", "| --- | --- | --- | --- |"]
    for model in ("gan", "baseline"):
        m = s[model]
        lines.append(f"| {model} | {m['discriminative']['mean']:.3f} ± "
                     f"{m['discriminative']['std']:.3f} | {m['std_over_classifier_seeds']:.3f} "
                     f"| {m['std_over_noise_seeds']:.3f} |")
    pair = s["pair"]
    lines += ["", "| noise seed | GAN closer on (of 6) | "
              + " | ".join(f"{n} GAN/baseline" for n in metrics.STATISTICS) + " |",
              "|" + " --- |" * (2 + len(metrics.STATISTICS))]
    for noise, closer in pair["closer_per_noise_seed"].items():
        g = result["runs"]["gan"][noise]["statistics"]
        b = result["runs"]["baseline"][noise]["statistics"]
        lines.append(f"| {noise} | {closer} | " + " | ".join(
            f"{g[n]:.3g}/{b[n]:.3g}" for n in metrics.STATISTICS) + " |")
    lines.append("| real | | " + " | ".join(f"{result['real'][n]:.3g}"
                                             for n in metrics.STATISTICS) + " |")
    lines += ["", f"Closer on >= 5: {pair['closer_at_least_5']:.0%} of noise seeds "
              f"({pair['closer_at_least_5_any_noise_pair']:.0%} of all GAN/baseline noise "
              f"pairs). Discriminative score minus the baseline's: "
              f"{pair['disc_minus_baseline']['mean']:+.3f} ± "
              f"{pair['disc_minus_baseline']['std']:.3f}, below 0 in "
              f"{pair['disc_below_baseline']:.0%} of {len(pair['pairs'])} (noise, classifier) "
              f"seeds."]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    try:
        spec = quality.DiscriminatorSpec(epochs=FLAGS.disc_epochs, folds=FLAGS.disc_folds)
        result = measure(FLAGS.gan, FLAGS.baseline, FLAGS.reference,
                         _seeds(FLAGS.noise_seeds, "noise_seeds"),
                         _seeds(FLAGS.disc_seeds, "disc_seeds"), FLAGS.num_songs,
                         FLAGS.steps, spec)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    result["protocol"] = {"gan": FLAGS.gan, "baseline": FLAGS.baseline,
                          "reference": os.path.basename(FLAGS.reference),
                          "num_songs": FLAGS.num_songs, "steps": FLAGS.steps,
                          "disc_epochs": FLAGS.disc_epochs, "disc_folds": FLAGS.disc_folds}
    text = report(result)
    print(text)
    if FLAGS.output:
        protocol_runs.write_json(FLAGS.output, result)
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
