"""Figures of the evaluation: the paper's Figure 3 and piano rolls (matplotlib, no pyplot).

Figures are built on ``matplotlib.figure.Figure`` directly, so no GUI backend or global
pyplot state is involved; `save` writes PNG bytes to any ``tf.io.gfile`` path.
"""

from __future__ import annotations

import dataclasses
import io
import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.collections import PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from crnn_gan import metrics
from tfds_midi import codec

TITLES = {
    "polyphony": "Polyphony",
    "scale_consistency": "Scale consistency",
    "repetitions": "Repetitions (3-tone patterns)",
    "tone_span": "Tone span",
    "unique_tones": "Unique tones",
    "intensity_span": "Intensity span",
}

# Colours by label prefix, as in the paper's legend order; others cycle.
_COLOURS = {"GAN": "tab:blue", "baseline": "tab:orange", "GAN-3": "tab:green"}
_CYCLE = ("tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")
_MARKERS = {"GAN": "o", "baseline": "s", "GAN-3": "^"}


@dataclasses.dataclass
class Curve:
    """One run: x = epochs, ``values[statistic]`` = the mean over its samples per epoch."""

    label: str
    epochs: Sequence[int]
    values: Mapping[str, Sequence[float]]
    pretrain_epochs: int | None = None


def _style(label: str, index: int) -> tuple[str, str]:
    base = label.split(" (")[0]
    return _COLOURS.get(base, _CYCLE[index % len(_CYCLE)]), _MARKERS.get(base, "D")


def figure3(curves: Sequence[Curve], real: Mapping[str, tuple[float, float]] | None = None,
            references: Sequence[tuple[str, Mapping[str, float]]] = (),
            units: Mapping[str, str] = metrics.UNITS, title: str | None = None,
            real_label: str = "real music (mean ± std)", repetition_length: int = 3,
            repetitions_note: str | None = None) -> Figure:
    """The layout of the paper's Figure 3: one panel per statistic, x = epoch.

    Args:
        curves: one line per run.
        real: ``statistic -> (mean, std)`` of real music, drawn as a grey band with its mean.
        references: other generated music without epochs (``--samples``, a SavedModel),
            drawn as dashed horizontal lines.
        units: y-axis label of each statistic.
        title: figure title.
        real_label: legend entry of the band.
        repetition_length: pattern length, for the repetitions panel's title.
        repetitions_note: small text in the repetitions panel (how real counts were
            normalised).
    """
    fig = Figure(figsize=(12, 10), layout="constrained")
    axes = fig.subplots(3, 2, sharex=True).ravel()
    all_epochs = [e for c in curves for e in c.epochs]
    pretrain = {c.pretrain_epochs for c in curves if c.pretrain_epochs}
    # A dotted line after the last pretraining epoch when every run pretrained as long.
    pretrain_end = pretrain.pop() + 0.5 if len(pretrain) == 1 else None
    # (Markers only when there are few points, so long runs stay clean lines.)
    markers = len(set(all_epochs)) <= 40
    handles = {}
    for ax, name in zip(axes, metrics.STATISTICS):
        fraction = name in ("polyphony", "scale_consistency")
        if real is not None and name in real:
            mean, std = real[name]
            # Every statistic is >= 0 and fractions are <= 1: clip the band to what exists.
            band = ax.axhspan(max(mean - std, 0.0), min(mean + std, 1.0) if fraction
                              else mean + std, color="0.6", alpha=0.3, lw=0)
            line = ax.axhline(mean, color="0.25", lw=1.5, ls="-")
            handles.setdefault(real_label, (band, line))
        for i, (label, values) in enumerate(references):
            if name in values:
                h = ax.axhline(values[name], color=_CYCLE[(i + 3) % len(_CYCLE)], lw=1.5,
                               ls="--")
                handles.setdefault(label, h)
        for i, curve in enumerate(curves):
            colour, marker = _style(curve.label, i)
            (h,) = ax.plot(curve.epochs, curve.values[name], color=colour, lw=2,
                           marker=marker if markers else None, ms=4, label=curve.label)
            handles.setdefault(curve.label, h)
        if pretrain_end is not None and all_epochs and pretrain_end < max(all_epochs):
            h = ax.axvline(pretrain_end, color="0.5", lw=1, ls=":")
            handles.setdefault("end of pretraining", h)
        title_text = TITLES.get(name, name)
        if name == "repetitions":
            title_text = f"Repetitions ({repetition_length}-tone patterns)"
        ylabel = units.get(name, "")
        if name == "repetitions" and repetitions_note:
            ylabel += f"\n({repetitions_note})"
        ax.set_title(title_text, fontsize=12, fontweight="bold")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        low, high = ax.get_ylim()
        if fraction:
            high = min(high, 1.05)
        elif high <= 0:
            high = 1.0
        # Down to just below 0 (so a line at 0 stays visible), except scale consistency,
        # whose values crowd near 1: there the automatic lower limit is kept.
        floor = -0.03 * high
        ax.set_ylim(max(low, floor) if name == "scale_consistency" else floor, high)
    for ax in axes[-2:]:
        ax.set_xlabel("epoch")
    if all_epochs:
        axes[0].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0].set_xlim(min(all_epochs) - 0.5, max(all_epochs) + 0.5)
    else:
        for ax in axes[-2:]:
            ax.set_xlabel("(no training runs given)")
            ax.set_xticks([])
    # Legend order: runs, other generated music, real music, markers.
    order = ([c.label for c in curves] + [label for label, _ in references]
             + [real_label, "end of pretraining"])
    labels = [label for label in dict.fromkeys(order) if label in handles]
    fig.legend([handles[label] for label in labels], labels, loc="outside lower center",
               ncol=len(labels) if len(labels) <= 4 else -(-len(labels) // 2), frameon=False,
               fontsize=11)
    if title:
        fig.suptitle(title, fontsize=14)
    return fig


def _draw_roll(ax, tones: np.ndarray, title: str) -> None:
    tones = np.asarray(tones, np.float64).reshape(-1, 4)
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_xlabel("beats")
    ax.set_ylabel("MIDI pitch")
    ax.grid(True, alpha=0.25)
    if len(tones) == 0:
        ax.text(0.5, 0.5, "no tones", ha="center", va="center", transform=ax.transAxes)
        return
    delta = np.where(np.isfinite(tones[:, 3]), np.maximum(tones[:, 3], 0), 0)
    start = np.cumsum(delta) / codec.TICKS_PER_QUARTER
    length = np.maximum(np.nan_to_num(tones[:, 0]), 0) / codec.TICKS_PER_QUARTER
    pitch = codec.hz_to_pitch(tones[:, 1], clip=False)  # unclipped: what the model played
    velocity = np.clip(np.nan_to_num(tones[:, 2]), 0, 127)
    rects = [Rectangle((s, p - 0.4), max(w, 0.05), 0.8)
             for s, w, p in zip(start, length, pitch)]
    collection = PatchCollection(rects, cmap="viridis", edgecolor="black", linewidth=0.3)
    collection.set_array(velocity)
    collection.set_clim(0, 127)
    ax.add_collection(collection)
    ax.set_xlim(0, max(float((start + length).max()), 1.0))
    ax.set_ylim(pitch.min() - 2, pitch.max() + 2)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def pianoroll_figure(generated: Sequence[tuple[str, np.ndarray]],
                     real: Sequence[tuple[str, np.ndarray]]) -> Figure:
    """Piano rolls: generated excerpts in the left column, real ones in the right.

    Args:
        generated: ``(title, tones [n, 4])`` in raw units.
        real: the same for real music.
    """
    rows = max(len(generated), len(real), 1)
    columns = [c for c in (("generated", generated), ("real music", real)) if c[1]]
    fig = Figure(figsize=(7 * len(columns), 2.6 * rows + 0.6), layout="constrained")
    axes = np.asarray(fig.subplots(rows, len(columns), squeeze=False))
    for j, (heading, excerpts) in enumerate(columns):
        for i in range(rows):
            ax = axes[i, j]
            if i < len(excerpts):
                _draw_roll(ax, excerpts[i][1], excerpts[i][0])
            else:
                ax.set_axis_off()
        axes[0, j].annotate(heading, (0.5, 1.18), xycoords="axes fraction", ha="center",
                            fontsize=13, fontweight="bold")
    mappable = next((c for ax in axes.ravel() for c in ax.collections), None)
    if mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), label="velocity", shrink=0.6)
    return fig


def save(fig: Figure, path: str, dpi: int = 110) -> None:
    """Writes the figure as PNG to any tf.io.gfile path (local paths need no TensorFlow)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    data = buffer.getvalue()
    if "://" in path:
        import tensorflow as tf

        from crnn_gan import gfile

        tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
        gfile.write_bytes(path, data)
        return
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


__all__ = ["Curve", "TITLES", "figure3", "pianoroll_figure", "save"]
