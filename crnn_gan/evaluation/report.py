"""The evaluation's three outputs, each built from the one in-memory `Evaluation`.

* `to_json`: the report dict written as evaluation.json (every source, every epoch, the
  files written, the warnings);
* `csv_rows` / `to_csv`: evaluation.csv in long format, one row per (source, epoch,
  statistic) with the columns `CSV_FIELDS`;
* `format_table`: the printed table of the final statistics, mean ± std.

Statistics are in their `crnn_gan.metrics.UNITS`; real repetitions are reported raw and
normalised to the generated length (``repetitions * l_g / l_r`` song by song).
"""

from __future__ import annotations

import csv
import dataclasses
import io

import numpy as np

from crnn_gan import metrics
from crnn_gan.evaluation.songs import Evaluation, Run, SongSet

CSV_FIELDS = ("group", "label", "epoch", "count", "statistic", "mean", "std")
REPETITION_NORMALISATION = (
    "real repetitions * l_g / l_r per song or window; l_r = its number of tones, "
    "l_g = generated_length (mean number of tones of the generated songs)")


# --------------------------------------------------------------------------------------
# JSON.
# --------------------------------------------------------------------------------------

def _skipped_json(skipped) -> dict:
    return {"skipped": len(skipped), "skipped_files": [dataclasses.asdict(s) for s in skipped]}


def _top_scales(statistics, top=3) -> dict[str, int]:
    names, counts = np.unique([s["scale"] for s in statistics], return_counts=True)
    order = np.argsort(-counts, kind="stable")[:top]
    return {str(names[i]): int(counts[i]) for i in order}


def song_set_json(song_set: SongSet) -> dict:
    """Count, mean length, summary, the 3 most frequent scales and the skipped files."""
    return {"label": song_set.label, "count": len(song_set.statistics),
            "mean_length": song_set.mean_length, "summary": song_set.summary(),
            "scales": _top_scales(song_set.statistics), **_skipped_json(song_set.skipped)}


def run_json(run: Run) -> dict:
    """The run's description, its curve epoch by epoch, statistics.csv and skipped files."""
    epochs, means, stds = run.curve()
    return {
        "label": run.label, "model_dir": run.model_dir, "model": run.info.get("model"),
        "dataset": run.info.get("dataset"), "seed": run.info.get("seed"),
        "config": run.config,
        "curve_source": "samples" if run.epochs else "statistics.csv",
        "epochs": [
            {"epoch": e, "num_samples": len(run.epochs[e].statistics) if run.epochs else None,
             "mean_length": run.epochs[e].mean_length if run.epochs else None,
             **{n: {"mean": means[n][i], "std": stds[n][i]} for n in metrics.STATISTICS}}
            for i, e in enumerate(epochs)],
        "training_log": run.training_log,
        **_skipped_json(run.skipped),
    }


def to_json(evaluation: Evaluation) -> dict:
    """The report (evaluation.json's content; ``files`` and ``warnings`` as they are now)."""
    e = evaluation
    real = None
    if e.real is not None:
        real = {"source": e.real.source}
        for key, song_set in (("songs", e.real.songs), ("windows", e.real.windows)):
            real[key] = {**song_set_json(song_set), "repetitions_normalised":
                         song_set.normalised_repetitions(e.generated_length)}
    report = {
        "compat": e.compat, "repetition_length": e.repetition_length,
        "statistics": list(metrics.STATISTICS), "units": dict(metrics.UNITS),
        "window": e.window, "window_from": e.window_from,
        "generated_length": e.generated_length,
        "repetition_normalisation": REPETITION_NORMALISATION,
        "real": real, "runs": [run_json(run) for run in e.runs],
        "generated": [song_set_json(g) for g in e.generated],
        "skipped": e.skipped, "files": e.files,
    }
    if e.wav_error:
        report["wav_error"] = e.wav_error
    report["warnings"] = e.warnings
    return report


def json_default(value):
    """`json.dumps`'s ``default``: numpy scalars as Python numbers."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value)}")


# --------------------------------------------------------------------------------------
# CSV.
# --------------------------------------------------------------------------------------

def csv_rows(evaluation: Evaluation) -> list[dict]:
    """Long format: one row per (source, epoch, statistic); groups ``real_songs``,
    ``real_windows``, ``run`` (the curve), ``run_statistics_csv`` (train.py's log, no std)
    and ``generated``."""
    rows = []

    def add(group, label, epoch, count, summary):
        for name in (*metrics.STATISTICS, "num_tones"):
            if name in summary:
                rows.append({"group": group, "label": label, "epoch": epoch, "count": count,
                             "statistic": name, "mean": summary[name]["mean"],
                             "std": summary[name]["std"]})

    e = evaluation
    if e.real is not None:
        for key, song_set in (("real_songs", e.real.songs), ("real_windows", e.real.windows)):
            add(key, song_set.label, "", len(song_set.statistics), song_set.summary())
            rows.append({"group": key, "label": song_set.label, "epoch": "",
                         "count": len(song_set.statistics),
                         "statistic": "repetitions_normalised",
                         **song_set.normalised_repetitions(e.generated_length)})
    for run in e.runs:
        epochs, means, stds = run.curve()
        count = None
        for i, epoch in enumerate(epochs):
            if run.epochs:
                count = len(run.epochs[epoch].statistics)
            add("run", run.label, epoch, count if count is not None else "",
                {n: {"mean": means[n][i], "std": stds[n][i]} for n in metrics.STATISTICS})
        for row in run.training_log:
            add("run_statistics_csv", run.label, row["epoch"], "",
                {n: {"mean": row[n], "std": ""} for n in metrics.STATISTICS if n in row})
    for g in e.generated:
        add("generated", g.label, "", len(g.statistics), g.summary())
    return rows


def to_csv(rows) -> str:
    """`csv_rows` as CSV text with the header `CSV_FIELDS`."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# The printed table.
# --------------------------------------------------------------------------------------

_SHORT = {"polyphony": "polyphony", "scale_consistency": "scale cons.",
          "repetitions": "repetitions", "tone_span": "tone span", "unique_tones": "unique",
          "intensity_span": "intens. span"}


def _table_lines(evaluation: Evaluation) -> dict[str, dict[str, tuple[float, float]]]:
    """label -> statistic -> (mean, std): real music (repetitions normalised), the final
    epoch of each run, other generated music."""
    lines: dict[str, dict[str, tuple[float, float]]] = {}

    def add(label, values):
        cells = {n: values[n] for n in metrics.STATISTICS if n in values}
        if cells:
            lines.setdefault(label, {}).update(cells)

    e = evaluation
    if e.real is not None:
        for song_set in (e.real.songs, e.real.windows):
            values = {n: (v["mean"], v["std"]) for n, v in song_set.summary().items()
                      if n != "repetitions"}
            normalised = song_set.normalised_repetitions(e.generated_length)
            add(song_set.label, {**values, "repetitions": (normalised["mean"],
                                                           normalised["std"])})
    for run in e.runs:
        epochs, means, stds = run.curve()
        if epochs:
            add(f"{run.label} (epoch {epochs[-1]})",
                {n: (means[n][-1], stds[n][-1]) for n in metrics.STATISTICS})
    for g in e.generated:
        add(g.label, {n: (v["mean"], v["std"]) for n, v in g.summary().items()})
    return lines


def format_table(evaluation: Evaluation) -> str:
    """Mean ± std of each statistic: real music, the final epoch of each run, other
    generated music (the real repetitions are the normalised ones); "" when empty."""
    lines = {label: {n: f"{mean:.3g} ± {std:.2g}" for n, (mean, std) in values.items()}
             for label, values in _table_lines(evaluation).items()}
    if not lines:
        return ""
    width = max(len(label) for label in lines)
    cols = [max(len(_SHORT[n]), *(len(v.get(n, "")) for v in lines.values()))
            for n in metrics.STATISTICS]
    header = " | ".join([" " * width] + [_SHORT[n].rjust(c)
                                         for n, c in zip(metrics.STATISTICS, cols)])
    out = [header, "-" * len(header)]
    for label, values in lines.items():
        out.append(" | ".join([label.ljust(width)] + [values.get(n, "").rjust(c)
                                                      for n, c in zip(metrics.STATISTICS,
                                                                      cols)]))
    return "\n".join(out)
