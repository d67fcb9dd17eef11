"""Throughput of crnn_gan.metrics.all_statistics on random songs.

Usage: ``python benchmarks/bench_metrics.py [--songs 1000] [--tones 1000] [--compat mogren2016]``

Songs are seeded random ``[tones, 4]`` arrays in raw units (384 ticks per quarter note):
pitches 36..96 as Hz, velocities 1..127 with about 5 % silent tones, and deltas drawn from
{0, 96, 192, 384} ticks so that about a quarter of the tones start chords. Prints the total
seconds of ``all_statistics`` over all songs and the tones per second.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crnn_gan.metrics import all_statistics  # noqa: E402


def random_songs(songs: int, tones: int, seed: int) -> list[np.ndarray]:
    """Random tone arrays, each float64 ``[tones, 4]``: (length ticks, Hz, velocity, delta)."""
    rng = np.random.default_rng(seed)
    result = []
    for _ in range(songs):
        pitch = rng.integers(36, 97, tones)
        velocity = rng.integers(1, 128, tones).astype(np.float64)
        velocity[rng.random(tones) < 0.05] = 0.0
        result.append(
            np.stack(
                [
                    rng.choice([96.0, 192.0, 384.0], tones),
                    440.0 * 2.0 ** ((pitch - 69) / 12.0),
                    velocity,
                    rng.choice([0.0, 96.0, 192.0, 384.0], tones),
                ],
                axis=1,
            )
        )
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=1000, help="number of songs")
    parser.add_argument("--tones", type=int, default=1000, help="tones per song")
    parser.add_argument("--seed", type=int, default=0, help="numpy random seed")
    parser.add_argument("--compat", choices=["mogren2016"], help="compat mode (default: none)")
    args = parser.parse_args(argv)
    if args.songs < 1 or args.tones < 0:
        parser.error("--songs must be >= 1 and --tones >= 0")

    songs = random_songs(args.songs, args.tones, args.seed)
    begin = time.perf_counter()
    for tones in songs:
        all_statistics(tones, compat=args.compat)
    seconds = time.perf_counter() - begin
    total = args.songs * args.tones
    print(f"all_statistics: {args.songs} songs x {args.tones} tones (compat={args.compat})")
    print(f"total: {seconds:.3f} s, {total / seconds:,.0f} tones/s")


if __name__ == "__main__":
    main()
