"""The window pipeline: shapes, fresh offsets every epoch, skipping, scaling."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests import midi_fixtures
from tfds_midi import codec, pipeline


def _songs(lengths, seed=0):
    rng = np.random.default_rng(seed)
    return [midi_fixtures.random_song(rng, n) for n in lengths]


def test_windows_have_fixed_shapes_and_come_from_the_songs():
    songs = _songs([50, 60, 70, 80])
    scaler = pipeline.FeatureScaler.fit(songs)
    dataset = pipeline.window_dataset(songs, scaler, seq_len=10, batch_size=2, seed=1)
    batches = list(dataset.as_numpy_iterator())
    assert len(batches) == 2 and all(b.shape == (2, 10, 4) for b in batches)
    normalized = [scaler.normalize(s) for s in songs]
    for window in np.concatenate(batches):
        assert any(
            np.allclose(window, song[i:i + 10], atol=1e-5)
            for song in normalized for i in range(len(song) - 9))


def test_offsets_are_fresh_every_epoch_and_reproducible_with_a_seed():
    songs = _songs([400] * 4)
    scaler = pipeline.FeatureScaler.fit(songs)
    dataset = pipeline.window_dataset(songs, scaler, seq_len=8, batch_size=4, seed=3)
    first, second = [np.concatenate(list(dataset.as_numpy_iterator())) for _ in range(2)]
    assert not np.array_equal(first, second)
    again = pipeline.window_dataset(songs, scaler, seq_len=8, batch_size=4, seed=3)
    np.testing.assert_array_equal(np.concatenate(list(again.as_numpy_iterator())), first)


def test_short_songs_are_skipped_and_no_usable_song_is_an_error():
    songs = _songs([5, 30, 6])
    assert [len(s) for s in pipeline.songs_for_training(songs, 10)] == [30]
    scaler = pipeline.FeatureScaler.fit(songs)
    dataset = pipeline.window_dataset(songs, scaler, seq_len=10, batch_size=1,
                                      windows_per_song=3)
    assert len(list(dataset)) == 3
    with pytest.raises(ValueError, match="seq_len=40.*longest: 30"):
        pipeline.window_dataset(songs, scaler, seq_len=40, batch_size=1)


def test_packed_windows_for_three_tones_per_step():
    rng = np.random.default_rng(0)
    songs = [codec.pack_tones(midi_fixtures.random_song(rng, 80), 3) for _ in range(3)]
    scaler = pipeline.FeatureScaler.fit(songs)
    assert scaler.num_features == 12
    batch = next(iter(pipeline.window_dataset(songs, scaler, seq_len=6, batch_size=3)))
    assert batch.shape == (3, 6, 12)


def test_scaler_round_trip_statistics_and_saving(tmp_path):
    songs = _songs([30, 40])
    scaler = pipeline.FeatureScaler.fit(songs)
    stacked = np.concatenate(songs)
    np.testing.assert_allclose(scaler.mean, stacked.mean(0), rtol=1e-5)
    normalized = scaler.normalize(stacked)
    np.testing.assert_allclose(normalized.mean(0), 0, atol=1e-4)
    np.testing.assert_allclose(scaler.denormalize(normalized), stacked, rtol=1e-5, atol=1e-3)
    # Works on tensors too, and a constant feature (e.g. score velocity) stays finite.
    constant = [np.ones((5, 4), np.float32)]
    assert np.all(np.isfinite(pipeline.FeatureScaler.fit(constant).normalize(constant[0])))
    assert isinstance(scaler.normalize(tf.constant(stacked)), tf.Tensor)
    path = str(tmp_path / "scaler.json")
    scaler.save(path)
    loaded = pipeline.FeatureScaler.load(path)
    np.testing.assert_array_equal(loaded.mean, scaler.mean)
    np.testing.assert_array_equal(loaded.std, scaler.std)
    with pytest.raises(ValueError, match="no data"):
        pipeline.FeatureScaler.fit([])
