"""Quality against diversity: the GAN and its baseline sampled at several temperatures.

The quality protocol (`bench_quality.py`) compares the GAN with its maximum-likelihood
baseline at one sampling temperature (the recipe's). Caccia et al. ("Language GANs
falling short", ICLR 2020, arXiv 1811.02549) showed for text that a GAN's edge in sample
quality can be a lower entropy that the baseline reaches by its temperature alone, and
that the fair comparison sweeps the temperature of both. This script does that on the
protocol's own runs, without retraining: for every run ``WORK/NAME/{gan,baseline}_seedS/run``
it loads the final generator, sets ``sampling_temperature`` to each value of
``--temperatures``, draws ``--num_songs`` songs of ``--steps`` steps from the protocol's
noise and measures the raw outputs against the protocol's real test windows
(``crnn_gan.quality.evaluate_set``, with the classifier and seeds that measured the runs:
their ``quality_measure.json``).

Printed per temperature and model (mean ± std over seeds): the statistics distance (the
mean over the six statistics of |generated - real| / real std; 0 = real), scale
consistency, repetitions, unique tones, the pitch-class diversity ratio (generated / real:
below 1 = less varied than real music) and the discriminative score; and per seed, on how
many of the six statistics the GAN is closer to real than the baseline at the same
temperature. The generator runs in Python here (the protocol measures through the
SavedModel); the script reports the largest difference between the two at the run's own
temperature, so the path is checked, not assumed.

Usage::

    python benchmarks/bench_temperature.py --work_dir=runs/q --name=small \\
        --temperatures=0.6,0.7,0.8,0.9,1.0 --output=docs/temperature.json
    # choosing a temperature: against validation windows, not the test split's
    python benchmarks/bench_quality.py --work_dir=runs/q --reference_only --split=validation
    python benchmarks/bench_temperature.py --work_dir=runs/q --name=small --reference=PATH
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import protocol_runs  # noqa: E402
from crnn_gan import cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("work_dir", None, "bench_quality.py's --work_dir.", required=True)
flags.DEFINE_string("name", "small", "bench_quality.py's --name (the recipe's runs).")
flags.DEFINE_list("temperatures", ["0.6", "0.7", "0.8", "0.9", "1.0"],
                  "Sampling temperatures to measure.")
flags.DEFINE_list("models", ["gan", "baseline"], "Models of the protocol to sweep.")
flags.DEFINE_integer("num_songs", 64, "Songs per run and temperature (the protocol's 64).")
flags.DEFINE_integer("steps", 100, "Steps per song (the protocol's 100).")
flags.DEFINE_integer("noise_seed", None, "Seed of the noise (default: the one that measured "
                     "the runs).")
flags.DEFINE_integer("disc_seed", None, "Seed of the discriminative score (default: the one "
                     "that measured the runs).")
flags.DEFINE_integer("threads", 1, "TensorFlow intra- and inter-op threads (0 = default).")
flags.DEFINE_string("reference", None, "Real windows (.npz) to measure against instead of "
                    "the protocol's test windows, e.g. validation windows from "
                    "bench_quality.py --reference_only --split=validation (to choose a "
                    "temperature on a split that the reported numbers do not use).")
flags.DEFINE_string("output", None, "Also write the results as JSON here.")


class SweepError(protocol_runs.MissingRun):
    """Bad flags: reported in one line, exit status 2 (as a missing run)."""


def measure_run(run_dir: str, temperatures: list[float], windows, real_stats, measurement: dict
                ) -> tuple[list[dict], dict]:
    """One run's generator (loaded once) at each temperature, from the same noise: a row
    per temperature, and the real windows' summary. `measurement`: the noise seed, the
    classifier and its seed (`protocol_runs.common_measurement`'s fields)."""
    import numpy as np

    from crnn_gan import metrics, quality, training
    from crnn_gan.callbacks import statistics_distance

    generator, config, scaler = training.load_generator(run_dir)
    noise = np.random.default_rng(measurement["noise_seed"]).uniform(
        size=(FLAGS.num_songs, FLAGS.steps, generator.noise_dim)).astype(np.float32)
    # The SavedModel's songs: the same noise at the run's own temperature.
    saved = protocol_runs.generated_path(run_dir)
    rows, real = [], None
    for temperature in temperatures:
        start = time.perf_counter()
        generator.sampling_temperature = temperature
        tones = scaler.denormalize(np.asarray(generator(noise)))
        result = quality.evaluate_set(
            tones, windows, seed=measurement["disc_seed"],
            spec=quality.DiscriminatorSpec(**measurement["disc"]), real_stats=real_stats)
        generated, real = result["statistics"]["generated"], result["statistics"]["real"]
        means = {s: generated[s]["mean"] for s in metrics.STATISTICS}
        row = {"temperature": temperature,
               "distance": statistics_distance(
                   means, {s: (real[s]["mean"], real[s]["std"]) for s in metrics.STATISTICS}),
               "statistics": means,
               "pitch_class_diversity": result["diversity"]["pitch_class"]["ratio"],
               "discriminative": result["discriminative"]["score"],
               "valid_fraction": result["validity"]["valid_fraction"]}
        if abs(temperature - config.sampling_temperature) < 1e-9 and os.path.exists(saved):
            exported = np.load(saved).reshape(tones.shape)
            row["max_abs_diff_vs_saved_model"] = float(np.abs(exported - tones).max())
        rows.append(row)
        print(f"{run_dir} T={temperature:g}: distance {row['distance']:.3f}, "
              f"disc. {row['discriminative']:.3f} ({time.perf_counter() - start:.0f} s)",
              flush=True)
    return rows, real


def sweep() -> dict:
    import numpy as np
    import tensorflow as tf

    from crnn_gan import metrics, quality

    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    try:
        temperatures = [float(t) for t in FLAGS.temperatures]
    except ValueError as error:
        raise SweepError(f"--temperatures must be numbers: {error}") from None
    if not temperatures or min(temperatures) <= 0:
        raise SweepError(f"--temperatures must be > 0, got {FLAGS.temperatures}")
    runs = {model: protocol_runs.runs(FLAGS.work_dir, FLAGS.name, model)
            for model in FLAGS.models}
    run_dirs = [path for model_runs in runs.values() for _, path in model_runs]
    if FLAGS.reference:
        reference = FLAGS.reference
        if not os.path.exists(reference):
            raise SweepError(f"--reference={reference}: no such file")
    else:
        reference = protocol_runs.common_reference(FLAGS.work_dir, run_dirs)
    # The protocol's noise and classifier (the runs' own), unless a flag picks other seeds.
    measurement = protocol_runs.common_measurement(run_dirs)
    for field in ("noise_seed", "disc_seed"):
        if getattr(FLAGS, field) is not None:
            measurement[field] = getattr(FLAGS, field)
    windows = np.load(reference)["windows"]
    # As evaluate_set computes them (each step's tones packed in one row), once for all.
    real_stats = quality.song_statistics(quality.as_steps(windows))
    results = {"work_dir": FLAGS.work_dir, "name": FLAGS.name, "reference": reference,
               **measurement, "songs": FLAGS.num_songs, "steps": FLAGS.steps, "runs": {}}
    real = None
    for model, model_runs in runs.items():
        for seed, run_dir in model_runs:
            results["runs"][f"{model}_seed{seed}"], real = measure_run(
                run_dir, temperatures, windows, real_stats, measurement)
    results["real"] = {s: real[s]["mean"] for s in metrics.STATISTICS}
    results["real_std"] = {s: real[s]["std"] for s in metrics.STATISTICS}
    return results


def table(results: dict) -> str:
    from crnn_gan import metrics, quality

    real = results["real"]
    by_model: dict[str, dict[int, list[dict]]] = {}
    for key, rows in results["runs"].items():
        model, seed = key.rsplit("_seed", 1)
        by_model.setdefault(model, {})[int(seed)] = rows
    temperatures = [row["temperature"] for row in next(iter(results["runs"].values()))]
    lines = ["| T | model | stat. distance | scale cons. | repetitions | unique | "
             "PC diversity | disc. score |", "|" + " --- |" * 8]
    for i, temperature in enumerate(temperatures):
        for model, seeds in by_model.items():
            rows = [seeds[s][i] for s in sorted(seeds)]
            cells = [quality.over_seeds([r["distance"] for r in rows])]
            cells += [quality.over_seeds([r["statistics"][s] for r in rows])
                      for s in ("scale_consistency", "repetitions", "unique_tones")]
            cells += [quality.over_seeds([r["pitch_class_diversity"] for r in rows]),
                      quality.over_seeds([r["discriminative"] for r in rows])]
            lines.append(f"| {temperature:g} | {model} | "
                         + " | ".join(f"{c['mean']:.3g} ± {c['std']:.2g}" for c in cells) + " |")
    lines.append(f"| | real | 0 | {real['scale_consistency']:.3g} | "
                 f"{real['repetitions']:.3g} | {real['unique_tones']:.3g} | 1 | |")
    if {"gan", "baseline"} <= set(by_model):
        lines += ["", "GAN closer to real than the baseline at the same temperature (same "
                  "seed), of the 6 statistics:", ""]
        for i, temperature in enumerate(temperatures):
            counts = []
            for seed in sorted(by_model["gan"]):
                if seed not in by_model["baseline"]:
                    continue
                g = by_model["gan"][seed][i]["statistics"]
                b = by_model["baseline"][seed][i]["statistics"]
                counts.append(quality.closer_count(
                    [abs(g[s] - real[s]) for s in metrics.STATISTICS],
                    [abs(b[s] - real[s]) for s in metrics.STATISTICS]))
            lines.append(f"- T={temperature:g}: " + " / ".join(map(str, counts)))
    diffs = [row["max_abs_diff_vs_saved_model"] for rows in results["runs"].values()
             for row in rows if "max_abs_diff_vs_saved_model" in row]
    if diffs:
        lines += ["", f"Python generator against the SavedModel at the recipe's temperature "
                  f"(same noise): largest difference {max(diffs):.3g} over {len(diffs)} runs."]
    return "\n".join(lines)


def main(argv):
    del argv
    results, status = protocol_runs.run_or_report("bench_temperature.py", sweep)
    if status:
        return status
    if FLAGS.output:  # the sweep's numbers first, in case the table fails
        protocol_runs.write_json(FLAGS.output, results)
    text = table(results)
    print(text)
    if FLAGS.output:
        results["table"] = text
        protocol_runs.write_json(FLAGS.output, results)
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
