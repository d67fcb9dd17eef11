r"""The README's ablation table from `benchmarks/bench_quality.py`'s results.

    .venv/bin/python benchmarks/ablation_table.py [--quality=docs/quality.json] \
        [--names=small,small_no_pitch_classes,...] [--markdown=docs/ablation.md]

One row per recipe name and model (GAN, baseline, GAN-3): mean ± std over its seeds of the
targets' measures (valid tones, scale consistency, tone span, unique tones, polyphony,
discriminative score, pitch-class diversity gen/real), the distance to real music in one
number (`distance_to_real`: per seed the mean over the six statistics of |generated -
real| / real std, against the entry's own real windows), the number of seeds, how many of
the recipe's targets were met in every seed, and for the GAN the one target that no recipe
meets in every seed, seed by seed: on how many of the six statistics it is closer to real
than the baseline of its seed (>= 5 needed), and in how many seeds its discriminative score
is below the baseline's (`protocol_runs.versus_baseline`; a GAN-only entry is compared
with the entries its ``baselines_from`` names, "–" where it names none). Real windows last.
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
flags.DEFINE_list("names", None, "Recipes, in order (default: all in the file).")
flags.DEFINE_string("markdown", None, "Also write the table here.")

COLUMNS = [("valid_fraction", "valid %", 100.0, ".1f"),
           ("scale_consistency", "scale cons.", 1.0, ".2f"),
           ("tone_span", "tone span", 1.0, ".1f"),
           ("unique_tones", "unique", 1.0, ".1f"),
           ("polyphony", "polyphony", 1.0, ".2f"),
           ("repetitions", "repetitions", 1.0, ".1f"),
           ("discriminative_score", "disc. score", 1.0, ".2f"),
           ("diversity_pitch_class", "diversity PC (gen/real)", 1.0, ".2f")]
LABELS = {"gan": "GAN", "baseline": "baseline", "gan3": "GAN-3"}
#: The six statistics of the protocol (`crnn_gan.quality`), for `distance_to_real`.
STATISTICS = ("polyphony", "scale_consistency", "repetitions", "tone_span", "unique_tones",
              "intensity_span")


def distance_to_real(over: dict, real: dict | None) -> dict | None:
    """Mean ± std over seeds of each seed's mean over `STATISTICS` of |value - real mean| /
    real std (0: every statistic at real music's mean; real windows themselves differ from
    it by about 0.8 on average). `over`: a model's ``over_seeds``; `real`: the real windows'
    ``statistics`` (None, or a statistic or seed missing: None)."""
    if not real or any(s not in over or s not in real for s in STATISTICS):
        return None
    per_statistic = [[abs(value - real[s]["mean"]) / real[s]["std"]
                      for value in over[s]["values"]] for s in STATISTICS]
    if len({len(values) for values in per_statistic}) != 1 or not per_statistic[0]:
        return None
    per_seed = [sum(column) / len(column) for column in zip(*per_statistic)]
    mean = sum(per_seed) / len(per_seed)
    std = (sum((x - mean) ** 2 for x in per_seed) / (len(per_seed) - 1)) ** 0.5 if len(
        per_seed) > 1 else 0.0
    return {"mean": mean, "std": std, "values": per_seed}


def cell(entry, scale, fmt) -> str:
    if not entry or entry.get("mean") is None:
        return "–"
    mean, std = entry["mean"] * scale, (entry.get("std") or 0.0) * scale
    return f"{format(mean, fmt)} ± {format(std, fmt)}"


def table(results: dict, names: list[str]) -> str:
    head = ["recipe", "what it changes", "model", "seeds"] + [c[1] for c in COLUMNS] + [
        "distance to real (mean \\|z\\|)", "closer than the baseline, per seed (disc. below)",
        "targets met"]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    real = None
    for name in names:
        entry = results[name]
        # "changes": an entry's own words where its recipe's flags do not say it (a
        # re-measurement, other seeds); else the flags.
        changes = entry.get("changes") or f"`{entry['recipe'] or '(the preset)'}`"
        for model, over in entry["over_seeds"].items():
            seeds = len(entry["runs"][model])
            real_windows = entry["real"].get("k3" if model == "gan3" else "k1") or {}
            distance = distance_to_real(over, real_windows.get("statistics"))
            rows.append("| " + " | ".join(
                [f"`{name}`", changes, LABELS.get(model, model), str(seeds)]
                + [cell(over.get(key), scale, fmt) for key, _, scale, fmt in COLUMNS]
                + [cell(distance, 1.0, ".2f")]
                + [protocol_runs.versus_baseline(results, name) if model == "gan" else "–"]
                + [f"{entry['targets_met']} of {entry['targets_total']}"]) + " |")
        real = real or entry["real"].get("k1")
    if real:
        stats = real["statistics"]
        cells = []
        for key, _, scale, fmt in COLUMNS:
            cells.append(cell(stats.get(key), scale, fmt) if key in stats else
                         ("1" if key.startswith("diversity") else "–"))
        # Real music's own distance: 64 train-split windows measured as if generated.
        calibration = real.get("calibration", {}).get("statistics", {}).get("generated")
        distance = distance_to_real(
            {s: {"values": [calibration[s]["mean"]]} for s in STATISTICS if s in calibration},
            stats) if calibration else None
        rows.append("| real | 100-tone windows of the test split (distance: 64 train-split "
                    "windows as if generated) | | | " + " | ".join(cells)
                    + f" | {format(distance['mean'], '.2f') if distance else '–'} | | |")
    return "\n".join(rows) + "\n"


def main(argv):
    del argv
    def work():
        results = protocol_runs.read_results(FLAGS.quality, FLAGS.names or ())
        protocol_runs.print_table(table(results, FLAGS.names or list(results)), FLAGS.markdown)

    _, status = protocol_runs.run_or_report("ablation_table.py", work)
    return status


if __name__ == "__main__":
    app.run(main, flags_parser=cli.parse_flags)
