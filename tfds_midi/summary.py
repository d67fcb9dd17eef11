"""A human-readable summary of a prepared crnn_gan_midi config."""

from __future__ import annotations

import tensorflow_datasets as tfds

from tfds_midi import codec


def describe(builder: tfds.core.DatasetBuilder, show_tones: int = 5) -> str:
    """Size of every split, composers, skipped files and the first tones of one song.

    Args:
        builder: a prepared `crnn_gan_midi` builder.
        show_tones: how many tones of the first training song to list.
    """
    info = builder.info
    meta = dict(info.metadata or {})
    lines = [
        f"{info.full_name} in {builder.data_dir}",
        f"  works: {meta.get('num_songs')}   tones: {meta.get('num_tones')}"
        f"   composers: {meta.get('num_composers')}   skipped files: {meta.get('num_skipped')}",
        "  splits: " + ", ".join(
            f"{name} {split.num_examples}" for name, split in sorted(info.splits.items())
        ),
    ]
    for skipped in meta.get("skipped", [])[:5]:
        lines.append(f"  skipped {skipped['source']}: {skipped['reason']}")
    example = next(iter(tfds.as_numpy(builder.as_dataset(split="train").take(1))))
    tones = example["tones"]
    lines.append(
        f"  first tones of {example['source'].decode()} ({example['composer'].decode()},"
        f" {len(tones)} tones):"
    )
    lines.append("    " + "  ".join(f"{name:>12}" for name in codec.COLUMN_NAMES) + "   pitch")
    pitches = codec.hz_to_pitch(tones[:show_tones, codec.FREQUENCY])
    for tone, pitch in zip(tones[:show_tones], pitches):
        lines.append("    " + "  ".join(f"{v:12.2f}" for v in tone) + f"   {int(pitch):5d}")
    return "\n".join(lines)
