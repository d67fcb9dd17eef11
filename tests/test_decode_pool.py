"""`tfds_midi.decode_pool`: order, a bounded number of files in flight, dead workers, bugs."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from tests import midi_fixtures
from tfds_midi import codec, decode_pool


def _files(count: int, broken=()):
    rng = np.random.default_rng(0)
    files = []
    for k in range(count):
        if k in broken:
            files.append((f"f{k}.mid", None, b"MThd\x00"))
        else:
            tones = midi_fixtures.random_song(rng, 30 + k)
            files.append((f"f{k}.mid", tones, codec.tones_to_midi_bytes(tones)))
    return files


@pytest.mark.parametrize("workers", [0, 2])
def test_results_come_in_input_order_with_at_most_max_in_flight_read(workers):
    files = _files(24, broken={3, 17})
    lock, reads = threading.Lock(), [0]

    def reader(data):
        def read():
            with lock:
                reads[0] += 1
            return data
        return read

    jobs = ((name, reader(data)) for name, _, data in files)
    consumed = 0
    for (name, tones, _), result in zip(files, decode_pool.decode_stream(jobs, workers, 3)):
        consumed += 1
        assert reads[0] <= consumed + 3
        if tones is None:
            assert isinstance(result, codec.MidiFormatError) and result.source == name
            assert "truncated header" in result.reason
        else:
            np.testing.assert_array_equal(result, tones)
    assert consumed == len(files)


@pytest.mark.parametrize("max_in_flight", [1, 6])
def test_a_dead_worker_costs_only_its_file(monkeypatch, max_in_flight):
    files = _files(9)
    start = decode_pool._Worker._start
    starts = []

    def start_first_one_killed(worker):
        start(worker)
        starts.append(worker)
        if len(starts) == 1:  # the first worker is killed before it answers
            worker._process.kill()
            worker._process.wait()

    monkeypatch.setattr(decode_pool._Worker, "_start", start_first_one_killed)
    jobs = [(name, lambda data=data: data) for name, _, data in files]
    results = list(decode_pool.decode_stream(jobs, workers=2, max_in_flight=max_in_flight))
    dead = [k for k, r in enumerate(results) if isinstance(r, codec.MidiFormatError)]
    assert dead == [0] and results[0].reason.startswith(decode_pool.WORKER_DIED)
    assert len(starts) == 3  # two, and one fresh one for the files queued behind file 0
    for (_, tones, _), result in zip(files[1:], results[1:]):
        np.testing.assert_array_equal(result, tones)


def test_a_read_error_is_a_skip_and_a_bug_in_a_worker_is_raised():
    def unreadable():
        raise codec.MidiFormatError("gone.mid", "cannot read file (denied)")

    jobs = [("gone.mid", unreadable)]
    [result] = decode_pool.decode_stream(jobs, workers=2)
    assert result.reason == "cannot read file (denied)"
    bug = [("bug.mid", lambda: 12345)]  # not bytes: midi_to_tones raises TypeError
    with pytest.raises(RuntimeError, match="(?s)bug.mid failed in a worker.*TypeError"):
        list(decode_pool.decode_stream(bug, workers=2))

    def broken_reader():
        raise KeyError("a bug in reading")

    with pytest.raises(RuntimeError, match="(?s)bug.mid failed in a worker.*KeyError"):
        list(decode_pool.decode_stream([("bug.mid", broken_reader)], workers=2))


def test_default_workers_one_per_idle_core_and_small_corpora_in_process():
    assert decode_pool.default_workers(3000, cores=8, load=0.2) == 8
    assert decode_pool.default_workers(3000, cores=8, load=4.0) == 5
    assert decode_pool.default_workers(40, cores=8, load=0.0) == 2
    assert decode_pool.default_workers(10, cores=8, load=0.0) == 0
    assert decode_pool.default_workers(3000, cores=2, load=6.5) == 0  # all cores busy
    assert decode_pool.default_workers(3000, cores=1, load=0.0) == 0
    assert 0 <= decode_pool.default_workers(3000) <= (os.cpu_count() or 1)
