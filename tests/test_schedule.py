"""The training schedule: phases and window lengths per epoch, and how the models apply it."""

from __future__ import annotations

import numpy as np
import pytest

from crnn_gan import config as config_lib
from crnn_gan import training
from crnn_gan.gan import CRNNGAN
from crnn_gan.pretraining import Baseline
from crnn_gan.schedule import ADVERSARIAL, PRETRAIN, Schedule
from tests import midi_fixtures


def test_curriculum_grows_like_the_original_code_up_to_seq_len():
    schedule = Schedule(pretrain_epochs=50, seq_len=100, curriculum_step=4)
    assert [schedule.window_length(e) for e in range(6)] == [4, 8, 12, 16, 20, 24]
    assert schedule.window_length(40) == 100  # 164, capped
    assert {schedule.phase(e) for e in range(50)} == {PRETRAIN}
    assert schedule.phase(50) == ADVERSARIAL


def test_adversarial_epochs_train_on_whole_windows_wherever_the_curriculum_stopped():
    schedule = Schedule(pretrain_epochs=2, seq_len=100, curriculum_step=4)
    assert [(schedule.phase(e), schedule.window_length(e)) for e in range(4)] == [
        (PRETRAIN, 4), (PRETRAIN, 8), (ADVERSARIAL, 100), (ADVERSARIAL, 100)]
    assert Schedule(0, 7, 4).phase(0) == ADVERSARIAL


def test_a_longer_game_caps_the_curriculum_at_seq_len_and_plays_on_its_own_windows():
    schedule = Schedule(pretrain_epochs=3, seq_len=8, curriculum_step=3, discriminator_epochs=1,
                        adversarial_seq_len=12)
    assert [schedule.window_length(e) for e in range(6)] == [3, 6, 8, 12, 12, 12]
    assert schedule.data_window_length == 12
    assert Schedule(3, 8, 3).data_window_length == 8  # 0: the game plays on seq_len
    with pytest.raises(ValueError, match="adversarial_seq_len must be 0 or >= seq_len"):
        Schedule(3, 8, 3, adversarial_seq_len=6)
    with pytest.raises(ValueError, match="adversarial_seq_len"):
        Schedule(3, 8, 3, adversarial_seq_len=-1)


def test_config_adversarial_seq_len_gives_the_gan_longer_windows_and_leaves_the_baseline():
    config = config_lib.preset("tiny").replace(pretrain_epochs=2, seq_len=8,
                                               curriculum_step=3, adversarial_seq_len=12)
    assert config.adversarial_window_steps == 12
    assert config_lib.preset("tiny").adversarial_window_steps == 8
    gan = training.build_model(config, "gan")
    baseline = training.build_model(config, "baseline")
    assert gan.schedule == Schedule(2, 8, 3, adversarial_seq_len=12)
    assert baseline.schedule == training.build_model(
        config.replace(adversarial_seq_len=0), "baseline").schedule
    assert (gan.schedule, baseline.schedule) == (config.schedule("gan"),
                                                 config.schedule("baseline"))
    assert baseline.schedule.data_window_length == 8
    for epoch, length in ((1, 6), (2, 12)):
        gan.apply_schedule(epoch)
        assert int(gan.window_length.numpy()) == length
    baseline.apply_schedule(2)
    assert int(baseline.window_length.numpy()) == 8
    assert type(gan).from_config(gan.get_config()).schedule == gan.schedule
    for value, match in ((-1, "integer >= 0"), (6, r"at least seq_len \(8\)"),
                         (True, "integer >= 0")):
        with pytest.raises(ValueError, match=f"adversarial_seq_len.*{match}"):
            config.replace(adversarial_seq_len=value)
    with pytest.raises(ValueError, match=r"statistics_reward_steps \(10\) must be 0 or at "
                                         r"least adversarial_seq_len \(12\)"):
        config.replace(representation="log", output_head="categorical", feature_matching=False,
                       gradient_estimator="score_function", statistics_reward_weight=1.0,
                       statistics_reward_steps=10)


def test_the_gan_with_a_longer_game_draws_its_windows_at_that_length(tmp_path):
    """Songs of 10 steps hold the baseline's 8-step windows, not the game's 12: the GAN's run
    is refused and names the length, the baseline's trains."""
    rng = np.random.default_rng(0)
    songs = [midi_fixtures.random_song(rng, 10) for _ in range(6)]
    config = config_lib.preset("tiny").replace(epochs=2, adversarial_seq_len=12)
    spec = training.RunSpec(model_dir=str(tmp_path / "gan"), samples_per_epoch=0)
    with pytest.raises(ValueError, match=r"no training song holds a window of 12 steps "
                       r"\(--adversarial_seq_len; the longest of 6 has 10\)"):
        training.train(config, spec, songs=songs)
    assert not (tmp_path / "gan").exists()  # refused before anything is written
    training.train(config, training.RunSpec(model_dir=str(tmp_path / "baseline"),
                                            samples_per_epoch=0, model="baseline"), songs=songs)
    assert (tmp_path / "baseline" / "generator.weights.h5").exists()


@pytest.mark.parametrize("fields, match", [
    ((-1, 8, 4), "pretrain_epochs"), ((1, 0, 4), "seq_len"), ((1, 8, 0), "curriculum_step")])
def test_invalid_fields_name_the_field(fields, match):
    with pytest.raises(ValueError, match=match):
        Schedule(*fields)


def test_a_negative_epoch_is_an_error():
    with pytest.raises(ValueError, match="epoch"):
        Schedule(1, 8, 4).window_length(-1)


def test_the_models_apply_their_configs_schedule_and_retrace_only_on_a_phase_change():
    config = config_lib.preset("tiny").replace(pretrain_epochs=2, seq_len=8,
                                               curriculum_step=3, epochs=4)
    gan = training.build_model(config, "gan")
    assert gan.schedule == Schedule(2, 8, 3)
    gan.apply_schedule(0)
    assert (gan.pretraining, int(gan.window_length.numpy())) == (True, 3)
    gan.make_train_function()
    pretrain_function = gan.train_function
    gan.apply_schedule(1)
    assert (gan.pretraining, int(gan.window_length.numpy())) == (True, 6)
    assert gan.train_function is pretrain_function  # the curriculum needs no retrace
    gan.apply_schedule(2)
    assert (gan.pretraining, int(gan.window_length.numpy())) == (False, 8)
    assert gan.train_function is not pretrain_function

    baseline = training.build_model(config, "baseline")
    for epoch, length in ((0, 3), (1, 6), (2, 8)):
        baseline.apply_schedule(epoch)
        assert (baseline.pretraining, int(baseline.window_length.numpy())) == (True, length)

    for model in (gan, baseline):
        clone = type(model).from_config(model.get_config())
        assert clone.schedule == model.schedule


def test_a_model_without_a_schedule_refuses_to_apply_one():
    config = config_lib.preset("tiny")
    generator = training.build_generator(config)
    for model in (Baseline(generator), CRNNGAN(generator, None)):
        with pytest.raises(ValueError, match="schedule"):
            model.apply_schedule(0)
