"""KL control (`Config.prior_kl_weight`): G's adversarial loss pays for moving its draws away
from a frozen copy of itself taken when the game begins.

Checks the divergence against numpy, that the prior is taken once and never trains, that the
term changes G's step and not D's, the config's checks, and a real tiny run that trains on
from its backup to the same generator as a straight run.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from crnn_gan import config as config_lib
from crnn_gan import gan, heads, training
from crnn_gan.discriminator import Discriminator
from tests.test_heads import generator_with_head, random_songs

ROOT = pathlib.Path(__file__).resolve().parents[1]

SCORE_FUNCTION = dict(representation="log", output_head="categorical", optimizer="adam",
                      learning_rate=1e-3, feature_matching=False, units=8,
                      gradient_estimator="score_function")


def _values(variables):
    return [np.array(v.numpy(), copy=True) for v in variables]


@pytest.mark.parametrize("tones_per_step", [1, 3])
def test_the_mean_divergence_is_numpys_over_the_counted_draws(tones_per_step):
    """KL(p || q) per draw, averaged over the draws that count: for C-RNN-GAN-3 an absent
    slot's velocity only. Zero between equal distributions."""
    rng = np.random.default_rng(0)
    features, k = 4 * tones_per_step, heads.CATEGORICAL_BINS
    bins = np.sort(rng.normal(size=(features, k)), axis=-1).astype(np.float32)
    values = np.take_along_axis(
        np.broadcast_to(bins, (2, 5, features, k)),
        rng.integers(0, k, size=(2, 5, features, 1)), axis=-1)[..., 0]
    if tones_per_step > 1:  # slot 1 absent in half the steps: its velocity holds the lowest bin
        values[:, ::2, 6] = bins[6, 0]
    log_p = tf.nn.log_softmax(rng.normal(size=(2, 5, features, k)).astype(np.float32))
    log_q = tf.nn.log_softmax(rng.normal(size=(2, 5, features, k)).astype(np.float32))
    got = heads.mean_kl_divergence(log_p, log_q, tf.constant(values), tf.constant(bins))
    p, lp, lq = np.exp(log_p.numpy()), log_p.numpy(), log_q.numpy()
    kl = (p * (lp - lq)).sum(-1)  # [2, 5, F]
    counted = np.ones_like(kl, bool)
    if tones_per_step > 1:
        absent = values[..., 2::4] == bins[2::4, 0]  # [2, 5, k]
        for feature in (0, 1, 3):
            counted[..., feature::4] &= ~absent
        assert counted.sum() < counted.size
    np.testing.assert_allclose(got.numpy(), kl[counted].mean(), rtol=1e-5)
    same = heads.mean_kl_divergence(log_p, log_p, tf.constant(values), tf.constant(bins))
    assert float(same) == 0.0


def _gan(weight, seed=3):
    generator, song_scaler, _ = generator_with_head("categorical", seed=seed)
    keras.utils.set_random_seed(seed)
    model = gan.CRNNGAN(generator, Discriminator(num_features=4, units=16, num_layers=2),
                        feature_matching=False, freezing=False,
                        gradient_estimator="score_function", prior_kl_weight=weight)
    model.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
    model.build_for_training()
    model.set_pretraining(False)
    return model


def test_the_prior_is_gs_weights_at_the_first_adversarial_epoch_and_never_trains():
    model = _gan(1.0)
    real = tf.random.stateless_normal([4, 10, 4], seed=[1, 2])
    assert model.prior is not None and not model.prior.trainable_weights
    assert int(model.prior_state.numpy()) == gan.PRIOR_UNSET
    model.begin_adversarial_epoch()
    assert int(model.prior_state.numpy()) == gan.PRIOR_TAKEN
    taken = _values(model.generator.weights)
    for a, b in zip(_values(model.prior.weights), taken):  # the bins and affine too
        np.testing.assert_array_equal(a, b)
    trainable = _values(model.generator.trainable_weights)
    first = model.train_step(real)
    assert float(first["g_prior_kl"]) == 0.0  # G is its prior
    model.train_step(real)
    moved = _values(model.generator.trainable_weights)
    assert max(np.abs(a - b).max() for a, b in zip(moved, trainable)) > 1e-4
    assert float(model.trackers["g_prior_kl"].result()) > 0.0  # the second step's KL
    model.end_adversarial_epoch()
    model.begin_adversarial_epoch()  # a later epoch: the prior stays the first one
    for a, b in zip(_values(model.prior.weights), taken):
        np.testing.assert_array_equal(a, b)
    restored = gan.CRNNGAN.from_config(model.get_config())
    assert restored.prior_kl_weight == 1.0


def test_the_term_changes_gs_step_and_not_ds():
    """One step from the same weights, batch and (moved) prior at two weights: G moves
    differently, D exactly alike, and both log the same divergence."""
    real = tf.random.stateless_normal([4, 10, 4], seed=[1, 2])
    moved, d_moved, kls = {}, {}, {}
    for weight in (0.5, 5.0):
        model = _gan(weight)
        model.begin_adversarial_epoch()
        model.prior.set_weights([w + 0.3 * np.sign(w) if w.ndim == 2 and i < 6 else w
                                 for i, w in enumerate(model.prior.get_weights())])
        before = _values(model.generator.trainable_weights)
        d_before = _values(model.discriminator.trainable_weights)
        kls[weight] = float(model.train_step(real)["g_prior_kl"])
        moved[weight] = np.concatenate([(a - b).ravel() for a, b in zip(
            _values(model.generator.trainable_weights), before)])
        d_moved[weight] = np.concatenate([(a - b).ravel() for a, b in zip(
            _values(model.discriminator.trainable_weights), d_before)])
    assert kls[0.5] > 0.0 and kls[0.5] == kls[5.0]
    assert not np.allclose(moved[0.5], moved[5.0])
    np.testing.assert_array_equal(d_moved[0.5], d_moved[5.0])


def test_a_gan_without_the_term_has_no_prior():
    model = training.build_model(config_lib.preset("tiny", **SCORE_FUNCTION), "gan", seed=3)
    assert model.prior is None and "g_prior_kl" not in model.trackers
    assert not any("prior" in w.path for w in model.weights)


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_the_weight_is_checked_by_config_and_model(bad):
    with pytest.raises(ValueError, match="prior_kl_weight"):
        config_lib.preset("tiny", **SCORE_FUNCTION, prior_kl_weight=bad)
    generator, _, _ = generator_with_head("categorical", seed=3)
    with pytest.raises(ValueError, match="prior_kl_weight"):
        gan.CRNNGAN(generator, Discriminator(units=8), feature_matching=False,
                    gradient_estimator="score_function", prior_kl_weight=bad)


def test_the_weight_needs_a_score_function_estimator():
    with pytest.raises(ValueError, match="prior_kl_weight needs a score-function"):
        config_lib.preset("tiny", **{**SCORE_FUNCTION, "gradient_estimator": "straight_through"},
                          prior_kl_weight=1.0)
    generator, _, _ = generator_with_head("categorical", seed=3)
    with pytest.raises(ValueError, match="prior_kl_weight needs a score-function"):
        gan.CRNNGAN(generator, Discriminator(units=8), feature_matching=False,
                    prior_kl_weight=1.0)


def test_a_run_logs_the_term_and_trains_on_from_its_backup_as_a_straight_run(tmp_path):
    """1 pretraining epoch and 2 adversarial ones, and the same run stopped after 2 and
    trained on: the third epoch keeps the prior taken at the second (the backup holds it),
    so both end with the same generator."""
    config = config_lib.preset("tiny", **SCORE_FUNCTION, epochs=3, pretrain_epochs=1,
                               prior_kl_weight=2.0, checkpoint_choice="last")
    songs = random_songs(count=6)

    def run(folder, epochs):
        spec = training.RunSpec(model_dir=str(tmp_path / folder), samples_per_epoch=0, seed=1)
        history = training.train(config.replace(epochs=epochs), spec, songs=songs)
        generator, loaded, _ = training.load_generator(spec.model_dir)
        return history.history, _values(generator.weights), loaded

    logs, straight, loaded = run("straight", 3)
    assert loaded.prior_kl_weight == 2.0
    # Pretraining logs 0; the first game step (tiny: one step an epoch) starts from G = prior.
    assert logs["g_prior_kl"][:2] == [0.0, 0.0]
    assert logs["g_prior_kl"][2] > 0.0 and np.isfinite(logs["g_prior_kl"][2])
    run("run", 2)
    _, resumed, _ = run("run", 3)
    for a, b in zip(resumed, straight):
        np.testing.assert_array_equal(a, b)


def _game_start(work_dir, name):
    return subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_game_start.py"),
         f"--work_dir={work_dir}", f"--name={name}", "--baseline_names=small"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)


def test_the_games_start_is_refused_for_runs_that_kept_no_prior(tmp_path):
    """benchmarks/bench_game_start.py: a recipe without runs, and a run trained without
    the KL control, are one line each and exit status 2 (nothing exported)."""
    missing = _game_start(tmp_path, "nothing")
    assert missing.returncode == 2, missing.stderr
    assert "no runs match" in missing.stderr and "nothing/gan_seed*/run" in missing.stderr
    assert "Traceback" not in missing.stderr
    job = tmp_path / "plain" / "gan_seed0"
    config = config_lib.preset("tiny", **SCORE_FUNCTION, epochs=2, pretrain_epochs=1)
    training.train(config, training.RunSpec(model_dir=str(job / "run"), samples_per_epoch=0),
                   songs=random_songs(count=6))
    (job / "quality_measure.json").write_text(json.dumps({"key": {"reference": "real.npz"}}))
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "real.npz").write_bytes(b"")  # named by the key, not read
    plain = _game_start(tmp_path, "plain")
    assert plain.returncode == 2, plain.stderr
    assert "trained without --prior_kl_weight, so it kept no prior" in plain.stderr
    assert "Traceback" not in plain.stderr
    assert not (tmp_path / "plain" / "start_seed0").exists()
