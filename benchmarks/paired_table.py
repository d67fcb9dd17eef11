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


def main(argv):
    del argv
    _, status = protocol_runs.run_or_report("paired_table.py", lambda: protocol_runs.print_table(
        protocol_runs.paired_table(protocol_runs.paired(
            protocol_runs.read_results(FLAGS.quality), FLAGS.names,
            FLAGS.baseline_names or FLAGS.names)), FLAGS.markdown))
    return status


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
