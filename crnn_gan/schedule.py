"""The training schedule: which phase each epoch trains in, and on windows of which length.

One `fit` runs the whole experiment (`crnn_gan.gan`): epochs ``0 .. pretrain_epochs - 1``
pretrain G on next-tone prediction with the original code's curriculum on the window length,
``min(curriculum_step * (epoch + 1), seq_len)`` steps; the next `discriminator_epochs` train
D alone against the pretrained G (D pretraining); every later epoch is adversarial. Both
train on whole windows of `adversarial_seq_len` steps (0: `seq_len`, the paper); pretraining
reads the first steps of those windows. The Baseline follows the same window lengths (its
schedule has no `adversarial_seq_len`) and always trains on next-tone prediction.

The models hold a `Schedule` (a constructor argument) and apply it at each epoch's start
(`CRNNGAN.apply_schedule`, called by `crnn_gan.callbacks.ScheduleCallback`); how their
compiled train step reads the phase and the window length is said there.
"""

from __future__ import annotations

import dataclasses

#: The phases of a run: G's next-tone pretraining, D's pretraining (D's update alone, against
#: the pretrained G's songs), the two-player game.
PRETRAIN, DISCRIMINATOR, ADVERSARIAL = "pretrain", "discriminator", "adversarial"


@dataclasses.dataclass(frozen=True)
class Schedule:
    """The phase and the window length of every epoch (epochs count from 0).

    Attributes:
        pretrain_epochs: epochs of next-tone pretraining before the adversarial ones (0:
            adversarial from the start).
        seq_len: the longest window pretraining trains on, in steps; the data's window
            length (what later epochs train on) unless `adversarial_seq_len` is set.
        curriculum_step: pretraining epoch e trains on windows of
            ``min(curriculum_step * (e + 1), seq_len)`` steps (the original code: 4).
        discriminator_epochs: epochs of D's pretraining between G's pretraining and the
            adversarial epochs (0: none, the paper).
        adversarial_seq_len: window length in steps of D's pretraining and the adversarial
            epochs, at least `seq_len` (0: `seq_len`); the data's windows are this long.
    """

    pretrain_epochs: int
    seq_len: int
    curriculum_step: int
    discriminator_epochs: int = 0
    adversarial_seq_len: int = 0

    def __post_init__(self):
        for name in ("pretrain_epochs", "discriminator_epochs", "adversarial_seq_len"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("seq_len", "curriculum_step"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.adversarial_seq_len and self.adversarial_seq_len < self.seq_len:
            raise ValueError(f"adversarial_seq_len must be 0 or >= seq_len ({self.seq_len}), "
                             f"got {self.adversarial_seq_len}")

    def phase(self, epoch: int) -> str:
        """`PRETRAIN` for the first `pretrain_epochs` epochs, `DISCRIMINATOR` for the next
        `discriminator_epochs`, `ADVERSARIAL` after them."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        if epoch < self.pretrain_epochs:
            return PRETRAIN
        if epoch < self.first_adversarial_epoch:
            return DISCRIMINATOR
        return ADVERSARIAL

    @property
    def first_adversarial_epoch(self) -> int:
        """The first epoch (from 0) in which G trains against D."""
        return self.pretrain_epochs + self.discriminator_epochs

    @property
    def data_window_length(self) -> int:
        """Steps of the data's windows: the longest any epoch trains on."""
        return self.adversarial_seq_len or self.seq_len

    def window_length(self, epoch: int) -> int:
        """Steps of the windows epoch `epoch` trains on: the curriculum's while pretraining,
        `data_window_length` after."""
        if self.phase(epoch) != PRETRAIN:
            return self.data_window_length
        return min(self.curriculum_step * (epoch + 1), self.seq_len)


def add_window_length(model):
    """The model's int32 window-length variable (see `CRNNGAN.apply_schedule`)."""
    return model.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False,
                            name="window_length", aggregation="only_first_replica")


def schedule_to_config(schedule: Schedule | None) -> dict | None:
    """The schedule as a model's get_config entry."""
    return None if schedule is None else dataclasses.asdict(schedule)


def schedule_from_config(config: dict | None) -> Schedule | None:
    """The inverse of `schedule_to_config`."""
    return None if config is None else Schedule(**config)
