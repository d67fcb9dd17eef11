"""Decoding MIDI files to tones in worker processes, streamed in input order.

The crnn_gan_midi builder decodes its files here while TFDS writes the examples, so that a
corpus larger than memory prepares: `decode_stream` keeps at most ``max_in_flight`` files
read, decoding or decoded but not yet consumed, and yields each file's result in input order.

Decoding (`tfds_midi.codec.midi_to_tones`) is pure Python and holds the GIL, so it runs in
worker processes where cores are idle (`default_workers`), else in the caller's thread, a
batch of files at a time. Files go to the workers in turn (file k to worker k mod W); each worker
answers in the order it was asked, so the caller reads file k's answer from worker k mod W.
A writer thread per worker reads the files' bytes (the caller's `read`, e.g. any
``tf.io.gfile`` path) and queues them on the worker's stdin ahead of time, so that a worker
never waits for the caller's thread (which is busy writing examples) between two files.

Workers are separate Python processes running this file as a script, not a multiprocessing
pool, for the reason `music21_corpus` gives: the caller usually has TensorFlow loaded, whose
threads make fork unsafe, and a spawn pool would re-import the caller's main module
(train.py: TensorFlow again, in every worker). A worker imports only numpy, mido and the
codec (the `tfds_midi` package set up from its folder: no TensorFlow).

A worker that dies (killed for memory, a crash) costs only the file it was decoding, which
is reported as a `MidiFormatError`; a fresh worker takes over the files queued behind it.
An exception other than `MidiFormatError` while reading or decoding is a bug and raises
`RuntimeError` in the caller, as it would have in-process.
"""

from __future__ import annotations

import collections
import os
import pickle
import queue
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator

import numpy as np

MIN_FILES_PER_WORKER = 16
"""`default_workers` starts one worker per this many files at most (small corpora decode
in-process: starting a worker costs about 0.2 s of CPU)."""

IN_FLIGHT_PER_WORKER = 3
"""Default ``max_in_flight`` per worker: one decoding, two queued or answered."""

IN_PROCESS_BATCH = 16
"""Default ``max_in_flight`` in-process: files decoded ahead, as a batch, before yielding."""

WORKER_DIED = "the decoder process died"
"""The start of the reason given for a file whose worker process died."""

Job = tuple[str, Callable[[], bytes]]


def default_workers(num_files: int, cores: int | None = None,
                    load: float | None = None) -> int:
    """The builder's default number of worker processes (0 = decode in-process).

    One per idle core: cores this process may run on, less the 1-minute load average
    (which counts the caller itself, hence + 1), at most one per `MIN_FILES_PER_WORKER`
    files; 0 when that leaves fewer than 2. Measured on 2 cores that other work kept busy
    (load 6.5): 2 workers decoded 300 files 1.2-1.5x slower than in-process (0.7-0.9 s more
    CPU for starting them and for the pipes, and no idle core to win back the time); on
    idle cores they decode side by side.

    Args:
        num_files: files to decode.
        cores: default ``len(os.sched_getaffinity(0))`` (or ``os.cpu_count()``).
        load: default ``os.getloadavg()[0]`` (0 where unavailable).
    """
    if cores is None:
        cores = (len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                 else os.cpu_count() or 1)
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            load = 0.0
    idle = min(cores, int(cores - load + 1))
    workers = min(idle, num_files // MIN_FILES_PER_WORKER)
    return workers if workers >= 2 else 0


def decode_stream(
    jobs: Iterable[Job], workers: int, max_in_flight: int | None = None
) -> Iterator[np.ndarray | Exception]:
    """Decodes MIDI files, yielding one result per job in job order.

    Args:
        jobs: ``(name, read)`` per file: `name` for error messages, `read()` returns the
            file's bytes or raises `codec.MidiFormatError` (a file that cannot be read).
            Consumed lazily, at most `max_in_flight` jobs ahead of the consumer.
        workers: worker processes; 0 or 1 decodes in the calling thread, a batch of
            `max_in_flight` files at a time.
        max_in_flight: files read but not yet yielded, at most; default
            ``IN_FLIGHT_PER_WORKER * workers``, or `IN_PROCESS_BATCH` in-process.

    Yields:
        Per job, in order: float32 tones ``[n, 4]`` (`codec.midi_to_tones`), or the
        `codec.MidiFormatError` saying why the file was skipped.

    Raises:
        RuntimeError: reading or decoding raised something other than `MidiFormatError`.
    """
    from tfds_midi import codec

    if workers <= 1:
        # In batches: alternating one file's decoding with TFDS's writing of it measured
        # 10-20 % slower on 300 files (each disturbs the other's caches).
        batch_size, batch = max(1, max_in_flight or IN_PROCESS_BATCH), []
        for name, read in jobs:
            try:
                batch.append(codec.midi_to_tones(read(), name=name))
            except codec.MidiFormatError as error:
                batch.append(error)
            if len(batch) >= batch_size:
                yield from batch
                batch = []
        yield from batch
        return
    max_in_flight = max(1, max_in_flight or IN_FLIGHT_PER_WORKER * workers)
    pool = [_Worker() for _ in range(workers)]
    try:
        pending: collections.deque[_Worker] = collections.deque()
        for k, job in enumerate(jobs):
            if len(pending) >= max_in_flight:
                yield pending.popleft().answer()
            worker = pool[k % workers]
            worker.submit(job)
            pending.append(worker)
        while pending:
            yield pending.popleft().answer()
    finally:
        for worker in pool:
            worker.close()


class _Worker:
    """One decoder process and its writer thread; answers come in the order of `submit`."""

    def __init__(self) -> None:
        self._outstanding: collections.deque[Job] = collections.deque()  # not yet answered
        self._start()

    def _start(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )
        self._requests: queue.SimpleQueue = queue.SimpleQueue()
        self._writer = threading.Thread(
            target=_feed, args=(self._process.stdin, self._requests),
            name="midi-decode-writer", daemon=True)
        self._writer.start()

    def submit(self, job: Job) -> None:
        self._outstanding.append(job)
        self._requests.put(job)

    def answer(self) -> np.ndarray | Exception:
        """The result of the oldest job not yet answered (blocks until it is decoded)."""
        from tfds_midi import codec

        name, _ = self._outstanding.popleft()
        try:
            result = pickle.load(self._process.stdout)
        except (EOFError, OSError, pickle.UnpicklingError):
            # Died on this job: a fresh worker takes the jobs queued behind it.
            self._stop()
            status = self._process.returncode
            self._start()
            for job in self._outstanding:
                self._requests.put(job)
            return codec.MidiFormatError(name, f"{WORKER_DIED} (exit status {status})")
        if isinstance(result, str):  # the traceback of a bug
            raise RuntimeError(f"decoding {name} failed in a worker process:\n{result}")
        return result

    def close(self) -> None:
        self._stop()

    def _stop(self) -> None:
        """Ends the writer and the process: end of input, and no reader for its answers."""
        self._requests.put(None)
        self._process.stdout.close()  # a worker still answering gets a broken pipe and ends
        self._writer.join(timeout=30)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _feed(pipe, requests: queue.SimpleQueue) -> None:
    """A worker's writer thread: reads each job's bytes and sends them, until None.

    A read error goes to the worker as the request, which sends it back in its turn.
    """
    from tfds_midi import codec

    try:
        while (job := requests.get()) is not None:
            name, read = job
            try:
                payload = pickle.dumps((name, read()), protocol=pickle.HIGHEST_PROTOCOL)
            except codec.MidiFormatError as error:
                payload = pickle.dumps((name, error))
            except Exception:  # noqa: BLE001 - a bug: reported to the caller in order.
                payload = pickle.dumps((name, traceback.format_exc()))
            pipe.write(payload)
            pipe.flush()
    except OSError:
        pass  # the worker has died; `_Worker.answer` finds out and restarts it
    finally:
        try:
            pipe.close()
        except OSError:
            pass


def _worker_main() -> None:
    """Answers pickled ``(name, bytes)`` requests from stdin, in order, until it closes:
    pickled tones, a `MidiFormatError`, or (any other exception) its traceback as a string,
    on stdout. A request holding an error instead of bytes is answered with that error."""
    import types

    here = os.path.dirname(os.path.abspath(__file__))
    sys.path = [p for p in sys.path if os.path.abspath(p or ".") != here]
    # The codec from the package's folder, whether or not the repository is on sys.path.
    package = types.ModuleType("tfds_midi")
    package.__path__ = [here]
    sys.modules["tfds_midi"] = package
    from tfds_midi import codec

    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the answer pipe
    while True:
        try:
            name, data = pickle.load(requests)
        except EOFError:
            return
        if isinstance(data, (codec.MidiFormatError, str)):
            result = data
        else:
            try:
                result = codec.midi_to_tones(data, name=name)
            except codec.MidiFormatError as error:
                result = error
            except Exception:  # noqa: BLE001 - reported to the caller, which raises it.
                result = traceback.format_exc()
        try:
            pickle.dump(result, answers, protocol=pickle.HIGHEST_PROTOCOL)
            answers.flush()
        except BrokenPipeError:  # the caller stopped reading: it is closing the pool
            return


if __name__ == "__main__":
    _worker_main()
