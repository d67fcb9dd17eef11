r"""Which statistics the GAN improves on its baseline, seed by seed, from
`benchmarks/bench_quality.py`'s results.

    .venv/bin/python benchmarks/paired_table.py \
        --names=small,small_seeds345_preset,small_seeds678_preset \
        [--baseline_names=...] [--quality=docs/quality.json] [--markdown=F]

The protocol's target "closer to real than the baseline on at least 5 of the 6 statistics"
counts statistics in one seed. This table turns it around: per statistic, over the seeds of
the entries `--names` (pooled; a seed may appear in one entry only), in how many seeds
the GAN's mean is closer to the real windows' than the baseline's of the same seed, and by
how much (`quality.paired_closeness`: ``(|baseline gap| - |gap|) / real std``, mean ± std
and its standard error over seeds). A statistic whose mean reduction is several standard
errors above 0 is one the game improves; one within a standard error of 0 is a coin flip
from seed to seed. The baselines come from the same entries, or from `--baseline_names`
(for GAN-only entries measured against another entry's baselines). Below the table: each
seed's count (`quality.closer_count`) and the discriminative score against the baseline's.
"""

from __future__ import annotations

import pathlib
import sys

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import protocol_runs  # noqa: E402
from crnn_gan import cli  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("quality", str(ROOT / "docs" / "quality.json"), "bench_quality results.")
flags.DEFINE_list("names", None, "Entries whose seeds are pooled.", required=True)
flags.DEFINE_list("baseline_names", None, "Entries holding the baselines (default: --names).")
flags.DEFINE_string("markdown", None, "Also write the table here.")


class TableError(protocol_runs.MissingRun):
    """Bad flags or results: one line, exit status 2."""


def seed_runs(results: dict, names: list[str], model: str, flag: str) -> dict[str, dict]:
    """``{seed: run}`` of `model` over the entries `names` (named by `flag`; each seed in one
    entry only)."""
    runs, where = {}, {}
    for name in names:
        if name not in results:
            raise TableError(f"{flag}: {name} is not in the results (they hold "
                             f"{sorted(results)})")
        for seed, run in results[name].get("runs", {}).get(model, {}).items():
            if seed in runs:
                raise TableError(f"seed {seed} of {model} is in both {where[seed]} and {name}")
            runs[seed], where[seed] = run, name
    return runs


def paired(results: dict, names: list[str], baseline_names: list[str]) -> dict:
    """The seeds both sides hold, `quality.paired_closeness` of the GAN against the
    baseline over them, and per seed the closer count and both discriminative scores."""
    from crnn_gan import quality

    runs = seed_runs(results, names, "gan", "--names")
    baselines = seed_runs(results, baseline_names, "baseline", "--baseline_names")
    seeds = sorted(set(runs) & set(baselines), key=int)
    if not seeds:
        raise TableError(f"no seed has both a GAN run in {names} and a baseline run in "
                         f"{baseline_names}")
    pairs = [(runs[s], baselines[s]) for s in seeds]
    try:
        per_statistic = quality.paired_closeness(pairs)
    except ValueError as error:
        raise TableError(str(error)) from None
    per_seed = {s: {"closer": quality.closer_count(quality.statistic_gaps(g),
                                                   quality.statistic_gaps(b)),
                    "discriminative": g["discriminative"]["score"],
                    "baseline_discriminative": b["discriminative"]["score"]}
                for s, (g, b) in zip(seeds, pairs)}
    return {"seeds": seeds, "per_statistic": per_statistic, "per_seed": per_seed}


def table(summary: dict) -> str:
    seeds = summary["seeds"]
    lines = [f"| statistic | GAN closer (of {len(seeds)} seeds) | ties | reduction of "
             "the gap to real, in real stds (mean ± std) | standard error |",
             "| --- | --- | --- | --- | --- |"]
    for name, row in summary["per_statistic"].items():
        reduction = row["reduction"]
        lines.append(f"| {name} | {row['closer']} | {row['ties']} | "
                     f"{reduction['mean']:+.3f} ± {reduction['std']:.3f} | "
                     f"{reduction['sem']:.3f} |")
    per_seed = summary["per_seed"]
    below = sum(p["discriminative"] < p["baseline_discriminative"] for p in per_seed.values())
    lines += ["", "Closer on, per seed (" + ", ".join(seeds) + "): "
              + ", ".join(str(per_seed[s]["closer"]) for s in seeds)
              + f"; discriminative score below the baseline's in {below} of {len(seeds)}."]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    _, status = protocol_runs.run_or_report("paired_table.py", lambda: protocol_runs.print_table(
        table(paired(protocol_runs.read_results(FLAGS.quality), FLAGS.names,
                     FLAGS.baseline_names or FLAGS.names)), FLAGS.markdown))
    return status


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
