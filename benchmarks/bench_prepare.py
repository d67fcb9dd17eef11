r"""Preparing a mogren2016-sized corpus: the streaming builder against the eager one.

    python benchmarks/bench_prepare.py [--files=3000] [--tones=10000000] [--workers=N]
        [--corpus_dir=DIR] [--skip_before]

Writes a synthetic corpus the size of the paper's (by default 3,000 MIDI files of 128
composers, 10 M tones in all, 1,667-5,000 tones a file; every 100th file truncated, so that
files are skipped) with the codec's writer, then prepares `crnn_gan_midi/manual` from it
in three ways side by side, each in a fresh process with its own data dir:

- ``before``: the code of commit `BASELINE_COMMIT` (the eager builder and mido's track
  reader), taken from git with ``git archive``; left out without git or with --skip_before;
- ``eager``: the eager builder, kept here as `eager_split_generators` (every file decoded
  first, in-process, all songs kept in memory until TFDS writes them), with today's codec;
- ``streaming``: today's builder (files listed, then decoded while TFDS writes them, in
  `tfds_midi.decode_pool` worker processes).

Per way it prints the seconds of ``download_and_prepare``, the peak resident memory of the
preparing process and of its largest decoder worker (``getrusage`` maxrss), and a digest
of every example (source, split, composer, title, tones) and of the skipped-file metadata:
the ways must agree on it. The corpus is kept in --corpus_dir for the next run (a temporary
folder when not given).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]

BASELINE_COMMIT = "26e5920"
"""The last commit before the streaming builder and `tfds_midi.smf`."""

WAYS = ("before", "eager", "streaming")


def write_corpus(folder: pathlib.Path, files: int, tones: int, seed: int = 0) -> dict:
    """Writes the synthetic corpus (or reuses it when its stamp matches).

    Returns:
        The stamp: files, tones (the target total), seed, written tones, broken files.
    """
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from tfds_midi import codec

    stamp_path = folder / "corpus.json"
    wanted = {"files": files, "tones": tones, "seed": seed, "broken_every": 100}
    if stamp_path.exists():
        stamp = json.loads(stamp_path.read_text())
        if {k: stamp.get(k) for k in wanted} == wanted:
            return stamp
    rng = np.random.default_rng(seed)
    mean = tones / files
    written = broken = 0
    start = time.perf_counter()
    for k in range(files):
        n = int(rng.integers(int(mean / 2), int(mean * 3 / 2) + 1))
        song = np.stack([
            rng.integers(1, 769, n),  # length, ticks
            codec.pitch_to_hz(rng.integers(36, 97, n)),
            rng.integers(30, 111, n),  # velocity
            rng.choice([0, 0, 96, 192, 384], n),  # delta, ticks
        ], axis=1).astype(np.float32)
        data = codec.tones_to_midi_bytes(song)
        if k % 100 == 99:
            data, broken = data[:40], broken + 1  # a truncated track: skipped
        else:
            written += n
        path = folder / f"composer_{k % 128:03d}" / f"piece_{k:04d}.mid"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if (k + 1) % 250 == 0:
            print(f"   wrote {k + 1}/{files} files ({time.perf_counter() - start:.0f} s)",
                  flush=True)
    stamp = {**wanted, "written_tones": written, "broken_files": broken}
    stamp_path.write_text(json.dumps(stamp))
    return stamp


# --------------------------------------------------------------------------------------
# One way, in its own process.
# --------------------------------------------------------------------------------------


def eager_split_generators(self, dl_manager):
    """The builder's `_split_generators` before streaming, for the comparison only.

    Decodes every file of the manual folder first, one after the other in this process, and
    keeps every song's tones in memory until TFDS has written all splits.
    """
    from tfds_midi import codec
    from tfds_midi.crnn_gan_midi import crnn_gan_midi_dataset_builder as module

    songs, skipped = [], []
    for source, composer, title, path in self._folder_files(dl_manager.manual_dir):
        try:
            tones = codec.midi_to_tones(module._read_bytes(path), name=source)
        except codec.MidiFormatError as error:
            skipped.append((source, error.reason))
            continue
        songs.append((source, composer, title, tones))
    self.info.metadata.update({
        "num_songs": len(songs),
        "num_tones": int(sum(len(song[3]) for song in songs)),
        "num_composers": len({song[1] for song in songs}),
        "num_skipped": len(skipped),
        "skipped": [{"source": s, "reason": r} for s, r in skipped],
    })
    by_split = {split: [] for split, _ in module.SPLIT_PERCENTAGES}
    for song in songs:
        by_split[module.split_of(song[0])].append(song)

    def examples(items):
        for source, composer, title, tones in items:
            yield source, {"tones": tones, "composer": composer, "title": title,
                           "source": source}

    return {split: examples(items) for split, items in by_split.items() if items}


def _digest(builder) -> str:
    """sha256 over every example (in source order) and the skipped-file metadata."""
    import hashlib

    import tensorflow_datasets as tfds

    per_example = []
    for split in builder.info.splits:
        for ex in tfds.as_numpy(builder.as_dataset(split=split)):
            h = hashlib.sha256()
            for part in (ex["source"], split.encode(), ex["composer"], ex["title"]):
                h.update(part + b"\0")
            h.update(ex["tones"].tobytes())
            per_example.append(h.hexdigest())
    total = hashlib.sha256("".join(sorted(per_example)).encode())
    total.update(json.dumps(builder.info.metadata["skipped"]).encode())
    return total.hexdigest()[:16]


class WorkerPeakSampler:
    """Samples the peak resident memory (VmHWM, Linux) of this process's decoder workers.

    getrusage(RUSAGE_CHILDREN) cannot be used: a child's maxrss counts the parent's memory
    at the fork, before the worker's exec.
    """

    def __init__(self, interval_s: float = 0.1) -> None:
        import threading

        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float) -> None:
        me = str(os.getpid())
        while not self._stop.wait(interval_s):
            for pid in filter(str.isdigit, os.listdir("/proc")):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        if f.read().rsplit(")", 1)[1].split()[1] != me:
                            continue
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if b"decode_pool" not in f.read():
                            continue
                    with open(f"/proc/{pid}/status") as f:
                        for line in f:
                            if line.startswith("VmHWM:"):
                                self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                except (OSError, IndexError, ValueError):
                    continue  # gone meanwhile, or not Linux

    def stop(self) -> float:
        """Stops sampling; returns the peak in MiB (0 when no worker was seen)."""
        self._stop.set()
        self._thread.join()
        return self.peak_kib / 1024


def run_way(way: str, corpus: str, data_dir: str, workers: int | None) -> dict:
    """Prepares the corpus one way in this process; returns the measurements."""
    import resource

    import tensorflow_datasets as tfds

    import tfds_midi.crnn_gan_midi  # noqa: F401  (registers crnn_gan_midi)
    from tfds_midi.crnn_gan_midi import crnn_gan_midi_dataset_builder as module

    kwargs = {}
    if way == "eager":
        module.Builder._split_generators = eager_split_generators
    elif way == "streaming" and workers is not None:
        kwargs["decode_workers"] = workers
    builder = tfds.builder("crnn_gan_midi/manual", data_dir=data_dir, **kwargs)
    def cpu_seconds():
        return sum(u.ru_utime + u.ru_stime for u in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN)))  # children: the ended workers

    sampler = WorkerPeakSampler()
    cpu, start = cpu_seconds(), time.perf_counter()
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=corpus))
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    worker_peak_mib = sampler.stop()
    kib = 1 if sys.platform != "darwin" else 1 / 1024  # maxrss: KiB on Linux, bytes on macOS
    meta = builder.info.metadata
    return {
        "way": way,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 1024,
        "worker_peak_mib": worker_peak_mib,
        "songs": meta["num_songs"],
        "tones": meta["num_tones"],
        "skipped": meta["num_skipped"],
        "digest": _digest(builder),
        "code": os.path.dirname(os.path.dirname(tfds_midi.__file__)),
    }


def _baseline_tree(folder: pathlib.Path) -> pathlib.Path | None:
    """Extracts tfds_midi/ of `BASELINE_COMMIT` into `folder` (None without git)."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", BASELINE_COMMIT, "tfds_midi"],
        capture_output=True, check=False)
    if archive.returncode != 0:
        print(f"   (no git archive of {BASELINE_COMMIT}: {archive.stderr.decode().strip()})")
        return None
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _spawn(way: str, code_root: pathlib.Path, corpus: pathlib.Path,
           data_dir: pathlib.Path, workers: int | None) -> dict:
    command = [sys.executable, __file__, f"--_way={way}", f"--_code_root={code_root}",
               f"--corpus_dir={corpus}", f"--_data_dir={data_dir}"]
    if workers is not None:
        command.append(f"--workers={workers}")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{way} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if pathlib.Path(result["code"]) != code_root:
        raise SystemExit(f"{way} ran the code of {result['code']}, not of {code_root}")
    return result


def format_table(runs: dict[str, list[dict]], stamp: dict) -> str:
    """A Markdown table of the ways: median wall and CPU time over the repeats (each way's
    wall time also relative to streaming's), the largest peaks, the digest."""
    import statistics

    def median(way, key):
        return statistics.median(r[key] for r in runs[way])

    lines = [
        f"corpus: {stamp['files']} files, {stamp['written_tones']:,} tones in the "
        f"{stamp['files'] - stamp['broken_files']} that decode ({stamp['broken_files']} "
        f"truncated); median of {len(runs['streaming'])} run(s) per way",
        "",
        "| way | prepare, wall (s) | wall vs streaming | CPU, process + workers (s) "
        "| peak RSS, preparing process (MiB) | peak RSS, largest worker (MiB) | songs "
        "| tones | skipped | digest |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for way, results in runs.items():
        last = results[-1]
        worker = max(r["worker_peak_mib"] for r in results)
        lines.append(
            f"| {way} | {median(way, 'seconds'):.1f} "
            f"| {median(way, 'seconds') / median('streaming', 'seconds'):.2f}x "
            f"| {median(way, 'cpu_seconds'):.1f} "
            f"| {max(r['peak_mib'] for r in results):.0f} "
            f"| {f'{worker:.0f}' if worker else '-'} | {last['songs']} | {last['tones']:,} "
            f"| {last['skipped']} | {last['digest']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=3000, help="MIDI files (mogren2016: 3000)")
    parser.add_argument("--tones", type=int, default=10_000_000,
                        help="tones in all, about (mogren2016: about 10 M)")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoder processes of the streaming way (default: the builder's)")
    parser.add_argument("--corpus_dir", default=None, help="where the corpus is kept")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs per way, interleaved (the table gives medians)")
    parser.add_argument("--skip_before", action="store_true",
                        help=f"leave out the code of {BASELINE_COMMIT}")
    parser.add_argument("--_way", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--_code_root", help=argparse.SUPPRESS)
    parser.add_argument("--_data_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._way:
        sys.path.insert(0, args._code_root)
        print(json.dumps(run_way(args._way, args.corpus_dir, args._data_dir, args.workers)))
        return

    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        corpus = pathlib.Path(args.corpus_dir or scratch / "corpus")
        print(f"== corpus: {args.files} files, about {args.tones:,} tones in {corpus}")
        stamp = write_corpus(corpus, args.files, args.tones)
        roots = {"eager": ROOT, "streaming": ROOT}
        if not args.skip_before:
            baseline = _baseline_tree(scratch / "baseline")
            if baseline is not None:
                roots = {"before": baseline, **roots}
        runs = {way: [] for way in roots}
        for repeat in range(args.repeats):
            for way, code_root in roots.items():
                print(f"== preparing: {way} (run {repeat + 1} of {args.repeats})", flush=True)
                data_dir = scratch / f"data_{way}_{repeat}"
                result = _spawn(way, code_root, corpus, data_dir, args.workers)
                print(f"   {result['seconds']:.1f} s, {result['cpu_seconds']:.1f} CPU s, peak "
                      f"{result['peak_mib']:.0f} MiB", flush=True)
                runs[way].append(result)
        print()
        print(format_table(runs, stamp))
        if len({r["digest"] for results in runs.values() for r in results}) != 1:
            raise SystemExit("the ways disagree on the examples: see the digests")


if __name__ == "__main__":
    main()
