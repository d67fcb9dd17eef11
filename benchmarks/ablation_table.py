r"""The README's ablation table from `benchmarks/bench_quality.py`'s results.

    .venv/bin/python benchmarks/ablation_table.py [--quality=docs/quality.json] \
        [--names=small,small_no_pitch_classes,...] [--markdown=docs/ablation.md]

One row per recipe name and model (GAN, baseline, GAN-3): mean ± std over its seeds of the
targets' measures (valid tones, scale consistency, tone span, unique tones, polyphony,
discriminative score, pitch-class diversity gen/real), the number of seeds, and how many of
the recipe's targets were met in every seed. Real windows last.
"""

from __future__ import annotations

import json
import pathlib
import sys

from absl import app, flags

ROOT = pathlib.Path(__file__).resolve().parents[1]

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


def cell(entry, scale, fmt) -> str:
    if not entry or entry.get("mean") is None:
        return "–"
    mean, std = entry["mean"] * scale, (entry.get("std") or 0.0) * scale
    return f"{format(mean, fmt)} ± {format(std, fmt)}"


def table(results: dict, names: list[str]) -> str:
    head = ["recipe", "what it changes", "model", "seeds"] + [c[1] for c in COLUMNS] + [
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
            rows.append("| " + " | ".join(
                [f"`{name}`", changes, LABELS.get(model, model), str(seeds)]
                + [cell(over.get(key), scale, fmt) for key, _, scale, fmt in COLUMNS]
                + [f"{entry['targets_met']} of {entry['targets_total']}"]) + " |")
        real = real or entry["real"].get("k1")
    if real:
        stats = real["statistics"]
        cells = []
        for key, _, scale, fmt in COLUMNS:
            cells.append(cell(stats.get(key), scale, fmt) if key in stats else
                         ("1" if key.startswith("diversity") else "–"))
        rows.append("| real | 100-tone windows of the test split | | | " + " | ".join(cells)
                    + " | |")
    return "\n".join(rows) + "\n"


def main(argv):
    del argv
    try:
        with open(FLAGS.quality) as f:
            results = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        print(f"error: --quality={FLAGS.quality}: cannot read it ({error})", file=sys.stderr)
        return 2
    names = FLAGS.names or list(results)
    missing = [n for n in names if n not in results]
    if missing:
        print(f"error: --names: {missing} not in {FLAGS.quality} (it holds {sorted(results)})",
              file=sys.stderr)
        return 2
    text = table(results, names)
    print(text)
    if FLAGS.markdown:
        with open(FLAGS.markdown, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    app.run(main)
