r"""Data path speed, side by side in one run.

    python benchmarks/bench_data.py [--skip_prepare]

1. Parsing: tones/s of `tfds_midi.codec.midi_to_tones` against `pretty_midi` on the same
   files: the default corpus's rendered MIDI (from a prepared data/ folder, if any) and 50
   synthetic multi-track files. Goal: at least as fast as pretty_midi.
2. Preparing `crnn_gan_midi/default` from scratch (empty render cache, fresh data dir), and
   again with the render cache warm.
3. The six statistics over the whole prepared corpus, against the preparation time (the
   evaluation issue's goal: the statistics of a corpus take less time than preparing it).
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_data_codec import (  # noqa: E402
    bench_codec,
    format_result,
    write_synthetic_midi,
)


def _prepare(data_dir: str) -> tuple[float, object]:
    import tensorflow_datasets as tfds

    import tfds_midi.crnn_gan_midi  # noqa: F401  (registers crnn_gan_midi)

    builder = tfds.builder("crnn_gan_midi/default", data_dir=data_dir)
    start = time.perf_counter()
    builder.download_and_prepare()
    return time.perf_counter() - start, builder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default=str(ROOT / "data"),
                        help="A prepared data dir whose rendered MIDI files are parsed.")
    parser.add_argument("--skip_prepare", action="store_true",
                        help="Skip the (2-3 minute) from-scratch preparation.")
    args = parser.parse_args()

    print("== 1. Parsing MIDI: midi_to_tones vs pretty_midi (same files, best of 3)")
    rendered = sorted(pathlib.Path(args.data_dir).glob("downloads/music21_midi/*/*.mid"))
    with tempfile.TemporaryDirectory() as synthetic_dir:
        corpora = {"synthetic (50 files x 2000 notes)": write_synthetic_midi(synthetic_dir)}
        if rendered:
            corpora[f"default corpus ({len(rendered)} rendered files)"] = rendered
        else:
            print(f"   (no rendered corpus under {args.data_dir}: run `make demo` first)")
        for name, paths in corpora.items():
            print(f"-- {name}")
            print(format_result(bench_codec(paths)))

    if args.skip_prepare:
        return
    print("\n== 2. Preparing crnn_gan_midi/default")
    with tempfile.TemporaryDirectory() as data_dir:
        cold, builder = _prepare(data_dir)
        shutil.rmtree(pathlib.Path(data_dir, "crnn_gan_midi"))
        warm, builder = _prepare(data_dir)
        meta = builder.info.metadata
        print(f"   from scratch: {cold:7.1f} s   render cache warm: {warm:7.1f} s   "
              f"({meta['num_songs']} works, {meta['num_tones']} tones, "
              f"{meta['num_composers']} composers)")

        print("\n== 3. The six statistics over the whole corpus")
        import tensorflow_datasets as tfds

        from crnn_gan import metrics

        songs = [ex["tones"] for split in builder.info.splits
                 for ex in tfds.as_numpy(builder.as_dataset(split=split))]
        start = time.perf_counter()
        for tones in songs:
            metrics.all_statistics(tones)
        seconds = time.perf_counter() - start
        tones = sum(len(s) for s in songs)
        print(f"   {len(songs)} songs, {tones} tones in {seconds:.2f} s "
              f"({tones / seconds:,.0f} tones/s); preparation from scratch / statistics: "
              f"{cold / seconds:,.0f}x")


if __name__ == "__main__":
    main()
