r"""Is the GAN-against-baseline verdict the test split's own shift? The same verdict against
real windows of other splits.

The protocol (`bench_quality.py`) counts on how many of the six statistics the GAN's mean
is closer than its baseline's to the mean of 500 **test** windows (36 songs). The test
split differs from the training split in some statistics (repetitions 13.8 against 19.1),
so a GAN that matched its training music well could lose to a baseline that happens to sit
near the test means. This script takes the protocol's saved raw songs
(``WORK/NAME/{gan,baseline}_seedS/quality_generated.npy``: nothing is generated or trained
again) and counts the same verdict (`crnn_gan.quality.protocol.closer`) against each set of
real windows given: the test windows the runs were measured against, and, for example, the
training split's (``bench_quality.py --reference_only --split=train --real_windows=2000``).
If the counts stay, the miss is not the split.

Usage::

    python benchmarks/bench_closer_by_split.py --names=small,small_seeds678_preset \
        --references=train=TRAIN.npz,validation=VALIDATION.npz \
        [--baseline_model=baseline] [--output=FILE.json]

(TRAIN.npz: ``runs/quality/reference/crnn_gan_midi_default_train_k1_steps100_n2000_HASH.npz``,
as ``bench_quality.py --reference_only`` prints it.)

Printed: per name and seed, the count and which statistics (``x`` closer, ``.`` not, in
`crnn_gan.metrics.STATISTICS` order) against every reference (``test``: the windows each
run was measured against); the means of both sets; the counts' total per reference.
"""

from __future__ import annotations

import functools
import os
import pathlib
import sys

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import protocol_runs  # noqa: E402
from crnn_gan import cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("work_dir", "runs/quality", "bench_quality.py's --work_dir.")
flags.DEFINE_list("names", ["small"], "Recipes (WORK/NAME), each with GAN and baseline runs.")
flags.DEFINE_string("baseline_model", "baseline", "The runs compared with the GAN's.")
flags.DEFINE_list("references", [], "More real windows, as LABEL=FILE.npz (bench_quality.py's "
                  "--reference_only output); 'test' (the measured windows) always comes first.")
flags.DEFINE_string("output", None, "Also write the results here (JSON).")


@functools.lru_cache(maxsize=None)
def _real_statistics(path: str) -> list[dict]:
    """`song_statistics` of the real windows of a file (read once per file)."""
    import numpy as np

    from crnn_gan import quality

    with np.load(path) as data:
        return quality.song_statistics(quality.as_steps(data["windows"]))


def _references() -> dict[str, str]:
    references = {}
    for item in FLAGS.references:
        label, sep, path = item.partition("=")
        if not sep or not label or label == "test":
            raise protocol_runs.MissingRun(
                f"--references={item}: give LABEL=FILE.npz, LABEL not 'test'")
        if not os.path.isfile(path):
            raise protocol_runs.MissingRun(f"--references={item}: {path} does not exist")
        references[label] = path
    return references


def compare() -> dict:
    import numpy as np

    from crnn_gan import metrics, quality

    extra = _references()
    pairs, results, totals = [], {}, {}
    for name in FLAGS.names:
        gans = dict(protocol_runs.runs(FLAGS.work_dir, name, "gan"))
        baselines = dict(protocol_runs.runs(FLAGS.work_dir, name, FLAGS.baseline_model))
        pairs += [(name, seed, gans[seed], baselines[seed]) for seed in sorted(gans)
                  if seed in baselines]
    if not pairs:
        raise protocol_runs.MissingRun(f"no seed of {FLAGS.names} has both a GAN and a "
                                       f"{FLAGS.baseline_model} run")
    for name, seed, gan_run, baseline_run in pairs:
        songs = {model: quality.as_steps(np.load(protocol_runs.measured_songs(run)))
                 for model, run in (("gan", gan_run), ("baseline", baseline_run))}
        generated = {model: quality.song_statistics(s) for model, s in songs.items()}
        references = {"test": protocol_runs.measured_reference(FLAGS.work_dir, gan_run),
                      **extra}
        row = {"generated": None, "against": {}}
        for label, path in references.items():
            # As evaluate_set measures each set (its real repetitions normalised to the
            # set's own length), then the protocol's verdict on the two sets' gaps.
            summaries = {model: quality.statistics_summary(
                generated[model], _real_statistics(path), songs[model].shape[1])
                for model in songs}
            wins = quality.closer(*(quality.statistic_gaps({"statistics": summaries[model]})
                                    for model in ("gan", "baseline")))
            if row["generated"] is None:  # the same whatever the real windows
                row["generated"] = {model: {s: summaries[model]["generated"][s]["mean"]
                                            for s in metrics.STATISTICS} for model in songs}
            real = summaries["gan"]["real"]
            row["against"][label] = {
                "reference": os.path.basename(path), "closer": int(wins.sum()),
                "per_statistic": dict(zip(metrics.STATISTICS, wins.tolist())),
                "real": {s: real[s]["mean"] for s in metrics.STATISTICS}}
            totals.setdefault(label, []).append(int(wins.sum()))
        results[f"{name}/{seed}"] = row
    return {"names": FLAGS.names, "baseline_model": FLAGS.baseline_model,
            "statistics": list(metrics.STATISTICS), "pairs": results,
            "summary": {label: {"counts": counts,
                                "at_least_target": sum(c >= quality.CLOSER_TARGET
                                                       for c in counts)}
                        for label, counts in totals.items()}}


def _table(result: dict) -> str:
    labels = list(result["summary"])
    lines = ["| run | seed | " + " | ".join(f"closer vs {label}" for label in labels) + " |",
             "| --- | --- | " + " | ".join("---" for _ in labels) + " |"]
    for key, row in result["pairs"].items():
        name, seed = key.rsplit("/", 1)
        cells = []
        for label in labels:
            against = row["against"][label]
            marks = "".join("x" if won else "." for won in against["per_statistic"].values())
            cells.append(f"{against['closer']} `{marks}`")
        lines.append(f"| {name} | {seed} | " + " | ".join(cells) + " |")
    lines.append("| **>= target** | | " + " | ".join(
        f"{result['summary'][label]['at_least_target']} of "
        f"{len(result['summary'][label]['counts'])}" for label in labels) + " |")
    return "\n".join(lines)


def main(argv):
    del argv
    result, status = protocol_runs.run_or_report("bench_closer_by_split.py", compare)
    if status:
        return status
    print("statistics: " + ", ".join(result["statistics"]))
    print(_table(result))
    if FLAGS.output:
        protocol_runs.write_json(FLAGS.output, result)
    return 0


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
