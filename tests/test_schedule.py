"""The training schedule: phases and window lengths per epoch, and how the models apply it."""

from __future__ import annotations

import pytest

from crnn_gan import config as config_lib
from crnn_gan import training
from crnn_gan.gan import CRNNGAN
from crnn_gan.pretraining import Baseline
from crnn_gan.schedule import ADVERSARIAL, PRETRAIN, Schedule


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
