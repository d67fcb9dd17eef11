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
from seed to seed. The baselines come from `--baseline_names`, else from each entry of
`--names` (its own baseline runs, or for a GAN-only entry the entries its ``baselines_from``
names: `protocol_runs.baseline_entries`). Below the table: each seed's count
(`quality.closer_count`) and the discriminative score against the baseline's.
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
flags.DEFINE_list("baseline_names", None, "Entries holding the baselines (default: those of "
                  "each entry of --names, its own or its baselines_from).")
flags.DEFINE_string("markdown", None, "Also write the table here.")


def main(argv):
    del argv
    def work():
        results = protocol_runs.read_results(FLAGS.quality, FLAGS.names)
        protocol_runs.print_table(protocol_runs.paired_table(protocol_runs.paired(
            results, FLAGS.names, FLAGS.baseline_names or _baselines_of(results))),
            FLAGS.markdown)

    _, status = protocol_runs.run_or_report("paired_table.py", work)
    return status


def _baselines_of(results: dict) -> list[str]:
    """The baseline entries of every entry of --names, in order, each once."""
    found = []
    for name in FLAGS.names:
        others = protocol_runs.baseline_entries(results, name)
        if others is None:
            raise protocol_runs.TableError(
                f"--names: {name} has no baseline runs and names no baselines_from: "
                "give --baseline_names")
        found += [other for other in others if other not in found]
    return found


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
